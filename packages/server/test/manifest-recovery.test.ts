/**
 * The start-up recovery trusts a manifest only as far as the hot tier agrees with it (a fault review):
 * - an older manifest copied back over a newer one: the partition is unavailable and the newer
 *   segment stays on disk (it was deleted as an orphan, and the table served old rows); REPAIR
 *   lists it again and every row is right;
 * - a manifest whose max_seq was raised: unavailable, and the acknowledged hot rows are kept (the
 *   start-up hand-over deleted them, and later writes under the false watermark vanished);
 * - a crash between a REPAIR's manifest commit and its forgetting of lost keys: unavailable until
 *   REPAIR runs again (the table served a deleted row and an undone update).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, assertError, jobIdOf, waitForExit } from './harness.js';

type Row = Record<string, unknown>;

describe('start-up recovery against a manifest the hot tier disagrees with', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  /**
   * ids 1-100 flushed (batch-0), then 101-200 with id 5 updated and id 6 deleted (batch-1), then
   * id 201 hot; returns the server and a copy of the manifest as it was after the first flush.
   */
  async function twoFlushes(table: string): Promise<{ server: TestServer; dir: string; firstManifest: string }> {
    const server = await TestServer.start();
    servers.push(server);
    await server.ok('CREATE NAMESPACE rec');
    await server.ok(`CREATE SHARED TABLE rec.${table} (id BIGINT PRIMARY KEY, v TEXT)`);
    await server.ok(`INSERT INTO rec.${table} SELECT i, 'v' || i FROM range(1, 101) AS r(i)`);
    await server.flushAndWait(`rec.${table}`);
    const dir = join(server.dataDir, 'storage', 'rec', table);
    const firstManifest = readFileSync(join(dir, 'manifest.json'), 'utf8');
    await server.ok(`INSERT INTO rec.${table} SELECT i, 'v' || i FROM range(101, 201) AS r(i)`);
    await server.ok(`UPDATE rec.${table} SET v = 'updated' WHERE id = 5`);
    await server.ok(`DELETE FROM rec.${table} WHERE id = 6`);
    await server.flushAndWait(`rec.${table}`);
    await server.ok(`INSERT INTO rec.${table} VALUES (201, 'hot')`);
    return { server, dir, firstManifest };
  }

  async function assertAllRows(server: TestServer, table: string): Promise<void> {
    const [stats] = await server.rows(`SELECT count(*) AS n, max(id) AS top FROM rec.${table}`);
    assert.equal(Number(stats!.n), 200, 'ids 1-201 less the deleted 6');
    assert.equal(Number(stats!.top), 201);
    const some = await server.rows(`SELECT id, v FROM rec.${table} WHERE id IN (5, 6, 150, 201) ORDER BY id`);
    assert.deepEqual(some.map((r) => [Number(r.id), r.v]), [[5, 'updated'], [150, 'v150'], [201, 'hot']]);
  }

  async function repair(server: TestServer, table: string): Promise<Row> {
    const [res] = await server.ok(`STORAGE REPAIR TABLE rec.${table}`);
    return server.waitForJob(jobIdOf(res!.message));
  }

  it('an older manifest copied back: unavailable, the newer segment kept, REPAIR restores every row', async () => {
    const { server, dir, firstManifest } = await twoFlushes('old');
    assert.equal(await server.stop(), 0);
    writeFileSync(join(dir, 'manifest.json'), firstManifest);
    await server.launch();
    assertError(await server.sql('SELECT count(*) FROM rec.old'), 409, 'TABLE_UNAVAILABLE', /manifest\.json.*older than the data/);
    assert.ok(existsSync(join(dir, 'batch-1.parquet')), 'the segment the old manifest does not list is still there');
    assert.equal((await repair(server, 'old')).status, 'completed');
    await assertAllRows(server, 'old');
    // And after another restart (the rebuilt manifest records how far flushes went).
    assert.equal(await server.stop(), 0);
    await server.launch();
    await assertAllRows(server, 'old');
  });

  it('a raised max_seq: unavailable, no hot row deleted, REPAIR restores every row', async () => {
    const { server, dir } = await twoFlushes('raised');
    // Killed between the manifest commit and the watermark, so the start-up completes a hand-over.
    await server.kill();
    const path = join(dir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as { segments: { max_seq: string }[] };
    const last = manifest.segments[manifest.segments.length - 1]!;
    last.max_seq = (BigInt(last.max_seq) + 1_000_000n).toString();
    writeFileSync(path, JSON.stringify(manifest, null, 2));
    await server.launch();
    assertError(await server.sql('SELECT count(*) FROM rec.raised'), 409, 'TABLE_UNAVAILABLE', /batch-1\.parquet.*_seq range/);
    assert.equal((await repair(server, 'raised')).status, 'completed');
    await assertAllRows(server, 'raised');
    await server.ok("INSERT INTO rec.raised VALUES (202, 'after')");
    await server.kill();
    await server.launch();
    assert.equal(Number((await server.rows('SELECT count(*) AS n FROM rec.raised'))[0]!.n), 201, 'a write after the repair survives a crash');
  });

  it('a crash inside STORAGE REPAIR TABLE: unavailable until it runs again, then no deleted row is back', async () => {
    const { server, dir } = await twoFlushes('crash');
    // Damage batch-1 (the update of 5, the delete of 6, ids 101-200): REPAIR quarantines it.
    const segment = join(dir, 'batch-1.parquet');
    const bytes = readFileSync(segment);
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0x5a;
    writeFileSync(segment, bytes);
    await server.stop();
    await server.launch({ KALAMDB_FAILPOINT: 'repair:after-manifest' });
    await server.sql('STORAGE REPAIR TABLE rec.crash');
    await waitForExit(server);
    await server.launch({ KALAMDB_FAILPOINT: '' });
    assertError(await server.sql('SELECT count(*) FROM rec.crash'), 409, 'TABLE_UNAVAILABLE', /repair\.pending.*interrupted/);
    assert.equal((await repair(server, 'crash')).status, 'completed');
    const rows = await server.rows('SELECT id, v FROM rec.crash WHERE id IN (5, 6) ORDER BY id');
    assert.deepEqual(rows, [], 'a key whose newest version was lost reads as absent, never as its older version');
    const scanned = await server.rows("SELECT id FROM rec.crash WHERE v IN ('v5', 'v6')");
    assert.deepEqual(scanned, [], 'scans agree');
    assert.ok(!existsSync(join(dir, 'repair.pending')));
  });

  it('a manifest from before flushed_seq: older only when an unlisted file holds rows it should list; a compaction\'s leftover is an orphan', async () => {
    const { server, dir } = await twoFlushes('legacy');
    await server.flushAndWait('rec.legacy');
    // A flush of one tombstone (batch-3, of a row never flushed before): the watermark moves past every row.
    await server.ok("INSERT INTO rec.legacy VALUES (500, 'gone')");
    await server.ok('DELETE FROM rec.legacy WHERE id = 500');
    await server.flushAndWait('rec.legacy');
    assert.equal(await server.stop(), 0);
    const path = join(dir, 'manifest.json');
    const current = JSON.parse(readFileSync(path, 'utf8')) as { flushed_seq?: string; segments: { path: string }[] };
    delete current.flushed_seq;
    // As an older release's compaction leaves it: the tombstone purged (batch-3 gone, the manifest ends
    // below the watermark), and one of its inputs not yet deleted when it was killed (a copy of batch-0).
    writeFileSync(path, JSON.stringify({ ...current, segments: current.segments.filter((x) => x.path !== 'batch-3.parquet') }, null, 2));
    rmSync(join(dir, 'batch-3.parquet'));
    writeFileSync(join(dir, 'batch-9.parquet'), readFileSync(join(dir, 'batch-0.parquet')));
    await server.launch();
    await assertAllRows(server, 'legacy');
    assert.ok(!existsSync(join(dir, 'batch-9.parquet')), 'the leftover was removed as an orphan');
    // Without batch-2 listed while its file is there (rows in no listed file, below the watermark): older than the data.
    assert.equal(await server.stop(), 0);
    const now = JSON.parse(readFileSync(path, 'utf8')) as { flushed_seq?: string; segments: { path: string }[] };
    delete now.flushed_seq;
    writeFileSync(path, JSON.stringify({ ...now, segments: now.segments.filter((x) => x.path !== 'batch-2.parquet') }, null, 2));
    await server.launch();
    assertError(await server.sql('SELECT count(*) FROM rec.legacy'), 409, 'TABLE_UNAVAILABLE', /older than the data/);
    assert.ok(existsSync(join(dir, 'batch-2.parquet')));
  });
});
