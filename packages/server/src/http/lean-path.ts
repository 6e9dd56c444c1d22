/**
 * The lean HTTP/1.1 path (docs/decisions/0026-lean-http-path.md): GET and POST requests with a
 * Content-Length body (or none) are read straight from the socket with llhttp, the parser node:http
 * itself uses, and answered with one write, without IncomingMessage, ServerResponse and their
 * streams; the routes are the same (server.ts `handle`). node:http keeps the port and everything
 * else: OPTIONS, export downloads (streamed files), WebSocket upgrades, chunked bodies, `Expect`,
 * bodies over body_bytes_max, requests without a Host. Such a request is handed to node:http with
 * its raw bytes put back on the socket (`unshift`), once the responses before it are written; the
 * connection then stays with node:http.
 *
 * Limits come from the same places as node:http's: the parser is initialized like node:http's
 * (max header size -> HPE_HEADER_OVERFLOW -> 431; malformed -> 400; both via the server's
 * 'clientError' listener), and sits in the server's own connections list while it reads a request's
 * headers, so node:http's periodic check enforces headersTimeout (and requestTimeout) on it. After
 * the headers the body is read here, bounded by the body timeout and what is left of requestTimeout.
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { responseHead } from './response-head.js';
import type { LeanIncoming } from './body.js';

interface ParserInstance {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number, connections?: unknown): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  remove(): void;
  close(): void;
  [callback: number]: unknown;
  socket?: Socket;
}
interface ParserClass {
  new (): ParserInstance;
  readonly REQUEST: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}
const httpCommon = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass; methods: readonly string[] };
const HTTPParser = httpCommon.HTTPParser;
const POST = httpCommon.methods.indexOf('POST');
const GET = httpCommon.methods.indexOf('GET');
/** llhttp's answer to an on_headers_complete that returns 2: no body, stop after the headers. */
const STOP_AFTER_HEADERS = 2;
/** Requests read ahead on one connection before reading stops until responses have gone out. */
const PIPELINE_MAX = 16;
/** Responses up to this size are copied into one Buffer for one write (no cork, no writev). */
const SINGLE_WRITE_BYTES = 16 * 1024;

/** A request read whole from the socket. */
export interface LeanRequest extends LeanIncoming {
  /** performance.now() when its headers were complete. */
  readonly started: number;
}

/** The response to one lean request. */
export interface LeanResponse {
  readonly status: number;
  /** Header fields as a flat list [name, value, ...] (Content-Length among them). */
  readonly fields: readonly string[];
  readonly chunks: readonly Buffer[];
  /** Called once the response has been handed to the socket (the request log, metrics). */
  written(): void;
}

export interface LeanOptions {
  readonly bodyBytesMax: number;
  readonly bodyTimeoutMs: number;
  /** Whether the lean path serves this route (GET and POST only); the rest goes to node:http. */
  accepts(method: 'GET' | 'POST', path: string): boolean;
  /** A body that does not arrive in time: the response to send (the caller's 408 envelope). */
  bodyTimedOut(request: LeanRequest): LeanResponse;
  serve(request: LeanRequest): Promise<LeanResponse>;
}

/** Shared by the connections of one server. */
interface LeanContext {
  readonly server: Server;
  readonly options: LeanOptions;
  /** node:http's own 'connection' listener: a hand-over calls it. */
  readonly nodeConnection: (socket: Socket) => void;
  /** node:http's connections list (headersTimeout/requestTimeout checks). */
  readonly connectionsList: unknown;
  readonly live: Set<LeanConnection>;
  closing: boolean;
}

/**
 * Takes over the server's 'connection' event (node:http's listener is kept for hand-overs) and
 * makes closeIdleConnections/closeAllConnections reach lean connections too. Returns false and
 * changes nothing if this Node does not look like the one this was written against.
 */
