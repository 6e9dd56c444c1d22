/**
 * The stream eviction sweep: twice a second, drops STREAM events past their table's TTL (reads
 * already hide them) and records one `stream_eviction` job row per table that lost events in that
 * sweep, not one per event.
 */
import type { Logger } from '../util/log.js';
import { StorageFullError } from '../util/errors.js';
import type { Services } from '../exec/context.js';

export const STREAM_SWEEP_MS = 500;

export async function evictStreamEvents(s: Services, log: Logger): Promise<void> {
  const started = performance.now();
  const evicted = s.streams.evictExpired();
  for (const [table, count] of evicted) {
    if (s.catalog.table(table.namespace, table.name) !== table) continue;
    // Disk full: the events are dropped all the same (memory only); only the job row is skipped.
    if (s.hot.health !== null && !s.hot.health.writable) continue;
    try {
      await s.jobs.recordCompleted({ job_type: 'stream_eviction', namespace_id: table.namespace, table_name: table.name, user_id: null, parameters: { ttl_seconds: table.options.ttlSeconds } },
        count, { rows: count, duration_ms: Math.round(performance.now() - started) });
    } catch (error) {
      // A full disk is logged once, when the storage state changes (twice a second otherwise).
      if (error instanceof StorageFullError) continue;
      log.error('stream eviction job row failed', { error: (error as Error).message });
    }
  }
}
