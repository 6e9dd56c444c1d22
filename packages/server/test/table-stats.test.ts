/**
 * system.table_stats: hot and cold row counts per table against the real server. hot_rows counts the
 * keys whose newest version is unflushed (tombstones included, superseded versions not: exactly what
 * the next flush writes); cold_rows the rows of the manifests' segments (tombstones and older versions
 * included until compaction merges them). Checked while hot, after a flush, after an update and a
 * delete of flushed rows, after compaction, summed over the partitions of a USER table; admin-only; and
 * the scan budget of the hot count (HotStore.countHotKeys) on the store directly.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestServer, assertError, eventually, jobIdOf } from './harness.js';
import { HotStore } from '../src/storage/hot/hot-store.js';
import { Committer, type RowWrite } from '../src/storage/hot/committer.js';
import { SnowflakeGenerator } from '../src/util/snowflake.js';
import { idBodyTable } from './id-body-table.js';

describe('system.table_stats', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE app');
    await server.ok("CREATE SHARED TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (FLUSH_POLICY = 'rows:1000000')");
    await server.ok("CREATE USER TABLE app.inbox (id BIGINT PRIMARY KEY, body TEXT) WITH (FLUSH_POLICY = 'rows:1000000')");
  });
  after(async () => {
    await server?.dispose();
  });

  type Stats = { hot_rows: unknown; cold_rows: unknown; segments: unknown; table_type: unknown; bytes: boolean };
  const stats = async (table: string): Promise<Stats> => {
    const rows = await server.rows(`SELECT table_type, hot_rows, cold_rows, segments, cold_bytes FROM system.table_stats WHERE namespace_id = 'app' AND table_name = '${table}'`);
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    return { table_type: r.table_type, hot_rows: r.hot_rows, cold_rows: r.cold_rows, segments: r.segments, bytes: BigInt(r.cold_bytes as string) > 0n };
  };
  const expect = (hot: number, cold: number, segments: number, type = 'shared'): Stats =>
    ({ table_type: type, hot_rows: String(hot), cold_rows: String(cold), segments, bytes: cold > 0 });
  const flush = async (table: string): Promise<void> => {
    const [res] = await server.ok(`STORAGE FLUSH TABLE app.${table}`);
    const job = await server.waitForJob(jobIdOf(res!.message));
    assert.equal(job.status, 'completed');
  };

  it('counts hot keys once however often they were written, tombstones included', async () => {
    assert.deepEqual(await stats('notes'), expect(0, 0, 0));
    await server.ok("INSERT INTO app.notes VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    await server.ok("UPDATE app.notes SET body = 'a2' WHERE id = 1");
    await server.ok("UPDATE app.notes SET body = 'a3' WHERE id = 1");
    // Five versions of key 1, one each of 2 and 3: three keys hot.
    assert.deepEqual(await stats('notes'), expect(3, 0, 0));
    await server.ok('DELETE FROM app.notes WHERE id = 3');
    // Key 3's newest version is now a tombstone: still one hot entry (the next flush writes it).
    assert.deepEqual(await stats('notes'), expect(3, 0, 0));
  });

  it('moves the counted rows to the cold tier on a flush', async () => {
    await flush('notes');
    const segment = await server.rows("SELECT row_count FROM system.manifest WHERE namespace_id = 'app' AND table_name = 'notes'");
    assert.deepEqual(segment.map((r) => r.row_count), ['3'], 'the segment holds the three keys (one of them a tombstone)');
    assert.deepEqual(await stats('notes'), expect(0, 3, 1));
  });

  it('counts an update or delete of a flushed row as hot, while the cold tier keeps the old version', async () => {
    await server.ok("UPDATE app.notes SET body = 'a4' WHERE id = 1");
    assert.deepEqual(await stats('notes'), expect(1, 3, 1));
    await server.ok('DELETE FROM app.notes WHERE id = 2');
    assert.deepEqual(await stats('notes'), expect(2, 3, 1));
    await server.ok("INSERT INTO app.notes VALUES (4, 'd')");
    assert.deepEqual(await stats('notes'), expect(3, 3, 1));
    assert.deepEqual((await server.rows('SELECT COUNT(*) AS n FROM app.notes'))[0]!.n, '2', 'live rows: 1 and 4');
    await flush('notes');
    // Two segments: keys 1, 2, 3 (tombstone) and keys 1 (newer), 2 (tombstone), 4.
    assert.deepEqual(await stats('notes'), expect(0, 6, 2));
  });

  it('counts one row per key after compaction (tombstones kept within DELETED_RETENTION_HOURS)', async () => {
    const [res] = await server.ok('STORAGE COMPACT TABLE app.notes');
    assert.equal((await server.waitForJob(jobIdOf(res!.message))).status, 'completed');
    assert.deepEqual(await stats('notes'), expect(0, 4, 1));
  });

  it('sums the partitions of a USER table', async () => {
    await server.createUser('alice');
    await server.createUser('bob');
    await server.ok("EXECUTE AS USER 'alice' (INSERT INTO app.inbox VALUES (1, 'x'), (2, 'y'))");
    await server.ok("EXECUTE AS USER 'bob' (INSERT INTO app.inbox VALUES (1, 'z'))");
    assert.deepEqual(await stats('inbox'), expect(3, 0, 0, 'user'));
    await flush('inbox');
    await eventually('both partitions flushed', async () => (await stats('inbox')).segments === 2);
    assert.deepEqual(await stats('inbox'), expect(0, 3, 2, 'user'));
    await server.ok("EXECUTE AS USER 'bob' (DELETE FROM app.inbox WHERE id = 1)");
    assert.deepEqual(await stats('inbox'), expect(1, 3, 2, 'user'));
  });

  it('is readable by dba and system only', async () => {
    const user = await server.createUser('carol');
    assertError(await server.sql('SELECT * FROM system.table_stats', { auth: user }), 403, 'PERMISSION_DENIED', /system\.table_stats is readable by roles dba and system only/);
    const dba = await server.createUser('dave', 'dba');
    assert.equal((await server.sql('SELECT * FROM system.table_stats', { auth: dba })).status, 200);
  });
});

describe('HotStore.countHotKeys', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('counts entries above each partition\'s watermark and gives up past its budget', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-hotcount-'));
    dirs.push(dir);
    const hot = await HotStore.open(dir, 'process');
    try {
      const table = idBodyTable(7, 'USER', 'app', 'inbox');
      const write = (partition: string, id: number, deleted = false): RowWrite => ({ table, partition, values: [BigInt(id), 'v'], deleted, expect: 'any' });
      const committer = new Committer(hot, new SnowflakeGenerator());
      await committer.commit([write('u1', 1), write('u1', 2), write('u2', 1), write('u2', 2), write('u2', 3)]);
      await hot.handOverFlushed(table.id, 'u1', committer.committedMaxSeq);
      await committer.commit([write('u1', 2, true), write('u2', 1), write('u2', 1)]);
      // u1: key 2 (tombstone) above the watermark, key 1 a cold marker; u2: all three keys, never flushed.
      assert.deepEqual(await hot.countHotKeys(table.id, 100), { hot: 4, scanned: 5 });
      assert.deepEqual(await hot.countHotKeys(table.id, 5), { hot: 4, scanned: 5 });
      assert.equal(await hot.countHotKeys(table.id, 4), null, 'the fifth entry passes a budget of four');
      assert.deepEqual(await hot.countHotKeys(table.id + 1, 100), { hot: 0, scanned: 0 });
    } finally {
      await hot.close();
    }
  });
});
