/**
 * S3 storages end to end against a real S3-compatible server (s3rver, started here on a free port):
 * upstream's CREATE STORAGE form, flush uploads, cold reads through the local segment cache after it
 * is emptied, compaction deleting replaced objects, an S3 outage (cold reads fail with 503 and the
 * reason; hot reads, writes and other tables go on; the failed flush loses nothing), and kill -9
 * during a multipart upload and between the upload and the manifest commit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import S3rver from 's3rver';
import { S3Client, CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { TestServer, assertError, eventually, jobIdOf, waitForExit } from './harness.js';

const BUCKET = 'lake';
const MAIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'src', 'main.js');

class LocalS3 {
  private server: S3rver | null = null;
  port = 0;
  readonly dir = mkdtempSync(join(tmpdir(), 'kalamdb-s3-'));

  async start(): Promise<void> {
    this.server = new S3rver({ port: this.port, address: '127.0.0.1', directory: this.dir, silent: true });
    const { port } = await this.server.run();
    this.port = port;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = null;
  }

  client(): S3Client {
    return new S3Client({
      region: 'us-east-1', endpoint: `http://127.0.0.1:${this.port}`, forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
  }

  async keys(prefix: string): Promise<string[]> {
    const c = this.client();
    try {
      const out = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key!).sort();
    } finally {
      c.destroy();
    }
  }

  createStorageSql(id: string, prefix: string, port = this.port): string {
    const config = { type: 's3', region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, allow_http: true, access_key_id: 'S3RVER', secret_access_key: 'S3RVER' };
    return `CREATE STORAGE ${id} TYPE s3 NAME 'Lake' BASE_DIRECTORY 's3://${BUCKET}/${prefix}' CONFIG '${JSON.stringify(config)}'`;
  }
}

function segmentFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/^batch-\d+\.parquet$/.test(e.name)) out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

/** Restarts the server with its cache of remote segments emptied, so cold reads must come from the bucket. */
async function restartWithEmptyCache(server: TestServer): Promise<void> {
  await server.stop();
  for (const f of segmentFiles(join(server.dataDir, 'remote'))) rmSync(f);
  await server.launch();
}

