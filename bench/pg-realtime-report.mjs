// Renders the JSON of `npm run bench -- --only pg-realtime` as the Markdown tables of docs/benchmarks.md:
//   node bench/run.mjs --only pg-realtime > run.json && node bench/pg-realtime-report.mjs run.json
import { readFileSync } from 'node:fs';
import { n, table as markdownTable } from './markdown.mjs';

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const v = r.versus_pg_realtime;
const lines = [];
const table = (head, rows) => markdownTable(lines, head, rows);

// Each workload's section only when the run had it (`--realtime-parts`).
const w = v.insert_to_notification_8_writers_50_subscribers;
const names = {
  ours: 'ours (SHARED table, 50 WebSockets)',
  pg_notify_sync_commit_on: 'PostgreSQL trigger + NOTIFY, sync commit on',
  pg_notify_sync_commit_off: 'PostgreSQL trigger + NOTIFY, sync commit off',
  pg_wal2json_sync_commit_on: 'PostgreSQL wal2json + fan-out process, sync commit on',
  pg_wal2json_sync_commit_off: 'PostgreSQL wal2json + fan-out process, sync commit off',
};
if (w) {
lines.push('#### 3. Insert→notification, 8 writers, 50 subscribers each receiving every row', '');
table(
  ['target', 'rows/s', 'notifications/s', 'lost', 'p50 ms', 'p99 ms', 'max ms', 'server CPU µs/notification', 'fan-out process CPU µs/notification', 'server cores', 'load generator CPU µs/notification', 'load generator cores'],
  Object.entries(w).filter(([k, x]) => names[k] && x.rows !== undefined).map(([k, x]) => [names[k], x.rows_per_s, x.notifications_per_s, x.lost,
    x.latency.p50_ms, x.latency.p99_ms, x.latency.max_ms, x.server_cpu_us_per_notification, x.fanout_process_cpu_us_per_notification ?? '',
    x.server_cpu_cores, x.loadgen_cpu_us_per_notification, x.loadgen_cpu_cores]),
);
table(
  ['ours / …', 'p50', 'p99', 'server CPU per notification', 'notifications/s'],
  Object.entries(w.ratios_ours_vs).filter(([, x]) => x).map(([k, x]) => [names[k], x.p50, x.p99, x.server_cpu_per_notification, x.notifications_per_s]),
);
for (const [k, x] of Object.entries(w)) if (x?.skipped) lines.push(`- ${k}: skipped: ${x.skipped}`, '');
}

const s = v.stream_100_subscribers;
if (s) {
lines.push('#### 8. STREAM table, 100 subscribers (ours only)', '');
table(
  ['offered events/s', 'events/s', 'deliveries/s', 'delivered / expected', 'p50 ms', 'p99 ms', 'max ms', 'server CPU µs/event', 'server cores', 'load generator cores', 'RSS MB, first → last second'],
  [[s.target_events_per_s, s.events_per_s, s.deliveries_per_s, `${n(s.delivered)} / ${n(s.expected)}`, s.latency.p50_ms, s.latency.p99_ms, s.latency.max_ms,
    s.server_cpu_us_per_event, s.server_cpu_cores, s.loadgen_cpu_cores, `${s.rss_mb_per_second[0]} → ${s.rss_mb_per_second.at(-1)}`]],
);
if (s.latency_p99_ms_per_second) lines.push(`p99 per second after the ${s.warmup_s ?? 1} s warm-up (ms): ${s.latency_p99_ms_per_second.join(', ')}`, '');
if (s.cold_start) lines.push(`Cold start (the warm-up's events, a fresh server at full load): p50 ${s.cold_start.latency.p50_ms} ms, p99 ${s.cold_start.latency.p99_ms} ms, max ${s.cold_start.latency.max_ms} ms; p99 per second: ${s.cold_start.latency_p99_ms_per_second.join(', ')}`, '');
}

const m = v.idle_memory;
if (m) {
lines.push('#### 9. Memory per idle connection and per idle subscription', '');
table(
  ['target', 'connections', 'subscriptions', 'RSS KB/connection', 'PSS KB/connection', 'RSS KB/subscription', 'PSS KB/connection with its subscriptions'],
  [
    ['ours', m.ours.connections, m.ours.subscriptions, m.ours.rss_kb_per_connection, m.ours.pss_kb_per_connection, m.ours.rss_kb_per_subscription, m.ours.pss_kb_per_connection_with_its_subscriptions],
    ['PostgreSQL, idle connection after LISTEN', m.pg_listen.connections, '', m.pg_listen.rss_kb_per_connection, m.pg_listen.pss_kb_per_connection, '', m.pg_listen.pss_kb_per_connection],
  ],
);
}
process.stdout.write(lines.join('\n'));
