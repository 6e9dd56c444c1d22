/**
 * The HTTP API: /health (also /v1/api/healthcheck), /v1/api/auth/login, /v1/api/auth/refresh,
 * /v1/api/auth/me, /v1/api/auth/logout, /v1/api/auth/status and /v1/api/sql on node:http.
 * This file is the only place errors become HTTP responses: ServerErrors map to their status and
 * the protocol envelope; anything else is logged and answered with a generic 500.
 */
import { timingSafeEqual } from 'node:crypto';
import { routeLabel, type Metrics } from '../util/metrics.js';
import { consoleFile } from './console-route.js';
import { principalOf, type Principal } from '../auth/access.js';
import { rawJsonAnswer } from '../util/raw-http.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { limitConnections } from './connection-limits.js';
import type { Duplex } from 'node:stream';
import { LimitError, ServerError, errorLine, isCorruptionError, isDiskFullError } from '../util/errors.js';
import type { StorageHealth } from '../storage/storage-health.js';
import type { Logger } from '../util/log.js';
import type { Config } from '../config/config.js';
import type { Authenticator } from '../auth/authenticator.js';
import { userInfo, type TokenService } from '../auth/tokens.js';
import type { Executor } from '../exec/executor.js';
import type { Catalog } from '../catalog/catalog.js';
import type { UserDef } from '../catalog/types.js';
import { parseJsonObject, readBody } from './body.js';
import { encodeSqlSuccess, type EncodedBody } from './sql-response.js';
import { BUILD_DATE, SERVER_VERSION } from './build-info.js';
import { isAdminRole } from '../catalog/types.js';
import { pipeline } from 'node:stream/promises';
import { EXPORTS_ROUTE_PREFIX, exportDownload, type ExportArchives, type ExportFile } from './export-route.js';

export interface HttpDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly auth: Authenticator;
  readonly tokens: TokenService;
  readonly executor: Executor;
  readonly catalog: Catalog;
  readonly storage: StorageHealth;
  /** POST /v1/api/topics/consume and /v1/api/topics/ack. */
  readonly topics?: TopicRoutes;
  /** GET /metrics, and every request counted. */
  readonly metrics?: Metrics;
  /** GET /v1/exports/{user}/{export_id}. */
  readonly exports?: ExportArchives;
}

export interface TopicRoutes {
  /** The response body, or (a consume's) JSON text already encoded as a Buffer. */
  /** `gone` aborts when the client disconnects: a long-poll stops waiting and gives back what it claimed. */
  consume(principal: Principal, body: Record<string, unknown>, gone?: AbortSignal, recheck?: () => void): Promise<unknown>;
  ack(principal: Principal, body: Record<string, unknown>): Promise<unknown>;
}

interface Handled {
  status: number;
  /** JSON.stringify'd when sent, unless `encoded` is given. */
  body: unknown;
  /** A body already encoded (SQL results, which may be large). */
  encoded?: EncodedBody;
  user?: string;
  /** Default application/json. */
  contentType?: string;
  headers?: Readonly<Record<string, string>>;
  /** The config key of the limit that refused the request, for the request log. */
  limit?: string;
  /** A file to stream as the body (an export archive), instead of JSON. */
  file?: ExportFile;
}

/**
 * The HTTP server, created and bound before the rest of the server exists (so a busy port fails the
 * start before anything is written to the data dir). Requests that arrive before `serve` wait for it.
 */
export interface HttpServer {
  readonly server: Server;
  /** Starts answering requests with these dependencies; call it once the upgrade listener is attached. */
  serve(deps: HttpDeps): void;
}

