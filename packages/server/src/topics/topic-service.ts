/**
 * Topics: durable, partitioned message logs fed by table changes (ALTER TOPIC ... ADD SOURCE).
 * Messages are appended by the committer in the same RocksDB batch as the row writes that produce
 * them (see `stage`), so a write and its messages are durable together or not at all. Offsets are
 * per (topic, partition), start at 0 and are gap-free: a group whose batch fails gives its offsets back.
 *
 * Key layout (first byte 0x03, next to the catalog/version/index kinds of keys.ts):
 *   0x03 | u8 len | utf8 topic | u32 partition | u64 offset of the chunk's LAST message  → chunk
 *
 * A chunk holds the consecutive messages one commit group (the committer's batch of concurrent
 * statements) published to one partition: a 1,000-row INSERT makes a chunk of 1,000 messages, single-
 * row INSERTs committed together share one. Keying it by its last offset lets one forward seek (`gte`
 * the wanted offset) land on the chunk holding that offset. Per RocksDB entry a read costs ~3 µs of
 * CPU in rocksdb-native (entry copies, iterator bookkeeping), the drain's largest cost when each
 * message was an entry; chunks pay it once per commit group and partition instead.
 * Value layout (integers big-endian), binary so a consume base64-encodes payload bytes unparsed:
 *   u8 layout version (2) | u8 0 | f64 timestamp ms (of the whole chunk: one commit) | u32 count
 *   then `count` records: u8 op (1 insert, 2 update, 3 delete) | u32 key bytes (0xFFFFFFFF: null)
 *   | u32 user bytes (0xFFFFFFFF: none) | u32 payload bytes | utf8 key | utf8 user | utf8 payload JSON
 * The first offset of a chunk is its key's offset - count + 1. Retention drops whole chunks by age
 * (one timestamp per chunk) and, by size, may rewrite the oldest chunk without its first records
 * (same key); `maintenance` orders those rewrites with CLEAR/DROP TOPIC's deletes.
 * (Until the topics benchmark of issue 14 each message was its own entry holding JSON {k, p, t, u, o};
 * there was no deployed data to convert.)
 * Topic definitions and consumer-group positions live in the catalog keyspace
 * (`topicdef:<name>`, `topicoffset:<name>\0<group>\0<partition>`).
 */
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
import { PartitionClaims } from './group-claims.js';

export const KEY_TOPIC_MESSAGE = 0x03;
export const DEFAULT_RETENTION_SECONDS = 7 * 86_400;
export const DEFAULT_RETENTION_MAX_BYTES = 1024 * 1024 * 1024;
const TOPIC_DEF_PREFIX = 'topicdef:';
/** Iterator capacity of a read: a consume of up to 1,000 messages (the usual batch) is one native call. */
const READ_CAPACITY_MAX = 1024;
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

/** A message as stored: its offset, and where its record lies in its chunk (layout above). */
export interface StoredMessage {
  readonly offset: number;
  readonly timestamp: number;
  /** The chunk's value. */
  readonly value: Buffer;
  /** Where the message's record starts in `value`. */
  readonly at: number;
}

const LAYOUT_VERSION = 2;
const CHUNK_HEADER = 14;
const RECORD_HEADER = 13;
const NO_STRING = 0xffffffff;
const OP_CODES: Readonly<Record<TopicOp, number>> = { insert: 1, update: 2, delete: 3 };
const OPS: readonly TopicOp[] = ['insert', 'insert', 'update', 'delete'];

function encodeRecord(op: TopicOp, key: string | null, user: string | null, payload: string): Buffer {
  const keyBytes = key === null ? 0 : Buffer.byteLength(key, 'utf8');
  const userBytes = user === null ? 0 : Buffer.byteLength(user, 'utf8');
  const payloadBytes = Buffer.byteLength(payload, 'utf8');
  const out = Buffer.allocUnsafe(RECORD_HEADER + keyBytes + userBytes + payloadBytes);
  out[0] = OP_CODES[op];
  out.writeUInt32BE(key === null ? NO_STRING : keyBytes, 1);
  out.writeUInt32BE(user === null ? NO_STRING : userBytes, 5);
  out.writeUInt32BE(payloadBytes, 9);
  let at = RECORD_HEADER;
  if (key !== null) at += out.write(key, at, 'utf8');
  if (user !== null) at += out.write(user, at, 'utf8');
  out.write(payload, at, 'utf8');
  return out;
}

