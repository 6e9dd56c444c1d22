/**
 * The local copies of remote (S3) segment files, bounded in bytes: DuckDB reads local files only, so
 * a cold read of a remote table first makes its segments present here. Least recently used files go
 * first when the total passes the limit, except those used in the last PIN_MS (a query between its
 * download and its read must not lose its file). Manifests are never cached here: they are the
 * partition's commit point and stay local. Survives restarts: the cache directory is scanned at start.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const PIN_MS = 60_000;

interface Entry {
  size: number;
  usedAt: number;
}

export class SegmentCache {
  // Insertion order is recency order: a touched entry is re-inserted at the end.
  private readonly files = new Map<string, Entry>();
  private total = 0;

  constructor(private readonly maxBytes: number, private readonly now: () => number = Date.now) {}

  /** Registers the segment files already under `root` (from before a restart), oldest first. */
  scan(root: string): void {
    const found: { path: string; size: number; mtime: number }[] = [];
    const walk = (dir: string): void => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (/^batch-\d+\.parquet$/.test(e.name)) {
          const st = statSync(path);
          found.push({ path, size: st.size, mtime: st.mtimeMs });
        }
      }
    };
    walk(root);
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) this.add(f.path, f.size, 0);
  }

  get bytes(): number {
    return this.total;
  }

  has(path: string): boolean {
    return this.files.has(path);
  }

  /** Marks a cached file as just used (and pinned for PIN_MS). */
  touch(path: string): void {
    const e = this.files.get(path);
    if (e === undefined) return;
    this.files.delete(path);
    e.usedAt = this.now();
    this.files.set(path, e);
  }

  /** A file now present (downloaded, or written by a flush): counted, then older files evicted if over. */
  added(path: string, size: number): void {
    this.add(path, size, this.now());
    this.evict();
  }

  /** A file deleted by its owner (compaction, DROP TABLE, purge). */
  removed(path: string): void {
    const e = this.files.get(path);
    if (e === undefined) return;
    this.total -= e.size;
    this.files.delete(path);
  }

  /** Forgets every file under `dir` (the directory is being removed). */
  removedUnder(dir: string): void {
    for (const path of [...this.files.keys()]) if (path.startsWith(dir)) this.removed(path);
  }

  private add(path: string, size: number, usedAt: number): void {
    this.removed(path);
    this.files.set(path, { size, usedAt });
    this.total += size;
  }

  private evict(): void {
    if (this.total <= this.maxBytes) return;
    const pinnedAfter = this.now() - PIN_MS;
    for (const [path, e] of this.files) {
      if (this.total <= this.maxBytes) break;
      if (e.usedAt > pinnedAfter) continue;
      rmSync(path, { force: true });
      this.removed(path);
    }
  }
}