export function createHttpServer(config: Config, log: Logger): HttpServer {
  let ready!: (deps: HttpDeps) => void;
  const depsReady = new Promise<HttpDeps>((resolve) => {
    ready = resolve;
  });
  const server = createServer({
    // Node only checks headersTimeout and requestTimeout every connectionsCheckingInterval (30 s by
    // default); checking at a quarter of the shortest timeout, at most every second, closes a slow
    // socket within its timeout + 1 s as docs/configuration.md promises.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(Math.min(config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs) / 4))),
    headersTimeout: config.httpHeadersTimeoutMs,
    requestTimeout: config.httpRequestTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
  }, (req, res) => {
    const started = performance.now();
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    void depsReady.then(async (deps) => send(deps, req, res, await handle(deps, req, started), started)).catch((error: unknown) => {
      // Only a failure to write is left here (the client went away); the response is already under way.
      log.warn('response not sent', { error: String(error) });
      res.destroy();
    });
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => answerClientError(error, socket));
  limitConnections(server, config, log);
  // WebSocket upgrades that arrive while the server is starting wait too (a live client reconnecting
  // after a restart would otherwise get a 404 and back off); `serve` hands them to the upgrade
  // listener attached by then (the LiveServer).
  let serving = false;
  const held: Array<[IncomingMessage, Duplex, Buffer]> = [];
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!serving) held.push([req, socket, head]);
  });
  // node:http closes a CONNECT without an answer when nobody listens for it: this is not a proxy.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    socket.end(rawJsonAnswer('405 Method Not Allowed', { error: 'method_not_allowed', message: 'CONNECT is not supported: this server is not a proxy' }));
  });
  const serve = (deps: HttpDeps): void => {
    serving = true;
    ready(deps);
    for (const [req, socket, head] of held.splice(0)) {
      if (!socket.destroyed) server.emit('upgrade', req, socket, head);
    }
  };
  return { server, serve };
}

/**
 * Errors Node raises before a request reaches the handler: headers too slow (headersTimeout), the
 * whole request too slow (requestTimeout), malformed or oversized headers. Answered like Node's own
 * default (a status line, then close) but with the protocol's JSON envelope, unless a response is
 * already under way on the socket (writing then would corrupt it).
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent: boolean } | null })._httpMessage;
  if (error.code !== 'ECONNRESET' && socket.writable && (inFlight === undefined || inFlight === null || !inFlight.headersSent)) {
    const [status, reason, code, message] = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'REQUEST_TIMEOUT', 'The request was not received in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'BAD_REQUEST', 'Request headers are too large']
        : [400, 'Bad Request', 'BAD_REQUEST', 'Malformed HTTP request'];
    socket.write(rawJsonAnswer(`${status} ${reason}`, { status: 'error', results: [], took: 0, error: { code, message } }));
  }
  socket.destroy();
}

async function handle(deps: HttpDeps, req: IncomingMessage, started: number): Promise<Handled> {
  const path = (req.url ?? '/').split('?')[0]!;
  try {
    if ((path === '/health' || path === '/v1/api/healthcheck') && req.method === 'GET') {
      // Still 200 when degraded: the server answers reads, so a load balancer should keep it; the
      // body says why writes are refused. Fields are only added, never changed (docs/protocol.md).
      const degraded = deps.storage.healthFields();
      const status = degraded.storage === undefined && degraded.cold_storage === undefined ? 'healthy' : 'degraded';
      return { status: 200, body: { status, version: SERVER_VERSION, api_version: 'v1', build_date: BUILD_DATE, ...degraded } };
    }
    if ((path === '/ui' || path.startsWith('/ui/')) && req.method === 'GET') {
      const file = consoleFile(path);
      if (file === null) return { status: 404, body: { error: 'not_found', message: path === '/ui' || path === '/ui/' ? 'The console is not built: run npm run build' : `No console file ${path}` } };
      return { status: 200, body: null, encoded: { chunks: [file.body], bytes: file.body.length }, contentType: file.contentType, headers: file.headers };
    }
    if (path === '/metrics' && deps.metrics !== undefined && deps.config.metricsAccess !== 'off') return await metricsRoute(deps, deps.metrics, req);
    if (path === '/v1/api/sql') return await sqlRoute(deps, req, started);
    if (path === '/v1/api/auth/login') return await loginRoute(deps, req);
    if (path === '/v1/api/auth/refresh') return await refreshRoute(deps, req);
    if (path === '/v1/api/auth/me') return await meRoute(deps, req);
    if (path === '/v1/api/auth/logout') return logoutRoute(req);
    if (path === '/v1/api/auth/status') return statusRoute(req);
    if ((path === '/v1/api/topics/consume' || path === '/v1/api/topics/ack') && deps.topics !== undefined) {
      return await topicRoute(deps, deps.topics, req, path.endsWith('consume') ? 'consume' : 'ack');
    }
    if (path.startsWith(EXPORTS_ROUTE_PREFIX) && deps.exports !== undefined) {
      const { file, principal } = await exportDownload({ auth: deps.auth, catalog: deps.catalog, exports: deps.exports }, req, path);
      return { status: 200, body: null, file, user: principal.userId };
    }
    // A newcomer opening http://localhost:8080/ in a browser is told where things are.
    const hint = path === '/' ? ': the admin console is at /ui, the SQL API at POST /v1/api/sql (README.md)' : '';
    return { status: 404, body: { error: 'not_found', message: `No route for ${req.method} ${path}${hint}` } };
  } catch (error) {
    const e = toServerError(deps, error);
    // The export download answers in the SQL envelope, as upstream's does.
    if (path === '/v1/api/sql' || path.startsWith(EXPORTS_ROUTE_PREFIX)) return { status: e.status, body: sqlError(e, started) };
    return { status: e.status, body: { error: e.status === 401 ? 'unauthorized' : e.code.toLowerCase(), message: e.message } };
  }
}

/** Prometheus text; who may read it is `metrics_access` (docs/operations.md, "Metrics"). */
async function metricsRoute(deps: HttpDeps, metrics: Metrics, req: IncomingMessage): Promise<Handled> {
  if (req.method !== 'GET') throw new ServerError('BAD_REQUEST', 'Use GET for /metrics');
  const access = deps.config.metricsAccess;
  if (access === 'localhost' && !isLoopback(req.socket.remoteAddress)) {
    throw new ServerError('PERMISSION_DENIED', 'GET /metrics is served to localhost only (metrics_access = "localhost")');
  }
  if (access === 'token') {
    // Compared as bytes: a header with non-ASCII characters has as many UTF-16 units as the token but
    // more bytes, and timingSafeEqual throws on buffers of different lengths (an attack review: a 500).
    const header = Buffer.from(req.headers.authorization ?? '');
    const expected = Buffer.from(`Bearer ${deps.config.metricsToken ?? ''}`);
    if (header.length !== expected.length || !timingSafeEqual(header, expected)) {
      throw new ServerError('MISSING_AUTHORIZATION', 'GET /metrics needs Authorization: Bearer <metrics_token>');
    }
  }
  const text = Buffer.from(await metrics.text(), 'utf8');
  return { status: 200, body: null, encoded: { chunks: [text], bytes: text.length }, contentType: metrics.contentType };
}

