// Renders the JSON of `npm run bench -- --only pg` as the Markdown tables of docs/benchmarks.md:
//   node bench/run.mjs --only pg > run.json && node bench/pg-report.mjs run.json
import { readFileSync } from 'node:fs';
import { n, table as markdownTable } from './markdown.mjs';

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const v = r.versus_pg;
const lines = [];
const table = (head, rows) => markdownTable(lines, head, rows);
const names = {
  ours_shared: 'ours, SHARED table', ours_user: 'ours, USER table',
  pg_sync_commit_on: 'PostgreSQL, synchronous_commit=on', pg_sync_commit_off: 'PostgreSQL, synchronous_commit=off',
};
const writes = (w) => table(
  ['target', 'rows/s', 'p50 ms', 'p99 ms', 'max ms', 'server CPU µs/op', 'server CPU µs/row', 'server cores', 'load generator CPU µs/op', 'load generator cores'],
  Object.entries(w).filter(([k]) => names[k]).map(([k, x]) => [names[k], x.rows_per_s, x.latency.p50_ms, x.latency.p99_ms, x.latency.max_ms,
    x.server_cpu_us_per_op, x.server_cpu_us_per_row, x.server_cpu_cores, x.loadgen_cpu_us_per_op, x.loadgen_cpu_cores]),
);
const ratioRows = (label, rt) => [
  [`${label} / PostgreSQL sync on`, rt.vs_sync_commit_on.rows_per_s, rt.vs_sync_commit_on.p50, rt.vs_sync_commit_on.p99, rt.vs_sync_commit_on.server_cpu_per_row],
  [`${label} / PostgreSQL sync off`, rt.vs_sync_commit_off.rows_per_s, rt.vs_sync_commit_off.p50, rt.vs_sync_commit_off.p99, rt.vs_sync_commit_off.server_cpu_per_row],
];
const ratioHead = ['ratio', 'rows/s', 'p50', 'p99', 'server CPU per row'];

lines.push('### 1. Single-row INSERT, 16 clients', '');
const s = v.insert_single_row_16_clients;
writes(s);
table(ratioHead, [...ratioRows('ours SHARED', s.ratios_ours_shared), ...ratioRows('ours USER', s.ratios_ours_user)]);
lines.push('### 2. 1,000-row INSERT statements, 4 clients', '');
const m = v.insert_1000_rows_4_clients;
writes(m);
table(ratioHead, ratioRows('ours SHARED', m.ratios));
const q = v.queries;
lines.push(`### 6. Queries on ${n(q.rows)} rows (one client, sequential)`, '');
lines.push(`Load: ours ${n(q.ours_load_ms)} ms (1,000-row INSERTs, 4 clients), PostgreSQL ${n(q.pg_load_ms)} ms (INSERT ... SELECT generate_series + VACUUM ANALYZE); ours flush of the table: ${n(q.ours_flush.rows)} rows in ${n(q.ours_flush.wall_ms)} ms.`, '');
const qrows = [];
for (const [name, x] of Object.entries(q.results)) {
  for (const [k, label] of [['ours_hot', 'ours hot'], ['ours_cold', 'ours cold (after flush)'], ['ours_mixed', 'ours mixed (half flushed)'], ['pg', 'PostgreSQL']]) {
    const y = x[k];
    if (!y) continue;
    qrows.push([`${name}`, label, y.latency.count, y.latency.p50_ms, y.latency.p99_ms, y.latency.max_ms, y.server_cpu_us_per_query, y.loadgen_cpu_us_per_query]);
  }
  const tiers = (o) => [o.hot_over_pg, o.cold_over_pg, o.mixed_over_pg].filter((z) => z !== undefined).join('; ');
  qrows.push([name, `**ours / PostgreSQL** (hot; cold${x.ratios_p50.mixed_over_pg !== undefined ? '; mixed' : ''})`, '', tiers(x.ratios_p50), '', '',
    tiers(x.ratios_server_cpu), '']);
}
table(['query', 'target', 'runs', 'p50 ms', 'p99 ms', 'max ms', 'server CPU µs/query', 'load generator CPU µs/query'], qrows);
for (const [name, text] of Object.entries(q.queries)) lines.push(`- ${name}: \`${text}\``);
process.stdout.write(lines.join('\n') + '\n');
