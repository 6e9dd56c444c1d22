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
  /** The socket this subscription was last sent on (so each socket gets it once). */
  sentOn: unknown;
  /** The socket it was last sent on as a resume (`from` its last `_seq`), until that socket acknowledges it. */
  resumingOn: unknown;
  /** After a refused resume: subscribed again with a snapshot, whatever `options.from` said. */
  snapshotOnly?: boolean;
  onMessage(msg: ServerMessage): void;
  /**
   * The server refused to resume it (a `from` past the retained history, or across an ALTER TABLE that
   * changed the columns): what it received so far is void, and a fresh snapshot follows.
   */
  reset(): void;
  /** Settles the subscribe() promise on the first ack or error. */
  settle(error: KalamError | null): void;
}

/**
 * Something other than a subscription carried on the socket (a topic consumer): it sends its own
 * frames on each authenticated socket and receives the frames whose `id` (or, for `error`,
 * `subscription_id`) is its id.
 */
export interface LiveChannel {
  readonly id: string;
  /** A socket was authenticated (the first one, or one after a reconnect): send the opening frames. */
  opened(send: (frame: object) => void): void;
  frame(msg: Record<string, unknown>): void;
  /** The socket dropped; the connection reconnects and calls `opened` again. */
  dropped(): void;
  /** No more sockets: `disconnect()` or a permanent failure (refused credentials, session ended). */
  ended(error: KalamError): void;
}

/**
 * The state of the client's WebSocket (HTTP queries do not use it):
 * - `idle`: no WebSocket opened yet (nothing subscribed so far);
 * - `connecting`: opening and authenticating it (for a `subscribe`/`live` call);
 * - `connected`: authenticated; subscriptions receive changes;
 * - `reconnecting`: it dropped (server restart, network, SLOW_CONSUMER) and the SDK retries with backoff,
 *   resuming every subscription from the last `_seq` it saw;
 * - `disconnected`: no WebSocket and no retrying: after `disconnect()`, after a permanent failure (the
 *   session was ended by a password change or DROP USER, the credentials were refused), or after a
 *   `subscribe`/`live` call could not connect (that call rejected; the next one tries again).
 */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface ConnectionStateInfo {
  /** `reconnecting`: the attempt about to be made (1 after the drop); `connected` after a drop: the attempts it took. */
  readonly attempt?: number;
  /** Why: the drop (`reconnecting`), the failure (`disconnected`). */
  readonly error?: KalamError;
}

export type ConnectionStateListener = (state: ConnectionState, info?: ConnectionStateInfo) => void;

const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];
/** A socket that is not authenticated within this time is given up (a server that accepts but never answers). */
const OPEN_TIMEOUT_MS = 15_000;

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

function closeReason(ev: unknown): string {
  const reason = typeof ev === 'object' && ev !== null && 'reason' in ev ? String((ev as { reason: unknown }).reason) : '';
  const code = closeCode(ev);
  return `${code !== 0 ? ` (${code}${reason !== '' ? ` ${reason}` : ''})` : ''}`;
}

/** The server refused the token on the socket (it may be stale: a login may still work). */
class SocketAuthError extends KalamError {}

export class LiveConnection {
  /** The authenticated socket, or null. */
  private socket: SocketLike | null = null;
  private connecting: Promise<void> | null = null;
  private readonly subs = new Map<string, LiveSubscription>();
  /** Channels, each with the socket it was last opened on. */
  private readonly channels = new Map<string, { channel: LiveChannel; sentOn: unknown }>();
  /** Reconnect attempts made since the last drop. */
  private attempt = 0;
  private closed = false;
  /** Bumped by close(): an open started before it is discarded when it completes. */
  private generation = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners = new Set<ConnectionStateListener>();
  state: ConnectionState = 'idle';
  /** Reconnections so far (tests and diagnostics): transitions from `reconnecting` to `connected`. */
  reconnects = 0;

  constructor(private readonly wsUrl: string, private readonly tokens: TokenSource, private factory: SocketFactory | null = null) {}

  onState(listener: ConnectionStateListener): () => void {
    // Wrapped, so the same function added twice is two listeners and each unsubscribe removes its own.
    const entry: ConnectionStateListener = (state, info) => listener(state, info);
    this.listeners.add(entry);
    return () => { this.listeners.delete(entry); };
  }

  async add(sub: LiveSubscription): Promise<void> {
    this.closed = false; // a subscribe after disconnect() opens the socket again
    this.subs.set(sub.id, sub);
    try {
      await this.ensureOpen();
    } catch (error) {
      this.subs.delete(sub.id);
      throw error;
    }
    this.sendSubscribe(sub); // unless opening the socket already sent it
  }

  remove(id: string): void {
    if (!this.subs.delete(id)) return;
    if (this.socket !== null && this.socket.readyState === 1) this.socket.send(JSON.stringify({ type: 'unsubscribe', subscription_id: id }));
  }

