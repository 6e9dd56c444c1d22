/**
 * Topics: durable, partitioned message logs fed by table changes (ALTER TOPIC ... ADD SOURCE).
 * Messages are appended by the committer in the same RocksDB batch as the row writes that produce
 * them (see `stage`), so a write and its messages are durable together or not at all. Offsets are
 * per (topic, partition), start at 0 and are gap-free: a group whose batch fails gives its offsets back.
 *
 * Key layout (first byte 0x03, next to the catalog/version/index kinds of keys.ts):
 *   0x03 | u8 len | utf8 topic | u32 partition | u64 offset  → JSON message
 * Topic definitions and consumer-group positions live in the catalog keyspace
 * (`topicdef:<name>`, `topicoffset:<name>\0<group>\0<partition>`).
 */
import { createHash } from 'node:crypto';
import { parseSync } from 'libpg-query';
import type { WriteBatch } from 'rocksdb-native';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { CommittedChange } from '../storage/hot/committer.js';
import { prefixEnd } from '../storage/hot/keys.js';
import { primaryKeyIndex, qualifiedName, type StoredValue, type TableDef } from '../catalog/types.js';
import { encodeCell } from '../sql/values.js';
import { compilePredicate, type Predicate } from '../live/predicate.js';
import { stringifyJson } from '../util/json.js';
import { invalidSql } from '../util/errors.js';

export const KEY_TOPIC_MESSAGE = 0x03;
export const DEFAULT_RETENTION_SECONDS = 7 * 86_400;
export const DEFAULT_RETENTION_MAX_BYTES = 1024 * 1024 * 1024;
const TOPIC_DEF_PREFIX = 'topicdef:';
const TOPIC_OFFSET_PREFIX = 'topicoffset:';

export type TopicOp = 'insert' | 'update' | 'delete';
export type TopicPayloadMode = 'key' | 'full' | 'diff';

export interface TopicRoute {
  readonly tableId: number;
  /** ns.table when the route was added (for system.topics). */
  readonly table: string;
  readonly op: TopicOp;
  readonly where: string | null;
  readonly payload: TopicPayloadMode;
}

export interface TopicDef {
  /** ns.name */
  readonly name: string;
  readonly namespace: string;
  readonly partitions: number;
  readonly routes: readonly TopicRoute[];
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Messages older than this are removed by the retention sweep (default 7 days, as upstream). */
  readonly retentionSeconds?: number;
  /** A partition holding more message bytes than this loses its oldest messages (default 1 GiB). */
  readonly retentionMaxBytes?: number;
  /** Per partition, the next offset when CLEAR TOPIC last ran: offsets never go back after a restart. */
  readonly offsetFloor?: readonly number[];
}

export interface TopicMessage {
  readonly topic_id: string;
  readonly partition_id: number;
  readonly offset: number;
  readonly key: string | null;
  /** JSON text of the payload. */
  readonly payload: string;
  readonly timestamp_ms: number;
  readonly user_id: string | null;
  /** insert, update or delete (upstream's SQL spelling; HTTP capitalizes it). */
  readonly op: TopicOp;
}

interface StoredMessage {
  readonly k: string | null;
  readonly p: string;
  readonly t: number;
  readonly u: string | null;
  readonly o: string;
}

interface Claim {
  /** Offsets below this were handed out. */
  until: number;
  expiresAt: number;
}

interface CompiledRoute extends TopicRoute {
  /** The WHERE condition compiled per schema version of the table (rows come in the writer's version). */
  readonly predicates: Map<number, Predicate>;
  readonly topic: TopicDef;
}

function routePredicate(route: CompiledRoute, table: TableDef): Predicate {
  let predicate = route.predicates.get(table.schemaVersion);
  if (predicate === undefined) {
    try {
      predicate = compileRouteWhere(table, route.where);
    } catch {
      // A column the condition names was dropped or renamed: the route matches nothing.
      predicate = () => false;
    }
    route.predicates.set(table.schemaVersion, predicate);
  }
  return predicate;
}

export function messagePrefix(topic: string, partition?: number): Buffer {
  const name = Buffer.from(topic, 'utf8');
  const head = Buffer.allocUnsafe(2 + name.length);
  head[0] = KEY_TOPIC_MESSAGE;
  head[1] = name.length;
  name.copy(head, 2);
  if (partition === undefined) return head;
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(partition);
  return Buffer.concat([head, p]);
}

