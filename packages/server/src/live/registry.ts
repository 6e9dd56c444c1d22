/**
 * Every live subscription on this node, indexed by (table, partition) and, within a partition, by
 * shape: subscriptions with the same SQL compiled for the same user and schema version match every
 * change alike. A committed change to alice's partition is matched only against the shapes on
 * alice's partition, once per shape, so the cost of a write grows with the distinct queries that
 * can see it, plus one socket write per subscriber; messages are encoded once per (subscription id,
 * columns) and sockets subscribed under the same id get the very same frame (change-fanout.ts).
 */
import type { CommittedChange } from '../storage/hot/committer.js';
import type { FlushEvent } from '../jobs/flush-service.js';
import { partitionId, qualifiedName, type StoredValue, type TableDef } from '../catalog/types.js';
import type { Catalog } from '../catalog/catalog.js';
import { ByteBudget } from '../util/budget.js';
import type { SubscriptionQuery } from './subscription-query.js';
import { ChangePayload, ShapeMatches, type Deliverer } from './change-fanout.js';
import { LiveFrame } from './wire-frame.js';
import { fanOut } from './fanout-writes.js';
import { StreamMessage, matchStream, type StreamBatch } from './stream-fanout.js';

export { shapedRow, rowObject } from './row-shape.js';

/** What a subscription hands frames to (one per WebSocket connection). */
export interface LiveSink {
  readonly connectionId: string;
  /** Sends a text message; false when the connection is gone or was closed as a slow consumer. */
  send(frame: LiveFrame, sub: Subscription, seq: bigint | null): boolean;
  /** The subscription was ended by the server because it failed; tell the client. */
  failed(sub: Subscription, message: string, code?: 'INVALID_SQL' | 'SLOW_CONSUMER'): void;
}

/**
 * One message in a subscription's stream. Frames are rendered when delivered, under the schema the
 * client was last told about (`sub.shape`); an event with `shape` announces a new one (schema_changed)
 * and every row delivered after it is rendered under it.
 */
export type LiveEvent =
  | { readonly seq: bigint; frame(sub: Subscription): LiveFrame; readonly count?: number; readonly shape?: undefined }
  | { readonly seq: null; frame(sub: Subscription): LiveFrame; readonly shape?: SubscriptionQuery };

export interface Subscription {
  readonly id: string;
  readonly liveId: string;
  readonly sink: LiveSink;
  readonly userId: string;
  /** Compiled for the table's current schema version: changes are matched with it (replaced by ALTER TABLE through `LiveRegistry.requery`). */
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

/**
 * Subscriptions of one partition that match alike: same SQL, user (CURRENT_USER()) and schema
 * version, so the same compiled filter and columns (`query` is any member's: they are equivalent).
 */
interface ShapeGroup {
  readonly query: SubscriptionQuery;
  /** Its subscriptions: most shapes have one (a filter of their own), so a Set only from the second on. */
  subs: Members;
  /** The next group with the same SQL text (another user or schema version), or null. */
  next: ShapeGroup | null;
}

/** A shape's subscriptions: none, one, or a Set of them (kept once made: it may be iterated during a fan-out). */
type Members = Subscription | Set<Subscription> | null;

function withMember(members: Members, sub: Subscription): Members {
  if (members === null) return sub;
  if (members instanceof Set) return members.add(sub);
  return new Set([members, sub]);
}

function withoutMember(members: Members, sub: Subscription): Members {
  if (members === sub) return null;
  if (!(members instanceof Set)) return members;
  members.delete(sub);
  return members.size === 0 ? null : members;
}

function membersOf(members: Members): Iterable<Subscription> {
  if (members === null) return [];
  return members instanceof Set ? members : [members];
}

/**
 * The shapes of one partition, found by the SQL text (the query's own string: no key is built per
 * subscription); the few with the same text for another user or schema version are chained.
 */
class PartitionShapes {
  private readonly bySql = new Map<string, ShapeGroup>();

  get size(): number {
    return this.bySql.size;
  }

