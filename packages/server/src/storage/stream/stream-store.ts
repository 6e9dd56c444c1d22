/**
 * STREAM tables: ephemeral events held in memory, per (table, partition), never written to disk
 * (they are gone after a restart by design). Each partition is an append-only buffer in `_seq`
 * order; events past the table's TTL are invisible at once and evicted by a sweep within a second;
 * MAX_BUFFER keeps only the newest N; memory is bounded by those caps whatever the write rate.
 */
import { assert } from '../../util/errors.js';
import { partitionId, type StoredValue, type TableDef } from '../../catalog/types.js';
import { snowflakeAtMs } from '../../util/snowflake.js';

export interface StreamEvent {
  readonly seq: bigint;
  readonly values: readonly StoredValue[];
}

/**
 * One STREAM INSERT's events, by column: `_seq`s in a BigInt64Array and one array per column.
 * Events stay buffered for up to TTL or MAX_BUFFER, long enough to survive a few young-generation
 * GCs: kept as a row object, a cells array, a boxed `_seq` and boxed numbers each, every one of
 * them was copied by every scavenge it survived; by column, a batch is a handful of objects.
 */
interface Chunk {
  /** `_seq`s, `length` of them used (appends fill the last chunk before starting another). */
  readonly seqs: BigInt64Array;
  readonly columns: StoredValue[][];
  length: number;
}

/** Room for events a partition's chunks grow to (doubling from 8): single-row INSERTs share chunks, a partition with a few events stays small. */
const CHUNK_EVENTS_MIN = 8;
const CHUNK_EVENTS_MAX = 512;

interface Partition {
  readonly table: TableDef;
  readonly partition: string;
  chunks: Chunk[];
  /** The first live event: chunk index and offset in it (events before it are evicted). */
  headChunk: number;
  headAt: number;
  /** Live events. */
  size: number;
  lastSeq: bigint;
}

/** Default cap when a table sets no MAX_BUFFER, so memory stays bounded under any write rate. */
export const STREAM_BUFFER_DEFAULT = 100_000;

export class StreamStore {
  private readonly partitions = new Map<string, Partition>();

  /** Appends events (rows of `table`'s current schema and their `_seq`s) and applies MAX_BUFFER; returns how many were evicted. */
  append(table: TableDef, partition: string, seqs: readonly bigint[], rows: readonly (readonly StoredValue[])[]): number {
    if (seqs.length === 0) return 0;
    const p = this.partition(table, partition);
    const width = table.columns.length;
    let chunk = p.chunks[p.chunks.length - 1];
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      assert(seq > p.lastSeq, 'stream events in _seq order');
      p.lastSeq = seq;
      if (chunk === undefined || chunk === EVICTED || chunk.length === chunk.seqs.length) {
        const grown = chunk === undefined || chunk === EVICTED ? CHUNK_EVENTS_MIN : Math.min(CHUNK_EVENTS_MAX, 2 * chunk.seqs.length);
        chunk = { seqs: new BigInt64Array(Math.max(grown, seqs.length - i)), columns: [], length: 0 };
        for (let c = 0; c < width; c++) chunk.columns.push([]);
        p.chunks.push(chunk);
      }
      const at = chunk.length++;
      chunk.seqs[at] = seq;
      const row = rows[i]!;
      for (let c = 0; c < width; c++) chunk.columns[c]![at] = row[c] ?? null;
    }
    p.size += seqs.length;
    const cap = table.options.maxBuffer ?? STREAM_BUFFER_DEFAULT;
    if (p.size <= cap) return 0;
    const evicted = p.size - cap;
    this.dropOldest(p, evicted);
    return evicted;
  }

  /** Events of a partition still within the TTL, oldest first. */
  read(table: TableDef, partition: string, nowMs = Date.now()): StreamEvent[] {
    const p = this.partitions.get(partitionId(table.id, partition));
    if (p === undefined || p.table !== table) return [];
    const cutoff = snowflakeAtMs(nowMs - (table.options.ttlSeconds ?? 0) * 1000);
    const out: StreamEvent[] = [];
    const width = table.columns.length;
    for (let k = p.headChunk; k < p.chunks.length; k++) {
      const chunk = p.chunks[k]!;
      for (let i = k === p.headChunk ? p.headAt : 0; i < chunk.length; i++) {
        const seq = chunk.seqs[i]!;
        if (seq < cutoff) continue;
        const values: StoredValue[] = new Array(width);
        for (let c = 0; c < width; c++) values[c] = chunk.columns[c]![i]!;
        out.push({ seq, values });
      }
    }
    return out;
  }

  /** Drops every event past its table's TTL; returns the count per table id. */
  evictExpired(nowMs = Date.now()): Map<TableDef, number> {
    const evicted = new Map<TableDef, number>();
    for (const p of this.partitions.values()) {
      const cutoff = snowflakeAtMs(nowMs - (p.table.options.ttlSeconds ?? 0) * 1000);
      let n = 0;
      scan: for (let k = p.headChunk; k < p.chunks.length; k++) {
        const chunk = p.chunks[k]!;
        const from = k === p.headChunk ? p.headAt : 0;
        if (chunk.seqs[chunk.length - 1]! < cutoff) {
          n += chunk.length - from;
          continue;
        }
        for (let i = from; i < chunk.length; i++) {
          if (chunk.seqs[i]! >= cutoff) break scan;
          n++;
        }
      }
      if (n === 0) continue;
      evicted.set(p.table, (evicted.get(p.table) ?? 0) + n);
      this.dropOldest(p, n);
      if (p.size === 0) this.partitions.delete(partitionId(p.table.id, p.partition));
    }
    return evicted;
  }

  /** The purge of a dropped account: its buffered events in one table; returns how many were live. */
  dropPartition(tableId: number, partition: string): number {
    const key = partitionId(tableId, partition);
    const p = this.partitions.get(key);
    if (p === undefined) return 0;
    this.partitions.delete(key);
    return p.size;
  }

  dropTable(tableId: number): void {
    for (const [k, p] of this.partitions) if (p.table.id === tableId) this.partitions.delete(k);
  }

  /** Events held in memory (live ones), for tests and metrics. */
  size(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.size;
    return n;
  }

  private partition(table: TableDef, partition: string): Partition {
    const k = partitionId(table.id, partition);
    let p = this.partitions.get(k);
    if (p === undefined || p.table !== table) {
      // A new schema version starts a new buffer, as before (rows are stored under the table's columns).
      p = { table, partition, chunks: [], headChunk: 0, headAt: 0, size: 0, lastSeq: p?.lastSeq ?? -1n };
      this.partitions.set(k, p);
    }
    return p;
  }

  /** Evicts the `n` oldest live events; drops evicted chunks once they are half the list (appends stay amortized O(1)). */
  private dropOldest(p: Partition, n: number): void {
    let left = n;
    while (left > 0) {
      const chunk = p.chunks[p.headChunk]!;
      const inChunk = chunk.length - p.headAt;
      if (left < inChunk) {
        // Evicted cells are not read again: let the GC have them now.
        for (const column of chunk.columns) column.fill(null, p.headAt, p.headAt + left);
        p.headAt += left;
        break;
      }
      left -= inChunk;
      p.chunks[p.headChunk] = EVICTED;
      p.headChunk++;
      p.headAt = 0;
    }
    p.size -= n;
    if (p.headChunk > 64 && p.headChunk * 2 > p.chunks.length) {
      p.chunks = p.chunks.slice(p.headChunk);
      p.headChunk = 0;
    }
  }
}

const EVICTED: Chunk = { seqs: new BigInt64Array(0), columns: [], length: 0 };
