/**
 * STREAM tables: ephemeral events held in memory, per (table, partition), never written to disk
 * (they are gone after a restart by design). Each partition is an append-only buffer in `_seq`
 * order; events past the table's TTL are invisible at once and evicted by a sweep within a second;
 * MAX_BUFFER keeps only the newest N; memory is bounded by those caps whatever the write rate.
 */
import { assert } from '../../util/errors.js';
import { partitionId, type StoredValue, type TableDef } from '../../catalog/types.js';
import { snowflakeTimeMs } from '../../util/snowflake.js';

export interface StreamEvent {
  readonly seq: bigint;
  readonly values: readonly StoredValue[];
}

interface Partition {
  readonly table: TableDef;
  readonly partition: string;
  events: StreamEvent[];
  /** Index of the first live event (events before it are evicted, compacted away lazily). */
  head: number;
}

/** Default cap when a table sets no MAX_BUFFER, so memory stays bounded under any write rate. */
export const STREAM_BUFFER_DEFAULT = 100_000;

export class StreamStore {
  private readonly partitions = new Map<string, Partition>();

  /** Appends events (rows and their `_seq`s) and applies MAX_BUFFER; returns how many were evicted. */
  append(table: TableDef, partition: string, seqs: readonly bigint[], rows: readonly (readonly StoredValue[])[]): number {
    const p = this.partition(table, partition);
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      assert(p.events.length === 0 || p.events[p.events.length - 1]!.seq < seq, 'stream events in _seq order');
      p.events.push({ seq, values: rows[i]! });
    }
    const cap = table.options.maxBuffer ?? STREAM_BUFFER_DEFAULT;
    const live = p.events.length - p.head;
    if (live <= cap) return 0;
    p.head += live - cap;
    this.compact(p);
    return live - cap;
  }

  /** Events of a partition still within the TTL, oldest first. */
  read(table: TableDef, partition: string, nowMs = Date.now()): StreamEvent[] {
    const p = this.partitions.get(partitionId(table.id, partition));
    if (p === undefined || p.table !== table) return [];
    const cutoff = nowMs - (table.options.ttlSeconds ?? 0) * 1000;
    const out: StreamEvent[] = [];
    for (let i = p.head; i < p.events.length; i++) {
      const e = p.events[i]!;
      if (snowflakeTimeMs(e.seq) >= cutoff) out.push(e);
    }
    return out;
  }

  /** Drops every event past its table's TTL; returns the count per table id. */
  evictExpired(nowMs = Date.now()): Map<TableDef, number> {
    const evicted = new Map<TableDef, number>();
    for (const p of this.partitions.values()) {
      const cutoff = nowMs - (p.table.options.ttlSeconds ?? 0) * 1000;
      let head = p.head;
      while (head < p.events.length && snowflakeTimeMs(p.events[head]!.seq) < cutoff) head++;
      if (head === p.head) continue;
      evicted.set(p.table, (evicted.get(p.table) ?? 0) + head - p.head);
      p.head = head;
      this.compact(p);
      if (p.head === p.events.length) this.partitions.delete(partitionId(p.table.id, p.partition));
    }
    return evicted;
  }

  /** The purge of a dropped account: its buffered events in one table; returns how many were live. */
  dropPartition(tableId: number, partition: string): number {
    const key = partitionId(tableId, partition);
    const p = this.partitions.get(key);
    if (p === undefined) return 0;
    this.partitions.delete(key);
    return p.events.length - p.head;
  }

  dropTable(tableId: number): void {
    for (const [k, p] of this.partitions) if (p.table.id === tableId) this.partitions.delete(k);
  }

  /** Events held in memory (live ones), for tests and metrics. */
  size(): number {
    let n = 0;
    for (const p of this.partitions.values()) n += p.events.length - p.head;
    return n;
  }

  private partition(table: TableDef, partition: string): Partition {
    const k = partitionId(table.id, partition);
    let p = this.partitions.get(k);
    if (p === undefined || p.table !== table) {
      p = { table, partition, events: [], head: 0 };
      this.partitions.set(k, p);
    }
    return p;
  }

  /** Drops evicted slots once they are half the array, keeping appends amortized O(1). */
  private compact(p: Partition): void {
    if (p.head > 1024 && p.head * 2 > p.events.length) {
      p.events = p.events.slice(p.head);
      p.head = 0;
    }
  }
}
