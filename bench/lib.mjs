// Shared benchmark helpers: start the real server as a child process and talk HTTP to it.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';

// KALAMDB_BENCH_MAIN runs another build of the server (e.g. a copy of the previous dist, to compare),
// unless a caller names one (bench/insert-ab.mjs). Read at each start (bench/http-path.mjs runs two builds side by side).
const DEFAULT_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages/server/dist/src/main.js');
export const PASSWORD = 'bench-root-password';

/** Starts the server; `toml` is extra configuration (e.g. raised limits for the fan-out runs); `main` another build's main.js. */
export async function startBenchServer(toml = '', main = process.env.KALAMDB_BENCH_MAIN ?? DEFAULT_MAIN) {
  const dataDir = mkdtempSync(join(tmpdir(), 'kalamdb-bench-'));
  const configPath = join(dataDir, 'bench.toml');
  // KALAMDB_BENCH_TOML: extra settings for every server a run starts (e.g. `query_timeout_ms = 120000`
  // on a machine so loaded that a 1M-row partition's first query, which loads its mirror, passes 30 s).
  writeFileSync(configPath, `${toml}\n${process.env.KALAMDB_BENCH_TOML ?? ''}\n`);
  // KALAMDB_BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server alone.
  const nodeArgs = (process.env.KALAMDB_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, main, '--port', '0', '--data-dir', dataDir, '--config', configPath], {
    env: { ...process.env, KALAMDB_ROOT_PASSWORD: PASSWORD, KALAMDB_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c) => {
      buf += c.toString();
      const m = /"msg":"listening".*?"port":(\d+)/.exec(buf);
      if (m) {
        // From here on the log (a line per request) is drained unread: scanning it here made the
        // client slower with every request and the benchmark measured its own log parsing.
        child.stdout.off('data', onData);
        // KALAMDB_BENCH_STDOUT=<file> keeps the server's output (e.g. with --trace-deopt in KALAMDB_BENCH_NODE_ARGS).
        if (process.env.KALAMDB_BENCH_STDOUT) child.stdout.pipe(createWriteStream(process.env.KALAMDB_BENCH_STDOUT));
        child.stdout.resume();
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (path, body, headers = {}) => {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const parsed = JSON.parse(Buffer.concat(chunks).toString());
          if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${JSON.stringify(parsed).slice(0, 500)}`));
          else resolve(parsed);
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  };
  const login = await post('/v1/api/auth/login', { user: 'root', password: PASSWORD });
  const auth = { authorization: `Bearer ${login.access_token}` };
  const sql = (text, params) => post('/v1/api/sql', params ? { sql: text, params } : { sql: text }, auth);
  // Resolves with the server's last log line ("stopped", with its commit-group counts), or null.
  const stop = async () => {
    let tail = '';
    const onTail = (c) => { tail = (tail + c.toString()).slice(-4096); };
    child.stdout.on('data', onTail);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    child.stdout.off('data', onTail);
    agent.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    const line = tail.split('\n').find((l) => l.includes('"msg":"stopped"'));
    return line === undefined ? null : JSON.parse(line);
  };
  return { sql, post, port, stop, dataDir, pid: child.pid };
}

export function machine() {
  return { cpus: cpus().length, node: process.version };
}

export function latencyStats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  const round = (x) => Math.round(x * 1000) / 1000;
  return { count: sorted.length, p50_ms: round(at(50)), p99_ms: round(at(99)), max_ms: round(sorted[sorted.length - 1]) };
}

/** Runs `fn` repeatedly for `seconds` (at least `minRuns` times) and returns latency stats. */
export async function timeRepeated(seconds, fn, minRuns = 20) {
  const samples = [];
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline || samples.length < minRuns) {
    const t = performance.now();
    await fn(samples.length);
    samples.push(performance.now() - t);
  }
  return latencyStats(samples);
}

/** Inserts rows built by `row(i)` for i in [from, to) in statements of `batch` rows, `clients` at a time. */
export async function bulkInsert(sql, table, columns, from, to, row, batch = 1000, clients = 2) {
  const statements = [];
  for (let start = from; start < to; start += batch) {
    const values = [];
    for (let i = start; i < Math.min(to, start + batch); i++) values.push(`(${row(i)})`);
    statements.push(`INSERT INTO ${table} (${columns}) VALUES ${values.join(',')}`);
  }
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < statements.length) await sql(statements[next++]);
  }));
}

/** Waits for a job (from a "Job ID: x" message) to finish; returns its system.jobs row as an object. */
export async function waitForJob(sql, message) {
  const id = /Job ID: (\S+)/.exec(message)?.[1];
  if (!id) throw new Error(`no job id in ${message}`);
  for (;;) {
    const res = await sql('SELECT status, rows_processed, result, error_message FROM system.jobs WHERE job_id = $1', [id]);
    const row = res.results[0].rows[0];
    if (row && row[0] !== 'running') {
      if (row[0] !== 'completed') throw new Error(`job ${id} ${row[0]}: ${row[3]}`);
      return { status: row[0], rows_processed: Number(row[1]), result: JSON.parse(row[2]) };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU ticks (10 ms, user + system) of a process's main thread and of all its other threads (libuv pool, V8 workers). */
export function threadTicks(pid) {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
      const ticks = Number(f[11]) + Number(f[12]);
      if (Number(tid) === pid) main += ticks;
      else other += ticks;
    } catch { /* thread ended */ }
  }
  return { main, other };
}
