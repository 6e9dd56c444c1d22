/**
 * Authentication and access control over HTTP: login and refresh (response shape, bad credentials),
 * Bearer and Basic auth, CREATE/ALTER/DROP USER and what they do to existing credentials, isolation of
 * USER tables between users (plain reads, joins, subqueries, UNION, CTEs, writes; root included),
 * EXECUTE AS USER role rules, system tables for dba/system only however they are reached, refused
 * table functions and PRAGMA (no file contents leak), and SHARED table access levels.
 * Not covered here: token expiry by time (TTL is an hour), rate limiting, WebSocket auth, DDL
 * permissions (ddl.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer, assertError, type Auth } from './harness.js';

interface LoginBody {
  access_token: string;
  refresh_token: string;
  expires_at: string;
  refresh_expires_at: string;
  user: { id: string; role: string; email: string | null; created_at: string; updated_at: string };
}

function isLoginBody(value: unknown): value is LoginBody {
  return typeof value === 'object' && value !== null && 'access_token' in value && 'refresh_token' in value;
}

function jwtPart(token: string, index: 0 | 1): Record<string, unknown> {
  const part = token.split('.')[index];
  assert.ok(part !== undefined, `not a JWT: ${token}`);
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('auth', () => {
  let server: TestServer;
  let alice: Auth;
  let bob: Auth;
  let svc: Auth;
  let dba: Auth;
  let sys: Auth;

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice', 'user');
    bob = await server.createUser('bob', 'user');
    svc = await server.createUser('svc', 'service');
    await server.createUser('svc2', 'service');
    dba = await server.createUser('dba1', 'dba');
    await server.createUser('dba2', 'dba');
    sys = await server.createUser('sys1', 'system');
    await server.ok('CREATE NAMESPACE a');
    await server.ok('CREATE USER TABLE a.notes (id INT PRIMARY KEY, body TEXT)');
    await server.ok('CREATE USER TABLE a.tags (note_id INT PRIMARY KEY, tag TEXT)');
    await server.ok("CREATE SHARED TABLE a.pub (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok('CREATE SHARED TABLE a.priv (id INT PRIMARY KEY, secret TEXT)');
    await server.ok("CREATE SHARED TABLE a.dbaonly (id INT PRIMARY KEY, secret TEXT) WITH (ACCESS_LEVEL = 'DBA')");
    await server.ok("INSERT INTO a.pub VALUES (1, 'public-1'), (2, 'public-2')");
    await server.ok("INSERT INTO a.priv VALUES (1, 'private-1')");
    await server.ok("INSERT INTO a.dbaonly VALUES (1, 'dba-secret')");
    await server.ok("INSERT INTO a.notes VALUES (1, 'alice-1'), (2, 'alice-2'), (3, 'alice-3')", { auth: alice });
    await server.ok("INSERT INTO a.tags VALUES (1, 'alice-tag-1'), (2, 'alice-tag-2')", { auth: alice });
    await server.ok("INSERT INTO a.notes VALUES (1, 'bob-1'), (9, 'bob-9')", { auth: bob });
    await server.ok("INSERT INTO a.tags VALUES (9, 'bob-tag-9')", { auth: bob });
  });
  after(async () => {
    await server.dispose();
  });

  const login = async (user: string, password: string): Promise<{ status: number; json: unknown }> =>
    server.post('/v1/api/auth/login', { user, password });

  describe('login, tokens and Basic auth', () => {
    it('login returns access and refresh tokens, expiry times and the user', async () => {
      const before = Date.now();
      const res = await login('alice', 'alice-password-1');
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.ok(isLoginBody(res.json));
      const body = res.json;
      assert.deepEqual(Object.keys(body).sort(), ['access_token', 'admin_ui_access', 'expires_at', 'refresh_expires_at', 'refresh_token', 'user']);
      assert.deepEqual({ id: body.user.id, role: body.user.role }, { id: 'alice', role: 'user' });
      assert.deepEqual(Object.keys(body.user).sort(), ['created_at', 'email', 'id', 'role', 'updated_at']);
      assert.ok(Number.isFinite(Date.parse(body.user.created_at)) && Number.isFinite(Date.parse(body.user.updated_at)), JSON.stringify(body.user));
      assert.equal(jwtPart(body.access_token, 0).alg, 'HS256');
      const claims = jwtPart(body.access_token, 1);
      assert.equal(claims.sub, 'alice');
      assert.equal(claims.role, 'user');
      assert.equal(typeof claims.exp, 'number');
      const expiresAt = Date.parse(body.expires_at);
      const refreshExpiresAt = Date.parse(body.refresh_expires_at);
      assert.ok(Number.isFinite(expiresAt) && Number.isFinite(refreshExpiresAt), JSON.stringify(body));
      assert.ok(expiresAt > before, 'expires_at is in the future');
      assert.equal(Math.floor(expiresAt / 1000), claims.exp, 'expires_at matches the exp claim');
      assert.ok(refreshExpiresAt > expiresAt, 'the refresh token outlives the access token');
      assert.notEqual(body.refresh_token, body.access_token);
    });

    it('login is refused with 401 and the same body for a bad password and an unknown user', async () => {
      const expected = { error: 'unauthorized', message: 'Invalid credentials' };
      const badPassword = await login('alice', 'wrong-password');
      assert.equal(badPassword.status, 401);
      assert.deepEqual(badPassword.json, expected);
      const unknown = await login('no_such_user', 'alice-password-1');
      assert.equal(unknown.status, 401);
      assert.deepEqual(unknown.json, expected);
      const empty = await login('alice', '');
      assert.equal(empty.status, 401);
      assert.deepEqual(empty.json, expected);
    });

    it('login with a malformed body is a 4xx, not a 500', async () => {
      for (const body of ['{', '[]', '{"user":"alice"}', '{"user":1,"password":2}']) {
        const res = await server.post('/v1/api/auth/login', body);
        assert.ok(res.status >= 400 && res.status < 500, `${body} → ${res.status} ${res.text}`);
      }
    });

    it('a Bearer access token authenticates SQL requests as its user', async () => {
      const res = await login('alice', 'alice-password-1');
      assert.ok(isLoginBody(res.json));
      const [result] = await server.ok('SELECT id, body FROM a.notes ORDER BY id', { auth: { token: res.json.access_token } });
      assert.equal(result!.as_user, 'alice');
      assert.deepEqual(result!.rows, [[1, 'alice-1'], [2, 'alice-2'], [3, 'alice-3']]);
    });

    it('the refresh endpoint takes the refresh token and returns a new, working token set', async () => {
      const first = await login('bob', 'bob-password-1');
      assert.ok(isLoginBody(first.json));
      const res = await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${first.json.refresh_token}` });
      assert.equal(res.status, 200, res.text);
      assert.ok(isLoginBody(res.json));
      assert.deepEqual(Object.keys(res.json).sort(), ['access_token', 'admin_ui_access', 'expires_at', 'refresh_expires_at', 'refresh_token', 'user']);
      assert.deepEqual({ id: res.json.user.id, role: res.json.user.role }, { id: 'bob', role: 'user' });
      const [result] = await server.ok('SELECT count(*) AS c FROM a.notes', { auth: { token: res.json.access_token } });
      assert.equal(result!.as_user, 'bob');
      assert.deepEqual(result!.rows, [['2']]);
    });

    it('a refresh token is refused as an access token, and an access token at the refresh endpoint', async () => {
      const res = await login('alice', 'alice-password-1');
      assert.ok(isLoginBody(res.json));
      assertError(await server.sql('SELECT 1', { auth: { token: res.json.refresh_token } }), 401, 'INVALID_CREDENTIALS');
      const refreshWithAccess = await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${res.json.access_token}` });
      assert.equal(refreshWithAccess.status, 401);
      const refreshWithNothing = await server.post('/v1/api/auth/refresh', '');
      assert.equal(refreshWithNothing.status, 401);
      const refreshWithGarbage = await server.post('/v1/api/auth/refresh', '', { authorization: 'Bearer garbage' });
      assert.equal(refreshWithGarbage.status, 401);
    });

    it('Basic auth works with the right password and is refused with a wrong one', async () => {
      const [ok] = await server.ok('SELECT 1 AS x', { auth: alice });
      assert.equal(ok!.as_user, 'alice');
      assertError(await server.sql('SELECT 1', { auth: { user: 'alice', password: 'bob-password-1' } }), 401, 'INVALID_CREDENTIALS');
      const [rootRes] = await server.ok('SELECT 1 AS x', { auth: { user: 'root', password: ROOT_PASSWORD } });
      assert.equal(rootRes!.as_user, 'root');
    });
  });

  describe('CREATE, ALTER and DROP USER', () => {
    it('CREATE USER stores role and email, hides the password hash, refuses duplicates and bad input', async () => {
      const [res] = await server.ok("CREATE USER 'carol' WITH PASSWORD 'carol-password-1' ROLE service EMAIL 'c@example.com'");
      assert.deepEqual(res, { row_count: 0, message: "User 'carol' created successfully", as_user: 'root' });
      // Role system (root) sees the argon2id hashes; every other reader gets *** (issue 6).
      const [carol] = await server.rows("SELECT user_id, role, email, password_hash FROM system.users WHERE user_id = 'carol'");
      assert.deepEqual({ ...carol, password_hash: undefined }, { user_id: 'carol', role: 'service', email: 'c@example.com', password_hash: undefined });
      assert.match(String(carol!.password_hash), /^\$argon2id\$/);
      assert.ok(!String(carol!.password_hash).includes('carol-password-1'));
      const hashes = await server.rows('SELECT DISTINCT password_hash FROM system.users', { auth: dba });
      assert.deepEqual(hashes, [{ password_hash: '***' }], 'a dba sees ***');
      assertError(await server.sql("CREATE USER 'carol' WITH PASSWORD 'another-pw-1'"), 400, 'SQL_EXECUTION_ERROR', /carol.*exists/);
      const short = await server.sql("CREATE USER 'dave' WITH PASSWORD 'short'");
      assert.equal(short.status, 400, JSON.stringify(short.body));
      assert.match(short.body.error!.message, /[Pp]assword/);
      assertError(await server.sql("CREATE USER 'bad name' WITH PASSWORD 'long-enough-1'"), 400, 'INVALID_SQL', /bad name/);
      assertError(await server.sql("CREATE USER 'eve' WITH PASSWORD 'long-enough-1' ROLE superuser"), 400, 'INVALID_SQL', /superuser/);
      const res2 = await login('carol', 'carol-password-1');
      assert.ok(isLoginBody(res2.json));
      assert.deepEqual({ id: res2.json.user.id, role: res2.json.user.role }, { id: 'carol', role: 'service' });
    });

    it('ALTER USER SET PASSWORD invalidates old tokens and the old password', async () => {
      await server.createUser('pwchange', 'user', 'old-password-1');
      const tokens = await login('pwchange', 'old-password-1');
      assert.ok(isLoginBody(tokens.json));
      const oldAccess = tokens.json.access_token;
      const oldRefresh = tokens.json.refresh_token;
      assert.equal((await server.sql('SELECT 1', { auth: { token: oldAccess } })).status, 200);
      assert.equal((await server.sql('SELECT 1', { auth: { user: 'pwchange', password: 'old-password-1' } })).status, 200);
      const [res] = await server.ok("ALTER USER 'pwchange' SET PASSWORD 'new-password-2'");
      assert.equal(res!.message, "User 'pwchange' updated successfully");
      assertError(await server.sql('SELECT 1', { auth: { token: oldAccess } }), 401, 'INVALID_CREDENTIALS');
      assert.equal((await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${oldRefresh}` })).status, 401);
      assertError(await server.sql('SELECT 1', { auth: { user: 'pwchange', password: 'old-password-1' } }), 401, 'INVALID_CREDENTIALS');
      assert.equal((await login('pwchange', 'old-password-1')).status, 401);
      assert.equal((await server.sql('SELECT 1', { auth: { user: 'pwchange', password: 'new-password-2' } })).status, 200);
      assert.equal((await login('pwchange', 'new-password-2')).status, 200);
    });

    it('ALTER USER SET ROLE takes effect and invalidates tokens carrying the old role', async () => {
      await server.createUser('promoted', 'user', 'promoted-pw-1');
      const tokens = await login('promoted', 'promoted-pw-1');
      assert.ok(isLoginBody(tokens.json));
      assertError(await server.sql('CREATE NAMESPACE promoted_ns', { auth: { user: 'promoted', password: 'promoted-pw-1' } }), 403, 'PERMISSION_DENIED');
      await server.ok("ALTER USER 'promoted' SET ROLE dba");
      assertError(await server.sql('SELECT 1', { auth: { token: tokens.json.access_token } }), 401, 'INVALID_CREDENTIALS');
      await server.ok('CREATE NAMESPACE promoted_ns', { auth: { user: 'promoted', password: 'promoted-pw-1' } });
      const relogin = await login('promoted', 'promoted-pw-1');
      assert.ok(isLoginBody(relogin.json));
      assert.deepEqual({ id: relogin.json.user.id, role: relogin.json.user.role }, { id: 'promoted', role: 'dba' });
      assert.deepEqual(await server.rows("SELECT role FROM system.users WHERE user_id = 'promoted'"), [{ role: 'dba' }]);
    });

    it('ALTER USER SET EMAIL shows in system.users', async () => {
      await server.createUser('mailer');
      await server.ok("ALTER USER 'mailer' SET EMAIL 'm@example.com'");
      assert.deepEqual(await server.rows("SELECT email FROM system.users WHERE user_id = 'mailer'"), [{ email: 'm@example.com' }]);
    });

    it('DROP USER stops its tokens and password at once; IF EXISTS tolerates a missing user', async () => {
      const gone = await server.createUser('gone_user');
      const tokens = await login('gone_user', 'gone_user-password-1');
      assert.ok(isLoginBody(tokens.json));
      assert.equal((await server.sql('SELECT 1', { auth: { token: tokens.json.access_token } })).status, 200);
      const [res] = await server.ok("DROP USER 'gone_user'");
      assert.deepEqual(res, { row_count: 0, message: "User 'gone_user' dropped successfully", as_user: 'root' });
      assertError(await server.sql('SELECT 1', { auth: { token: tokens.json.access_token } }), 401, 'INVALID_CREDENTIALS');
      assertError(await server.sql('SELECT 1', { auth: gone }), 401, 'INVALID_CREDENTIALS');
      assert.equal((await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${tokens.json.refresh_token}` })).status, 401);
      assert.equal((await login('gone_user', 'gone_user-password-1')).status, 401);
      // A soft delete: the account stays listed, with deleted_at, until its purge (user-ids.test.ts).
      assert.deepEqual(await server.rows("SELECT user_id FROM system.users WHERE user_id = 'gone_user' AND deleted_at IS NULL"), []);
      assert.equal((await server.rows("SELECT deleted_at FROM system.users WHERE user_id = 'gone_user'")).length, 1);
      assertError(await server.sql("DROP USER 'gone_user'"), 400, 'SQL_EXECUTION_ERROR', /gone_user/);
      const [ifExists] = await server.ok("DROP USER IF EXISTS 'gone_user'");
      assert.equal(ifExists!.row_count, 0);
    });

    it('a dropped user\'s tokens stay invalid when the name is created again', async () => {
      await server.createUser('reborn', 'user', 'first-life-pw-1');
      const old = await login('reborn', 'first-life-pw-1');
      assert.ok(isLoginBody(old.json));
      await server.ok("DROP USER 'reborn'");
      await server.ok("CREATE USER 'reborn' WITH PASSWORD 'second-life-pw-2' ROLE dba");
      assertError(await server.sql('SELECT 1', { auth: { token: old.json.access_token } }), 401, 'INVALID_CREDENTIALS');
      assert.equal((await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${old.json.refresh_token}` })).status, 401);
      assertError(await server.sql('SELECT 1', { auth: { user: 'reborn', password: 'first-life-pw-1' } }), 401, 'INVALID_CREDENTIALS');
    });

    it('root cannot be dropped', async () => {
      const res = await server.sql("DROP USER 'root'");
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal((await server.sql('SELECT 1')).status, 200);
    });

    it('only dba and system manage users; only system manages system accounts', async () => {
      for (const auth of [alice, svc]) {
        assertError(await server.sql("CREATE USER 'nope1' WITH PASSWORD 'long-enough-1'", { auth }), 403, 'PERMISSION_DENIED');
        assertError(await server.sql("ALTER USER 'bob' SET PASSWORD 'hijacked-pw-1'", { auth }), 403, 'PERMISSION_DENIED');
        assertError(await server.sql("ALTER USER 'bob' SET ROLE dba", { auth }), 403, 'PERMISSION_DENIED');
        assertError(await server.sql("DROP USER 'bob'", { auth }), 403, 'PERMISSION_DENIED');
        // The same answer for a name that does not exist: nothing tells which user names exist.
        const existing = await server.sql("ALTER USER 'bob' SET EMAIL 'x@example.com'", { auth });
        const missing = await server.sql("ALTER USER 'no_such_user_9' SET EMAIL 'x@example.com'", { auth });
        assertError(missing, 403, 'PERMISSION_DENIED');
        assert.equal((missing.body as { error: { message: string } }).error.message, (existing.body as { error: { message: string } }).error.message);
      }
      assertError(await server.sql("ALTER USER 'alice' SET ROLE system", { auth: alice }), 403, 'PERMISSION_DENIED');
      assertError(await server.sql("CREATE USER 'newsys' WITH PASSWORD 'long-enough-1' ROLE system", { auth: dba }), 403, 'PERMISSION_DENIED');
      assertError(await server.sql("ALTER USER 'root' SET PASSWORD 'hijacked-pw-1'", { auth: dba }), 403, 'PERMISSION_DENIED');
      assertError(await server.sql("DROP USER 'sys1'", { auth: dba }), 403, 'PERMISSION_DENIED');
      // Nobody but system creates or alters a dba or system account (issue 6).
      assertError(await server.sql("CREATE USER 'made_by_dba' WITH PASSWORD 'long-enough-1' ROLE dba", { auth: dba }), 403, 'PERMISSION_DENIED');
      await server.ok("CREATE USER 'made_by_dba' WITH PASSWORD 'long-enough-1' ROLE service", { auth: dba });
      await server.ok("CREATE USER 'dba_by_sys' WITH PASSWORD 'long-enough-1' ROLE dba", { auth: sys });
      await server.ok("CREATE USER 'made_by_sys' WITH PASSWORD 'long-enough-1' ROLE system", { auth: sys });
      assert.equal((await server.sql('SELECT 1', { auth: bob })).status, 200, 'bob still has his password');
      assert.deepEqual(await server.rows("SELECT user_id FROM system.users WHERE user_id = 'nope1'"), []);
    });
  });

  describe('USER table isolation', () => {
    it('the same SELECT returns each user only their own rows', async () => {
      const sql = 'SELECT id, body FROM a.notes ORDER BY id';
      assert.deepEqual(await server.rows(sql, { auth: alice }), [{ id: 1, body: 'alice-1' }, { id: 2, body: 'alice-2' }, { id: 3, body: 'alice-3' }]);
      assert.deepEqual(await server.rows(sql, { auth: bob }), [{ id: 1, body: 'bob-1' }, { id: 9, body: 'bob-9' }]);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM a.notes', { auth: alice }), [{ c: '3' }]);
      assert.deepEqual(await server.rows('SELECT * FROM a.notes WHERE body LIKE $1', { auth: alice, params: ['bob%'] }), []);
    });

    it('point reads, updates and deletes of the other user\'s keys touch nothing', async () => {
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id = 9', { auth: alice }), []);
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id = 1', { auth: alice }), [{ body: 'alice-1' }]);
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id = $1', { auth: bob, params: [2] }), []);
      const [upd] = await server.ok("UPDATE a.notes SET body = 'hacked' WHERE id = 9", { auth: alice });
      assert.equal(upd!.message, 'Updated 0 row(s)');
      const [updAll] = await server.ok("UPDATE a.notes SET body = body || '' WHERE body LIKE 'bob%'", { auth: alice });
      assert.equal(updAll!.message, 'Updated 0 row(s)');
      const [del] = await server.ok("DELETE FROM a.notes WHERE body = 'bob-9'", { auth: alice });
      assert.equal(del!.message, 'Deleted 0 row(s)');
      assert.deepEqual(await server.rows('SELECT id, body FROM a.notes ORDER BY id', { auth: bob }), [{ id: 1, body: 'bob-1' }, { id: 9, body: 'bob-9' }]);
    });

    it('joins see only the caller\'s rows on both sides', async () => {
      const sql = 'SELECT n.id, n.body, t.tag FROM a.notes n JOIN a.tags t ON t.note_id = n.id ORDER BY n.id';
      assert.deepEqual(await server.rows(sql, { auth: alice }), [
        { id: 1, body: 'alice-1', tag: 'alice-tag-1' }, { id: 2, body: 'alice-2', tag: 'alice-tag-2' },
      ]);
      assert.deepEqual(await server.rows(sql, { auth: bob }), [{ id: 9, body: 'bob-9', tag: 'bob-tag-9' }]);
      const self = await server.rows('SELECT x.id, y.body FROM a.notes x CROSS JOIN a.notes y ORDER BY x.id, y.id', { auth: bob });
      assert.equal(self.length, 4);
      assert.ok(self.every((r) => String(r.body).startsWith('bob')));
      const withShared = await server.rows('SELECT n.body, p.v FROM a.notes n JOIN a.pub p ON p.id = n.id ORDER BY n.id', { auth: alice });
      assert.deepEqual(withShared, [{ body: 'alice-1', v: 'public-1' }, { body: 'alice-2', v: 'public-2' }]);
    });

    it('subqueries, UNION and CTEs see only the caller\'s rows', async () => {
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id IN (SELECT note_id FROM a.tags) ORDER BY id', { auth: bob }), [{ body: 'bob-9' }]);
      assert.deepEqual(await server.rows('SELECT (SELECT count(*) FROM a.notes) AS n, (SELECT max(id) FROM a.notes) AS m', { auth: alice }), [{ n: '3', m: 3 }]);
      assert.deepEqual(await server.rows('SELECT body FROM a.notes UNION ALL SELECT tag FROM a.tags ORDER BY body', { auth: bob }), [
        { body: 'bob-1' }, { body: 'bob-9' }, { body: 'bob-tag-9' },
      ]);
      assert.deepEqual(await server.rows('WITH mine AS (SELECT * FROM a.notes) SELECT count(*) AS c FROM mine', { auth: bob }), [{ c: '2' }]);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM (SELECT * FROM a.notes) sub', { auth: alice }), [{ c: '3' }]);
      assert.deepEqual(await server.rows('SELECT body FROM a.notes n WHERE EXISTS (SELECT 1 FROM a.tags t WHERE t.note_id = n.id) ORDER BY id', { auth: alice }), [
        { body: 'alice-1' }, { body: 'alice-2' },
      ]);
    });

    it('root and dba do not see other users\' rows; their own writes go to their own partition', async () => {
      assert.deepEqual(await server.rows('SELECT * FROM a.notes'), []);
      assert.deepEqual(await server.rows('SELECT * FROM a.notes WHERE id = 1'), []);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM a.notes', { auth: dba }), [{ c: '0' }]);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM a.notes', { auth: sys }), [{ c: '0' }]);
      await server.ok("INSERT INTO a.notes VALUES (1, 'root-1')");
      assert.deepEqual(await server.rows('SELECT id, body FROM a.notes'), [{ id: 1, body: 'root-1' }]);
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id = 1', { auth: alice }), [{ body: 'alice-1' }]);
      const [del] = await server.ok('DELETE FROM a.notes');
      assert.equal(del!.message, 'Deleted 1 row(s)');
      assert.equal((await server.rows('SELECT id FROM a.notes', { auth: alice })).length, 3);
    });

    it('INSERT ... SELECT copies only the caller\'s rows into the caller\'s partition', async () => {
      await server.ok('CREATE USER TABLE a.copy (id INT PRIMARY KEY, body TEXT)');
      const [res] = await server.ok('INSERT INTO a.copy SELECT id, body FROM a.notes', { auth: bob });
      assert.equal(res!.message, 'Inserted 2 row(s)');
      assert.deepEqual(await server.rows('SELECT id, body FROM a.copy ORDER BY id', { auth: bob }), [{ id: 1, body: 'bob-1' }, { id: 9, body: 'bob-9' }]);
      assert.deepEqual(await server.rows('SELECT id FROM a.copy', { auth: alice }), []);
    });

    it('an unqualified name shadowed by a CTE elsewhere in the query reaches no other user\'s rows', async () => {
      // Make sure bob's partition and the PRIVATE table have been read (and so may be cached by the engine).
      assert.equal((await server.rows('SELECT * FROM a.notes', { auth: bob })).length >= 2, true);
      assert.equal((await server.rows('SELECT * FROM a.priv', { auth: svc })).length >= 1, true);
      const leaked: string[] = [];
      for (let i = 1; i <= 40; i++) {
        for (const name of [`m_${i}`, `m_${i}_live`, `kt_${i}`]) {
          const res = await server.sql(`SELECT * FROM ${name}, (WITH ${name} AS (SELECT 1 AS x) SELECT x FROM ${name}) q`, { auth: alice });
          const text = JSON.stringify(res.body);
          if (res.status === 200 || /bob-|private-1|dba-secret/.test(text)) leaked.push(`${name}: ${res.status} ${text.slice(0, 160)}`);
        }
      }
      assert.equal(leaked.length, 0, `${leaked.length} queries by alice read engine relations, e.g.\n${leaked.slice(0, 3).join('\n')}`);
    });

    it('tombstones are per user too', async () => {
      await server.ok('CREATE USER TABLE a.tomb (id INT PRIMARY KEY)');
      await server.ok('INSERT INTO a.tomb VALUES (1), (2)', { auth: alice });
      await server.ok('INSERT INTO a.tomb VALUES (1)', { auth: bob });
      await server.ok('DELETE FROM a.tomb WHERE id = 1', { auth: alice });
      assert.deepEqual(await server.rows('SELECT id FROM a.tomb WHERE _deleted = true', { auth: alice }), [{ id: 1 }]);
      assert.deepEqual(await server.rows('SELECT id FROM a.tomb WHERE _deleted = true', { auth: bob }), []);
      assert.deepEqual(await server.rows('SELECT id FROM a.tomb', { auth: bob }), [{ id: 1 }]);
    });
  });

  describe('EXECUTE AS USER', () => {
    /** actor undefined: root. */
    const asUser = async (actor: Auth | undefined, target: string): Promise<{ status: number; asUser: string | undefined; code: string | undefined }> => {
      const res = await server.sql(`EXECUTE AS USER '${target}' (SELECT count(*) AS c FROM a.notes)`, actor === undefined ? {} : { auth: actor });
      return { status: res.status, asUser: res.body.results[0]?.as_user, code: res.body.error?.code };
    };

    it('system may impersonate anyone', async () => {
      for (const target of ['alice', 'svc', 'dba1', 'sys1']) {
        assert.deepEqual(await asUser(undefined, target), { status: 200, asUser: target, code: undefined }, `root → ${target}`);
      }
      for (const target of ['bob', 'svc2', 'dba2', 'root']) {
        assert.deepEqual(await asUser(sys, target), { status: 200, asUser: target, code: undefined }, `sys1 → ${target}`);
      }
    });

    it('dba may impersonate dba, service and user, not system', async () => {
      for (const target of ['alice', 'svc', 'dba2']) assert.deepEqual(await asUser(dba, target), { status: 200, asUser: target, code: undefined }, target);
      for (const target of ['sys1', 'root']) assert.deepEqual(await asUser(dba, target), { status: 403, asUser: undefined, code: 'PERMISSION_DENIED' }, target);
    });

    it('service may impersonate service and user, not dba or system', async () => {
      for (const target of ['alice', 'svc2', 'svc']) assert.deepEqual(await asUser(svc, target), { status: 200, asUser: target, code: undefined }, target);
      for (const target of ['dba1', 'sys1', 'root']) assert.deepEqual(await asUser(svc, target), { status: 403, asUser: undefined, code: 'PERMISSION_DENIED' }, target);
    });

    it('user may only "impersonate" itself', async () => {
      assert.deepEqual(await asUser(alice, 'alice'), { status: 200, asUser: 'alice', code: undefined });
      for (const target of ['bob', 'svc', 'dba1', 'root']) assert.deepEqual(await asUser(alice, target), { status: 403, asUser: undefined, code: 'PERMISSION_DENIED' }, target);
      // The same answer for an account that exists (of any role) and one that does not: no listing of accounts.
      const messageFor = async (target: string): Promise<string> => (await server.sql(`EXECUTE AS USER '${target}' (SELECT 1)`, { auth: alice })).body.error!.message.replace(target, '<name>');
      const missing = await messageFor('no_such_user');
      assert.match(missing, /^Permission denied: role user cannot execute as user '<name>' \(only as itself\)$/);
      for (const target of ['bob', 'dba1', 'root']) assert.equal(await messageFor(target), missing, target);
    });

    it('reads and writes the target user\'s partition, reporting as_user', async () => {
      const [read] = await server.ok("EXECUTE AS USER 'alice' (SELECT id, body FROM a.notes ORDER BY id)");
      assert.equal(read!.as_user, 'alice');
      assert.deepEqual(read!.rows, [[1, 'alice-1'], [2, 'alice-2'], [3, 'alice-3']]);
      const [write] = await server.ok("EXECUTE AS USER 'bob' (INSERT INTO a.notes VALUES (50, 'by-service'))", { auth: svc });
      assert.deepEqual(write, { row_count: 1, message: 'Inserted 1 row(s)', as_user: 'bob' });
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id = 50', { auth: bob }), [{ body: 'by-service' }]);
      assert.deepEqual(await server.rows('SELECT body FROM a.notes WHERE id = 50', { auth: svc }), []);
      const results = await server.ok("SELECT count(*) AS c FROM a.notes; EXECUTE AS USER 'bob' (SELECT count(*) AS c FROM a.notes)", { auth: svc });
      assert.deepEqual(results.map((r) => [r.as_user, r.rows]), [['svc', [['0']]], ['bob', [['3']]]]);
    });

    it('takes exactly one statement and an existing user', async () => {
      assertError(await server.sql("EXECUTE AS USER 'alice' (SELECT 1; SELECT 2)"), 400, 'INVALID_SQL');
      assertError(await server.sql("EXECUTE AS USER 'alice' SELECT 1"), 400, 'INVALID_SQL');
      const missing = await server.sql("EXECUTE AS USER 'no_such_user' (SELECT 1)");
      assert.equal(missing.status, 400, JSON.stringify(missing.body));
      assert.match(missing.body.error!.message, /no_such_user/);
    });
  });

  describe('system tables are dba/system only however reached', () => {
    const SYSTEM_TABLES = ['users', 'namespaces', 'tables', 'columns', 'table_schemas'];

    for (const [label, who] of [['user', () => alice], ['service', () => svc]] as const) {
      it(`role ${label}: direct reads of every system table are 403`, async () => {
        for (const t of SYSTEM_TABLES) {
          assertError(await server.sql(`SELECT * FROM system.${t}`, { auth: who() }), 403, 'PERMISSION_DENIED', new RegExp(`system\\.${t}`));
        }
      });
    }

    it('role user: reached through join, subquery, UNION, CTE, derived table, batch, namespace_id, INSERT ... SELECT', async () => {
      const attempts: Array<[string, { namespace?: string }]> = [
        ['SELECT n.body, u.user_id FROM a.notes n JOIN system.users u ON true', {}],
        ['SELECT body FROM a.notes WHERE body IN (SELECT user_id FROM system.users)', {}],
        ['SELECT (SELECT count(*) FROM system.users) AS c', {}],
        ['SELECT body FROM a.notes UNION SELECT user_id FROM system.users', {}],
        ['WITH u AS (SELECT * FROM system.users) SELECT count(*) FROM u', {}],
        ['SELECT * FROM (SELECT * FROM system.tables) t', {}],
        ['SELECT 1 WHERE EXISTS (SELECT 1 FROM system.columns)', {}],
        ['SELECT * FROM users', { namespace: 'system' }],
        ['INSERT INTO a.notes SELECT 100, user_id FROM system.users', {}],
        ['UPDATE a.notes SET body = (SELECT max(user_id) FROM system.users) WHERE id = 1', {}],
        ['DELETE FROM a.notes WHERE body IN (SELECT user_id FROM system.users)', {}],
      ];
      for (const [sql, opts] of attempts) {
        assertError(await server.sql(sql, { auth: alice, ...opts }), 403, 'PERMISSION_DENIED', /system\./);
      }
      assertError(await server.sql('SELECT 1; SELECT * FROM system.users', { auth: alice }), 403, 'PERMISSION_DENIED', /^Statement 2 failed: /);
      assert.deepEqual(await server.rows('SELECT id, body FROM a.notes WHERE id IN (1, 100) ORDER BY id', { auth: alice }), [{ id: 1, body: 'alice-1' }]);
    });

    it('EXECUTE AS a user does not keep the admin\'s access to system tables', async () => {
      assertError(await server.sql("EXECUTE AS USER 'alice' (SELECT * FROM system.users)"), 403, 'PERMISSION_DENIED');
      assertError(await server.sql("EXECUTE AS USER 'alice' (SELECT count(*) FROM a.notes n JOIN system.tables t ON true)", { auth: dba }), 403, 'PERMISSION_DENIED');
    });

    it('dba and system read system tables', async () => {
      for (const auth of [dba, sys, undefined]) {
        const opts = auth === undefined ? {} : { auth };
        const rows = await server.rows("SELECT user_id, role, password_hash FROM system.users WHERE user_id IN ('alice', 'root') ORDER BY user_id", opts);
        const hidden = auth === dba;
        assert.deepEqual(rows.map((r) => [r.user_id, r.role, hidden ? r.password_hash : /^\$argon2id\$/.test(String(r.password_hash))]),
          [['alice', 'user', hidden ? '***' : true], ['root', 'system', hidden ? '***' : true]]);
        assert.ok((await server.rows("SELECT table_name FROM system.tables WHERE namespace_id = 'a'", opts)).length >= 5);
      }
    });

    it('a CTE name does not open DuckDB\'s own catalog views outside the CTE\'s scope', async () => {
      for (const view of ['duckdb_tables', 'duckdb_databases', 'duckdb_columns', 'pragma_database_list', 'sqlite_master']) {
        const res = await server.sql(`SELECT * FROM ${view}, (WITH ${view} AS (SELECT 1 AS x) SELECT x FROM ${view}) q`, { auth: alice });
        assert.ok(res.status === 400 || res.status === 403, `${view}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      }
    });
  });

  describe('file and engine functions are refused', () => {
    const leaks = (text: string): boolean => /root:x?:0:0|\/bin\/(ba)?sh|lock_configuration|enable_external_access/.test(text);

    it('table functions that read files or engine state are 403 for every role, leaking nothing', async () => {
      const queries = [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM READ_CSV('/etc/passwd')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_json('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        'SELECT * FROM duckdb_settings()',
        'SELECT * FROM duckdb_tables()',
        'SELECT * FROM duckdb_extensions()',
        'SELECT * FROM pragma_version()',
        "SELECT * FROM pragma_table_info('notes')",
        "SELECT * FROM parquet_metadata('/etc/passwd')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM a.notes n, read_csv('/etc/passwd') f",
        "SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS c",
        "SELECT * FROM a.notes WHERE id IN (SELECT 1 FROM read_csv('/etc/passwd'))",
        "WITH f AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM f",
        "INSERT INTO a.notes SELECT 200, content FROM read_text('/etc/passwd')",
      ];
      for (const sql of queries) {
        for (const auth of [alice, undefined]) {
          const res = await server.sql(sql, auth === undefined ? {} : { auth });
          assertError(res, 403, 'PERMISSION_DENIED', /[Pp]ermission denied/);
          assert.ok(!leaks(JSON.stringify(res.body)), `${sql} leaked: ${JSON.stringify(res.body).slice(0, 300)}`);
        }
      }
      assert.deepEqual(await server.rows('SELECT id FROM a.notes WHERE id = 200', { auth: alice }), []);
    });

    it('scalar functions that read files or settings are 403', async () => {
      for (const sql of ["SELECT current_setting('threads')", "SELECT read_blob('/etc/passwd')", "SELECT length(pg_catalog.read_blob('/etc/passwd'))"]) {
        const res = await server.sql(sql, { auth: alice });
        assertError(res, 403, 'PERMISSION_DENIED');
        assert.ok(!leaks(JSON.stringify(res.body)));
      }
    });

    it('PRAGMA and file paths as tables are refused without leaking', async () => {
      for (const sql of ['PRAGMA version', "PRAGMA table_info('notes')", 'PRAGMA database_list', "SELECT * FROM '/etc/passwd'", 'SELECT * FROM "/etc/passwd"']) {
        const res = await server.sql(sql, { auth: alice });
        assert.ok(res.status === 400 || res.status === 403, `${sql} → ${res.status}`);
        assert.match(res.body.error!.code, /^(INVALID_SQL|PERMISSION_DENIED)$/);
        assert.ok(!leaks(JSON.stringify(res.body)), `${sql} leaked`);
      }
    });

    it('generate_series, range and unnest stay available', async () => {
      assert.deepEqual(await server.rows('SELECT * FROM generate_series(1, 3) AS g(x)', { auth: alice }), [{ x: '1' }, { x: '2' }, { x: '3' }]);
      assert.deepEqual((await server.rows('SELECT count(*) AS c FROM range(10)', { auth: alice })), [{ c: '10' }]);
      assert.deepEqual((await server.rows('SELECT unnest(ARRAY[1, 2]) AS u', { auth: alice })).length, 2);
    });
  });

  describe('SHARED table access levels', () => {
    it('PUBLIC: users read but do not write; service, dba and system write', async () => {
      assert.deepEqual(await server.rows('SELECT id, v FROM a.pub ORDER BY id', { auth: alice }), [{ id: 1, v: 'public-1' }, { id: 2, v: 'public-2' }]);
      assert.deepEqual(await server.rows('SELECT v FROM a.pub WHERE id = 2', { auth: bob }), [{ v: 'public-2' }]);
      assertError(await server.sql("INSERT INTO a.pub VALUES (3, 'user-write')", { auth: alice }), 403, 'PERMISSION_DENIED', /a\.pub/);
      assertError(await server.sql("UPDATE a.pub SET v = 'x' WHERE id = 1", { auth: alice }), 403, 'PERMISSION_DENIED');
      assertError(await server.sql('DELETE FROM a.pub WHERE id = 1', { auth: alice }), 403, 'PERMISSION_DENIED');
      assertError(await server.sql("EXECUTE AS USER 'alice' (INSERT INTO a.pub VALUES (4, 'x'))"), 403, 'PERMISSION_DENIED');
      await server.ok("INSERT INTO a.pub VALUES (10, 'svc-write')", { auth: svc });
      await server.ok("UPDATE a.pub SET v = 'dba-write' WHERE id = 10", { auth: dba });
      assert.deepEqual(await server.rows('SELECT id, v FROM a.pub WHERE id >= 2 ORDER BY id', { auth: alice }), [{ id: 2, v: 'public-2' }, { id: 10, v: 'dba-write' }]);
    });

    it('PRIVATE (the default): users neither read nor write, however reached; service reads and writes', async () => {
      for (const sql of [
        'SELECT * FROM a.priv',
        'SELECT secret FROM a.priv WHERE id = 1',
        'SELECT n.body, p.secret FROM a.notes n JOIN a.priv p ON p.id = n.id',
        'SELECT body FROM a.notes WHERE body IN (SELECT secret FROM a.priv)',
        'SELECT v FROM a.pub UNION SELECT secret FROM a.priv',
        'WITH p AS (SELECT * FROM a.priv) SELECT * FROM p',
        'INSERT INTO a.notes SELECT 300, secret FROM a.priv',
        "INSERT INTO a.priv VALUES (2, 'x')",
      ]) {
        const res = await server.sql(sql, { auth: alice });
        assertError(res, 403, 'PERMISSION_DENIED', /a\.priv/);
        assert.doesNotMatch(JSON.stringify(res.body), /private-1/);
      }
      assertError(await server.sql("EXECUTE AS USER 'alice' (SELECT * FROM a.priv)"), 403, 'PERMISSION_DENIED');
      assert.deepEqual(await server.rows('SELECT secret FROM a.priv', { auth: svc }), [{ secret: 'private-1' }]);
      await server.ok("INSERT INTO a.priv VALUES (2, 'svc')", { auth: svc });
      assert.deepEqual(await server.rows('SELECT id FROM a.notes WHERE id = 300', { auth: alice }), []);
    });

    it('DBA: only dba and system read it', async () => {
      assertError(await server.sql('SELECT * FROM a.dbaonly', { auth: alice }), 403, 'PERMISSION_DENIED');
      assertError(await server.sql('SELECT * FROM a.dbaonly', { auth: svc }), 403, 'PERMISSION_DENIED');
      assert.deepEqual(await server.rows('SELECT secret FROM a.dbaonly', { auth: dba }), [{ secret: 'dba-secret' }]);
      assert.deepEqual(await server.rows('SELECT secret FROM a.dbaonly WHERE id = 1'), [{ secret: 'dba-secret' }]);
    });

    it('a SHARED table is one partition: every reader sees the same rows', async () => {
      await server.ok("CREATE SHARED TABLE a.board (id INT PRIMARY KEY, msg TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
      await server.ok("INSERT INTO a.board VALUES (1, 'from-svc')", { auth: svc });
      await server.ok("INSERT INTO a.board VALUES (2, 'from-root')");
      const expected = [{ id: 1, msg: 'from-svc' }, { id: 2, msg: 'from-root' }];
      for (const auth of [alice, bob, svc, dba]) assert.deepEqual(await server.rows('SELECT id, msg FROM a.board ORDER BY id', { auth }), expected);
    });
  });
});
