/**
 * GET /v1/ws: the WebSocket endpoint (ws, permessage-deflate off). Owns the live sessions, the
 * registry's wiring to commits and flushes, server pings (dead peers are dropped), and the admin
 * hooks: system.live rows, KILL LIVE QUERY, and ending subscriptions of dropped tables and users.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../util/log.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Services, LiveControl, LiveRow } from '../exec/context.js';
import { LiveRegistry } from '../live/registry.js';
import { LiveSession } from '../live/session.js';
import { ServerError } from '../util/errors.js';
import type { CommittedChange } from '../storage/hot/committer.js';

export class LiveServer implements LiveControl {
  readonly registry = new LiveRegistry();
  private readonly sessions = new Set<LiveSession>();
  private readonly wss: WebSocketServer;
  private readonly pingTimer: NodeJS.Timeout;
  private connections = 0;

  constructor(private readonly services: Services, private readonly auth: Authenticator, private readonly log: Logger, private readonly nodeId: string) {
    // Frames over the protocol limit get MESSAGE_TOO_LARGE and the connection lives on; only frames
    // past 16x the limit are refused by ws itself (close 1009) so a client cannot make us buffer more.
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: services.config.liveMessageBytesMax * 16 });
    this.pingTimer = setInterval(() => this.pingAll(), services.config.livePingIntervalMs);
    this.pingTimer.unref();
  }

  attach(http: Server): void {
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/v1/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => void this.open(ws, req));
    });
  }

  private async open(ws: WebSocket, req: IncomingMessage): Promise<void> {
    const connectionId = `c${(++this.connections).toString(36)}${Date.now().toString(36).slice(-4)}`;
    let pre = null;
    let authError: string | null = null;
    if (req.headers.authorization) {
      try {
        pre = await this.auth.fromHeader(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
      } catch (error) {
        authError = error instanceof ServerError ? error.message : 'Authentication failed';
      }
    }
    const session = new LiveSession(
      connectionId, ws, { services: this.services, registry: this.registry, auth: this.auth, log: this.log, nodeId: this.nodeId }, pre,
      req.socket.remoteAddress ?? 'unknown',
    );
    this.sessions.add(session);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      session.onMessage(data, isBinary).catch((error: unknown) => this.log.error('live message failed', { error: (error as Error).stack }));
    });
    ws.on('pong', () => { session.alive = true; });
    ws.on('close', () => {
      session.cleanup();
      this.sessions.delete(session);
    });
    ws.on('error', () => session.cleanup());
    if (authError !== null) {
      ws.send(JSON.stringify({ type: 'auth_error', message: authError }));
      session.close(4001, 'authentication failed');
    }
  }

  private pingAll(): void {
    for (const session of this.sessions) {
      if (!session.alive) {
        session.cleanup();
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

  publish(changes: readonly CommittedChange[]): void {
    this.registry.onCommit(changes);
  }

  hasSubscribers(tableId: number, partition: string): boolean {
    return this.registry.hasSubscribers(tableId, partition);
  }

  liveOwner(liveId: string): string | undefined {
    return this.registry.find(liveId)?.userId;
  }

  killLive(liveId: string): boolean {
    const sub = this.registry.find(liveId);
    if (sub === undefined) return false;
    (sub.sink as LiveSession).kill(sub, `Subscription '${sub.id}' was killed by an administrator`);
    return true;
  }

  dropTable(tableId: number): void {
    for (const sub of this.registry.list()) {
      if (sub.query.table.id === tableId) (sub.sink as LiveSession).kill(sub, `Table ${sub.query.table.namespace}.${sub.query.table.name} was dropped`);
    }
  }

  dropUser(accountId: string): void {
    for (const session of [...this.sessions]) {
      if (session.principal?.id === accountId) session.close(4003, 'user dropped');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.pingTimer);
    for (const session of this.sessions) session.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
