/**
 * The hot tier: RocksDB holding the catalog, every row version (by partition and _seq) and the
 * primary-key index (newest version per key). Reads here; writes go through the Committer so that
 * they are validated and group-committed in one place.
 */
import RocksDB from 'rocksdb-native';
import { mkdirSync } from 'node:fs';
import { assert } from '../../util/errors.js';
import type { StoredValue, TableDef } from '../../catalog/types.js';
import { partitionId, primaryKeyIndex } from '../../catalog/types.js';
import {
  KEY_CATALOG, KEY_PK, KEY_VERSION, catalogKey, encodePk, partitionPrefix, pkKey, prefixEnd, tablePrefix, versionKey,
} from './keys.js';
import { decodeIndexValue, decodeRow, type RowVersion } from './row-codec.js';
import { WalSyncer, type WalSyncState } from './wal-sync.js';
import type { Durability } from '../../config/config.js';

const SCAN_CAPACITY = 1024;

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

export class HotStore {
  /** Null in `process` mode: the WAL is left to the OS page cache. */
  private readonly syncer: WalSyncer | null;

  private constructor(readonly db: RocksDB, readonly path: string, readonly durability: Durability) {
    this.syncer = durability === 'fsync' ? new WalSyncer(db, path) : null;
  }

  static async open(path: string, durability: Durability = 'fsync'): Promise<HotStore> {
    mkdirSync(path, { recursive: true });
    const db = new RocksDB(path, { createIfMissing: true, maxBackgroundJobs: 2 });
    await db.ready();
    return new HotStore(db, path, durability);
  }

  async close(): Promise<void> {
    await this.syncer?.close();
    await this.db.close({ force: true });
  }

  /**
   * Makes every write batch completed so far durable as the durability mode requires: in `fsync` mode
   * the WAL is synced (callers arriving during a sync share the next one), in `process` mode nothing
   * is needed. Every write path calls it after its batch and before it acknowledges anything.
   */
  syncWal(): Promise<void> {
    return this.syncer === null ? Promise.resolve() : this.syncer.sync();
  }

  /** WAL syncs done so far and what the last one covered (all zero in `process` mode). */
  walSyncState(): WalSyncState {
    return this.syncer?.state() ?? { syncs: 0, walNumber: 0, walBytes: 0 };
  }

