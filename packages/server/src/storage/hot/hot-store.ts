/**
 * The hot tier: RocksDB holding the catalog, every row version (by partition and _seq) and the
 * primary-key index (newest version per key). Reads here; writes go through the Committer so that
 * they are validated and group-committed in one place.
 */
import RocksDB, { type WriteBatch } from 'rocksdb-native';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../../util/errors.js';
import type { StoredValue, TableDef } from '../../catalog/types.js';
import { partitionId, primaryKeyIndex } from '../../catalog/types.js';
import { damagedCatalogEntry } from '../../catalog/catalog.js';
import { valuesInSchema, type SchemaLookup } from '../../catalog/schema-map.js';
import {
  KEY_CATALOG, KEY_FLUSHED, KEY_PK, KEY_VERSION, catalogKey, encodePk, partitionOfPrefix, partitionPrefix, pkKey, prefixEnd, tablePrefix, versionKey,
} from './keys.js';
import { decodeIndexValue, decodeIndexValueWithCells, decodeRow, type RowVersion } from './row-codec.js';
import { countPacked, firstPackedSeq, forEachPackedAt } from './version-pack.js';
import type { StorageHealth } from '../storage-health.js';
import { WalSyncer, type WalSyncState } from './wal-sync.js';
import type { Durability } from '../../config/config.js';
import { readU64BE } from './u64.js';

const SCAN_CAPACITY = 1024;
/**
 * Version entries per native read of a flush's scan. Packs are up to 256 KiB: a few dozen per read
 * keep the next read (on a libuv thread) running while JS reads the versions of the last one, where
 * SCAN_CAPACITY would fetch a whole partition's packs in one read before JS could start.
 */
const VERSION_SCAN_CAPACITY = 16;

/** Catalog JSON keeps bigint and byte values (column defaults) as tagged objects. */
function catalogReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('hex') };
  return value;
}

function catalogReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object') {
    const tagged = value as { $bigint?: string; $bytes?: string };
    if (typeof tagged.$bigint === 'string') return BigInt(tagged.$bigint);
    if (typeof tagged.$bytes === 'string') return Uint8Array.from(Buffer.from(tagged.$bytes, 'hex'));
  }
  return value;
}

const OPEN_OPTIONS = { createIfMissing: true, maxBackgroundJobs: 2 } as const;
/** A catalog key that is only ever deleted: the disk-full probe writes its tombstone (a WAL append). */
const PROBE_KEY = catalogKey('meta:storage_probe');

/** Receives the encoded versions of a scan (forEachEncodedVersion). */
export interface EncodedVersionSink {
  /** One RocksDB value read; returns the index `add` is given for its versions. */
  addValue(value: Uint8Array): number;
  add(value: number, start: number, end: number, seqHi: number, seqLo: number): void;
}

export class HotStore {
  /**
   * The catalog's schema versions (set once the catalog is loaded): rows stored under an older
   * schema version are read in the schema of the table definition the reader passes.
   */
  schemas: SchemaLookup | null = null;

  /** A stored version's cells in `table`'s schema (rows keep the version they were written with). */
  inSchema(table: TableDef, row: RowVersion): RowVersion {
    if (row.schemaVersion === table.schemaVersion || (row.cold === true && row.values.length === 0)) return row;
    assert(this.schemas !== null, 'schema lookup set before rows of older versions are read');
    return { ...row, schemaVersion: table.schemaVersion, values: valuesInSchema(this.schemas, table, row.schemaVersion, row.values) };
  }

  /** Classifies failed writes (disk full → StorageFullError); none in tools that open the store alone. */
  health: StorageHealth | null = null;
  /** Null in `process` mode: the WAL is left to the OS page cache. */
  private readonly syncer: WalSyncer | null;
  /**
   * Flush watermarks (KEY_FLUSHED), keyed by the partition's index prefix (latin1): index entries at or
   * below a partition's watermark are in a segment and read as cold markers.
   */
  private readonly flushed = new Map<string, bigint>();

  private constructor(private current: RocksDB, readonly path: string, readonly durability: Durability) {
    this.syncer = durability === 'fsync' ? new WalSyncer(() => this.current, path) : null;
  }

  /**
   * The open RocksDB instance. Read it at each use, never keep it: `reopen` replaces it. (The flush's
   * scan takes it once per scan, which a reopen waits for: closing waits for open iterators.)
   */
  get db(): RocksDB {
    return this.current;
  }