  /** Chain heads: follow `next` for the rest. Removing a group while iterating is safe (its `next` stays). */
  heads(): IterableIterator<ShapeGroup> {
    return this.bySql.values();
  }

  groupFor(q: SubscriptionQuery): ShapeGroup {
    const head = this.bySql.get(q.sql);
    for (let g = head ?? null; g !== null; g = g.next) {
      if (g.query.userId === q.userId && g.query.table.schemaVersion === q.table.schemaVersion) return g;
    }
    const group: ShapeGroup = { query: q, subs: null, next: head ?? null };
    this.bySql.set(q.sql, group);
    return group;
  }

  delete(group: ShapeGroup): void {
    const sql = group.query.sql;
    const head = this.bySql.get(sql);
    if (head === group) {
      if (group.next === null) this.bySql.delete(sql);
      else this.bySql.set(sql, group.next);
      return;
    }
    for (let g = head ?? null; g !== null; g = g.next) {
      if (g.next === group) {
        g.next = group.next;
        return;
      }
    }
  }

  subscriptions(): Subscription[] {
    const out: Subscription[] = [];
    // A loop, not push(...): a spread of a group's members (any number) past ~120,000 overflows the stack.
    for (const head of this.bySql.values()) for (let g: ShapeGroup | null = head; g !== null; g = g.next) for (const sub of membersOf(g.subs)) out.push(sub);
    return out;
  }
}

/** Changes a subscription may hold while its initial data is sent (they follow it, in order). */
export const LOADING_BUFFER_MAX = 100_000;

export class LiveRegistry implements Deliverer {
  /** Per (table, partition): its shapes. */
  private readonly byPartition = new Map<string, PartitionShapes>();
  /** Per user: subscriptions, and the parse-tree nodes of their filters (what their compiled forms hold). */
  private readonly byUser = new Map<string, { count: number; filterNodes: number }>();
  /** Every subscription and the shape group it is in. */
  private readonly all = new Map<Subscription, ShapeGroup>();
  /** Every subscription by its live id (unique: `add` is refused a taken one, see `liveIdTaken`). */
  private readonly byLiveId = new Map<string, Subscription>();

  private readonly pendingSnapshots = new Map<string, ByteBudget>();

  constructor(private readonly catalog: Catalog) {}

  add(sub: Subscription): void {
    if (this.all.has(sub)) return;
    this.attach(sub);
    this.byLiveId.set(sub.liveId, sub);
    const held = this.byUser.get(sub.userId);
    if (held === undefined) this.byUser.set(sub.userId, { count: 1, filterNodes: sub.query.filterNodes });
    else {
      held.count++;
      held.filterNodes += sub.query.filterNodes;
    }
  }

  remove(sub: Subscription): void {
    if (!this.detach(sub)) return;
    if (this.byLiveId.get(sub.liveId) === sub) this.byLiveId.delete(sub.liveId);
    sub.state = 'closed';
    const held = this.byUser.get(sub.userId);
    if (held !== undefined && held.count > 1) {
      held.count--;
      held.filterNodes -= sub.query.filterNodes;
      return;
    }
    this.byUser.delete(sub.userId);
    // The user's last subscription: no snapshot of theirs is loading or held, so the budget goes too.
    if (this.pendingSnapshots.get(sub.userId)?.used === 0) this.pendingSnapshots.delete(sub.userId);
  }

  /** The subscription's table changed its columns: later changes are matched with `next` (its shape group changes with it). */
  requery(sub: Subscription, next: SubscriptionQuery): void {
    const registered = this.detach(sub);
    sub.query = next;
    if (registered) this.attach(sub);
  }

  private attach(sub: Subscription): void {
    const key = partitionId(sub.query.table.id, sub.partition);
    let shapes = this.byPartition.get(key);
    if (shapes === undefined) {
      shapes = new PartitionShapes();
      this.byPartition.set(key, shapes);
    }
    const group = shapes.groupFor(sub.query);
    group.subs = withMember(group.subs, sub);
    this.all.set(sub, group);
  }

