/**
 * One WebSocket connection speaking the live protocol: authentication, subscribe (with initial
 * data in batches, or resume from a `_seq`), next_batch, unsubscribe, ping. Errors are `error`
 * messages and the connection survives them, except failed authentication and slow consumers.
 * The connection is the subscriptions' sink: frames go out while its unsent bytes stay within their
 * limits (send-backlog.ts); past them the client gets SLOW_CONSUMER (with the last `_seq` delivered)
 * and is closed.
 * Frames that arrive while an authentication is being verified are held and handled in order after
 * it. Access is re-checked on every catalog change in scope (`reauthorize`): a subscription that
 * lost access ends, a dropped user's or changed password's connection closes.
 */
import type { WebSocket } from 'ws';
import type { Socket } from 'node:net';
import { LimitError, ServerError, assert } from '../util/errors.js';
import { ByteBudget, Deadline } from '../util/budget.js';
import { TokenBucket } from '../util/token-bucket.js';
import type { Logger } from '../util/log.js';
import type { Principal } from '../auth/access.js';
import { partitionFor, principalOf } from '../auth/access.js';
import type { SessionRow } from '../exec/context.js';
import type { Authenticator } from '../auth/authenticator.js';
import { activeUser, readRevoked } from '../auth/reauthorize.js';
import { qualifiedName, type ColumnDef, type TableDef, type UserDef } from '../catalog/types.js';
import { encodeCell, protocolType } from '../sql/values.js';
import { columnKey, fillFor } from './row-shape.js';
import type { ReauthScope } from './reauthorize.js';
import type { Services } from '../exec/context.js';
import type { LiveRegistry, LiveSink, Subscription } from './registry.js';
import type { LiveEvent } from './registry.js';
import { shapedRow } from './row-shape.js';
import { LiveFrame } from './wire-frame.js';
import { currentFanOut, holdUntilFanOutEnds } from './fanout-writes.js';
import { parseSubscription, type SubscriptionQuery } from './subscription-query.js';
import { FILTER_NODES_MAX } from './predicate.js';
import type { UserByteRate } from './user-byte-rate.js';
import { ReadAbandoned, resumeChanges, snapshotRows, type InitialRows, type ResumeChange } from './initial-data.js';
import type { KeyedMutex, KeyedSemaphore, Semaphore } from '../util/mutex.js';
import { approxBytesOf } from './hot-version-tail.js';
import type { HotVersionTail } from './hot-version-tail.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import { bigintsToText, parseJson } from '../util/json.js';
import { TopicConsumers } from './topic-consumer.js';
import type { LiveTraffic } from './traffic.js';
import { SendBacklog } from './send-backlog.js';

/** ws's WebSocket.OPEN (the class is only imported as a type here). */
const OPEN = 1;
/** Before authentication: the largest message ws buffers (setReadLimit). */
const UNAUTHENTICATED_FRAME_BYTES_MAX = 64 * 1024;
/**
 * After it: messages up to live_message_bytes_max are read, larger ones up to this many times it get
 * MESSAGE_TOO_LARGE and the connection lives on, and past that ws closes it (1009) rather than buffer more.
 */
/**
 * The parse-tree nodes of one user's subscription filters, in all (ten filters of the largest size):
 * their compiled forms live as long as the subscriptions (an attack review ran the server out of
 * memory with 187 subscriptions of 24 MB each).
 */
export const FILTER_NODES_PER_USER_MAX = 10 * FILTER_NODES_MAX;

export const FRAME_BYTES_FACTOR_MAX = 4;
const WIRE_PROTOCOL = { serialization: 'json', compression: 'none' } as const;

export type LiveErrorCode = 'AUTH_REQUIRED' | 'INVALID_SUBSCRIPTION_ID' | 'INVALID_SQL' | 'NOT_FOUND' | 'UNAUTHORIZED'
  | 'UNSUPPORTED' | 'SUBSCRIPTION_LIMIT_EXCEEDED' | 'MESSAGE_TOO_LARGE' | 'SLOW_CONSUMER' | 'SCHEMA_CHANGED' | 'PROTOCOL';

/** The one place server errors become live-protocol error codes. */
export function liveErrorCode(error: unknown): LiveErrorCode {
  if (!(error instanceof ServerError)) return 'PROTOCOL';
  switch (error.code) {
    case 'PERMISSION_DENIED': case 'INVALID_CREDENTIALS': case 'TOKEN_EXPIRED': case 'MISSING_AUTHORIZATION': return 'UNAUTHORIZED';
    case 'NOT_FOUND': return 'NOT_FOUND';
    case 'INVALID_SQL': case 'SQL_EXECUTION_ERROR': case 'EMPTY_SQL': return 'INVALID_SQL';
    default: return 'PROTOCOL';
  }
}

/** Every close the server initiates: the one table of close codes and reasons (docs/protocol.md). */
export const LIVE_CLOSE = Object.freeze({
  shuttingDown: { code: 1001, reason: 'server shutting down' },
  slowConsumer: { code: 1008, reason: 'slow consumer' },
  tooManyBeforeAuth: { code: 1008, reason: 'too many messages before authentication completed' },
  tooManyMessages: { code: 1008, reason: 'too many messages' },
  incomingOverBudget: { code: 1008, reason: 'incoming messages over the server\'s budget' },
  tooManyConnections: { code: 1013, reason: 'too many connections for this account' },
  authFailed: { code: 4001, reason: 'authentication failed' },
  passwordChanged: { code: 4002, reason: 'password changed' },
  userDropped: { code: 4003, reason: 'user dropped' },
});
export type LiveClose = (typeof LIVE_CLOSE)[keyof typeof LIVE_CLOSE];

/** A client frame as it waits for authentication: oversized ones keep only their length. */
type Frame = { readonly data: Buffer; readonly isBinary: boolean } | { readonly tooLargeBytes: number };

