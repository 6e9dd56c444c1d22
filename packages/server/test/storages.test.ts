/**
 * Storages on the filesystem: CREATE/ALTER/DROP STORAGE, SHOW STORAGES, system.storages,
 * STORAGE CHECK, and tables placed by a storage's templates (upstream's smoke test layout:
 * `<PATH>/ns_<ns>/tbl_<table>/usr_<account id>/` and `<PATH>/ns_<ns>/table_<table>/`), read back
 * cold after a restart. S3 storages: s3-storage.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestServer, assertError } from './harness.js';

describe('filesystem storages', () => {
  let server: TestServer;
  const base = mkdtempSync(join(tmpdir(), 'kalamdb-storage-'));
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server.dispose();
    rmSync(base, { recursive: true, force: true });
  });

  it('lists the built-in local storage', async () => {
    const rows = await server.rows('SHOW STORAGES');
    assert.equal(rows[0]!.storage_id, 'local');
    assert.equal(rows[0]!.storage_type, 'filesystem');
    assert.equal(rows[0]!.base_directory, join(server.dataDir, 'storage'));
    // A plain user sees the storages, not where the server keeps its files.
    const alice = await server.createUser('storage_viewer');
    const [seen] = await server.rows('SHOW STORAGES', { auth: alice });
    assert.deepEqual([seen!.storage_id, seen!.base_directory], ['local', null]);
    const [check] = await server.rows('STORAGE CHECK local');
    assert.equal(check!.status, 'healthy');
    for (const k of ['readable', 'writable', 'listable', 'deletable']) assert.equal(check![k], true, k);
    assert.equal(check!.total_bytes, null);
    assert.equal(check!.error, null);
    assert.ok(Math.abs(Number(check!.tested_at) / 1000 - Date.now()) < 60_000, 'tested_at is now');
    const [extended] = await server.rows('STORAGE CHECK local EXTENDED');
    assert.ok(Number(extended!.total_bytes) > 0 && Number(extended!.used_bytes) > 0);
  });

  it('places USER and SHARED tables by the storage templates and reads them back after a restart', async () => {
    await server.ok(`CREATE STORAGE tpl
      TYPE filesystem
      NAME 'Template Storage'
      DESCRIPTION 'custom templates'
      PATH '${base}'
      SHARED_TABLES_TEMPLATE 'ns_{namespace}/table_{tableName}'
      USER_TABLES_TEMPLATE 'ns_{namespace}/tbl_{tableName}/usr_{userId}'`);
    const [row] = await server.rows("SELECT * FROM system.storages WHERE storage_id = 'tpl'");
    assert.equal(row!.storage_name, 'Template Storage');
    assert.equal(row!.base_directory, base);
    assert.equal(row!.user_tables_template, 'ns_{namespace}/tbl_{tableName}/usr_{userId}');

    await server.ok('CREATE NAMESPACE app');
    await server.ok("CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER', STORAGE_ID = 'tpl')");
    await server.ok("CREATE TABLE app.conf (k TEXT PRIMARY KEY, v TEXT) WITH (TYPE = 'SHARED', STORAGE_ID = 'tpl')");
    const [schema] = await server.rows("SELECT storage_id FROM system.schemas WHERE table_name = 'notes' AND is_latest = true");
    assert.equal(schema!.storage_id, 'tpl');
    const alice = await server.createUser('alice');
    const [{ account_id: aliceId }] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'alice'") as [{ account_id: string }];
    await server.ok("INSERT INTO app.notes VALUES (1, 'one'), (2, 'two')", { auth: alice });
    await server.ok("INSERT INTO app.conf VALUES ('a', 'x')");
    await server.flushAndWait('app.notes');
    await server.flushAndWait('app.conf');

    const userDir = join(base, 'ns_app', 'tbl_notes', `usr_${aliceId}`);
    assert.ok(readdirSync(userDir).includes('manifest.json'));
    assert.ok(readdirSync(userDir).some((f) => /^batch-\d+\.parquet$/.test(f)));
    const sharedDir = join(base, 'ns_app', 'table_conf');
    assert.ok(readdirSync(sharedDir).some((f) => /^batch-\d+\.parquet$/.test(f)));
    assert.ok(!existsSync(join(server.dataDir, 'storage', 'app', 'notes')), 'nothing under the local storage');

    await server.stop();
    await server.launch();
    assert.deepEqual(await server.rows('SELECT id, body FROM app.notes ORDER BY id', { auth: alice }), [{ id: '1', body: 'one' }, { id: '2', body: 'two' }]);
    assert.deepEqual(await server.rows('SELECT k, v FROM app.conf'), [{ k: 'a', v: 'x' }]);
    // The storage survives the restart, and still refuses to go while tables use it.
    assertError(await server.sql('DROP STORAGE tpl'), 400, 'SQL_EXECUTION_ERROR', /Cannot drop storage 'tpl': 2 table\(s\) still using it/);
    assertError(await server.sql("ALTER STORAGE tpl SET USER_TABLES_TEMPLATE '{namespace}/{tableName}/{userId}'"), 400, 'SQL_EXECUTION_ERROR', /2 table\(s\) use it/);
    assertError(await server.sql("ALTER TABLE app.conf SET TBLPROPERTIES (STORAGE_ID = 'local')"), 400, 'SQL_EXECUTION_ERROR', /STORAGE_ID cannot change/);
    await server.ok("ALTER STORAGE tpl SET NAME 'Renamed' SET DESCRIPTION 'still here'");
    assert.equal((await server.rows("SELECT storage_name FROM system.storages WHERE storage_id = 'tpl'"))[0]!.storage_name, 'Renamed');

    await server.ok('DROP TABLE app.notes');
    await server.ok('DROP TABLE app.conf');
    assert.ok(!existsSync(join(base, 'ns_app', 'tbl_notes')), 'DROP TABLE removes the table\'s files in its storage');
    assert.ok(!existsSync(sharedDir));
    await server.ok('DROP STORAGE tpl');
    assert.ok(!(await server.rows('SHOW STORAGES')).some((r) => r.storage_id === 'tpl'));
    await server.ok('DROP STORAGE IF EXISTS tpl');
    assertError(await server.sql('DROP STORAGE tpl'), 400, 'SQL_EXECUTION_ERROR', /Storage 'tpl' not found/);
  });

  it('refuses bad storages with the reason', async () => {
    const cases: [string, RegExp][] = [
      [`CREATE STORAGE b1 TYPE filesystem PATH '${base}/x' USER_TABLES_TEMPLATE '{namespace}/{tableName}'`, /\{userId\} is required/],
      [`CREATE STORAGE b2 TYPE filesystem PATH '${base}/x' SHARED_TABLES_TEMPLATE '{tableName}/{namespace}'`, /\{namespace\} must appear before \{tableName\}/],
      [`CREATE STORAGE b3 TYPE filesystem PATH '${base}/x' USER_TABLES_TEMPLATE '{namespace}/{tableName}/../{userId}'`, /'\.\.'/],
      [`CREATE STORAGE b4 TYPE filesystem PATH '${base}/x' USER_TABLES_TEMPLATE '{namespace}/{tableName}_{userId}'`, /last path segment/],
      ["CREATE STORAGE b5 TYPE filesystem PATH '/etc/kalam'", /system directory \/etc/],
      [`CREATE STORAGE b6 TYPE filesystem PATH '${server.dataDir}/rocksdb/x'`, /inside the data directory/],
      // Over another storage's tree (the local one's too): a flush could overwrite another table's files.
      [`CREATE STORAGE b10 TYPE filesystem PATH '${server.dataDir}/storage/app'`, /overlaps storage 'local'/],
      [`CREATE STORAGE b7 TYPE ftp PATH '${base}'`, /Invalid storage type 'ftp'/],
      [`CREATE STORAGE b8 TYPE filesystem PATH '${base}' CONFIG 'not json'`, /Invalid CONFIG JSON/],
      ['CREATE STORAGE local TYPE filesystem PATH \'/tmp/x\'', /already exists/],
      ["CREATE STORAGE b9 TYPE s3 BASE_DIRECTORY 's3://lake' CONFIG '{\"endpoint\":\"http://127.0.0.1:9\"}'", /allow_http/],
      ["CREATE STORAGE 'bad/id' TYPE filesystem PATH '/tmp/x'", /Invalid storage id/],
      ['DROP STORAGE local', /built in/],
      ["CREATE TABLE default.nope (id INT PRIMARY KEY) WITH (TYPE = 'SHARED', STORAGE_ID = 'does_not_exist')", /Storage 'does_not_exist' does not exist/],
    ];
    for (const [sql, message] of cases) {
      const res = await server.sql(sql);
      assert.equal(res.status, 400, sql);
      assert.match(res.body.error?.message ?? '', message, sql);
    }
    // A path that cannot hold a directory: refused by the health check, with the probe's reason.
    const file = join(base, 'a-file');
    writeFileSync(file, 'x');
    assertError(await server.sql(`CREATE STORAGE b10 TYPE filesystem PATH '${file}'`), 400, 'SQL_EXECUTION_ERROR', /Storage connectivity check failed .*write: /);
    assertError(await server.sql('STORAGE CHECK nowhere'), 400, 'SQL_EXECUTION_ERROR', /Storage 'nowhere' not found/);
    assert.ok(!(await server.rows('SHOW STORAGES')).some((r) => String(r.storage_id).startsWith('b')));
  });

  it('of two overlapping storages created at once, one is refused (the overlap is checked again under the DDL lock)', async () => {
    for (let round = 0; round < 3; round++) {
      const outer = join(base, `race${round}`);
      const results = await Promise.all([
        server.sql(`CREATE STORAGE outer${round} TYPE filesystem PATH '${outer}'`),
        server.sql(`CREATE STORAGE inner${round} TYPE filesystem PATH '${outer}/sub'`),
      ]);
      assert.equal(results.filter((r) => r.status === 200).length, 1, results.map((r) => JSON.stringify(r.body)).join(' | '));
      assert.match(JSON.stringify(results.find((r) => r.status !== 200)!.body), /overlaps storage/);
    }
  });

  it('lets only dba and system manage storages; everyone may list them', async () => {
    const bob = await server.createUser('bob');
    const dba = await server.createUser('dora', 'dba');
    assertError(await server.sql(`CREATE STORAGE nope TYPE filesystem PATH '${base}/n'`, { auth: bob }), 403, 'PERMISSION_DENIED');
    assertError(await server.sql('STORAGE CHECK local', { auth: bob }), 403, 'PERMISSION_DENIED');
    assertError(await server.sql('DROP STORAGE IF EXISTS nope', { auth: bob }), 403, 'PERMISSION_DENIED');
    assert.ok((await server.rows('SHOW STORAGES', { auth: bob })).length >= 1);
    await server.ok(`CREATE STORAGE by_dba TYPE filesystem PATH '${base}/dba' CREDENTIALS '{"token":"s3cr3t","user":"u"}'`, { auth: dba });
    const [masked] = await server.rows("SELECT credentials FROM system.storages WHERE storage_id = 'by_dba'", { auth: dba });
    assert.deepEqual(JSON.parse(String(masked!.credentials)), { token: '***', user: 'u' });
    const [plain] = await server.rows("SELECT credentials FROM system.storages WHERE storage_id = 'by_dba'");
    assert.deepEqual(JSON.parse(String(plain!.credentials)), { token: 's3cr3t', user: 'u' });
    await server.ok('DROP STORAGE by_dba', { auth: dba });
  });
});

/**
 * An attack review (round 4): a storage's probe against a peer that accepts and never answers held
 * the DDL lock (every CREATE/ALTER/DROP, user management, GRANT) for minutes; a dba pointed a stored
 * storage's CONFIG at their own endpoint and received its credentials, signed.
 */