  private detach(sub: Subscription): boolean {
    const group = this.all.get(sub);
    if (group === undefined) return false;
    this.all.delete(sub);
    group.subs = withoutMember(group.subs, sub);
    if (group.subs !== null) return true;
    const key = partitionId(sub.query.table.id, sub.partition);
    const shapes = this.byPartition.get(key);
    shapes?.delete(group);
    if (shapes?.size === 0) this.byPartition.delete(key);
    return true;
  }

  hasSubscribers(tableId: number, partition: string): boolean {
    return this.byPartition.has(partitionId(tableId, partition));
  }

  /**
   * What the initial data of a user's subscriptions may hold, in all, until their clients ask for the
   * rest with next_batch (a client that never asks kept 30 snapshots, 1.8 GB, for the life of its
   * connection: an attack review). One budget per user across connections.
   */
  pendingSnapshotBudget(userId: string, maxBytes: number): ByteBudget {
    let budget = this.pendingSnapshots.get(userId);
    if (budget === undefined) this.pendingSnapshots.set(userId, (budget = new ByteBudget(maxBytes)));
    return budget;
  }

  countForUser(userId: string): number {
    return this.byUser.get(userId)?.count ?? 0;
  }

  /** The parse-tree nodes of a user's subscription filters, in all. */
  filterNodesForUser(userId: string): number {
    return this.byUser.get(userId)?.filterNodes ?? 0;
  }

  list(): Subscription[] {
    return [...this.all.keys()];
  }

  find(liveId: string): Subscription | undefined {
    return this.byLiveId.get(liveId);
  }

  /**
   * Whether a subscription holds this live id. Live ids are `user-connection-subscription`, and user
   * names and subscription ids may both contain '-': a chosen subscription id could repeat another
   * user's live id, which KILL LIVE QUERY names (an attack review). The later one is refused.
   */
  liveIdTaken(liveId: string): boolean {
    return this.byLiveId.has(liveId);
  }

  /** Subscriptions of a dropped table or user go away at once. */
  removeWhere(test: (sub: Subscription) => boolean): Subscription[] {
    const removed = [...this.all.keys()].filter(test);
    for (const sub of removed) this.remove(sub);
    return removed;
  }

  /**
   * Committer listener: matches each change once per shape on its partition, then delivers each
   * shape's messages to its subscriptions (each in commit order; inserts that follow each other
   * in the group are one message with many rows). Each connection gets the group's frames in one write.
   */
  onCommit(changes: readonly CommittedChange[]): void {
    fanOut(() => this.match(changes));
  }

  private match(changes: readonly CommittedChange[]): void {
    let matched: Map<ShapeGroup, ShapeMatches> | null = null;
    let shapes: PartitionShapes | undefined;
    let lastTable: TableDef | null = null;
    let lastPartition = '';
    for (const change of changes) {
      if (change.table !== lastTable || change.partition !== lastPartition) {
        lastTable = change.table;
        lastPartition = change.partition;
        shapes = this.byPartition.get(partitionId(change.table.id, change.partition));
      }
      if (shapes === undefined) continue;
      const payload = new ChangePayload(change, this.catalog);
      for (const head of shapes.heads()) for (let group: ShapeGroup | null = head; group !== null; group = group.next) {
        let kind;
        try {
          kind = payload.match(group.query);
        } catch (error) {
          // What the shape matched before this change still reaches it, then its subscriptions end.
          matched?.get(group)?.deliver(group.subs, this);
          matched?.delete(group);
          this.failGroup(group, `The subscription's filter failed on a change: ${(error as Error).message}`);
          continue;
        }
        if (kind === null) continue;
        matched ??= new Map();
        let m = matched.get(group);
        if (m === undefined) matched.set(group, (m = new ShapeMatches()));
        m.add(kind, payload);
      }
    }
    if (matched !== null) for (const [group, m] of matched) m.deliver(group.subs, this);
  }