function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

async function sqlRoute(deps: HttpDeps, req: IncomingMessage, started: number): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('INVALID_INPUT', 'Use POST for /v1/api/sql');
  const account = await deps.auth.userFromHeader(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
  const principal = principalOf(account);
  const user = principal.userId;
  try {
    const raw = await readBody(req, { bytesMax: deps.config.bodyBytesMax, timeoutMs: deps.config.httpBodyTimeoutMs });
    // Upstream's clients send multipart/form-data for FILE uploads; there is no FILE type here.
    if (/^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '')) {
      throw new ServerError('INVALID_INPUT', 'File uploads (multipart/form-data) are not supported: send {"sql": ...} as a JSON body');
    }
    const body = parseJsonObject(raw, 'INVALID_INPUT');
    // Upstream's code and words for a body that does not deserialize into {sql, params, namespace_id}.
    if (typeof body.sql !== 'string') throw new ServerError('INVALID_INPUT', "Invalid JSON payload: 'sql' must be a string");
    const params = body.params ?? [];
    if (!Array.isArray(params)) throw new ServerError('INVALID_INPUT', "Invalid JSON payload: 'params' must be an array");
    const namespace = body.namespace_id ?? null;
    if (namespace !== null && typeof namespace !== 'string') throw new ServerError('INVALID_INPUT', "Invalid JSON payload: 'namespace_id' must be a string");
    // The body may have taken up to http_body_timeout_ms: the account is checked again before each
    // statement, against itself as this request last left it (a batch may change its own password).
    let baseline = account;
    const callerCheck = {
      recheck: (): void => deps.auth.requireUnchanged(baseline),
      changedOwnAccount: (): void => { baseline = deps.catalog.account(account.id) ?? baseline; },
    };
    const results = await deps.executor.execute({ sql: body.sql, params, namespace, callerCheck }, principal);
    // Encoded (and size-checked) here, so an oversized result still gets the error envelope below.
    const encoded = encodeSqlSuccess(results, took(started), deps.config.resultBytesMax);
    return { status: 200, body: null, encoded, user };
  } catch (error) {
    const e = toServerError(deps, error);
    return { status: e.status, body: sqlError(e, started), user, ...(e instanceof LimitError ? { limit: e.limit } : {}) };
  }
}

