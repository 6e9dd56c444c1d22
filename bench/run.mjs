// Benchmarks for the core server, printing one JSON document. Starts the real server as a child
// process (temp data dir, free port) and drives it over HTTP with keep-alive connections.
// Usage: npm run bench [-- --seconds 5]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'packages/server/dist/src/main.js');
const PASSWORD = 'bench-root-password';
const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 5;

async function startServer(dataDir) {
  const child = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dataDir], {
    env: { ...process.env, KALAMDB_ROOT_PASSWORD: PASSWORD, KALAMDB_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c.toString();
      const m = /"msg":"listening".*?"port":(\d+)/.exec(buf);
      if (m) { resolve(Number(m[1])); buf = ''; }
      if (buf.length > 1e6) buf = '';
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, port };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(port, path, body, headers) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString());
        if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${JSON.stringify(parsed)}`));
        else resolve(parsed);
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function latencyStats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x) => Math.round(x * 1000) / 1000;
  return { count: sorted.length, p50_ms: round(percentile(sorted, 50)), p99_ms: round(percentile(sorted, 99)), max_ms: round(sorted[sorted.length - 1]) };
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'kalamdb-bench-'));
  const { child, port } = await startServer(dataDir);
  const results = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, seconds_per_run: SECONDS };
  try {
    const login = await post(port, '/v1/api/auth/login', { user: 'root', password: PASSWORD }, {});
    const auth = { authorization: `Bearer ${login.access_token}` };
    const sql = (text, params) => post(port, '/v1/api/sql', params ? { sql: text, params } : { sql: text }, auth);
    await sql('CREATE NAMESPACE bench');
    await sql('CREATE SHARED TABLE bench.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT)');
    await sql('CREATE SHARED TABLE bench.multi (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT)');

    // 1. Single-row INSERT, 16 concurrent clients.
    {
      const concurrency = 16;
      let rows = 0;
      const latencies = [];
      const deadline = performance.now() + SECONDS * 1000;
      await Promise.all(Array.from({ length: concurrency }, async (_, c) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const t = performance.now();
          await sql('INSERT INTO bench.single (user_id, body, n) VALUES ($1, $2, $3)', [`u${c}`, `message ${i} from client ${c}`, i]);
          latencies.push(performance.now() - t);
          rows++;
        }
      }));
      results.insert_single_row_16_clients = { rows, rows_per_s: Math.round(rows / SECONDS), latency: latencyStats(latencies), target_rows_per_s: 8000 };
    }

    // 2. Multi-row INSERT, 1,000 rows per statement, 2 clients; statements are built before timing.
    {
      const statements = [];
      for (let b = 0; b < 400; b++) {
        const values = [];
        for (let i = 0; i < 1000; i++) { const id = b * 1000 + i; values.push(`(${id}, 'u${id % 100}', 'bulk body number ${id}', ${id % 1000})`); }
        statements.push(`INSERT INTO bench.multi (id, user_id, body, n) VALUES ${values.join(',')}`);
      }
      let rows = 0;
      let next = 0;
      const started = performance.now();
      const deadline = started + SECONDS * 1000;
      await Promise.all([0, 1].map(async () => {
        while (performance.now() < deadline && next < statements.length) {
          await sql(statements[next++]);
          rows += 1000;
        }
      }));
      const elapsed = (performance.now() - started) / 1000;
      results.insert_multi_row_1000 = { rows, clients: 2, rows_per_s: Math.round(rows / elapsed), target_rows_per_s: 150000 };
    }

    // 3. Primary-key point SELECT, one client.
    {
      const latencies = [];
      const deadline = performance.now() + SECONDS * 1000;
      for (let i = 0; performance.now() < deadline; i++) {
        const t = performance.now();
        const res = await sql('SELECT * FROM bench.multi WHERE id = $1', [i % 10000]);
        latencies.push(performance.now() - t);
        if (res.results[0].row_count !== 1) throw new Error('point select missed');
      }
      results.select_point_pk = { latency: latencyStats(latencies), target_p50_ms: 1 };
    }

    // 4. SELECT of 1,000 rows from a 10,000-row table.
    {
      await sql('CREATE SHARED TABLE bench.read1k (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT)');
      for (let b = 0; b < 10; b++) {
        const values = [];
        for (let i = 0; i < 1000; i++) { const id = b * 1000 + i; values.push(`(${id}, 'u${id % 100}', 'body ${id}', ${id % 1000})`); }
        await sql(`INSERT INTO bench.read1k VALUES ${values.join(',')}`);
      }
      const latencies = [];
      const deadline = performance.now() + SECONDS * 1000;
      while (performance.now() < deadline) {
        const t = performance.now();
        const res = await sql('SELECT * FROM bench.read1k WHERE n < 100 ORDER BY id LIMIT 1000');
        latencies.push(performance.now() - t);
        if (res.results[0].row_count !== 1000) throw new Error(`expected 1000 rows, got ${res.results[0].row_count}`);
      }
      results.select_1000_rows = { table_rows: 10000, latency: latencyStats(latencies) };
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
    agent.destroy();
  }
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
