// Minimal typings for the parts of rocksdb-native this server uses.
declare module 'rocksdb-native' {
  interface BatchOptions { capacity?: number; autoDestroy?: boolean }
  interface IteratorRange { gt?: Buffer; gte?: Buffer; lt?: Buffer; lte?: Buffer; reverse?: boolean; limit?: number; capacity?: number; values?: boolean }
  export class ReadBatch {
    get(key: Buffer): Promise<Buffer | null>;
    flush(): Promise<void>;
    tryFlush(): void;
    destroy(): void;
  }
  export class WriteBatch {
    tryPut(key: Buffer, value: Buffer): void;
    tryDelete(key: Buffer): void;
    tryDeleteRange(start: Buffer, end: Buffer): void;
    flush(): Promise<void>;
    destroy(): void;
  }
  /** An external lock: awaited before the open, `transfer` gives an fd (-1: RocksDB's own LOCK file). */
  interface OpenLock { ready(): Promise<void>; transfer(): number; close(): Promise<void> }
  interface OpenOptions { createIfMissing?: boolean; maxBackgroundJobs?: number; walRecoveryMode?: number; lock?: OpenLock }
  class RocksDB {
    constructor(path: string, opts?: OpenOptions);
    ready(): Promise<void>;
    close(opts?: { force?: boolean }): Promise<void>;
    read(opts?: BatchOptions): ReadBatch;
    write(opts?: BatchOptions): WriteBatch;
    iterator(range: IteratorRange): AsyncIterable<{ key: Buffer; value: Buffer }>;
    snapshot(): RocksDB;
    get(key: Buffer): Promise<Buffer | null>;
    flush(): Promise<void>;
    /** The WAL file writes go to now; `path` is relative to the WAL directory, with a leading slash. */
    currentWalFile(): Promise<{ path: string; number: number; type: number; startSequence: number; size: number }>;
    /** A RocksDB property of the default column family, as text (read on the calling thread). */
    getProperty(name: string): Promise<string>;
  }
  export default RocksDB;
}
