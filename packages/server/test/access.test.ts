/**
 * Access control added on top of the role matrix: RESTRICTED tables with GRANT/REVOKE, ALTER TABLE
 * SET ACCESS_LEVEL, the audit log, and attacks on the cold tier's files (read_parquet of another
 * user's segment, path traversal in user names). The broader role matrix and isolation suite is in
 * auth.test.ts; login throttling in login-throttle.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestServer } from './harness.js';

describe('access control', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };
  let svc: { user: string; password: string };
  let dba: { user: string; password: string };

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
    svc = await server.createUser('svc', 'service');
    dba = await server.createUser('dba1', 'dba');
    await server.ok('CREATE NAMESPACE acl');
    await server.ok("CREATE SHARED TABLE acl.docs (id BIGINT PRIMARY KEY, body TEXT) WITH (ACCESS_LEVEL = 'RESTRICTED')");
    await server.ok("INSERT INTO acl.docs VALUES (1, 'secret')", { auth: svc });
  });
  after(async () => {
    await server.dispose();
  });

  it('RESTRICTED: users read only with a grant, never write; REVOKE takes effect at once', async () => {
    const denied = await server.sql('SELECT body FROM acl.docs', { auth: alice });
    assert.equal(denied.status, 403);
    assert.doesNotMatch(JSON.stringify(denied.body), /secret/);
    const [g] = await server.ok("GRANT SELECT ON acl.docs TO 'alice'", { auth: dba });
    assert.equal(g!.message, "Granted SELECT on 'acl.docs' to 'alice'");
    assert.deepEqual(await server.rows('SELECT body FROM acl.docs', { auth: alice }), [{ body: 'secret' }]);
    assert.deepEqual(await server.rows('SELECT body FROM acl.docs WHERE id = 1', { auth: alice }), [{ body: 'secret' }]);
    assert.equal((await server.sql('SELECT body FROM acl.docs', { auth: bob })).status, 403, 'the grant is alice\'s only');
    assert.equal((await server.sql("INSERT INTO acl.docs VALUES (2, 'x')", { auth: alice })).status, 403, 'SELECT grants no writes');
    assert.equal((await server.sql("GRANT SELECT ON acl.docs TO 'bob'", { auth: alice })).status, 403, 'users cannot grant');
    // The table's description follows the same rule as its rows.
    assert.equal((await server.sql('DESCRIBE TABLE acl.docs', { auth: alice })).status, 200, 'alice, granted, sees the columns');
    for (const sql of ['DESCRIBE TABLE acl.docs', 'SHOW COLUMNS FROM acl.docs', 'DESCRIBE TABLE acl.docs HISTORY']) {
      const r = await server.sql(sql, { auth: bob });
      assert.equal(r.status, 403, `${sql} as bob`);
      assert.doesNotMatch(JSON.stringify(r.body), /"body"/);
    }
    await server.ok("REVOKE SELECT ON acl.docs FROM 'alice'", { auth: dba });
    assert.equal((await server.sql('SELECT body FROM acl.docs', { auth: alice })).status, 403);
    const bad = await server.sql("GRANT SELECT ON acl.docs TO 'nobody'", { auth: dba });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error!.message, /nobody.*does not exist/);
  });

  it('ALTER TABLE SET ACCESS_LEVEL changes who reads and writes, and shows in system.tables', async () => {
    await server.ok("CREATE SHARED TABLE acl.board (id BIGINT PRIMARY KEY, note TEXT)");
    await server.ok("INSERT INTO acl.board VALUES (1, 'hello')");
    assert.equal((await server.sql('SELECT note FROM acl.board', { auth: alice })).status, 403, 'PRIVATE by default');
    const [m] = await server.ok("ALTER TABLE acl.board SET ACCESS_LEVEL = 'PUBLIC'", { auth: dba });
    assert.equal(m!.message, "Table 'acl.board' access level set to PUBLIC");
    assert.deepEqual(await server.rows('SELECT note FROM acl.board', { auth: alice }), [{ note: 'hello' }]);
    assert.equal((await server.sql("INSERT INTO acl.board VALUES (2, 'x')", { auth: alice })).status, 403, 'PUBLIC is read-only for users');
    await server.ok("ALTER TABLE acl.board SET ACCESS_LEVEL DBA");
    assert.equal((await server.sql('SELECT note FROM acl.board', { auth: svc })).status, 403, 'DBA level excludes service');
    assert.deepEqual(await server.rows("SELECT access_level FROM system.tables WHERE table_name = 'board'"), [{ access_level: 'DBA' }]);
    assert.equal((await server.sql("ALTER TABLE acl.board SET ACCESS_LEVEL PUBLIC", { auth: alice })).status, 403);
    const bad = await server.sql("ALTER TABLE acl.board SET ACCESS_LEVEL 'OPEN'");
    assert.equal(bad.status, 400);
    assert.match(bad.body.error!.message, /Unknown ACCESS_LEVEL 'OPEN'/);
    await server.stop();
    await server.launch();
    assert.deepEqual(await server.rows("SELECT access_level FROM system.tables WHERE table_name = 'board'"), [{ access_level: 'DBA' }], 'persisted');
  });

  it('the audit log records DDL, user and role changes, grants, impersonation and failed logins', async () => {
    await server.ok("CREATE USER 'audited' WITH PASSWORD 'audited-pw-1' ROLE user", { auth: dba });
    await server.ok("ALTER USER 'audited' SET ROLE service");
    await server.ok("EXECUTE AS USER 'alice' (SELECT 1)", { auth: svc });
    assert.equal((await server.sql('DROP TABLE acl.docs', { auth: alice })).status, 403);
    const res = await server.fetch('/v1/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'audited', password: 'wrong-password' }) });
    assert.equal(res.status, 401);
    const rows = await server.rows('SELECT actor, effective_user, action, target, status FROM system.audit_log ORDER BY timestamp, audit_id');
    const has = (want: Record<string, unknown>): boolean => rows.some((r) => Object.entries(want).every(([k, v]) => r[k] === v));
    assert.ok(has({ actor: 'dba1', action: 'create_user', target: 'audited', status: 'ok' }), JSON.stringify(rows));
    assert.ok(has({ actor: 'root', action: 'alter_user', target: 'audited (role)', status: 'ok' }));
    assert.ok(has({ actor: 'svc', effective_user: 'svc', action: 'execute_as', target: 'alice', status: 'ok' }));
    assert.ok(has({ actor: 'alice', action: 'drop_table', target: 'acl.docs', status: 'denied' }));
    assert.ok(has({ actor: 'audited', action: 'login', status: 'failed' }));
    assert.ok(has({ actor: 'dba1', action: 'grant', target: 'acl.docs to alice', status: 'ok' }));
    assert.ok(has({ action: 'create_table', target: 'acl.board', status: 'ok' }));
    assert.ok(!JSON.stringify(rows).includes('audited-pw-1') && !JSON.stringify(rows).includes('wrong-password'), 'no passwords in the audit log');
    assert.equal((await server.sql('SELECT * FROM system.audit_log', { auth: svc })).status, 403, 'dba/system only');
  });

  it('users change their own password only with the old one; admins reset others without it', async () => {
    const carol = await server.createUser('carol', 'user', 'carol-password-1');
    const noOld = await server.sql("ALTER USER 'carol' SET PASSWORD 'carol-password-2'", { auth: carol });
    assert.equal(noOld.status, 403);
    assert.match(noOld.body.error!.message, /OLD PASSWORD/);
    const wrongOld = await server.sql("ALTER USER 'carol' SET PASSWORD 'carol-password-2' OLD PASSWORD 'guess-guess'", { auth: carol });
    assert.equal(wrongOld.status, 403);
    assert.match(wrongOld.body.error!.message, /old password is not correct/);
    await server.ok("ALTER USER 'carol' SET PASSWORD 'carol-password-2' OLD PASSWORD 'carol-password-1'", { auth: carol });
    assert.equal((await server.sql('SELECT 1', { auth: carol })).status, 401, 'the old password stopped working');
    assert.equal((await server.sql('SELECT 1', { auth: { user: 'carol', password: 'carol-password-2' } })).status, 200);
    assert.equal((await server.sql("ALTER USER 'bob' SET PASSWORD 'bob-password-9' OLD PASSWORD 'bob-password-1'", { auth: { user: 'carol', password: 'carol-password-2' } })).status, 403, 'not someone else\'s');
    await server.ok("ALTER USER 'carol' SET PASSWORD 'carol-password-3'", { auth: dba });
    assert.equal((await server.sql('SELECT 1', { auth: { user: 'carol', password: 'carol-password-3' } })).status, 200, 'an admin resets without the old one');
  });

  it('no SQL reaches another user\'s Parquet files, and user names cannot become paths', async () => {
    await server.ok('CREATE USER TABLE acl.private (id BIGINT PRIMARY KEY, secret TEXT)');
    await server.ok("INSERT INTO acl.private VALUES (1, 'alice-secret')", { auth: alice });
    await server.flushAndWait('acl.private');
    const [{ account_id: aliceId }] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'alice' AND deleted_at IS NULL") as [{ account_id: string }];
    const file = join(server.dataDir, 'storage', 'acl', 'private', aliceId, 'batch-0.parquet');
    for (const auth of [bob, svc, dba, undefined]) {
      for (const sql of [
        `SELECT * FROM read_parquet('${file}')`,
        `SELECT * FROM read_parquet(['${file}'])`,
        `SELECT * FROM parquet_scan('${file}')`,
        `SELECT (SELECT count(*) FROM read_parquet('${file}'))`,
        `SELECT * FROM duckdb_settings()`,
        `SELECT current_setting('allowed_directories')`,
        `SELECT * FROM glob('${server.dataDir}/**')`,
      ]) {
        const res = await server.sql(sql, auth === undefined ? {} : { auth });
        assert.ok(res.status === 403 || res.status === 400, `${sql}: ${res.status}`);
        assert.doesNotMatch(JSON.stringify(res.body), /alice-secret/, sql);
      }
    }
    for (const name of ['../etc', 'a/b', '..', '.hidden', 'x\\y']) {
      const res = await server.sql(`CREATE USER '${name}' WITH PASSWORD 'long-enough-1'`);
      assert.equal(res.status, 400, name);
      assert.equal(res.body.error!.code, 'INVALID_SQL', name);
    }
  });
});
