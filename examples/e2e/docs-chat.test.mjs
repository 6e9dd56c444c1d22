// docs/building-a-chat.md stays runnable and in step with the example: its ```sql blocks run as root,
// in order, on a fresh server, and its schema block is examples/chat/schema.sql.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KalamProcess, REPO, ROOT_PASSWORD, freePort, stopAll, tempDir } from './helpers.mjs';

const doc = readFileSync(join(REPO, 'docs', 'building-a-chat.md'), 'utf8');
const blocks = [...doc.matchAll(/^```sql\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

after(() => stopAll());

test('the schema block of docs/building-a-chat.md is examples/chat/schema.sql', () => {
  assert.equal(blocks[0], readFileSync(join(REPO, 'examples', 'chat', 'schema.sql'), 'utf8'));
});

test('every sql block of docs/building-a-chat.md runs as root, in order, on a fresh server', { timeout: 120_000 }, async () => {
  assert.ok(blocks.length >= 8, `found ${blocks.length} sql blocks`);
  const db = new KalamProcess(await freePort(), tempDir('kalamdb-docs-chat-'));
  await db.start();
  for (const [i, sql] of blocks.entries()) {
    const res = await fetch(`${db.url}/v1/api/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` },
      body: JSON.stringify({ sql }),
    });
    const body = await res.json();
    assert.equal(body.status, 'success', `sql block ${i + 1} failed: ${JSON.stringify(body.error)}\n${sql}`);
  }
  // What the page says the draft statements show.
  assert.deepEqual(await db.rows("EXECUTE AS USER 'alice' (SELECT room, body FROM chat.drafts)"), [{ room: 'random', body: 'half a thought, finished' }]);
  assert.deepEqual(await db.rows("EXECUTE AS USER 'bob' (SELECT room, body FROM chat.drafts)"), []);
  assert.deepEqual((await db.rows("SELECT author, body FROM chat.messages")), [{ author: 'alice', body: 'hello, bob' }]);
  await db.stop();
});