async function topicRoute(deps: HttpDeps, topics: TopicRoutes, req: IncomingMessage, which: 'consume' | 'ack'): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('BAD_REQUEST', `Use POST for /v1/api/topics/${which}`);
  const account = await deps.auth.userFromHeader(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
  const principal = principalOf(account);
  const body = parseJsonObject(await readBody(req, { bytesMax: 64 * 1024, timeoutMs: deps.config.httpBodyTimeoutMs }));
  // Checked again after the body and at each wake-up of a long-poll (up to 300 s).
  const recheck = (): void => deps.auth.requireUnchanged(account);
  recheck();
  let out: unknown;
  if (which === 'consume') {
    // A long-poll ends early when its client disconnects (the consume gives back what it claimed).
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    req.socket.once('close', onClose);
    try {
      out = await topics.consume(principal, body, gone.signal, recheck);
    } finally {
      req.socket.off('close', onClose);
    }
  } else out = await topics.ack(principal, body);
  if (Buffer.isBuffer(out)) return { status: 200, body: null, encoded: { chunks: [out], bytes: out.length }, user: principal.userId };
  return { status: 200, body: out, user: principal.userId };
}

const LOGIN_FIELDS: ReadonlySet<string> = new Set(['user', 'username', 'password']);

async function loginRoute(deps: HttpDeps, req: IncomingMessage): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('BAD_REQUEST', 'Use POST for /v1/api/auth/login');
  const body = parseJsonObject(await readBody(req, { bytesMax: 64 * 1024, timeoutMs: deps.config.httpBodyTimeoutMs }));
  // As upstream: a misspelt field is refused rather than ignored, so a client bug shows at once.
  const unknown = Object.keys(body).find((key) => !LOGIN_FIELDS.has(key));
  if (unknown !== undefined) throw new ServerError('BAD_REQUEST', `Unknown field '${unknown.slice(0, 64)}' in login request: expected 'user' and 'password'`);
  const name = body.user ?? body.username;
  if (typeof name !== 'string' || typeof body.password !== 'string') {
    throw new ServerError('BAD_REQUEST', "Login needs string fields 'user' and 'password'");
  }
  const user = await deps.auth.checkPassword(name, body.password, req.socket.remoteAddress ?? 'unknown').catch((error: unknown) => {
    deps.log.warn('login failed', { user: name.slice(0, 64) });
    throw error;
  });
  return { status: 200, body: await issueTokens(deps, user), user: user.userId };
}

/** Login and refresh answer alike; `admin_ui_access` tells a browser client whether to offer the admin console. */
async function issueTokens(deps: HttpDeps, user: UserDef): Promise<unknown> {
  return { ...await deps.tokens.issue(user), admin_ui_access: isAdminRole(user.role) };
}

async function refreshRoute(deps: HttpDeps, req: IncomingMessage): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('BAD_REQUEST', 'Use POST for /v1/api/auth/refresh');
  const header = req.headers.authorization ?? '';
  if (!/^bearer /i.test(header)) throw new ServerError('MISSING_AUTHORIZATION', 'Send the refresh token as Authorization: Bearer <refresh_token>');
  const principal = await deps.auth.fromToken(header.slice(7).trim(), 'refresh');
  const user = deps.catalog.account(principal.id)!;
  return { status: 200, body: await issueTokens(deps, user), user: user.userId };
}

