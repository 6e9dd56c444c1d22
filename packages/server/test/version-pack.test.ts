/**
 * Version packs (decision 0018): a commit group's versions of one partition are one RocksDB entry
 * keyed by its highest `_seq`. Every reader of versions must see exactly the versions in its range,
 * whatever the packing: the flush's scan, live resume's scan, the start-up count and the purge's
 * count, including a pack that reaches above a flush watermark (its flushed versions are skipped).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HotStore } from '../src/storage/hot/hot-store.js';
import { Committer, type RowWrite } from '../src/storage/hot/committer.js';
import { KEY_VERSION, partitionPrefix, prefixEnd } from '../src/storage/hot/keys.js';
import { partitionId } from '../src/catalog/types.js';
import { SnowflakeGenerator } from '../src/util/snowflake.js';
import { hotVersions, idBodyTable } from './id-body-table.js';

const table = idBodyTable(11, 'USER', 'app', 'packed');


function write(partition: string, id: number, body: string, deleted = false): RowWrite {
  return { table, partition, values: [BigInt(id), body], deleted, expect: 'any' };
}

async function versionEntries(hot: HotStore, partition: string): Promise<number> {
  const prefix = partitionPrefix(KEY_VERSION, table.id, partition);
  let n = 0;
  for await (const entry of hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), values: false })) if (entry.key.length > 0) n++;
  return n;
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('version packs', () => {
  it('stores a group as one entry per partition and reads exactly the versions in range, also across a watermark inside a pack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-packs-'));
    dirs.push(dir);
    const hot = await HotStore.open(dir, 'process');
    try {
      const committer = new Committer(hot, new SnowflakeGenerator());
      const group = await committer.commit([write('u1', 1, 'a'), write('u2', 9, 'x'), write('u1', 2, 'b'), write('u1', 3, 'c', true)]);
      const [single] = await committer.commit([write('u1', 4, 'd')]);
      assert.equal(await versionEntries(hot, 'u1'), 2, 'one entry for the group, one for the single-row commit');
      assert.equal(await versionEntries(hot, 'u2'), 1);

      const seqs = group.map((c) => c.row.seq);
      const all = async (after: bigint, upTo: bigint): Promise<unknown[]> => {
        const out: unknown[] = [];
        await hot.forEachVersion(table, 'u1', after, upTo, (r) => out.push([r.seq, r.deleted, ...r.values]));
        return out;
      };
      assert.deepEqual(await all(0n, single!.row.seq), [
        [seqs[0], false, 1n, 'a'], [seqs[2], false, 2n, 'b'], [seqs[3], true, 3n, 'c'], [single!.row.seq, false, 4n, 'd'],
      ]);
      assert.deepEqual(await all(seqs[0]!, seqs[2]!), [[seqs[2], false, 2n, 'b']], 'bounds apply inside a pack');
      assert.deepEqual(await all(0n, seqs[0]!), [[seqs[0], false, 1n, 'a']]);

      // A watermark inside the pack (a flush never sets one there, but readers must not depend on it):
      // the range delete keeps the pack, and its versions at or below the watermark read as gone.
      await hot.handOverFlushed(table.id, 'u1', seqs[2]!);
      assert.equal(await versionEntries(hot, 'u1'), 2, 'the pack reaching above the watermark is kept');
      assert.deepEqual(await all(seqs[2]!, single!.row.seq), [[seqs[3], true, 3n, 'c'], [single!.row.seq, false, 4n, 'd']]);
      assert.deepEqual((await hotVersions(hot, table, 'u1')).map((r) => r.seq), [seqs[3], single!.row.seq]);
      const counts = await hot.countHotVersions();
      assert.deepEqual(counts.get(partitionId(table.id, 'u1')), { tableId: table.id, partition: 'u1', count: 2, oldestSeq: seqs[3] });
      assert.equal(counts.get(partitionId(table.id, 'u2'))?.count, 1);

      // Up to the last version: every entry goes.
      await hot.handOverFlushed(table.id, 'u1', single!.row.seq);
      assert.equal(await versionEntries(hot, 'u1'), 0);
      assert.deepEqual(await all(single!.row.seq, single!.row.seq + 1000n), []);
      assert.equal(await hot.dropPartitionRows(table.id, 'u2'), 1);
    } finally {
      await hot.close();
    }
  });

  it('splits a large group into several entries, each keyed by its highest _seq, read back in commit order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-packs-'));
    dirs.push(dir);
    const hot = await HotStore.open(dir, 'process');
    try {
      const committer = new Committer(hot, new SnowflakeGenerator());
      const big = 'x'.repeat(100_000);
      const rows = await committer.commit([1, 2, 3, 4, 5].map((id) => write('u1', id, `${id}${big}`)));
      assert.equal(await versionEntries(hot, 'u1'), 2, 'about 256 KiB per entry');
      const read = (await hotVersions(hot, table, 'u1')).map((r) => [r.seq, r.values[0]]);
      assert.deepEqual(read, rows.map((c) => [c.row.seq, c.row.values[0]]));
      // A watermark between the two entries deletes the first one only.
      await hot.handOverFlushed(table.id, 'u1', rows[2]!.row.seq);
      assert.equal(await versionEntries(hot, 'u1'), 1);
      assert.deepEqual((await hotVersions(hot, table, 'u1')).map((r) => r.values[0]), [4n, 5n]);
    } finally {
      await hot.close();
    }
  });
});
