/**
 * GET /v1/ws: the WebSocket endpoint (ws, permessage-deflate off). Owns the live sessions, the
 * registry's wiring to commits and flushes, server pings (dead peers are dropped), the admin hooks
 * (system.live rows, KILL LIVE QUERY), and re-authorization: every catalog change that can take
 * access away re-checks the sessions and subscriptions it concerns, synchronously, inside the change.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../util/log.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Services, LiveControl, LiveRow, SessionRow } from '../exec/context.js';
import { LiveRegistry } from '../live/registry.js';
import { FRAME_BYTES_FACTOR_MAX, LIVE_CLOSE, LiveSession, type TableSchemaChange } from '../live/session.js';
import { recompileSubscription, type SubscriptionQuery } from '../live/subscription-query.js';
import { reauthScope } from '../live/reauthorize.js';
import { newLiveTraffic, type LiveTraffic } from '../live/traffic.js';
import { HotVersionTail } from '../live/hot-version-tail.js';
import { IncomingBudget } from '../live/incoming-budget.js';
import type { Principal } from '../auth/access.js';
import { KeyedMutex, KeyedSemaphore, Semaphore } from '../util/mutex.js';
import { UserByteRate } from '../live/user-byte-rate.js';
import { rawJsonAnswer } from '../util/raw-http.js';
import type { CatalogChange } from '../catalog/changes.js';
import type { StoredValue, TableDef } from '../catalog/types.js';

/** Resumes reading at once across all users: a reconnect storm shares the hot tail, each cold read is its own. */
const RESUME_READS_AT_ONCE = 4;
/** Initial-data reads at once per user; the user's other subscriptions wait their turn. */
const SNAPSHOT_READS_PER_USER = 4;
/** Bytes of messages one account may send per second over all its connections (more is refused as over the rate). */
const BYTES_PER_USER_PER_SECOND = 4 * 1024 * 1024;

export class LiveServer implements LiveControl {
  readonly registry: LiveRegistry;
  /** What the sessions sent and dropped (read by /metrics and system.stats). */
  readonly traffic: LiveTraffic = newLiveTraffic();
  private readonly resumeTail: HotVersionTail;
  private readonly resumeReads = new KeyedMutex();
  private readonly snapshotReads = new KeyedSemaphore(SNAPSHOT_READS_PER_USER);
  private readonly userBytes: UserByteRate;
  /** Resume reads at once, server-wide (each within result_bytes_max). */
  private readonly resumeSlots = new Semaphore(RESUME_READS_AT_ONCE);
  /** Unfinished incoming messages, across all connections (incoming-budget.ts). */
  readonly incoming: IncomingBudget<LiveSession>;
  private readonly sessions = new Set<LiveSession>();
  private readonly wss: WebSocketServer;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly stopReauthorizing: () => void;
  private connections = 0;

  sessionRows(): SessionRow[] {
    return [...this.sessions].map((s) => s.sessionRow(this.nodeId));
  }

  /** Open WebSocket connections (the /metrics gauge). */
  get openConnections(): number {
    return this.sessions.size;
  }