  static async open(path: string, durability: Durability = 'fsync', health?: StorageHealth): Promise<HotStore> {
    mkdirSync(path, { recursive: true });
    const db = new RocksDB(path, OPEN_OPTIONS);
    await db.ready();
    const store = new HotStore(db, path, durability);
    await store.loadFlushed();
    if (health !== undefined) {
      store.health = health;
      health.attach(store);
    }
    return store;
  }

  async close(): Promise<void> {
    await this.syncer?.close();
    await this.current.close({ force: true });
  }

  /**
   * Maps a failed RocksDB write to the error its caller should see (StorageFullError when the disk is
   * full) and tells the health monitor. The committer and every write here go through it.
   */
  writeFailed(error: unknown, source: 'commit' | 'catalog' = 'commit'): Error {
    if (this.health !== null) return this.health.writeFailed(error, source);
    return error instanceof Error ? error : new Error(String(error));
  }

  /**
   * A one-key durable write (a tombstone, so nothing accumulates) that fails while RocksDB refuses
   * writes, or while the WAL cannot be synced (a sync that failed for a full disk: a reopen clears it).
   */
  async probeWrite(): Promise<void> {
    const batch = this.current.write({ capacity: 1, autoDestroy: true });
    batch.tryDelete(PROBE_KEY);
    await batch.flush();
    await this.syncWal();
  }

  /**
   * Closes RocksDB and opens it again on the same directory: the way out of its sticky background
   * error after ENOSPC (see storage-health.ts). The new instance is installed at once, before the old
   * one is closed, so that no caller ever sees a closed instance: operations on the new one wait for
   * its open, and its open waits (through the `lock` hook, which rocksdb-native awaits before
   * opening) until the old instance has released the directory's LOCK file.
   */
  async reopen(): Promise<void> {
    let gate = this.current.close({ force: true }).catch(() => undefined);
    for (;;) {
      const previous = gate;
      const fresh = new RocksDB(this.path, { ...OPEN_OPTIONS, lock: { ready: () => previous, transfer: () => -1, close: async () => undefined } });
      this.current = fresh;
      try {
        await fresh.ready();
        return;
      } catch {
        // The open failed (the caller checks free space first, so this is rare): never leave a closed
        // instance installed, try again in a second with a new one; calls wait for it meanwhile.
        gate = fresh.close().catch(() => undefined).then(() => new Promise((r) => setTimeout(r, 1000)));
      }
    }
  }

  /** Bytes of write-ahead log: what a reopen replays into a new table file (so needs free). */
  walBytes(): number {
    let total = 0;
    try {
      for (const name of readdirSync(this.path)) if (name.endsWith('.log')) total += statSync(join(this.path, name)).size;
    } catch {
      // An unreadable directory counts as no WAL; the reopen reports the real problem.
    }
    return total;
  }

  /**
   * Makes every write batch completed so far durable as the durability mode requires: in `fsync` mode
   * the WAL is synced (callers arriving during a sync share the next one), in `process` mode nothing
   * is needed. Every write path calls it after its batch and before it acknowledges anything.
   */
  syncWal(small = false): Promise<void> {
    return this.syncer === null ? Promise.resolve() : this.syncer.sync(small);
  }

  /** Makes walSyncState() report the bytes each sync covered (an fstat per sync; for tests). */
  recordWalBytes(): void {
    if (this.syncer !== null) this.syncer.recordBytes = true;
  }

  /** WAL syncs done so far and what the last one covered (all zero in `process` mode). */
  walSyncState(): WalSyncState {
    return this.syncer?.state() ?? { syncs: 0, syncsOnLoop: 0, walNumber: 0, walBytes: 0 };
  }

  private async loadFlushed(): Promise<void> {
    const start = Buffer.of(KEY_FLUSHED);
    for await (const { key, value } of this.db.iterator({ gte: start, lt: prefixEnd(start), capacity: SCAN_CAPACITY })) {
      this.flushed.set(indexPrefixOf(key), readU64BE(value, 0));
    }
  }

  /** The partition's flush watermark: its index entries at or below it read as cold markers (0: none). */
  flushedSeq(tableId: number, partition: string): bigint {
    return this.flushed.get(partitionPrefix(KEY_PK, tableId, partition).toString('latin1')) ?? 0n;
  }

