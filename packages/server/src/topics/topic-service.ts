/**
 * Topics: durable, partitioned message logs fed by table changes (ALTER TOPIC ... ADD SOURCE).
 * Messages are appended by the committer in the same RocksDB batch as the row writes that produce
 * them (see `stage`), so a write and its messages are durable together or not at all. Offsets are
 * per (topic, partition), start at 0 and are gap-free: a group whose batch fails gives its offsets back.
 *
 * This file owns the registry of topics and their counters (next and oldest offset, bytes held),
 * staging a commit group's messages, reads, the retention sweep, and consumer groups (positions,
 * claims: group-claims.ts) with the waiters that push consumers. The stored layout is
 * message-codec.ts; what a route publishes for a change is route-publisher.ts.
 * Topic definitions and consumer-group positions live in the catalog keyspace
 * (`topicdef:<name>`, `topicoffset:<name>\0<group>\0<partition>`).
 */
import type { WriteBatch } from 'rocksdb-native';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { CommittedChange } from '../storage/hot/committer.js';
import { prefixEnd } from '../storage/hot/keys.js';
import type { TableDef } from '../catalog/types.js';
import { PartitionClaims } from './group-claims.js';
import {
  CHUNK_HEADER, chunkCount, chunkTail, chunkTimestamp, decodeMessage, encodeChunk, encodeRecord, keyOffset,
  messageKey, messagePrefix, recordSize, type StoredMessage,
} from './message-codec.js';
import { compileRoutes, messageOf, partitionOf, routePredicate, type CompiledRoute } from './route-publisher.js';
import { DEFAULT_RETENTION_MAX_BYTES, DEFAULT_RETENTION_SECONDS, type ConsumeStart, type TopicDef, type TopicMessage } from './types.js';

const TOPIC_DEF_PREFIX = 'topicdef:';
const TOPIC_OFFSET_PREFIX = 'topicoffset:';
/** Iterator capacity of a read: a consume of up to 1,000 messages (the usual batch) is one native call. */
const READ_CAPACITY_MAX = 1024;