export function installLeanPath(server: Server, options: LeanOptions): boolean {
  const listeners = server.listeners('connection');
  const kConnections = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const connectionsList = kConnections === undefined ? undefined : (server as unknown as Record<symbol, unknown>)[kConnections];
  if (listeners.length !== 1 || connectionsList === undefined || typeof HTTPParser !== 'function' || POST < 0) return false;
  const nodeConnection = listeners[0] as (socket: Socket) => void;
  const context: LeanContext = { server, options, nodeConnection, connectionsList, live: new Set(), closing: false };
  server.removeListener('connection', nodeConnection);
  server.on('connection', (socket: Socket) => {
    // Closing: new connections go to node:http, which answers them and lets net.Server finish.
    if (context.closing) nodeConnection.call(server, socket);
    else new LeanConnection(context, socket);
  });
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = (): void => {
    context.closing = true;
    closeIdle();
    for (const connection of [...context.live]) connection.closeWhenIdle();
  };
  const closeAll = server.closeAllConnections.bind(server);
  server.closeAllConnections = (): void => {
    context.closing = true;
    closeAll();
    for (const connection of [...context.live]) connection.socket.destroy();
  };
  return true;
}

interface Pending {
  response: LeanResponse | null;
  keepAlive: boolean;
}

interface Head {
  versionMajor: number;
  versionMinor: number;
  headers: string[];
  method: number;
  url: string;
  upgrade: boolean;
  keepAlive: boolean;
}

class LeanConnection {
  private readonly parser = new HTTPParser();
  private readonly resource = {};
  /** Bytes received and not yet parsed. */
  private unread: Buffer | null = null;
  /** The raw bytes of the request being read, for a hand-over. */
  private requestBytes: Buffer[] = [];
  private headerFields: string[] = [];
  private headerUrl = '';
  private head: Head | null = null;
  /** Set while a request's body is being read. */
  private body: { chunks: Buffer[]; missing: number; request: Omit<LeanRequest, 'leanBody'>; keepAlive: boolean; timer: NodeJS.Timeout | null } | null = null;
  private readonly pending: Pending[] = [];
  /** Parser initialized for the next request (done at its first byte, as node:http's message begin). */
  private parserReady = false;
  /** Reading is paused: responses to write first, or waiting to hand over, or closing. */
  private paused = false;
  private state: 'lean' | 'handing-over' | 'closing' | 'gone' = 'lean';
  /** A parse error waiting for the responses before it to be written. */
  private parseError: Error | null = null;
  private keepAliveTimerSet = false;

  constructor(private readonly context: LeanContext, readonly socket: Socket) {
    context.live.add(this);
    this.parser[HTTPParser.kOnHeaders] = (fields: string[], url: string): void => {
      for (const field of fields) this.headerFields.push(field);
      this.headerUrl += url;
    };
    this.parser[HTTPParser.kOnHeadersComplete] = (versionMajor: number, versionMinor: number, headers: string[] | undefined, method: number,
      url: string | undefined, _status: unknown, _message: unknown, upgrade: boolean, keepAlive: boolean): number => {
      this.head = {
        versionMajor, versionMinor, method, upgrade, keepAlive,
        headers: headers ?? this.headerFields, url: url ?? this.headerUrl,
      };
      this.headerFields = [];
      this.headerUrl = '';
      return STOP_AFTER_HEADERS;
    };
    this.parser[HTTPParser.kOnBody] = (): void => undefined;
    this.parser[HTTPParser.kOnMessageComplete] = (): void => undefined;
    // As node:http: a connection that sends nothing is cut off by headersTimeout.
    this.initParser();
    this.parser.socket = socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    socket.on('timeout', this.onTimeout);
  }

  private initParser(): void {
    this.parser.initialize(HTTPParser.REQUEST, this.resource, 0, 0, this.context.connectionsList);
    this.parserReady = true;
  }

  private readonly onData = (chunk: Buffer): void => {
    // Closing after a last response or an error: whatever else the client sends is not read.
    if (this.state === 'closing' || this.state === 'gone') return;
    this.unread = this.unread === null ? chunk : Buffer.concat([this.unread, chunk]);
    if (!this.paused) this.readRequests();
  };