function messageKey(topic: string, partition: number, offset: number): Buffer {
  const prefix = messagePrefix(topic, partition);
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  out.writeBigUInt64BE(BigInt(offset), prefix.length);
  return out;
}

/** Compiles a route's WHERE text against the table's columns (throws INVALID_SQL on a bad condition). */
export function compileRouteWhere(table: TableDef, where: string | null): Predicate {
  if (where === null) return () => true;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let tree: any;
  try {
    tree = parseSync(`SELECT 1 FROM t WHERE ${where}`);
  } catch (error) {
    throw invalidSql(`Invalid WHERE condition for the topic source: ${(error as Error).message}`);
  }
  const whereNode = tree.stmts?.[0]?.stmt?.SelectStmt?.whereClause;
  if (whereNode === undefined || tree.stmts.length !== 1) throw invalidSql('Invalid WHERE condition for the topic source');
  const columns = [...table.columns, { name: '_seq', type: 'BigInt' as const, precision: null, scale: null }];
  return compilePredicate(whereNode, {
    columns: columns as never,
    qualifiers: new Set([table.name, qualifiedName(table)]),
    userId: '',
  });
}

function cellJson(table: TableDef, values: readonly StoredValue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  table.columns.forEach((c, i) => { out[c.name] = encodeCell(c, values[i] ?? null); });
  return out;
}

function sameCell(a: unknown, b: unknown): boolean {
  return stringifyJson(a) === stringifyJson(b);
}

export class TopicService {
  private readonly topics = new Map<string, TopicDef>();
  private routesByTable = new Map<number, CompiledRoute[]>();
  /** Next offset per `${topic}\0${partition}`. */
  private readonly next = new Map<string, number>();
  /** Last acknowledged offset per `${topic}\0${group}\0${partition}`. */
  private readonly acked = new Map<string, number>();
  /** When each group position last moved (ms), for system.topic_offsets.updated_at. */
  private readonly ackedAt = new Map<string, number>();
  private readonly claims = new Map<string, Claim>();
  private readonly waiters = new Set<() => void>();
  /** The running consume per `${topic}\0${group}\0${partition}` (they run one after another). */
  private readonly consuming = new Map<string, Promise<unknown>>();
  /** Offsets handed out by the group being written, to give back if its batch fails. */
  private pendingMark: Map<string, number> | null = null;
  /** Message bytes (key + value) held per `${topic}\0${partition}`, for size retention. */
  private readonly bytes = new Map<string, number>();
  private pendingBytes = new Map<string, number>();

  constructor(
    private readonly hot: HotStore,
    private readonly tableById: (id: number) => TableDef | undefined,
    private readonly userName: (accountId: string) => string | undefined,
    public visibilityTimeoutMs: number,
  ) {}

  static async load(hot: HotStore, tableById: (id: number) => TableDef | undefined,
    userName: (accountId: string) => string | undefined, visibilityTimeoutMs: number): Promise<TopicService> {
    const service = new TopicService(hot, tableById, userName, visibilityTimeoutMs);
    for (const [key, value] of await hot.loadCatalog()) {
      if (key.startsWith(TOPIC_DEF_PREFIX)) service.topics.set((value as TopicDef).name, value as TopicDef);
      else if (key.startsWith(TOPIC_OFFSET_PREFIX)) {
        // A bare number (older data) or { offset, updatedAt }.
        const k = key.slice(TOPIC_OFFSET_PREFIX.length);
        const v = value as number | { offset: number; updatedAt: number };
        service.acked.set(k, typeof v === 'number' ? v : v.offset);
        if (typeof v !== 'number') service.ackedAt.set(k, v.updatedAt);
      }
    }
    for (const topic of service.topics.values()) {
      for (let p = 0; p < topic.partitions; p++) {
        service.next.set(`${topic.name}\0${p}`, Math.max(await service.readNextOffset(topic.name, p), topic.offsetFloor?.[p] ?? 0));
        service.bytes.set(`${topic.name}\0${p}`, await service.countBytes(topic.name, p));
      }
    }
    service.rebuildRoutes();
    return service;
  }