  /**
   * Adds a channel and opens the socket if needed (rejects, without keeping the channel, when it
   * cannot connect); the channel is opened on this socket and on every one after a reconnect.
   */
  async addChannel(channel: LiveChannel): Promise<void> {
    this.closed = false;
    const entry = { channel, sentOn: null as unknown };
    this.channels.set(channel.id, entry);
    try {
      await this.ensureOpen();
    } catch (error) {
      if (this.channels.get(channel.id) === entry) this.channels.delete(channel.id);
      throw error;
    }
    this.openChannel(entry);
  }

  removeChannel(id: string): void {
    this.channels.delete(id);
  }

  /** Sends a frame on the authenticated socket; false when there is none (the channel's `opened` catches up). */
  send(frame: object): boolean {
    if (this.socket === null || this.socket.readyState !== 1) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private openChannel(entry: { channel: LiveChannel; sentOn: unknown }): void {
    const socket = this.socket;
    if (socket === null || entry.sentOn === socket) return;
    entry.sentOn = socket;
    entry.channel.opened((frame) => socket.send(JSON.stringify(frame)));
  }

  nextBatch(id: string, lastSeq: string | undefined): void {
    this.socket?.send(JSON.stringify({ type: 'next_batch', subscription_id: id, ...(lastSeq ? { last_seq_id: lastSeq } : {}) }));
  }

  close(): void {
    this.closed = true;
    this.generation++;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    this.subs.clear();
    this.connecting = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'client disconnect');
    this.setState('disconnected');
    this.endChannels(new KalamError('DISCONNECTED', 'The client was disconnected (disconnect())'));
  }

  private endChannels(error: KalamError): void {
    const channels = [...this.channels.values()];
    this.channels.clear();
    for (const { channel } of channels) channel.ended(error);
  }

