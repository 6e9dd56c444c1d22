/**
 * The HTTP API: /health, /v1/api/auth/login, /v1/api/auth/refresh and /v1/api/sql on node:http.
 * This file is the only place errors become HTTP responses: ServerErrors map to their status and
 * the protocol envelope; anything else is logged and answered with a generic 500.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { LimitError, ServerError, isDiskFullError } from '../util/errors.js';
import type { StorageHealth } from '../storage/storage-health.js';
import type { Logger } from '../util/log.js';
import type { Config } from '../config/config.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { TokenService } from '../auth/tokens.js';
import type { Executor } from '../exec/executor.js';
import type { Catalog } from '../catalog/catalog.js';
import { parseJsonObject, readBody } from './body.js';
import { encodeSqlSuccess, type EncodedBody } from './sql-response.js';

export const SERVER_VERSION = '0.1.0';

export interface HttpDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly auth: Authenticator;
  readonly tokens: TokenService;
  readonly executor: Executor;
  readonly catalog: Catalog;
  readonly storage: StorageHealth;
}

interface Handled {
  status: number;
  /** JSON.stringify'd when sent, unless `encoded` is given. */
  body: unknown;
  /** A body already encoded (SQL results, which may be large). */
  encoded?: EncodedBody;
  user?: string;
  /** The config key of the limit that refused the request, for the request log. */
  limit?: string;
}

export function createHttpServer(deps: HttpDeps): Server {
  const server = createServer((req, res) => {
    const started = performance.now();
    // Browsers call the API directly (tokens travel in the Authorization header, never cookies).
    res.setHeader('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    void handle(deps, req, started).then((out) => send(deps, req, res, out, started)).catch((error: unknown) => {
      // Only a failure to write is left here (the client went away); the response is already under way.
      deps.log.warn('response not sent', { error: String(error) });
      res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 120_000;
  return server;
}

async function handle(deps: HttpDeps, req: IncomingMessage, started: number): Promise<Handled> {
  const path = (req.url ?? '/').split('?')[0]!;
  try {
    if (path === '/health' && req.method === 'GET') {
      // Still 200 when degraded: the server answers reads, so a load balancer should keep it; the
      // body says why writes are refused. Fields are only added, never changed (docs/protocol.md).
      const degraded = deps.storage.healthFields();
      const status = degraded.storage === undefined ? 'healthy' : 'degraded';
      return { status: 200, body: { status, version: SERVER_VERSION, api_version: 'v1', ...degraded } };
    }
    if (path === '/v1/api/sql') return await sqlRoute(deps, req, started);
    if (path === '/v1/api/auth/login') return await loginRoute(deps, req);
    if (path === '/v1/api/auth/refresh') return await refreshRoute(deps, req);
    return { status: 404, body: { error: 'not_found', message: `No route for ${req.method} ${path}` } };
  } catch (error) {
    const e = toServerError(deps, error);
    if (path === '/v1/api/sql') return { status: e.status, body: sqlError(e, started) };
    return { status: e.status, body: { error: e.status === 401 ? 'unauthorized' : e.code.toLowerCase(), message: e.message } };
  }
}

async function sqlRoute(deps: HttpDeps, req: IncomingMessage, started: number): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('INVALID_SQL', 'Use POST for /v1/api/sql');
  const principal = await deps.auth.fromHeader(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
  const user = principal.userId;
  try {
    const body = parseJsonObject(await readBody(req, deps.config.bodyBytesMax), 'INVALID_SQL');
    if (body.sql === undefined || body.sql === null) throw new ServerError('EMPTY_SQL', "Request body needs a string field 'sql'");
    if (typeof body.sql !== 'string') throw new ServerError('INVALID_SQL', "'sql' must be a string");
    const params = body.params ?? [];
    if (!Array.isArray(params)) throw new ServerError('INVALID_SQL', "'params' must be an array");
    const namespace = body.namespace_id ?? null;
    if (namespace !== null && typeof namespace !== 'string') throw new ServerError('INVALID_SQL', "'namespace_id' must be a string");
    const results = await deps.executor.execute({ sql: body.sql, params, namespace }, principal);
    // Encoded (and size-checked) here, so an oversized result still gets the error envelope below.
    const encoded = encodeSqlSuccess(results, took(started), deps.config.resultBytesMax);
    return { status: 200, body: null, encoded, user };
  } catch (error) {
    const e = toServerError(deps, error);
    return { status: e.status, body: sqlError(e, started), user, ...(e instanceof LimitError ? { limit: e.limit } : {}) };
  }
}

async function loginRoute(deps: HttpDeps, req: IncomingMessage): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('BAD_REQUEST', 'Use POST for /v1/api/auth/login');
  const body = parseJsonObject(await readBody(req, 64 * 1024));
  const name = body.user ?? body.username;
  if (typeof name !== 'string' || typeof body.password !== 'string') {
    throw new ServerError('BAD_REQUEST', "Login needs string fields 'user' and 'password'");
  }
  const user = await deps.auth.checkPassword(name, body.password, req.socket.remoteAddress ?? 'unknown').catch((error: unknown) => {
    deps.log.warn('login failed', { user: name.slice(0, 64) });
    throw error;
  });
  return { status: 200, body: await deps.tokens.issue(user), user: user.userId };
}

async function refreshRoute(deps: HttpDeps, req: IncomingMessage): Promise<Handled> {
  if (req.method !== 'POST') throw new ServerError('BAD_REQUEST', 'Use POST for /v1/api/auth/refresh');
  const header = req.headers.authorization ?? '';
  if (!/^bearer /i.test(header)) throw new ServerError('MISSING_AUTHORIZATION', 'Send the refresh token as Authorization: Bearer <refresh_token>');
  const principal = await deps.auth.fromToken(header.slice(7).trim(), 'refresh');
  const user = deps.catalog.account(principal.id)!;
  return { status: 200, body: await deps.tokens.issue(user), user: user.userId };
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
  deps.log.error('internal error', { error: (error as Error)?.stack ?? String(error) });
  return new ServerError('INTERNAL_ERROR', 'Internal server error');
}

function took(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}

async function send(deps: HttpDeps, req: IncomingMessage, res: ServerResponse, out: Handled, started: number): Promise<void> {
  const chunks = out.encoded?.chunks ?? [Buffer.from(JSON.stringify(out.body), 'utf8')];
  const length = out.encoded?.bytes ?? chunks[0]!.length;
  // After a 413 the rest of the body is not read: the connection cannot be reused.
  const close = out.status === 413 ? { connection: 'close' } : {};
  res.writeHead(out.status, { 'content-type': 'application/json', 'content-length': length, ...close });
  await writeChunks(res, chunks);
  if (out.status === 413) req.socket.destroySoon?.();
  if (deps.log.enabled('info')) {
    deps.log.info('request', {
      method: req.method, route: (req.url ?? '/').split('?')[0], status: out.status, ms: took(started), user: out.user ?? null,
      ...(out.limit !== undefined ? { limit: out.limit } : {}),
    });
  }
}

/** Writes the body a chunk at a time, waiting for the socket to drain, so a slow client holds no second copy. */
async function writeChunks(res: ServerResponse, chunks: readonly Buffer[]): Promise<void> {
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