  /**
   * Whether the partition's index points at a live row in its segments (a cold entry, not deleted):
   * only then does a lost manifest or partition directory lose rows. A partition whose flushed rows
   * were all deleted and compacted away keeps its watermark with an empty manifest, which a backup
   * does not copy.
   */
  async hasLiveColdRows(table: TableDef, partition: string): Promise<boolean> {
    return (await this.scanIndex(table, partition, this.db)).some((e) => e.row.cold === true && !e.row.deleted);
  }

  /** Partitions of a table with a flush watermark: the hot tier says rows of them were handed over to cold. */
  flushedPartitions(tableId: number): string[] {
    const table = tablePrefix(KEY_PK, tableId).toString('latin1');
    const out: string[] = [];
    for (const [id, seq] of this.flushed) {
      if (seq > 0n && id.startsWith(table)) out.push(partitionOfPrefix(Buffer.from(id, 'latin1')));
    }
    return out;
  }

  /**
   * A flush's hand-over, called once its segment is listed in the committed manifest (`seq`: the
   * highest `_seq` the segments hold). Reads see the new watermark at once, before this returns (it
   * is set synchronously, so no read runs between the manifest commit and it); then the watermark is
   * written and the flushed versions deleted in one atomic, synced batch. Instead of a cold marker
   * written per key (decision 0005), one key per partition: entries written later have larger seqs
   * and stay hot. Idempotent; a watermark never moves back (compaction may drop the newest segment row).
   */
  handOverFlushed(tableId: number, partition: string, seq: bigint): Promise<void> {
    const id = partitionPrefix(KEY_PK, tableId, partition).toString('latin1');
    const watermark = (this.flushed.get(id) ?? 0n) > seq ? this.flushed.get(id)! : seq;
    this.flushed.set(id, watermark);
    return this.writeFlushed(tableId, partition, watermark);
  }

  private async writeFlushed(tableId: number, partition: string, watermark: bigint): Promise<void> {
    const value = Buffer.allocUnsafe(8);
    value.writeBigUInt64BE(watermark);
    const versions = partitionPrefix(KEY_VERSION, tableId, partition);
    const batch = this.db.write({ capacity: 2, autoDestroy: true });
    batch.tryPut(partitionPrefix(KEY_FLUSHED, tableId, partition), value);
    // Version packs are keyed by their highest `_seq`: this removes the packs flushed in full (a flush's
    // watermark is the last version of a commit group, so that is every pack at or below it).
    batch.tryDeleteRange(versionKey(versions, 0n), versionKey(versions, watermark + 1n));
    await this.flushBatch(batch, 'commit');
    // Synced like any write (the segment it points to is already fsynced).
    await this.syncWal();
  }

  /**
   * Visits the partition's versions with `after` < `_seq` <= `upTo`, in commit order, in the table's
   * schema (tombstones included). A flush streams them into its segment; returns how many it visited.
   * Version entries are packs keyed by their highest `_seq` (version-pack.ts): the scan starts at the
   * first pack above `after` and stops at the first whose versions are all above `upTo`.
   */
  async forEachVersion(table: TableDef, partition: string, after: bigint, upTo: bigint, visit: (row: RowVersion) => void): Promise<number> {
    let held: Uint8Array = Buffer.alloc(0);
    return this.forEachEncodedVersion(table, partition, after, upTo, {
      addValue: (value) => {
        held = value;
        return 0;
      },
      add: (_value, start, end, seqHi, seqLo) => visit(this.decodeVersion(table, (BigInt(seqHi) << 32n) | BigInt(seqLo), held.subarray(start, end))),
    });
  }

  /**
   * forEachVersion without decoding: `sink.addValue` gets each RocksDB value read (a pack holds many
   * versions; it stays valid after the call), then `sink.add` each of its versions as its byte range
   * [start, end) there (row-codec.ts) and its `_seq` in two unsigned 32-bit halves. The flush reads
   * them in place (decodeVersion for the ones it cannot).
   */
  async forEachEncodedVersion(table: TableDef, partition: string, after: bigint, upTo: bigint, sink: EncodedVersionSink): Promise<number> {
    const prefix = partitionPrefix(KEY_VERSION, table.id, partition);
    let n = 0;
    let index = 0;
    const add = (seqHi: number, seqLo: number, start: number, end: number): void => sink.add(index, start, end, seqHi, seqLo);
    for await (const { key, value } of this.db.iterator({ gt: versionKey(prefix, after), lt: prefixEnd(prefix), capacity: VERSION_SCAN_CAPACITY })) {
      const keySeq = readU64BE(key, key.length - 8);
      if (firstPackedSeq(keySeq, value) > upTo) break;
      index = sink.addValue(value);
      n += forEachPackedAt(keySeq, value, after, upTo, add);
    }
    return n;
  }

