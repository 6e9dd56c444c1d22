// The client SDK's own CPU per query (issue 15): `@kalamdb/client`'s `client.query(sql, params)` next to
// a bare node:http keep-alive client doing the same POST /v1/api/sql (lib.mjs's: JSON.stringify the body,
// JSON.parse the answer), in µs of this process's CPU (process.cpuUsage) per query, for a point query
// and a 1,000-row result. One query in flight at a time; the two clients alternate in rounds so the
// machine's other load falls on both alike. The server's CPU per query is reported for reference.
// KALAMDB_BENCH_SDK runs another build of the SDK (a path to its dist/src/index.js), to compare.
const { createClient } = await import(process.env.KALAMDB_BENCH_SDK ?? '../packages/client/dist/src/index.js');
import { bulkInsert, latencyStats } from './lib.mjs';
import { treeCpuMicros } from './pg.mjs';

const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

const CASES = {
  point: { sql: 'SELECT * FROM sdk.t WHERE id = $1', params: (i) => [(i * 7919) % 10_000], rows: 1 },
  rows_1000: { sql: 'SELECT * FROM sdk.t WHERE n < 100 ORDER BY id LIMIT 1000', params: () => undefined, rows: 1000 },
};

/** `runs` sequential queries through `call`; client CPU, server CPU and latency. */
async function measure(server, call, runs) {
  const latencies = [];
  const cpu0 = process.cpuUsage();
  const server0 = treeCpuMicros(server.pid);
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await call(i);
    latencies.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  return { client_us: cpu.user + cpu.system, server_us: treeCpuMicros(server.pid) - server0, latencies };
}

export async function benchSdk(server, { rounds = 6, seconds = 5 } = {}) {
  const { sql } = server;
  await sql('CREATE NAMESPACE IF NOT EXISTS sdk');
  await sql("CREATE SHARED TABLE sdk.t (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) WITH (FLUSH_POLICY = 'rows:100000000')");
  await bulkInsert(sql, 'sdk.t', 'id, user_id, body, n, score', 0, 10_000,
    (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`);
  const client = createClient({ url: `http://127.0.0.1:${server.port}`, auth: { user: 'root', password: 'bench-root-password' } });
  const clients = {
    sdk: (c) => async (i) => {
      const res = await client.query(c.sql, c.params(i));
      if (res.results[0].row_count !== c.rows) throw new Error(`sdk: expected ${c.rows} rows`);
    },
    bare_http: (c) => async (i) => {
      const res = await sql(c.sql, c.params(i));
      if (res.results[0].row_count !== c.rows) throw new Error(`bare: expected ${c.rows} rows`);
    },
  };
  const out = {};
  for (const [name, c] of Object.entries(CASES)) {
    // Calibrate: how many runs make about seconds / rounds / 2 per client and round.
    for (const make of Object.values(clients)) await measure(server, make(c), 50);
    const probe = await measure(server, clients.bare_http(c), 50);
    const perRun = probe.latencies.reduce((a, b) => a + b, 0) / 50;
    const runs = Math.max(50, Math.round((seconds * 1000) / rounds / 2 / perRun));
    const totals = Object.fromEntries(Object.keys(clients).map((k) => [k, { client_us: 0, server_us: 0, latencies: [], runs: 0 }]));
    for (let r = 0; r < rounds; r++) {
      for (const [k, make] of r % 2 === 0 ? Object.entries(clients) : Object.entries(clients).reverse()) {
        const m = await measure(server, make(c), runs);
        totals[k].client_us += m.client_us; totals[k].server_us += m.server_us; totals[k].latencies.push(...m.latencies); totals[k].runs += runs;
      }
    }
    out[name] = Object.fromEntries(Object.entries(totals).map(([k, t]) => [k, {
      queries: t.runs, client_cpu_us_per_query: round(t.client_us / t.runs), server_cpu_us_per_query: round(t.server_us / t.runs),
      latency: latencyStats(t.latencies),
    }]));
    out[name].sdk_over_bare_client_cpu = round(out[name].sdk.client_cpu_us_per_query / out[name].bare_http.client_cpu_us_per_query, 2);
  }
  await client.disconnect();
  return out;
}
