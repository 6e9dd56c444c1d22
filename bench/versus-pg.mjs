// Our server and a throw-away PostgreSQL side by side, in one run (issue 15, workloads 1, 2 and 6):
// 1. single-row INSERT, 16 clients; 2. 1,000-row INSERT statements, 4 clients; 6. queries on N rows
// (point lookup, filter + ORDER BY + LIMIT, GROUP BY): ours hot, ours cold (after STORAGE FLUSH TABLE),
// ours mixed (another table: first half flushed, second half hot),
// PostgreSQL (after VACUUM ANALYZE). PostgreSQL runs each write workload with synchronous_commit on and
// off (SET per session, one cluster; fsync stays on).
// Both sides use the same lean style of client: ours, lib.mjs's node:http keep-alive client (one JSON POST
// per statement); PostgreSQL, the `pg` package with one connection per client (extended protocol with
// parameters where ours sends params). Server CPU: /proc of the server's process tree (ours: the node
// process; PostgreSQL: the postmaster and all its children, exited ones through cutime/cstime).
// The load generator's own CPU (process.cpuUsage of this process) is reported for every run.
import { bulkInsert, latencyStats, waitForJob } from './lib.mjs';
import { pgClients, treeCpuMicros } from './pg.mjs';
import { loadavg } from 'node:os';

const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * Runs `clients` loops of `op(client, i)` (returns rows written) for `seconds` after an untimed warm-up (3 s: a fresh Node server is JIT-compiling for its first seconds) and
 * measures throughput, latency, server CPU (`serverCpu()` in µs) and this process's CPU: one target
 * of driveInterleaved, in one slice.
 */
export async function drive({ clients, seconds, op, serverCpu, warmup = Math.min(3, seconds) }) {
  const out = await driveInterleaved({ variants: [{ key: 'run', clients, op, serverCpu }], seconds, sliceSeconds: seconds, warmup });
  return out.run;
}

/**
 * The variants (ours and PostgreSQL's, each with its `op`, `clients` and `serverCpu`) in interleaved
 * slices of `sliceSeconds`, round-robin with the order rotated each round, until each has had `seconds`
 * of load; each is first warmed up alone for `warmup` s. This machine's speed drifts by up to half for
 * seconds at a time (other tenants of its host): back-to-back 10 s runs compared whichever ran in a slow
 * stretch, interleaved slices see the same stretches. Returns, for each variant by key, its rows/s,
 * latency, server and load-generator CPU, and `slice_rows_per_s` (lowest and highest slice) to show the drift.
 */