  /** One encoded version, in the table's current schema. */
  decodeVersion(table: TableDef, seq: bigint, bytes: Uint8Array): RowVersion {
    return this.inSchema(table, decodeRow(seq, bytes));
  }

  /** Catalog entries of history (audit log, jobs) that could not be read at the last load: left out, not fatal. */
  readonly damagedHistory: string[] = [];

  /**
   * Every catalog entry, as name → parsed JSON. A damaged entry names itself: one of history (audit
   * log, jobs) is left out (damagedHistory), any other stops the start with what to do (a fault review:
   * one bad byte in an old audit row kept the whole database down with a bare SyntaxError).
   */
  async loadCatalog(): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    const start = Buffer.of(KEY_CATALOG);
    for await (const { key, value } of this.db.iterator({ gte: start, lt: prefixEnd(start), capacity: SCAN_CAPACITY })) {
      const name = key.subarray(1).toString('utf8');
      try {
        out.set(name, JSON.parse(value.toString('utf8'), catalogReviver));
      } catch (error) {
        if (name.startsWith('audit:') || name.startsWith('job:')) {
          if (!this.damagedHistory.includes(name)) this.damagedHistory.push(name);
          continue;
        }
        throw damagedCatalogEntry(name, (error as Error).message, error);
      }
    }
    return out;
  }

  /** Whether any catalog entry's key starts with `prefix` (reads at most one entry). */
  async hasCatalogEntry(prefix: string): Promise<boolean> {
    const start = catalogKey(prefix);
    for await (const _entry of this.db.iterator({ gte: start, lt: prefixEnd(start), limit: 1 })) return true;
    return false;
  }

  /** Writes catalog entries atomically; `undefined` deletes. */
  async writeCatalog(entries: ReadonlyMap<string, unknown>): Promise<void> {
    // Never capacity 0: rocksdb-native pools small batches and grows a reused one by doubling its
    // capacity, which a 0 never leaves (the next get or put on it spins forever).
    const batch = this.db.write({ capacity: Math.max(1, entries.size), autoDestroy: true });
    for (const [name, value] of entries) {
      if (value === undefined) batch.tryDelete(catalogKey(name));
      else batch.tryPut(catalogKey(name), Buffer.from(JSON.stringify(value, catalogReplacer), 'utf8'));
    }
    await this.flushBatch(batch, 'catalog');
    await this.syncWal();
  }

  /** Newest hot version of every key in a partition (tombstones included, cold markers skipped), in key order. */
  async scanPartition(table: TableDef, partition: string): Promise<RowVersion[]> {
    const out: RowVersion[] = [];
    for await (const chunk of this.scanPartitionChunks(table, partition)) for (const row of chunk) out.push(row);
    return out;
  }

  /**
   * The rows of scanPartition a chunk at a time, from one iterator (so one consistent view): the hot
   * mirror's load appends each chunk to DuckDB instead of holding every row of the partition in the
   * JS heap at once (a million rows made ~1 GB of garbage that stayed resident).
   */
  async *scanPartitionChunks(table: TableDef, partition: string): AsyncGenerator<RowVersion[]> {
    const prefix = partitionPrefix(KEY_PK, table.id, partition);
    const flushed = this.flushedSeq(table.id, partition);
    let chunk: RowVersion[] = [];
    for await (const { value } of this.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: SCAN_CAPACITY })) {
      const row = decodeIndexValue(value, flushed);
      if (row.cold === true) continue;
      chunk.push(this.inSchema(table, row));
      if (chunk.length === SCAN_CAPACITY) {
        yield chunk;
        chunk = [];
      }
    }
    if (chunk.length > 0) yield chunk;
  }

  /** Every index entry of a partition (cold markers included), read from `db` (a snapshot for flushes). */
  async scanIndex(table: TableDef, partition: string, db: RocksDB): Promise<{ key: Buffer; row: RowVersion }[]> {
    const prefix = partitionPrefix(KEY_PK, table.id, partition);
    const flushed = this.flushedSeq(table.id, partition);
    const out: { key: Buffer; row: RowVersion }[] = [];
    for await (const { key, value } of db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: SCAN_CAPACITY })) {
      out.push({ key, row: this.inSchema(table, decodeIndexValue(value, flushed)) });
    }
    return out;
  }

  /** The partitions of a table that have index entries (one short iterator per partition). */
  async partitionsWithRows(tableId: number): Promise<string[]> {
    const table = Buffer.alloc(5);
    table[0] = KEY_PK;
    table.writeUInt32BE(tableId, 1);
    const end = prefixEnd(table);
    const out: string[] = [];
    let from: Buffer = table;
    for (;;) {
      let found: Buffer | null = null;
      for await (const { key } of this.db.iterator({ gte: from, lt: end, capacity: 1, limit: 1, values: false })) found = key;
      if (found === null) return out;
      const partition = found.subarray(6, 6 + found[5]!).toString('utf8');
      out.push(partition);
      from = prefixEnd(partitionPrefix(KEY_PK, tableId, partition));
    }
  }

  /** The last (largest) index key under `prefix` (one partition), or null when there is none. */
  async lastIndexKey(prefix: Buffer): Promise<Buffer | null> {
    for await (const { key } of this.db.iterator({ gte: prefix, lt: prefixEnd(prefix), reverse: true, limit: 1, capacity: 1, values: false })) return key;
    return null;
  }

  /**
   * system.table_stats' hot count of one table, summed over its partitions: primary keys whose newest
   * version is unflushed (its index entry is above the partition's flush watermark), tombstones
   * included, superseded versions not (a key has one index entry) — exactly the rows the next flush
   * writes. The index keeps an entry for every key the table ever had (flushed ones read as cold
   * markers), so this reads them all: at most `budget` entries, else null (not counted). Only the
   * 8-byte `_seq` head of each value is read, never the row.
   */
  async countHotKeys(tableId: number, budget: number): Promise<{ hot: number; scanned: number } | null> {
    const prefix = tablePrefix(KEY_PK, tableId);
    let hot = 0;
    let scanned = 0;
    // Keys come partition by partition: the watermark is looked up once per run of one partition.
    let partition: Buffer | null = null;
    let flushed = 0n;
    for await (const { key, value } of this.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: SCAN_CAPACITY })) {
      if (++scanned > budget) return null;
      const length = 6 + key[5]!;
      if (partition === null || partition.length !== length || key.compare(partition, 0, length, 0, length) !== 0) {
        partition = key.subarray(0, length);
        flushed = this.flushed.get(indexPrefixOf(key)) ?? 0n;
      }
      if (readU64BE(value, 0) > flushed) hot++;
    }
    return { hot, scanned };
  }

  /** Hot versions per (table id, partition): how many and the oldest `_seq` (for flush policies). */
  async countHotVersions(): Promise<Map<string, { tableId: number; partition: string; count: number; oldestSeq: bigint }>> {
    const out = new Map<string, { tableId: number; partition: string; count: number; oldestSeq: bigint }>();
    const start = Buffer.of(KEY_VERSION);
    for await (const { key, value } of this.db.iterator({ gte: start, lt: prefixEnd(start), capacity: SCAN_CAPACITY })) {
      const tableId = key.readUInt32BE(1);
      const partition = key.subarray(6, 6 + key[5]!).toString('utf8');
      // A pack reaching above the watermark keeps its flushed versions until the next hand-over: not counted.
      const flushed = this.flushed.get(indexPrefixOf(key)) ?? 0n;
      const keySeq = readU64BE(key, key.length - 8);
      const count = countPacked(keySeq, value, flushed);
      if (count === 0) continue;
      const id = partitionId(tableId, partition);
      const entry = out.get(id);
      if (entry === undefined) out.set(id, { tableId, partition, count, oldestSeq: firstPackedSeq(keySeq, value, flushed) });
      else entry.count += count;
    }
    return out;
  }

  /**
   * Newest version for each primary key given (null where the key has never been written). With
   * `flushedCells`, a flushed entry that still holds its cells comes back with them (`cold: true`,
   * values in the table's schema): a point read needs no segment for it.
   */
  async getByPks(table: TableDef, partition: string, pks: readonly StoredValue[], flushedCells = false): Promise<(RowVersion | null)[]> {
    const pkCol = table.columns[primaryKeyIndex(table)];
    assert(pkCol !== undefined, 'table without primary key');
    // No keys, no batch: a capacity-0 batch goes back to rocksdb-native's pool and hangs the next
    // read that reuses it (its growth doubles 0; found by a fault-injection review: a DELETE that
    // matched no row, then point reads, held the thread at 100% for good).
    if (pks.length === 0) return [];
    const prefix = partitionPrefix(KEY_PK, table.id, partition);
    const batch = this.db.read({ capacity: pks.length, autoDestroy: true });
    const pending = pks.map((pk) => batch.get(pkKey(prefix, encodePk(pkCol.type, pk))));
    batch.tryFlush();
    const values = await Promise.all(pending);
    const flushed = this.flushed.get(prefix.toString('latin1')) ?? 0n;
    const decode = flushedCells ? decodeIndexValueWithCells : decodeIndexValue;
    return values.map((v) => (v === null ? null : this.inSchema(table, decode(v, flushed))));
  }

  /** Raw index lookups used by the committer to validate a group of writes at once. */
  async getIndexEntries(keys: readonly Buffer[]): Promise<(RowVersion | null)[]> {
    if (keys.length === 0) return [];
    const batch = this.db.read({ capacity: keys.length, autoDestroy: true });
    const pending = keys.map((k) => batch.get(k));
    batch.tryFlush();
    const values = await Promise.all(pending);
    if (this.flushed.size === 0) return values.map((v) => (v === null ? null : decodeIndexValue(v)));
    // A group's keys are mostly of one partition: its watermark is looked up once per run of them.
    let prefix: Buffer | null = null;
    let flushed = 0n;
    return values.map((v, i) => {
      if (v === null) return null;
      const key = keys[i]!;
      const length = 6 + key[5]!;
      if (prefix === null || prefix.length !== length || key.compare(prefix, 0, length, 0, length) !== 0) {
        prefix = key.subarray(0, length);
        flushed = this.flushed.get(indexPrefixOf(key)) ?? 0n;
      }
      return decodeIndexValue(v, flushed);
    });
  }

  /**
   * Removes every row version and index entry (cold markers included) of one partition: the purge of a
   * dropped account. Returns how many unflushed row versions it held. Idempotent.
   */
  async dropPartitionRows(tableId: number, partition: string): Promise<number> {
    assert(partition !== '', 'a SHARED table has one partition; dropping it is DROP TABLE');
    const versions = partitionPrefix(KEY_VERSION, tableId, partition);
    const flushed = this.flushedSeq(tableId, partition);
    let count = 0;
    for await (const { key, value } of this.db.iterator({ gte: versions, lt: prefixEnd(versions), capacity: SCAN_CAPACITY })) {
      assert(key.length > versions.length, 'version key');
      count += countPacked(readU64BE(key, key.length - 8), value, flushed);
    }
    const batch = this.db.write({ capacity: 3, autoDestroy: true });
    for (const kind of [KEY_VERSION, KEY_PK]) {
      const prefix = partitionPrefix(kind, tableId, partition);
      batch.tryDeleteRange(prefix, prefixEnd(prefix));
    }
    batch.tryDelete(partitionPrefix(KEY_FLUSHED, tableId, partition));
    await this.flushBatch(batch, 'commit');
    await this.syncWal();
    this.flushed.delete(partitionPrefix(KEY_PK, tableId, partition).toString('latin1'));
    return count;
  }

  /** Removes every row version and index entry of a table (DROP TABLE). */
  async dropTableRows(tableId: number): Promise<void> {
    const batch = this.db.write({ capacity: 3, autoDestroy: true });
    for (const kind of [KEY_VERSION, KEY_PK, KEY_FLUSHED]) {
      const prefix = tablePrefix(kind, tableId);
      batch.tryDeleteRange(prefix, prefixEnd(prefix));
    }
    await this.flushBatch(batch, 'commit');
    await this.syncWal();
    const table = tablePrefix(KEY_PK, tableId).toString('latin1');
    for (const id of [...this.flushed.keys()]) if (id.startsWith(table)) this.flushed.delete(id);
  }

  private async flushBatch(batch: WriteBatch, source: 'commit' | 'catalog'): Promise<void> {
    try {
      await batch.flush();
    } catch (error) {
      throw this.writeFailed(error, source);
    }
  }
}

/** The index prefix (kind KEY_PK, latin1) of the partition a key of any kind belongs to. */
function indexPrefixOf(key: Buffer): string {
  return String.fromCharCode(KEY_PK) + key.toString('latin1', 1, 6 + key[5]!);
}