  /** Reads every whole request in `unread`, stopping at a hand-over, an error or backpressure. */
  private readRequests(): void {
    while (this.unread !== null && this.state === 'lean' && !this.paused) {
      if (this.body !== null) {
        if (!this.readBody()) return;
        continue;
      }
      if (!this.parserReady) this.initParser();
      const data = this.unread;
      const parsed = this.parser.execute(data);
      if (typeof parsed !== 'number') {
        this.failParse(parsed);
        return;
      }
      const head = this.head;
      this.requestBytes.push(parsed === data.length ? data : data.subarray(0, parsed));
      this.unread = parsed === data.length ? null : data.subarray(parsed);
      if (head === null) return;
      this.head = null;
      // Out of node:http's connections list until the next request's first byte: the body has its
      // own deadline, and an answered request is not one to time out.
      this.parser.remove();
      this.parserReady = false;
      this.startRequest(head);
    }
  }

  private startRequest(head: Head): void {
    const lean = this.leanRequest(head);
    if (lean === null) {
      this.handOver();
      return;
    }
    this.keepAliveTimer(false);
    const started = performance.now();
    const { options } = this.context;
    const request = { method: lean.method, url: head.url, headers: lean.headers, socket: this.socket, started };
    this.body = { chunks: [], missing: lean.length, request, keepAlive: head.keepAlive, timer: null };
    if (this.readBody()) return;
    // The rest of the body has the body timeout, and no more than node:http's requestTimeout, to arrive.
    const requestMs = this.context.server.requestTimeout;
    const ms = requestMs > 0 ? Math.min(options.bodyTimeoutMs, requestMs) : options.bodyTimeoutMs;
    this.body.timer = setTimeout(() => this.bodyTimedOut(), ms);
  }

