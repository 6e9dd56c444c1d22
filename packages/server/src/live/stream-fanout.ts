/**
 * STREAM events to the shapes of their partition. A STREAM INSERT's events are matched and encoded
 * straight from the statement's rows (no change, row-version and payload object per event, as a
 * commit group's changes need), and the events of every STREAM INSERT handled in the same
 * event-loop turn are delivered together (`StreamBatches`): one message per subscription with all
 * of them. A server that keeps up handles one INSERT per turn and delivers it as before; one that
 * fell behind (a burst, a GC pause, a cold start, a starved core) handles several per turn and
 * writes each connection one frame per subscription for all of them, so the work per event falls
 * as the backlog grows instead of the backlog feeding on itself.
 */
import type { StoredValue, TableDef } from '../catalog/types.js';
import type { Catalog } from '../catalog/catalog.js';
import type { SubscriptionQuery } from './subscription-query.js';
import { matchAll } from './predicate.js';
import { cellsUnder, shapedRowsJson } from './row-shape.js';
import { LiveFrame } from './wire-frame.js';
import type { LiveEvent, Subscription } from './registry.js';

/** Events of one (table, partition) waiting for the end of the turn, in `_seq` order. */
export interface StreamBatch {
  readonly table: TableDef;
  readonly partition: string;
  readonly seqs: bigint[];
  readonly rows: (readonly StoredValue[])[];
}

/**
 * Coalescing stops once a partition's batch holds this many rows, so a backlog leaves in frames of
 * bounded size (~70 KB for rows of ~70 bytes; each subscription id's frame is a copy, and copies
 * past 128 KB went to fresh mmap'd memory in a profile of a backlog with 2,000). A single larger
 * INSERT is still one message.
 */
export const STREAM_BATCH_ROWS_MAX = 1000;

/**
 * The pending batches of the running turn. `add` returns true when the first batch of a turn was
 * opened (the caller schedules the delivery); a batch that reached STREAM_BATCH_ROWS_MAX, or whose
 * table changed (ALTER TABLE between two INSERTs), is handed to `deliverNow` at once.
 */
export class StreamBatches {
  private pending = new Map<string, StreamBatch>();

  constructor(private readonly deliverNow: (batch: StreamBatch) => void) {}

  get empty(): boolean {
    return this.pending.size === 0;
  }

  add(key: string, table: TableDef, partition: string, seqs: readonly bigint[], rows: readonly (readonly StoredValue[])[]): boolean {
    const opened = this.pending.size === 0;
    let batch = this.pending.get(key);
    if (batch !== undefined && batch.table !== table) {
      this.pending.delete(key);
      this.deliverNow(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { table, partition, seqs: [], rows: [] };
      this.pending.set(key, batch);
    }
    for (let i = 0; i < seqs.length; i++) {
      batch.seqs.push(seqs[i]!);
      batch.rows.push(rows[i]!);
    }
    if (batch.seqs.length >= STREAM_BATCH_ROWS_MAX) {
      this.pending.delete(key);
      this.deliverNow(batch);
    }
    return opened && this.pending.size > 0;
  }

  /** Takes every pending batch (later `add`s start a new turn, even while these are delivered). */
  take(): StreamBatch[] {
    if (this.pending.size === 0) return [];
    const out = [...this.pending.values()];
    this.pending = new Map();
    return out;
  }
}

/**
 * The rows of a batch that one shape matched, as one insert message (the event every live
 * subscription of the shape gets). Frames are built on first delivery per (projection,
 * subscription id) and shared after, as for commit groups.
 */
export class StreamMessage implements Pick<LiveEvent & { seq: bigint }, 'seq' | 'count' | 'frame'> {
  private readonly frames = new Map<string, { readonly body: Buffer; readonly byId: Map<string, LiveFrame> }>();
  readonly seq: bigint;
  readonly firstSeq: bigint;
  private single: StreamMessage[] | null = null;

  /** `picked`: the batch's row indexes the shape matched, in order; null for all of them. */
  constructor(private readonly batch: StreamBatch, private readonly catalog: Catalog, private readonly picked: readonly number[] | null) {
    const seqs = batch.seqs;
    this.firstSeq = seqs[picked === null ? 0 : picked[0]!]!;
    this.seq = seqs[picked === null ? seqs.length - 1 : picked[picked.length - 1]!]!;
  }

  get count(): number {
    return this.picked === null ? this.batch.seqs.length : this.picked.length;
  }

  /** One message per event: for a subscription still loading, or whose hand-over falls inside this message. */
  perEvent(): readonly StreamMessage[] {
    if (this.single !== null) return this.single;
    const out: StreamMessage[] = [];
    const n = this.count;
    for (let k = 0; k < n; k++) out.push(new StreamMessage(this.batch, this.catalog, [this.picked === null ? k : this.picked[k]!]));
    return (this.single = out);
  }

  frame(sub: Subscription): LiveFrame {
    const shape = sub.shape;
    let entry = this.frames.get(shape.projectionKey);
    if (entry === undefined) {
      const b = this.batch;
      entry = { body: Buffer.from(`"rows":[${shapedRowsJson(this.catalog, shape, b.table.schemaVersion, b.rows, b.seqs, this.picked)}]`), byId: new Map() };
      this.frames.set(shape.projectionKey, entry);
    }
    let frame = entry.byId.get(sub.id);
    if (frame === undefined) {
      const head = Buffer.from(`{"type":"change","subscription_id":${JSON.stringify(sub.id)},"change_type":"insert",`);
      frame = LiveFrame.concat([head, entry.body, CLOSE]);
      entry.byId.set(sub.id, frame);
    }
    return frame;
  }
}

const CLOSE = Buffer.from('}');

/**
 * The rows of `batch` that `query` matches: null for all of them (no filter), else their indexes.
 * `failed` gets the filter's error: the rows matched before it are returned with it.
 */
export function matchStream(catalog: Catalog, query: SubscriptionQuery, batch: StreamBatch): { picked: readonly number[] | null; error: Error | null } {
  if (query.predicate === matchAll) return { picked: null, error: null };
  const picked: number[] = [];
  const version = batch.table.schemaVersion;
  for (let i = 0; i < batch.rows.length; i++) {
    try {
      const cells = [...cellsUnder(catalog, query.table, { schemaVersion: version, values: batch.rows[i]! }), batch.seqs[i]!];
      if (query.predicate(cells)) picked.push(i);
    } catch (error) {
      return { picked, error: error as Error };
    }
  }
  return { picked, error: null };
}
