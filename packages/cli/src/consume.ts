/**
 * `\consume ns.topic [group]`: tails a topic, one JSON line per message (partition, offset, op, key,
 * user, payload), until Ctrl-C. With a group it is a member of that group (a new group starts at the
 * latest message) and acknowledges each message after printing it. Without one it uses a one-off group
 * (`kalam-tail-` and random hex) that starts at the latest message: the server has no stateless read
 * by partition over HTTP, and a group that never acknowledged would be handed the same messages again
 * after the visibility timeout; so the one-off group acknowledges what was printed, and its positions
 * stay in system.topic_offsets.
 */
import type { KalamClient } from '@kalamdb/client';
import { reportError } from './run.js';

export function parseConsumeArgs(arg: string): { topic: string; group: string | null } | null {
  const words = arg.split(/\s+/).filter(Boolean).map((w) => w.replace(/^'(.*)'$|^"(.*)"$/, '$1$2'));
  if (words.length < 1 || words.length > 2 || !/^[^.\s]+\.[^.\s]+$/.test(words[0]!)) return null;
  return { topic: words[0]!, group: words[1] ?? null };
}

export async function consumeUntilInterrupt(client: KalamClient, topic: string, group: string | null, signal: AbortSignal): Promise<number> {
  const groupId = group ?? `kalam-tail-${Math.random().toString(16).slice(2, 10)}`;
  const consumer = client.consumer({
    topic, group: groupId, start: 'latest', timeoutSeconds: 2, signal, // short: a long-poll abandoned by Ctrl-C still claims what comes during it
    onStarted: (partitions) => {
      const plural = partitions.length === 1 ? '' : 's';
      process.stderr.write(`Consuming ${topic} (${partitions.length} partition${plural}) as ${group === null ? `one-off group ${groupId}` : `group ${groupId}`}; Ctrl-C to stop.\n`);
    },
    onError: (error, attempt) => { if (attempt === 1) process.stderr.write(`${error.message}; retrying\n`); },
  });
  try {
    await consumer.run(({ message }) => {
      process.stdout.write(JSON.stringify({
        partition: message.partition_id, offset: message.offset, op: message.op, key: message.key,
        ...(message.user !== undefined ? { user: message.user } : {}), payload: message.payload,
      }) + '\n');
    });
    return 0;
  } catch (error) {
    return reportError(error);
  }
}
