/**
 * What upstream KalamDB's own clients (the TypeScript SDK over its WASM link crate, the Rust link
 * crate and CLI) send and expect, checked against the real server:
 * - an access token past its expiry is 401 TOKEN_EXPIRED (the code upstream's clients refresh and
 *   retry on), while a forged or tampered one stays INVALID_CREDENTIALS;
 * - `_seq` values written as JSON numbers past 2^53 (SeqId serializes as an i64 number) in
 *   `options.from` and `next_batch.last_seq_id`, and i64 `params` sent as JSON numbers, are exact;
 * - `options.from_seq_id` is `from`; `from` together with `last_rows` resumes (`from` wins);
 * - a subscription_ack carries the first batch's batch_control, so a client that takes its
 *   last_seq_id as the resume point and drops mid-load resumes without a gap, and a resume ack's
 *   last_seq_id does not run ahead of the resumed changes that follow it;
 * - GET /v1/api/auth/me, POST /v1/api/auth/logout and GET /v1/api/auth/status answer as upstream;
 * - a multipart (file upload) request gets a clear 400.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ROOT_PASSWORD, TestServer, assertError, authHeader, type Auth, type SqlResponse } from './harness.js';
import { LiveClient, type WsMessage } from './ws-client.js';

const ROOT: Auth = { user: 'root', password: ROOT_PASSWORD };
const BIG = '9007199254740993'; // 2^53 + 1: a JSON number JSON.parse would round to ...992

describe('upstream client conformance', () => {
  let server: TestServer;
  let alice: Auth;
  const clients: LiveClient[] = [];

  const connect = async (auth: Auth): Promise<LiveClient> => {
    const c = await LiveClient.connect(server.url, auth);
    clients.push(c);
    return c;
  };
  /** POST /v1/api/sql with a body written by hand (JSON numbers as the client wrote them). */
  const rawSql = async (body: string, auth: Auth = ROOT): Promise<{ status: number; body: SqlResponse }> => {
    const res = await server.fetch('/v1/api/sql', { method: 'POST', headers: { 'content-type': 'application/json', ...authHeader(auth) }, body });
    return { status: res.status, body: (await res.json()) as SqlResponse };
  };
  /** A token signed with the server's own secret: claims of a real token, `exp` moved into the past. */
  const expiredCopy = async (token: string, tamper = false): Promise<string> => {
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const secret = tamper ? 'not-the-server-secret' : readFileSync(join(server.dataDir, 'jwt-secret'), 'utf8').trim();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...claims, iat: now - 7200, exp: now - 60 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  };
  const changesOf = (c: LiveClient, id: string, from = 0): WsMessage[] => c.changes(id, from).filter((m) => m.change_type !== 'flush');
  const idsOf = (messages: WsMessage[]): string[] => messages.flatMap((m) => (m.change_type === 'delete' ? m.old_values : m.rows) ?? []).map((r) => String(r.id));

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('conf_alice');
    await server.ok('CREATE NAMESPACE conf');
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.dispose();
  });

  describe('tokens', () => {
    it('an expired access token is 401 TOKEN_EXPIRED on /v1/api/sql; a tampered one stays INVALID_CREDENTIALS', async () => {
      const { access_token } = await server.login('conf_alice', 'conf_alice-password-1');
      const expired = await expiredCopy(access_token);
      assertError(await server.sql('SELECT 1', { auth: { token: expired } }), 401, 'TOKEN_EXPIRED');
      // Upstream's clients find the code in the JSON body of the 401 (QueryResponse.is_token_expired).
      const res = await server.fetch('/v1/api/sql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${expired}` }, body: '{"sql":"SELECT 1"}' });
      const body = (await res.json()) as SqlResponse;
      assert.equal(res.status, 401);
      assert.deepEqual({ status: body.status, results: body.results, code: body.error?.code }, { status: 'error', results: [], code: 'TOKEN_EXPIRED' });
      // Signed with another key: not this server's token, so not "expired".
      assertError(await server.sql('SELECT 1', { auth: { token: await expiredCopy(access_token, true) } }), 401, 'INVALID_CREDENTIALS');
      // The fresh token still works.
      assert.equal((await server.sql('SELECT 1', { auth: { token: access_token } })).status, 200);
    });

    it('an expired refresh token is refused by /v1/api/auth/refresh (401 unauthorized); an expired token fails WS authentication', async () => {
      const { access_token, refresh_token } = await server.login('conf_alice', 'conf_alice-password-1');
      const refreshed = await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${await expiredCopy(refresh_token)}` });
      assert.equal(refreshed.status, 401, refreshed.text);
      assert.equal((refreshed.json as { error: string }).error, 'unauthorized');
      const c = await LiveClient.open(server.url);
      clients.push(c);
      try {
        c.send({ type: 'authenticate', method: 'jwt', token: await expiredCopy(access_token), protocol: { serialization: 'json', compression: 'gzip' } });
        const reply = await c.waitFor((m) => m.type === 'auth_success' || m.type === 'auth_error');
        assert.equal(reply.type, 'auth_error', JSON.stringify(reply));
        await c.waitClosed(5_000);
      } finally {
        c.terminate();
      }
    });
  });

  describe('HTTP routes', () => {
    it('GET /v1/api/auth/me answers the caller as login does: {user, admin_ui_access}', async () => {
      const { access_token } = await server.login('conf_alice', 'conf_alice-password-1');
      const res = await server.fetch('/v1/api/auth/me', { headers: { authorization: `Bearer ${access_token}` } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { user: Record<string, unknown>; admin_ui_access: unknown };
      assert.deepEqual(Object.keys(body).sort(), ['admin_ui_access', 'user']);
      assert.deepEqual(Object.keys(body.user).sort(), ['created_at', 'email', 'id', 'role', 'updated_at']);
      assert.equal(body.user.id, 'conf_alice');
      assert.equal(body.user.role, 'user');
      assert.equal(body.admin_ui_access, false);
      assert.ok(!Number.isNaN(Date.parse(String(body.user.created_at))));
      const rootMe = await server.fetch('/v1/api/auth/me', { headers: authHeader(ROOT) });
      assert.equal(((await rootMe.json()) as { admin_ui_access: unknown }).admin_ui_access, true);
      const anonymous = await server.fetch('/v1/api/auth/me');
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { error: string }).error, 'unauthorized');
      const expired = await server.fetch('/v1/api/auth/me', { headers: { authorization: `Bearer ${await expiredCopy(access_token)}` } });
      assert.equal(expired.status, 401);
    });

    it('POST /v1/api/auth/logout answers {"message":"Logged out successfully"}; GET /v1/api/auth/status says no setup is needed', async () => {
      const logout = await server.post('/v1/api/auth/logout', '');
      assert.equal(logout.status, 200, logout.text);
      assert.deepEqual(logout.json, { message: 'Logged out successfully' });
      const status = await server.fetch('/v1/api/auth/status');
      assert.equal(status.status, 200);
      const body = (await status.json()) as { needs_setup: unknown; message: unknown };
      assert.equal(body.needs_setup, false);
      assert.equal(typeof body.message, 'string');
    });

    it('a multipart/form-data request (upstream file upload) is a 400 that says so', async () => {
      const form = new FormData();
      form.append('sql', 'SELECT 1');
      form.append('file:avatar', new Blob(['abc']), 'avatar.png');
      const res = await server.fetch('/v1/api/sql', { method: 'POST', headers: authHeader(ROOT), body: form });
      assertError({ status: res.status, body: (await res.json()) as SqlResponse }, 400, 'INVALID_INPUT', /multipart/);
    });
  });

  describe('64-bit integers written as JSON numbers', () => {
    it('params past 2^53 are bound exactly: INSERT, a primary-key lookup, a DuckDB query, a JSON column', async () => {
      await server.ok("CREATE SHARED TABLE conf.big (id BIGINT PRIMARY KEY, doc JSON, note TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
      const insert = await rawSql(`{"sql":"INSERT INTO conf.big (id, doc, note) VALUES ($1, $2, $3)","params":[${BIG}, {"n": 12345678901234567890, "s": "12345678901234567890", "f": 1.5}, "id ${BIG}"]}`);
      assert.equal(insert.status, 200, JSON.stringify(insert.body));
      const byKey = await rawSql(`{"sql":"SELECT id, doc, note FROM conf.big WHERE id = $1","params":[${BIG}]}`);
      assert.equal(byKey.status, 200, JSON.stringify(byKey.body));
      assert.deepEqual(byKey.body.results[0]!.rows, [[BIG, '{"n":12345678901234567890,"s":"12345678901234567890","f":1.5}', `id ${BIG}`]]);
      // Rounded to a double, $1 would be 2^53 and the row would match: only an exact bind excludes it.
      const after = await rawSql(`{"sql":"SELECT id FROM conf.big WHERE id > $1","params":[${BIG}]}`);
      assert.equal(after.status, 200, JSON.stringify(after.body));
      assert.deepEqual(after.body.results[0]!.rows, []);
      const range = await rawSql('{"sql":"SELECT id FROM conf.big WHERE id > $1 AND id < $2","params":[-9223372036854775808, 9007199254740995]}');
      assert.equal(range.status, 200, JSON.stringify(range.body));
      assert.deepEqual(range.body.results[0]!.rows, [[BIG]]);
      const echo = await rawSql('{"sql":"SELECT $1 AS a, $2 AS b","params":[9223372036854775807, 1.25]}');
      assert.equal(echo.status, 200, JSON.stringify(echo.body));
      assert.deepEqual(echo.body.results[0]!.rows, [['9223372036854775807', 1.25]]);
    });
  });

  describe('live queries as upstream clients drive them', () => {
    /** A table of `n` rows inserted one statement each (so each has its own, increasing _seq). */
    const seed = async (table: string, n: number): Promise<void> => {
      await server.ok(`CREATE SHARED TABLE conf.${table} (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')`);
      for (let i = 1; i <= n; i++) await server.ok(`INSERT INTO conf.${table} VALUES (${i}, 'v${i}')`);
    };
    const seqOf = async (table: string, id: number): Promise<string> => String((await server.rows(`SELECT _seq FROM conf.${table} WHERE id = ${id}`))[0]!._seq);
    /** A subscribe frame written by hand, so `options` can hold raw JSON numbers. */
    const subscribeRaw = (c: LiveClient, id: string, sql: string, optionsJson: string): Promise<WsMessage> =>
      c.request(`{"type":"subscribe","subscription":{"id":${JSON.stringify(id)},"sql":${JSON.stringify(sql)},"options":${optionsJson}}}`,
        (m) => m.subscription_id === id && (m.type === 'subscription_ack' || m.type === 'error'), 10_000);

    it('options.from as a JSON number past 2^53 resumes exactly from that _seq', async () => {
      await seed('num', 3);
      const from = await seqOf('num', 2);
      assert.ok(BigInt(from) > 2n ** 53n, from);
      const c = await connect(alice);
      const ack = await subscribeRaw(c, 'n', 'SELECT * FROM conf.num', `{"from":${from}}`);
      assert.equal(ack.type, 'subscription_ack', JSON.stringify(ack));
      assert.equal(ack.batch_control!.status, 'ready');
      // Only the row after `from` (an off-by-one rounding would replay row 2 or lose row 3).
      await c.waitForCount((m) => m.subscription_id === 'n' && m.type === 'change', 1, 10_000);
      await server.ok("INSERT INTO conf.num VALUES (4, 'v4')");
      await c.waitFor((m) => m.subscription_id === 'n' && m.type === 'change' && idsOf([m]).includes('4'), 10_000);
      assert.deepEqual(idsOf(changesOf(c, 'n')), ['3', '4']);
      assert.deepEqual(c.of('n', 'initial_data_batch'), [], 'a resume sends changes, not a snapshot');
      // The subscription's options read back from system.live with the _seq's every digit.
      const [live] = await server.rows("SELECT options FROM system.live WHERE subscription_id = 'n'");
      assert.deepEqual(JSON.parse(String(live!.options)), { from });
    });

    it('options.from_seq_id is upstream\'s name for from (string or number)', async () => {
      await seed('alias', 3);
      const from = await seqOf('alias', 2);
      const c = await connect(alice);
      for (const [id, json] of [['as', `{"from_seq_id":"${from}"}`], ['an', `{"from_seq_id":${from}}`]] as const) {
        const ack = await subscribeRaw(c, id, 'SELECT * FROM conf.alias', json);
        assert.equal(ack.type, 'subscription_ack', JSON.stringify(ack));
        await c.waitForCount((m) => m.subscription_id === id && m.type === 'change', 1, 10_000);
      }
      await server.ok("INSERT INTO conf.alias VALUES (4, 'v4')");
      for (const id of ['as', 'an']) {
        await c.waitFor((m) => m.subscription_id === id && m.type === 'change' && idsOf([m]).includes('4'), 10_000);
        assert.deepEqual(idsOf(changesOf(c, id)), ['3', '4'], id);
        assert.deepEqual(c.of(id, 'initial_data_batch'), [], id);
      }
    });

    it('from with last_rows (upstream resubscribes with both): from wins, no snapshot', async () => {
      await seed('fl', 3);
      const from = await seqOf('fl', 3);
      const c = await connect(alice);
      const ack = await c.subscribeOk('fl', 'SELECT * FROM conf.fl', { from, last_rows: 0 });
      assert.equal(ack.batch_control!.status, 'ready');
      const ack2 = await subscribeRaw(c, 'fl2', 'SELECT * FROM conf.fl', `{"last_rows":2,"batch_size":10,"from":${from}}`);
      assert.equal(ack2.type, 'subscription_ack', JSON.stringify(ack2));
      await server.ok("INSERT INTO conf.fl VALUES (4, 'v4')");
      for (const id of ['fl', 'fl2']) {
        await c.waitFor((m) => m.subscription_id === id && m.type === 'change', 10_000);
        assert.deepEqual(idsOf(changesOf(c, id)), ['4'], id);
        assert.deepEqual(c.of(id, 'initial_data_batch'), [], id);
      }
    });

    it('the ack carries the first batch\'s batch_control; resuming from it after a drop mid-load loses no row', async () => {
      await seed('load', 5);
      const c = await connect(alice);
      const ack = await c.subscribeOk('l', 'SELECT * FROM conf.load', { batch_size: 2 });
      const [b0] = await c.waitForCount((m) => m.subscription_id === 'l' && m.type === 'initial_data_batch', 1, 10_000);
      assert.deepEqual(ack.batch_control, b0!.batch_control);
      assert.deepEqual(b0!.batch_control, { batch_num: 0, has_more: true, status: 'loading', last_seq_id: await seqOf('load', 2) });
      // next_batch as upstream writes it: last_seq_id a JSON number.
      const b1 = await c.request(`{"type":"next_batch","subscription_id":"l","last_seq_id":${b0!.batch_control!.last_seq_id}}`,
        (m) => m.subscription_id === 'l' && (m.type === 'initial_data_batch' || m.type === 'error'), 10_000);
      assert.equal(b1.type, 'initial_data_batch', JSON.stringify(b1));
      assert.deepEqual(b1.rows!.map((r) => r.id), ['3', '4']);
      // The connection drops here. Upstream's WASM client resumes from the highest _seq it has seen,
      // the ack's and batches' last_seq_id included.
      c.terminate();
      const checkpoint = [ack, b0!, b1].map((m) => BigInt(m.batch_control!.last_seq_id)).reduce((a, b) => (b > a ? b : a));
      const c2 = await connect(alice);
      const resumed = await c2.subscribeOk('l', 'SELECT * FROM conf.load', { from: checkpoint.toString() });
      await c2.waitForCount((m) => m.subscription_id === 'l' && m.type === 'change', 1, 10_000);
      assert.deepEqual(idsOf(changesOf(c2, 'l')), ['5'], 'the row the first connection never got');
      // The resume ack's last_seq_id does not run ahead of the change that follows it.
      assert.equal(resumed.batch_control!.last_seq_id, checkpoint.toString());
    });

    it('a one-batch snapshot: ack and batch share batch_control; a resume with nothing to replay acks the hand-over _seq', async () => {
      await seed('one', 2);
      // A later commit elsewhere: the hand-over _seq is now past this table's newest row.
      await server.ok("CREATE SHARED TABLE conf.elsewhere (id BIGINT PRIMARY KEY) WITH (ACCESS_LEVEL = 'PUBLIC')");
      await server.ok('INSERT INTO conf.elsewhere VALUES (1)');
      const c = await connect(alice);
      const ack = await c.subscribeOk('o', 'SELECT * FROM conf.one', {});
      const [batch] = await c.waitForCount((m) => m.subscription_id === 'o' && m.type === 'initial_data_batch', 1, 10_000);
      assert.deepEqual(ack.batch_control, batch!.batch_control);
      assert.deepEqual(batch!.batch_control, { batch_num: 0, has_more: false, status: 'ready', last_seq_id: await seqOf('one', 2) });
      const resumed = await c.subscribeOk('o2', 'SELECT * FROM conf.one', { from: batch!.batch_control!.last_seq_id });
      assert.ok(BigInt(resumed.batch_control!.last_seq_id) >= BigInt(batch!.batch_control!.last_seq_id), JSON.stringify(resumed));
      assert.equal(resumed.total_rows, 0);
      // Without options: no initial data, the ack's last_seq_id is the hand-over point (unchanged).
      const bare = await c.subscribeOk('o3', 'SELECT * FROM conf.one');
      assert.ok(BigInt(bare.batch_control!.last_seq_id) >= BigInt(batch!.batch_control!.last_seq_id));
    });
  });
});