function encodeChunk(timestamp: number, records: readonly Buffer[], recordBytes: number): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_HEADER + recordBytes);
  out[0] = LAYOUT_VERSION;
  out[1] = 0;
  out.writeDoubleBE(timestamp, 2);
  out.writeUInt32BE(records.length, 10);
  let at = CHUNK_HEADER;
  for (const record of records) at += record.copy(out, at);
  return out;
}

function chunkCount(value: Buffer): number {
  if (value[0] !== LAYOUT_VERSION) throw new Error(`Unknown topic message layout ${value[0]}`);
  return value.readUInt32BE(10);
}

function chunkTimestamp(value: Buffer): number {
  return value.readDoubleBE(2);
}

/** The size of the record at `at` (header included). */
function recordSize(value: Buffer, at: number): number {
  const keyBytes = value.readUInt32BE(at + 1);
  const userBytes = value.readUInt32BE(at + 5);
  return RECORD_HEADER + (keyBytes === NO_STRING ? 0 : keyBytes) + (userBytes === NO_STRING ? 0 : userBytes) + value.readUInt32BE(at + 9);
}

/** The parts of a stored message: strings decoded, the payload left as a byte range of `value`. */
export interface MessageParts {
  readonly op: TopicOp;
  readonly timestamp: number;
  readonly key: string | null;
  readonly user: string | null;
  /** The payload JSON is value[payloadStart, payloadEnd). */
  readonly payloadStart: number;
  readonly payloadEnd: number;
}

export function messageParts(m: StoredMessage): MessageParts {
  const { value } = m;
  const keyBytes = value.readUInt32BE(m.at + 1);
  const userBytes = value.readUInt32BE(m.at + 5);
  const payloadBytes = value.readUInt32BE(m.at + 9);
  let at = m.at + RECORD_HEADER;
  const key = keyBytes === NO_STRING ? null : value.toString('utf8', at, at += keyBytes);
  const user = userBytes === NO_STRING ? null : value.toString('utf8', at, at += userBytes);
  return { op: OPS[value[m.at]!] ?? 'insert', timestamp: m.timestamp, key, user, payloadStart: at, payloadEnd: at + payloadBytes };
}

/** The offset in a message key (its last 8 bytes), read without a bigint. */
function keyOffset(key: Buffer): number {
  return key.readUInt32BE(key.length - 8) * 0x1_0000_0000 + key.readUInt32BE(key.length - 4);
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

/** Offsets are below 2^53: two u32 writes, no bigint per message. */
function writeOffset(out: Buffer, offset: number, at: number): void {
  out.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), at);
  out.writeUInt32BE(offset >>> 0, at + 4);
}

function messageKey(topic: string, partition: number, offset: number): Buffer {
  const prefix = messagePrefix(topic, partition);
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  writeOffset(out, offset, prefix.length);
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
    userId: null,
  });
}

function cellJson(table: TableDef, values: readonly StoredValue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  table.columns.forEach((c, i) => { out[c.name] = encodeCell(c, values[i] ?? null); });
  return out;
}

/** Per table version: `"column":` for each column, or null when a name would make an object's JSON differ. */
const rowJsonHeads = new WeakMap<TableDef, readonly string[] | null>();

/**
 * The JSON of `cellJson(table, values)` plus `_seq`, `_deleted` and `_table` (messageOf's object
 * for full payloads), written directly: building the object and running stringifyJson (a replacer
 * call per value) was most of the cost of a message. Null when an object would order or drop keys
 * differently (an array-index column name, `__proto__`, or a column named like the added keys): the
 * caller builds the object then.
 */
