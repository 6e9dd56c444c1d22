/**
 * Access changes reach open live connections at once, against the real server over HTTP and
 * WebSocket: REVOKE, ALTER TABLE SET ACCESS_LEVEL, DROP TABLE, DROP NAMESPACE CASCADE and a role
 * downgrade end exactly the subscriptions that lost access, with an `error` carrying the
 * subscription id, before any row committed after the change; a password change closes the user's
 * connections and stops their old tokens; DROP USER closes their connections; frames sent right
 * after `open` (header auth) or right after `authenticate` are held until authentication completes.
 * Each test also checks that other users' and still-authorized subscriptions keep flowing.
 * Not covered here: the general live protocol (live.test.ts) and delivery guarantees
 * (live-guarantees.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, assertError } from './harness.js';
import { LiveClient, eventually, sleep, type WsMessage } from './ws-client.js';

type Creds = { user: string; password: string };

const isError = (id?: string) => (m: WsMessage): boolean => m.type === 'error' && (id === undefined || m.subscription_id === id);
const changeOf = (id: string) => (m: WsMessage): boolean => m.type === 'change' && m.subscription_id === id;
const idsOf = (messages: readonly WsMessage[]): string[] => messages.flatMap((m) => (m.rows ?? []).map((r) => String(r.id)));

/** An `error` message with the code, the subscription id and a message naming the table. */
function assertSubscriptionError(m: WsMessage, code: string, id: string, table: RegExp): void {
  const ctx = JSON.stringify(m);
  assert.equal(m.type, 'error', ctx);
  assert.equal(m.code, code, ctx);
  assert.equal(m.subscription_id, id, ctx);
  assert.match(m.message ?? '', table, ctx);
}

/** The connection is still usable: ping gets pong. */
async function assertAlive(c: LiveClient): Promise<void> {
  assert.ok(c.isOpen, `socket closed: ${JSON.stringify(c.closeInfo)}`);
  const pong = await c.request({ type: 'ping' }, (m) => m.type === 'pong' || m.type === 'error', 3_000);
  assert.deepEqual(pong, { type: 'pong' });
}

/** No change for `id` arrived after its error, and the error arrived. */
function assertNothingAfterError(c: LiveClient, id: string): void {
  const errorAt = c.messages.findIndex(isError(id));
  assert.ok(errorAt >= 0, `no error for ${id}`);
  assert.deepEqual(c.changes(id, errorAt), [], `changes for ${id} after its error`);
}

