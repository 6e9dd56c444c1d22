/**
 * EXPORT USER DATA / SHOW EXPORT / GET /v1/exports/{user}/{id}: a user with rows in several USER
 * tables (some flushed to Parquet, then updated and deleted; some only hot) exports; the archive is
 * downloaded over HTTP, unzipped, and every Parquet file is opened with DuckDB and compared with
 * what the user's own SELECT returns. Also: who may download (owner, admins; not other users),
 * malformed and traversing paths, EXECUTE AS USER, the statement grammar, one running export per
 * user, the per-user archive count and the size cap.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { unzipSync } from 'fflate';
import { DuckDBInstance } from '@duckdb/node-api';
import { TestServer, assertError, authHeader, type Auth, type SqlResponse } from './harness.js';

type Creds = { user: string; password: string };

const STARTED = /^User data export started\. Job ID: (UE-\S+)\. Use SHOW EXPORT to check status and get the download link\.$/;

describe('user data export', () => {
  let server: TestServer;
  let alice: Creds;
  let bob: Creds;
  let ops: Creds;
  let scratch: string;

  /** Runs EXPORT USER DATA (as `auth`), waits for the job; returns the job row. */
  const exportAndWait = async (auth: Auth, sql = 'EXPORT USER DATA'): Promise<Record<string, unknown>> => {
    const [res] = await server.ok(sql, { auth });
    const id = STARTED.exec(res!.message ?? '')?.[1];
    assert.ok(id, res!.message);
    return server.waitForJob(id, 30_000);
  };
  const showExport = (auth: Auth): Promise<Record<string, unknown>[]> => server.rows('SHOW EXPORT', { auth });
  /** GET with the path sent byte for byte (fetch would normalize `..`). */
  const rawGet = (path: string, auth: Auth, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path, method, headers: authHeader(auth) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  const pathOf = (url: string): string => new URL(url).pathname;
  const envelope = (r: { status: number; body: Buffer }): { status: number; body: SqlResponse } => ({ status: r.status, body: JSON.parse(r.body.toString()) as SqlResponse });

  /** Rows of a Parquet file as DuckDB reads them (JSON text per row, ordered by id). */
  const parquetRows = async (bytes: Uint8Array): Promise<{ rows: Record<string, unknown>[]; codecs: string[] }> => {
    const path = join(scratch, `${randomBytes(6).toString('hex')}.parquet`);
    writeFileSync(path, bytes);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const rows = (await (await conn.run(`SELECT * FROM read_parquet('${path}') ORDER BY id`)).getRowObjectsJson()) as Record<string, unknown>[];
      const codecs = (await (await conn.run(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`)).getRows()).map((r) => String(r[0]));
      return { rows, codecs };
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  };

  before(async () => {
    server = await TestServer.start();
    scratch = mkdtempSync(join(tmpdir(), 'kalamdb-export-test-'));
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
    ops = await server.createUser('ops', 'dba');
    await server.ok('CREATE NAMESPACE exp');
    await server.ok('CREATE USER TABLE exp.notes (id BIGINT PRIMARY KEY, body TEXT, score DOUBLE)');
    await server.ok('CREATE USER TABLE exp.tags (id INT PRIMARY KEY, tag TEXT NOT NULL, at TIMESTAMP)');
    await server.ok('CREATE USER TABLE exp.nothing_here (id INT PRIMARY KEY, v TEXT)');
    await server.ok("CREATE SHARED TABLE exp.board (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("INSERT INTO exp.board VALUES (1, 'shared-row')");
    await server.ok("INSERT INTO exp.notes VALUES (1, 'a1', 1.5), (2, 'a2', 2.5), (3, 'a3', 3.5), (4, 'a4', 4.5), (5, 'a5', 5.5)", { auth: alice });
    await server.ok("INSERT INTO exp.notes VALUES (1, 'bob-1', 10), (2, 'bob-2', 20), (7, 'bob-7', 70)", { auth: bob });
    await server.ok("INSERT INTO exp.nothing_here VALUES (1, 'only bob')", { auth: bob });
    // notes goes to the cold tier, then changes hot on top of it: an update and a delete of cold
    // rows (the newest version and a tombstone in RocksDB) and a new hot row.
    await server.flushAndWait('exp.notes');
    await server.ok("UPDATE exp.notes SET body = 'a2-updated', score = 22.5 WHERE id = 2", { auth: alice });
    await server.ok('DELETE FROM exp.notes WHERE id = 3', { auth: alice });
    await server.ok("INSERT INTO exp.notes VALUES (6, 'a6', NULL)", { auth: alice });
    // tags stays hot: inserted, updated, one deleted.
    await server.ok("INSERT INTO exp.tags VALUES (1, 'red', '2026-01-02T03:04:05Z'), (2, 'green', NULL), (3, 'blue', NULL)", { auth: alice });
    await server.ok("UPDATE exp.tags SET tag = 'crimson' WHERE id = 1", { auth: alice });
    await server.ok('DELETE FROM exp.tags WHERE id = 2', { auth: alice });
    await server.ok("INSERT INTO exp.tags VALUES (1, 'bob-tag', NULL)", { auth: bob });
  });
  after(async () => {
    await server.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('SHOW EXPORT is empty before any export', async () => {
    const res = await server.ok('SHOW EXPORT', { auth: alice });
    assert.deepEqual(res[0]!.schema!.map((f) => [f.name, f.data_type]),
      [['job_id', 'Text'], ['status', 'Text'], ['created_at', 'Timestamp'], ['message', 'Text'], ['download_url', 'Text']]);
    assert.equal(res[0]!.row_count, 0);
  });

  let aliceUrl = '';
  let aliceZip: Buffer = Buffer.alloc(0);

  it('exports exactly the user\'s current rows of every USER table, one zstd Parquet file per table, with a manifest', async () => {
    const job = await exportAndWait(alice);
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.job_type, 'user_export');
    assert.equal(job.user_id, 'alice');
    assert.equal(job.rows_processed, '7');
    assert.match(String(job.message), /^Exported 2 Parquet files \(\d+ bytes\) to export-alice-\d{8}-\d{6}\.zip$/);

    const [row] = await showExport(alice);
    assert.equal(row!.job_id, job.job_id);
    assert.equal(row!.status, 'completed');
    assert.equal(row!.message, job.message);
    assert.equal(typeof row!.created_at, 'number');
    aliceUrl = String(row!.download_url);
    assert.match(aliceUrl, new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/v1/exports/alice/export-alice-\\d{8}-\\d{6}$`));

    const res = await rawGet(pathOf(aliceUrl), alice);
    assert.equal(res.status, 200, res.body.toString().slice(0, 300));
    assert.equal(res.headers['content-type'], 'application/zip');
    assert.equal(Number(res.headers['content-length']), res.body.length);
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="export-alice-\d{8}-\d{6}\.zip"$/);
    assert.deepEqual([...res.body.subarray(0, 4)], [0x50, 0x4b, 0x03, 0x04]);
    aliceZip = res.body;

    const files = unzipSync(new Uint8Array(res.body));
    // Only tables where alice has rows; SHARED tables are not exported (as upstream).
    assert.deepEqual(Object.keys(files).sort(), ['exp/notes.parquet', 'exp/tags.parquet', 'manifest.json']);

    const notes = await parquetRows(files['exp/notes.parquet']!);
    assert.deepEqual(notes.codecs, ['ZSTD']);
    assert.deepEqual(notes.rows, [
      { id: '1', body: 'a1', score: 1.5 },
      { id: '2', body: 'a2-updated', score: 22.5 },
      { id: '4', body: 'a4', score: 4.5 },
      { id: '5', body: 'a5', score: 5.5 },
      { id: '6', body: 'a6', score: null },
    ]);
    // The same rows alice's own SELECT sees.
    const selected = await server.rows('SELECT id, body, score FROM exp.notes ORDER BY id', { auth: alice });
    assert.deepEqual(notes.rows.map((r) => [r.id, r.body, r.score]), selected.map((r) => [r.id, r.body, r.score]));

    const tags = await parquetRows(files['exp/tags.parquet']!);
    assert.deepEqual(tags.rows, [
      { id: 1, tag: 'crimson', at: '2026-01-02 03:04:05' },
      { id: 3, tag: 'blue', at: null },
    ]);

    const manifest = JSON.parse(Buffer.from(files['manifest.json']!).toString('utf8'));
    assert.equal(manifest.user, 'alice');
    assert.equal(manifest.format, 'kalamdb-user-export');
    assert.equal(manifest.job_id, job.job_id);
    assert.ok(!Number.isNaN(Date.parse(manifest.created_at)));
    assert.deepEqual(manifest.tables.map((t: { namespace: string; table: string; file: string; row_count: number }) => [t.namespace, t.table, t.file, t.row_count]),
      [['exp', 'notes', 'exp/notes.parquet', 5], ['exp', 'tags', 'exp/tags.parquet', 2]]);
    assert.deepEqual(manifest.tables[1].columns, [
      { name: 'id', data_type: 'Int', nullable: false, primary_key: true },
      { name: 'tag', data_type: 'Text', nullable: false, primary_key: false },
      { name: 'at', data_type: 'Timestamp', nullable: true, primary_key: false },
    ]);
  });

  it('the archive is stored under <data-dir>/exports/<account id>/, and nothing is left in the work directory', async () => {
    const [user] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'alice'");
    const dir = join(server.dataDir, 'exports', String(user!.account_id));
    const names = readdirSync(dir);
    assert.equal(names.length, 1);
    assert.match(names[0]!, /^export-alice-\d{8}-\d{6}\.zip$/);
    assert.deepEqual(readdirSync(join(server.dataDir, 'exports', '.work')), []);
  });

  it('another user gets 403 for the archive (and for one that does not exist: existence is not revealed); admins may download', async () => {
    const path = pathOf(aliceUrl);
    assertError(envelope(await rawGet(path, bob)), 403, 'PERMISSION_DENIED', /^You can only download your own exports$/);
    assertError(envelope(await rawGet('/v1/exports/alice/export-alice-20200101-000000', bob)), 403, 'PERMISSION_DENIED');
    assertError(envelope(await rawGet(path, null)), 401, 'MISSING_AUTHORIZATION');
    const asDba = await rawGet(path, ops);
    assert.equal(asDba.status, 200);
    assert.ok(asDba.body.equals(aliceZip));
    const asRoot = await rawGet(path, { user: 'root', password: 'root-password-for-tests' });
    assert.equal(asRoot.status, 200);
    assert.ok(asRoot.body.equals(aliceZip));
    // bob's SHOW EXPORT does not list alice's export.
    assert.deepEqual(await showExport(bob), []);
  });

  it('malformed ids and traversing paths are refused with the error envelope; a well-formed unknown id is 404', async () => {
    const bad = [
      '/v1/exports/alice/../../jwt-secret',
      '/v1/exports/alice/..%2F..%2Fjwt-secret',
      '/v1/exports/alice/%2e%2e',
      '/v1/exports/alice/export-alice-1%00',
      '/v1/exports/alice/not-an-export-id',
      '/v1/exports/alice/export-alice-20200101-000000/extra',
      '/v1/exports/alice/%E0%A4%A',
      '/v1/exports/alice/',
    ];
    for (const path of bad) {
      const res = await rawGet(path, alice);
      assert.equal(res.status, 400, `${path}: ${res.body.toString()}`);
      assertError(envelope(res), 400, 'INVALID_INPUT', /^Invalid export path$/);
    }
    assertError(envelope(await rawGet('/v1/exports/alice/export-alice-20200101-000000', alice)), 404, 'NOT_FOUND', /^Export not found$/);
    assertError(envelope(await rawGet('/v1/exports/nobody/export-nobody-20200101-000000', ops)), 404, 'NOT_FOUND');
    assertError(envelope(await rawGet(pathOf(aliceUrl), alice, 'POST')), 400, 'BAD_REQUEST');
  });

  it('EXECUTE AS USER exports the impersonated user\'s data (admins), and a user cannot impersonate another', async () => {
    const job = await exportAndWait({ user: 'root', password: 'root-password-for-tests' }, "EXECUTE AS USER 'bob' (EXPORT USER DATA)");
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.user_id, 'bob');
    const [row] = await showExport(bob);
    assert.equal(row!.job_id, job.job_id);
    const res = await rawGet(pathOf(String(row!.download_url)), bob);
    assert.equal(res.status, 200);
    const files = unzipSync(new Uint8Array(res.body));
    assert.deepEqual(Object.keys(files).sort(), ['exp/notes.parquet', 'exp/nothing_here.parquet', 'exp/tags.parquet', 'manifest.json']);
    const notes = await parquetRows(files['exp/notes.parquet']!);
    assert.deepEqual(notes.rows.map((r) => r.body), ['bob-1', 'bob-2', 'bob-7']);
    assertError(await server.sql("EXECUTE AS USER 'bob' (EXPORT USER DATA)", { auth: alice }), 403, 'PERMISSION_DENIED');
  });

  it('parses as upstream: nothing may follow the keywords', async () => {
    assertError(await server.sql("EXPORT USER DATA TO '/tmp'", { auth: alice }), 400, 'INVALID_SQL', /^Unexpected tokens after EXPORT USER DATA: 'TO '\/tmp''$/);
    assertError(await server.sql('SHOW EXPORT ALL', { auth: alice }), 400, 'INVALID_SQL', /^Unexpected tokens after SHOW EXPORT: 'ALL'$/);
    assertError(await server.sql('EXPORT USER', { auth: alice }), 400, 'INVALID_SQL', /^Expected EXPORT USER DATA statement$/);
    const [lower] = await server.ok('export user data', { auth: bob });
    assert.match(lower!.message!, STARTED);
    await server.waitForJob(STARTED.exec(lower!.message!)![1]!, 30_000);
  });

  it('one export per user runs at a time: a second one while the first runs is refused with upstream\'s words', async () => {
    const res = await server.sql('EXPORT USER DATA; EXPORT USER DATA', { auth: alice });
    assertError(res, 400, 'SQL_EXECUTION_ERROR', /^Statement 2 failed: Job with idempotency key 'user_export:alice:\d{8}' is already running or queued$/);
    const [running] = await showExport(alice);
    await server.waitForJob(String(running!.job_id), 30_000);
    // Two requests at once: exactly one starts.
    const both = await Promise.all([server.sql('EXPORT USER DATA', { auth: alice }), server.sql('EXPORT USER DATA', { auth: alice })]);
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 400], JSON.stringify(both.map((r) => r.body)));
    const started = both.find((r) => r.status === 200)!;
    await server.waitForJob(STARTED.exec(started.body.results[0]!.message!)![1]!, 30_000);
  });

  it('a dropped user\'s archives are no longer served, and the next sweep (here: the restart) deletes them', async () => {
    const [row] = await showExport(bob);
    const path = pathOf(String(row!.download_url));
    const [user] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'bob'");
    const dir = join(server.dataDir, 'exports', String(user!.account_id));
    assert.ok(readdirSync(dir).length > 0);
    await server.ok("DROP USER 'bob'");
    assertError(envelope(await rawGet(path, ops)), 404, 'NOT_FOUND');
    await server.stop();
    await server.launch();
    assert.throws(() => readdirSync(dir), /ENOENT/);
    // alice's archive is still there and served.
    assert.equal((await rawGet(pathOf(aliceUrl), alice)).status, 200);
  });
});

