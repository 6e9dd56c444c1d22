/**
 * Topic consumers on the live WebSocket (docs/protocol.md, "Topics over the WebSocket"): the
 * `consume`, `consume_credit`, `consume_ack` and `consume_stop` frames of one connection, and the
 * push of `topic_messages` under credit-based flow control.
 *
 * Owns, per connection: the consumers and their credit balances. It does not own claims or
 * positions: those are TopicService's (topics/group-claims.ts). Each consumer is one group member
 * (its own owner string), every read goes through TopicService.consume() and every ACK through
 * TopicService.ack(), so WebSocket, HTTP and SQL members of one group share one no-overlap rule and
 * one visibility timeout; when a consumer ends, TopicService.release() hands what it holds
 * unacknowledged to the next member at once.
 *
 * Push is event driven: a consumer listens to TopicService.onChange (publish, released claim, dropped
 * topic) and, while it has credits, reads at most one batch at a time; a timer is armed only for the
 * moment a claim expires (redelivery). LiveSession dispatches the frames here and calls `closeAll`
 * when the connection goes and `reauthorize` when the catalog changes.
 */
import type { Principal } from '../auth/access.js';
import type { Services } from '../exec/context.js';
import { requireTopicSources } from '../exec/topic-exec.js';
import { WIRE_OP_NAMES, parseConsumeStart, type ConsumeStart, type TopicDef, type TopicMessage } from '../topics/types.js';
import type { Logger } from '../util/log.js';
import type { LiveErrorCode } from './session.js';

/** Most messages in one topic_messages frame. */
export const CONSUME_BATCH_SIZE_MAX = 1000;
const CONSUME_BATCH_SIZE_DEFAULT = 100;
/** A consumer's credit balance never exceeds this (grants past it are capped, not refused). */
export const CONSUME_CREDITS_MAX = 100_000;
const GROUP_CHARS_MAX = 256;
const CONSUMER_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** What a consumer needs of its connection (LiveSession provides it). */
export interface ConsumerSink {
  /** A topic_messages frame, under the connection's slow-consumer cap; false when the connection is gone. */
  push(frame: Buffer): boolean;
  /** A control frame (consume_started, consume_acked, consume_stopped). */
  json(msg: Record<string, unknown>): void;
  error(id: string, code: LiveErrorCode, message: string): void;
  /** Bytes queued on the socket, not yet written. */
  backlog(): number;
  /** Calls `then` once, when the socket's queue drained (or after a short while if that cannot be observed). */
  whenDrained(then: () => void): void;
}

type Start = 'earliest' | number;

/** A frame field that is wrong: becomes one `error` frame with `code`. */
class FrameError extends Error {
  constructor(readonly code: LiveErrorCode, message: string) {
    super(message);
  }
}

/** Every consumer of one connection. */
export class TopicConsumers {
  private readonly consumers = new Map<string, TopicConsumer>();
  /** Consumers started on this connection: makes each one's member name unique, also when an id is reused. */
  private started = 0;

  constructor(private readonly services: Services, private readonly sink: ConsumerSink, private readonly log: Logger,
    private readonly connectionId: string) {}

  /** One consume* frame of an authenticated connection. */
  async handle(msg: Record<string, unknown>, principal: Principal): Promise<void> {
    const type = String(msg.type);
    const rawId = msg.id;
    const id = typeof rawId === 'string' && CONSUMER_ID.test(rawId) ? rawId : null;
    if (id === null) return this.sink.error(type, 'INVALID_SUBSCRIPTION_ID', `${type}: id must be 1-128 characters of A-Z a-z 0-9 _ . : -`);
    try {
      if (type === 'consume') return this.start(id, msg, principal);
      const consumer = this.consumers.get(id);
      if (consumer === undefined) throw new FrameError('NOT_FOUND', `No consumer '${id}' on this connection`);
      if (type === 'consume_credit') return consumer.grant(integer(msg, 'credits', 1, Number.MAX_SAFE_INTEGER, true)!);
      if (type === 'consume_stop') return consumer.end('stopped by the client');
      return await consumer.ack(integer(msg, 'partition_id', 0, 0xffff_ffff, false) ?? 0, integer(msg, 'upto_offset', 0, Number.MAX_SAFE_INTEGER, true)!,
        integer(msg, 'from_offset', 0, Number.MAX_SAFE_INTEGER, false) ?? 0);
    } catch (error) {
      if (error instanceof FrameError) return this.sink.error(id, error.code, error.message);
      // A storage failure (an ACK that could not be written): the client is told, the connection stays.
      this.log.error('topic consumer frame failed', { type, error: (error as Error).stack });
      this.sink.error(id, 'PROTOCOL', `${type} failed: ${(error as Error).message}`);
    }
  }