export interface SessionDeps {
  readonly services: Services;
  readonly registry: LiveRegistry;
  readonly auth: Authenticator;
  readonly log: Logger;
  readonly nodeId: string;
  /** The server's sent/dropped counters (/metrics, system.stats). */
  readonly traffic: LiveTraffic;
  /** Hot versions of partitions resumed lately, shared by the resumes of a reconnect storm. */
  readonly resumeTail: HotVersionTail;
  /** One resume read at a time per user, and a few in all: what a resume may hold is bounded, and so is their number. */
  readonly resumeReads: KeyedMutex;
  /** Bytes of messages per second per account (user-byte-rate.ts). */
  readonly userBytes: UserByteRate;
  /** Initial-data reads under way or waiting, per user (SNAPSHOT_READS_PER_USER at once). */
  readonly snapshotReads: KeyedSemaphore;
  readonly resumeSlots: Semaphore;
  /** Null when the account may open one more connection, else why not (live_connections_per_user_max). */
  readonly admitConnection: (principal: Principal) => string | null;
}

interface PendingBatches {
  /** The compilation the snapshot was read under: every batch is rendered with it. */
  readonly query: SubscriptionQuery;
  readonly rows: RowVersion[];
  /** The user's budget for initial data held (registry.pendingSnapshotBudget), and what these rows took of it. */
  readonly budget: ByteBudget;
  readonly bytes: number;
  next: number;
  batchNum: number;
  readonly batchSize: number;
}

/** Initial rows read for a subscription, and what they take of the user's budget for initial data held. */
interface HeldSnapshot extends InitialRows {
  readonly budget: ByteBudget;
  readonly bytes: number;
}

const SUBSCRIPTION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

let tick = 0;
let tickEnds = false;

/** A number that changes once the current synchronous run (e.g. one commit group's fan-out) is over. */
function currentTick(): number {
  if (!tickEnds) {
    tickEnds = true;
    process.nextTick(() => {
      tick++;
      tickEnds = false;
    });
  }
  return tick;
}

export class LiveSession implements LiveSink {
  principal: Principal | null = null;
  alive = true;
  private readonly subs = new Map<string, Subscription>();
  private readonly batches = new Map<string, PendingBatches>();
  private closed = false;

  /** Closing or closed: it no longer counts against its account's connections. */
  get closing(): boolean {
    return this.closed;
  }
  /** Closed as a slow consumer: frames still offered to it are counted as dropped. */
  private closedSlow = false;
  private corked = false;
  /** The tick (currentTick) of the last frame sent: a second frame in the same tick corks the socket. */
  private lastSendTick = -1;
  /** The fan-out (currentFanOut) this connection's socket is held in, if any. */
  private heldInFanOut = -1;
  /** Messages this connection may still send now (live_messages_per_second_max). */
  private readonly messages: TokenBucket;
  /** Messages refused over the rate since the last one taken (refuseOverRate). */
  private refusedInRun = 0;
  private authTimer: NodeJS.Timeout | null = null;
  /** Frames that arrived while an authentication was being verified; null when none is. */
  private held: Frame[] | null = null;
  /** Topic consumers (consume* frames); topic-consumer.ts owns them, the session only routes and cleans up. */
  private readonly consumers: TopicConsumers;
  /** Whether the connection's unsent bytes are within its limits (cap, burst, grace). */
  private readonly backlog: SendBacklog;

  /** When the connection opened (system.sessions). */
  readonly openedAt = Date.now();

  /** One system.sessions row: who is on this connection, from where, since when. */
  sessionRow(nodeId: string): SessionRow {
    return {
      session_id: this.connectionId, user_id: this.principal?.userId ?? null, role: this.principal?.role ?? null,
      client_address: this.address, connected_at: this.openedAt, subscriptions: this.subs.size, node_id: nodeId,
    };
  }

  constructor(readonly connectionId: string, private readonly ws: WebSocket, private readonly d: SessionDeps, private readonly address = 'unknown') {
    this.messages = new TokenBucket(d.services.config.liveMessagesPerSecondMax, d.services.config.liveMessagesPerSecondMax);
    this.consumers = new TopicConsumers(d.services, {
      push: (frame) => this.pushFrame(frame),
      json: (msg) => this.sendJson(msg),
      error: (id, code, message) => this.error(id, code, message),
      backlog: () => this.ws.bufferedAmount,
      whenDrained: (then) => this.whenDrained(then),
    }, d.log, connectionId);
    this.backlog = new SendBacklog(d.services.config, d.traffic, () => this.ws.bufferedAmount, () => this.socket(), () => this.slowConsumer(false));
    this.setReadLimit(UNAUTHENTICATED_FRAME_BYTES_MAX);
  }