describe('user data export limits', () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.startWithConfig({ exports_per_user_max: 2, export_bytes_max: 8192 });
    await server.ok('CREATE NAMESPACE lim');
    await server.ok('CREATE USER TABLE lim.t (id INT PRIMARY KEY, v TEXT)');
  });
  after(async () => {
    await server.dispose();
  });

  const exportAndWait = async (auth: Creds): Promise<Record<string, unknown>> => {
    const [res] = await server.ok('EXPORT USER DATA', { auth });
    return server.waitForJob(STARTED.exec(res!.message ?? '')![1]!, 30_000);
  };

  it('keeps the newest exports_per_user_max archives; older ones lose their link and answer 404', async () => {
    const carol = await server.createUser('carol');
    await server.ok("INSERT INTO lim.t VALUES (1, 'x')", { auth: carol });
    for (let i = 0; i < 3; i++) {
      const job = await exportAndWait(carol);
      assert.equal(job.status, 'completed', JSON.stringify(job));
      await new Promise((r) => setTimeout(r, 1100)); // export ids have one-second resolution
    }
    const rows = await server.rows('SHOW EXPORT', { auth: carol });
    assert.equal(rows.length, 3);
    assert.ok(rows[0]!.download_url !== '' && rows[1]!.download_url !== '');
    assert.equal(rows[2]!.download_url, '');
    assert.equal(rows[2]!.status, 'completed');
    const [user] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'carol'");
    assert.equal(readdirSync(join(server.dataDir, 'exports', String(user!.account_id))).length, 2);
    const oldId = /export-carol-\d{8}-\d{6}/.exec(String(rows[2]!.message))![0];
    const res = await server.fetch(`/v1/exports/carol/${oldId}`, { headers: authHeader(carol) });
    assert.equal(res.status, 404);
  });

  it('an export larger than export_bytes_max fails with the limit named, and leaves no archive', async () => {
    const dave = await server.createUser('dave');
    const values = Array.from({ length: 20 }, (_, i) => `(${i}, '${randomBytes(600).toString('base64')}')`).join(', ');
    await server.ok(`INSERT INTO lim.t VALUES ${values}`, { auth: dave });
    const job = await exportAndWait(dave);
    assert.equal(job.status, 'failed');
    assert.match(String(job.error_message), /^Export is larger than 8192 bytes \(export_bytes_max\)$/);
    const [row] = await server.rows('SHOW EXPORT', { auth: dave });
    assert.equal(row!.status, 'failed');
    assert.equal(row!.download_url, '');
    assert.match(String(row!.message), /export_bytes_max/);
    const [user] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'dave'");
    assert.deepEqual(readdirSync(join(server.dataDir, 'exports', String(user!.account_id))), []);
  });
});