  /** Every catalog entry, as name → parsed JSON. */
  async loadCatalog(): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    const start = Buffer.of(KEY_CATALOG);
    for await (const { key, value } of this.db.iterator({ gte: start, lt: prefixEnd(start), capacity: SCAN_CAPACITY })) {
      out.set(key.subarray(1).toString('utf8'), JSON.parse(value.toString('utf8'), catalogReviver));
    }
    return out;
  }

  /** Writes catalog entries atomically; `undefined` deletes. */
  async writeCatalog(entries: ReadonlyMap<string, unknown>): Promise<void> {
    const batch = this.db.write({ capacity: entries.size, autoDestroy: true });
    for (const [name, value] of entries) {
      if (value === undefined) batch.tryDelete(catalogKey(name));
      else batch.tryPut(catalogKey(name), Buffer.from(JSON.stringify(value, catalogReplacer), 'utf8'));
    }
    await batch.flush();
    await this.syncWal();
  }

  /** Newest hot version of every key in a partition (tombstones included, cold markers skipped), in key order. */
  async scanPartition(table: TableDef, partition: string): Promise<RowVersion[]> {
    const out: RowVersion[] = [];
    for (const entry of await this.scanIndex(table, partition, this.db)) if (!entry.row.cold) out.push(entry.row);
    return out;
  }

  /** Every index entry of a partition (cold markers included), read from `db` (a snapshot for flushes). */
  async scanIndex(table: TableDef, partition: string, db: RocksDB): Promise<{ key: Buffer; row: RowVersion }[]> {
    const prefix = partitionPrefix(KEY_PK, table.id, partition);
    const out: { key: Buffer; row: RowVersion }[] = [];
    for await (const { key, value } of db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: SCAN_CAPACITY })) {
      out.push({ key, row: decodeIndexValue(value) });
    }
    return out;
  }

  /** Hot versions per (table id, partition): how many and the oldest `_seq` (for flush policies). */
  async countHotVersions(): Promise<Map<string, { tableId: number; partition: string; count: number; oldestSeq: bigint }>> {
    const out = new Map<string, { tableId: number; partition: string; count: number; oldestSeq: bigint }>();
    const start = Buffer.of(KEY_VERSION);
    for await (const { key } of this.db.iterator({ gte: start, lt: prefixEnd(start), capacity: SCAN_CAPACITY, values: false })) {
      const tableId = key.readUInt32BE(1);
      const partition = key.subarray(6, 6 + key[5]!).toString('utf8');
      const seq = key.readBigUInt64BE(key.length - 8);
      const id = partitionId(tableId, partition);
      const entry = out.get(id);
      if (entry === undefined) out.set(id, { tableId, partition, count: 1, oldestSeq: seq });
      else entry.count++;
    }
    return out;
  }

  /** Newest version for each primary key given (null where the key has never been written). */
  async getByPks(table: TableDef, partition: string, pks: readonly StoredValue[]): Promise<(RowVersion | null)[]> {
    const pkCol = table.columns[primaryKeyIndex(table)];
    assert(pkCol !== undefined, 'table without primary key');
    const prefix = partitionPrefix(KEY_PK, table.id, partition);
    const batch = this.db.read({ capacity: pks.length, autoDestroy: true });
    const pending = pks.map((pk) => batch.get(pkKey(prefix, encodePk(pkCol.type, pk))));
    batch.tryFlush();
    const values = await Promise.all(pending);
    return values.map((v) => (v === null ? null : decodeIndexValue(v)));
  }

  /** Raw index lookups used by the committer to validate a group of writes at once. */
  async getIndexEntries(keys: readonly Buffer[]): Promise<(RowVersion | null)[]> {
    if (keys.length === 0) return [];
    const batch = this.db.read({ capacity: keys.length, autoDestroy: true });
    const pending = keys.map((k) => batch.get(k));
    batch.tryFlush();
    const values = await Promise.all(pending);
    return values.map((v) => (v === null ? null : decodeIndexValue(v)));
  }

  /** Every version of a partition with seq > afterSeq, in commit order. */
  async scanVersionsAfter(table: TableDef, partition: string, afterSeq: bigint): Promise<RowVersion[]> {
    const prefix = partitionPrefix(KEY_VERSION, table.id, partition);
    const out: RowVersion[] = [];
    const range = { gt: versionKey(prefix, afterSeq), lt: prefixEnd(prefix), capacity: SCAN_CAPACITY };
    for await (const { key, value } of this.db.iterator(range)) {
      out.push(decodeRow(key.readBigUInt64BE(key.length - 8), value));
    }
    return out;
  }

  /**
   * Removes every row version and index entry (cold markers included) of one partition: the purge of a
   * dropped account. Returns how many unflushed row versions it held. Idempotent.
   */
  async dropPartitionRows(tableId: number, partition: string): Promise<number> {
    assert(partition !== '', 'a SHARED table has one partition; dropping it is DROP TABLE');
    const versions = partitionPrefix(KEY_VERSION, tableId, partition);
    let count = 0;
    for await (const entry of this.db.iterator({ gte: versions, lt: prefixEnd(versions), capacity: SCAN_CAPACITY, values: false })) {
      assert(entry.key.length > versions.length, 'version key');
      count++;
    }
    const batch = this.db.write({ capacity: 2, autoDestroy: true });
    for (const kind of [KEY_VERSION, KEY_PK]) {
      const prefix = partitionPrefix(kind, tableId, partition);
      batch.tryDeleteRange(prefix, prefixEnd(prefix));
    }
    await batch.flush();
    await this.syncWal();
    return count;
  }

  /** Removes every row version and index entry of a table (DROP TABLE). */
  async dropTableRows(tableId: number): Promise<void> {
    const batch = this.db.write({ capacity: 2, autoDestroy: true });
    for (const kind of [KEY_VERSION, KEY_PK]) {
      const prefix = tablePrefix(kind, tableId);
      batch.tryDeleteRange(prefix, prefixEnd(prefix));
    }
    await batch.flush();
    await this.syncWal();
  }
}