describe('S3 storage probes and where credentials go', () => {
  let server: TestServer;
  let blackhole: Server;
  const connections: string[] = [];
  before(async () => {
    server = await TestServer.start();
    // Accepts connections, records what arrives, never answers.
    blackhole = createServer((socket) => {
      connections.push('');
      socket.on('data', (d: Buffer) => { connections[connections.length - 1] += d.toString('latin1'); });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    blackhole.close();
    await server.dispose();
  });
  const endpoint = (): string => `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`;
  const s3 = (id: string, credentials: string | null): string =>
    `CREATE STORAGE ${id} TYPE s3 BASE_DIRECTORY 's3://bkt/${id}' ${credentials === null ? '' : `CREDENTIALS '${credentials}' `}CONFIG '${JSON.stringify({ endpoint: endpoint(), allow_http: true })}'`;

  it('a probe that gets no answer gives up, and DDL of others does not wait for it', async () => {
    const started = performance.now();
    const creating = server.sql(s3('hangs', '{"access_key_id":"a","secret_access_key":"b"}'));
    await new Promise((r) => setTimeout(r, 500));
    const ddlStarted = performance.now();
    await server.ok('CREATE NAMESPACE meanwhile');
    assert.ok(performance.now() - ddlStarted < 3_000, `CREATE NAMESPACE waited ${Math.round(performance.now() - ddlStarted)} ms`);
    assertError(await creating, 400, 'SQL_EXECUTION_ERROR', /Storage connectivity check failed .*no answer within 10000 ms/);
    assert.ok(performance.now() - started < 20_000);
    assert.ok(connections.length > 0, 'the probe reached the endpoint');
    assert.deepEqual(await server.rows("SELECT storage_id FROM system.storages WHERE storage_id = 'hangs'"), []);
  });

  it("a dba cannot make an S3 storage sign with the server's own environment credentials", async () => {
    const dba = await server.createUser('point_dba', 'dba');
    const before = connections.length;
    assertError(await server.sql(s3('env_creds', null), { auth: dba }), 403, 'PERMISSION_DENIED', /environment credentials/);
    assert.equal(connections.length, before, 'refused before any request');
  });
});