  constructor(private readonly services: Services, private readonly auth: Authenticator, private readonly log: Logger, private readonly nodeId: string) {
    // Frames over the protocol limit get MESSAGE_TOO_LARGE and the connection lives on; frames past
    // FRAME_BYTES_FACTOR_MAX times it (64 KiB before authentication: the session lowers it) are refused
    // by ws itself (close 1009), so a client cannot make us buffer more.
    this.registry = new LiveRegistry(services.catalog);
    this.resumeTail = new HotVersionTail(services.hot);
    // The bucket holds a burst of the largest messages allowed (and one read only to be refused, up to FRAME_BYTES_FACTOR_MAX times that).
    this.userBytes = new UserByteRate(BYTES_PER_USER_PER_SECOND, Math.max(BYTES_PER_USER_PER_SECOND, 2 * FRAME_BYTES_FACTOR_MAX * services.config.liveMessageBytesMax));
    this.incoming = new IncomingBudget<LiveSession>(services.config.liveIncomingBytesMax, (session) => {
      this.log.warn('live connection closed: its unfinished messages were the largest when all passed live_incoming_bytes_max', { connection_id: session.connectionId });
      session.close(LIVE_CLOSE.incomingOverBudget);
    });
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: services.config.liveMessageBytesMax * FRAME_BYTES_FACTOR_MAX });
    this.pingTimer = setInterval(() => this.pingAll(), services.config.livePingIntervalMs);
    this.pingTimer.unref();
    this.stopReauthorizing = services.catalog.changes.subscribe((change) => this.reauthorize(change));
  }

  attach(http: Server): void {
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/v1/ws') {
        refuseUpgrade(socket, '404 Not Found', 'NOT_FOUND', `No WebSocket endpoint at ${path.slice(0, 200)}: use /v1/ws`);
        return;
      }
      const malformed = malformedHandshake(req);
      if (malformed !== null) {
        refuseUpgrade(socket, malformed.status, 'BAD_REQUEST', malformed.message, malformed.headers);
        return;
      }
      const refusal = this.overConnectionLimits(req.headers.authorization !== undefined);
      if (refusal !== null) {
        this.log.warn('live connection refused', { reason: refusal, address: req.socket.remoteAddress });
        refuseUpgrade(socket, '503 Service Unavailable', 'TOO_MANY_CONNECTIONS', refusal, 'Retry-After: 1\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, req));
    });
  }

  /**
   * Every connection holds a socket, buffers and a session: their number is bounded, and the share of
   * connections not yet authenticated (which anyone can open) more tightly. An upgrade that carries
   * credentials is not held to the second limit: they are checked at once (and failures throttled).
   */
  private overConnectionLimits(withCredentials: boolean): string | null {
    const { liveConnectionsMax, liveUnauthenticatedConnectionsMax } = this.services.config;
    if (this.sessions.size >= liveConnectionsMax) return `The server holds its maximum of ${liveConnectionsMax} live connections (live_connections_max)`;
    if (withCredentials) return null;
    const anonymous = this.countSessions((session) => session.principal === null);
    if (anonymous >= liveUnauthenticatedConnectionsMax) {
      return `The server holds its maximum of ${liveUnauthenticatedConnectionsMax} connections not yet authenticated (live_unauthenticated_connections_max)`;
    }
    return null;
  }

  private countSessions(counts: (session: LiveSession) => boolean): number {
    let n = 0;
    for (const session of this.sessions) if (counts(session)) n++;
    return n;
  }

  /** One more connection for this account, unless it holds live_connections_per_user_max (role system: no limit). */
  private admitConnection(principal: Principal): string | null {
    const max = this.services.config.liveConnectionsPerUserMax;
    if (principal.role === 'system') return null;
    const open = this.countSessions((session) => session.principal?.id === principal.id && !session.closing);
    return open < max ? null : `User '${principal.userId}' holds ${open} live connections, the most one account may (live_connections_per_user_max): close one first`;
  }

  /** Listens before anything is awaited: frames sent right after `open` reach the session, which holds them until authenticated. */
  private open(ws: WebSocket, req: IncomingMessage): void {
    const connectionId = `c${(++this.connections).toString(36)}${Date.now().toString(36).slice(-4)}`;
    const address = req.socket.remoteAddress ?? 'unknown';
    const deps = { services: this.services, registry: this.registry, auth: this.auth, log: this.log, nodeId: this.nodeId, traffic: this.traffic, resumeTail: this.resumeTail, resumeReads: this.resumeReads, snapshotReads: this.snapshotReads, userBytes: this.userBytes, resumeSlots: this.resumeSlots,
      admitConnection: (principal: Principal) => this.admitConnection(principal) };
    const session = new LiveSession(connectionId, ws, deps, address);
    this.sessions.add(session);
    // Read from ws's own parser after each chunk it took (this listener runs after ws's): the bytes
    // it buffers plus the payload of the message it is assembling. Counting chunks instead was undone
    // by a ping between two fragments (a review: 1.6 MiB held against a 1 MiB budget, nothing closed).
    const socket = req.socket;
    const receiver = (ws as unknown as { _receiver?: { _bufferedBytes: number; _totalPayloadLength: number } })._receiver;
    const arrived = (): void => this.incoming.set(session, receiver === undefined ? 0 : receiver._bufferedBytes + receiver._totalPayloadLength);
    socket.on('data', arrived);
    ws.on('message', (data: Buffer, isBinary: boolean) => session.receive(data, isBinary));
    ws.on('pong', () => { session.alive = true; });
    ws.on('close', () => {
      socket.off('data', arrived);
      this.incoming.complete(session);
      session.cleanup();
      this.sessions.delete(session);
    });
    ws.on('error', () => session.cleanup());
    const header = req.headers.authorization;
    if (header) session.authenticateHeader(this.auth.userFromHeader(header, address));
    else session.awaitAuthenticateMessage();
  }

  /** Catalog change listener: runs inside the change, before the changing statement continues. */
  private reauthorize(change: CatalogChange): void {
    const scope = reauthScope(change);
    if (scope !== null) for (const session of [...this.sessions]) session.reauthorize(scope);
    const schema = schemaChangeOf(change);
    if (schema !== null) this.schemaChanged(schema);
  }

  /**
   * A table's columns changed: every subscription on it is compiled again, once per distinct SQL
   * and user (the filter may name CURRENT_USER()), then adapted or ended by its session.
   */
  private schemaChanged(change: TableSchemaChange): void {
    const compiled = new Map<string, SubscriptionQuery>();
    const compile = (q: SubscriptionQuery): SubscriptionQuery => {
      const key = `${q.userId}\u0000${q.sql}`;
      let next = compiled.get(key);
      if (next === undefined) {
        next = recompileSubscription(q, change.next);
        compiled.set(key, next);
      }
      return next;
    };
    for (const session of [...this.sessions]) session.schemaChanged(change, compile);
  }

  private pingAll(): void {
    for (const session of this.sessions) {
      if (!session.alive) {
        session.terminate();
        this.sessions.delete(session);
        continue;
      }
      session.alive = false;
      session.ping();
    }
  }

  // LiveControl ------------------------------------------------------------------------------

  liveRows(): LiveRow[] {
    return this.registry.list().map((sub) => ({
      live_id: sub.liveId, connection_id: sub.sink.connectionId, subscription_id: sub.id, user_id: sub.userId,
      namespace_id: sub.query.table.namespace, table_name: sub.query.table.name, query: sub.query.sql,
      options: sub.options === null ? null : JSON.stringify(sub.options), created_at: sub.createdAt,
      last_change_at: sub.lastChangeAt, changes: sub.changes, node_id: this.nodeId,
    }));
  }

  publishStream(table: TableDef, partition: string, seqs: readonly bigint[], rows: readonly (readonly StoredValue[])[]): void {
    this.registry.publishStream(table, partition, seqs, rows);
  }

  hasSubscribers(tableId: number, partition: string): boolean {
    return this.registry.hasSubscribers(tableId, partition);
  }

  liveOwner(liveId: string): string | undefined {
    return this.registry.find(liveId)?.userId;
  }

  subscriptionsUsingColumns(tableId: number, columnNames: readonly string[]): string[] {
    const names = new Set(columnNames.map((n) => n.toLowerCase()));
    return this.registry.list()
      .filter((sub) => sub.query.table.id === tableId && [...sub.query.namedColumns].some((n) => names.has(n)))
      .map((sub) => sub.liveId)
      .sort();
  }

  killLive(liveId: string): boolean {
    const sub = this.registry.find(liveId);
    if (sub === undefined) return false;
    (sub.sink as LiveSession).end(sub, 'NOT_FOUND', `Subscription '${sub.id}' was killed by an administrator`);
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.pingTimer);
    this.stopReauthorizing();
    for (const session of this.sessions) session.close(LIVE_CLOSE.shuttingDown);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** The column change a catalog change makes to a table, or null when it changes no columns. */
