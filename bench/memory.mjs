// Issue 15's memory target: the server's resident memory with 1,000,000 hot rows in one partition
// (≤ 1 GB). One fresh server per table kind (a SHARED table; a USER table, all rows in root's
// partition), rows as workload 6's (bench/versus-pg.mjs) and never flushed. Memory is read from /proc
// (RSS, and PSS, which splits shared pages) after the load, after workload 6's three queries (the first
// query loads the partition's hot mirror), and after an idle wait; the JS heap comes from system.stats.
// With --memory-mirror-first the partition is queried once while empty, so the mirror exists during the load.
// The queries' latencies and server CPU are reported too, so a memory change that costs query time shows.
import { bulkInsert, latencyStats } from './lib.mjs';
import { memKb, treeCpuMicros } from './pg.mjs';
import { QUERIES } from './versus-pg.mjs';

const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** RSS and PSS in MiB, and the server's JS heap (system.stats), at one moment. */
async function snapshot(server) {
  const { rss, pss } = memKb(server.pid);
  const stats = await server.sql("SELECT metric_name, metric_value FROM system.stats WHERE metric_name = 'memory_heap_used_bytes'");
  const heap = Number(stats.results[0].rows[0]?.[1] ?? 0);
  return { rss_mib: round(rss / 1024), pss_mib: round(pss / 1024), js_heap_used_mib: round(heap / 2 ** 20) };
}

/** `fn` sequentially for `seconds` (at least `minRuns`): latency and server CPU per run. */
async function timed(server, seconds, fn, minRuns = 5) {
  await fn(0);
  const samples = [];
  const cpu0 = treeCpuMicros(server.pid);
  const deadline = performance.now() + seconds * 1000;
  for (let i = 1; performance.now() < deadline || samples.length < minRuns; i++) {
    const t = performance.now();
    await fn(i);
    samples.push(performance.now() - t);
  }
  return { latency: latencyStats(samples), server_cpu_us_per_query: round((treeCpuMicros(server.pid) - cpu0) / samples.length) };
}

/**
 * One table kind on a fresh server (`server` from startBenchServer): load `rows` rows, run the
 * queries for `seconds` each, idle for `idleSeconds`.
 */
export async function benchMemory(server, { kind, rows, seconds, idleSeconds, mirrorFirst = false }) {
  const { sql } = server;
  const table = `mem.t_${kind}`;
  const out = { kind, rows, mirror_first: mirrorFirst, at_start: await snapshot(server) };
  await sql('CREATE NAMESPACE IF NOT EXISTS mem');
  await sql(`CREATE ${kind === 'user' ? 'USER' : 'SHARED'} TABLE ${table} (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) ${NO_FLUSH}`);
  // mirrorFirst: the partition is queried while empty, so its mirror exists and collects every insert
  // until the next query (the rows arrive as pending changes instead of by the first load's scan).
  if (mirrorFirst) await sql(QUERIES.group_by.text(table));
  const t = performance.now();
  const cpu0 = treeCpuMicros(server.pid);
  await bulkInsert(sql, table, 'id, user_id, body, n, score', 0, rows,
    (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`, 1000, 4);
  out.load_ms = Math.round(performance.now() - t);
  out.load_server_cpu_us_per_row = round((treeCpuMicros(server.pid) - cpu0) / rows, 2);
  out.after_load = await snapshot(server);
  const first = performance.now();
  await sql(QUERIES.group_by.text(table)); // loads the hot mirror
  out.first_query_ms = Math.round(performance.now() - first);
  out.queries = {};
  for (const [name, query] of Object.entries(QUERIES)) {
    out.queries[name] = await timed(server, seconds, async (i) => {
      const res = await sql(query.text(table), query.params(i, rows));
      const expect = query.expect(i, rows);
      if (res.results[0].row_count !== expect) throw new Error(`${name}: expected ${expect} rows, got ${res.results[0].row_count}`);
    });
  }
  out.after_queries = await snapshot(server);
  // Peak over the run (VmHWM): what the machine had to have.
  out.peak_rss_mib = round(Number(/VmHWM:\s+(\d+)/.exec((await import('node:fs')).readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
  await sleep(idleSeconds * 1000);
  out.after_idle = { seconds: idleSeconds, ...(await snapshot(server)) };
  out.target_rss_mib = 1024;
  out.met = out.after_queries.rss_mib <= 1024 && out.after_idle.rss_mib <= 1024;
  return out;
}
