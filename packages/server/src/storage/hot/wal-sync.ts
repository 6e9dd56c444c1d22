/**
 * WAL syncing for `durability = "fsync"`. rocksdb-native (3.18) writes batches with RocksDB's default
 * WriteOptions (`sync = false`) and exposes no sync option, no FlushWAL and no SyncWAL. A completed
 * write has, however, already been handed to the kernel with write() (RocksDB's `manual_wal_flush` is
 * off), so fdatasync() on our own descriptor of the same WAL file makes it durable: fsync acts on the
 * file, not on the descriptor. That is what RocksDB's `sync = true` does too (fdatasync, as
 * `use_fsync` is off), one call for the whole write batch.
 *
 * The file to sync comes from `currentWalFile()`. RocksDB switches to a new WAL when a memtable is
 * flushed, so the file a write went to may already be closed when we ask: every WAL from the last one
 * synced up to the current one is synced then (a closed WAL that was already deleted is covered by the
 * flushed SST file, which RocksDB fsyncs). A new WAL's directory entry is made durable with an fsync of
 * the directory, as RocksDB does for synced writes.
 */
import { fdatasyncSync, fstatSync } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type RocksDB from 'rocksdb-native';
import { SyncPlacement } from './sync-placement.js';

/** What the last sync covered: which WAL file and how many bytes of it (for tests and diagnostics). */
export interface WalSyncState {
  readonly syncs: number;
  /** Of those, the syncs that ran on the JS thread (sync-placement.ts). */
  readonly syncsOnLoop: number;
  readonly walNumber: number;
  /** Bytes of that WAL the last sync covered; 0 unless `recordBytes` is on (an fstat per sync). */
  readonly walBytes: number;
}

const WAL_FILE = /^(\d+)\.log$/;
/**
 * Bumped by RocksDB at every memtable switch, the only time it starts a new WAL (one column family:
 * the store uses only the default one). Unchanged since the last look (same instance) means the WAL
 * written to is still the one we hold, so the sync skips `currentWalFile()`, a thread-pool round trip.
 */
const SUPER_VERSION = 'rocksdb.current-super-version-number';

export class WalSyncer {
  private syncs = 0;
  private syncsOnLoop = 0;
  private walBytes = 0;
  private readonly placement = new SyncPlacement();
  private current: { readonly number: number; readonly handle: FileHandle } | null = null;
  /** The RocksDB instance and super-version number seen when `current` was last confirmed current. */
  private confirmed: { readonly db: RocksDB; readonly version: string } | null = null;
  /** The sync in progress (it may have started before a caller's write, so that caller waits for the next). */
  private running: Promise<void> | null = null;
  /** The next sync, not started yet: every caller arriving now shares it (one fdatasync for all). */
  private queued: Promise<void> | null = null;
  /**
   * Set when fdatasync failed. Linux may drop the dirty pages of a failed fsync and report success on
   * the next call, so no later sync can vouch for the WAL: every sync fails until the server restarts
   * (recovery then replays what the WAL really holds), as PostgreSQL does after a failed fsync, or
   * until RocksDB is reopened (disk-full recovery, storage-health.ts), which is the same recovery: the
   * new instance replays the WAL into a table file it syncs and writes a new WAL, which its syncs cover.
   */
  private failure: { readonly error: Error; readonly db: RocksDB } | null = null;

  /**
   * Records the WAL's size at each sync in `state().walBytes` (the tests check that a sync covered
   * every write). Off by default: an fstat per commit group on the JS thread, for nobody.
   */
  recordBytes = false;

  /** `db` is read at each sync: the store may reopen RocksDB (disk-full recovery) under it. */
  constructor(private readonly db: () => RocksDB, private readonly dir: string) {}

  /**
   * Resolves when every write completed before this call is on stable storage. `small`: the caller
   * (a commit group of few rows) has nothing to do until then, so the sync may run on the JS thread
   * when that is cheap (sync-placement.ts).
   */
  sync(small = false): Promise<void> {
    if (this.queued !== null) return this.queued;
    const previous = this.running ?? Promise.resolve();
    const next: Promise<void> = previous.then(
      () => this.startSync(next, small),
      () => this.startSync(next, small),
    );
    this.queued = next;
    return next;
  }

  state(): WalSyncState {
    return { syncs: this.syncs, syncsOnLoop: this.syncsOnLoop, walNumber: this.current?.number ?? 0, walBytes: this.walBytes };
  }

  async close(): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.queued?.catch(() => undefined);
    await this.current?.handle.close();
    this.current = null;
  }

  private async startSync(self: Promise<void>, small: boolean): Promise<void> {
    this.queued = null;
    this.running = self;
    try {
      await this.syncNow(small);
    } finally {
      if (this.running === self) this.running = null;
    }
  }

  private async syncNow(small: boolean): Promise<void> {
    const db = this.db();
    if (this.failure !== null) {
      if (db === this.failure.db) {
        // `cause` keeps the original error's code: a full disk stays a full disk (HTTP 507, recovery probes).
        throw new Error(`the write-ahead log could not be synced earlier (${this.failure.error.message}); restart the server`, { cause: this.failure.error });
      }
      this.failure = null;
      // The old instance's WAL is in the table file the reopen wrote: start over with the new WAL.
      await this.current?.handle.close().catch(() => undefined);
      this.current = null;
    }
    try {
      // Read after the writes this sync covers. No memtable switch since the WAL we hold was
      // confirmed current (same instance: a reopen starts a new WAL and numbering): sync it, done.
      const version = await db.getProperty(SUPER_VERSION);
      const previous = this.current;
      if (previous !== null && this.confirmed !== null && this.confirmed.db === db && this.confirmed.version === version) {
        if (small && this.placement.onLoop()) {
          const started = performance.now();
          fdatasyncSync(previous.handle.fd);
          this.placement.ranOnLoop(performance.now() - started);
          this.syncsOnLoop++;
        } else {
          await previous.handle.datasync();
        }
        if (this.recordBytes) this.walBytes = fstatSync(previous.handle.fd).size;
        this.syncs++;
        return;
      }
      // Asked after the writes this sync covers; meanwhile the WAL we hold is synced.
      const [wal] = await Promise.all([db.currentWalFile(), previous?.handle.datasync()]);
      this.confirmed = { db, version };
      if (previous === null || previous.number !== wal.number) {
        if (previous !== null) await this.syncClosedWals(previous, wal.number);
        // `path` is relative to the WAL directory, with a leading slash ("/000004.log").
        const handle = await open(join(this.dir, wal.path), 'r');
        this.current = { number: wal.number, handle };
        await syncPath(this.dir);
        await handle.datasync();
      }
      if (this.recordBytes) this.walBytes = wal.size;
      this.syncs++;
    } catch (error) {
      this.failure = { error: error as Error, db };
      throw error;
    }
  }

  /** Syncs the WAL last synced and any WAL created after it and before `currentNumber`, then closes it. */
  private async syncClosedWals(previous: { readonly number: number; readonly handle: FileHandle }, currentNumber: number): Promise<void> {
    await previous.handle.datasync();
    await previous.handle.close();
    this.current = null;
    for (const name of await readdir(this.dir)) {
      const number = Number(WAL_FILE.exec(name)?.[1] ?? NaN);
      if (!(number > previous.number && number < currentNumber)) continue;
      try {
        await syncPath(join(this.dir, name));
      } catch (error) {
        // Deleted since the listing: its memtable was flushed to a (synced) SST file.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