export async function driveInterleaved({ variants, seconds, sliceSeconds = 1, warmup = Math.min(3, seconds) }) {
  const fresh = () => ({ latencies: [], rows: 0, elapsed: 0, server: 0, client: 0, slices: [], next: [] });
  // A warm-up slice (`measured` false) does not call serverCpu: callers count its calls (two per measured slice).
  const slice = async (v, secs, a, measured = true) => {
    const rows0 = a.rows;
    const cpu0 = measured ? v.serverCpu() : 0;
    const me0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + secs * 1000;
    await Promise.all(Array.from({ length: v.clients }, async (_, c) => {
      // `i` goes on from the client's previous slice (ops that make keys from it stay unique).
      for (let i = a.next[c] ?? 0; performance.now() < deadline; i++) {
        const t = performance.now();
        const rows = await v.op(c, i);
        a.latencies.push(performance.now() - t);
        a.rows += rows;
        a.next[c] = i + 1;
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    const me = process.cpuUsage(me0);
    if (measured) a.server += v.serverCpu() - cpu0;
    a.client += me.user + me.system;
    a.elapsed += elapsed;
    a.slices.push((a.rows - rows0) / elapsed);
  };
  const acc = new Map(variants.map((v) => [v.key, fresh()]));
  for (const v of variants) {
    if (warmup <= 0) continue;
    const warm = fresh();
    await slice(v, warmup, warm, false);
    acc.get(v.key).next = warm.next;
  }
  const rounds = Math.max(1, Math.round(seconds / sliceSeconds));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length];
      await slice(v, sliceSeconds, acc.get(v.key));
    }
  }
  const out = {};
  for (const v of variants) {
    const a = acc.get(v.key);
    const ops = a.latencies.length;
    out[v.key] = {
      clients: v.clients, seconds: round(a.elapsed, 2), slices: rounds, ops, rows: a.rows,
      ops_per_s: Math.round(ops / a.elapsed), rows_per_s: Math.round(a.rows / a.elapsed),
      slice_rows_per_s: [Math.round(Math.min(...a.slices)), Math.round(Math.max(...a.slices))],
      latency: latencyStats(a.latencies),
      server_cpu_us_per_op: round(a.server / ops), server_cpu_us_per_row: round(a.server / a.rows, 2),
      server_cpu_cores: round(a.server / 1e6 / a.elapsed, 2),
      loadgen_cpu_us_per_op: round(a.client / ops), loadgen_cpu_cores: round(a.client / 1e6 / a.elapsed, 2),
    };
  }
  return out;
}

/** Sequential queries (one client) for `seconds`, at least `minRuns`; latency and CPU per query. */
async function queries({ seconds, run, serverCpu, minRuns = 3 }) {
  await run(0); // warm-up (plans, caches)
  const latencies = [];
  const cpu0 = serverCpu();
  const me0 = process.cpuUsage();
  const deadline = performance.now() + seconds * 1000;
  for (let i = 1; performance.now() < deadline || latencies.length < minRuns; i++) {
    const t = performance.now();
    await run(i);
    latencies.push(performance.now() - t);
  }
  const me = process.cpuUsage(me0);
  const server = serverCpu() - cpu0;
  return {
    latency: latencyStats(latencies),
    server_cpu_us_per_query: round(server / latencies.length),
    loadgen_cpu_us_per_query: round((me.user + me.system) / latencies.length),
  };
}

const ratio = (a, b) => (b ? round(a / b, 2) : null);

/** ours / PostgreSQL for the figures that matter, against each synchronous_commit setting. */
function ratios(ours, pgOn, pgOff) {
  const r = (pg) => ({
    rows_per_s: ratio(ours.rows_per_s, pg.rows_per_s),
    p50: ratio(ours.latency.p50_ms, pg.latency.p50_ms),
    p99: ratio(ours.latency.p99_ms, pg.latency.p99_ms),
    server_cpu_per_row: ratio(ours.server_cpu_us_per_row, pg.server_cpu_us_per_row),
  });
  return { vs_sync_commit_on: r(pgOn), vs_sync_commit_off: r(pgOff) };
}

const multiValues = (from, n, quote) => {
  const values = [];
  for (let i = from; i < from + n; i++) values.push(`(${i}, 'u${i % 100}', ${quote(`bulk body number ${i}`)}, ${i % 1000})`);
  return values.join(',');
};
const q = (s) => `'${s}'`;

/** Workloads 1 and 2 (`parts`: which of the two). `server` from startBenchServer, `pg` from startPostgres. */
export async function benchWritesVersusPg(server, pg, seconds, parts = ['1', '2']) {
  const out = {};
  await server.sql('CREATE NAMESPACE IF NOT EXISTS vs');
  if (parts.includes('1')) out.insert_single_row_16_clients = await singleRow(server, pg, seconds);
  if (parts.includes('2')) out.insert_1000_rows_4_clients = await multiRow(server, pg, seconds);
  return out;
}

/** 1. single-row INSERT, 16 clients: ours (SHARED and USER table) and PostgreSQL (on and off), interleaved. */
async function singleRow(server, pg, seconds) {
  const { sql } = server;
  const oursCpu = () => treeCpuMicros(server.pid);
  const pgCpu = () => pg.cpuMicros();
  await sql(`CREATE SHARED TABLE vs.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
  await sql(`CREATE USER TABLE vs.single_user (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
  const variants = [];
  for (const [key, table] of [['ours_shared', 'vs.single'], ['ours_user', 'vs.single_user']]) {
    variants.push({
      key, clients: 16, serverCpu: oursCpu,
      op: async (c, i) => {
        await sql(`INSERT INTO ${table} (user_id, body, n) VALUES ($1, $2, $3)`, [`u${c}`, `message ${i} from client ${c}`, i]);
        return 1;
      },
    });
  }
  const connections = [];
  try {
    for (const sc of ['on', 'off']) {
      const admin = await pg.connect();
      await admin.query(`CREATE TABLE single_${sc} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id TEXT, body TEXT, n INT)`);
      await admin.end();
      const clients = await pgClients(pg, 16, sc);
      connections.push(...clients);
      variants.push({
        key: `pg_sync_commit_${sc}`, clients: 16, serverCpu: pgCpu,
        op: async (c, i) => {
          await clients[c].query(`INSERT INTO single_${sc} (user_id, body, n) VALUES ($1, $2, $3)`, [`u${c}`, `message ${i} from client ${c}`, i]);
          return 1;
        },
      });
    }
    const single = await driveInterleaved({ variants, seconds });
    single.ratios_ours_shared = ratios(single.ours_shared, single.pg_sync_commit_on, single.pg_sync_commit_off);
    single.ratios_ours_user = ratios(single.ours_user, single.pg_sync_commit_on, single.pg_sync_commit_off);
    return single;
  } finally {
    await Promise.all(connections.map((c) => c.end()));
  }
}

/** 2. 1,000-row INSERT statements, 4 clients, ours and PostgreSQL (on and off) interleaved; ids from one counter per target. */
async function multiRow(server, pg, seconds) {
  const { sql } = server;
  await sql(`CREATE SHARED TABLE vs.multi (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
  let nextOurs = 0;
  const variants = [{
    key: 'ours_shared', clients: 4, serverCpu: () => treeCpuMicros(server.pid),
    op: async () => {
      const from = nextOurs; nextOurs += 1000;
      await sql(`INSERT INTO vs.multi (id, user_id, body, n) VALUES ${multiValues(from, 1000, q)}`);
      return 1000;
    },
  }];
  const connections = [];
  try {
    for (const sc of ['on', 'off']) {
      const admin = await pg.connect();
      await admin.query(`CREATE TABLE multi_${sc} (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT)`);
      await admin.end();
      const clients = await pgClients(pg, 4, sc);
      connections.push(...clients);
      let next = 0;
      variants.push({
        key: `pg_sync_commit_${sc}`, clients: 4, serverCpu: () => pg.cpuMicros(),
        op: async (c) => {
          const from = next; next += 1000;
          await clients[c].query(`INSERT INTO multi_${sc} (id, user_id, body, n) VALUES ${multiValues(from, 1000, q)}`);
          return 1000;
        },
      });
    }
    const multi = await driveInterleaved({ variants, seconds, sliceSeconds: 2 });
    multi.ratios = ratios(multi.ours_shared, multi.pg_sync_commit_on, multi.pg_sync_commit_off);
    return multi;
  } finally {
    await Promise.all(connections.map((c) => c.end()));
  }
}

/** Workload 6's three queries (bench/memory.mjs runs them too). */
export const QUERIES = {
  point_lookup: { text: (t) => `SELECT * FROM ${t} WHERE id = $1`, params: (i, rows) => [(i * 7919) % rows], expect: () => 1 },
  filter_order_limit: {
    text: (t) => `SELECT * FROM ${t} WHERE user_id = $1 AND n < 500 ORDER BY id DESC LIMIT 20`,
    params: (i) => [`user_${(i * 37) % 500}`],
    // user_k holds the ids i < rows with i % 1000 = k (fewer than 20 in a small --pg-rows run).
    expect: (i, rows) => { const k = (i * 37) % 500; return k < rows ? Math.min(20, Math.floor((rows - 1 - k) / 1000) + 1) : 0; },
  },
  group_by: {
    text: (t) => `SELECT user_id, count(*) AS c, avg(score) AS a FROM ${t} WHERE n < 500 GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10`,
    params: () => undefined, expect: (i, rows) => Math.min(10, rows, 500),
  },
};

/** Workload 6: the three queries on `rows` rows; ours hot, ours cold, PostgreSQL. */
export async function benchQueriesVersusPg(server, pg, seconds, rows) {
  const { sql } = server;
  // Progress on stderr (the JSON goes to stdout): a failed run says which phase it was in.
  const phase = (name) => process.stderr.write(`workload 6: ${name} ${new Date().toISOString().slice(11, 19)} load ${loadavg()[0].toFixed(2)}\n`);
  const oursCpu = () => treeCpuMicros(server.pid);
  const out = { rows, queries: Object.fromEntries(Object.entries(QUERIES).map(([k, v]) => [k, v.text('t')])) };

  // Same values on both sides (as bench/cold.mjs): user_id and n repeat every 1,000 rows.
  await sql('CREATE NAMESPACE IF NOT EXISTS vsq');
  await sql(`CREATE SHARED TABLE vsq.big (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) ${NO_FLUSH}`);
  phase('load');
  let t = performance.now();
  await bulkInsert(sql, 'vsq.big', 'id, user_id, body, n, score', 0, rows,
    (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`, 1000, 4);
  out.ours_load_ms = Math.round(performance.now() - t);

  const admin = await pg.connect();
  t = performance.now();
  await admin.query('CREATE TABLE big (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE PRECISION)');
  await admin.query(`INSERT INTO big SELECT i, 'user_' || (i % 1000), 'message body number ' || i, i % 1000, (i % 997) / 7.0
                     FROM generate_series(0, ${rows - 1}) AS i`);
  await admin.query('VACUUM ANALYZE big');
  out.pg_load_ms = Math.round(performance.now() - t);

  const runOurs = (query, table = 'vsq.big') => async (i) => {
    const res = await sql(query.text(table), query.params(i, rows));
    const expect = query.expect(i, rows);
    if (res.results[0].row_count !== expect) throw new Error(`ours: expected ${expect} rows, got ${res.results[0].row_count}`);
  };
  const runPg = (query) => async (i) => {
    const res = await admin.query(query.text('big'), query.params(i, rows));
    const expect = query.expect(i, rows);
    if (res.rowCount !== expect) throw new Error(`pg: expected ${expect} rows, got ${res.rowCount}`);
  };
  const results = {};
  phase('hot queries');
  for (const [name, query] of Object.entries(QUERIES)) results[name] = { ours_hot: await queries({ seconds, run: runOurs(query), serverCpu: oursCpu }) };

  phase('flush');
  t = performance.now();
  const flushed = await sql('STORAGE FLUSH TABLE vsq.big');
  const job = await waitForJob(sql, flushed.results[0].message);
  out.ours_flush = { rows: job.rows_processed, wall_ms: Math.round(performance.now() - t), job_ms: job.result.duration_ms };
  phase('cold queries');
  for (const [name, query] of Object.entries(QUERIES)) results[name].ours_cold = await queries({ seconds, run: runOurs(query), serverCpu: oursCpu });

  phase('mixed load');
  // Mixed: the same rows in another table, the first half flushed (one segment), the second half hot.
  await sql(`CREATE SHARED TABLE vsq.mixed (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) ${NO_FLUSH}`);
  const half = Math.floor(rows / 2000) * 1000;
  const mixedRow = (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`;
  await bulkInsert(sql, 'vsq.mixed', 'id, user_id, body, n, score', 0, half, mixedRow, 1000, 4);
  const mixedFlush = await sql('STORAGE FLUSH TABLE vsq.mixed');
  await waitForJob(sql, mixedFlush.results[0].message);
  await bulkInsert(sql, 'vsq.mixed', 'id, user_id, body, n, score', half, rows, mixedRow, 1000, 4);
  out.mixed = { cold_rows: half, hot_rows: rows - half };
  phase('mixed queries');
  for (const [name, query] of Object.entries(QUERIES)) results[name].ours_mixed = await queries({ seconds, run: runOurs(query, 'vsq.mixed'), serverCpu: oursCpu });

  phase('postgresql queries');
  try {
    for (const [name, query] of Object.entries(QUERIES)) {
      const r = results[name];
      r.pg = await queries({ seconds, run: runPg(query), serverCpu: () => pg.cpuMicros() });
      r.ratios_p50 = {
        hot_over_pg: ratio(r.ours_hot.latency.p50_ms, r.pg.latency.p50_ms), cold_over_pg: ratio(r.ours_cold.latency.p50_ms, r.pg.latency.p50_ms),
        mixed_over_pg: ratio(r.ours_mixed.latency.p50_ms, r.pg.latency.p50_ms),
      };
      r.ratios_server_cpu = {
        hot_over_pg: ratio(r.ours_hot.server_cpu_us_per_query, r.pg.server_cpu_us_per_query),
        cold_over_pg: ratio(r.ours_cold.server_cpu_us_per_query, r.pg.server_cpu_us_per_query),
        mixed_over_pg: ratio(r.ours_mixed.server_cpu_us_per_query, r.pg.server_cpu_us_per_query),
      };
    }
  } finally {
    await admin.end();
  }
  out.results = results;
  return out;
}
