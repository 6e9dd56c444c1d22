/**
 * system.stats: (metric_name, metric_value) rows in upstream's style (plain snake_case names):
 * upstream's runtime figures this server has, then the /metrics figures read from the same
 * prom-client registry a scrape reads, so the two never disagree. Built when a query reads it.
 */
import type { StoredValue } from '../catalog/types.js';
import type { SystemSources } from './system-tables.js';
import type { Metrics } from '../util/metrics.js';

/** A /metrics series as a system.stats row: the family, the series inside it, the labels to match (matching series are summed). */
interface FromMetric {
  readonly stat: string;
  readonly family: string;
  /** The series name inside the family (histograms: `<family>_count` or `_sum`); the family itself by default. */
  readonly series?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

const FROM_METRICS: readonly FromMetric[] = [
  { stat: 'http_requests', family: 'kalamdb_http_requests_total' },
  { stat: 'statements', family: 'kalamdb_statement_duration_seconds', series: 'kalamdb_statement_duration_seconds_count' },
  { stat: 'statements_failed', family: 'kalamdb_statement_duration_seconds', series: 'kalamdb_statement_duration_seconds_count', labels: { outcome: 'error' } },
  { stat: 'commit_groups', family: 'kalamdb_commit_group_intents', series: 'kalamdb_commit_group_intents_count' },
  { stat: 'commit_intents', family: 'kalamdb_commit_group_intents', series: 'kalamdb_commit_group_intents_sum' },
  { stat: 'wal_syncs', family: 'kalamdb_wal_syncs_total' },
  { stat: 'active_connections', family: 'kalamdb_live_connections' },
  { stat: 'live_messages_sent', family: 'kalamdb_live_messages_sent_total' },
  { stat: 'live_bytes_sent', family: 'kalamdb_live_bytes_sent_total' },
  { stat: 'live_slow_consumers_closed', family: 'kalamdb_live_slow_consumers_total' },
  { stat: 'live_messages_dropped', family: 'kalamdb_live_messages_dropped_total' },
  { stat: 'flush_jobs_completed', family: 'kalamdb_job_duration_seconds', series: 'kalamdb_job_duration_seconds_count', labels: { job_type: 'flush', status: 'completed' } },
  { stat: 'flush_rows', family: 'kalamdb_job_rows_total', labels: { job_type: 'flush', status: 'completed' } },
  { stat: 'flush_seconds', family: 'kalamdb_job_duration_seconds', series: 'kalamdb_job_duration_seconds_sum', labels: { job_type: 'flush', status: 'completed' } },
  { stat: 'compaction_jobs_completed', family: 'kalamdb_job_duration_seconds', series: 'kalamdb_job_duration_seconds_count', labels: { job_type: 'compaction', status: 'completed' } },
  { stat: 'compaction_rows', family: 'kalamdb_job_rows_total', labels: { job_type: 'compaction', status: 'completed' } },
  { stat: 'compaction_seconds', family: 'kalamdb_job_duration_seconds', series: 'kalamdb_job_duration_seconds_sum', labels: { job_type: 'compaction', status: 'completed' } },
  { stat: 'rocksdb_memtables_bytes', family: 'kalamdb_rocksdb_memory_bytes', labels: { kind: 'memtables' } },
  { stat: 'rocksdb_block_cache_bytes', family: 'kalamdb_rocksdb_memory_bytes', labels: { kind: 'block_cache' } },
  { stat: 'rocksdb_block_cache_pinned_bytes', family: 'kalamdb_rocksdb_memory_bytes', labels: { kind: 'block_cache_pinned' } },
  { stat: 'rocksdb_table_readers_bytes', family: 'kalamdb_rocksdb_memory_bytes', labels: { kind: 'table_readers' } },
  { stat: 'rocksdb_block_cache_capacity_bytes', family: 'kalamdb_rocksdb_block_cache_capacity_bytes' },
  { stat: 'duckdb_query_memory_bytes', family: 'kalamdb_duckdb_memory_bytes', labels: { engine: 'query' } },
  { stat: 'duckdb_files_memory_bytes', family: 'kalamdb_duckdb_memory_bytes', labels: { engine: 'files' } },
  { stat: 'remote_cache_bytes', family: 'kalamdb_remote_cache_bytes' },
  { stat: 'event_loop_lag_seconds', family: 'kalamdb_nodejs_eventloop_lag_seconds' },
];

export async function statsRows(s: SystemSources, metrics: Metrics | undefined): Promise<StoredValue[][]> {
  const rows = runtimeStats(s);
  if (metrics === undefined) return rows;
  const values = await metrics.values();
  for (const m of FROM_METRICS) {
    const family = values.find((f) => f.name === m.family);
    if (family === undefined) continue;
    const series = m.series ?? m.family;
    let total = 0;
    for (const v of family.values as readonly { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      if ((v.metricName ?? family.name) !== series) continue;
      if (Object.entries(m.labels ?? {}).every(([k, want]) => String(v.labels[k]) === want)) total += v.value;
    }
    rows.push([m.stat, String(total)]);
  }
  return rows;
}

/** Upstream's runtime figures this server has (kalamdb-core metrics/runtime.rs). */
function runtimeStats(s: SystemSources): StoredValue[][] {
  const jobs = s.jobs.list();
  const mem = process.memoryUsage();
  const stats: Array<[string, string | number]> = [
    ['server_uptime_seconds', Math.floor(process.uptime())],
    ['server_workers_effective', s.config?.queryConnections ?? 1],
    ['max_connections', 'unlimited'],
    ['total_users', s.catalog.listUsers().filter((u) => u.deletedAt === null).length],
    ['total_namespaces', s.catalog.listNamespaces().length],
    ['total_tables', s.catalog.tablesIn(null).length],
    ['total_jobs', jobs.length],
    ['jobs_running', jobs.filter((j) => j.status === 'running').length],
    ['jobs_queued', jobs.filter((j) => j.status === 'queued').length],
    ['jobs_failed', jobs.filter((j) => j.status === 'failed').length],
    ['active_subscriptions', s.live?.liveRows().length ?? 0],
    ['memory_rss_bytes', mem.rss],
    ['memory_heap_used_bytes', mem.heapUsed],
    // Memory outside V8's heap: RocksDB, DuckDB, buffers (RSS less the heap V8 reserved).
    ['memory_native_bytes', Math.max(0, mem.rss - mem.heapTotal)],
    ['cluster_mode', 'false'],
  ];
  return stats.map(([name, value]) => [name, String(value)]);
}
