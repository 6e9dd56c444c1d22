/**
 * Every live subscription on this node, indexed by (table, partition): a committed change to
 * alice's partition is matched only against subscriptions on alice's partition, so the cost of a
 * write grows with the subscriptions that can see it, not with all of them. Row payloads are
 * encoded once per change and projection, and whole messages once per (subscription id, payload):
 * sockets subscribed under the same id get the very same bytes.
 */
import type { CommittedChange } from '../storage/hot/committer.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import type { FlushEvent } from '../jobs/flush-service.js';
import { partitionId, qualifiedName, type StoredValue, type TableDef } from '../catalog/types.js';
import { encodeCell } from '../sql/values.js';
import type { Catalog } from '../catalog/catalog.js';
import { liveColumns, type SubscriptionQuery } from './subscription-query.js';
import { cellsUnder, type VersionedCells } from './row-shape.js';

/** What a subscription hands frames to (one per WebSocket connection). */
export interface LiveSink {
  readonly connectionId: string;
  /** Sends a text frame; false when the connection is gone or was closed as a slow consumer. */
  send(frame: Buffer, sub: Subscription, seq: bigint | null): boolean;
  /** The subscription was ended by the server because it failed; tell the client. */
  failed(sub: Subscription, message: string): void;
}

/**
 * One message in a subscription's stream. Frames are rendered when delivered, under the schema the
 * client was last told about (`sub.shape`); an event with `shape` announces a new one (schema_changed)
 * and every row delivered after it is rendered under it.
 */
export type LiveEvent =
  | { readonly seq: bigint; readonly frame: (sub: Subscription) => Buffer; readonly count?: number; readonly shape?: undefined }
  | { readonly seq: null; readonly frame: (sub: Subscription) => Buffer; readonly shape?: SubscriptionQuery };

export interface Subscription {
  readonly id: string;
  readonly liveId: string;
  readonly sink: LiveSink;
  readonly userId: string;
  /** Compiled for the table's current schema version: changes are matched with it (replaced by ALTER TABLE). */
  query: SubscriptionQuery;
  /** The compilation whose schema the client was last told about (ack or schema_changed): rows are rendered with it. */
  shape: SubscriptionQuery;
  readonly partition: string;
  readonly options: unknown;
  readonly createdAt: number;
  state: 'loading' | 'live' | 'closed';
  /** Changes that arrived while the initial data was loading, delivered after it. */
  buffered: LiveEvent[];
  /** Changes up to this `_seq` are part of the initial data (or before `from`): never delivered again. */
  handoverSeq: bigint;
  lastSeq: bigint;
  lastChangeAt: number | null;
  changes: number;
}

export class LiveRegistry {
  private readonly byPartition = new Map<string, Set<Subscription>>();
  private readonly byUser = new Map<string, number>();
  private readonly all = new Set<Subscription>();

  constructor(private readonly catalog: Catalog) {}

  add(sub: Subscription): void {
    const key = partitionId(sub.query.table.id, sub.partition);
    let set = this.byPartition.get(key);
    if (set === undefined) {
      set = new Set();
      this.byPartition.set(key, set);
    }
    set.add(sub);
    this.all.add(sub);
    this.byUser.set(sub.userId, (this.byUser.get(sub.userId) ?? 0) + 1);
  }

  remove(sub: Subscription): void {
    if (!this.all.delete(sub)) return;
    sub.state = 'closed';
    const key = partitionId(sub.query.table.id, sub.partition);
    const set = this.byPartition.get(key);
    set?.delete(sub);
    if (set?.size === 0) this.byPartition.delete(key);
    const n = (this.byUser.get(sub.userId) ?? 1) - 1;
    if (n === 0) this.byUser.delete(sub.userId);
    else this.byUser.set(sub.userId, n);
  }

  hasSubscribers(tableId: number, partition: string): boolean {
    return (this.byPartition.get(partitionId(tableId, partition))?.size ?? 0) > 0;
  }

  countForUser(userId: string): number {
    return this.byUser.get(userId) ?? 0;
  }

  list(): Subscription[] {
    return [...this.all];
  }

  find(liveId: string): Subscription | undefined {
    for (const sub of this.all) if (sub.liveId === liveId) return sub;
    return undefined;
  }

  /** Subscriptions of a dropped table or user go away at once. */
  removeWhere(test: (sub: Subscription) => boolean): Subscription[] {
    const removed = [...this.all].filter(test);
    for (const sub of removed) this.remove(sub);
    return removed;
  }

