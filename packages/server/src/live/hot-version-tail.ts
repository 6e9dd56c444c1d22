/**
 * The hot versions of partitions resumed lately (options.from), kept for the resumes that follow.
 * A reconnect storm resumes hundreds of clients of one partition within seconds, and each resume used
 * to scan all of the partition's hot versions: with 10,000 unflushed rows ~34 ms of CPU a resume, 13 s
 * for 500 clients. Hot versions never change once committed and are committed in `_seq` order, so an
 * entry grows by reading only past its end; a new flush watermark (versions handed over to the cold
 * tier) or another table definition (versions are read in the table's current schema) starts it over.
 */
import { partitionId, primaryKeyIndex, type TableDef } from '../catalog/types.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import { pkString } from '../exec/transaction.js';

/** What the tail needs of the hot store. */
export interface HotVersionSource {
  flushedSeq(tableId: number, partition: string): bigint;
  /** Visits the versions with `after` < `_seq` <= `upTo` in `_seq` order, in the table's schema. */
  forEachVersion(table: TableDef, partition: string, after: bigint, upTo: bigint, visit: (row: RowVersion) => void): Promise<number>;
}

/** One partition's hot versions above its flush watermark, up to `upTo`. */
export class PartitionTail {
  /** Every version in (flushed, upTo], in `_seq` order. */
  readonly versions: RowVersion[] = [];
  /** The same versions per primary key (pkString), in `_seq` order. */
  private readonly byKey = new Map<string, RowVersion[]>();
  upTo: bigint;
  /** About what the versions take in memory (their cells). */
  bytes = 0;
  lastUsed = 0;
  /** The read that extends it now: the next waits for it, then reads past it. */
  private extending: Promise<void> = Promise.resolve();
  /** A read that failed part-way (it may have kept some versions): the entry is not used again. */
  private broken: unknown = null;
  private readonly pkIdx: number;

  constructor(readonly table: TableDef, readonly partition: string, readonly flushed: bigint) {
    this.upTo = flushed;
    this.pkIdx = primaryKeyIndex(table);
  }

  keyOf(v: RowVersion): string {
    return pkString(this.table, v.values[this.pkIdx]!);
  }

  /**
   * Reads the versions committed since the last read, up to `upTo` (one read at a time); past
   * `bytesMax` in all it stops with TailTooLarge.
   */
  extend(source: HotVersionSource, upTo: bigint, bytesMax = Infinity): Promise<void> {
    const next = this.extending.then(async () => {
      if (this.broken !== null) throw this.broken;
      if (this.bytes > bytesMax) throw new TailTooLarge(bytesMax);
      if (this.upTo >= upTo) return;
      try {
        await source.forEachVersion(this.table, this.partition, this.upTo, upTo, (v) => {
          this.versions.push(v);
          this.bytes += approxBytes(v);
          if (this.bytes > bytesMax) throw new TailTooLarge(bytesMax);
          const key = this.keyOf(v);
          const list = this.byKey.get(key);
          if (list === undefined) this.byKey.set(key, [v]);
          else list.push(v);
        });
      } catch (error) {
        this.broken = error;
        throw error;
      }
      this.upTo = upTo;
    });
    // A failed read breaks the entry (it may hold part of the read): the reads chained on it fail with
    // the same error, and read() forgets it, so the next caller starts a fresh one.
    this.extending = next.catch(() => undefined);
    return next;
  }

  /** The versions with `after` < `_seq` <= `upTo`, in `_seq` order. */
  between(after: bigint, upTo: bigint): RowVersion[] {
    const v = this.versions;
    const out: RowVersion[] = [];
    for (let i = firstAbove(v, after); i < v.length && v[i]!.seq <= upTo; i++) out.push(v[i]!);
    return out;
  }

  /** The newest version of `key` at or below `seq`, or null when the hot tier has none. */
  newestAtOrBelow(key: string, seq: bigint): RowVersion | null {
    const list = this.byKey.get(key);
    if (list === undefined) return null;
    const above = firstAbove(list, seq);
    return above === 0 ? null : list[above - 1]!;
  }
}

