// Workload 1's statement without HTTP: 16 concurrent writers call the executor of an in-process server
// (auth principal of root, SQL parse, bind, INSERT, committer, RocksDB, WAL sync) for `seconds`, rounds
// alternating between builds, to compare our insert path's CPU per row where the HTTP layer and the
// load generator's process would add their noise:
//   [WORKLOAD=multi] node bench/insert-inproc.mjs <dist dir A> [<dist dir B> ...] [--seconds 3] [--rounds 3]
// WORKLOAD=multi: workload 2's statement instead, 1,000-row INSERTs with explicit ids, 4 writers.
// (a dist dir is packages/server/dist of some checkout). Each build runs in its own child process.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); if (i === -1) return fallback; const v = args[i + 1]; args.splice(i, 2); return Number(v); };
const seconds = opt('--seconds', 3);
const rounds = opt('--rounds', 3);

if (process.env.INPROC_CHILD) {
  const dist = process.env.INPROC_CHILD;
  const { loadConfig } = await import(join(dist, 'src/config/config.js'));
  const { startServer } = await import(join(dist, 'src/app.js'));
  const { createLogger } = await import(join(dist, 'src/util/log.js'));
  const { Executor } = await import(join(dist, 'src/exec/executor.js'));
  const { ParseCache } = await import(join(dist, 'src/sql/parser.js'));
  const { principalOf } = await import(join(dist, 'src/auth/access.js'));
  const dataDir = mkdtempSync(join(tmpdir(), 'kalamdb-inproc-'));
  process.env.KALAMDB_ROOT_PASSWORD = 'bench-root-password';
  const config = loadConfig(['--data-dir', dataDir, '--port', '0'], process.env);
  const server = await startServer(config, createLogger('warn'));
  const executor = new Executor(server.services, new ParseCache(config.parseCacheEntries));
  const root = principalOf(server.services.catalog.user('root'));
  const run = (sql, params = []) => executor.execute({ sql, params, namespace: null }, root);
  await run('CREATE NAMESPACE IF NOT EXISTS vs');
  await run("CREATE SHARED TABLE vs.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) WITH (FLUSH_POLICY = 'rows:100000000')");
  const multi = process.env.WORKLOAD === 'multi';
  await run("CREATE SHARED TABLE vs.multi (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT) WITH (FLUSH_POLICY = 'rows:100000000')");
  let nextId = 0;
  // Workload 2's statement (bench/versus-pg.mjs multiValues): 1,000 rows of literals, ids from one counter.
  const multiRow = () => {
    const values = [];
    for (let i = nextId; i < nextId + 1000; i++) values.push(`(${i}, 'u${i % 100}', 'bulk body number ${i}', ${i % 1000})`);
    nextId += 1000;
    return `INSERT INTO vs.multi (id, user_id, body, n) VALUES ${values.join(',')}`;
  };
  const phase = async (secs) => {
    let rows = 0;
    const deadline = performance.now() + secs * 1000;
    await Promise.all(Array.from({ length: multi ? 4 : 16 }, async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        if (multi) {
          await run(multiRow());
          rows += 1000;
        } else {
          await run('INSERT INTO vs.single (user_id, body, n) VALUES ($1, $2, $3)', [`u${c}`, `message ${i} from client ${c}`, i]);
          rows++;
        }
      }
    }));
    return rows;
  };
  const mainTicks = () => { const f = readFileSync(`/proc/self/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  const allTicks = () => { let t = 0; for (const tid of readdirSync('/proc/self/task')) { try { const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' '); t += Number(f[11]) + Number(f[12]); } catch {} } return t; };
  const threadTicks = () => { const f = readFileSync(`/proc/thread-self/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  await phase(2);
  const m0 = threadTicks(); const a0 = allTicks(); const t0 = performance.now();
  const rows = await phase(seconds);
  const el = (performance.now() - t0) / 1000; const m = threadTicks() - m0; const a = allTicks() - a0;
  const groups = server.services.committer.stats;
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
  console.log(JSON.stringify({ rows_per_s: Math.round(rows / el), us_per_row: +(a * 1e4 / rows).toFixed(multi ? 2 : 1), main_us_per_row: +(m * 1e4 / rows).toFixed(multi ? 2 : 1), intents_per_group: +(groups.intents / groups.groups).toFixed(1) }));
  process.exit(0);
}

// A dist dir may carry node flags after a '#': /path/dist#--max-semi-space-size=32
const dists = args;
const results = new Map(dists.map((d) => [d, []]));
for (let r = 0; r < rounds; r++) {
  for (const dist of r % 2 === 0 ? dists : [...dists].reverse()) {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    const [dir, flags = ''] = dist.split('#');
    const out = spawnSync(process.execPath, [...flags.split(' ').filter(Boolean), fileURLToPath(import.meta.url), '--seconds', String(seconds)], { env: { ...process.env, INPROC_CHILD: dir }, encoding: 'utf8' });
    const line = out.stdout.trim().split('\n').pop();
    if (out.status !== 0 || !line?.startsWith('{')) { console.log(dist, 'failed', out.stderr.slice(-2000)); process.exit(1); }
    const res = JSON.parse(line);
    results.get(dist).push(res);
    console.log(`round ${r} load ${load} ${dist}: ${res.rows_per_s} rows/s, ${res.us_per_row} µs/row (main ${res.main_us_per_row}), ${res.intents_per_group} intents/group`);
  }
}
for (const [dist, rs] of results) {
  const med = (k) => { const v = rs.map((x) => x[k]).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
  console.log(`${dist}: median ${med('rows_per_s')} rows/s, ${med('us_per_row')} µs/row, main ${med('main_us_per_row')}`);
}
