/**
 * A WebSocket test client for the live-query protocol: records every frame it receives (parsed
 * JSON), and lets a test wait, with a timeout, for the first message matching a predicate, for N
 * of them, or assert that none arrives within a window. Frames that are not JSON are recorded as
 * `{type: '<non-json>', raw}` so a test can fail on them instead of crashing the client.
 */
import WebSocket from 'ws';
import type { Socket } from 'node:net';
import { authHeader, type Auth } from './harness.js';

export type Row = Record<string, unknown>;

export interface SchemaEntry {
  name: string;
  data_type: unknown;
  index: number;
  flags?: string[];
}

export interface BatchControl {
  batch_num: number;
  has_more: boolean;
  status: string;
  last_seq_id: string;
}

export interface WsMessage {
  type: string;
  subscription_id?: string;
  code?: string;
  message?: string;
  user?: string;
  role?: string;
  total_rows?: number;
  schema?: SchemaEntry[];
  batch_control?: BatchControl;
  change_type?: string;
  rows?: Row[];
  old_values?: Row[];
  flush?: { table: string; row_count: number; files: string[]; flushed_at: number };
  last_seq_id?: string;
  raw?: string;
  [key: string]: unknown;
}

export type Predicate = (m: WsMessage) => boolean;

export interface CloseInfo {
  code: number;
  reason: string;
}

interface Waiter {
  /** Next message index to test. */
  next: number;
  readonly found: WsMessage[];
  readonly pred: Predicate;
  readonly count: number;
  readonly resolve: (found: WsMessage[]) => void;
}

const DEFAULT_TIMEOUT = 5_000;