/** What a list of versions takes in memory, roughly (approxBytes of each). */
export function approxBytesOf(versions: readonly RowVersion[]): number {
  let n = 0;
  for (const v of versions) n += approxBytes(v);
  return n;
}

/** A version's size in memory, roughly: its cells and the objects around them. */
export function approxBytes(v: RowVersion): number {
  let n = 80;
  for (const cell of v.values) {
    if (typeof cell === 'string') n += 16 + cell.length;
    else if (cell instanceof Uint8Array) n += 64 + cell.byteLength;
    else n += 16;
  }
  return n;
}

/** The index of the first version above `seq` in a list in `_seq` order (its length when none is). */
function firstAbove(list: readonly RowVersion[], seq: bigint): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A partition holds more hot versions than one resume may read. */
export class TailTooLarge extends Error {
  constructor(readonly bytesMax: number) {
    super(`more than ${bytesMax} bytes of unflushed versions`);
  }
}

export class HotVersionTail {
  private readonly entries = new Map<string, PartitionTail>();
  /**
   * Partitions found too large to read for a resume, with their flush watermark then: until a flush
   * moves it their versions only grow, so a resume is refused without reading them again.
   */
  private readonly tooLarge = new Map<string, bigint>();

  constructor(
    private readonly source: HotVersionSource,
    /** Bytes of versions kept in all (an entry larger than this is read for its resume and not kept). */
    private readonly maxBytes = 64 * 1024 * 1024,
    /** An entry unused this long is dropped. */
    private readonly idleMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The partition's hot versions, committed up to `upTo` at least; TailTooLarge past `bytesMax`. */
  async read(table: TableDef, partition: string, upTo: bigint, bytesMax = Infinity): Promise<PartitionTail> {
    this.dropIdle();
    const id = partitionId(table.id, partition);
    for (let attempt = 1; ; attempt++) {
      const flushed = this.source.flushedSeq(table.id, partition);
      if (this.tooLarge.get(id) === flushed) throw new TailTooLarge(bytesMax);
      this.tooLarge.delete(id);
      let entry = this.entries.get(id);
      if (entry !== undefined && (entry.table.schemaVersion !== table.schemaVersion || entry.flushed !== flushed)) {
        this.forget(id, entry);
        entry = undefined;
      }
      if (entry === undefined) {
        entry = new PartitionTail(table, partition, flushed);
        this.entries.set(id, entry);
      }
      entry.lastUsed = this.now();
      try {
        await entry.extend(this.source, upTo, bytesMax);
      } catch (error) {
        this.forget(id, entry);
        if (error instanceof TailTooLarge && this.source.flushedSeq(table.id, partition) === flushed) {
          if (this.tooLarge.size >= 10_000) this.tooLarge.clear();
          this.tooLarge.set(id, flushed);
        }
        throw error;
      }
      // A flush that handed versions over while they were read (this read, or the one it waited for)
      // may have hidden some: the entry goes, and the read starts again above the new watermark. (The
      // caller also checks flushed keys against the segments: a hand-over deletes before it moves the
      // watermark.)
      const stale = this.source.flushedSeq(table.id, partition) !== entry.flushed;
      if (stale || entry.bytes > this.maxBytes) this.forget(id, entry);
      else if (this.entries.get(id) === entry) this.evictOver(entry);
      if (!stale || attempt >= 3) return entry;
    }
  }

  /** Bytes of versions held in all (roughly). */
  get bytes(): number {
    let n = 0;
    for (const entry of this.entries.values()) n += entry.bytes;
    return n;
  }

  private forget(id: string, entry: PartitionTail): void {
    if (this.entries.get(id) === entry) this.entries.delete(id);
  }

  private dropIdle(): void {
    const oldest = this.now() - this.idleMs;
    for (const [id, entry] of this.entries) if (entry.lastUsed < oldest) this.forget(id, entry);
  }

  /** Least recently used entries go until the rest fits (never `keep`). */
  private evictOver(keep: PartitionTail): void {
    let held = this.bytes;
    if (held <= this.maxBytes) return;
    const byAge = [...this.entries].filter(([, e]) => e !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [id, entry] of byAge) {
      if (held <= this.maxBytes) return;
      held -= entry.bytes;
      this.forget(id, entry);
    }
  }
}