  private start(id: string, msg: Record<string, unknown>, principal: Principal): void {
    if (this.consumers.has(id)) throw new FrameError('INVALID_SUBSCRIPTION_ID', `Consumer '${id}' already exists on this connection`);
    // The connection's subscription limit, counted separately: a consumer costs about what a subscription does.
    const max = this.services.config.liveSubscriptionsPerConnectionMax;
    if (this.consumers.size >= max) throw new FrameError('SUBSCRIPTION_LIMIT_EXCEEDED', `At most ${max} consumers per connection`);
    if (principal.role === 'user') throw new FrameError('UNAUTHORIZED', 'Only service, dba, or system roles can consume from topics');
    const name = msg.topic;
    if (typeof name !== 'string' || name === '') throw new FrameError('PROTOCOL', "consume: 'topic' must be a topic name (namespace.topic)");
    const group = msg.group;
    if (typeof group !== 'string' || group === '' || group.length > GROUP_CHARS_MAX) {
      throw new FrameError('PROTOCOL', `consume: 'group' must be a string of 1-${GROUP_CHARS_MAX} characters`);
    }
    const start = startOf(msg.start);
    const partition = integer(msg, 'partition_id', 0, 0xffff_ffff, false);
    const credits = Math.min(integer(msg, 'credits', 0, Number.MAX_SAFE_INTEGER, false) ?? 0, CONSUME_CREDITS_MAX);
    const batchSize = integer(msg, 'batch_size', 1, CONSUME_BATCH_SIZE_MAX, false, 'UNSUPPORTED') ?? CONSUME_BATCH_SIZE_DEFAULT;
    const topic = this.services.topics.get(name);
    if (topic === undefined) throw new FrameError('NOT_FOUND', `Topic '${name}' does not exist`);
    try {
      requireTopicSources(this.services, principal, topic);
    } catch (error) {
      throw new FrameError('UNAUTHORIZED', (error as Error).message);
    }
    if (partition !== undefined && partition >= topic.partitions) {
      throw new FrameError('NOT_FOUND', `Topic '${name}' has no partition ${partition} (partitions: ${topic.partitions})`);
    }
    const partitions = partition === undefined ? [...Array(topic.partitions).keys()] : [partition];
    // 'latest' means the end of each partition now, when the consumer starts, not whenever credits
    // arrive; as on HTTP it only positions a group that has no position yet.
    const starts = new Map<number, Start>(partitions.map((p) => [p, start === 'latest' ? this.services.topics.latestOffset(name, p) : start]));
    const owner = `ws:${this.connectionId}:${++this.started}:${id}`;
    const consumer = new TopicConsumer(id, owner, principal, topic, group, partitions, starts, batchSize, credits, {
      services: this.services, sink: this.sink, log: this.log, ended: (c) => { if (this.consumers.get(c.id) === c) this.consumers.delete(c.id); },
    });
    this.consumers.set(id, consumer);
    this.sink.json({ type: 'consume_started', id, topic: name, group, partitions });
    consumer.begin();
  }

  /** The principal as the catalog has it now: a role that can no longer consume ends every consumer. */
  reauthorize(principal: Principal): void {
    for (const consumer of [...this.consumers.values()]) {
      if (principal.role === 'user') consumer.end(`the role of '${principal.userId}' is now user: only service, dba, or system roles can consume from topics`);
      else consumer.reauthorize(principal);
    }
  }

  /** The connection is gone: every consumer ends and gives its unacknowledged messages back. */
  closeAll(): void {
    for (const consumer of [...this.consumers.values()]) consumer.end(null);
  }

  ids(): string[] {
    return [...this.consumers.keys()];
  }
}

interface ConsumerEnv {
  readonly services: Services;
  readonly sink: ConsumerSink;
  readonly log: Logger;
  readonly ended: (consumer: TopicConsumer) => void;
}

