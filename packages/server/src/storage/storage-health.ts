/**
 * Disk-full handling in one place. Every storage write that fails (RocksDB batches through the
 * committer and the catalog, Parquet segments, job rows) is passed to `writeFailed`, which
 * classifies it with `isDiskFullError`: a full disk turns into a typed StorageFullError (HTTP 507)
 * and switches the server into the `full` state, logged once. While full:
 *   - background writers (flush policies, stream-eviction job rows, pruning) skip their work
 *     (`writable` is false) instead of failing and logging every tick;
 *   - a probe runs every PROBE_INTERVAL_MS: once the file system has room again and a tiny RocksDB
 *     write succeeds, the state returns to `ok` (logged once) and writes resume without a restart.
 *
 * Why a probe that may reopen RocksDB: a failed WAL append puts RocksDB into a background "hard
 * error" state in which every later write fails with the same ENOSPC, even after space is freed.
 * RocksDB's own automatic recovery (through its SstFileManager) only retries when the free space
 * exceeds the write buffer size (64 MB by default, more than a small volume ever frees), and
 * rocksdb-native does not expose DB::Resume(). Closing and reopening the store clears the state and
 * replays the WAL, so nothing acknowledged is lost (the failed batch was never acknowledged).
 */
import { statfsSync } from 'node:fs';
import { StorageFullError, isDiskFullError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export type StorageState = 'ok' | 'full';

/** Where a failed write came from, for the one log line that reports the state change. */
export type WriteSource = 'commit' | 'catalog' | 'flush' | 'job' | 'probe';

/** What the health monitor needs from the hot store (kept narrow: storage-health knows no RocksDB). */
export interface ProbeTarget {
  /** A tiny durable write; rejects while the store refuses writes. */
  probeWrite(): Promise<void>;
  /** Closes and reopens the store, clearing a sticky background error. */
  reopen(): Promise<void>;
  /** Bytes of write-ahead log a reopen replays (and so needs room for). */
  walBytes(): number;
}

const PROBE_INTERVAL_MS = 500;
/**
 * Free bytes the data directory's file system needs before a reopen is tried: reopening replays the
 * WAL into a new table file and writes a new MANIFEST and WAL, which must not hit ENOSPC again.
 */
const REOPEN_FREE_BYTES_MIN = 4 * 1024 * 1024;

export class StorageHealth {
  private current: StorageState = 'ok';
  /** Since when flushes fail for a full cold tier while the hot store has room (null: they do not). */
  private coldFullSince: number | null = null;
  private since = 0;
  private failedWrites = 0;
  private target: ProbeTarget | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;
  /** Reopens done since start (reported in the recovery log line and used by tests through the log). */
  reopens = 0;

  constructor(private readonly dataDir: string, private readonly log: Logger) {}

  /** Set once the hot store is open; before that a failure cannot be probed (start-up fails instead). */
  attach(target: ProbeTarget): void {
    this.target = target;
  }

  get state(): StorageState {
    return this.current;
  }

  /** False while the disk is full: background writers skip their work until it is writable again. */
  get writable(): boolean {
    return this.current === 'ok';
  }

  /**
   * Classifies a failed write. Returns the error to hand to the caller: a StorageFullError when the
   * disk is full (entering the `full` state on the first one), otherwise the error unchanged.
   */
  writeFailed(error: unknown, source: WriteSource): Error {
    const full = isDiskFullError(error);
    if (!full) return error instanceof Error ? error : new Error(String(error));
    // A flush writes Parquet under storage/, often a volume of its own: while the hot store's volume
    // has room, that is the cold tier being full. Writes go on into RocksDB; flushes wait (their
    // back-off) and /health says so. (A fault review saw the hot state flip to full and back every
    // half second, once per failed flush, while no write was ever refused.)
    if (source === 'flush' && (freeBytes(this.dataDir) ?? 0) >= COLD_ONLY_HOT_FREE_BYTES_MIN) {
      if (this.coldFullSince === null) {
        this.coldFullSince = Date.now();
        this.log.error('cold storage full: flushes wait until space is freed (writes go on into the hot store)', { data_dir: this.dataDir, error: errorText(error) });
      }
      return error instanceof StorageFullError ? error : new StorageFullError(error);
    }
    this.failedWrites++;
    if (this.current === 'ok') {
      this.current = 'full';
      this.since = Date.now();
      this.log.error('storage full: writes are refused until space is freed', {
        source, data_dir: this.dataDir, error: errorText(error),
      });
      this.schedule();
    }
    return error instanceof StorageFullError ? error : new StorageFullError(error);
  }

  /** A flush wrote its segment: the cold tier has room (again). */
  flushSucceeded(): void {
    if (this.coldFullSince === null) return;
    this.log.warn('cold storage writable again: flushes resumed', { full_ms: Date.now() - this.coldFullSince });
    this.coldFullSince = null;
  }

  /** Status fields for /health; empty while everything is fine. */
  healthFields(): { storage?: 'full'; storage_full_since?: string; cold_storage?: 'full'; cold_storage_full_since?: string } {
    const cold = this.coldFullSince === null ? {} : { cold_storage: 'full' as const, cold_storage_full_since: new Date(this.coldFullSince).toISOString() };
    if (this.current === 'ok') return cold;
    return { storage: 'full', storage_full_since: new Date(this.since).toISOString(), ...cold };
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.closed || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.probe().finally(() => {
        if (this.current === 'full') this.schedule();
      });
    }, PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * One recovery attempt: a probe write; when RocksDB still refuses it and the file system has room
   * again, a reopen and a second probe. Silent on failure: the state change was logged already.
   */
  private async probe(): Promise<void> {
    if (this.probing || this.closed || this.target === null || this.current === 'ok') return;
    this.probing = true;
    try {
      const free = freeBytes(this.dataDir);
      // A probe would only fail again (and a reopen could fail half-way) while the disk is still full.
      if (free !== null && free < REOPEN_FREE_BYTES_MIN) return;
      let reopened = false;
      try {
        await this.target.probeWrite();
      } catch (error) {
        if (!isDiskFullError(error)) throw error;
        // Reopen only with room for the WAL replay: an open that fails leaves calls waiting.
        if (free !== null && free < REOPEN_FREE_BYTES_MIN + 2 * this.target.walBytes()) return;
        await this.target.reopen();
        this.reopens++;
        reopened = true;
        await this.target.probeWrite();
      }
      const fullMs = Date.now() - this.since;
      this.current = 'ok';
      this.log.warn('storage writable again: writes resumed', {
        full_ms: fullMs, refused_writes: this.failedWrites, store_reopened: reopened, free_bytes: free,
      });
      this.failedWrites = 0;
    } catch (error) {
      // A reopen that failed (still no room for the WAL replay) is retried at the next probe.
      this.log.debug('storage probe failed', { error: errorText(error) });
    } finally {
      this.probing = false;
    }
  }
}

/** Free bytes the hot store's volume must have for a flush's full disk to count as the cold tier's alone. */
const COLD_ONLY_HOT_FREE_BYTES_MIN = 64 * 1024 * 1024;

/** Free bytes on `dir`'s file system for an unprivileged writer (null: unknown). */
function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

function errorText(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}
