/**
 * The /metrics gauges read at scrape time from the subsystems that already keep the figures: live
 * connections and subscriptions, running jobs, the remote segment cache, DuckDB's memory. Counters
 * and histograms of events are fed where the events happen (util/metrics.ts).
 */
import type { Metrics } from './util/metrics.js';
import type { JobStore } from './jobs/job-store.js';
import type { SegmentCache } from './storage/storages/segment-cache.js';
import type { DuckEngine } from './storage/duck/duck-engine.js';
import type { LiveServer } from './ws/live-server.js';

export interface GaugeSources {
  readonly live: LiveServer;
  readonly jobs: JobStore;
  readonly cache: SegmentCache;
  readonly engines: { readonly query: DuckEngine; readonly files: DuckEngine };
}

export function registerGauges(metrics: Metrics, s: GaugeSources): void {
  metrics.gauge('kalamdb_live_connections', 'Open WebSocket connections', () => s.live.openConnections);
  metrics.gauge('kalamdb_live_subscriptions', 'Live subscriptions (system.live)', () => s.live.liveRows().length);
  metrics.gauge('kalamdb_jobs_running', 'Jobs running, by type', () => {
    const counts = new Map<string, number>();
    for (const j of s.jobs.list()) if (j.status === 'running') counts.set(j.job_type, (counts.get(j.job_type) ?? 0) + 1);
    return [...counts].map(([job_type, n]) => [{ job_type }, n] as const);
  }, ['job_type']);
  metrics.gauge('kalamdb_remote_cache_bytes', 'Bytes of S3 segment files in the local cache', () => s.cache.bytes);
  metrics.gauge('kalamdb_duckdb_memory_bytes', 'Memory held by DuckDB, by engine (query: user SQL and the hot mirror; files: flushes and segment reads)',
    async () => [
      [{ engine: 'query' }, await s.engines.query.memoryBytes()],
      [{ engine: 'files' }, await s.engines.files.memoryBytes()],
    ], ['engine']);
}