export class LiveClient {
  readonly messages: WsMessage[] = [];
  /** Messages exactly as received (multi-row inserts not split). */
  readonly frames: WsMessage[] = [];
  /** Bytes of text frames received. */
  bytesReceived = 0;
  readonly closed: Promise<CloseInfo>;
  closeInfo: CloseInfo | null = null;
  private readonly waiters = new Set<Waiter>();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise<CloseInfo>((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data: WebSocket.RawData) => {
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      this.bytesReceived += text.length;
      let msg: WsMessage;
      try {
        const parsed: unknown = JSON.parse(text);
        msg = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as WsMessage) : { type: '<non-object>', raw: text };
      } catch {
        msg = { type: '<non-json>', raw: text.slice(0, 500) };
      }
      this.frames.push(msg);
      // The server may put the consecutive inserts of one commit into one message with several rows;
      // tests reason per row, so such a message is recorded as one insert message per row (the frames
      // as sent are kept in `frames`).
      if (msg.type === 'change' && msg.change_type === 'insert' && Array.isArray(msg.rows) && msg.rows.length > 1) {
        for (const row of msg.rows) this.messages.push({ ...msg, rows: [row] });
      } else {
        this.messages.push(msg);
      }
      this.check();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a socket (optionally with an Authorization header on the upgrade); resolves once open. */
  static async open(url: string, auth: Auth = null, timeoutMs = DEFAULT_TIMEOUT): Promise<LiveClient> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { headers: authHeader(auth), perMessageDeflate: false });
    const client = new LiveClient(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('WebSocket did not open in time')), timeoutMs);
      ws.once('open', () => { clearTimeout(timer); resolve(); });
      ws.once('error', (error: Error) => { clearTimeout(timer); reject(error); });
    });
    return client;
  }

  /** Opens with an Authorization header and waits for auth_success (throws on anything else). */
  static async connect(url: string, auth: Auth): Promise<LiveClient> {
    const client = await LiveClient.open(url, auth);
    const first = await client.waitFor((m) => m.type === 'auth_success' || m.type === 'auth_error');
    if (first.type !== 'auth_success') throw new Error(`authentication failed: ${JSON.stringify(first)}`);
    return client;
  }

  /** Index of the next message to arrive: pass it as `from` to wait only for later messages. */
  mark(): number {
    return this.messages.length;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' || Buffer.isBuffer(msg) ? msg : JSON.stringify(msg));
  }

  /** The first message at index >= from matching pred, waiting up to timeoutMs for it. */
  async waitFor(pred: Predicate, timeoutMs = DEFAULT_TIMEOUT, from = 0): Promise<WsMessage> {
    const [found] = await this.waitForCount(pred, 1, timeoutMs, from);
    return found!;
  }

  /** The first `count` messages at index >= from matching pred. */
  waitForCount(pred: Predicate, count: number, timeoutMs = DEFAULT_TIMEOUT, from = 0): Promise<WsMessage[]> {
    const now = this.matches(pred, from);
    if (now.length >= count) return Promise.resolve(now.slice(0, count));
    return new Promise<WsMessage[]>((resolve, reject) => {
      const waiter: Waiter = {
        next: this.messages.length, found: now, pred, count,
        resolve: (found) => { clearTimeout(timer); this.waiters.delete(waiter); resolve(found); },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const got = this.matches(pred, from).length;
        const tail = this.messages.slice(-5).map((m) => JSON.stringify(m).slice(0, 300)).join('\n  ');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} matching message(s) (got ${got}); `
          + `closed: ${JSON.stringify(this.closeInfo)}; last messages:\n  ${tail}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Waits `ms` and returns the messages at index >= from matching pred (for "nothing arrives" checks). */
  async collectFor(ms: number, pred: Predicate = () => true, from = this.mark()): Promise<WsMessage[]> {
    await sleep(ms);
    return this.matches(pred, from);
  }

  /** Sends msg and waits for the first later message matching pred. */
  async request(msg: unknown, pred: Predicate, timeoutMs = DEFAULT_TIMEOUT): Promise<WsMessage> {
    const from = this.mark();
    this.send(msg);
    return this.waitFor(pred, timeoutMs, from);
  }

  /** Sends a subscribe and waits for its subscription_ack or error. */
  async subscribe(id: string, sql: string, options?: Record<string, unknown>, timeoutMs = DEFAULT_TIMEOUT): Promise<WsMessage> {
    const subscription: Record<string, unknown> = { id, sql };
    if (options !== undefined) subscription.options = options;
    return this.request({ type: 'subscribe', subscription }, (m) => m.subscription_id === id && (m.type === 'subscription_ack' || m.type === 'error'), timeoutMs);
  }

  /** Subscribes and fails unless acknowledged; returns the ack. */
  async subscribeOk(id: string, sql: string, options?: Record<string, unknown>, timeoutMs = DEFAULT_TIMEOUT): Promise<WsMessage> {
    const reply = await this.subscribe(id, sql, options, timeoutMs);
    if (reply.type !== 'subscription_ack') throw new Error(`subscribe ${id} failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  /**
   * Reads every initial_data_batch of a subscription (asking with next_batch while has_more),
   * starting at message index `from`; returns the batches in order.
   */
  async loadAll(id: string, from = 0, timeoutMs = DEFAULT_TIMEOUT): Promise<WsMessage[]> {
    const batches: WsMessage[] = [];
    let cursor = from;
    for (;;) {
      const batch = await this.waitFor((m) => m.subscription_id === id && (m.type === 'initial_data_batch' || m.type === 'error'), timeoutMs, cursor);
      if (batch.type === 'error') throw new Error(`subscription ${id} failed while loading: ${JSON.stringify(batch)}`);
      batches.push(batch);
      cursor = this.messages.indexOf(batch, cursor) + 1;
      if (!batch.batch_control?.has_more) return batches;
      this.send({ type: 'next_batch', subscription_id: id, last_seq_id: batch.batch_control.last_seq_id });
    }
  }

  /** Messages of one subscription (from index `from`), optionally of one type. */
  of(id: string, type?: string, from = 0): WsMessage[] {
    return this.messages.slice(from).filter((m) => m.subscription_id === id && (type === undefined || m.type === type));
  }

  /** change messages of one subscription. */
  changes(id: string, from = 0): WsMessage[] {
    return this.of(id, 'change', from);
  }

  /** The underlying TCP socket (to pause reading and simulate a slow consumer). */
  get socket(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  async close(): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed;
    this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), 2_000);
    const info = await this.closed;
    clearTimeout(timer);
    return info;
  }

  /** Drops the TCP connection without a closing handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Resolves with the close info, or rejects if the socket is still open after timeoutMs. */
  async waitClosed(timeoutMs = DEFAULT_TIMEOUT): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms; last messages: ${JSON.stringify(this.messages.slice(-3))}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private matches(pred: Predicate, from: number): WsMessage[] {
    const out: WsMessage[] = [];
    for (let i = from; i < this.messages.length; i++) if (pred(this.messages[i]!)) out.push(this.messages[i]!);
    return out;
  }

  private check(): void {
    for (const w of [...this.waiters]) {
      while (w.next < this.messages.length && w.found.length < w.count) {
        const m = this.messages[w.next++]!;
        if (w.pred(m)) w.found.push(m);
      }
      if (w.found.length >= w.count) w.resolve(w.found.slice(0, w.count));
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { eventually } from './harness.js';
