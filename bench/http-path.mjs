// The HTTP layer alone, A/B (decision 0026): two servers side by side (this build and KALAMDB_BENCH_MAIN's),
// driven in alternating slices with the same 16-client keep-alive load generator as workload 1, reporting
// the server's CPU µs per request for requests that do almost nothing past HTTP and auth:
//   health:  GET /health
//   invalid: POST /v1/api/sql with a valid token and a body without `sql` (auth, JSON parse, the 400 envelope, log line)
//   insert:  workload 1's single-row INSERT (SHARED table)
//   KALAMDB_BENCH_MAIN=/other/dist/src/main.js node bench/http-path.mjs [seconds per slice] [rounds] [ops]
// Pairs of slices run back to back, so both servers see about the same machine load; the minimum and median
// over rounds are printed.
import http from 'node:http';
import { loadavg } from 'node:os';
import { startBenchServer, PASSWORD } from './lib.mjs';
import { drive } from './versus-pg.mjs';
import { treeCpuMicros } from './pg.mjs';

const seconds = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 4);
const ops = (process.argv[4] ?? 'health,invalid,insert').split(',');
const other = process.env.KALAMDB_BENCH_MAIN;
if (other === undefined) throw new Error('set KALAMDB_BENCH_MAIN to the "before" build');

async function start(label, main) {
  if (main === undefined) delete process.env.KALAMDB_BENCH_MAIN;
  else process.env.KALAMDB_BENCH_MAIN = main;
  const server = await startBenchServer();
  await server.sql('CREATE NAMESPACE IF NOT EXISTS vs');
  await server.sql("CREATE SHARED TABLE vs.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) WITH (FLUSH_POLICY = 'rows:100000000')");
  return { label, server, agent: new http.Agent({ keepAlive: true, maxSockets: 64 }) };
}

function request(side, method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: side.server.port, path, method, agent: side.agent,
      headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const sides = [await start('before', other), await start('after', undefined)];
for (const side of sides) {
  const login = await side.server.post('/v1/api/auth/login', { user: 'root', password: PASSWORD });
  side.auth = { authorization: `Bearer ${login.access_token}` };
}

const opsBy = {
  health: (side) => request(side, 'GET', '/health'),
  invalid: (side) => request(side, 'POST', '/v1/api/sql', { nope: 1 }, side.auth),
  insert: (side, c, i) => request(side, 'POST', '/v1/api/sql', { sql: 'INSERT INTO vs.single (user_id, body, n) VALUES ($1, $2, $3)', params: [`u${c}`, `message ${i} from client ${c}`, i] }, side.auth),
};
const results = {};
try {
  for (let round = 0; round < rounds; round++) {
    for (const op of ops) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        const r = await drive({
          clients: 16, seconds, warmup: 0.5, serverCpu: () => treeCpuMicros(side.server.pid),
          op: async (c, i) => { await opsBy[op](side, c, i); return 1; },
        });
        (results[`${op} ${side.label}`] ??= []).push({ us: r.server_cpu_us_per_row, rps: r.rows_per_s, load: Math.round(loadavg()[0] * 10) / 10 });
      }
    }
  }
} finally {
  for (const side of sides) {
    // Requests answered over the process's life (to divide a --cpu-prof profile by).
    const text = await new Promise((resolve) => http.get({ host: '127.0.0.1', port: side.server.port, path: '/metrics', agent: side.agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    }).on('error', () => resolve('')));
    const total = [...text.matchAll(/^kalamdb_http_requests_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    console.log(`${side.label}: pid ${side.server.pid}, ${total} requests answered`);
    await side.server.stop();
    side.agent.destroy();
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [key, runs] of Object.entries(results)) {
  const us = runs.map((r) => r.us);
  console.log(`${key.padEnd(16)} µs/req min ${Math.min(...us).toFixed(1).padStart(6)} median ${median(us).toFixed(1).padStart(6)}  req/s median ${Math.round(median(runs.map((r) => r.rps)))}  `
    + `runs ${runs.map((r) => `${r.us.toFixed(0)}@${r.load}`).join(' ')}`);
}