class TopicConsumer {
  private readonly name: string;
  private readonly createdAt: number;
  private readonly idJson: string;
  private readonly topicJson: string;
  /** Partitions this consumer was handed messages of: the ones to release when it ends. */
  private readonly touched = new Set<number>();
  private readonly unlisten: () => void;
  private stopped = false;
  /** A read is in flight (one per consumer); `again` asks it to look once more when it is done. */
  private pumping = false;
  private again = false;
  private scheduled = false;
  private draining = false;
  /** Which partition goes first in the next round, so scarce credits rotate over partitions. */
  private turn = 0;
  private expiry: NodeJS.Timeout | null = null;

  constructor(readonly id: string, private readonly owner: string, private principal: Principal, topic: TopicDef, private readonly group: string, private readonly partitions: readonly number[],
    private readonly starts: ReadonlyMap<number, Start>, private readonly batchSize: number, private credits: number,
    private readonly env: ConsumerEnv) {
    this.name = topic.name;
    this.createdAt = topic.createdAt;
    this.idJson = JSON.stringify(id);
    this.topicJson = JSON.stringify(topic.name);
    this.unlisten = env.services.topics.onChange(() => this.wake());
  }

  begin(): void {
    this.wake();
  }

  /** The consumer's account changed (role): the next read checks the topic's sources under it. */
  reauthorize(principal: Principal): void {
    this.principal = principal;
    this.wake();
  }

  grant(credits: number): void {
    this.credits = Math.min(this.credits + credits, CONSUME_CREDITS_MAX);
    this.wake();
  }

  async ack(partition: number, upto: number, from: number): Promise<void> {
    if (!this.partitions.includes(partition)) {
      throw new FrameError('PROTOCOL', `Consumer '${this.id}' does not consume partition ${partition} (partitions: ${this.partitions.join(', ')})`);
    }
    // The drop may not have reached this consumer yet: no position is written for a dropped topic.
    if (!this.topicAlive()) {
      this.end(`topic '${this.name}' was dropped`);
      throw new FrameError('NOT_FOUND', `Topic '${this.name}' does not exist`);
    }
    // Speaks for this consumer only: ranges other members hold keep the group's position below them.
    const committed = await this.env.services.topics.ack(this.name, this.group, partition, upto, this.owner, from);
    this.env.sink.json({ type: 'consume_acked', id: this.id, partition_id: partition, acknowledged_offset: upto, committed_offset: committed });
  }