/** The caller's account, as in the login answer (upstream's `GET /v1/api/auth/me`, used by admin consoles). */
async function meRoute(deps: HttpDeps, req: IncomingMessage): Promise<Handled> {
  if (req.method !== 'GET') throw new ServerError('BAD_REQUEST', 'Use GET for /v1/api/auth/me');
  const user = await deps.auth.userFromHeader(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
  return { status: 200, body: { user: userInfo(user), admin_ui_access: isAdminRole(user.role) }, user: user.userId };
}

/**
 * As upstream, which clears its cookies here: tokens are stateless and stay valid until they expire
 * (change the password to revoke them), so a client logs out by forgetting its tokens.
 */
function logoutRoute(req: IncomingMessage): Handled {
  if (req.method !== 'POST') throw new ServerError('BAD_REQUEST', 'Use POST for /v1/api/auth/logout');
  return { status: 200, body: { message: 'Logged out successfully' } };
}

/** Upstream's first-run check (its CLI asks before prompting for a login): root is created on the first start here, so never. */
function statusRoute(req: IncomingMessage): Handled {
  if (req.method !== 'GET') throw new ServerError('BAD_REQUEST', 'Use GET for /v1/api/auth/status');
  return { status: 200, body: { needs_setup: false, message: 'Server is configured and ready.' } };
}

function sqlError(e: ServerError, started: number): unknown {
  return { status: 'error', results: [], took: took(started), error: { code: e.code, message: e.message } };
}

function toServerError(deps: HttpDeps, error: unknown): ServerError {
  if (error instanceof ServerError) return error;
  // A write that failed for a full disk outside the paths that classify it already (storage health).
  if (isDiskFullError(error)) {
    const full = deps.storage.writeFailed(error, 'commit');
    if (full instanceof ServerError) return full;
  }
  if (isCorruptionError(error)) {
    deps.log.error('damaged hot-store data', { error: (error as Error)?.stack ?? String(error) });
    return new ServerError('TABLE_UNAVAILABLE', `Data in the hot store could not be read: ${errorLine(error)}. `
      + 'The files under rocksdb/ are damaged: restore the data dir from a backup (docs/operations.md, "Backup and restore")');
  }
  deps.log.error('internal error', { error: (error as Error)?.stack ?? String(error) });
  return new ServerError('INTERNAL_ERROR', 'Internal server error');
}

function took(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}

async function send(deps: HttpDeps, req: IncomingMessage, res: ServerResponse, out: Handled, started: number): Promise<void> {
  if (out.file !== undefined) return sendFile(deps, req, res, out, out.file, started);
  let chunks: readonly (Buffer | string)[];
  let length: number;
  if (out.encoded !== undefined) ({ chunks, bytes: length } = out.encoded);
  else {
    const text = JSON.stringify(out.body);
    chunks = [text];
    length = Buffer.byteLength(text, 'utf8');
  }
  // A flat list of header fields: Node writes it as is (no header object of its own to fill and merge).
  // Browsers call the API directly (tokens travel in the Authorization header, never cookies): CORS.
  // `out.headers` never repeats these fields (the console's security headers).
  // API answers are never cached (a shared machine's browser cache would keep them) nor sniffed for
  // another type (a 404 reflects the path). The console's files set their own cache-control.
  const head = ['access-control-allow-origin', '*', 'content-type', out.contentType ?? 'application/json', 'content-length', String(length)];
  if (out.headers === undefined || !('cache-control' in out.headers)) head.push('cache-control', 'no-store');
  if (out.headers === undefined || !('x-content-type-options' in out.headers)) head.push('x-content-type-options', 'nosniff');
  if (out.headers !== undefined) for (const [name, value] of Object.entries(out.headers)) head.push(name, value);
  // After a 408 or 413 the body may not have been read to its end, so the connection cannot be
  // reused; with `connection: close` Node ends the socket once the response is written.
  if (out.status === 413 || out.status === 408) head.push('connection', 'close');
  res.writeHead(out.status, head);
  await writeChunks(res, chunks);
  const route = (req.url ?? '/').split('?')[0]!;
  deps.metrics?.observeRequest(routeLabel(route), out.status, (performance.now() - started) / 1000);
  if (deps.log.enabled('info')) {
    const fields: Record<string, unknown> = { method: req.method, route, status: out.status, ms: took(started), user: out.user ?? null };
    if (out.limit !== undefined) fields.limit = out.limit;
    deps.log.info('request', fields);
  }
}

/** Streams a file (closing it at the end, or when the client goes away) with its length and name. */
async function sendFile(deps: HttpDeps, req: IncomingMessage, res: ServerResponse, out: Handled, file: ExportFile, started: number): Promise<void> {
  res.writeHead(out.status, {
    'access-control-allow-origin': '*', 'content-type': 'application/zip', 'content-length': file.size,
    'cache-control': 'no-store', 'x-content-type-options': 'nosniff',
    'content-disposition': `attachment; filename="${file.filename}"`,
  });
  try {
    await pipeline(file.handle.createReadStream({ autoClose: true }), res);
  } catch (error) {
    deps.log.warn('download not completed', { route: (req.url ?? '/').split('?')[0], error: String(error) });
  } finally {
    await file.handle.close().catch(() => undefined);
  }
  if (deps.log.enabled('info')) {
    deps.log.info('request', { method: req.method, route: (req.url ?? '/').split('?')[0], status: out.status, ms: took(started), user: out.user ?? null, bytes: file.size });
  }
}

/** Writes the body a chunk at a time, waiting for the socket to drain, so a slow client holds no second copy. */
async function writeChunks(res: ServerResponse, chunks: readonly (Buffer | string)[]): Promise<void> {
  // The common small body: headers and body leave in one write with end() (for a string, one string:
  // node:http prepends the head to it instead of writing a list of two buffers).
  if (chunks.length === 1) {
    if (!res.destroyed) res.end(chunks[0]);
    return;
  }
  for (const chunk of chunks) {
    if (res.destroyed) return;
    if (!res.write(chunk)) await drainedOrClosed(res);
  }
  res.end();
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
