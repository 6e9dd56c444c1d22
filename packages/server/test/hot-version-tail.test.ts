/**
 * The resume's cache of a partition's hot versions (live/hot-version-tail.ts): a read after another
 * reads only what was committed since, never a version twice; a new flush watermark or schema version
 * starts the entry over; concurrent reads share one scan; idle and oversized entries are not kept.
 * Driven by an in-memory version source that counts what it was asked to read.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HotVersionTail, type HotVersionSource } from '../src/live/hot-version-tail.js';
import type { TableDef } from '../src/catalog/types.js';
import type { RowVersion } from '../src/storage/hot/row-codec.js';

const table = (schemaVersion = 1): TableDef => ({
  id: 7, namespace: 'n', name: 't', type: 'SHARED', schemaVersion, nextColumnId: 2, createdAt: 0, createdBy: 'root',
  columns: [{ id: 1, name: 'id', type: 'BigInt', nullable: false, primaryKey: true, default: null }],
  options: {},
} as unknown as TableDef);

/** Versions of keys 1..3 at _seq 10, 20, 30, ... (key = seq / 10 % 3 + 1). */
class Source implements HotVersionSource {
  versions: RowVersion[] = [];
  flushed = 0n;
  reads: [bigint, bigint][] = [];
  delayMs = 0;
  commit(n: number): void {
    for (let i = 0; i < n; i++) {
      const seq = BigInt((this.versions.length + 1) * 10);
      this.versions.push({ seq, deleted: false, schemaVersion: 1, values: [BigInt(this.versions.length % 3 + 1)] });
    }
  }
  flushedSeq(): bigint {
    return this.flushed;
  }
  async forEachVersion(_t: TableDef, _p: string, after: bigint, upTo: bigint, visit: (row: RowVersion) => void): Promise<number> {
    this.reads.push([after, upTo]);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const out = this.versions.filter((v) => v.seq > after && v.seq <= upTo && v.seq > this.flushed);
    for (const v of out) visit(v);
    return out.length;
  }
}

const seqs = (vs: readonly RowVersion[]): number[] => vs.map((v) => Number(v.seq));

describe('hot version tail (resume)', () => {
  it('reads only what was committed since the last read, and answers ranges and held versions from memory', async () => {
    const source = new Source();
    const tail = new HotVersionTail(source);
    source.commit(6);
    const t = table();
    const a = await tail.read(t, '', 60n);
    assert.deepEqual(seqs(a.versions), [10, 20, 30, 40, 50, 60]);
    source.commit(3);
    const b = await tail.read(t, '', 90n);
    assert.equal(b, a, 'the same entry, extended');
    assert.deepEqual(source.reads, [[0n, 60n], [60n, 90n]]);
    assert.deepEqual(seqs(b.between(30n, 80n)), [40, 50, 60, 70, 80]);
    assert.deepEqual(seqs(b.between(90n, 90n)), []);
    // Key 1 has versions 10, 40, 70; key 2: 20, 50, 80.
    const key1 = b.keyOf(source.versions[0]!);
    assert.equal(b.newestAtOrBelow(key1, 69n)?.seq, 40n);
    assert.equal(b.newestAtOrBelow(key1, 70n)?.seq, 70n);
    assert.equal(b.newestAtOrBelow(key1, 9n), null);
    // A read up to what it already holds reads nothing.
    await tail.read(t, '', 50n);
    assert.equal(source.reads.length, 2);
  });

  it('a new flush watermark or schema version starts the entry over', async () => {
    const source = new Source();
    const tail = new HotVersionTail(source);
    source.commit(4);
    const first = await tail.read(table(), '', 40n);
    source.flushed = 20n;
    const afterFlush = await tail.read(table(), '', 40n);
    assert.notEqual(afterFlush, first);
    assert.deepEqual(seqs(afterFlush.versions), [30, 40]);
    const altered = await tail.read(table(2), '', 40n);
    assert.notEqual(altered, afterFlush);
    assert.deepEqual(source.reads, [[0n, 40n], [20n, 40n], [20n, 40n]]);
  });

  it('a flush during the read (its own or the one it waited for): the read starts again above the new watermark', async () => {
    const source = new Source();
    const tail = new HotVersionTail(source);
    source.commit(4);
    source.delayMs = 20;
    const first = tail.read(table(), '', 40n);
    const waiting = tail.read(table(), '', 40n);
    source.flushed = 20n;
    for (const read of [await first, await waiting]) assert.deepEqual(seqs(read.versions), [30, 40]);
    assert.deepEqual(source.reads.slice(0, 2), [[0n, 40n], [20n, 40n]]);
    assert.equal(tail.bytes, 2 * 96, 'the entry read above the new watermark is kept');
  });

  it('concurrent reads of one partition share one scan and hold each version once', async () => {
    const source = new Source();
    const tail = new HotVersionTail(source);
    source.commit(5);
    source.delayMs = 20;
    const [a, b] = await Promise.all([tail.read(table(), '', 50n), tail.read(table(), '', 50n)]);
    assert.equal(a, b);
    assert.deepEqual(seqs(a.versions), [10, 20, 30, 40, 50]);
    assert.equal(source.reads.length, 1);
  });

  it('idle entries and entries past the byte cap are not kept; the least recently used go first', async () => {
    const source = new Source();
    let now = 0;
    // A version of one BIGINT cell counts 96 bytes: the cap holds four.
    const tail = new HotVersionTail(source, 4 * 96, 1_000, () => now);
    source.commit(3);
    await tail.read(table(), 'a', 30n);
    assert.equal(tail.bytes, 3 * 96);
    now = 2_000;
    await tail.read(table(), 'b', 30n);
    assert.equal(tail.bytes, 3 * 96, 'a was idle past 1 s and went; b holds 3');
    source.commit(2);
    const big = await tail.read(table(), 'c', 50n);
    assert.equal(big.versions.length, 5, 'the resume still gets every version');
    assert.equal(tail.bytes, 3 * 96, 'c is larger than the cap: not kept');
    now = 2_500;
    await tail.read(table(), 'd', 20n);
    assert.equal(tail.bytes, 2 * 96, 'b (3) and d (2) pass the cap: b, used longer ago, went');
  });
});