  /**
   * Ends the consumer: no more pushes, its unacknowledged claims go back to the group. `reason` null:
   * the connection is gone, nothing is sent.
   */
  end(reason: string | null): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unlisten();
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.env.ended(this);
    this.releaseAll();
    if (reason !== null) this.env.sink.json({ type: 'consume_stopped', id: this.id, reason });
  }

  /** Runs inside the committer (TopicService.onChange): only checks and schedules. */
  private wake(): void {
    if (this.stopped) return;
    if (!this.topicAlive()) return this.end(`topic '${this.name}' was dropped`);
    if (this.credits <= 0 || this.scheduled || this.draining) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private topicAlive(): boolean {
    // A topic dropped and created again under the same name is another topic: the consumer ends.
    return this.env.services.topics.get(this.name)?.createdAt === this.createdAt;
  }

  private async pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    if (this.expiry !== null) {
      clearTimeout(this.expiry);
      this.expiry = null;
    }
    try {
      do {
        this.again = false;
        await this.drain();
      } while (this.again && !this.stopped);
    } catch (error) {
      this.env.log.error('topic consumer failed', { topic: this.name, group: this.group, error: (error as Error).stack });
      this.end(`reading the topic failed: ${(error as Error).message}`);
    } finally {
      this.pumping = false;
    }
    if (!this.stopped && this.credits > 0 && !this.draining) this.armExpiry();
  }

  /**
   * Reads and pushes until the credits run out or no partition has anything to hand out. Fair over
   * partitions: each round splits the credits evenly over the partitions that still had messages
   * (at most batch_size each), starting with a different partition every round. A partition that
   * returned nothing, or less than offered up to its newest offset, is done for now; a later publish,
   * release or claim expiry wakes the consumer again. (A short read below the newest offset is an
   * expired range handed out alone: more may follow.)
   */
  private async drain(): Promise<void> {
    const topics = this.env.services.topics;
    let active = this.partitions;
    while (this.credits > 0 && !this.stopped && active.length > 0) {
      // Before the slow-consumer cap is reached, pushing pauses until the socket drains (nothing is
      // claimed meanwhile); a client granting many credits and reading slowly is throttled, not cut off.
      if (this.env.sink.backlog() > this.env.services.config.liveBufferedBytesMax / 2) {
        this.draining = true;
        this.env.sink.whenDrained(() => {
          this.draining = false;
          this.wake();
        });
        return;
      }
      const n = active.length;
      const first = this.turn++ % n;
      const share = Math.min(this.batchSize, Math.ceil(this.credits / n));
      const more: number[] = [];
      for (let i = 0; i < n && this.credits > 0 && !this.stopped; i++) {
        const partition = active[(first + i) % n]!;
        const topic = topics.get(this.name);
        if (topic === undefined || topic.createdAt !== this.createdAt) return this.end(`topic '${this.name}' was dropped`);
        try {
          requireTopicSources(this.env.services, this.principal, topic);
        } catch (error) {
          return this.end((error as Error).message);
        }
        const limit = Math.min(share, this.credits);
        // One frame per read: at most half the connection's unsent-bytes cap of stored messages.
        const messages = await topics.consume(topic, this.group, partition, this.starts.get(partition)!, limit, this.owner, this.env.services.config.liveBufferedBytesMax / 2);
        if (messages.length === 0) continue;
        this.touched.add(partition);
        // Stopped (or disconnected) while reading: what was just claimed goes back at once.
        if (this.stopped) return this.releaseAll();
        this.credits -= messages.length;
        if (!this.env.sink.push(this.frame(messages))) return;
        const next = messages[messages.length - 1]!.offset + 1;
        if (messages.length === limit || next < topics.latestOffset(this.name, partition)) more.push(partition);
      }
      active = more;
    }
  }

  /** What this consumer holds unacknowledged goes to the next member that asks (and waiting ones are woken). */
  private releaseAll(): void {
    for (const partition of this.touched) this.env.services.topics.release(this.name, this.group, partition, this.owner);
    this.touched.clear();
  }

  /** Idle with credits: look again when a claim of the group expires (its messages are delivered again). */
  private armExpiry(): void {
    let earliest = Infinity;
    for (const p of this.partitions) earliest = Math.min(earliest, this.env.services.topics.claimExpiresAt(this.name, this.group, p) ?? Infinity);
    if (earliest === Infinity) return;
    this.expiry = setTimeout(() => {
      this.expiry = null;
      this.wake();
    }, Math.max(0, earliest - Date.now()) + 5);
    this.expiry.unref();
  }

  /** The stored payload is JSON text: it goes into the frame as is, not parsed and stringified again. */
  private frame(messages: readonly TopicMessage[]): Buffer {
    let out = `{"type":"topic_messages","id":${this.idJson},"messages":[`;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (i > 0) out += ',';
      out += `{"topic_id":${this.topicJson},"partition_id":${m.partition_id},"offset":${m.offset},"key":${m.key === null ? 'null' : JSON.stringify(m.key)}`
        + `,"payload":${m.payload},"timestamp_ms":${m.timestamp_ms}${m.user_id === null ? '' : `,"user":${JSON.stringify(m.user_id)}`},"op":"${WIRE_OP_NAMES[m.op]}"}`;
    }
    return Buffer.from(out + ']}', 'utf8');
  }
}

function integer(msg: Record<string, unknown>, name: string, min: number, max: number, required: boolean, rangeCode: LiveErrorCode = 'PROTOCOL'): number | undefined {
  const v = msg[name];
  if (v === undefined || v === null) {
    if (required) throw new FrameError('PROTOCOL', `${String(msg.type)}: '${name}' is required`);
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new FrameError('PROTOCOL', `${String(msg.type)}: '${name}' must be an integer`);
  if (v < min || v > max) throw new FrameError(rangeCode, `${String(msg.type)}: '${name}' must be from ${min} to ${max}`);
  return v;
}

function startOf(value: unknown): ConsumeStart {
  const start = parseConsumeStart(value);
  if (start === null) throw new FrameError('PROTOCOL', "consume: 'start' must be \"earliest\", \"latest\" or an offset");
  return start;
}