  /**
   * The largest client message ws will buffer on this connection before closing it (1009). Before
   * authentication only the authenticate message (and a few early subscribes) can arrive, so an
   * anonymous connection holds at most 64 KiB instead of the authenticated limit (an attack review
   * grew the server by 16 MiB per anonymous connection). ws keeps the limit on its receiver.
   */
  private setReadLimit(bytes: number): void {
    const receiver = (this.ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
    if (receiver !== undefined && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
  }

  // Authentication --------------------------------------------------------------------------

  /** No Authorization header: the client has liveAuthTimeoutMs to send an authenticate message. */
  awaitAuthenticateMessage(): void {
    assert(this.authTimer === null && this.principal === null, 'authentication starts once');
    this.authTimer = setTimeout(() => this.failAuth('Authentication timed out: send an authenticate message within 3 seconds'), this.d.services.config.liveAuthTimeoutMs);
  }

  /** The upgrade request's Authorization header is being verified. */
  authenticateHeader(verify: Promise<UserDef>): void {
    void this.verifyThenEstablish(verify);
  }

  /**
   * Waits for an authentication to be verified. Meanwhile the socket stops reading and whatever
   * frames were already read are held, then handled in order once the connection is authenticated
   * (a client may send `subscribe` right after `open`), or dropped with it when authentication fails.
   */
  private async verifyThenEstablish(verify: Promise<UserDef>): Promise<void> {
    assert(this.held === null, 'one authentication at a time');
    this.held = [];
    this.ws.pause();
    try {
      this.establish(await verify);
    } catch (error) {
      if (!(error instanceof ServerError)) this.d.log.error('live authentication failed', { error: (error as Error).stack });
      this.failAuth(error instanceof ServerError ? error.message : 'Authentication failed');
    }
    const held = this.held;
    this.held = null;
    // Also after a failure: the closing handshake needs the client's close frame to be read.
    this.ws.resume();
    if (this.closed) return;
    for (const frame of held) this.handle(frame);
  }

  /**
   * Makes a verified user this connection's principal, with the catalog's current role. The catalog
   * change bus cannot reach a connection that has no principal yet, so a password or role change
   * (both bump tokenGeneration) or a drop that happened while the credentials were being verified
   * is caught here: the client is told to authenticate again.
   */
  private establish(verified: UserDef): void {
    if (this.closed) return;
    const current = activeUser(this.d.services.catalog, verified);
    if (current === undefined || current.tokenGeneration !== verified.tokenGeneration) {
      return this.failAuth('The user was changed or dropped while the credentials were being checked: authenticate again');
    }
    // Not 4001: the credentials were good, and a client may try again once one of its connections closed.
    const refusal = this.d.admitConnection(principalOf(current));
    if (refusal !== null) return this.failAuth(refusal, LIVE_CLOSE.tooManyConnections);
    if (this.authTimer) clearTimeout(this.authTimer);
    this.principal = principalOf(current);
    this.setReadLimit(this.d.services.config.liveMessageBytesMax * FRAME_BYTES_FACTOR_MAX);
    this.sendAuthSuccess();
  }

  /** `protocol` echoes what this connection speaks: JSON text frames, never compressed (upstream clients may ask for msgpack or gzip). */
  private sendAuthSuccess(): void {
    const principal = this.principal!;
    this.sendJson({ type: 'auth_success', user: principal.userId, role: principal.role, protocol: WIRE_PROTOCOL });
  }

  /**
   * Re-checks this connection against the catalog as it is now. Called synchronously from the
   * catalog change itself, so it finishes before any later commit is fanned out: the user must
   * still exist, the role is re-read (a downgrade applies at once), and every subscription in scope
   * must still be readable; one that is not ends with an `error` and no further change reaches it.
   */
  reauthorize(scope: ReauthScope): void {
    // A connection still verifying its credentials is checked by establish() instead.
    if (this.closed || this.principal === null) return;
    if (scope.accountId !== null && scope.accountId !== this.principal.id) return;
    if (scope.passwordChanged) return this.close(LIVE_CLOSE.passwordChanged);
    const catalog = this.d.services.catalog;
    const user = activeUser(catalog, this.principal);
    if (user === undefined) return this.close(LIVE_CLOSE.userDropped);
    this.principal = principalOf(user);
    this.consumers.reauthorize(this.principal);
    for (const sub of [...this.subs.values()]) {
      if (scope.tableId !== null && sub.query.table.id !== scope.tableId) continue;
      const lost = readRevoked(catalog, this.principal, sub.query.table);
      if (lost !== null) this.end(sub, liveErrorCode(lost), `Subscription '${sub.id}' ended: ${lost.message}`);
    }
  }

  /**
   * The columns of a table changed (ALTER TABLE), called synchronously inside the catalog change,
   * before any later commit is fanned out. Each subscription on the table is compiled again
   * (`compile` shares the work between subscriptions of the same SQL and user): one that names a
   * column that is gone ends with SCHEMA_CHANGED, one whose SQL no longer compiles too; the others
   * match later changes with the new compilation, and those whose schema changed (a `*` select list,
   * a selected column's type) get a schema_changed message in their stream: rows delivered after it
   * are rendered under the new schema, rows before it (and initial data) under the old one.
   */
  schemaChanged(change: TableSchemaChange, compile: (q: SubscriptionQuery) => SubscriptionQuery): void {
    if (this.closed) return;
    for (const sub of [...this.subs.values()]) {
      if (sub.query.table.id !== change.next.id || sub.state === 'closed') continue;
      const gone = [...sub.query.namedColumns].filter((name) => !change.next.columns.some((c) => c.name === name));
      if (gone.length > 0) {
        this.end(sub, 'SCHEMA_CHANGED', `Subscription '${sub.id}' ended: ${gone.map((name) => goneColumn(change, name)).join('; ')}. Subscribe again with the new column names.`);
        continue;
      }
      let next: SubscriptionQuery;
      try {
        next = compile(sub.query);
      } catch (error) {
        this.end(sub, 'SCHEMA_CHANGED', `Subscription '${sub.id}' ended: after ${describeChange(change)} its query no longer applies: ${(error as Error).message}`);
        continue;
      }
      this.d.registry.requery(sub, next);
      if (sameSchema(sub.shape.schema, next.schema)) {
        // Nothing the client sees changed (a column it does not select): rows render the same under either.
        if (sub.buffered.every((event) => event.shape === undefined)) sub.shape = next;
        continue;
      }
      // In the stream: a loading subscription gets it after its initial data (read under one version).
      this.d.registry.deliver(sub, schemaChangedEvent(next));
    }
  }

  // Incoming --------------------------------------------------------------------------------

  /** Every client frame enters here: held while authentication is verified, else handled now. */
  receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    const frame: Frame = data.length > this.d.services.config.liveMessageBytesMax ? { tooLargeBytes: data.length } : { data, isBinary };
    if (this.held === null) return this.handle(frame);
    // The socket is paused while held, so only frames already read can arrive; the cap guards that
    // assumption (and the rate limiter would refuse this many frames on replay anyway).
    if (this.held.length >= this.d.services.config.liveMessagesPerSecondMax) return this.close(LIVE_CLOSE.tooManyBeforeAuth);
    this.held.push(frame);
  }

  private handle(frame: Frame): void {
    if (this.closed) return;
    if (!this.takeToken()) return this.refuseOverRate();
    const user = this.principal?.userId ?? null;
    if ('tooLargeBytes' in frame) {
      // Read in full before being refused: it counts against the account's bytes too.
      if (user !== null && !this.d.userBytes.takeUpTo(user, frame.tooLargeBytes)) return this.refuseOverRate();
      return this.error('protocol', 'MESSAGE_TOO_LARGE', `Message of ${frame.tooLargeBytes} bytes is over the limit of ${this.d.services.config.liveMessageBytesMax}`);
    }
    if (user !== null && !this.d.userBytes.take(user, frame.data.length)) return this.refuseOverRate();
    this.onMessage(frame.data, frame.isBinary).catch((error: unknown) => this.d.log.error('live message failed', { error: (error as Error).stack }));
  }

  private async onMessage(data: Buffer, isBinary: boolean): Promise<void> {
    let msg: Record<string, unknown>;
    try {
      // parseJson: upstream's clients send `_seq` values (options.from, last_seq_id) as JSON numbers past 2^53.
      const parsed: unknown = parseJson(data.toString('utf8'));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      msg = parsed as Record<string, unknown>;
    } catch {
      return this.error('protocol', 'PROTOCOL', `Messages must be JSON objects${isBinary ? ' sent as text frames' : ''}`);
    }
    if (msg.type === 'authenticate') return this.authenticate(msg);
    if (this.principal === null) {
      // consume* frames route by their consumer id, like their other errors.
      const consumerId = typeof msg.type === 'string' && msg.type.startsWith('consume') && typeof msg.id === 'string' && SUBSCRIPTION_ID.test(msg.id) ? msg.id : null;
      if (consumerId !== null) return this.error(consumerId, 'AUTH_REQUIRED', 'Authentication required before consuming');
      if (msg.type !== 'subscribe') return this.error(typeof msg.type === 'string' ? msg.type.slice(0, 64) : 'protocol', 'AUTH_REQUIRED', 'Authentication required');
      // Upstream names the frame (`subscription_id: "subscribe"`); the subscription's own id, when it has one, lets a client route the error to it.
      const id = (msg.subscription as { id?: unknown } | undefined)?.id;
      return this.error(typeof id === 'string' && SUBSCRIPTION_ID.test(id) ? id : 'subscribe', 'AUTH_REQUIRED', 'Authentication required before subscribing');
    }
    switch (msg.type) {
      case 'subscribe': return this.subscribe(msg.subscription);
      case 'next_batch': return this.nextBatch(msg);
      case 'unsubscribe': return this.unsubscribe(msg.subscription_id);
      case 'ping': return this.sendJson({ type: 'pong' });
      case 'consume': case 'consume_credit': case 'consume_ack': case 'consume_stop': return this.consumers.handle(msg, this.principal);
      default: return this.error('protocol', 'PROTOCOL', `Unknown message type ${JSON.stringify(msg.type)}`);
    }
  }

  private async authenticate(msg: Record<string, unknown>): Promise<void> {
    // As upstream: authenticating again answers with the connection's current identity.
    if (this.principal !== null) return this.sendAuthSuccess();
    let verify: Promise<UserDef>;
    if (msg.method === 'jwt' && typeof msg.token === 'string') verify = this.d.auth.userFromToken(msg.token, 'access');
    else if (msg.method === 'basic' && typeof msg.username === 'string' && typeof msg.password === 'string') {
      verify = this.d.auth.checkPassword(msg.username, msg.password, this.address);
    } else {
      verify = Promise.reject(new ServerError('INVALID_CREDENTIALS', 'authenticate needs method "jwt" with token, or "basic" with username and password'));
    }
    await this.verifyThenEstablish(verify);
  }

  private failAuth(message: string, how: LiveClose = LIVE_CLOSE.authFailed): void {
    if (this.closed) return;
    this.sendJson({ type: 'auth_error', message });
    this.close(how);
  }

  private async subscribe(raw: unknown): Promise<void> {
    const sub = raw as { id?: unknown; sql?: unknown; options?: unknown } | undefined;
    const id = typeof sub?.id === 'string' ? sub.id : null;
    if (id === null || !SUBSCRIPTION_ID.test(id)) {
      return this.error('invalid_subscription', 'INVALID_SUBSCRIPTION_ID', 'subscription.id must be 1-128 characters of A-Z a-z 0-9 _ . : -');
    }
    if (this.subs.has(id)) return this.error(id, 'INVALID_SUBSCRIPTION_ID', `Subscription '${id}' already exists on this connection`);
    if (typeof sub!.sql !== 'string') return this.error(id, 'INVALID_SQL', 'subscription.sql must be a string');
    const config = this.d.services.config;
    if (this.subs.size >= config.liveSubscriptionsPerConnectionMax) {
      return this.error(id, 'SUBSCRIPTION_LIMIT_EXCEEDED', `At most ${config.liveSubscriptionsPerConnectionMax} subscriptions per connection`);
    }
    const principal = this.principal!;
    if (this.d.registry.countForUser(principal.userId) >= config.liveSubscriptionsPerUserMax) {
      return this.error(id, 'SUBSCRIPTION_LIMIT_EXCEEDED', `At most ${config.liveSubscriptionsPerUserMax} subscriptions per user`);
    }
    let options: SubscribeOptions | null;
    let query;
    try {
      options = parseOptions(sub!.options, config.liveBatchSizeMax);
      query = parseSubscription(sub!.sql, this.d.services.catalog, principal);
    } catch (error) {
      return this.error(id, error instanceof OptionsError ? 'UNSUPPORTED' : liveErrorCode(error), (error as Error).message);
    }
    if (this.d.registry.filterNodesForUser(principal.userId) + query.filterNodes > FILTER_NODES_PER_USER_MAX) {
      return this.error(id, 'SUBSCRIPTION_LIMIT_EXCEEDED', `The filters of one user's subscriptions may have ${FILTER_NODES_PER_USER_MAX} parse-tree nodes in all, `
        + `and ${this.d.registry.filterNodesForUser(principal.userId)} are held: unsubscribe from some, or subscribe with shorter WHERE clauses`);
    }
    const liveId = `${principal.userId}-${this.connectionId}-${id}`;
    if (this.d.registry.liveIdTaken(liveId)) {
      return this.error(id, 'INVALID_SUBSCRIPTION_ID', `Subscription id '${id}' would give live id '${liveId}', which another subscription has: choose another id`);
    }
    const subscription: Subscription = {
      id, liveId, sink: this, userId: principal.userId, query, shape: query,
      partition: partitionFor(principal, query.table), options: sub!.options == null ? null : bigintsToText(sub!.options), createdAt: Date.now(),
      state: 'loading', buffered: [], handoverSeq: 0n, lastSeq: 0n, lastChangeAt: null, changes: 0,
    };
    // Registered before the initial data is read: every later commit is buffered, none is missed.
    this.subs.set(id, subscription);
    this.d.registry.add(subscription);
    try {
      await this.startSubscription(subscription, options);
    } catch (error) {
      this.drop(subscription);
      this.error(id, liveErrorCode(error), error instanceof ServerError ? error.message : 'Failed to load the initial data');
      if (!(error instanceof ServerError)) this.d.log.error('live initial data failed', { error: (error as Error).stack });
    }
  }

  /**
   * Sends the ack and the initial data, then goes live. The initial data is read under one schema
   * version: when an ALTER TABLE replaced the subscription's compilation while it was being read,
   * it is read again under the new one (the ack announces that schema, so the schema_changed
   * messages buffered meanwhile are dropped); changes committed after the hand-over point follow it.
   */
  private async startSubscription(sub: Subscription, options: SubscribeOptions | null): Promise<void> {
    if (options === null) {
      sub.handoverSeq = this.d.services.committer.committedMaxSeq;
      sub.lastSeq = sub.handoverSeq;
      this.announce(sub);
      this.sendJson({
        type: 'subscription_ack', subscription_id: sub.id, total_rows: 0, schema: sub.shape.schema,
        batch_control: { batch_num: 0, has_more: false, status: 'ready', last_seq_id: sub.handoverSeq.toString() },
      });
      this.d.registry.goLive(sub);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const query = sub.query;
      let read: { changes: ResumeChange[]; handoverSeq: bigint } | HeldSnapshot;
      try {
        read = options.from !== null ? await this.readResume(sub, query, options.from) : await this.readSnapshot(sub, query, options.lastRows);
      } catch (error) {
        if (error instanceof ReadAbandoned) return;
        // Read while the table's columns changed (a row of the other width): read again.
        if (sub.state === 'closed' || sub.query === query || attempt >= 5) throw error;
        continue;
      }
      if (sub.state === 'closed' || (sub.query !== query && attempt < 5)) {
        // Rows not sent (the subscription ended, or is read again under a new compilation) give their bytes back.
        if ('budget' in read) read.budget.release(read.bytes);
        if (sub.state === 'closed') return;
        continue;
      }
      this.announce(sub, query);
      if ('changes' in read) return await this.sendResumed(sub, query, read.changes, read.handoverSeq, options.from!);
      return this.sendSnapshot(sub, query, read, options.batchSize);
    }
  }

  /**
   * The initial rows, charged to the user's budget for initial data held until the client asks for
   * it (result_bytes_max in all, across the user's subscriptions and connections).
   */
  private readSnapshot(sub: Subscription, query: SubscriptionQuery, lastRows: number | null): Promise<HeldSnapshot> {
    // A few at a time per user, and none for a subscription that ended while it waited: an attack review
    // queued thousands with subscribe/unsubscribe pairs, and the server read for minutes after the client left.
    return this.d.snapshotReads.run(this.principal!.userId, async () => {
      if (sub.state === 'closed' || this.closed) throw new ReadAbandoned();
      return this.readSnapshotNow(query, lastRows);
    });
  }

  private async readSnapshotNow(query: SubscriptionQuery, lastRows: number | null): Promise<HeldSnapshot> {
    const principal = this.principal!;
    const maxBytes = this.d.services.config.resultBytesMax;
    const budget = this.d.registry.pendingSnapshotBudget(principal.userId, maxBytes);
    const tooMuch = (): LimitError => new LimitError('SQL_EXECUTION_ERROR', 'result_bytes_max',
      `The initial data of this user's subscriptions may hold ${maxBytes} bytes (result_bytes_max) until their clients ask for it, `
      + `and ${budget.used} are held now: read the batches of the subscriptions still loading (next_batch), or subscribe with last_rows or a narrower filter`);
    if (budget.remaining() === 0) throw tooMuch();
    // Concurrent loads of the same user each read within what is left now, then take their share.
    const own = new ByteBudget(budget.remaining());
    let read: InitialRows;
    try {
      read = await snapshotRows(this.d.services, principal, query, lastRows, { deadline: new Deadline(this.d.services.config.queryTimeoutMs), resultBytes: own });
    } catch (error) {
      if (error instanceof LimitError && error.limit === 'result_bytes_max' && budget.used > 0) throw tooMuch();
      if (error instanceof LimitError && error.limit === 'query_timeout_ms') {
        throw new LimitError('SQL_EXECUTION_ERROR', 'query_timeout_ms', `Reading the initial data took longer than ${this.d.services.config.queryTimeoutMs} ms (query_timeout_ms): `
          + 'subscribe with a narrower filter, with last_rows, or without options (no initial data)');
      }
      throw error;
    }
    // Held as row objects until the client asks for them: charged at what they take in memory (often
    // ten times their JSON, which is all the read counted; an attack review saw 600 MB held within a 64 MiB budget).
    const held = Math.max(own.used, approxBytesOf(read.rows));
    try {
      budget.charge(held);
    } catch {
      throw tooMuch();
    }
    return { ...read, budget, bytes: held };
  }

  /** The changes since `from`, read one resume at a time per user, within result_bytes_max, given up when the subscription ends. */
  private readResume(sub: Subscription, query: SubscriptionQuery, from: bigint): Promise<{ changes: ResumeChange[]; handoverSeq: bigint }> {
    const limits = { bytesMax: this.d.services.config.resultBytesMax, stillWanted: () => sub.state !== 'closed' && !this.closed };
    return this.d.resumeReads.run(this.principal!.userId, () => this.d.resumeSlots.run(async () => {
      if (!limits.stillWanted()) throw new ReadAbandoned();
      return resumeChanges(this.d.services, this.d.resumeTail, query, sub.partition, from, limits);
    }));
  }

  /** The ack tells the client `query`'s schema: schema_changed messages buffered before it are superseded. */
  private announce(sub: Subscription, query: SubscriptionQuery = sub.query): void {
    sub.shape = query;
    sub.buffered = sub.buffered.filter((event) => event.shape === undefined);
    // A change after the read replaced the compilation again: announced in order after the initial data.
    if (sub.query !== query && !sameSchema(query.schema, sub.query.schema)) sub.buffered.push(schemaChangedEvent(sub.query));
  }

  /**
   * The ack, then the changes as fast as the client reads them (at most half the connection's
   * buffer cap ahead: a large resume sent at once was cut off as a slow consumer), then live.
   * Changes committed meanwhile wait in the subscription's buffer, as while initial data loads.
   */
  private async sendResumed(sub: Subscription, query: SubscriptionQuery, changes: ResumeChange[], handoverSeq: bigint, from: bigint): Promise<void> {
    sub.handoverSeq = handoverSeq;
    sub.lastSeq = from;
    // The ack's last_seq_id never runs ahead of what the client holds (upstream's clients take it as
    // their resume point): `from` while resumed changes follow it, the hand-over point when none do.
    this.sendJson({
      type: 'subscription_ack', subscription_id: sub.id, total_rows: changes.length, schema: query.schema,
      batch_control: { batch_num: 0, has_more: false, status: 'ready', last_seq_id: (changes.length > 0 ? from : handoverSeq).toString() },
    });
    const ahead = this.d.services.config.liveBufferedBytesMax / 2;
    for (const change of changes) {
      if (this.ws.bufferedAmount > ahead) {
        // whenDrained calls back only while the connection is open: the timer ends the wait when it closes.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          this.whenDrained(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      if (sub.state === 'closed' || this.closed) return;
      this.sendResumedChange(sub, query, change);
    }
    if (sub.lastSeq < handoverSeq) sub.lastSeq = handoverSeq;
    this.d.registry.goLive(sub);
  }

  private sendSnapshot(sub: Subscription, query: SubscriptionQuery, read: HeldSnapshot, batchSize: number): void {
    const { rows, handoverSeq } = read;
    sub.handoverSeq = handoverSeq;
    const pending: PendingBatches = { query, rows, next: 0, batchNum: 0, batchSize, budget: read.budget, bytes: read.bytes };
    this.batches.set(sub.id, pending);
    const hasMore = rows.length > batchSize;
    // As upstream, the ack carries the first batch's batch_control: its last_seq_id is that batch's
    // last row (rows go out in _seq order), so a client that takes it as its resume point and loses
    // the connection while loading resumes without a gap.
    const firstLast = rows.length === 0 ? handoverSeq : rows[Math.min(rows.length, batchSize) - 1]!.seq;
    this.sendJson({
      type: 'subscription_ack', subscription_id: sub.id, total_rows: rows.length, schema: query.schema,
      batch_control: { batch_num: 0, has_more: hasMore, status: hasMore ? 'loading' : 'ready', last_seq_id: firstLast.toString() },
    });
    this.sendBatch(sub, pending);
  }

  private sendBatch(sub: Subscription, pending: PendingBatches): void {
    const slice = pending.rows.slice(pending.next, pending.next + pending.batchSize);
    pending.next += slice.length;
    const hasMore = pending.next < pending.rows.length;
    const status = hasMore ? (pending.batchNum === 0 ? 'loading' : 'loading_batch') : 'ready';
    const lastSeq = slice.length > 0 ? slice[slice.length - 1]!.seq : sub.handoverSeq;
    const catalog = this.d.services.catalog;
    const rows = slice.map((v) => shapedRow(catalog, pending.query, v, v.seq));
    this.sendJson({
      type: 'initial_data_batch', subscription_id: sub.id, rows,
      batch_control: { batch_num: pending.batchNum, has_more: hasMore, status, last_seq_id: lastSeq.toString() },
    });
    pending.batchNum++;
    if (slice.length > 0 && lastSeq > sub.lastSeq) sub.lastSeq = lastSeq;
    if (!hasMore) {
      this.forgetBatches(sub.id);
      if (sub.lastSeq < sub.handoverSeq) sub.lastSeq = sub.handoverSeq;
      this.d.registry.goLive(sub);
    }
  }

  private sendResumedChange(sub: Subscription, query: SubscriptionQuery, change: ResumeChange): void {
    const catalog = this.d.services.catalog;
    const { row, old } = change;
    const seq = row.seq;
    const msg = change.kind === 'insert'
      ? { type: 'change', subscription_id: sub.id, change_type: 'insert', rows: [shapedRow(catalog, query, row, seq)] }
      : change.kind === 'update'
        ? { type: 'change', subscription_id: sub.id, change_type: 'update', rows: [shapedRow(catalog, query, row, seq)], old_values: [shapedRow(catalog, query, old!, old!.seq)] }
        : { type: 'change', subscription_id: sub.id, change_type: 'delete', old_values: [shapedRow(catalog, query, old!, seq)] };
    if (this.send(LiveFrame.of(JSON.stringify(msg)), sub, seq)) {
      sub.lastSeq = seq;
      sub.changes++;
      sub.lastChangeAt = Date.now();
    }
  }

  private nextBatch(msg: Record<string, unknown>): void {
    const id = typeof msg.subscription_id === 'string' ? msg.subscription_id : '';
    const sub = this.subs.get(id);
    if (sub === undefined) return this.error(id.slice(0, 128), 'NOT_FOUND', `No subscription '${id.slice(0, 128)}' on this connection`);
    const pending = this.batches.get(id);
    if (pending === undefined) return this.error(id, 'PROTOCOL', `Subscription '${id}' has no more initial data`);
    this.sendBatch(sub, pending);
  }

  private unsubscribe(raw: unknown): void {
    const id = typeof raw === 'string' ? raw : '';
    const sub = this.subs.get(id);
    if (sub === undefined) return this.error(id.slice(0, 128), 'NOT_FOUND', `No subscription '${id.slice(0, 128)}' on this connection`);
    this.drop(sub);
  }

  /** Ends a subscription (unsubscribe, KILL LIVE QUERY, dropped table or user). */
  drop(sub: Subscription): void {
    this.subs.delete(sub.id);
    this.forgetBatches(sub.id);
    this.d.registry.remove(sub);
  }

  failed(sub: Subscription, message: string, code: 'INVALID_SQL' | 'SLOW_CONSUMER' = 'INVALID_SQL'): void {
    this.subs.delete(sub.id);
    this.forgetBatches(sub.id);
    this.error(sub.id, code, message);
  }

  /** A subscription's initial data is sent or no longer wanted: its rows go, and their bytes back to the user's budget. */
  private forgetBatches(id: string): void {
    const pending = this.batches.get(id);
    if (pending === undefined) return;
    this.batches.delete(id);
    pending.budget.release(pending.bytes);
  }

  /** The server ends one subscription (KILL LIVE QUERY, lost access): the client is told, the connection stays. */
  end(sub: Subscription, code: LiveErrorCode, message: string): void {
    this.drop(sub);
    this.error(sub.id, code, message);
  }

  // Outgoing --------------------------------------------------------------------------------

  send(frame: LiveFrame, _sub: Subscription, _seq: bigint | null): boolean {
    if (this.closed) {
      if (this.closedSlow) this.d.traffic.droppedMessages++;
      return false;
    }
    if (!this.backlog.admit(frame.byteLength)) {
      this.slowConsumer(true);
      return false;
    }
    const traffic = this.d.traffic;
    traffic.messages++;
    traffic.bytes += frame.byteLength;
    const socket = this.socket();
    // Closing (the client sent its Close frame): nothing more reaches it, and what ws would take now
    // it counts as unsent for good (it would hold the slow-consumer burst until the socket is gone).
    if (socket === undefined || this.ws.readyState !== OPEN) return false;
    const fanOut = currentFanOut();
    if (fanOut !== -1) {
      // A fan-out (a commit group, a STREAM statement) reaching several of this connection's
      // subscriptions: their frames leave in one write when it ends.
      if (this.heldInFanOut !== fanOut) {
        this.heldInFanOut = fanOut;
        holdUntilFanOutEnds(socket);
      }
    } else {
      // Elsewhere (initial data, flush notices) the first frame of a tick goes out at once, more in
      // the same tick are corked and leave together.
      const tick = currentTick();
      if (this.lastSendTick === tick) this.cork();
      this.lastSendTick = tick;
    }
    // The frame is written as built (shared by every socket that gets it). ws runs without
    // permessage-deflate here, so its sender never queues: every frame it sends is on the socket
    // already, and this write keeps its place in the order.
    socket.write(frame.wire);
    return true;
  }

  /**
   * A topic_messages frame. Under the same cap as subscriptions, except that a frame alone larger
   * than the cap still goes out on an idle socket: the client chose that batch size, and refusing it
   * would cut the connection again on every reconnect.
   */
  private pushFrame(frame: Buffer): boolean {
    if (this.closed) {
      if (this.closedSlow) this.d.traffic.droppedMessages++;
      return false;
    }
    if (this.ws.readyState !== OPEN) return false;
    if (!this.backlog.admit(frame.length, true)) {
      this.slowConsumer(true);
      return false;
    }
    this.d.traffic.messages++;
    this.d.traffic.bytes += frame.length;
    this.cork();
    this.ws.send(frame, { binary: false });
    return true;
  }

  /** Calls `then` once: when the socket's write queue drains, or after 50 ms (ws may hold bytes the socket never reports). */
  private whenDrained(then: () => void): void {
    const socket = (this.ws as unknown as { _socket?: { once(e: 'drain', f: () => void): void; off(e: 'drain', f: () => void): void } })._socket;
    const fire = (): void => {
      clearTimeout(timer);
      socket?.off('drain', fire);
      if (!this.closed) then();
    };
    const timer = setTimeout(fire, 50);
    socket?.once('drain', fire);
  }

  /** The connection's TCP socket (ws keeps it private; undefined once ws let it go). */
  private socket(): Socket | undefined {
    return (this.ws as unknown as { _socket?: Socket })._socket ?? undefined;
  }

  /**
   * Frames sent in one tick (one commit group fans out to many subscriptions) leave in a single
   * write: one syscall per connection per group instead of one per frame.
   */
  private cork(): void {
    if (this.corked) return;
    const socket = this.socket();
    if (socket === undefined) return;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  /** Closes the connection as a slow consumer; `dropping`: a message offered to it is refused (counted as dropped). */
  private slowConsumer(dropping: boolean): void {
    if (this.closed) return;
    this.closedSlow = true;
    this.d.traffic.slowConsumers++;
    // The SLOW_CONSUMER notices below are not counted as sent.
    if (dropping) this.d.traffic.droppedMessages++;
    for (const sub of this.subs.values()) {
      this.ws.send(JSON.stringify({
        type: 'error', subscription_id: sub.id, code: 'SLOW_CONSUMER',
        message: 'The client is not reading fast enough; resubscribe with options.from = last_seq_id', last_seq_id: sub.lastSeq.toString(),
      }));
    }
    for (const id of this.consumers.ids()) {
      this.ws.send(JSON.stringify({
        type: 'error', subscription_id: id, code: 'SLOW_CONSUMER',
        message: 'The client is not reading fast enough; consume again (unacknowledged messages are delivered again)',
      }));
    }
    this.d.log.warn('closing slow live consumer', { connection_id: this.connectionId, user: this.principal?.userId });
    this.close(LIVE_CLOSE.slowConsumer);
  }

  private sendJson(msg: unknown): void {
    if (this.closed) return;
    const text = JSON.stringify(msg);
    this.d.traffic.messages++;
    this.d.traffic.bytes += Buffer.byteLength(text);
    this.ws.send(text);
  }

  /** Every error names a subscription, as upstream: its id, or for errors outside one the frame's context (`protocol`, `subscribe`, `rate_limit`, ...). */
  private error(subscriptionId: string, code: LiveErrorCode, message: string): void {
    this.sendJson({ type: 'error', subscription_id: subscriptionId, code, message });
  }

  /**
   * A message over the rate: the first one of a run gets an error, the rest none (answering each one
   * was work the flood chose); a client that sends twice the rate's worth past it is closed.
   */
  private refuseOverRate(): void {
    this.refusedInRun++;
    if (this.refusedInRun === 1) this.error('rate_limit', 'PROTOCOL', 'Too many messages: slow down');
    else if (this.refusedInRun > this.d.services.config.liveMessagesPerSecondMax * 2) this.close(LIVE_CLOSE.tooManyMessages);
  }

  private takeToken(): boolean {
    if (this.messages.refill() < 1) return false;
    this.messages.tokens--;
    this.refusedInRun = 0;
    return true;
  }

  close(how: LiveClose): void {
    if (this.closed) return;
    this.cleanup();
    this.ws.close(how.code, how.reason);
    // ws waits 30 s for the peer's close frame, reading (and holding) whatever it sends meanwhile; a
    // peer that does not answer is cut off sooner. A refused authentication gets 1 s, others 5 s to
    // read what was sent before the close (SLOW_CONSUMER notices).
    const grace = how === LIVE_CLOSE.authFailed ? 1_000 : 5_000;
    setTimeout(() => { if (this.ws.readyState !== 3 /* CLOSED */) this.ws.terminate(); }, grace).unref();
  }

  /**
   * A peer that did not answer the last ping: its socket is destroyed (no closing handshake to wait
   * for) and its subscriptions end, so a client whose network came back sees the drop and resumes,
   * instead of staying connected to subscriptions that no longer exist.
   */
  terminate(): void {
    this.cleanup();
    this.ws.terminate();
  }

  /** The connection is gone: every subscription on it ends now. */
  cleanup(): void {
    this.closed = true;
    this.backlog.dispose();
    if (this.authTimer) clearTimeout(this.authTimer);
    for (const sub of [...this.subs.values()]) this.drop(sub);
    this.consumers.closeAll();
  }

  subscriptions(): Subscription[] {
    return [...this.subs.values()];
  }

  ping(): void {
    if (!this.closed) this.ws.ping();
  }
}

/** A change of a table's columns, as the live layer needs it. */
export interface TableSchemaChange {
  readonly previous: TableDef;
  readonly next: TableDef;
  /** The statement's own words, e.g. `DROP COLUMN c` (for messages); derived from the definitions when absent. */
  readonly statement?: string;
}

/**
 * A schema_changed message announcing `query`'s schema: rows delivered after it are rendered under
 * it. Its `changes` say how the subscription's columns changed since the schema the client was last
 * told about (rendered when delivered, so against exactly that one), so a client holding rows can
 * re-key them: `add` with the value rows written before hold (`default`), `drop`, `rename` (`new_name`),
 * `modify` (type or nullability; `data_type`).
 */
export function schemaChangedEvent(query: SubscriptionQuery): LiveEvent {
  const schema = JSON.stringify(query.schema);
  return {
    seq: null,
    shape: query,
    frame: (sub) => LiveFrame.of(`{"type":"schema_changed","subscription_id":${JSON.stringify(sub.id)},"schema":${schema},`
      + `"schema_version":${query.table.schemaVersion},"changes":${JSON.stringify(columnChanges(sub.shape, query))}}`),
  };
}

export type ColumnChange =
  | { readonly kind: 'add'; readonly column: string; readonly default: unknown }
  | { readonly kind: 'drop'; readonly column: string }
  | { readonly kind: 'rename'; readonly column: string; readonly new_name: string }
  | { readonly kind: 'modify'; readonly column: string; readonly data_type: unknown };

/** How the selected columns of `before` became those of `after` (matched by column id). */
function columnChanges(before: SubscriptionQuery, after: SubscriptionQuery): ColumnChange[] {
  const selected = (q: SubscriptionQuery): ColumnDef[] => q.projection.map((i) => q.table.columns[i]).filter((c): c is ColumnDef => c !== undefined);
  const was = new Map(selected(before).map((c) => [columnKey(c), c]));
  const out: ColumnChange[] = [];
  const kept = new Set<number>();
  for (const c of selected(after)) {
    const key = columnKey(c);
    const old = was.get(key);
    if (old === undefined) {
      out.push({ kind: 'add', column: c.name, default: encodeCell(c, fillFor(c)) });
      continue;
    }
    kept.add(key);
    if (old.name !== c.name) out.push({ kind: 'rename', column: old.name, new_name: c.name });
    if (old.type !== c.type || old.precision !== c.precision || old.scale !== c.scale || old.nullable !== c.nullable) {
      out.push({ kind: 'modify', column: c.name, data_type: protocolType(c) });
    }
  }
  for (const [key, c] of was) if (!kept.has(key)) out.push({ kind: 'drop', column: c.name });
  return out;
}

function sameSchema(a: SubscriptionQuery['schema'], b: SubscriptionQuery['schema']): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describeChange(change: TableSchemaChange): string {
  return `ALTER TABLE ${qualifiedName(change.next)}${change.statement ? ` ${change.statement}` : ''} (schema version ${change.next.schemaVersion})`;
}

/** Why a column a subscription names is gone: renamed (same column id, other name) or dropped. */
function goneColumn(change: TableSchemaChange, name: string): string {
  const before = change.previous.columns.find((c) => c.name === name);
  const renamed = before === undefined ? undefined : change.next.columns.find((c) => c.id === before.id);
  return renamed !== undefined
    ? `column '${name}' of ${qualifiedName(change.next)} was renamed to '${renamed.name}' by ${describeChange(change)}`
    : `column '${name}' of ${qualifiedName(change.next)} was dropped by ${describeChange(change)}`;
}

interface SubscribeOptions {
  readonly batchSize: number;
  readonly lastRows: number | null;
  readonly from: bigint | null;
}

class OptionsError extends Error {}

function parseOptions(raw: unknown, batchSizeMax: number): SubscribeOptions | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new OptionsError('options must be an object');
  const o = raw as Record<string, unknown>;
  const int = (v: unknown, name: string, min: number, max: number): number | null => {
    if (v === undefined || v === null) return null;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new OptionsError(`options.${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const batchSize = int(o.batch_size, 'batch_size', 1, batchSizeMax) ?? 1000;
  const lastRows = int(o.last_rows, 'last_rows', 0, 1_000_000);
  // `from_seq_id` is upstream's other name for `from`. Upstream's clients send it as a JSON number
  // (parsed exactly, as a bigint past 2^53) or a string of digits.
  const rawFrom = o.from ?? o.from_seq_id;
  let from: bigint | null = null;
  if (rawFrom !== undefined && rawFrom !== null) {
    const valid = (typeof rawFrom === 'string' && /^\d{1,19}$/.test(rawFrom))
      || (typeof rawFrom === 'number' && Number.isSafeInteger(rawFrom) && rawFrom >= 0)
      || (typeof rawFrom === 'bigint' && rawFrom >= 0n);
    if (!valid) throw new OptionsError('options.from must be a _seq (a string of digits)');
    from = BigInt(rawFrom as string | number | bigint);
    if (from > 2n ** 63n - 1n) throw new OptionsError('options.from must be a _seq (a string of digits)');
  }
  // As upstream: `from` wins over `last_rows` (its clients resubscribe with both after a reconnect).
  return { batchSize, lastRows: from === null ? lastRows : null, from };
}
