// Workloads 1 and 2 of issue 15 against our server alone (no PostgreSQL): single-row INSERT with 16
// clients (SHARED and USER table, SNOWFLAKE_ID keys) and 1,000-row INSERT statements with 4 clients,
// with the server's CPU per row. Quick A/B runs of the write path (decision 0013):
//   node bench/insert-path.mjs [seconds] [all|single|multi]   (KALAMDB_BENCH_NODE_ARGS="--cpu-prof ..." to
//   profile, KALAMDB_BENCH_MAIN=<other dist>/src/main.js for the "before" side, ORDER=user-first to measure
//   the USER table first: the first workload on a fresh server includes its JIT warm-up).
import { startBenchServer } from './lib.mjs';
import { drive as driveVersusPg } from './versus-pg.mjs';
import { treeCpuMicros } from './pg.mjs';
import { readFileSync, readdirSync } from 'node:fs';

const seconds = Number(process.argv[2] ?? 3);
const only = process.argv[3] ?? 'all';
const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
// The server's kernel CPU (stime) in µs: WAL writes and fdatasync show up here.
const systemMicros = (pid) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[12]) * 1e6 / 100;

/**
 * THREADS=1: the server's CPU per thread kind (main, libuv pool, V8 workers...) in µs per row, from
 * /proc/<pid>/task/<tid>/stat: the bench's CPU figure is the whole process, this says where it went.
 */
function threadTicks(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.split(') ')[1].split(' ');
      const kind = Number(tid) === pid ? 'main' : name.replace(/[0-9]+$/, '#');
      const prev = out.get(kind) ?? { user: 0, sys: 0, threads: 0 };
      out.set(kind, { user: prev.user + Number(f[11]), sys: prev.sys + Number(f[12]), threads: prev.threads + 1 });
    } catch { /* thread ended */ }
  }
  return out;
}

function threadReport(before, after, rows) {
  const parts = [];
  for (const [kind, a] of after) {
    const b = before.get(kind) ?? { user: 0, sys: 0 };
    const user = ((a.user - b.user) * 1e4) / rows;
    const sys = ((a.sys - b.sys) * 1e4) / rows;
    if (user + sys < 0.5) continue;
    parts.push(`${kind}×${a.threads} ${round(user)}u+${round(sys)}s`);
  }
  return parts.join('  ');
}

/** versus-pg's drive, with the short warm-up of quick A/B runs and the kernel's share of the server's CPU. */
async function drive(pid, clients, op) {
  const sys = [];
  const threads = [];
  const r = await driveVersusPg({
    clients, seconds, op, warmup: Number(process.env.WARMUP ?? Math.min(1, seconds / 5)),
    serverCpu: () => { sys.push(systemMicros(pid)); if (process.env.THREADS) threads.push(threadTicks(pid)); return treeCpuMicros(pid); },
  });
  const server = r.server_cpu_us_per_row * r.rows;
  if (threads.length === 2) console.log(`  threads (µs/row, user+sys): ${threadReport(threads[0], threads[1], r.rows)}`);
  return {
    rows_per_s: r.rows_per_s, server_cpu_us_per_row: r.server_cpu_us_per_row, server_cores: r.server_cpu_cores,
    server_system_share: round((sys[1] - sys[0]) / server, 2), loadgen_cores: r.loadgen_cpu_cores, latency: r.latency,
  };
}

const server = await startBenchServer();
const { sql } = server;
const out = {};
try {
  await sql('CREATE NAMESPACE IF NOT EXISTS vs');
  if (only === 'all' || only === 'single') {
    await sql(`CREATE SHARED TABLE vs.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
    await sql(`CREATE USER TABLE vs.single_user (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
    const order = process.env.ORDER === 'user-first' ? [['single_user', 'vs.single_user'], ['single_shared', 'vs.single']] : [['single_shared', 'vs.single'], ['single_user', 'vs.single_user']];
    for (const [key, table] of order) {
      out[key] = await drive(server.pid, 16, async (c, i) => {
        await sql(`INSERT INTO ${table} (user_id, body, n) VALUES ($1, $2, $3)`, [`u${c}`, `message ${i} from client ${c}`, i]);
        return 1;
      });
    }
  }
  if (only === 'all' || only === 'multi') {
    await sql(`CREATE SHARED TABLE vs.multi (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
    let next = 0;
    out.multi_1000 = await drive(server.pid, 4, async () => {
      const from = next; next += 1000;
      const values = [];
      for (let i = from; i < from + 1000; i++) values.push(`(${i}, 'u${i % 100}', 'bulk body number ${i}', ${i % 1000})`);
      await sql(`INSERT INTO vs.multi (id, user_id, body, n) VALUES ${values.join(',')}`);
      return 1000;
    });
  }
} finally {
  const stopped = await server.stop();
  if (stopped?.commit_groups) {
    console.log(`commit groups ${stopped.commit_groups}, intents per group ${round(stopped.commit_intents / stopped.commit_groups, 2)}, index reads ${stopped.commit_index_reads}, WAL syncs ${stopped.wal_syncs}`);
  }
}
for (const [k, v] of Object.entries(out)) {
  console.log(`${k.padEnd(14)} ${String(v.rows_per_s).padStart(7)} rows/s  ${String(v.server_cpu_us_per_row).padStart(7)} µs/row  server ${v.server_cores} cores (${Math.round(v.server_system_share * 100)}% sys)  loadgen ${v.loadgen_cores}  p50 ${v.latency.p50_ms} p99 ${v.latency.p99_ms} ms`);
}