  /**
   * STREAM INSERT: its events (rows of `table`'s current schema, with their `_seq`s) go to the
   * subscribers now, as one message per subscription (decision 0020, round 3: coalescing the INSERTs
   * of a turn was measured and dropped).
   */
  publishStream(table: TableDef, partition: string, seqs: readonly bigint[], rows: readonly (readonly StoredValue[])[]): void {
    fanOut(() => this.deliverStreamBatch({ table, partition, seqs, rows }));
  }

  /** As the committer does for its listeners: a failure here is reported, never fails the INSERT whose events are already stored. */
  private deliverStreamBatch(batch: StreamBatch): void {
    try {
      this.matchStream(batch);
    } catch (error) {
      process.stderr.write(`stream fan-out failed: ${(error as Error)?.stack ?? String(error)}\n`);
    }
  }

  private matchStream(batch: StreamBatch): void {
    const shapes = this.byPartition.get(partitionId(batch.table.id, batch.partition));
    if (shapes === undefined) return;
    for (const head of shapes.heads()) for (let group: ShapeGroup | null = head; group !== null; group = group.next) {
      const { picked, error } = matchStream(this.catalog, group.query, batch);
      // What the shape matched before a failing filter still reaches it, then its subscriptions end.
      if (picked === null || picked.length > 0) this.deliverStream(group.subs, new StreamMessage(batch, this.catalog, picked));
      if (error !== null) this.failGroup(group, `The subscription's filter failed on a change: ${error.message}`);
    }
  }

  private deliverStream(subs: Members, message: StreamMessage): void {
    if (subs === null) return;
    if (subs instanceof Set) for (const sub of subs) this.deliverStreamTo(sub, message);
    else this.deliverStreamTo(subs, message);
  }

  /** A subscription still loading, or whose hand-over falls inside the message, gets it event by event (each checked). */
  private deliverStreamTo(sub: Subscription, message: StreamMessage): void {
    if (sub.state === 'live' && message.firstSeq > sub.handoverSeq) this.deliver(sub, message);
    else if (sub.state !== 'closed') for (const one of message.perEvent()) this.deliver(sub, one);
  }

  /** Flush listener: tells the subscriptions on the flushed partition. */
  onFlush(event: FlushEvent): void {
    const shapes = this.byPartition.get(partitionId(event.table.id, event.userId ?? ''));
    if (shapes === undefined) return;
    const flush = JSON.stringify({ table: qualifiedName(event.table), row_count: event.row_count, files: event.files, flushed_at: event.flushed_at });
    const frames = new Map<string, LiveFrame>();
    const frame = (sub: Subscription): LiveFrame => {
      let f = frames.get(sub.id);
      if (f === undefined) {
        f = LiveFrame.of(`{"type":"change","subscription_id":${JSON.stringify(sub.id)},"change_type":"flush","rows":[],"flush":${flush}}`);
        frames.set(sub.id, f);
      }
      return f;
    };
    for (const sub of shapes.subscriptions()) this.deliver(sub, { seq: null, frame });
  }

  /** Ends every subscription of a shape whose filter failed; every other shape keeps flowing. */
  private failGroup(group: ShapeGroup, message: string): void {
    for (const sub of [...membersOf(group.subs)]) this.fail(sub, message);
  }

  /** Ends one subscription whose evaluation failed; every other subscription keeps flowing. */
  private fail(sub: Subscription, message: string): void {
    this.remove(sub);
    sub.sink.failed(sub, message);
  }

  deliver(sub: Subscription, event: LiveEvent): void {
    if (sub.state === 'closed') return;
    if (sub.state === 'loading') {
      // A client that never asks for its next batch (or a resume it reads slowly) would hold every
      // change committed to the table meanwhile.
      if (sub.buffered.length >= LOADING_BUFFER_MAX) {
        this.remove(sub);
        sub.sink.failed(sub, `More than ${LOADING_BUFFER_MAX} changes were committed while the initial data was being sent: `
          + 'read it faster (next_batch), or subscribe again with a smaller batch_size, last_rows or a narrower filter', 'SLOW_CONSUMER');
        return;
      }
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
