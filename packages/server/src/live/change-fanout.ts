/**
 * One commit group's changes as the subscriptions of one shape (same SQL, user and schema version
 * on one partition) receive them. The filter runs once per change and shape, not once per
 * subscription; a change's row JSON is encoded once per projection; each message (a run of
 * consecutive inserts, or one update or delete) is encoded once per projection and subscription id,
 * as a ready WebSocket frame that every socket subscribed under that id gets as is.
 */
import type { CommittedChange } from '../storage/hot/committer.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import type { StoredValue, TableDef } from '../catalog/types.js';
import type { Catalog } from '../catalog/catalog.js';
import type { SubscriptionQuery } from './subscription-query.js';
import { matchAll } from './predicate.js';
import { cellsUnder, shapedRowJson, type VersionedCells } from './row-shape.js';
import { LiveFrame } from './wire-frame.js';
import type { LiveEvent, Subscription } from './registry.js';

export type ChangeKindOut = 'insert' | 'update' | 'delete';

/** Where matched messages go: the registry's delivery (hand-over filter, buffering while loading, send). */
export interface Deliverer {
  deliver(sub: Subscription, event: LiveEvent): void;
}

/**
 * A change as every shape on its partition sees it. Its cells are converted once per schema
 * version a shape matches under, its rows encoded once per projection.
 */
export class ChangePayload {
  readonly seq: bigint;
  private readonly newRow: VersionedCells | null;
  private readonly oldRow: (VersionedCells & { readonly seq: bigint }) | null;
  /** Predicate cells (converted, with `_seq`): [schema version, new, old] per version matched under (made on first use). */
  private cells: [number, StoredValue[] | null, StoredValue[] | null][] | null = null;
  /** Encoded rows by variant and projection; most changes are encoded under one, kept apart from the map. */
  private firstRowKey: string | null = null;
  private firstRow = '';
  private rows: Map<string, string> | null = null;

  constructor(private readonly change: CommittedChange, private readonly catalog: Catalog) {
    const row = change.row;
    this.seq = row.seq;
    this.newRow = row.deleted ? null : row;
    this.oldRow = oldVersion(change);
  }

  /** How this change reaches a subscription of `query`: both rows match → update, only the new → insert, only the old → delete. */
  match(query: SubscriptionQuery): ChangeKindOut | null {
    let matchesNew: boolean;
    let matchesOld: boolean;
    if (query.predicate === matchAll) {
      matchesNew = this.newRow !== null;
      matchesOld = this.oldRow !== null;
    } else {
      const [, newCells, oldCells] = this.cellsFor(query.table);
      matchesNew = newCells !== null && query.predicate(newCells);
      matchesOld = oldCells !== null && query.predicate(oldCells);
    }
    if (matchesNew) return matchesOld ? 'update' : 'insert';
    return matchesOld ? 'delete' : null;
  }

  /** One row of a message under `shape`, as JSON. */
  rowJson(shape: SubscriptionQuery, which: 'new' | 'old', kind: ChangeKindOut): string {
    // A delete message carries the _seq of the change that removed the row, so a client that
    // resumes from the last _seq it saw does not get this change again.
    const seqOfChange = which === 'new' || kind === 'delete';
    const key = which === 'new' ? shape.projectionKey : `${which}${seqOfChange ? '+' : '-'}${shape.projectionKey}`;
    if (key === this.firstRowKey) return this.firstRow;
    let json = this.rows?.get(key);
    if (json === undefined) {
      const row = which === 'new' ? this.change.row : this.oldRow!;
      json = shapedRowJson(this.catalog, shape, row, seqOfChange ? this.seq : this.oldRow!.seq);
      if (this.firstRowKey === null) {
        this.firstRowKey = key;
        this.firstRow = json;
      } else {
        (this.rows ??= new Map()).set(key, json);
      }
    }
    return json;
  }

  private cellsFor(table: TableDef): [number, StoredValue[] | null, StoredValue[] | null] {
    this.cells ??= [];
    for (const entry of this.cells) if (entry[0] === table.schemaVersion) return entry;
    const under = (v: VersionedCells | null, seq: bigint | undefined): StoredValue[] | null =>
      v === null ? null : [...cellsUnder(this.catalog, table, v), seq!];
    const entry: [number, StoredValue[] | null, StoredValue[] | null] = [table.schemaVersion, under(this.newRow, this.seq), under(this.oldRow, this.oldRow?.seq)];
    this.cells.push(entry);
    return entry;
  }
}