function schemaChangeOf(change: CatalogChange): TableSchemaChange | null {
  if (change.kind !== 'table_schema_changed') return null;
  return { previous: change.previous, next: change.table, statement: change.change.description };
}

/** Answers an upgrade that is not taken with the protocol's error envelope (not `ws`'s HTML page) and closes. */
function refuseUpgrade(socket: Duplex, status: string, code: string, message: string, headers = ''): void {
  socket.end(rawJsonAnswer(status, { status: 'error', error: { code, message } }, headers));
}

/** What `ws` would refuse in the handshake (RFC 6455 4.2.1), said in the envelope; null for a valid one. */
function malformedHandshake(req: IncomingMessage): { status: string; message: string; headers?: string } | null {
  if (req.method !== 'GET') return { status: '405 Method Not Allowed', message: 'A WebSocket handshake is a GET request', headers: 'Allow: GET\r\n' };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { status: '400 Bad Request', message: "Upgrade must be 'websocket'" };
  if (!/^[+/0-9A-Za-z]{22}==$/.test(req.headers['sec-websocket-key'] ?? '')) return { status: '400 Bad Request', message: 'Missing or invalid Sec-WebSocket-Key' };
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    return { status: '400 Bad Request', message: 'Unsupported Sec-WebSocket-Version: use 13', headers: 'Sec-WebSocket-Version: 13, 8\r\n' };
  }
  return null;
}
