/**
 * What one user's subscription filters may cost (an attack review, round 3):
 * - a filter's parse tree is capped (FILTER_NODES_MAX) and so is the sum over a user's subscriptions
 *   (FILTER_NODES_PER_USER_MAX): 187 subscriptions of a 24,000-term OR chain ran the server out of memory;
 * - all the LIKEs of one filter share one step budget per row: 4,000 LIKEs, each within its own
 *   budget, held the commit thread (and every request) for 47 s on one inserted row;
 * - initial-data reads of subscriptions that ended before their turn are not run: subscribe/unsubscribe
 *   pairs kept the server reading for minutes after the client left.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestServer } from './harness.js';
import { LiveClient, eventually } from './ws-client.js';
import { FILTER_NODES_MAX } from '../src/live/predicate.js';
import { FILTER_NODES_PER_USER_MAX } from '../src/live/session.js';
import { UserByteRate } from '../src/live/user-byte-rate.js';

describe('what a user\'s subscription filters may cost', () => {
  let server: TestServer;
  let bob: { user: string; password: string };
  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE app');
    await server.ok('CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT)');
    bob = await server.createUser('bob');
  });
  after(async () => {
    await server.dispose();
  });

  /** `id = 900000000 OR id = 900000001 ...`: 13 parse-tree nodes a term, plus the OR. */
  const orChain = (terms: number, base: number): string =>
    Array.from({ length: terms }, (_, i) => `id = ${base + i}`).join(' OR ');

  it('a filter over FILTER_NODES_MAX nodes is refused; a user\'s filters in all are capped; an unsubscribe gives its share back', async () => {
    const c = await LiveClient.connect(server.url, bob);
    try {
      const huge = await c.subscribe('huge', `SELECT * FROM app.notes WHERE ${orChain(Math.ceil(FILTER_NODES_MAX / 13), 1)}`);
      assert.equal(huge.type, 'error', JSON.stringify(huge).slice(0, 300));
      assert.equal(huge.code, 'INVALID_SQL');
      assert.match(String(huge.message), new RegExp(`at most ${FILTER_NODES_MAX} parse-tree nodes`));
      // Filters of ~80% of the cap: as many as fit in the user's total are served, the next is refused.
      const terms = Math.floor((FILTER_NODES_MAX * 0.8) / 14);
      const fit = Math.floor(FILTER_NODES_PER_USER_MAX / (terms * 14));
      let accepted = 0;
      let refused = false;
      for (let i = 0; i <= fit + 5 && !refused; i++) {
        const reply = await c.subscribe(`big${i}`, `SELECT * FROM app.notes WHERE ${orChain(terms, i * 100_000)}`);
        if (reply.type === 'subscription_ack') {
          accepted++;
          continue;
        }
        assert.equal(reply.code, 'SUBSCRIPTION_LIMIT_EXCEEDED', JSON.stringify(reply).slice(0, 300));
        assert.match(String(reply.message), new RegExp(`may have ${FILTER_NODES_PER_USER_MAX} parse-tree nodes in all`));
        refused = true;
      }
      assert.ok(refused && accepted >= fit - 1 && accepted <= fit + 2, `${accepted} of about ${fit} served, then refused: ${refused}`);
      assert.equal((await c.subscribe('small', 'SELECT * FROM app.notes WHERE id = 1')).type, 'subscription_ack', 'a small filter still fits');
      c.send({ type: 'unsubscribe', subscription_id: 'big0' });
      await eventually('the share of big0 to come back', async () =>
        (await c.subscribe(`again${Date.now()}`, `SELECT * FROM app.notes WHERE ${orChain(terms, 9_000_000)}`)).type === 'subscription_ack');
    } finally {
      c.terminate();
    }
  });

  it('the LIKEs of one filter share one budget per row: the filter fails on the row at once and its subscription ends', async () => {
    const c = await LiveClient.connect(server.url, bob);
    try {
      // 2,000 LIKEs needing ~2,000,000 steps each on a 100,000-character value: before, ~30 s of the commit thread.
      const likes = Array.from({ length: 2_000 }, () => "body LIKE '%aaaaaaaaaaaaaaaaaa_b'").join(' OR ');
      await c.subscribeOk('like', `SELECT id FROM app.notes WHERE ${likes}`);
      const from = c.mark();
      const started = performance.now();
      await server.ok("INSERT INTO app.notes VALUES (123, repeat('a', 100000))", { auth: bob });
      const ended = await c.waitFor((m) => m.subscription_id === 'like' && m.type === 'error', 20_000, from);
      assert.match(String(ended.message), /filter failed on a change: .*LIKE patterns need more than 2000000 steps on one row/);
      // Generous for a loaded machine: one budget is a few tens of milliseconds, 2,000 of them ~30 s.
      assert.ok(performance.now() - started < 10_000, `${Math.round(performance.now() - started)} ms`);
      assert.equal((await server.rows('SELECT count(*) AS n FROM app.notes', { auth: bob }))[0]!.n, '1');
    } finally {
      c.terminate();
    }
  });

  it('one user\'s filters share LIKE_STEPS_PER_USER_PER_SECOND: past it their subscriptions end, another user\'s go on', async () => {
    await server.ok('CREATE SHARED TABLE app.pub (id BIGINT PRIMARY KEY, body TEXT) WITH (ACCESS_LEVEL = \'PUBLIC\')');
    const carol = await server.createUser('carol');
    const c = await LiveClient.connect(server.url, bob);
    const other = await LiveClient.connect(server.url, carol);
    try {
      // ~1.1M steps each on the row below (under one filter's 2M): 30 distinct filters need ~34M, over 20M.
      for (let i = 0; i < 30; i++) await c.subscribeOk(`l${i}`, `SELECT id FROM app.pub WHERE id <> ${i} AND body LIKE '%aaaaaaaaaaaaaaaaaa_b'`);
      await other.subscribeOk('carol', "SELECT id FROM app.pub WHERE body LIKE '%aaaaaaaaaaaaaaaaaa_b'");
      const from = c.mark();
      await server.ok("INSERT INTO app.pub VALUES (1, repeat('a', 60000))");
      const ended = await c.waitFor((m) => m.type === 'error' && /LIKE steps a second/.test(String(m.message)), 20_000, from);
      assert.match(String(ended.message), /this user's subscription filters need more than 20000000 LIKE steps a second/);
      const endedCount = c.messages.slice(from).filter((m) => m.type === 'error').length;
      assert.ok(endedCount < 30, `${endedCount} of 30 ended: the first filters were served`);
      // carol's filter ran within her own budget: her subscription lives and sees the next row.
      const mark = other.mark();
      await server.ok("INSERT INTO app.pub VALUES (2, 'aaaaaaaaaaaaaaaaaaxb')");
      const row = await other.waitFor((m) => m.subscription_id === 'carol' && m.type === 'change', 10_000, mark);
      assert.equal(row.change_type, 'insert');
    } finally {
      c.terminate();
      other.terminate();
    }
  });

  it('one account may send 4 MiB of messages a second (bursts of 8 MiB) across its connections; past it they are refused as over the rate', async () => {
    const a = await LiveClient.connect(server.url, bob);
    const b = await LiveClient.connect(server.url, bob);
    try {
      const from = [a.mark(), b.mark()];
      const big = JSON.stringify({ type: 'ping', pad: 'x'.repeat(1_000_000) });
      // 1 MB each (under live_message_bytes_max), sent at once from two connections of one account: past
      // the burst of 8 MiB some are refused (the bucket refills 4 MiB a second while they arrive).
      for (let i = 0; i < 16; i++) (i % 2 === 0 ? a : b).send(big);
      const refused = await Promise.race([a, b].map((c, i) => c.waitFor((m) => m.subscription_id === 'rate_limit', 10_000, from[i])));
      assert.equal(refused.code, 'PROTOCOL');
      assert.match(String(refused.message), /Too many messages/);
      await new Promise((r) => setTimeout(r, 1_100));
      assert.equal((await a.request({ type: 'ping' }, (m) => m.type === 'pong')).type, 'pong', 'served again once the bucket refills');
    } finally {
      a.terminate();
      b.terminate();
    }
  });

  it('initial-data reads of subscriptions that ended while they waited are not run', async () => {
    await server.ok('CREATE SHARED TABLE app.big (id BIGINT PRIMARY KEY, body TEXT) WITH (ACCESS_LEVEL = \'PUBLIC\')');
    for (const at of [0, 100_000]) await server.ok(`INSERT INTO app.big SELECT i, repeat('abcdefgh', 40) || i FROM range(${at}, ${at + 100_000}) AS r(i)`);
    const c = await LiveClient.connect(server.url, bob);
    const cpuMs = (): number => {
      const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    };
    try {
      // Each read scans 200,000 rows for a substring no row has (tens of milliseconds).
      const sql = "SELECT * FROM app.big WHERE body LIKE '%zzz%'";
      await c.subscribeOk('warm', sql, { batch_size: 10 });
      const before = cpuMs();
      // 200 subscribe/unsubscribe pairs at once: a few reads start before their unsubscribe arrives, the rest are skipped.
      for (let i = 0; i < 200; i++) {
        c.send({ type: 'subscribe', subscription: { id: `x${i}`, sql, options: { batch_size: 10 } } });
        c.send({ type: 'unsubscribe', subscription_id: `x${i}` });
      }
      assert.equal((await c.subscribe('after', sql, { batch_size: 10 }, 60_000)).type, 'subscription_ack');
      const spent = cpuMs() - before;
      // Measured: 200 reads took 4.7 s of CPU, the few that start 0.2 s.
      assert.ok(spent < 2_000, `${spent} ms of server CPU for 200 subscriptions ended at once`);
    } finally {
      c.terminate();
    }
  });
});

describe('bytes of messages per account per second', () => {
  it('a bucket per account: refilled at the rate, up to the capacity; one account\'s flood leaves others alone', () => {
    let now = 0;
    const rate = new UserByteRate(1_000, 2_000, () => now);
    assert.ok(rate.take('bob', 2_000), 'a full bucket to begin with');
    assert.ok(!rate.take('bob', 1), 'then empty');
    assert.ok(rate.take('alice', 1_500), 'another account has its own');
    now += 500;
    assert.ok(rate.take('bob', 500) && !rate.take('bob', 1), 'half a second refills half the rate');
    now += 60_000;
    assert.ok(rate.take('bob', 2_000) && !rate.take('bob', 1), 'never more than the capacity');
  });
});