  private async readNextOffset(topic: string, partition: number): Promise<number> {
    const prefix = messagePrefix(topic, partition);
    for await (const { key } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), reverse: true, limit: 1, values: false })) {
      return Number(key.readBigUInt64BE(key.length - 8)) + 1;
    }
    return 0;
  }

  private async countBytes(topic: string, partition: number): Promise<number> {
    const prefix = messagePrefix(topic, partition);
    let total = 0;
    for await (const { key, value } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: 1024 })) total += key.length + value.length;
    return total;
  }

  /**
   * Retention: removes, per partition, the oldest messages that are older than the topic's
   * retention_seconds or beyond its retention_max_bytes. Returns how many each topic lost.
   */
  async sweepRetention(now: number): Promise<Map<string, number>> {
    const removed = new Map<string, number>();
    for (const topic of [...this.topics.values()]) {
      const maxAge = (topic.retentionSeconds ?? DEFAULT_RETENTION_SECONDS) * 1000;
      const maxBytes = topic.retentionMaxBytes ?? DEFAULT_RETENTION_MAX_BYTES;
      for (let p = 0; p < topic.partitions; p++) {
        const counter = `${topic.name}\0${p}`;
        let held = this.bytes.get(counter) ?? 0;
        const prefix = messagePrefix(topic.name, p);
        let end: Buffer | null = null;
        let count = 0;
        let freed = 0;
        for await (const { key, value } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: 256 })) {
          const size = key.length + value.length;
          const m = JSON.parse(value.toString('utf8')) as StoredMessage;
          if (m.t >= now - maxAge && held - freed <= maxBytes) break;
          freed += size;
          count++;
          end = key;
        }
        if (end === null || this.topics.get(topic.name) === undefined) continue;
        const batch = this.hot.db.write({ capacity: 1, autoDestroy: true });
        const upto = Buffer.concat([end, Buffer.of(0)]);
        batch.tryDeleteRange(prefix, upto);
        await batch.flush();
        await this.hot.syncWal();
        held = this.bytes.get(counter) ?? 0;
        this.bytes.set(counter, Math.max(0, held - freed));
        removed.set(topic.name, (removed.get(topic.name) ?? 0) + count);
      }
    }
    return removed;
  }

  private rebuildRoutes(): void {
    const byTable = new Map<number, CompiledRoute[]>();
    for (const topic of this.topics.values()) {
      for (const route of topic.routes) {
        if (this.tableById(route.tableId) === undefined) continue;
        const list = byTable.get(route.tableId) ?? [];
        list.push({ ...route, predicates: new Map(), topic });
        byTable.set(route.tableId, list);
      }
    }
    this.routesByTable = byTable;
  }

  get(name: string): TopicDef | undefined {
    return this.topics.get(name);
  }

  list(): TopicDef[] {
    return [...this.topics.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async save(topic: TopicDef): Promise<void> {
    const isNew = !this.topics.has(topic.name);
    // Leftovers of a dropped topic of the same name (a crash during DROP TOPIC) go first.
    if (isNew) await this.deleteMessages(topic.name);
    await this.hot.writeCatalog(new Map([[TOPIC_DEF_PREFIX + topic.name, topic]]));
    this.topics.set(topic.name, topic);
    if (isNew) for (let p = 0; p < topic.partitions; p++) this.next.set(`${topic.name}\0${p}`, await this.readNextOffset(topic.name, p));
    this.rebuildRoutes();
  }

  /**
   * Removes every message (and, on drop, the definition and group positions). On drop the routes go
   * first and `barrier` waits out writes already staged with them, so no message outlives the topic.
   */
  async remove(name: string, dropDefinition: boolean, barrier: () => Promise<void>): Promise<void> {
    const topic = this.topics.get(name);
    if (topic === undefined) return;
    const entries = new Map<string, unknown>();
    if (dropDefinition) {
      entries.set(TOPIC_DEF_PREFIX + name, undefined);
      for (const key of this.acked.keys()) if (key.startsWith(`${name}\0`)) entries.set(TOPIC_OFFSET_PREFIX + key, undefined);
      this.topics.delete(name);
      this.rebuildRoutes();
      await barrier();
      // The definition goes first: a crash before the messages are deleted leaves no visible topic,
      // and CREATE TOPIC with the name deletes leftovers.
      await this.hot.writeCatalog(entries);
      for (const key of [...this.acked.keys()]) if (key.startsWith(`${name}\0`)) { this.acked.delete(key); this.ackedAt.delete(key); }
      for (const key of [...this.claims.keys()]) if (key.startsWith(`${name}\0`)) this.claims.delete(key);
      for (let p = 0; p < topic.partitions; p++) this.next.delete(`${name}\0${p}`);
    } else {
      // After CLEAR TOPIC offsets keep growing, across restarts too: consumers never see an offset twice.
      // The floor is recorded before the messages go, covering writes staged until the barrier.
      await barrier();
      const offsetFloor = [...Array(topic.partitions).keys()].map((p) => this.next.get(`${name}\0${p}`) ?? 0);
      const updated = { ...topic, offsetFloor };
      await this.hot.writeCatalog(new Map([[TOPIC_DEF_PREFIX + name, updated]]));
      this.topics.set(name, updated);
      this.rebuildRoutes();
    }
    await this.deleteMessages(name);
    for (let p = 0; p < topic.partitions; p++) {
      if (dropDefinition) this.bytes.delete(`${name}\0${p}`);
      else this.bytes.set(`${name}\0${p}`, 0);
    }
  }

  private async deleteMessages(name: string): Promise<void> {
    const batch = this.hot.db.write({ capacity: 1, autoDestroy: true });
    const prefix = messagePrefix(name);
    batch.tryDeleteRange(prefix, prefixEnd(prefix));
    await batch.flush();
    await this.hot.syncWal();
  }

  /** Called by the committer while it stages a group: appends the messages of accepted changes. */
  stage(changes: readonly CommittedChange[], batch: WriteBatch, now: number): void {
    if (this.routesByTable.size === 0) return;
    for (const change of changes) {
      const routes = this.routesByTable.get(change.table.id);
      if (routes === undefined) continue;
      for (const route of routes) {
        if (route.op !== change.kind) continue;
        const row = change.kind === 'delete' ? (change.old?.values ?? change.row.values) : change.row.values;
        if (!routePredicate(route, change.table)([...row, change.row.seq])) continue;
        const message = this.messageOf(route, change, row, now);
        const partition = this.partitionOf(route.topic, message.k);
        const counter = `${route.topic.name}\0${partition}`;
        const offset = this.next.get(counter) ?? 0;
        this.pendingMark ??= new Map();
        if (!this.pendingMark.has(counter)) this.pendingMark.set(counter, offset);
        this.next.set(counter, offset + 1);
        const key = messageKey(route.topic.name, partition, offset);
        const value = Buffer.from(JSON.stringify(message), 'utf8');
        batch.tryPut(key, value);
        this.pendingBytes.set(counter, (this.pendingBytes.get(counter) ?? 0) + key.length + value.length);
      }
    }
  }

  /** The staged group was written: its offsets are final. */
  commitStaged(): void {
    const published = this.pendingMark !== null;
    this.pendingMark = null;
    for (const [counter, n] of this.pendingBytes) this.bytes.set(counter, (this.bytes.get(counter) ?? 0) + n);
    this.pendingBytes = new Map();
    if (published) for (const wake of [...this.waiters]) wake();
  }

  /** The staged group failed: its offsets are handed out again (no gaps). */
  rollbackStaged(): void {
    this.pendingBytes = new Map();
    if (this.pendingMark === null) return;
    for (const [counter, offset] of this.pendingMark) this.next.set(counter, offset);
    this.pendingMark = null;
  }

  private messageOf(route: CompiledRoute, change: CommittedChange, row: readonly StoredValue[], now: number): StoredMessage {
    const table = change.table;
    const pkIdx = primaryKeyIndex(table);
    const pkCol = table.columns[pkIdx]!;
    const pkValue = encodeCell(pkCol, row[pkIdx] ?? null);
    const key = pkValue === null ? null : typeof pkValue === 'string' ? pkValue : stringifyJson(pkValue);
    let payload: Record<string, unknown>;
    if (route.payload === 'key') payload = { [pkCol.name]: pkValue };
    else if (route.payload === 'full' || change.kind !== 'update' || change.old === null) {
      payload = cellJson(table, row);
      if (route.payload === 'diff' && change.kind === 'delete') payload = { [pkCol.name]: pkValue };
    } else {
      const now_ = cellJson(table, row);
      const before = cellJson(table, change.old.values);
      payload = { [pkCol.name]: pkValue };
      const old: Record<string, unknown> = {};
      for (const name of Object.keys(now_)) {
        if (name === pkCol.name || sameCell(now_[name], before[name])) continue;
        payload[name] = now_[name];
        old[name] = before[name];
      }
      payload.old_values = old;
    }
    if (route.payload !== 'key') {
      // As upstream: full and diff payloads carry the row's _seq and _deleted, and name their source
      // table (one topic can have many).
      payload._seq = encodeCell({ type: 'BigInt' }, change.row.seq);
      payload._deleted = change.kind === 'delete';
      payload._table = qualifiedName(table);
    }
    const user = table.type === 'USER' ? (this.userName(change.partition) ?? change.partition) : null;
    return { k: key, p: stringifyJson(payload), t: now, u: user, o: change.kind.toUpperCase() };
  }

  private partitionOf(topic: TopicDef, key: string | null): number {
    if (topic.partitions <= 1 || key === null) return 0;
    return createHash('sha1').update(key).digest().readUInt32BE(0) % topic.partitions;
  }

  latestOffset(topic: string, partition: number): number {
    return this.next.get(`${topic}\0${partition}`) ?? 0;
  }

  async read(topic: string, partition: number, from: number, limit: number): Promise<TopicMessage[]> {
    const out: TopicMessage[] = [];
    const range = { gte: messageKey(topic, partition, from), lt: prefixEnd(messagePrefix(topic, partition)), limit };
    for await (const { key, value } of this.hot.db.iterator(range)) {
      const m = JSON.parse(value.toString('utf8')) as StoredMessage;
      out.push({
        topic_id: topic, partition_id: partition, offset: Number(key.readBigUInt64BE(key.length - 8)),
        key: m.k, payload: m.p, timestamp_ms: m.t, user_id: m.u, op: m.o.toLowerCase() as TopicOp,
      });
    }
    return out;
  }

  groupOffsets(): { topic: string; group: string; partition: number; acked: number; updatedAt: number | null }[] {
    return [...this.acked].map(([k, acked]) => {
      const [topic, group, partition] = k.split('\0');
      return { topic: topic!, group: group!, partition: Number(partition), acked, updatedAt: this.ackedAt.get(k) ?? null };
    });
  }

  /**
   * Hands the next messages of one partition to a group member: after the group's acknowledged
   * offset and after every range another member holds (until its visibility timeout expires, when
   * the unacknowledged messages are delivered again). Without a group: a plain read.
   */
  async consume(topic: TopicDef, group: string | null, partition: number,
    from: 'earliest' | 'latest' | number | null, limit: number): Promise<TopicMessage[]> {
    if (group === null) return this.read(topic.name, partition, this.startOf(topic, partition, from), limit);
    // One member at a time per (topic, group, partition): each takes its claim before the next one
    // computes where to begin, so concurrent members never get the same offsets.
    const k = `${topic.name}\0${group}\0${partition}`;
    const run = (this.consuming.get(k) ?? Promise.resolve()).then(() => this.consumeGroup(topic, k, partition, from, limit));
    const settled = run.catch(() => undefined);
    this.consuming.set(k, settled);
    try {
      return await run;
    } finally {
      if (this.consuming.get(k) === settled) this.consuming.delete(k);
    }
  }

  private startOf(topic: TopicDef, partition: number, from: 'earliest' | 'latest' | number | null): number {
    return from === 'latest' ? this.latestOffset(topic.name, partition) : from === null || from === 'earliest' ? 0 : from;
  }

  private async consumeGroup(topic: TopicDef, k: string, partition: number,
    from: 'earliest' | 'latest' | number | null, limit: number): Promise<TopicMessage[]> {
    const start = this.startOf(topic, partition, from);
    let acked = this.acked.get(k);
    if (acked === undefined && start > 0) {
      // A new group starts where it was told to: that position is recorded as acknowledged.
      acked = start - 1;
      await this.saveAck(k, acked);
    }
    const committed = (acked ?? -1) + 1;
    const now = Date.now();
    const claim = this.claims.get(k);
    const begin = claim !== undefined && claim.expiresAt > now && claim.until > committed ? claim.until : committed;
    const messages = await this.read(topic.name, partition, begin, limit);
    if (messages.length > 0) {
      this.claims.set(k, { until: messages[messages.length - 1]!.offset + 1, expiresAt: now + this.visibilityTimeoutMs });
    }
    return messages;
  }

  async ack(topic: string, group: string, partition: number, upto: number): Promise<void> {
    const k = `${topic}\0${group}\0${partition}`;
    const current = this.acked.get(k) ?? -1;
    if (upto <= current) return;
    await this.saveAck(k, upto);
    const claim = this.claims.get(k);
    if (claim !== undefined && claim.until <= upto + 1) this.claims.delete(k);
  }

  private async saveAck(k: string, offset: number): Promise<void> {
    const updatedAt = Date.now();
    await this.hot.writeCatalog(new Map([[TOPIC_OFFSET_PREFIX + k, { offset, updatedAt }]]));
    this.acked.set(k, offset);
    this.ackedAt.set(k, updatedAt);
  }

  /** Resolves when a message is published or after `ms`. */
  waitForMessages(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}