describe('live re-authorization', { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: Creds;
  let bob: Creds;
  let svc: Creds;
  const clients: LiveClient[] = [];
  const connect = async (auth: Creds | { token: string }): Promise<LiveClient> => {
    const c = await LiveClient.connect(server.url, auth);
    clients.push(c);
    return c;
  };
  const liveSubs = async (): Promise<string[]> =>
    (await server.rows('SELECT user_id, subscription_id FROM system.live')).map((r) => `${r.user_id}/${r.subscription_id}`).sort();

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
    svc = await server.createUser('svc', 'service');
    await server.ok('CREATE NAMESPACE ra');
    await server.ok("CREATE SHARED TABLE ra.pub (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.dispose();
  });

  describe('REVOKE', () => {
    before(async () => {
      await server.ok("CREATE SHARED TABLE ra.docs (id BIGINT PRIMARY KEY, body TEXT) WITH (ACCESS_LEVEL = 'RESTRICTED')");
    });

    it('ends the subscription with UNAUTHORIZED before the next row; the grantee next to it and the other subscriptions keep flowing', async () => {
      await server.ok("GRANT SELECT ON ra.docs TO 'alice'; GRANT SELECT ON ra.docs TO 'bob'");
      const a = await connect(alice);
      const b = await connect(bob);
      await a.subscribeOk('d', 'SELECT * FROM ra.docs');
      await a.subscribeOk('p', 'SELECT * FROM ra.pub');
      await b.subscribeOk('d', 'SELECT * FROM ra.docs');
      await server.ok("INSERT INTO ra.docs VALUES (1, 'before')", { auth: svc });
      await a.waitFor(changeOf('d'));
      // The row is committed by the same request, right after the REVOKE: it must not reach alice.
      await server.ok("REVOKE SELECT ON ra.docs FROM 'alice'; INSERT INTO ra.docs VALUES (2, 'after')");
      assertSubscriptionError(await a.waitFor(isError('d')), 'UNAUTHORIZED', 'd', /ra\.docs/);
      await server.ok("INSERT INTO ra.docs VALUES (3, 'later')", { auth: svc });
      await server.ok("INSERT INTO ra.pub VALUES (1, 'marker')", { auth: svc });
      // Changes reach a connection in commit order: once the later pub row is here, row 3 would have been too.
      await a.waitFor(changeOf('p'));
      assert.deepEqual(idsOf(a.changes('d')), ['1']);
      assertNothingAfterError(a, 'd');
      await b.waitForCount(changeOf('d'), 3);
      assert.deepEqual(idsOf(b.changes('d')), ['1', '2', '3']);
      assert.deepEqual(b.messages.filter(isError()), []);
      await assertAlive(a);
      const subs = await liveSubs();
      assert.ok(!subs.includes('alice/d') && subs.includes('alice/p') && subs.includes('bob/d'), subs.join());
      // Resubscribing is refused now, and the id is free for another table.
      assertSubscriptionError(await a.subscribe('d', 'SELECT * FROM ra.docs'), 'UNAUTHORIZED', 'd', /ra\.docs/);
      await a.subscribeOk('d', 'SELECT * FROM ra.pub');
    });

    it('under a concurrent writer, alice gets a prefix of bob\'s rows, nothing after her error, and no row written after the REVOKE returned', async () => {
      await server.ok("CREATE SHARED TABLE ra.feed (id BIGINT PRIMARY KEY) WITH (ACCESS_LEVEL = 'RESTRICTED')");
      await server.ok("GRANT SELECT ON ra.feed TO 'alice'; GRANT SELECT ON ra.feed TO 'bob'");
      const a = await connect(alice);
      const b = await connect(bob);
      await a.subscribeOk('f', 'SELECT * FROM ra.feed');
      await b.subscribeOk('f', 'SELECT * FROM ra.feed');
      let revoked = false;
      let written = 0;
      const afterRevoke: string[] = [];
      // Two writers, so commits keep landing while the REVOKE is applied; each stops 20 rows after it.
      const writer = async (first: number): Promise<void> => {
        for (let id = first, extra = 0; extra < 20; id += 2) {
          const started = revoked;
          await server.ok(`INSERT INTO ra.feed VALUES (${id})`, { auth: svc });
          written++;
          if (started) {
            afterRevoke.push(String(id));
            extra++;
          }
        }
      };
      const writers = Promise.all([writer(1), writer(2)]);
      await eventually('some rows before the REVOKE', async () => a.changes('f').length >= 20);
      await server.ok("REVOKE SELECT ON ra.feed FROM 'alice'");
      revoked = true;
      await writers;
      await b.waitForCount(changeOf('f'), written);
      await a.waitFor(isError('f'));
      assertNothingAfterError(a, 'f');
      const got = idsOf(a.changes('f'));
      const all = idsOf(b.changes('f'));
      assert.deepEqual(got, all.slice(0, got.length), 'alice\'s rows are a prefix of the commit order');
      assert.ok(got.length < all.length);
      for (const id of afterRevoke) assert.ok(!got.includes(id), `row ${id}, written after the REVOKE returned, reached alice`);
    });

    it('a subscription still loading its initial data ends too; its pending batches are gone', async () => {
      await server.ok("CREATE SHARED TABLE ra.many (id BIGINT PRIMARY KEY) WITH (ACCESS_LEVEL = 'RESTRICTED')");
      await server.ok('INSERT INTO ra.many VALUES (1), (2), (3), (4)');
      await server.ok("GRANT SELECT ON ra.many TO 'alice'");
      const a = await connect(alice);
      const mark = a.mark();
      const ack = await a.subscribeOk('m', 'SELECT * FROM ra.many', { batch_size: 1 });
      assert.equal(ack.batch_control?.has_more, true);
      await a.waitFor((m) => m.type === 'initial_data_batch' && m.subscription_id === 'm', 5_000, mark);
      await server.ok("REVOKE SELECT ON ra.many FROM 'alice'");
      assertSubscriptionError(await a.waitFor(isError('m')), 'UNAUTHORIZED', 'm', /ra\.many/);
      const next = await a.request({ type: 'next_batch', subscription_id: 'm' }, (m) => m.type === 'error' && m.code !== 'UNAUTHORIZED');
      assertSubscriptionError(next, 'NOT_FOUND', 'm', /m/);
      await server.ok('INSERT INTO ra.many VALUES (5)');
      assert.deepEqual(await a.collectFor(300, (m) => m.subscription_id === 'm' && m.type !== 'error'), []);
    });
  });

  it('ALTER TABLE SET ACCESS_LEVEL: subscribers who may no longer read end before the next row; those who still may keep flowing', async () => {
    await server.ok("CREATE SHARED TABLE ra.board (id BIGINT PRIMARY KEY, note TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("GRANT SELECT ON ra.board TO 'alice'");
    const a = await connect(alice);
    const b = await connect(bob);
    const s = await connect(svc);
    for (const c of [a, b, s]) await c.subscribeOk('b', 'SELECT * FROM ra.board');
    // RESTRICTED keeps alice (granted) and svc (service); bob loses access.
    await server.ok("ALTER TABLE ra.board SET ACCESS_LEVEL RESTRICTED; INSERT INTO ra.board VALUES (1, 'restricted')");
    assertSubscriptionError(await b.waitFor(isError('b')), 'UNAUTHORIZED', 'b', /ra\.board.*RESTRICTED/);
    await a.waitFor(changeOf('b'));
    // PRIVATE: alice's grant no longer helps; svc still reads.
    await server.ok("ALTER TABLE ra.board SET ACCESS_LEVEL PRIVATE; INSERT INTO ra.board VALUES (2, 'private')");
    assertSubscriptionError(await a.waitFor(isError('b')), 'UNAUTHORIZED', 'b', /ra\.board.*PRIVATE/);
    await s.waitForCount(changeOf('b'), 2);
    await server.ok("INSERT INTO ra.pub VALUES (10, 'marker')", { auth: svc });
    await a.subscribeOk('p', 'SELECT * FROM ra.pub', undefined);
    await server.ok("INSERT INTO ra.pub VALUES (11, 'marker')", { auth: svc });
    await a.waitFor(changeOf('p'));
    assert.deepEqual(idsOf(a.changes('b')), ['1']);
    assert.deepEqual(idsOf(b.changes('b')), []);
    assert.deepEqual(idsOf(s.changes('b')), ['1', '2']);
    assertNothingAfterError(a, 'b');
    assertNothingAfterError(b, 'b');
    assert.deepEqual(s.messages.filter(isError()), []);
    for (const c of [a, b, s]) await assertAlive(c);
    // Making it PUBLIC again does not bring an ended subscription back.
    await server.ok("ALTER TABLE ra.board SET ACCESS_LEVEL PUBLIC; INSERT INTO ra.board VALUES (3, 'public')");
    await s.waitForCount(changeOf('b'), 3);
    assert.deepEqual(await a.collectFor(300, changeOf('b')), []);
    const subs = await liveSubs();
    assert.ok(!subs.includes('alice/b') && !subs.includes('bob/b') && subs.includes('svc/b'), subs.join());
  });

  it('DROP TABLE and DROP NAMESPACE CASCADE end their subscriptions with NOT_FOUND; other tables keep flowing', async () => {
    await server.ok('CREATE NAMESPACE rd');
    await server.ok("CREATE SHARED TABLE rd.one (id BIGINT PRIMARY KEY) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("CREATE SHARED TABLE rd.two (id BIGINT PRIMARY KEY) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok('CREATE USER TABLE rd.mine (id BIGINT PRIMARY KEY)');
    const a = await connect(alice);
    await a.subscribeOk('one', 'SELECT * FROM rd.one');
    await a.subscribeOk('two', 'SELECT * FROM rd.two');
    await a.subscribeOk('mine', 'SELECT * FROM rd.mine');
    await a.subscribeOk('p', 'SELECT * FROM ra.pub');
    await server.ok('DROP TABLE rd.one');
    assertSubscriptionError(await a.waitFor(isError('one')), 'NOT_FOUND', 'one', /rd\.one.*dropped/);
    await server.ok('INSERT INTO rd.two VALUES (1)');
    await a.waitFor(changeOf('two'));
    assert.ok(!(await liveSubs()).includes('alice/one'));
    await server.ok('DROP NAMESPACE rd CASCADE');
    assertSubscriptionError(await a.waitFor(isError('two')), 'NOT_FOUND', 'two', /rd\.two/);
    assertSubscriptionError(await a.waitFor(isError('mine')), 'NOT_FOUND', 'mine', /rd\.mine/);
    await server.ok("INSERT INTO ra.pub VALUES (20, 'still')", { auth: svc });
    await a.waitFor(changeOf('p'));
    const subs = await liveSubs();
    assert.ok(!subs.includes('alice/one') && !subs.includes('alice/two') && !subs.includes('alice/mine') && subs.includes('alice/p'), subs.join());
    await assertAlive(a);
  });

  it('a role downgrade applies to the open connection at once: service → user ends PRIVATE subscriptions, and an upgrade back is seen too', async () => {
    const ops = await server.createUser('ops', 'service');
    await server.ok('CREATE SHARED TABLE ra.ops (id BIGINT PRIMARY KEY)');
    const o = await connect(ops);
    const s = await connect(svc);
    await o.subscribeOk('ops', 'SELECT * FROM ra.ops');
    await o.subscribeOk('p', 'SELECT * FROM ra.pub');
    await s.subscribeOk('ops', 'SELECT * FROM ra.ops');
    await server.ok('INSERT INTO ra.ops VALUES (1)');
    await o.waitFor(changeOf('ops'));
    await server.ok("ALTER USER 'ops' SET ROLE user; INSERT INTO ra.ops VALUES (2)");
    assertSubscriptionError(await o.waitFor(isError('ops')), 'UNAUTHORIZED', 'ops', /ra\.ops.*role user/);
    await s.waitForCount(changeOf('ops'), 2);
    await server.ok("INSERT INTO ra.pub VALUES (30, 'x')", { auth: svc });
    await o.waitFor(changeOf('p'));
    assert.deepEqual(idsOf(o.changes('ops')), ['1']);
    assertNothingAfterError(o, 'ops');
    // The connection runs as a user now: a new PRIVATE subscription is refused...
    assertSubscriptionError(await o.subscribe('ops2', 'SELECT * FROM ra.ops'), 'UNAUTHORIZED', 'ops2', /ra\.ops/);
    // ...and allowed again once the role is back (the role is re-read, not only lowered).
    await server.ok("ALTER USER 'ops' SET ROLE service");
    await o.subscribeOk('ops3', 'SELECT * FROM ra.ops');
    await assertAlive(o);
    assert.deepEqual(s.messages.filter(isError()), []);
  });

  it('a password change closes every connection of that user (4002) and stops old tokens; the changing request succeeds; others stay', async () => {
    const carol = await server.createUser('carol', 'user', 'carol-password-1');
    const { access_token, refresh_token } = await server.login('carol', carol.password);
    const byHeader = await connect(carol);
    const byToken = await connect({ token: access_token });
    const byMessage = await LiveClient.open(server.url);
    clients.push(byMessage);
    assert.equal((await byMessage.request({ type: 'authenticate', method: 'jwt', token: access_token }, (m) => m.type.startsWith('auth_'))).type, 'auth_success');
    await byHeader.subscribeOk('p', 'SELECT * FROM ra.pub');
    const other = await connect(alice);
    await other.subscribeOk('p', 'SELECT * FROM ra.pub');
    // Carol changes her own password over HTTP with the old one: that request itself succeeds.
    const [res] = await server.ok("ALTER USER 'carol' SET PASSWORD 'carol-password-2' OLD PASSWORD 'carol-password-1'", { auth: carol });
    assert.equal(res!.message, "User 'carol' updated successfully");
    for (const c of [byHeader, byToken, byMessage]) {
      assert.deepEqual(await c.waitClosed(3_000), { code: 4002, reason: 'password changed' });
    }
    await eventually('carol leaves system.live', async () => !(await liveSubs()).some((s) => s.startsWith('carol/')), 3_000);
    assertError(await server.sql('SELECT 1', { auth: { token: access_token } }), 401, 'INVALID_CREDENTIALS');
    assertError(await server.sql('SELECT 1', { auth: carol }), 401, 'INVALID_CREDENTIALS');
    const refresh = await server.fetch('/v1/api/auth/refresh', { method: 'POST', headers: { authorization: `Bearer ${refresh_token}` } });
    assert.equal(refresh.status, 401);
    const stale = await LiveClient.open(server.url);
    clients.push(stale);
    const m = await stale.request({ type: 'authenticate', method: 'jwt', token: access_token }, (x) => x.type.startsWith('auth_'));
    assert.equal(m.type, 'auth_error');
    const fresh = await connect({ user: 'carol', password: 'carol-password-2' });
    await assertAlive(fresh);
    await server.ok("INSERT INTO ra.pub VALUES (40, 'after the change')", { auth: svc });
    await other.waitFor(changeOf('p'));
    await assertAlive(other);
  });

  it('DROP USER closes that user\'s connections (4003) and removes their subscriptions; others stay', async () => {
    const temp = await server.createUser('tempuser');
    const t1 = await connect(temp);
    const t2 = await connect(temp);
    const a = await connect(alice);
    await t1.subscribeOk('p', 'SELECT * FROM ra.pub');
    await a.subscribeOk('p2', 'SELECT * FROM ra.pub');
    await server.ok("DROP USER 'tempuser'");
    for (const c of [t1, t2]) assert.deepEqual(await c.waitClosed(3_000), { code: 4003, reason: 'user dropped' });
    assert.ok(!(await liveSubs()).some((s) => s.startsWith('tempuser/')));
    await server.ok("INSERT INTO ra.pub VALUES (50, 'x')", { auth: svc });
    await a.waitFor(changeOf('p2'));
  });

  describe('frames sent before authentication completes are held, in order', () => {
    it('header auth with an uncached password: subscribe and ping sent on open get auth_success, the ack, the initial data and pong', async () => {
      // A user whose password was never verified: argon2 runs while the frames arrive.
      const erin = await server.createUser('erin');
      await server.ok("INSERT INTO ra.pub VALUES (60, 'initial')", { auth: svc });
      const c = await LiveClient.open(server.url, erin);
      clients.push(c);
      c.send({ type: 'subscribe', subscription: { id: 'e1', sql: 'SELECT * FROM ra.pub WHERE id = 60', options: { batch_size: 10 } } });
      c.send({ type: 'subscribe', subscription: { id: 'e2', sql: 'SELECT * FROM ra.pub WHERE id > 1000' } });
      // The same id again: refused as a duplicate only if the frame before it was handled first.
      c.send({ type: 'subscribe', subscription: { id: 'e2', sql: 'SELECT * FROM ra.pub' } });
      c.send({ type: 'ping' });
      const batch = await c.waitFor((m) => m.type === 'initial_data_batch' && m.subscription_id === 'e1', 5_000);
      assert.deepEqual(batch.rows!.map((r) => r.v), ['initial']);
      await c.waitFor((m) => m.type === 'pong', 5_000);
      // Replies to frames handled concurrently may interleave (e1 reads its initial data while the
      // rest is answered); what each frame gets, and the order per subscription, are fixed.
      const seen = c.messages.map((m) => `${m.type}${m.subscription_id !== undefined ? `:${m.subscription_id}` : ''}${m.code !== undefined ? `:${m.code}` : ''}`);
      assert.equal(seen[0], 'auth_success', seen.join());
      assert.deepEqual([...seen].sort(), ['auth_success', 'error:e2:INVALID_SUBSCRIPTION_ID', 'initial_data_batch:e1', 'pong', 'subscription_ack:e1', 'subscription_ack:e2'], seen.join());
      assert.ok(seen.indexOf('subscription_ack:e1') < seen.indexOf('initial_data_batch:e1'), seen.join());
      assert.ok(seen.indexOf('subscription_ack:e2') < seen.indexOf('error:e2:INVALID_SUBSCRIPTION_ID'), seen.join());
      await server.ok('INSERT INTO ra.pub VALUES (1001, \'live\')', { auth: svc });
      await c.waitFor(changeOf('e2'));
    });

    it('authenticate followed at once by subscribe: the subscribe waits for the authentication', async () => {
      const frank = await server.createUser('frank');
      const c = await LiveClient.open(server.url);
      clients.push(c);
      c.send({ type: 'authenticate', method: 'basic', username: frank.user, password: frank.password });
      c.send({ type: 'subscribe', subscription: { id: 'f1', sql: 'SELECT * FROM ra.pub' } });
      const reply = await c.waitFor((m) => m.subscription_id === 'f1');
      assert.equal(reply.type, 'subscription_ack', JSON.stringify(c.messages));
      assert.deepEqual(c.messages.map((m) => m.type), ['auth_success', 'subscription_ack']);
    });

    it('a failed header auth drops the held frames with the connection', async () => {
      const c = await LiveClient.open(server.url, { user: 'alice', password: 'not-alice-password' });
      clients.push(c);
      c.send({ type: 'subscribe', subscription: { id: 'x', sql: 'SELECT * FROM ra.pub' } });
      c.send({ type: 'ping' });
      const closed = await c.waitClosed(5_000);
      assert.equal(closed.code, 4001);
      await sleep(50);
      assert.deepEqual(c.messages.map((m) => m.type), ['auth_error']);
    });
  });
});