/**
 * One message of a shape's stream: a run of consecutive inserts (one message with many rows), or
 * one update or delete. It is the event every live subscription of the shape gets; frames are
 * built on first delivery per (projection, subscription id) and shared after.
 */
class Message implements Pick<LiveEvent & { seq: bigint }, 'seq' | 'count' | 'frame'>, MessageBody {
  readonly changes: ChangePayload[];
  private readonly frames = new MessageFrames(this);
  private single: Message[] | null = null;

  constructor(readonly kind: ChangeKindOut, first: ChangePayload) {
    this.changes = [first];
  }

  get seq(): bigint {
    return this.changes[this.changes.length - 1]!.seq;
  }

  get count(): number {
    return this.changes.length;
  }

  /** One message per change: a loading subscription buffers each apart (each is checked against its hand-over `_seq`). */
  perChange(): readonly Message[] {
    if (this.changes.length === 1) return [this];
    return (this.single ??= this.changes.map((c) => new Message(this.kind, c)));
  }

  frame(sub: Subscription): LiveFrame {
    return this.frames.frame(sub);
  }

  body(shape: SubscriptionQuery): string {
    const kind = this.kind;
    if (kind === 'insert') return `"rows":[${this.changes.map((c) => c.rowJson(shape, 'new', kind)).join(',')}]`;
    const change = this.changes[0]!;
    if (kind === 'update') return `"rows":[${change.rowJson(shape, 'new', kind)}],"old_values":[${change.rowJson(shape, 'old', kind)}]`;
    return `"old_values":[${change.rowJson(shape, 'old', kind)}]`;
  }
}

/** A change message as MessageFrames builds its frames: its change type and its rows part for a projection. */
export interface MessageBody {
  readonly kind: ChangeKindOut;
  body(shape: SubscriptionQuery): string;
}

/**
 * The frames of one change message: its body (the rows part) built once per projection on first
 * delivery, and wrapped once per subscription id, then shared by every socket subscribed under it
 * (commit-group messages and STREAM messages alike).
 */
export class MessageFrames {
  private readonly byProjection = new Map<string, { readonly body: Buffer; readonly byId: Map<string, LiveFrame> }>();

  constructor(private readonly message: MessageBody) {}

  frame(sub: Subscription): LiveFrame {
    const shape = sub.shape;
    let entry = this.byProjection.get(shape.projectionKey);
    if (entry === undefined) {
      entry = { body: Buffer.from(this.message.body(shape)), byId: new Map() };
      this.byProjection.set(shape.projectionKey, entry);
    }
    let frame = entry.byId.get(sub.id);
    if (frame === undefined) {
      const head = Buffer.from(`{"type":"change","subscription_id":${JSON.stringify(sub.id)},"change_type":"${this.message.kind}",`);
      frame = LiveFrame.concat([head, entry.body, CLOSE]);
      entry.byId.set(sub.id, frame);
    }
    return frame;
  }
}

const CLOSE = Buffer.from('}');

/** What one commit group brings the subscriptions of one shape, in commit order. */
export class ShapeMatches {
  private readonly messages: Message[] = [];

  add(kind: ChangeKindOut, change: ChangePayload): void {
    const last = this.messages[this.messages.length - 1];
    // Inserts that follow each other (a multi-row INSERT, a burst of stream events) are one message.
    if (kind === 'insert' && last !== undefined && last.kind === 'insert') last.changes.push(change);
    else this.messages.push(new Message(kind, change));
  }

  /** Every message to every subscription of the shape, each subscription in commit order. */
  deliver(subs: Subscription | ReadonlySet<Subscription> | null, to: Deliverer): void {
    if (subs === null) return;
    for (const message of this.messages) {
      if (subs instanceof Set) for (const sub of subs) deliverOne(sub, message, to);
      else deliverOne(subs as Subscription, message, to);
    }
  }
}

function deliverOne(sub: Subscription, message: Message, to: Deliverer): void {
  if (sub.state === 'live') to.deliver(sub, message);
  else if (sub.state === 'loading') for (const one of message.perChange()) to.deliver(sub, one);
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
