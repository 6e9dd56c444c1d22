// The summarizer agent: a consumer-group member of the topic blog.summarizer. Each message is a new row
// of blog.posts (payload 'full': the row, plus `user`, the writer, since blog.posts is a USER table).
// For each one it asks the model (model.mjs) for a summary and writes it into blog.summaries in the
// writer's own partition with EXECUTE AS USER; then it acknowledges the batch, so the group's position
// (system.topic_offsets) moves on and survives restarts of the agent and of KalamDB.
//
//   node examples/agent/agent.mjs --url http://localhost:8080 --user blog_agent --password blog-agent-demo-1
//   (or KALAMDB_URL, AGENT_USER, AGENT_PASSWORD; AGENT_GROUP, AGENT_POLL_SECONDS, AGENT_BATCH_SIZE, and
//   AGENT_THINK_MS: a pause per post standing in for a real model's latency)
//
// npm run example:agent (serve.mjs) sets everything up and runs this loop in its own process.
//
// Delivery is at least once: a batch is acknowledged after it was handled, so an agent killed in between
// has the batch delivered again (after the server's visibility timeout). Handling is idempotent
// (blog.summaries is keyed by post_id), so a post is still summarized exactly once.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createClient, KalamError } from '@kalamdb/client';
import { MODEL, summarize } from './model.mjs';

export const TOPIC = 'blog.summarizer';
export const GROUP = 'blog-summarizer';

/** EXECUTE AS USER takes the name as a literal, not a parameter: quote it. */
const literal = (text) => `'${String(text).replaceAll("'", "''")}'`;
const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

/**
 * Handles one message: summarizes the post and stores the summary in its writer's partition.
 * Returns 'summarized', or 'skipped' for a post summarized before (a message delivered again).
 */
export async function handleMessage(client, message, log = console.log, thinkMs = 0) {
  const post = message.payload;
  if (thinkMs > 0) await sleep(thinkMs); // a real model takes its time
  const { summary, keywords } = summarize(post.body);
  try {
    await client.query(
      `EXECUTE AS USER ${literal(message.user)} (INSERT INTO blog.summaries (post_id, summary, keywords, model, source_offset) VALUES ($1, $2, $3, $4, $5))`,
      [post.id, summary, keywords.join(', '), MODEL, message.offset]);
  } catch (error) {
    if (error instanceof KalamError && /duplicate primary key/i.test(error.message)) {
      log(`skipped post ${post.id} of ${message.user} (offset ${message.offset}): summarized before`);
      return 'skipped';
    }
    throw error;
  }
  log(`summarized post ${post.id} of ${message.user} (offset ${message.offset}): ${summary} [${keywords.join(', ')}]`);
  return 'summarized';
}

/**
 * Runs the agent until `signal` aborts: a member of the consumer group, through the SDK's consumer
 * (long-polling HTTP; `transport: 'websocket'` would have the server push instead). Each message is
 * handled once its predecessors are; the consumer acknowledges handled messages after each batch, and
 * retries a failing handler with backoff (KalamDB restarting is the usual cause) before giving up.
 * Every run is its own member (the SDK sends a fresh member_id), so a new run never acknowledges a
 * batch a crashed run still holds: that batch comes back after the visibility timeout.
 */
export async function runAgent({ client, topic = TOPIC, group = GROUP, batchSize = 20, pollSeconds = 10, thinkMs = 0, signal, log = console.log }) {
  log(`agent: consuming ${topic} as group ${group}`);
  const consumer = client.consumer({
    topic, group, start: 'earliest', batchSize, timeoutSeconds: pollSeconds, autoAck: true, signal,
    retry: { maxAttempts: 30, initialBackoffMs: 250, maxBackoffMs: 2_000 },
    onError: (error, attempt) => log(`agent: ${error.code} ${error.message}; retrying (attempt ${attempt})`),
  });
  await consumer.run(({ message, attempt }) => {
    if (attempt > 1) log(`agent: attempt ${attempt} for offset ${message.offset}`);
    return handleMessage(client, message, log, thinkMs);
  });
  log('agent: stopped');
}

// Run as a program.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { url: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' }, group: { type: 'string' } },
  });
  const url = values.url ?? process.env.KALAMDB_URL ?? 'http://localhost:8080';
  const user = values.user ?? process.env.AGENT_USER ?? 'blog_agent';
  const password = values.password ?? process.env.AGENT_PASSWORD ?? 'blog-agent-demo-1';
  const client = createClient({ url, auth: { user, password } });
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  await runAgent({
    client,
    group: values.group ?? process.env.AGENT_GROUP ?? GROUP,
    pollSeconds: Number(process.env.AGENT_POLL_SECONDS ?? 10),
    batchSize: Number(process.env.AGENT_BATCH_SIZE ?? 20),
    thinkMs: Number(process.env.AGENT_THINK_MS ?? 0),
    signal: controller.signal,
  });
  await client.disconnect();
}