  /** Takes body bytes from `unread`; true once the request is whole (and dispatched). */
  private readBody(): boolean {
    const body = this.body!;
    const data = this.unread;
    if (data !== null && body.missing > 0) {
      const take = Math.min(body.missing, data.length);
      const piece = take === data.length ? data : data.subarray(0, take);
      body.chunks.push(piece);
      this.requestBytes.push(piece);
      body.missing -= take;
      this.unread = take === data.length ? null : data.subarray(take);
    }
    if (body.missing > 0) return false;
    if (body.timer !== null) clearTimeout(body.timer);
    this.body = null;
    this.requestBytes = [];
    const bytes = body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks);
    this.dispatch({ ...body.request, leanBody: bytes }, body.keepAlive);
    return true;
  }

  private dispatch(request: LeanRequest, keepAlive: boolean): void {
    const slot: Pending = { response: null, keepAlive: keepAlive && !this.context.closing };
    this.pending.push(slot);
    if (!slot.keepAlive) this.stopReading('closing');
    else if (this.pending.length >= PIPELINE_MAX || this.socket.writableNeedDrain) this.pause();
    this.context.options.serve(request).then((response) => {
      slot.response = response;
      // The client went away: nobody reads the answer, but the request is still logged.
      if (this.state === 'gone' || this.socket.destroyed) response.written();
      else this.flush();
    }, () => {
      // serve() answers every error itself; a rejection means the connection is beyond saving.
      this.socket.destroy();
    });
  }

  /** Writes the responses that are ready, in request order, in one write. */
  private flush(): void {
    if (this.state === 'gone' || this.socket.destroyed) return;
    let close = false;
    const written: LeanResponse[] = [];
    const parts: Array<string | Buffer> = [];
    let bytes = 0;
    while (this.pending.length > 0 && this.pending[0]!.response !== null && !close) {
      const slot = this.pending.shift()!;
      const response = slot.response!;
      const { head, close: last } = responseHead(response.status, response.fields, {
        keepAlive: slot.keepAlive && !this.context.closing, keepAliveTimeoutMs: this.context.server.keepAliveTimeout,
      });
      parts.push(head);
      bytes += head.length;
      for (const chunk of response.chunks) {
        parts.push(chunk);
        bytes += chunk.length;
      }
      written.push(response);
      close = last;
    }
    if (written.length === 0) return;
    this.write(parts, bytes);
    for (const response of written) response.written();
    if (close) {
      this.state = 'gone';
      this.socket.destroySoon();
      return;
    }
    this.afterWrite();
  }

  /** One write: small responses are copied into one Buffer, large ones go out as a writev. */
  private write(parts: ReadonlyArray<string | Buffer>, bytes: number): void {
    if (bytes <= SINGLE_WRITE_BYTES) {
      const out = Buffer.allocUnsafe(bytes);
      let at = 0;
      for (const part of parts) at += typeof part === 'string' ? out.write(part, at, 'latin1') : part.copy(out, at);
      this.socket.write(out);
      return;
    }
    this.socket.cork();
    for (const part of parts) {
      if (typeof part === 'string') this.socket.write(part, 'latin1');
      else this.socket.write(part);
    }
    this.socket.uncork();
  }

  /** After a write or a drain: resume reading, or do the hand-over, parse error or close that waited for the responses. */
  private afterWrite(): void {
    if (this.state === 'gone') return;
    if (this.socket.writableNeedDrain) {
      // Backpressure: nothing more is read until the client has taken what was written.
      if (this.state === 'lean') this.pause();
      return;
    }
    if (this.pending.length > 0) {
      if (this.state === 'lean' && this.paused && this.pending.length < PIPELINE_MAX) this.resume();
      return;
    }
    if (this.state === 'handing-over') {
      this.completeHandOver();
      return;
    }
    if (this.parseError !== null) {
      this.reportParseError(this.parseError);
      return;
    }
    if (this.state === 'closing') {
      this.state = 'gone';
      this.socket.destroySoon();
      return;
    }
    if (this.context.closing && this.idle()) {
      this.closeWhenIdle();
      return;
    }
    if (this.paused) this.resume();
    if (this.pending.length === 0 && this.body === null && this.requestBytes.length === 0 && this.unread === null) this.keepAliveTimer(true);
  }

  private idle(): boolean {
    return this.pending.length === 0 && this.body === null && this.requestBytes.length === 0 && this.unread === null;
  }

  private readonly onDrain = (): void => {
    if (this.state !== 'gone') this.afterWrite();
  };

  /** What the lean path needs of a request it serves, or null to hand it to node:http. */
  private leanRequest(head: Head): { method: 'GET' | 'POST'; length: number; headers: LeanIncoming['headers'] } | null {
    const method = head.method === POST ? 'POST' : head.method === GET ? 'GET' : null;
    if (method === null || head.upgrade || head.versionMajor !== 1) return null;
    const query = head.url.indexOf('?');
    if (!this.context.options.accepts(method, query < 0 ? head.url : head.url.slice(0, query))) return null;
    let length: string | undefined;
    let authorization: string | undefined;
    let contentType: string | undefined;
    let host = false;
    const fields = head.headers;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!.toLowerCase();
      const value = fields[i + 1]!;
      switch (name) {
        // A repeated field: node:http decides which one counts.
        case 'content-length':
          if (length !== undefined) return null;
          length = value;
          break;
        case 'authorization':
          if (authorization !== undefined) return null;
          authorization = value;
          break;
        case 'content-type':
          if (contentType !== undefined) return null;
          contentType = value;
          break;
        case 'host':
          host = true;
          break;
        // Bodies in chunks, 100-continue and anything that changes the connection go to node:http.
        case 'transfer-encoding':
        case 'expect':
        case 'upgrade':
          return null;
        default:
      }
    }
    if (length !== undefined && !/^\d{1,10}$/.test(length.trim())) return null;
    const bytes = length === undefined ? 0 : Number(length.trim());
    // node:http refuses an HTTP/1.1 request without Host (400); and reads and refuses a body over the limit (413).
    if ((head.versionMinor === 1 && !host) || bytes > this.context.options.bodyBytesMax) return null;
    const headers: LeanIncoming['headers'] = { authorization, 'content-type': contentType, 'content-length': length };
    return { method, length: bytes, headers };
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private resume(): void {
    this.paused = false;
    this.socket.resume();
    this.readRequests();
  }

  private stopReading(state: 'handing-over' | 'closing'): void {
    this.state = state;
    this.pause();
  }

  private handOver(): void {
    this.stopReading('handing-over');
    this.afterWrite();
  }

  /** The request being read (and whatever followed it) goes back on the socket, and the socket to node:http. */
  private completeHandOver(): void {
    const { socket, context } = this;
    const bytes = this.unread === null ? this.requestBytes : [...this.requestBytes, this.unread];
    this.detach();
    // The client half-closed and the stream has ended: nothing can be put back. node:http would end
    // such a socket before answering too.
    if (socket.readableEnded) {
      socket.destroy();
      return;
    }
    // node:http reads a socket it has "consumed" natively, past the bytes put back here: it must read through the stream.
    const handle = (socket as Socket & { _handle?: { _consumed?: boolean } | null })._handle;
    if (handle !== null && handle !== undefined) handle._consumed = true;
    if (bytes.length > 0) socket.unshift(bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes));
    context.nodeConnection.call(context.server, socket);
    socket.resume();
  }

  private detach(): void {
    const { socket } = this;
    this.state = 'gone';
    this.context.live.delete(this);
    if (this.body?.timer) clearTimeout(this.body.timer);
    this.body = null;
    this.keepAliveTimer(false);
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
    socket.removeListener('drain', this.onDrain);
    socket.removeListener('timeout', this.onTimeout);
    this.parser.remove();
    this.parser.socket = undefined;
    const parser = this.parser;
    // As node:http's freeParser: the parser's own stack may still be running.
    setImmediate(() => parser.close());
  }

  private failParse(error: Error): void {
    this.stopReading('closing');
    this.unread = null;
    this.parseError = error;
    this.afterWrite();
  }

  /** As node:http does with a parse error: the server's 'clientError' listener answers and destroys the socket. */
  private reportParseError(error: Error): void {
    this.parseError = null;
    this.state = 'gone';
    if (!this.context.server.emit('clientError', error, this.socket)) this.socket.destroy();
  }

  private bodyTimedOut(): void {
    const body = this.body;
    if (body === null || this.state !== 'lean') return;
    this.body = null;
    this.unread = null;
    this.requestBytes = [];
    const slot: Pending = { response: this.context.options.bodyTimedOut({ ...body.request, leanBody: Buffer.alloc(0) }), keepAlive: false };
    this.pending.push(slot);
    this.stopReading('closing');
    this.flush();
  }

  /** Node's keep-alive: an idle connection closes keepAliveTimeout + 1 s after its last response. */
  private keepAliveTimer(on: boolean): void {
    if (on) {
      const ms = this.context.server.keepAliveTimeout;
      if (ms > 0) {
        this.socket.setTimeout(ms + 1000);
        this.keepAliveTimerSet = true;
      }
    } else if (this.keepAliveTimerSet) {
      this.socket.setTimeout(0);
      this.keepAliveTimerSet = false;
    }
  }

  private readonly onTimeout = (): void => {
    this.socket.destroy();
  };

  /** Shutdown: an idle connection closes now, a busy one after its last response. */
  closeWhenIdle(): void {
    if (this.state === 'gone') return;
    if (this.idle()) {
      this.state = 'gone';
      this.socket.destroy();
    }
  }

  private readonly onEnd = (): void => {
    // The client is done sending. As node:http (httpAllowHalfOpen false): a request cut short is a
    // 400 (parser.finish()); otherwise our side ends at once, responses still in flight included,
    // so a client that goes away is seen to be gone (a topic long-poll stops and gives back).
    if (this.state === 'gone' || this.state === 'handing-over') return;
    if (this.body !== null || this.requestBytes.length > 0 || this.unread !== null) {
      const error = Object.assign(new Error('Parse Error: the request ended early'), { code: 'HPE_INVALID_EOF_STATE' });
      if (this.body?.timer) clearTimeout(this.body.timer);
      this.body = null;
      this.reportParseError(error);
      return;
    }
    this.state = 'gone';
    this.socket.end();
  };

  private readonly onError = (): void => {
    // A reset or a failed write: nothing more can be said on this socket.
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    if (this.body?.timer) clearTimeout(this.body.timer);
    this.body = null;
    this.pending.length = 0;
    this.detach();
  };
}