function rowJson(table: TableDef, values: readonly StoredValue[], seq: bigint, deleted: boolean): string | null {
  let heads = rowJsonHeads.get(table);
  if (heads === undefined) {
    const plain = table.columns.every((c) => !/^(0|[1-9]\d*)$/.test(c.name) && !['__proto__', '_seq', '_deleted', '_table'].includes(c.name));
    heads = plain ? table.columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`) : null;
    rowJsonHeads.set(table, heads);
  }
  if (heads === null) return null;
  let out = '';
  for (let i = 0; i < heads.length; i++) {
    const v = encodeCell(table.columns[i]!, values[i] ?? null);
    out += heads[i]! + (v === null ? 'null'
      : typeof v === 'string' ? JSON.stringify(v)
        : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null')
          : typeof v === 'boolean' ? String(v) : stringifyJson(v));
  }
  return `${out},"_seq":"${seq}","_deleted":${deleted},"_table":${JSON.stringify(qualifiedName(table))}}`;
}

/**
 * The partition of a message key: FNV-1a (32 bits) over the key's UTF-8 bytes, modulo the partition
 * count. Stable across restarts and versions (it places stored messages); it replaced a SHA-1 per
 * message (the first 4 bytes of SHA-1 of the key) in the topics benchmark of issue 14, when no
 * deployed data depended on the old placement.
 */
export function keyPartition(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return fnv1aBytes(Buffer.from(key, 'utf8')) % partitions;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

function fnv1aBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function sameCell(a: unknown, b: unknown): boolean {
  return stringifyJson(a) === stringifyJson(b);
}

function decodeMessage(topic: string, partition: number, m: StoredMessage): TopicMessage {
  const parts = messageParts(m);
  return {
    topic_id: topic, partition_id: partition, offset: m.offset, key: parts.key,
    payload: m.value.toString('utf8', parts.payloadStart, parts.payloadEnd), timestamp_ms: parts.timestamp, user_id: parts.user, op: parts.op,
  };
}

/** A partition's records staged by one `stage` call (a commit group), written as one chunk. */
interface PendingChunk {
  readonly topic: string;
  readonly partition: number;
  last: number;
  readonly records: Buffer[];
  bytes: number;
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
  /** What each group's members hold, per `${topic}\0${group}\0${partition}` (in memory: see group-claims.ts). */
  private readonly claims = new Map<string, PartitionClaims>();
  /** The oldest offset still stored per `${topic}\0${partition}` (retention and CLEAR TOPIC raise it). */
  private readonly low = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  /** Offsets handed out by the group being written, to give back if its batch fails. */
  private pendingMark: Map<string, number> | null = null;
  /** Message bytes (key + value) held per `${topic}\0${partition}`, for size retention. */
  private readonly bytes = new Map<string, number>();
  private pendingBytes = new Map<string, number>();
  /** Average messages per chunk written lately, per `${topic}\0${partition}` (reads size their batches with it). */
  private readonly chunkSize = new Map<string, number>();
  /** Retention sweeps and message deletes, one after another. */
  private maintenance: Promise<unknown> = Promise.resolve();

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
        const next = Math.max(await service.readNextOffset(topic.name, p), topic.offsetFloor?.[p] ?? 0);
        service.next.set(`${topic.name}\0${p}`, next);
        service.low.set(`${topic.name}\0${p}`, await service.readFirstOffset(topic.name, p) ?? next);
        service.bytes.set(`${topic.name}\0${p}`, await service.countBytes(topic.name, p));
      }
    }
    service.rebuildRoutes();
    return service;
  }

  private async readNextOffset(topic: string, partition: number): Promise<number> {
    const prefix = messagePrefix(topic, partition);
    for await (const { key } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), reverse: true, limit: 1, values: false })) {
      return keyOffset(key) + 1;
    }
    return 0;
  }

  private async readFirstOffset(topic: string, partition: number): Promise<number | null> {
    const prefix = messagePrefix(topic, partition);
    for await (const { key, value } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), limit: 1 })) {
      return keyOffset(key) - chunkCount(value) + 1;
    }
    return null;
  }

  private async countBytes(topic: string, partition: number): Promise<number> {
    const prefix = messagePrefix(topic, partition);
    let total = 0;
    // 32 entries per native read: a chunk can hold a 1,000-row statement's messages (~100 KB or more).
    for await (const { key, value } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: 32 })) total += key.length + value.length;
    return total;
  }

  /**
   * Retention: removes, per partition, the oldest messages that are older than the topic's
   * retention_seconds or beyond its retention_max_bytes. Returns how many each topic lost.
   */
  sweepRetention(now: number): Promise<Map<string, number>> {
    return this.serially(() => this.sweep(now));
  }

  /** Runs `work` after every earlier sweep or message delete (a sweep's rewrite must not follow a CLEAR's delete). */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.maintenance.then(work);
    this.maintenance = run.catch(() => undefined);
    return run;
  }

  private async sweep(now: number): Promise<Map<string, number>> {
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
        /** The oldest kept chunk, rewritten without its first records (size retention). */
        let trimmed: { key: Buffer; value: Buffer; first: number } | null = null;
        // A few chunks per native read: a chunk can hold a whole 1,000-row statement.
        for await (const { key, value } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: 4 })) {
          const size = key.length + value.length;
          const young = chunkTimestamp(value) >= now - maxAge;
          if (young && held - freed <= maxBytes) break;
          const n = chunkCount(value);
          if (young && held - freed - size < maxBytes) {
            // Dropping the whole chunk would go below the limit: drop its oldest records only, as
            // many as the limit needs (all of them when the newest alone is over it, as before chunks).
            let at = CHUNK_HEADER;
            let dropped = 0;
            while (dropped < n && held - freed > maxBytes) {
              const bytes = recordSize(value, at);
              at += bytes;
              freed += bytes;
              dropped++;
            }
            if (dropped === n) {
              freed += size - (at - CHUNK_HEADER); // the key and the chunk header go too
              count += n;
              end = key;
            } else if (dropped > 0) {
              const rest = Buffer.allocUnsafe(CHUNK_HEADER + value.length - at);
              value.copy(rest, 0, 0, CHUNK_HEADER);
              rest.writeUInt32BE(n - dropped, 10);
              value.copy(rest, CHUNK_HEADER, at);
              trimmed = { key, value: rest, first: keyOffset(key) - (n - dropped) + 1 };
              count += dropped;
            }
            break;
          }
          freed += size;
          count += n;
          end = key;
        }
        if ((end === null && trimmed === null) || this.topics.get(topic.name) === undefined) continue;
        const batch = this.hot.db.write({ capacity: 2, autoDestroy: true });
        if (end !== null) batch.tryDeleteRange(prefix, Buffer.concat([end, Buffer.of(0)]));
        if (trimmed !== null) batch.tryPut(trimmed.key, trimmed.value);
        await batch.flush();
        await this.hot.syncWal();
        held = this.bytes.get(counter) ?? 0;
        this.bytes.set(counter, Math.max(0, held - freed));
        this.low.set(counter, Math.max(this.low.get(counter) ?? 0, trimmed !== null ? trimmed.first : keyOffset(end!) + 1));
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
    if (isNew) {
      for (let p = 0; p < topic.partitions; p++) {
        this.next.set(`${topic.name}\0${p}`, await this.readNextOffset(topic.name, p));
        this.low.set(`${topic.name}\0${p}`, 0);
      }
    }
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
      // Push consumers of the topic (onChange listeners) learn it is gone; long polls stop waiting.
      for (const wake of [...this.waiters]) wake();
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
    // Taken before the delete: whatever is published meanwhile lies above it (and may be deleted too).
    const lowAfter = [...Array(topic.partitions).keys()].map((p) => this.next.get(`${name}\0${p}`) ?? 0);
    await this.deleteMessages(name);
    for (let p = 0; p < topic.partitions; p++) {
      const counter = `${name}\0${p}`;
      if (dropDefinition) {
        this.bytes.delete(counter);
        this.low.delete(counter);
        this.chunkSize.delete(counter);
      } else {
        this.bytes.set(counter, 0);
        this.low.set(counter, lowAfter[p]!);
      }
    }
  }

  private deleteMessages(name: string): Promise<void> {
    return this.serially(async () => {
      const batch = this.hot.db.write({ capacity: 1, autoDestroy: true });
      const prefix = messagePrefix(name);
      batch.tryDeleteRange(prefix, prefixEnd(prefix));
      await batch.flush();
      await this.hot.syncWal();
    });
  }

  /** Called by the committer while it stages a group: appends the messages of accepted changes. */
  stage(changes: readonly CommittedChange[], batch: WriteBatch, now: number): void {
    if (this.routesByTable.size === 0) return;
    let chunks: Map<string, PendingChunk> | null = null;
    for (const change of changes) {
      const routes = this.routesByTable.get(change.table.id);
      if (routes === undefined) continue;
      for (const route of routes) {
        if (route.op !== change.kind) continue;
        const row = change.kind === 'delete' ? (change.old?.values ?? change.row.values) : change.row.values;
        // Without a WHERE the route takes every change: no row copy (with `_seq` appended) per message.
        if (route.where !== null && !routePredicate(route, change.table)([...row, change.row.seq])) continue;
        const message = this.messageOf(route, change, row);
        const partition = this.partitionOf(route.topic, message.key);
        const counter = `${route.topic.name}\0${partition}`;
        const offset = this.next.get(counter) ?? 0;
        this.pendingMark ??= new Map();
        if (!this.pendingMark.has(counter)) this.pendingMark.set(counter, offset);
        this.next.set(counter, offset + 1);
        const record = encodeRecord(change.kind, message.key, message.user, message.payload);
        chunks ??= new Map();
        let chunk = chunks.get(counter);
        if (chunk === undefined) chunks.set(counter, chunk = { topic: route.topic.name, partition, last: offset, records: [], bytes: 0 });
        chunk.records.push(record);
        chunk.bytes += record.length;
        chunk.last = offset;
      }
    }
    if (chunks === null) return;
    // This call's messages of one partition have consecutive offsets: one entry holds them all.
    for (const [counter, chunk] of chunks) {
      const key = messageKey(chunk.topic, chunk.partition, chunk.last);
      const value = encodeChunk(now, chunk.records, chunk.bytes);
      batch.tryPut(key, value);
      this.pendingBytes.set(counter, (this.pendingBytes.get(counter) ?? 0) + key.length + value.length);
      // Remembered to size reads (chunks per native read): a running average of messages per chunk.
      this.chunkSize.set(counter, 0.8 * (this.chunkSize.get(counter) ?? chunk.records.length) + 0.2 * chunk.records.length);
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

  private messageOf(route: CompiledRoute, change: CommittedChange, row: readonly StoredValue[]): { key: string | null; payload: string; user: string | null } {
    const table = change.table;
    const pkIdx = primaryKeyIndex(table);
    const pkCol = table.columns[pkIdx]!;
    const pkValue = encodeCell(pkCol, row[pkIdx] ?? null);
    const key = pkValue === null ? null : typeof pkValue === 'string' ? pkValue : stringifyJson(pkValue);
    const user = table.type === 'USER' ? (this.userName(change.partition) ?? change.partition) : null;
    if (route.payload === 'full' || (route.payload === 'diff' && change.kind === 'insert')) {
      const text = rowJson(table, row, change.row.seq, change.kind === 'delete');
      if (text !== null) return { key, payload: text, user };
    }
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
    return { key, payload: stringifyJson(payload), user };
  }

  private partitionOf(topic: TopicDef, key: string | null): number {
    if (topic.partitions <= 1 || key === null) return 0;
    return keyPartition(key, topic.partitions);
  }

  latestOffset(topic: string, partition: number): number {
    return this.next.get(`${topic}\0${partition}`) ?? 0;
  }

  async read(topic: string, partition: number, from: number, limit: number): Promise<TopicMessage[]> {
    return (await this.readStored(topic, partition, from, limit)).map((m) => decodeMessage(topic, partition, m));
  }

  /** Up to `limit` stored messages from offset `from`, undecoded (the HTTP consume copies payload bytes). */
  async readStored(topic: string, partition: number, from: number, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    if (limit <= 0) return out;
    // Enough chunks for `limit` messages in one native read (the default capacity, 8, cost a
    // thread-pool round trip per 8 entries), not many more: a chunk may hold 1,000 messages.
    const perChunk = Math.max(1, this.chunkSize.get(`${topic}\0${partition}`) ?? 1);
    const capacity = Math.max(2, Math.min(READ_CAPACITY_MAX, Math.ceil(limit / perChunk) + 1));
    // The first chunk whose last offset is at or past `from` holds `from` (or starts after it).
    const range = { gte: messageKey(topic, partition, from), lt: prefixEnd(messagePrefix(topic, partition)), limit, capacity };
    for await (const { key, value } of this.hot.db.iterator(range)) {
      const n = chunkCount(value);
      const timestamp = chunkTimestamp(value);
      let offset = keyOffset(key) - n + 1;
      let at = CHUNK_HEADER;
      for (let i = 0; i < n; i++, offset++) {
        if (offset >= from) {
          out.push({ offset, timestamp, value, at });
          if (out.length >= limit) return out;
        }
        at += recordSize(value, at);
      }
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
   * Hands the next messages of one partition to a group member (`owner`, see group-claims.ts): an
   * expired claim first, else offsets after the group's position that no member holds. Without a
   * group: a plain read. `from` places a group that has no position yet.
   */
  async consume(topic: TopicDef, group: string | null, partition: number,
    from: 'earliest' | 'latest' | number | null, limit: number, owner = ''): Promise<TopicMessage[]> {
    return (await this.consumeStored(topic, group, partition, from, limit, owner)).map((m) => decodeMessage(topic.name, partition, m));
  }

  /** `consume`, with the messages as stored (the HTTP consume encodes them without decoding the payload). */
  async consumeStored(topic: TopicDef, group: string | null, partition: number,
    from: 'earliest' | 'latest' | number | null, limit: number, owner = ''): Promise<StoredMessage[]> {
    const latest = this.latestOffset(topic.name, partition);
    const start = from === 'latest' ? latest : from === null || from === 'earliest' ? 0 : from;
    if (group === null) return this.readStored(topic.name, partition, start, limit);
    const k = `${topic.name}\0${group}\0${partition}`;
    if (!this.acked.has(k) && start > 0) {
      // A new group starts where it was told to: that position is recorded as acknowledged.
      await this.saveAck(k, start - 1);
    }
    const claims = this.claimsOf(k);
    const floor = this.low.get(`${topic.name}\0${partition}`) ?? 0;
    const range = claims.reserve(owner, limit, Date.now(), this.visibilityTimeoutMs, floor);
    let messages: StoredMessage[];
    try {
      messages = await this.readStored(topic.name, partition, range.from, range.until - range.from);
    } catch (error) {
      claims.settle(range, range.from);
      throw error;
    }
    // Dropped while reading: nothing is handed out (a topic created under the name starts afresh).
    if (this.topics.get(topic.name)?.createdAt !== topic.createdAt) return [];
    // Messages past the range (retention removed some inside it) belong to the next claim.
    let n = messages.length;
    while (n > 0 && messages[n - 1]!.offset >= range.until) n--;
    if (n < messages.length) messages = messages.slice(0, n);
    claims.settle(range, n === 0 ? range.from : messages[n - 1]!.offset + 1);
    return messages;
  }

  /**
   * `owner` acknowledges every message of the partition up to `upto`. Returns the group's committed
   * position, which stays below ranges other members still hold (see group-claims.ts).
   */
  async ack(topic: string, group: string, partition: number, upto: number, owner = '', from = 0): Promise<number> {
    const k = `${topic}\0${group}\0${partition}`;
    const committed = this.claimsOf(k).ack(owner, upto, from);
    if (committed > (this.acked.get(k) ?? -1)) await this.saveAck(k, committed);
    return committed;
  }

  /** A group member left: what it holds unacknowledged goes to the next member that asks (woken now). */
  release(topic: string, group: string, partition: number, owner: string): void {
    this.claims.get(`${topic}\0${group}\0${partition}`)?.release(owner);
    for (const wake of [...this.waiters]) wake();
  }

  /** Hands back messages a member was given but will not handle (an abandoned long-poll): next in line for the group. */
  releaseSpan(topic: string, group: string, partition: number, owner: string, from: number, until: number): void {
    this.claims.get(`${topic}\0${group}\0${partition}`)?.releaseSpan(owner, from, until);
    for (const wake of [...this.waiters]) wake();
  }

  /** When the group's next held range on a partition expires; null when none is held. */
  claimExpiresAt(topic: string, group: string, partition: number): number | null {
    return this.claims.get(`${topic}\0${group}\0${partition}`)?.nextDeadline(Date.now()) ?? null;
  }

  private claimsOf(k: string): PartitionClaims {
    let claims = this.claims.get(k);
    if (claims === undefined) {
      claims = new PartitionClaims(this.acked.get(k) ?? -1);
      this.claims.set(k, claims);
    }
    return claims;
  }

  private async saveAck(k: string, offset: number): Promise<void> {
    this.claims.get(k)?.reset(offset);
    const updatedAt = Date.now();
    await this.hot.writeCatalog(new Map([[TOPIC_OFFSET_PREFIX + k, { offset, updatedAt }]]));
    // Concurrent acknowledgements may finish out of order: the position only moves forward.
    if (offset > (this.acked.get(k) ?? -1)) {
      this.acked.set(k, offset);
      this.ackedAt.set(k, updatedAt);
    }
  }

  /**
   * Calls `listener` synchronously after every publish, released claim and dropped topic, until the
   * returned function is called: WebSocket consumers push on it instead of polling. Keep it cheap
   * (it runs inside the committer): schedule the work, do not do it.
   */
  onChange(listener: () => void): () => void {
    this.waiters.add(listener);
    return () => { this.waiters.delete(listener); };
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