/** The key of a group's state on one partition (positions, claims; also the catalog key's suffix). */
const groupKey = (topic: string, group: string, partition: number): string => `${topic}\0${group}\0${partition}`;

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
  /** Last acknowledged offset per groupKey(topic, group, partition). */
  private readonly acked = new Map<string, number>();
  /** When each group position last moved (ms), for system.topic_offsets.updated_at. */
  private readonly ackedAt = new Map<string, number>();
  /** What each group's members hold, per groupKey(topic, group, partition) (in memory: see group-claims.ts). */
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
    private readonly visibilityTimeoutMs: number,
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
        const stored = await service.scanPartition(topic.name, p);
        const next = Math.max(stored.next, topic.offsetFloor?.[p] ?? 0);
        service.next.set(`${topic.name}\0${p}`, next);
        service.low.set(`${topic.name}\0${p}`, stored.first ?? next);
        service.bytes.set(`${topic.name}\0${p}`, stored.bytes);
      }
    }
    service.rebuildRoutes();
    return service;
  }

  /** One pass over a partition's chunks: its oldest offset (null when empty), next offset and bytes held. */
  private async scanPartition(topic: string, partition: number): Promise<{ first: number | null; next: number; bytes: number }> {
    const prefix = messagePrefix(topic, partition);
    let first: number | null = null;
    let next = 0;
    let bytes = 0;
    // 32 entries per native read: a chunk can hold a 1,000-row statement's messages (~100 KB or more).
    for await (const { key, value } of this.hot.db.iterator({ gte: prefix, lt: prefixEnd(prefix), capacity: 32 })) {
      first ??= keyOffset(key) - chunkCount(value) + 1;
      next = keyOffset(key) + 1;
      bytes += key.length + value.length;
    }
    return { first, next, bytes };
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
              trimmed = { key, value: chunkTail(value, at, n - dropped), first: keyOffset(key) - (n - dropped) + 1 };
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
    this.routesByTable = compileRoutes(this.topics.values(), this.tableById);
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
      // Its partitions are empty (the delete above): offsets start at 0.
      for (let p = 0; p < topic.partitions; p++) {
        this.next.set(`${topic.name}\0${p}`, 0);
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
      this.wakeAll();
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
        const message = messageOf(route, change, row, this.userName);
        const partition = partitionOf(route.topic, message.key);
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
    if (published) this.wakeAll();
  }

  /** The staged group failed: its offsets are handed out again (no gaps). */
  rollbackStaged(): void {
    this.pendingBytes = new Map();
    if (this.pendingMark === null) return;
    for (const [counter, offset] of this.pendingMark) this.next.set(counter, offset);
    this.pendingMark = null;
  }

  latestOffset(topic: string, partition: number): number {
    return this.next.get(`${topic}\0${partition}`) ?? 0;
  }

  /** Up to `limit` stored messages from offset `from`, undecoded (the HTTP consume copies payload bytes). */
  async readStored(topic: string, partition: number, from: number, limit: number, bytesMax = Infinity): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    if (limit <= 0) return out;
    // Past `bytesMax` of records (one at least) the read ends: fewer messages, never an answer too large to send.
    let bytes = 0;
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
        const size = recordSize(value, at);
        if (offset >= from) {
          if (out.length > 0 && bytes + size > bytesMax) return out;
          bytes += size;
          out.push({ offset, timestamp, value, at });
          if (out.length >= limit) return out;
        }
        at += size;
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
    from: ConsumeStart | null, limit: number, owner = '', bytesMax = Infinity): Promise<TopicMessage[]> {
    return (await this.consumeStored(topic, group, partition, from, limit, owner, bytesMax)).map((m) => decodeMessage(topic.name, partition, m));
  }

  /**
   * `consume`, with the messages as stored (the HTTP consume encodes them without decoding the
   * payload). At most `limit` messages and, past the first, `bytesMax` bytes of them: a group's
   * claim covers exactly what is returned.
   */
  async consumeStored(topic: TopicDef, group: string | null, partition: number,
    from: ConsumeStart | null, limit: number, owner = '', bytesMax = Infinity): Promise<StoredMessage[]> {
    const latest = this.latestOffset(topic.name, partition);
    const start = from === 'latest' ? latest : from === null || from === 'earliest' ? 0 : from;
    if (group === null) return this.readStored(topic.name, partition, start, limit, bytesMax);
    const k = groupKey(topic.name, group, partition);
    if (!this.acked.has(k) && start > 0) {
      // A new group starts where it was told to: that position is recorded as acknowledged.
      await this.saveAck(k, start - 1);
    }
    const claims = this.claimsOf(k);
    const floor = this.low.get(`${topic.name}\0${partition}`) ?? 0;
    const range = claims.reserve(owner, limit, Date.now(), this.visibilityTimeoutMs, floor);
    let messages: StoredMessage[];
    try {
      messages = await this.readStored(topic.name, partition, range.from, range.until - range.from, bytesMax);
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
    const k = groupKey(topic, group, partition);
    const committed = this.claimsOf(k).ack(owner, upto, from);
    if (committed > (this.acked.get(k) ?? -1)) await this.saveAck(k, committed);
    return committed;
  }

  /** A group member left: what it holds unacknowledged goes to the next member that asks (woken now). */
  release(topic: string, group: string, partition: number, owner: string): void {
    this.claims.get(groupKey(topic, group, partition))?.release(owner);
    this.wakeAll();
  }

  /** Hands back messages a member was given but will not handle (an abandoned long-poll): next in line for the group. */
  releaseSpan(topic: string, group: string, partition: number, owner: string, from: number, until: number): void {
    this.claims.get(groupKey(topic, group, partition))?.releaseSpan(owner, from, until);
    this.wakeAll();
  }

  /** When the group's next held range on a partition expires; null when none is held. */
  claimExpiresAt(topic: string, group: string, partition: number): number | null {
    return this.claims.get(groupKey(topic, group, partition))?.nextDeadline(Date.now()) ?? null;
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

  /** Wakes every waiting long-poll and WebSocket consumer (a publish, a release, a dropped topic). */
  private wakeAll(): void {
    for (const wake of [...this.waiters]) wake();
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
