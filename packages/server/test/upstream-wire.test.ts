/**
 * Wire details a client written for upstream KalamDB's v1 API relies on (issue 12), each checked
 * against the real server: health routes, login fields, the missing-auth message, 64-bit typing of
 * integer expressions, lower-case table types, upstream's message texts, auth_success's protocol
 * echo, error frames that always name a subscription, SUBSCRIBE TO's row, an unclosed BEGIN, and
 * the parameter-count limit. Deliberate differences are listed in docs/protocol.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, assertError, type Auth } from './harness.js';
import { LiveClient } from './ws-client.js';
import WebSocket from 'ws';

describe('upstream wire compatibility', () => {
  let server: TestServer;
  let alice: Auth;
  let dba: Auth;
  let svc: Auth;

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('wire_alice');
    dba = await server.createUser('wire_dba', 'dba');
    svc = await server.createUser('wire_svc', 'service');
    await server.ok('CREATE NAMESPACE wire');
    await server.ok('CREATE USER TABLE wire.notes (id BIGINT PRIMARY KEY, n INT, s SMALLINT, body TEXT)');
    await server.ok("INSERT INTO wire.notes VALUES (1, 10, 2, 'a'), (2, 20, 3, 'b')", { auth: alice });
  });
  after(async () => {
    await server.dispose();
  });

  describe('HTTP', () => {
    it('GET /v1/api/healthcheck and /health answer alike, with build_date', async () => {
      for (const path of ['/v1/api/healthcheck', '/health']) {
        const res = await server.fetch(path);
        assert.equal(res.status, 200, path);
        const body = await res.json() as Record<string, unknown>;
        assert.equal(body.status, 'healthy');
        assert.equal(body.api_version, 'v1');
        assert.equal(typeof body.version, 'string');
        assert.match(String(body.build_date), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/, path);
      }
    });

    it('login answers admin_ui_access: true for dba and system, false for user and service', async () => {
      const cases: Array<[Auth, boolean]> = [[alice, false], [svc, false], [dba, true], [{ user: 'root', password: 'root-password-for-tests' }, true]];
      for (const [who, expected] of cases) {
        const { user, password } = who as { user: string; password: string };
        const res = await server.post('/v1/api/auth/login', { user, password });
        assert.equal(res.status, 200, res.text);
        assert.equal((res.json as { admin_ui_access: unknown }).admin_ui_access, expected, user);
      }
      // The refresh endpoint answers the same shape.
      const { refresh_token } = await server.login('wire_dba', 'wire_dba-password-1');
      const refreshed = await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${refresh_token}` });
      assert.equal(refreshed.status, 200, refreshed.text);
      assert.equal((refreshed.json as { admin_ui_access: unknown }).admin_ui_access, true);
    });

    it('login refuses unknown body fields with 400 (username is an accepted alias of user)', async () => {
      const res = await server.post('/v1/api/auth/login', { user: 'wire_alice', password: 'wire_alice-password-1', remember: true });
      assert.equal(res.status, 400, res.text);
      assert.match((res.json as { message: string }).message, /Unknown field 'remember'/);
      const alias = await server.post('/v1/api/auth/login', { username: 'wire_alice', password: 'wire_alice-password-1' });
      assert.equal(alias.status, 200, alias.text);
    });

    it('a request without credentials: 401 MISSING_AUTHORIZATION "Authentication required"', async () => {
      assertError(await server.sql('SELECT 1', { auth: null }), 401, 'MISSING_AUTHORIZATION', /^Authentication required$/);
    });

    it('more than 50 params is a 400 with upstream\'s message', async () => {
      const params = Array.from({ length: 51 }, (_, i) => i);
      assertError(await server.sql('SELECT $1 AS a', { params }), 400, 'SQL_EXECUTION_ERROR',
        /^Parameter count exceeded: maximum 50 parameters allowed, got 51$/);
    });

    it('BEGIN without COMMIT: 400, and the row is not saved', async () => {
      await server.ok('CREATE TABLE wire.tx (id INT PRIMARY KEY)');
      assertError(await server.sql('BEGIN; INSERT INTO wire.tx VALUES (1)'), 400, 'SQL_EXECUTION_ERROR',
        /^Request completed with an open explicit transaction; rolled back automatically$/);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM wire.tx'), [{ c: '0' }]);
    });
  });

  describe('64-bit integers', () => {
    it('integer literals and integer expressions are BigInt with string cells', async () => {
      const [r] = await server.ok('SELECT 1 AS n, 2 + 3 AS sum, -7 AS neg, 9007199254740993 AS big', { auth: alice });
      assert.deepEqual(r!.schema!.map((f) => f.data_type), ['BigInt', 'BigInt', 'BigInt', 'BigInt']);
      assert.deepEqual(r!.rows, [['1', '5', '-7', '9007199254740993']]);
    });

    it('INT and SMALLINT columns keep their type; arithmetic on them, aggregates and lengths are BigInt', async () => {
      const [r] = await server.ok('SELECT n, s, n * 2 AS twice, s + 1 AS s1, length(body) AS len, n::INT AS cast_n FROM wire.notes WHERE id = 1', { auth: alice });
      assert.deepEqual(r!.schema!.map((f) => [f.name, f.data_type]), [
        ['n', 'Int'], ['s', 'SmallInt'], ['twice', 'BigInt'], ['s1', 'BigInt'], ['len', 'BigInt'], ['cast_n', 'Int'],
      ]);
      assert.deepEqual(r!.rows, [[10, 2, '20', '3', '1', 10]]);
      const [agg] = await server.ok('SELECT sum(n) AS total, max(n) AS top, count(*) AS c FROM wire.notes', { auth: alice });
      assert.deepEqual(agg!.schema!.map((f) => f.data_type), ['BigInt', 'Int', 'BigInt']);
      assert.deepEqual(agg!.rows, [['30', 20, '2']]);
    });

    it('stars, set operations and VALUES place computed columns correctly', async () => {
      const [star] = await server.ok('SELECT 1 AS one, *, n + 1 AS next FROM wire.notes WHERE id = 2', { auth: alice });
      const types = Object.fromEntries(star!.schema!.map((f) => [f.name, f.data_type]));
      assert.equal(types.one, 'BigInt');
      assert.equal(types.n, 'Int');
      assert.equal(types.next, 'BigInt');
      const [union] = await server.ok('SELECT 1 AS x UNION ALL SELECT 2 ORDER BY x');
      assert.deepEqual([union!.schema![0]!.data_type, union!.rows], ['BigInt', [['1'], ['2']]]);
      const [values] = await server.ok('SELECT * FROM (VALUES (1, 2)) AS v(a, b)');
      assert.equal(values!.schema![0]!.name, 'a');
    });
  });

  describe('catalog and messages', () => {
    it('system.tables and SHOW TABLES write table_type in lower case', async () => {
      await server.ok('CREATE SHARED TABLE wire.sh (id INT PRIMARY KEY)');
      await server.ok('CREATE STREAM TABLE wire.ev (id INT, v TEXT) WITH (TTL_SECONDS = 60)');
      const rows = await server.rows("SELECT table_name, table_type FROM system.tables WHERE namespace_id = 'wire' ORDER BY table_name");
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.table_name, r.table_type])), { ev: 'stream', notes: 'user', sh: 'shared', tx: 'shared' });
      const shown = await server.rows('SHOW TABLES IN wire');
      assert.ok(shown.every((r) => ['user', 'shared', 'stream'].includes(String(r.table_type))), JSON.stringify(shown));
    });

    it('upstream\'s texts: no primary key, nothing to flush, flushing a STREAM table, STREAM in a transaction, KILL LIVE QUERY', async () => {
      assertError(await server.sql('CREATE USER TABLE wire.nopk (a INT)'), 400, 'SQL_EXECUTION_ERROR', /^User tables require a PRIMARY KEY column$/);
      assertError(await server.sql('CREATE SHARED TABLE wire.nopk (a INT)'), 400, 'SQL_EXECUTION_ERROR', /^Shared tables require a PRIMARY KEY column$/);
      await server.ok('CREATE SHARED TABLE wire.empty (id INT PRIMARY KEY)');
      const [skipped] = await server.ok('STORAGE FLUSH TABLE wire.empty');
      assert.equal(skipped!.message, "Storage flush skipped: no pending writes for table 'wire.empty'");
      assertError(await server.sql('STORAGE FLUSH TABLE wire.ev'), 400, 'SQL_EXECUTION_ERROR', /^STORAGE FLUSH TABLE is not supported for STREAM tables$/);
      assertError(await server.sql("BEGIN; INSERT INTO wire.ev VALUES (1, 'x'); COMMIT"), 400, 'SQL_EXECUTION_ERROR',
        /stream tables are not supported inside explicit transactions/);

      const c = await LiveClient.connect(server.url, alice);
      try {
        await c.subscribeOk('k1', 'SELECT * FROM wire.notes');
        const [live] = await server.rows("SELECT live_id FROM system.live WHERE subscription_id = 'k1'");
        const [killed] = await server.ok(`KILL LIVE QUERY '${String(live!.live_id)}'`);
        assert.equal(killed!.message, `Live query killed: ${String(live!.live_id)}`);
      } finally {
        await c.close();
      }
    });

    it('SUBSCRIBE TO over HTTP: status "active" and the subscription as a JSON object', async () => {
      const [r] = await server.ok('SUBSCRIBE TO wire.notes WHERE n > 5', { auth: alice });
      const [status, , subscription, message] = r!.rows![0] as [string, string, { id: string; sql: string }, string];
      assert.equal(status, 'active');
      assert.equal(typeof subscription, 'object');
      assert.equal(typeof subscription.id, 'string');
      assert.equal(subscription.sql, 'SELECT * FROM wire.notes WHERE n > 5');
      assert.equal(message, 'WebSocket subscription created. Connect to ws_url to receive updates.');
    });
  });

  describe('WebSocket', () => {
    it('auth_success echoes the protocol this connection speaks', async () => {
      const c = await LiveClient.open(server.url);
      try {
        const m = await c.request({ type: 'authenticate', method: 'basic', username: 'wire_alice', password: 'wire_alice-password-1',
          protocol: { serialization: 'msgpack', compression: 'gzip' } }, (x) => x.type.startsWith('auth_'));
        assert.deepEqual(m, { type: 'auth_success', user: 'wire_alice', role: 'user', protocol: { serialization: 'json', compression: 'none' } });
      } finally {
        await c.close();
      }
    });

    it('a subscribe before authentication gets AUTH_REQUIRED with a subscription_id', async () => {
      const c = await LiveClient.open(server.url);
      try {
        const m = await c.request({ type: 'subscribe', subscription: { id: 'early', sql: 'SELECT * FROM wire.notes' } }, () => true);
        assert.deepEqual(m, { type: 'error', subscription_id: 'early', code: 'AUTH_REQUIRED', message: 'Authentication required before subscribing' });
        const bad = await c.request('not json', () => true, 5_000);
        assert.equal(bad.subscription_id, 'protocol');
      } finally {
        await c.close();
      }
    });
  });

  describe('keep-alive', () => {
    it('a peer that misses a ping is disconnected (socket closed and its subscription gone), not left silently unsubscribed', async () => {
      const quick = await TestServer.startWithConfig({ live_ping_interval_ms: 200 });
      const ws = new WebSocket(`${quick.url.replace(/^http/, 'ws')}/v1/ws`, {
        autoPong: false, headers: { authorization: `Basic ${Buffer.from(`root:${'root-password-for-tests'}`).toString('base64')}` },
      });
      try {
        const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
        await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
        await quick.ok('CREATE NAMESPACE ka');
        await quick.ok('CREATE SHARED TABLE ka.t (id INT PRIMARY KEY)');
        ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: 'k', sql: 'SELECT * FROM ka.t' } }));
        const code = await Promise.race([closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('not closed within 5 s')), 5_000))]);
        assert.equal(code, 1006, 'terminated without a closing handshake');
        assert.deepEqual(await quick.rows('SELECT subscription_id FROM system.live'), []);
      } finally {
        ws.terminate();
        await quick.dispose();
      }
    });
  });
});
