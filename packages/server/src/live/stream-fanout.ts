/**
 * STREAM events to the shapes of their partition. A STREAM INSERT's events are matched and encoded
 * straight from the statement's rows (no change, row-version and payload object per event, as a
 * commit group's changes need) and delivered at once: one message per subscription per INSERT.
 * Coalescing the INSERTs of an event-loop turn into one message was tried (decision 0020, round 3)
 * and dropped: on a quiet machine its bursts after a cold start pushed connections past the
 * unsent-bytes cap (SLOW_CONSUMER) that per-INSERT delivery stays under.
 */
import type { StoredValue, TableDef } from '../catalog/types.js';
import type { Catalog } from '../catalog/catalog.js';
import type { SubscriptionQuery } from './subscription-query.js';
import { matchAll } from './predicate.js';
import { cellsUnder, shapedRowsJson } from './row-shape.js';
import type { LiveFrame } from './wire-frame.js';
import { MessageFrames, type MessageBody } from './change-fanout.js';
import type { LiveEvent, Subscription } from './registry.js';

/** The events of one STREAM INSERT into one (table, partition), in `_seq` order. */
export interface StreamBatch {
  readonly table: TableDef;
  readonly partition: string;
  readonly seqs: readonly bigint[];
  readonly rows: readonly (readonly StoredValue[])[];
}

/**
 * The rows of a batch that one shape matched, as one insert message (the event every live
 * subscription of the shape gets); its frames are built and shared as a commit group's (MessageFrames).
 */
export class StreamMessage implements Pick<LiveEvent & { seq: bigint }, 'seq' | 'count' | 'frame'>, MessageBody {
  readonly kind = 'insert';
  private readonly frames = new MessageFrames(this);
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
    return this.frames.frame(sub);
  }

  body(shape: SubscriptionQuery): string {
    const b = this.batch;
    return `"rows":[${shapedRowsJson(this.catalog, shape, b.table.schemaVersion, b.rows, b.seqs, this.picked)}]`;
  }
}

/**
 * The rows of `batch` that `query` matches: null for all of them (no filter), else their indexes.
 * `error` is the filter's error, if it failed: the rows matched before it come with it.
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
