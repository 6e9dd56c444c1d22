/**
 * The topic retention sweep: once a second, removes messages older than their topic's
 * retention_seconds or beyond its retention_max_bytes (per partition, oldest first) and records one
 * `topic_retention` job per topic that lost messages in that sweep.
 */
import type { Logger } from '../util/log.js';
import { StorageFullError } from '../util/errors.js';
import type { Services } from '../exec/context.js';

export const TOPIC_SWEEP_MS = 1000;

export async function sweepTopicRetention(s: Services, log: Logger): Promise<void> {
  if (s.hot.health !== null && !s.hot.health.writable) return;
  const started = performance.now();
  try {
    const removed = await s.topics.sweepRetention(Date.now());
    for (const [topic, count] of removed) {
      const def = s.topics.get(topic);
      const [namespace, ...rest] = topic.split('.');
      await s.jobs.recordCompleted({
        job_type: 'topic_retention', namespace_id: namespace ?? null, table_name: rest.join('.'), user_id: null,
        parameters: { topic_id: topic, retention_seconds: def?.retentionSeconds ?? null, retention_max_bytes: def?.retentionMaxBytes ?? null },
      }, count, { messages: count, duration_ms: Math.round(performance.now() - started) });
    }
  } catch (error) {
    if (error instanceof StorageFullError) return;
    log.error('topic retention sweep failed', { error: (error as Error).message });
  }
}
