// The HTTP layer alone, in one process (decision 0026): the `createHttpServer` of two builds (this one and
// the dist given as KALAMDB_BENCH_MAIN_DIST, e.g. /work/main/packages/server/dist), each with stub
// dependencies (auth, executor answering an INSERT's result at once, a real Logger writing to a sink that
// drops lines, real Metrics), driven by the same 16-client keep-alive node:http load generator, in
// alternating slices. The process's CPU per request is compared: the load generator's share is the same for
// both, so the difference is the server side's. Alternating slices in one process cancel most machine noise.
//   KALAMDB_BENCH_MAIN_DIST=/work/main/packages/server/dist node bench/http-layer.mjs [seconds per slice] [rounds] [health|insert]
import http from 'node:http';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const seconds = Number(process.argv[2] ?? 1);
const rounds = Number(process.argv[3] ?? 10);
const op = process.argv[4] ?? 'insert';
const otherDist = process.env.KALAMDB_BENCH_MAIN_DIST;
if (otherDist === undefined) throw new Error('set KALAMDB_BENCH_MAIN_DIST to the "before" dist directory');
const ownDist = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages/server/dist');

async function start(label, dist) {
  const { createHttpServer } = await import(`${dist}/src/http/server.js`);
  const { createLogger } = await import(`${dist}/src/util/log.js`);
  const { Metrics } = await import(`${dist}/src/util/metrics.js`);
  const { defaults } = await import(`${dist}/src/config/config.js`);
  const config = { ...defaults };
  const log = createLogger('info', () => undefined, 'json');
  const http_ = createHttpServer(config, log);
  await new Promise((resolve) => http_.server.listen(0, '127.0.0.1', resolve));
  const principal = { id: 1, userId: 'root', role: 'system' };
  http_.serve({
    config, log, metrics: new Metrics(),
    auth: { fromHeader: async () => principal },
    executor: { execute: async () => [{ row_count: 1, message: 'Inserted 1 row(s)', as_user: 'root' }] },
    storage: { healthFields: () => ({}) },
    tokens: {}, catalog: {},
  });
  return { label, server: http_.server, port: http_.server.address().port, agent: new http.Agent({ keepAlive: true, maxSockets: 64 }) };
}

function request(side, i) {
  return new Promise((resolve, reject) => {
    const payload = op === 'insert'
      ? JSON.stringify({ sql: 'INSERT INTO vs.single (user_id, body, n) VALUES ($1, $2, $3)', params: [`u${i % 16}`, `message ${i} from client ${i % 16}`, i] })
      : undefined;
    const req = http.request({ host: '127.0.0.1', port: side.port, path: op === 'insert' ? '/v1/api/sql' : '/health', method: op === 'insert' ? 'POST' : 'GET', agent: side.agent,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${'x'.repeat(200)}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode} ${Buffer.concat(chunks)}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function slice(side) {
  let count = 0;
  let stop = false;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const timer = setTimeout(() => { stop = true; }, seconds * 1000);
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (!stop) {
      await request(side, count);
      count++;
    }
  }));
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpu0);
  return { us: (cpu.user + cpu.system) / count, rps: count / ((performance.now() - t0) / 1000) };
}

const sides = [await start('before', otherDist), await start('after', ownDist)];
for (const side of sides) await slice(side);
const results = { before: [], after: [] };
for (let round = 0; round < rounds; round++) {
  for (const side of round % 2 === 0 ? sides : [...sides].reverse()) results[side.label].push({ ...(await slice(side)), load: loadavg()[0] });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [label, runs] of Object.entries(results)) {
  const us = runs.map((r) => r.us);
  console.log(`${op} ${label.padEnd(6)} process µs/req (client + server) min ${Math.min(...us).toFixed(1)} median ${median(us).toFixed(1)}  req/s median ${Math.round(median(runs.map((r) => r.rps)))}  load ${runs[0].load.toFixed(1)}-${runs.at(-1).load.toFixed(1)}`);
}
for (const side of sides) {
  side.agent.destroy();
  side.server.closeAllConnections();
  side.server.close();
}
