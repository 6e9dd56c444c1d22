/**
 * RocksDB's own account of the memory it holds, from its properties (rocksdb-native exposes
 * `getProperty`): memtables (writes not yet in SST files), the block cache (its usage and the part
 * pinned by open iterators and index/filter blocks), and the SST table readers outside the cache.
 * The block cache's capacity is reported too, so a reader can see how close to it the usage is.
 */
import type RocksDB from 'rocksdb-native';

export interface RocksDbMemory {
  readonly memtables: number;
  readonly block_cache: number;
  readonly block_cache_pinned: number;
  readonly table_readers: number;
  readonly block_cache_capacity: number;
}

const PROPERTIES: Readonly<Record<keyof RocksDbMemory, string>> = {
  memtables: 'rocksdb.size-all-mem-tables',
  block_cache: 'rocksdb.block-cache-usage',
  block_cache_pinned: 'rocksdb.block-cache-pinned-usage',
  table_readers: 'rocksdb.estimate-table-readers-mem',
  block_cache_capacity: 'rocksdb.block-cache-capacity',
};

/** The figures in bytes; null while the store is being reopened (a restore) or closed. */
export async function rocksDbMemory(db: RocksDB): Promise<RocksDbMemory | null> {
  try {
    const out: Record<string, number> = {};
    for (const [name, property] of Object.entries(PROPERTIES)) out[name] = Number(await db.getProperty(property)) || 0;
    return out as unknown as RocksDbMemory;
  } catch {
    return null;
  }
}