  private setState(state: ConnectionState, info?: ConnectionStateInfo): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of [...this.listeners]) {
      try {
        listener(state, info);
      } catch (error) {
        // A listener's bug surfaces as an uncaught error, without leaving the connection half-updated.
        queueMicrotask(() => { throw error; });
      }
    }
  }

  private ensureOpen(): Promise<void> {
    if (this.socket !== null && this.socket.readyState === 1) return Promise.resolve();
    if (this.connecting === null) {
      const opening: Promise<void> = this.open().finally(() => { if (this.connecting === opening) this.connecting = null; });
      this.connecting = opening;
    }
    return this.connecting;
  }

  private async open(): Promise<void> {
    const generation = this.generation;
    if (this.state !== 'reconnecting') this.setState('connecting');
    try {
      try {
        await this.openSocket(generation);
      } catch (error) {
        // A token the socket refused may be stale (tokens issued before a role change stop working):
        // with credentials to log in again, try once more with a fresh one.
        if (!(error instanceof SocketAuthError) || !this.tokens.renewable || generation !== this.generation) throw error;
        await this.openSocket(generation);
      }
    } catch (error) {
      const failure = error instanceof KalamError ? error : new KalamError('CONNECTION_FAILED', String(error));
      if (generation === this.generation && this.state === 'connecting') this.setState('disconnected', { error: failure });
      throw failure;
    }
  }

  private async openSocket(generation: number): Promise<void> {
    this.factory ??= await defaultSocketFactory();
    const token = await this.tokens.token();
    if (generation !== this.generation) throw disconnectedError();
    const socket = this.factory(this.wsUrl);
    await new Promise<void>((resolve, reject) => {
      let authed = false;
      let settled = false;
      const fail = (error: KalamError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try { socket.close(); } catch { /* already closed */ }
        reject(error);
      };
      const timer = setTimeout(() => fail(new KalamError('CONNECTION_FAILED', `WebSocket ${this.wsUrl}: not authenticated within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
      socket.onopen = () => socket.send(JSON.stringify({ type: 'authenticate', method: 'jwt', token }));
      socket.onerror = () => { if (!authed) fail(new KalamError('CONNECTION_FAILED', `WebSocket connection to ${this.wsUrl} failed`)); };
      socket.onclose = (ev) => {
        if (!authed) fail(new KalamError('CONNECTION_FAILED', `WebSocket closed before authentication${closeReason(ev)}`));
        else this.onDropped(socket, ev);
      };
      socket.onmessage = (ev) => {
        let msg: ServerMessage;
        try {
          msg = JSON.parse(String(ev.data)) as ServerMessage;
        } catch {
          return; // not the protocol: ignored
        }
        if (authed) return this.dispatch(msg);
        if (msg.type === 'auth_success') {
          if (generation !== this.generation) return fail(disconnectedError());
          authed = true;
          settled = true;
          clearTimeout(timer);
          this.connected(socket);
          resolve();
        } else if (msg.type === 'auth_error') {
          this.tokens.invalidate();
          fail(new SocketAuthError('INVALID_CREDENTIALS', msg.message ?? 'Authentication failed'));
        }
      };
    });
  }

  /** A socket authenticated: it becomes the connection, and every subscription is (re)sent on it. */
  private connected(socket: SocketLike): void {
    const previous = this.socket;
    this.socket = socket;
    if (previous !== null && previous !== socket) previous.close(1000, 'replaced');
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const wasReconnecting = this.state === 'reconnecting';
    const attempts = this.attempt;
    this.attempt = 0;
    if (wasReconnecting) this.reconnects++;
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
    for (const entry of this.channels.values()) this.openChannel(entry);
    this.setState('connected', wasReconnecting ? { attempt: Math.max(attempts, 1) } : undefined);
  }

  private dispatch(msg: ServerMessage): void {
    const channelId = msg.type === 'error' ? msg.subscription_id : (msg as { id?: unknown }).id;
    const channel = typeof channelId === 'string' ? this.channels.get(channelId) : undefined;
    if (channel !== undefined) return channel.channel.frame(msg as unknown as Record<string, unknown>);
    const sub = msg.subscription_id !== undefined ? this.subs.get(msg.subscription_id) : undefined;
    if (sub === undefined) return;
    if (msg.type === 'subscription_ack' && sub.resumingOn === this.socket) sub.resumingOn = null;
    if (msg.type === 'error') {
      if (msg.code === 'SLOW_CONSUMER') return; // the server closes next; the reconnect resumes
      if (sub.resumingOn !== null && sub.resumingOn === this.socket && isResumeRefusal(msg)) {
        // Subscribe again without `from`: a snapshot of what the subscription matches now.
        sub.resumingOn = null;
        sub.lastSeq = null;
        sub.sentOn = null;
        sub.snapshotOnly = true; // not the caller's own `from` either: the server refused a resume
        sub.reset();
        this.sendSubscribe(sub);
        return;
      }
      sub.settle(new KalamError(msg.code ?? 'PROTOCOL', msg.message ?? 'Subscription failed'));
      this.subs.delete(sub.id);
    }
    sub.onMessage(msg);
  }

  private onDropped(socket: SocketLike, ev: unknown): void {
    if (socket !== this.socket) return; // replaced, or closed by close()
    this.socket = null;
    if (this.closed) return;
    for (const { channel } of this.channels.values()) channel.dropped();
    const ended = SESSION_ENDED[closeCode(ev)];
    if (ended !== undefined) return this.fail(new KalamError(ended.code, ended.message));
    this.setState('reconnecting', { attempt: 1, error: new KalamError('CONNECTION_LOST', `The WebSocket connection was lost${closeReason(ev)}`) });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    this.attempt++;
    this.reconnectTimer = setTimeout(() => void this.reconnect(), delay);
  }

  private async reconnect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.closed) return;
    const generation = this.generation;
    try {
      await this.ensureOpen();
    } catch (error) {
      if (generation !== this.generation || this.closed || this.socket !== null || this.reconnectTimer !== null) return;
      // Credentials that no longer work will not start working by retrying them.
      if (error instanceof KalamError && error.code === 'INVALID_CREDENTIALS') return this.fail(error);
      this.scheduleReconnect();
    }
  }

  /** A permanent failure: every subscription ends with `error` (their onError handlers run) and no retrying. */
  private fail(error: KalamError): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'client gave up');
    this.setState('disconnected', { error });
    const subs = [...this.subs.values()];
    this.subs.clear();
    this.endChannels(error);
    for (const sub of subs) {
      sub.settle(error);
      sub.onMessage({ type: 'error', subscription_id: sub.id, code: error.code, message: error.message });
    }
  }

  /** (Re)subscribes on the current socket, once per socket: from the last `_seq` seen once there is one, else with the original options. */
  private sendSubscribe(sub: LiveSubscription): void {
    const socket = this.socket;
    if (socket === null || sub.sentOn === socket) return;
    sub.sentOn = socket;
    const options: Record<string, unknown> = {};
    // The caller's own `from` is a resume too: refused, it is dropped for a snapshot the same way.
    sub.resumingOn = sub.lastSeq !== null || (sub.options.from !== undefined && sub.snapshotOnly !== true) ? socket : null;
    if (sub.lastSeq !== null) options.from = sub.lastSeq;
    else {
      if (sub.options.batchSize !== undefined) options.batch_size = sub.options.batchSize;
      if (sub.options.lastRows !== undefined) options.last_rows = sub.options.lastRows;
      if (sub.options.from !== undefined && sub.snapshotOnly !== true) options.from = sub.options.from;
    }
    const withOptions = sub.lastSeq !== null || Object.keys(options).length > 0 || sub.options.batchSize !== undefined;
    socket.send(JSON.stringify({
      type: 'subscribe',
      subscription: { id: sub.id, sql: sub.sql, ...(withOptions ? { options } : {}) },
    }));
  }
}

/** The server's refusal of a `from` it cannot serve exactly (docs/protocol.md: "Cannot resume ..."). */
function isResumeRefusal(msg: ServerMessage): boolean {
  return msg.code === 'INVALID_SQL' && typeof msg.message === 'string' && msg.message.startsWith('Cannot resume');
}

function disconnectedError(): KalamError {
  return new KalamError('DISCONNECTED', 'The client was disconnected (disconnect()) while connecting');
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
