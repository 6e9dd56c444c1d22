/**
 * The flush watermark (decision 0014): a flush's hand-over writes one key per partition instead of a
 * cold marker per index entry. Every index entry at or below it must read as a cold marker through
 * every reader of the index (partition scans, point reads, the committer's validation reads), every
 * entry above it stays hot, the flushed versions are gone, the watermark never moves back, survives a
 * reopen, and is removed with its partition or table. The server-level crash tests (flush-crash) kill
 * the process between the manifest commit and this write.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HotStore } from '../src/storage/hot/hot-store.js';
import { Committer, type RowWrite } from '../src/storage/hot/committer.js';
import { KEY_PK, encodePk, partitionPrefix, pkKey } from '../src/storage/hot/keys.js';
import { SnowflakeGenerator } from '../src/util/snowflake.js';
import { hotVersions, idBodyTable } from './id-body-table.js';

const table = idBodyTable(9, 'USER', 'app', 'notes');


function write(partition: string, id: number, body: string, deleted = false): RowWrite {
  return { table, partition, values: [BigInt(id), body], deleted, expect: 'any' };
}

function indexKey(partition: string, id: number): Buffer {
  return pkKey(partitionPrefix(KEY_PK, table.id, partition), encodePk('BigInt', BigInt(id)));
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('flush watermark', () => {
  it('reads entries at or below it as cold markers everywhere, keeps later writes hot, deletes the flushed versions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-watermark-'));
    dirs.push(dir);
    let hot = await HotStore.open(dir, 'process');
    const committer = new Committer(hot, new SnowflakeGenerator());
    await committer.commit([write('u1', 1, 'a'), write('u1', 2, 'b'), write('u1', 3, 'c'), write('u2', 1, 'other user')]);
    await committer.commit([write('u1', 2, 'b2'), write('u1', 3, 'gone', true)]);
    const flushed = committer.committedMaxSeq;
    // A write after the flush's scan point: it has a larger `_seq`, so it stays hot.
    const [late] = await committer.commit([write('u1', 1, 'a-late')]);

    await hot.handOverFlushed(table.id, 'u1', flushed);
    assert.equal(hot.flushedSeq(table.id, 'u1'), flushed);
    assert.equal(hot.flushedSeq(table.id, 'u2'), 0n, 'other partitions are not affected');

    const check = async (store: HotStore): Promise<void> => {
      const scanned = await store.scanIndex(table, 'u1', store.db);
      assert.deepEqual(scanned.map((e) => [e.row.seq === late!.row.seq, e.row.cold === true, e.row.deleted]), [
        [true, false, false], [false, true, false], [false, true, true],
      ]);
      assert.deepEqual(scanned[1]!.row.values, [], 'a cold marker carries no cells');
      assert.deepEqual((await store.scanPartition(table, 'u1')).map((r) => r.values), [[1n, 'a-late']]);
      const chunked: (readonly unknown[])[] = [];
      for await (const chunk of store.scanPartitionChunks(table, 'u1')) chunked.push(...chunk.map((r) => r.values));
      assert.deepEqual(chunked, [[1n, 'a-late']], "the mirror's chunked scan reads entries below the watermark as cold");
      const byPk = await store.getByPks(table, 'u1', [1n, 2n, 3n, 4n]);
      assert.deepEqual(byPk.map((r) => (r === null ? null : [r.cold === true, r.deleted])), [[false, false], [true, false], [true, true], null]);
      // Point reads (decision 0027) keep the cells a flushed entry still holds: the version its segment has.
      const withCells = await store.getByPks(table, 'u1', [1n, 2n, 3n, 4n], true);
      assert.deepEqual(withCells.map((r) => (r === null ? null : [r.cold === true, r.deleted, r.values])),
        [[false, false, [1n, 'a-late']], [true, false, [2n, 'b2']], [true, true, [3n, 'gone']], null]);
      const raw = await store.getIndexEntries([indexKey('u1', 2), indexKey('u2', 1), indexKey('u1', 1)]);
      assert.deepEqual(raw.map((r) => r && [r.cold === true, r.values]), [[true, []], [false, [1n, 'other user']], [false, [1n, 'a-late']]]);
      // The flushed versions are deleted; the later one and the other partition's remain.
      assert.deepEqual((await hotVersions(store, table, 'u1')).map((r) => r.seq), [late!.row.seq]);
      assert.equal((await hotVersions(store, table, 'u2')).length, 1);
      const visited: bigint[] = [];
      await store.forEachVersion(table, 'u1', store.flushedSeq(table.id, 'u1'), late!.row.seq, (r) => visited.push(r.seq));
      assert.deepEqual(visited, [late!.row.seq], 'the next flush reads only what is above the watermark');
    };
    await check(hot);

    // The watermark never moves back (a compaction may drop the newest segment row) and survives a reopen.
    await hot.handOverFlushed(table.id, 'u1', flushed - 1n);
    assert.equal(hot.flushedSeq(table.id, 'u1'), flushed);
    await hot.close();
    hot = await HotStore.open(dir, 'process');
    assert.equal(hot.flushedSeq(table.id, 'u1'), flushed);
    await check(hot);

    // The committer validates against the cold marker: a duplicate of a flushed live key is refused.
    const validating = new Committer(hot, new SnowflakeGenerator());
    await assert.rejects(validating.commit([{ ...write('u1', 2, 'dup'), expect: 'absent' }]), /Duplicate primary key/);
    await validating.commit([{ ...write('u1', 3, 're-inserted'), expect: 'absent' }]);

    // Purging the partition removes its watermark, in memory and on disk.
    await hot.dropPartitionRows(table.id, 'u1');
    assert.equal(hot.flushedSeq(table.id, 'u1'), 0n);
    await hot.handOverFlushed(table.id, 'u2', 1n);
    await hot.dropTableRows(table.id);
    assert.equal(hot.flushedSeq(table.id, 'u2'), 0n);
    await hot.close();
    hot = await HotStore.open(dir, 'process');
    assert.equal(hot.flushedSeq(table.id, 'u1'), 0n);
    assert.equal(hot.flushedSeq(table.id, 'u2'), 0n);
    await hot.close();
  });
});