describe('S3 storages', () => {
  const s3 = new LocalS3();
  const servers: TestServer[] = [];
  before(async () => {
    await s3.start();
    const c = s3.client();
    await c.send(new CreateBucketCommand({ Bucket: BUCKET }));
    c.destroy();
  });
  after(async () => {
    for (const s of servers) await s.dispose();
    await s3.stop();
    rmSync(s3.dir, { recursive: true, force: true });
  });

  it('refuses an unreachable or misconfigured S3 storage with the reason', async () => {
    const server = await TestServer.start();
    servers.push(server);
    assertError(await server.sql(s3.createStorageSql('nowhere', 'p', 9)), 400, 'SQL_EXECUTION_ERROR', /Storage connectivity check failed .*write: .*ECONNREFUSED/);
    const noBucket = s3.createStorageSql('nobucket', 'p').replace(`s3://${BUCKET}/`, 's3://missing-bucket/');
    assertError(await server.sql(noBucket), 400, 'SQL_EXECUTION_ERROR', /NoSuchBucket/);
    assert.equal((await server.rows('SHOW STORAGES')).length, 1);
    // Upstream's BUCKET/REGION spelling: the same storage as BASE_DIRECTORY 's3://lake'.
    const config = { endpoint: `http://127.0.0.1:${s3.port}`, allow_http: true };
    const credentials = { access_key_id: 'S3RVER', secret_access_key: 'S3RVER' };
    await server.ok(`CREATE STORAGE by_bucket TYPE s3 BUCKET '${BUCKET}' REGION 'eu-west-1' CONFIG '${JSON.stringify(config)}' CREDENTIALS '${JSON.stringify(credentials)}'`);
    const [row] = await server.rows("SELECT base_directory, config_json, credentials FROM system.storages WHERE storage_id = 'by_bucket'");
    assert.equal(row!.base_directory, `s3://${BUCKET}`);
    assert.equal((JSON.parse(String(row!.config_json)) as { region: string }).region, 'eu-west-1');
    assert.deepEqual(JSON.parse(String(row!.credentials)), credentials, 'root (role system) sees the secrets');
    assert.equal((await server.rows('STORAGE CHECK by_bucket'))[0]!.status, 'healthy');
  });

  it("a dba cannot point a storage's stored credentials at another endpoint (an attack review received them, signed)", async () => {
    const server = await TestServer.start();
    servers.push(server);
    // A recording endpoint: any request that reaches it would carry the stored credentials.
    const seen: string[] = [];
    const spy = createServer((socket) => socket.on('data', (d: Buffer) => seen.push(d.toString('latin1'))).on('error', () => undefined));
    await new Promise<void>((r) => spy.listen(0, '127.0.0.1', r));
    try {
      const config = { endpoint: `http://127.0.0.1:${s3.port}`, allow_http: true };
      await server.ok(`CREATE STORAGE lake TYPE s3 BASE_DIRECTORY 's3://${BUCKET}/lake' CONFIG '${JSON.stringify(config)}' `
        + `CREDENTIALS '${JSON.stringify({ access_key_id: 'S3RVER', secret_access_key: 'S3RVER', session_token: 'SYSTEM-ONLY-TOKEN' })}'`);
      const dba = await server.createUser('pointer', 'dba');
      const elsewhere = JSON.stringify({ endpoint: `http://127.0.0.1:${(spy.address() as AddressInfo).port}`, allow_http: true });
      assertError(await server.sql(`ALTER STORAGE lake SET CONFIG '${elsewhere}'`, { auth: dba }), 403, 'PERMISSION_DENIED', /give CREDENTIALS again/);
      assert.deepEqual(seen, [], 'nothing was sent to the new endpoint');
      // With credentials of their own the dba may move it (the probe then fails against the spy, which never answers S3).
      await server.sql(`ALTER STORAGE lake SET CONFIG '${elsewhere}' SET CREDENTIALS '${JSON.stringify({ access_key_id: 'mine', secret_access_key: 'mine' })}'`, { auth: dba });
      assert.ok(!seen.join('').includes('SYSTEM-ONLY-TOKEN') && !seen.join('').includes('S3RVER'), 'only the credentials the dba gave');
      // Root (role system) may: the stored credentials are its own to send.
      const back = JSON.stringify({ endpoint: `http://127.0.0.1:${s3.port}`, allow_http: true });
      await server.ok(`ALTER STORAGE lake SET CONFIG '${back}'`);
    } finally {
      spy.close();
    }
  });

  it('flushes to the bucket, reads back through an emptied cache, compacts, and masks secrets', async () => {
    const server = await TestServer.start();
    servers.push(server);
    await server.ok(s3.createStorageSql('s3x', 'kdb'));
    const [check] = await server.rows('STORAGE CHECK s3x EXTENDED');
    assert.equal(check!.status, 'healthy', String(check!.error));
    const dba = await server.createUser('dina', 'dba');
    const [seen] = await server.rows("SELECT config_json, base_directory FROM system.storages WHERE storage_id = 's3x'", { auth: dba });
    const config = JSON.parse(String(seen!.config_json)) as Record<string, unknown>;
    assert.equal(config.secret_access_key, '***');
    assert.equal(config.access_key_id, '***');
    assert.equal(config.endpoint, `http://127.0.0.1:${s3.port}`);
    assert.equal(seen!.base_directory, `s3://${BUCKET}/kdb`);

    await server.ok('CREATE NAMESPACE lake');
    await server.ok("CREATE TABLE lake.events (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER', STORAGE_ID = 's3x')");
    await server.ok("CREATE TABLE lake.shared (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED', STORAGE_ID = 's3x')");
    const ann = await server.createUser('ann');
    const ben = await server.createUser('ben');
    const [{ account_id: annId }] = await server.rows("SELECT account_id FROM system.users WHERE user_id = 'ann'") as [{ account_id: string }];
    for (let round = 0; round < 3; round++) {
      await server.ok(`INSERT INTO lake.events VALUES ${Array.from({ length: 20 }, (_, i) => `(${round * 100 + i}, 'ann-${round}-${i}')`).join(', ')}`, { auth: ann });
      await server.ok(`INSERT INTO lake.events VALUES (${round}, 'ben-${round}')`, { auth: ben });
      await server.ok(`INSERT INTO lake.shared VALUES (${round}, 's-${round}')`);
      await server.flushAndWait('lake.events');
      await server.flushAndWait('lake.shared');
    }
    await server.ok("UPDATE lake.events SET body = 'changed' WHERE id = 5", { auth: ann });
    await server.ok('DELETE FROM lake.events WHERE id = 6', { auth: ann });
    await server.flushAndWait('lake.events');
    const annKeys = await s3.keys(`kdb/lake/events/${annId}/`);
    assert.deepEqual(annKeys.filter((k) => k.endsWith('.parquet')).length, 4, annKeys.join(', '));
    await eventually('manifest copy in the bucket', async () => (await s3.keys(`kdb/lake/events/${annId}/manifest.json`)).length === 1);
    assert.ok((await s3.keys('kdb/lake/shared/')).some((k) => k.endsWith('batch-0.parquet')));

    const expected = await server.rows('SELECT id, body FROM lake.events ORDER BY id', { auth: ann });
    assert.equal(expected.length, 59);
    assert.deepEqual(expected.find((r) => r.id === '5'), { id: '5', body: 'changed' });
    // Only the bucket holds the segments now: the local cache is emptied while the server is down.
    await server.stop();
    const cache = join(server.dataDir, 'remote', 's3x');
    for (const f of segmentFiles(cache)) rmSync(f);
    await server.launch();
    assert.deepEqual(await server.rows('SELECT id, body FROM lake.events ORDER BY id', { auth: ann }), expected);
    assert.deepEqual(await server.rows('SELECT id, body FROM lake.events ORDER BY id', { auth: ben }), [0, 1, 2].map((i) => ({ id: String(i), body: `ben-${i}` })));
    assert.ok(segmentFiles(cache).length > 0, 'read through the cache');

    const [compact] = await server.ok('STORAGE COMPACT TABLE lake.events');
    const job = await server.waitForJob(jobIdOf(compact!.message));
    assert.equal(job.status, 'completed', JSON.stringify(job));
    await eventually('replaced objects deleted', async () => (await s3.keys(`kdb/lake/events/${annId}/`)).filter((k) => k.endsWith('.parquet')).length === 1, 15_000);
    assert.deepEqual(await server.rows('SELECT id, body FROM lake.events ORDER BY id', { auth: ann }), expected);

    await server.ok('DROP TABLE lake.shared');
    await eventually('dropped table\'s objects deleted', async () => (await s3.keys('kdb/lake/shared/')).length === 0, 15_000);
    assertError(await server.sql('DROP STORAGE s3x'), 400, 'SQL_EXECUTION_ERROR', /1 table\(s\) still using it/);
  });

  it('uploads again at start-up the segments the bucket lost (a data directory restored from a backup)', async () => {
    const server = await TestServer.start();
    servers.push(server);
    await server.ok(s3.createStorageSql('s3r', 'lost'));
    await server.ok("CREATE SHARED TABLE default.kept (id BIGINT PRIMARY KEY, v TEXT) WITH (STORAGE_ID = 's3r')");
    await server.ok("INSERT INTO default.kept VALUES (1, 'a'), (2, 'b')");
    await server.flushAndWait('default.kept');
    await server.stop();
    const lost = await s3.keys('lost/');
    assert.ok(lost.some((k) => k.endsWith('batch-0.parquet')), lost.join(', '));
    const c = s3.client();
    await c.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: lost.map((Key) => ({ Key })) } }));
    c.destroy();
    assert.deepEqual(await s3.keys('lost/'), []);
    await server.launch();
    await eventually('segment and manifest uploaded again', async () => {
      const keys = await s3.keys('lost/');
      return keys.some((k) => k.endsWith('batch-0.parquet')) && keys.some((k) => k.endsWith('manifest.json'));
    }, 15_000);
    await restartWithEmptyCache(server);
    assert.deepEqual(await server.rows('SELECT id, v FROM default.kept ORDER BY id'), [{ id: '1', v: 'a' }, { id: '2', v: 'b' }]);

    // The local manifest lost too: the table is unavailable (never silently empty) until REPAIR
    // rebuilds the manifest from what the bucket holds.
    await server.stop();
    for (const f of segmentFiles(join(server.dataDir, 'remote'))) rmSync(f);
    const manifests: string[] = [];
    const walk = (d: string): void => { for (const e of readdirSync(d, { withFileTypes: true })) { if (e.isDirectory()) walk(join(d, e.name)); else if (e.name === 'manifest.json') manifests.push(join(d, e.name)); } };
    walk(join(server.dataDir, 'remote'));
    assert.equal(manifests.length, 1);
    rmSync(manifests[0]!);
    await server.launch();
    assertError(await server.sql('SELECT id, v FROM default.kept ORDER BY id'), 409, 'TABLE_UNAVAILABLE', /manifest\.json: missing/);
    const [repair] = await server.ok('STORAGE REPAIR TABLE default.kept');
    assert.equal((await server.waitForJob(jobIdOf(repair!.message))).status, 'completed');
    assert.deepEqual(await server.rows('SELECT id, v FROM default.kept ORDER BY id'), [{ id: '1', v: 'a' }, { id: '2', v: 'b' }]);
  });

  it('backs up an S3 table with its segments and restores it into a fresh data dir and an emptied bucket', async () => {
    const server = await TestServer.start();
    servers.push(server);
    await server.ok(s3.createStorageSql('s3b', 'backed'));
    await server.ok("CREATE SHARED TABLE default.bk (id BIGINT PRIMARY KEY, v TEXT) WITH (STORAGE_ID = 's3b')");
    await server.ok("INSERT INTO default.bk VALUES (1, 'cold-1'), (2, 'cold-2')");
    await server.flushAndWait('default.bk');
    await server.ok("INSERT INTO default.bk VALUES (3, 'hot-3')");
    const expected = await server.rows('SELECT id, v FROM default.bk ORDER BY id');
    // The segment must come from the bucket: the local cache is emptied first.
    await restartWithEmptyCache(server);
    const backupDir = join(mkdtempSync(join(tmpdir(), 'kalamdb-s3-backup-')), 'b');
    const [res] = await server.ok(`BACKUP DATABASE TO '${backupDir}'`);
    const job = await server.waitForJob(/Job ID: (\S+)$/.exec(res!.message!)![1]!, 60_000);
    assert.equal(job.status, 'completed', JSON.stringify(job));
    await server.stop();
    // The bucket loses the table's objects; the restored data dir brings them back.
    const c = s3.client();
    const lost = await s3.keys('backed/');
    await c.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: lost.map((Key) => ({ Key })) } }));
    c.destroy();
    const restoredDir = join(mkdtempSync(join(tmpdir(), 'kalamdb-s3-restored-')), 'data');
    const restore = spawnSync(process.execPath, [MAIN, 'restore', '--from', backupDir, '--data-dir', restoredDir], { encoding: 'utf8' });
    assert.equal(restore.status, 0, restore.stderr);
    const restored = await TestServer.start(restoredDir);
    servers.push(restored);
    await eventually('segments uploaded again', async () => (await s3.keys('backed/')).some((k) => k.endsWith('.parquet')), 15_000);
    await restartWithEmptyCache(restored);
    assert.deepEqual(await restored.rows('SELECT id, v FROM default.bk ORDER BY id'), expected);
  });

  it('keeps hot reads and writes going through an S3 outage and loses nothing', async () => {
    const server = await TestServer.start();
    servers.push(server);
    await server.ok(s3.createStorageSql('s3y', 'outage'));
    await server.ok("CREATE SHARED TABLE default.remote_t (id BIGINT PRIMARY KEY, v TEXT) WITH (STORAGE_ID = 's3y')");
    await server.ok('CREATE SHARED TABLE default.local_t (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok(`INSERT INTO default.remote_t VALUES ${Array.from({ length: 30 }, (_, i) => `(${i}, 'cold-${i}')`).join(', ')}`);
    await server.ok("INSERT INTO default.local_t VALUES (1, 'l')");
    await server.flushAndWait('default.remote_t');
    // Cold rows must come from S3: restart with an empty cache, then take S3 away.
    await restartWithEmptyCache(server);
    await s3.stop();
    try {
      const cold = await server.sql('SELECT count(*) AS n FROM default.remote_t');
      assertError(cold, 503, 'STORAGE_UNAVAILABLE', /Storage 's3y' is unavailable: download of .*batch-0\.parquet failed/);
      assert.deepEqual(await server.rows('SELECT v FROM default.local_t'), [{ v: 'l' }]);
      await server.ok("INSERT INTO default.remote_t VALUES (100, 'hot')");
      await server.ok("INSERT INTO default.local_t VALUES (2, 'm')");
      const [flush] = await server.ok('STORAGE FLUSH TABLE default.remote_t');
      const job = await server.waitForJob(jobIdOf(flush!.message), 60_000);
      assert.equal(job.status, 'failed');
      assert.match(String(job.error_message), /Storage 's3y' is unavailable: upload of .* failed/);
      assert.equal((await server.fetch('/health')).status, 200);
    } finally {
      await s3.start();
    }
    const rows = await server.rows('SELECT id, v FROM default.remote_t ORDER BY id');
    assert.equal(rows.length, 31);
    assert.deepEqual(rows.at(-1), { id: '100', v: 'hot' });
    await server.flushAndWait('default.remote_t');
    assert.deepEqual(await server.rows('SELECT count(*) AS n, count(DISTINCT id) AS d FROM default.remote_t'), [{ n: '31', d: '31' }]);
  });

  for (const step of ['flush:during-upload', 'flush:after-rename']) {
    it(`loses nothing and doubles nothing when killed at ${step}`, async () => {
      const server = await TestServer.start(undefined, { KALAMDB_FAILPOINT: step });
      servers.push(server);
      const prefix = `crash-${step.replace(/[^a-z]/g, '')}`;
      await server.ok(s3.createStorageSql('s3z', prefix));
      await server.ok("CREATE SHARED TABLE default.big (id BIGINT PRIMARY KEY, v TEXT) WITH (STORAGE_ID = 's3z')");
      // ~16 MB of base64 (~12 MB once compressed): a multipart upload (8 MB parts), killed after its first part.
      for (let b = 0; b < 20; b++) {
        const values = Array.from({ length: 200 }, (_, i) => `(${b * 200 + i}, '${randomBytes(3000).toString('base64')}')`).join(', ');
        await server.ok(`INSERT INTO default.big VALUES ${values}`);
      }
      const expected = await server.rows('SELECT id, md5(v) AS h FROM default.big ORDER BY id');
      assert.equal(expected.length, 4000);
      await server.sql('STORAGE FLUSH TABLE default.big');
      await waitForExit(server, 60_000);
      await server.kill();
      await server.launch({ KALAMDB_FAILPOINT: '' });
      assert.deepEqual(await server.rows('SELECT id, md5(v) AS h FROM default.big ORDER BY id'), expected);
      await server.flushAndWait('default.big');
      assert.deepEqual(await server.rows('SELECT count(*) AS n, count(DISTINCT id) AS d FROM default.big'), [{ n: '4000', d: '4000' }]);
      const local = segmentFiles(join(server.dataDir, 'remote'));
      assert.equal(local.length, 1, local.join(', '));
      assert.ok(statSync(local[0]!).size > 8 * 1024 * 1024);
      await eventually('only the listed segment in the bucket', async () =>
        (await s3.keys(`${prefix}/`)).filter((k) => k.endsWith('.parquet')).length === 1, 15_000);
    });
  }
});