  /** Committer listener: routes each change to the subscriptions on its partition. */
  onCommit(changes: readonly CommittedChange[]): void {
    // Inserts that follow each other in one commit group (a multi-row INSERT, a burst of stream
    // events) reach a live subscription as one message with many rows, not one message per row.
    const runs = new Map<Subscription, InsertRun>();
    const combinedFrames = new Map<string, Buffer>();
    const flushRun = (sub: Subscription): void => {
      const run = runs.get(sub);
      if (run === undefined) return;
      runs.delete(sub);
      this.deliver(sub, run.items.length === 1 ? run.items[0]!.event : combinedInsert(sub, run, combinedFrames));
    };
    changes.forEach((change, index) => {
      const subs = this.byPartition.get(partitionId(change.table.id, change.partition));
      if (subs === undefined) return;
      const payloads = new PayloadCache(change, this.catalog);
      for (const sub of subs) {
        let event: (LiveEvent & { kind: ChangeKindOut }) | null;
        try {
          event = payloads.eventFor(sub);
        } catch (error) {
          runs.delete(sub);
          this.fail(sub, `The subscription's filter failed on a change: ${(error as Error).message}`);
          continue;
        }
        if (event === null) continue;
        if (event.kind === 'insert' && sub.state === 'live') {
          let run = runs.get(sub);
          if (run === undefined) runs.set(sub, (run = { items: [] }));
          run.items.push({ event, payloads, index });
          continue;
        }
        flushRun(sub);
        this.deliver(sub, event);
      }
    });
    for (const sub of [...runs.keys()]) flushRun(sub);
  }

  /** Flush listener: tells the subscriptions on the flushed partition. */
  onFlush(event: FlushEvent): void {
    const subs = this.byPartition.get(partitionId(event.table.id, event.userId ?? ''));
    if (subs === undefined) return;
    const flush = JSON.stringify({ table: qualifiedName(event.table), row_count: event.row_count, files: event.files, flushed_at: event.flushed_at });
    const frames = new Map<string, Buffer>();
    const frame = (sub: Subscription): Buffer => {
      let f = frames.get(sub.id);
      if (f === undefined) {
        f = Buffer.from(`{"type":"change","subscription_id":${JSON.stringify(sub.id)},"change_type":"flush","rows":[],"flush":${flush}}`);
        frames.set(sub.id, f);
      }
      return f;
    };
    for (const sub of subs) this.deliver(sub, { seq: null, frame });
  }

  /** Ends one subscription whose evaluation failed; every other subscription keeps flowing. */
  private fail(sub: Subscription, message: string): void {
    this.remove(sub);
    sub.sink.failed(sub, message);
  }

  deliver(sub: Subscription, event: LiveEvent): void {
    if (sub.state === 'closed') return;
    if (sub.state === 'loading') {
      sub.buffered.push(event);
      return;
    }
    if (event.seq !== null && event.seq <= sub.handoverSeq) return;
    // Rendered before a new shape applies: a schema_changed frame describes the change from the old one.
    const frame = event.frame(sub);
    if (event.shape !== undefined) sub.shape = event.shape;
    if (!sub.sink.send(frame, sub, event.seq)) return;
    if (event.seq !== null) {
      sub.lastSeq = event.seq;
      sub.changes += event.count ?? 1;
      sub.lastChangeAt = Date.now();
    }
  }

  /** Ends loading: delivers what was buffered (minus what the initial data already held) and goes live. */
  goLive(sub: Subscription): void {
    if (sub.state !== 'loading') return;
    sub.state = 'live';
    const buffered = sub.buffered;
    sub.buffered = [];
    for (const event of buffered) this.deliver(sub, event);
  }
}

/** A stored version as a protocol object under a subscription's shape (converted from the schema it was written with). */
export function shapedRow(catalog: Catalog, shape: SubscriptionQuery, row: VersionedCells, seq: bigint): Record<string, unknown> {
  return rowObject(shape.table, shape.projection, cellsUnder(catalog, shape.table, row), seq);
}

/** A row as a protocol object: the projected columns (cells encoded) with `_seq`. */
export function rowObject(table: TableDef, projection: readonly number[], values: readonly StoredValue[], seq: bigint): Record<string, unknown> {
  const columns = liveColumns(table);
  const out: Record<string, unknown> = {};
  for (const i of projection) {
    const column = columns[i]!;
    out[column.name] = i === table.columns.length ? seq.toString() : encodeCell(column, values[i] ?? null);
  }
  return out;
}

type ChangeKindOut = 'insert' | 'update' | 'delete';

interface InsertRun {
  readonly items: { readonly event: LiveEvent; readonly payloads: PayloadCache; readonly index: number }[];
}

/** One insert message for a run of inserts; shared by subscriptions with the same id, projection and rows. */
function combinedInsert(sub: Subscription, run: InsertRun, frames: Map<string, Buffer>): LiveEvent {
  const last = run.items[run.items.length - 1]!;
  const indexes = run.items.map((i) => i.index).join(',');
  return {
    seq: last.event.seq as bigint,
    count: run.items.length,
    frame: () => {
      const key = `${sub.id}\u0000${sub.shape.projectionKey}\u0000${indexes}`;
      let f = frames.get(key);
      if (f === undefined) {
        const rows = run.items.map((i) => i.payloads.rowJson(sub, 'new', 'insert')).join(',');
        f = Buffer.from(`{"type":"change","subscription_id":${JSON.stringify(sub.id)},"change_type":"insert","rows":[${rows}]}`);
        frames.set(key, f);
      }
      return f;
    },
  };
}

