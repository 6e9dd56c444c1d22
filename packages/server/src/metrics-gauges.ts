/**
 * The /metrics figures read at scrape time from the subsystems that already keep them: live
 * connections, subscriptions and traffic (plain counters the sessions bump), running jobs, the
 * remote segment cache, RocksDB's and DuckDB's memory. Other counters and histograms of events are
 * fed where the events happen (util/metrics.ts).
 */
import type { Metrics } from './util/metrics.js';
import type { JobStore } from './jobs/job-store.js';
import type { SegmentCache } from './storage/storages/segment-cache.js';
import type { DuckEngine } from './storage/duck/duck-engine.js';
import type { LiveServer } from './ws/live-server.js';
import type { HotStore } from './storage/hot/hot-store.js';
import { rocksDbMemory } from './storage/hot/rocksdb-memory.js';

export interface GaugeSources {
  readonly live: LiveServer;
  readonly jobs: JobStore;
  readonly cache: SegmentCache;
  readonly hot: HotStore;
  readonly engines: { readonly query: DuckEngine; readonly files: DuckEngine };
}

export function registerGauges(metrics: Metrics, s: GaugeSources): void {
  metrics.gauge('kalamdb_live_connections', 'Open WebSocket connections', () => s.live.openConnections);
  metrics.gauge('kalamdb_live_subscriptions', 'Live subscriptions (system.live)', () => s.live.liveRows().length);
  const traffic = s.live.traffic;
  metrics.counter('kalamdb_live_messages_sent_total', 'Messages written to WebSocket clients (changes, initial-data batches, acks, errors, topic messages)', () => traffic.messages);
  metrics.counter('kalamdb_live_bytes_sent_total', 'Payload bytes of those messages (WebSocket frame headers not counted)', () => traffic.bytes);
  metrics.counter('kalamdb_live_slow_consumers_total', 'Connections closed with SLOW_CONSUMER: past live_buffered_bytes_max for longer than live_slow_consumer_grace_ms, or past a burst limit', () => traffic.slowConsumers);
  metrics.counter('kalamdb_live_messages_dropped_total', 'Messages not sent because their connection was over its unsent-bytes limits', () => traffic.droppedMessages);
  metrics.counter('kalamdb_live_stalls_total', 'Times a connection went past live_buffered_bytes_max (closed or caught up within live_slow_consumer_grace_ms)', () => traffic.stalls);
  metrics.gauge('kalamdb_live_incoming_bytes', 'Bytes of incoming WebSocket messages not yet complete, across all connections (limit: live_incoming_bytes_max)', () => s.live.incoming.bytes);
  metrics.gauge('kalamdb_live_burst_bytes', 'Unsent bytes all connections hold past live_buffered_bytes_max (limit: live_burst_bytes_total_max)', () => traffic.burstBytes);
  metrics.gauge('kalamdb_jobs_running', 'Jobs running, by type', () => {
    const counts = new Map<string, number>();
    for (const j of s.jobs.list()) if (j.status === 'running') counts.set(j.job_type, (counts.get(j.job_type) ?? 0) + 1);
    return [...counts].map(([job_type, n]) => [{ job_type }, n] as const);
  }, ['job_type']);
  metrics.gauge('kalamdb_remote_cache_bytes', 'Bytes of S3 segment files in the local cache', () => s.cache.bytes);
  const rocksMemory = readAtMostEverySecond(() => rocksDbMemory(s.hot.db));
  metrics.gauge('kalamdb_rocksdb_memory_bytes', 'Memory RocksDB reports holding, by kind (memtables, block_cache, block_cache_pinned: part of block_cache, table_readers)',
    async () => {
      const m = await rocksMemory();
      if (m === null) return [];
      return (['memtables', 'block_cache', 'block_cache_pinned', 'table_readers'] as const).map((kind) => [{ kind }, m[kind]] as const);
    }, ['kind']);
  metrics.gauge('kalamdb_rocksdb_block_cache_capacity_bytes', 'The block cache\'s capacity (the server sets none: RocksDB\'s default)', async () => (await rocksMemory())?.block_cache_capacity ?? 0);
  metrics.gauge('kalamdb_duckdb_memory_bytes', 'Memory held by DuckDB, by engine (query: user SQL and the hot mirror; files: flushes and segment reads)',
    async () => [
      [{ engine: 'query' }, await s.engines.query.memoryBytes()],
      [{ engine: 'files' }, await s.engines.files.memoryBytes()],
    ], ['engine']);
}

/** One scrape reads RocksDB's properties once for the two gauges built from them (ten property reads, not twenty). */
function readAtMostEverySecond<T>(read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    const now = Date.now();
    if (last === null || now - last.at >= 1000) last = { at: now, value: read() };
    return last.value;
  };
}
