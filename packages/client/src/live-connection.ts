/**
 * The client's one WebSocket: authenticates with a fresh token, carries every subscription, and
 * reconnects by itself with backoff after a drop, a server restart or SLOW_CONSUMER, resubscribing
 * each subscription from the last `_seq` it saw so no change is lost or applied twice.
 */
import { KalamError } from './errors.js';
import type { TokenSource } from './auth.js';
import type { Row, SchemaField, ServerMessage } from './types.js';

/** The subset of the WebSocket API the SDK uses (browser WebSocket and the `ws` package both have it). */
interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

type SocketFactory = (url: string) => SocketLike;

async function defaultSocketFactory(): Promise<SocketFactory> {
  const global = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
  if (global !== undefined) return (url) => new global(url);
  const mod = (await import('ws')) as unknown as { default: new (url: string) => SocketLike };
  return (url) => new mod.default(url);
}

/** One subscription as the connection tracks it across reconnects. */
export interface LiveSubscription {
  readonly id: string;
  readonly sql: string;
  readonly options: { batchSize?: number; lastRows?: number; from?: string };
  /** The largest `_seq` received (initial data or changes): the resume point. */
  lastSeq: string | null;
  ready: boolean;
  schema: readonly SchemaField[] | null;
  onMessage(msg: ServerMessage): void;
  /** Settles the subscribe() promise on the first ack or error. */
  settle(error: KalamError | null): void;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

/**
 * Close codes after which reconnecting cannot help: the server ended the session because the
 * user's password changed (4002) or the user was dropped (4003). Subscriptions end with an error
 * instead of retrying stale credentials forever.
 */
const SESSION_ENDED: Readonly<Record<number, { code: string; message: string }>> = {
  4002: { code: 'INVALID_CREDENTIALS', message: 'The session ended: the password was changed' },
  4003: { code: 'UNAUTHORIZED', message: 'The session ended: the user was dropped' },
};

function closeCode(ev: unknown): number {
  return typeof ev === 'object' && ev !== null && 'code' in ev ? Number((ev as { code: unknown }).code) : 0;
}

export class LiveConnection {
  private socket: SocketLike | null = null;
  private connecting: Promise<void> | null = null;
  private readonly subs = new Map<string, LiveSubscription>();
  private attempt = 0;
  private closed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Reconnections so far (tests and diagnostics). */
  reconnects = 0;

  constructor(private readonly wsUrl: string, private readonly tokens: TokenSource, private factory: SocketFactory | null = null) {}

  async add(sub: LiveSubscription): Promise<void> {
    this.subs.set(sub.id, sub);
    await this.ensureOpen();
    this.sendSubscribe(sub);
  }

  remove(id: string): void {
    if (!this.subs.delete(id)) return;
    if (this.socket !== null && this.socket.readyState === 1) this.socket.send(JSON.stringify({ type: 'unsubscribe', subscription_id: id }));
  }

  nextBatch(id: string, lastSeq: string | undefined): void {
    this.socket?.send(JSON.stringify({ type: 'next_batch', subscription_id: id, ...(lastSeq ? { last_seq_id: lastSeq } : {}) }));
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.subs.clear();
    this.socket?.close(1000, 'client disconnect');
    this.socket = null;
  }

  private ensureOpen(): Promise<void> {
    if (this.socket !== null && this.socket.readyState === 1) return Promise.resolve();
    this.connecting ??= this.open().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  private async open(): Promise<void> {
    this.factory ??= await defaultSocketFactory();
    const token = await this.tokens.token();
    const socket = this.factory(this.wsUrl);
    await new Promise<void>((resolve, reject) => {
      let authed = false;
      socket.onopen = () => socket.send(JSON.stringify({ type: 'authenticate', method: 'jwt', token }));
      socket.onerror = () => { if (!authed) reject(new KalamError('CONNECTION_FAILED', `WebSocket connection to ${this.wsUrl} failed`)); };
      socket.onclose = (ev) => {
        if (!authed) reject(new KalamError('CONNECTION_FAILED', 'WebSocket closed before authentication'));
        else this.onDropped(socket, closeCode(ev));
      };
      socket.onmessage = (ev) => {
        const msg = JSON.parse(String(ev.data)) as ServerMessage;
        if (!authed) {
          if (msg.type === 'auth_success') {
            authed = true;
            this.socket = socket;
            this.attempt = 0;
            resolve();
          } else if (msg.type === 'auth_error') {
            this.tokens.invalidate();
            reject(new KalamError('INVALID_CREDENTIALS', msg.message ?? 'Authentication failed'));
          }
          return;
        }
        this.dispatch(msg);
      };
    });
  }

  private dispatch(msg: ServerMessage): void {
    const sub = msg.subscription_id !== undefined ? this.subs.get(msg.subscription_id) : undefined;
    if (sub === undefined) return;
    if (msg.type === 'error') {
      if (msg.code === 'SLOW_CONSUMER') return; // the server closes next; the reconnect resumes
      sub.settle(new KalamError(msg.code ?? 'PROTOCOL', msg.message ?? 'Subscription failed'));
      this.subs.delete(sub.id);
    }
    sub.onMessage(msg);
  }

  private onDropped(socket: SocketLike | null, code = 0): void {
    if (socket !== null && this.socket === socket) this.socket = null;
    if (this.closed || this.subs.size === 0) return;
    const ended = SESSION_ENDED[code];
    if (ended !== undefined) return this.endAll(new KalamError(ended.code, ended.message));
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    this.attempt++;
    this.reconnectTimer = setTimeout(() => void this.reconnect(), delay);
  }

  private async reconnect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.closed) return;
    try {
      await this.ensureOpen();
    } catch (error) {
      // Credentials that no longer work will not start working by retrying them.
      if (error instanceof KalamError && error.code === 'INVALID_CREDENTIALS') return this.endAll(error);
      if (this.socket === null) this.onDropped(null);
      return;
    }
    this.reconnects++;
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
  }

  /** Ends every subscription with `error` (their onError handlers run) and stops reconnecting. */
  private endAll(error: KalamError): void {
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const sub of subs) {
      sub.settle(error);
      sub.onMessage({ type: 'error', subscription_id: sub.id, code: error.code, message: error.message });
    }
  }

  /** (Re)subscribes: from the last `_seq` seen once there is one, else with the original options. */
  private sendSubscribe(sub: LiveSubscription): void {
    const options: Record<string, unknown> = {};
    if (sub.lastSeq !== null) options.from = sub.lastSeq;
    else {
      if (sub.options.batchSize !== undefined) options.batch_size = sub.options.batchSize;
      if (sub.options.lastRows !== undefined) options.last_rows = sub.options.lastRows;
      if (sub.options.from !== undefined) options.from = sub.options.from;
    }
    const withOptions = sub.lastSeq !== null || Object.keys(options).length > 0 || sub.options.batchSize !== undefined;
    this.socket?.send(JSON.stringify({
      type: 'subscribe',
      subscription: { id: sub.id, sql: sub.sql, ...(withOptions ? { options } : {}) },
    }));
  }
}

/** The largest `_seq` among rows (as decimal strings). */
export function maxSeq(current: string | null, rows: readonly Row[] | undefined): string | null {
  let best = current;
  for (const r of rows ?? []) {
    const s = r._seq;
    if (typeof s === 'string' && (best === null || BigInt(s) > BigInt(best))) best = s;
  }
  return best;
}