/**
 * Encodes one change for every subscription on its partition, sharing work between them. The
 * change's cells are converted once per schema version a subscription matches or renders under.
 */
class PayloadCache {
  private readonly rows = new Map<string, string>();
  private readonly frames = new Map<string, Buffer>();
  private readonly newRow: VersionedCells | null;
  private readonly oldRow: (VersionedCells & { readonly seq: bigint }) | null;
  /** Predicate cells (converted, with `_seq`) per schema version: [new, old]. */
  private readonly cells = new Map<number, [StoredValue[] | null, StoredValue[] | null]>();

  constructor(private readonly change: CommittedChange, private readonly catalog: Catalog) {
    const row = change.row;
    this.newRow = row.deleted ? null : row;
    this.oldRow = oldVersion(change);
  }

  private cellsFor(table: TableDef): [StoredValue[] | null, StoredValue[] | null] {
    let both = this.cells.get(table.schemaVersion);
    if (both === undefined) {
      const under = (v: VersionedCells | null, seq: bigint | undefined): StoredValue[] | null =>
        v === null ? null : [...cellsUnder(this.catalog, table, v), seq!];
      both = [under(this.newRow, this.change.row.seq), under(this.oldRow, this.oldRow?.seq)];
      this.cells.set(table.schemaVersion, both);
    }
    return both;
  }

  eventFor(sub: Subscription): (LiveEvent & { kind: ChangeKindOut }) | null {
    const q = sub.query;
    const [newCells, oldCells] = this.cellsFor(q.table);
    const matchesNew = newCells !== null && q.predicate(newCells);
    const matchesOld = oldCells !== null && q.predicate(oldCells);
    let kind: 'insert' | 'update' | 'delete';
    if (matchesNew && matchesOld) kind = 'update';
    else if (matchesNew) kind = 'insert';
    else if (matchesOld) kind = 'delete';
    else return null;
    const seq = this.change.row.seq;
    return { seq, kind, frame: (s) => this.frame(s, kind) };
  }

  private frame(sub: Subscription, kind: 'insert' | 'update' | 'delete'): Buffer {
    const key = `${kind}\u0000${sub.shape.projectionKey}\u0000${sub.id}`;
    let f = this.frames.get(key);
    if (f !== undefined) return f;
    const id = JSON.stringify(sub.id);
    if (kind === 'insert') {
      f = Buffer.from(`{"type":"change","subscription_id":${id},"change_type":"insert","rows":[${this.rowJson(sub, 'new', kind)}]}`);
    } else if (kind === 'update') {
      f = Buffer.from(`{"type":"change","subscription_id":${id},"change_type":"update","rows":[${this.rowJson(sub, 'new', kind)}],"old_values":[${this.rowJson(sub, 'old', kind)}]}`);
    } else {
      f = Buffer.from(`{"type":"change","subscription_id":${id},"change_type":"delete","old_values":[${this.rowJson(sub, 'old', kind)}]}`);
    }
    this.frames.set(key, f);
    return f;
  }

  rowJson(sub: Subscription, which: 'new' | 'old', kind: 'insert' | 'update' | 'delete'): string {
    // A delete message carries the _seq of the change that removed the row, so a client that
    // resumes from the last _seq it saw does not get this change again.
    const seqOfChange = which === 'new' || kind === 'delete';
    const shape = sub.shape;
    const key = `${which}\u0000${seqOfChange}\u0000${shape.projectionKey}`;
    let json = this.rows.get(key);
    if (json === undefined) {
      const row = which === 'new' ? this.change.row : this.oldRow!;
      const seq = seqOfChange ? this.change.row.seq : this.oldRow!.seq;
      json = JSON.stringify(shapedRow(this.catalog, shape, row, seq));
      this.rows.set(key, json);
    }
    return json;
  }
}

/** The previous row (cells, the schema they were written with, its _seq), or null when there was none or it is unknown. */
function oldVersion(change: CommittedChange): (VersionedCells & { readonly seq: bigint }) | null {
  if (change.kind === 'delete') {
    const source: RowVersion | null = change.row.values.length > 0 ? change.row : change.old;
    if (source === null || source.values.length === 0) return null;
    return { schemaVersion: source.schemaVersion, values: source.values, seq: change.old?.seq ?? change.row.seq };
  }
  const old = change.old;
  if (old === null || old.values.length === 0) return null;
  return { schemaVersion: old.schemaVersion, values: old.values, seq: old.seq };
}
