// The agent example against a real KalamDB: the agent (examples/agent/agent.mjs) runs as its own
// process, as `node examples/agent/agent.mjs` would; posts are written by two users; every post must get
// exactly one summary, in its writer's partition, across a graceful restart of the agent (the group's
// position persists: nothing is handled twice or missed) and a kill -9 in the middle of a burst (the
// unacknowledged batch comes back after the visibility timeout; the idempotent write keeps one summary).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@kalamdb/client';
import { KalamProcess, REPO, ROOT_PASSWORD, freePort, outputDir, stopProcess, tempDir, waitFor } from './helpers.mjs';
import { AGENT, WRITERS, setup } from '../agent/setup.mjs';
import { MODEL, summarize } from '../agent/model.mjs';

const out = outputDir('agent');
const AGENT_MAIN = join(REPO, 'examples', 'agent', 'agent.mjs');
let db;
/** Every agent process started, with its output. */
const agents = [];
const clients = {};
let posted = 0;

function startAgent() {
  const output = [];
  const child = spawn(process.execPath, [AGENT_MAIN, '--url', db.url], {
    env: { ...process.env, AGENT_USER: AGENT.user, AGENT_PASSWORD: AGENT.password, AGENT_POLL_SECONDS: '1', AGENT_BATCH_SIZE: '8', AGENT_THINK_MS: '40' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk) => output.push(chunk.toString()));
  const agent = { child, output, text: () => output.join('') };
  agents.push(agent);
  return agent;
}

const bodyOf = (k, writer) => `Post number ${k} by ${writer} talks about topics and agents. It has a second sentence that the summary leaves out.`;

/** Writes n posts as `writer`, one INSERT each. */
async function post(writer, n) {
  for (let i = 0; i < n; i++) {
    const k = ++posted;
    await clients[writer].query('INSERT INTO blog.posts (title, body) VALUES ($1, $2)', [`Post ${k}`, bodyOf(k, writer)]);
  }
}

/** Writes n posts as `writer` in one INSERT (one commit: the agent gets them in one batch). */
async function postMany(writer, n) {
  const ks = Array.from({ length: n }, () => ++posted);
  await clients[writer].query(`INSERT INTO blog.posts (title, body) VALUES ${ks.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ')}`,
    ks.flatMap((k) => [`Post ${k}`, bodyOf(k, writer)]));
}

const summaries = async (writer) => clients[writer].queryRows('SELECT post_id, summary, keywords, model, source_offset FROM blog.summaries');
const posts = async (writer) => clients[writer].queryRows('SELECT id, body FROM blog.posts');
const summaryCount = async () => (await summaries('alice')).length + (await summaries('bob')).length;
/** The offsets the agents' logs say they summarized (skips are reported separately). */
const summarizedOffsets = (agentList) => agentList.flatMap((a) => [...a.text().matchAll(/^summarized post \S+ of \S+ \(offset (\d+)\)/gm)].map((m) => Number(m[1])));
const skippedOffsets = (agent) => [...agent.text().matchAll(/^skipped post \S+ of \S+ \(offset (\d+)\)/gm)].map((m) => Number(m[1]));
/**
 * An agent prints its line after its INSERT is answered, so the test can see a summary row before the
 * line reaches it through the agent's stdout: wait (a few seconds at most) for the lines too. What the
 * lines must then say is asserted after, so a line that never comes fails with the assertion's message.
 */
async function linesCaughtUp(done) {
  const until = Date.now() + 5_000;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

describe('agent example', { timeout: 240_000 }, () => {
  before(async () => {
    // A short visibility timeout, so the batch of the killed agent comes back within seconds (default 60 s).
    process.env.KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS = '2';
    db = new KalamProcess(await freePort(), tempDir('kalamdb-agent-e2e-'));
    await db.start();
    const root = createClient({ url: db.url, auth: { user: 'root', password: ROOT_PASSWORD } });
    await setup((statement) => root.query(statement));
    await setup((statement) => root.query(statement)); // a second run (a restart of the example) changes nothing
    await root.disconnect();
    for (const w of WRITERS) clients[w.user] = createClient({ url: db.url, auth: w });
  });

  after(async () => {
    writeFileSync(join(out, 'agents.log'), agents.map((a, i) => `--- agent ${i + 1}\n${a.text()}`).join('\n'));
    if (db) writeFileSync(join(out, 'kalamdb.log'), db.output.join(''));
    for (const a of agents) await stopProcess(a.child, 'SIGKILL');
    for (const c of Object.values(clients)) await c.disconnect();
    await db?.stop();
    console.log(`# logs: ${out}`);
  });

  test('summaries appear for each post, once, in the writer\'s partition', async () => {
    const first = startAgent();
    await post('alice', 3);
    await post('bob', 3);
    await waitFor('6 summaries', async () => (await summaryCount()) === 6, 30_000, 200);
    await linesCaughtUp(() => summarizedOffsets([first]).length >= 6);
    for (const writer of ['alice', 'bob']) {
      const mine = await posts(writer);
      const done = await summaries(writer);
      assert.deepEqual(done.map((s) => s.post_id).sort(), mine.map((p) => p.id).sort(), `${writer}'s summaries are in ${writer}'s partition`);
      for (const s of done) {
        const body = mine.find((p) => p.id === s.post_id).body;
        const expected = summarize(body);
        assert.equal(s.summary, expected.summary);
        assert.equal(s.keywords, expected.keywords.join(', '));
        assert.equal(s.model, MODEL);
      }
    }
    assert.match(first.text(), /summarized post \S+ of alice \(offset 0\)/);
    assert.match(first.text(), /of bob \(offset 3\)/);
  });

  test('a graceful restart of the agent: nothing summarized twice, nothing missed', async () => {
    const [first] = agents;
    // Posts keep coming while the agent stops, is down, and starts again.
    const writing = post('alice', 4);
    await stopProcess(first.child, 'SIGTERM');
    await waitFor('the agent to say it stopped', async () => /agent: stopped/.test(first.text()), 5_000, 50);
    await writing;
    await post('bob', 3);
    const second = startAgent();
    await waitFor('13 summaries', async () => (await summaryCount()) === 13, 30_000, 200);
    await linesCaughtUp(() => summarizedOffsets([first, second]).length >= 13);
    const offsets = summarizedOffsets([first, second]).sort((a, b) => a - b);
    assert.deepEqual(offsets, Array.from({ length: 13 }, (_, i) => i), 'each message handled exactly once across both agents');
    assert.doesNotMatch(first.text() + second.text(), /^skipped/m, 'no redelivery after a graceful stop');
    await waitFor('the group position at 12', async () => {
      const [row] = await db.rows("SELECT last_acked_offset FROM system.topic_offsets WHERE topic_id = 'blog.summarizer' AND group_id = 'blog-summarizer'");
      return Number(row?.last_acked_offset) === 12;
    }, 15_000, 200);
  });

  test('kill -9 during a burst: the unacknowledged batch comes back, still one summary per post', async () => {
    const second = agents[1];
    await postMany('alice', 6);
    await postMany('bob', 6);
    // Killed in the middle of a batch: some of it summarized, none of it acknowledged.
    await waitFor('the agent working on the burst', async () => summarizedOffsets([second]).some((o) => o >= 13), 30_000, 5);
    await stopProcess(second.child, 'SIGKILL');
    const before = summarizedOffsets([second]).filter((o) => o >= 13);
    assert.ok(before.length >= 1 && before.length < 12, `killed mid-burst (${before.length} of 12 done)`);
    // Started at once: the new run is another group member, its ACKs do not cover the killed run's
    // batch, which comes back to it after the visibility timeout (2 s here).
    const third = startAgent();
    await waitFor('25 summaries', async () => (await summaryCount()) === 25, 60_000, 200);
    await linesCaughtUp(() => new Set([...summarizedOffsets(agents), ...skippedOffsets(third)]).size >= 25);
    for (const writer of ['alice', 'bob']) {
      const mine = (await posts(writer)).map((p) => p.id).sort();
      const done = (await summaries(writer)).map((s) => s.post_id).sort();
      assert.deepEqual(done, mine, `every post of ${writer} has exactly one summary`);
    }
    const all = [...await summaries('alice'), ...await summaries('bob')].map((s) => Number(s.source_offset)).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 25 }, (_, i) => i), 'one summary per message offset');
    // Whatever the killed agent had handled but not acknowledged was delivered again and skipped.
    const handled = [...summarizedOffsets(agents), ...skippedOffsets(third)];
    assert.deepEqual([...new Set(handled)].sort((a, b) => a - b), all, 'every offset handled, none lost');
    assert.match(third.text(), /^skipped post \S+ of \S+ \(offset 13\): summarized before$/m, 'the unacknowledged batch came back');
    const written = summarizedOffsets(agents);
    assert.equal(new Set(written).size, written.length, 'no message summarized twice');
    await stopProcess(third.child, 'SIGTERM');
  });
});
