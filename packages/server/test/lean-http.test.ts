/**
 * The lean HTTP path (docs/decisions/0026-lean-http-path.md) against the real server over raw
 * sockets: POST /v1/api/sql is served without node:http's streams, everything else is handed to
 * node:http at a request boundary. What a client sees must not change: pipelining in order, split
 * and odd requests, the parser's 400/431, the 413/408 envelopes, HTTP/1.0 and Connection: close,
 * a WebSocket upgrade after SQL on the same connection, slow clients cut off, clients that vanish.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { TestServer, ROOT_PASSWORD, authHeader } from './harness.js';

const HEADERS_TIMEOUT_MS = 400;
const BODY_TIMEOUT_MS = 400;
let server: TestServer;
const auth = authHeader({ user: 'root', password: ROOT_PASSWORD }).authorization!;

before(async () => {
  server = await TestServer.startWithConfig({
    http_headers_timeout_ms: HEADERS_TIMEOUT_MS, http_body_timeout_ms: BODY_TIMEOUT_MS, http_request_timeout_ms: 3000, body_bytes_max: 96 * 1024, sql_bytes_max: 32 * 1024,
  });
});
after(async () => {
  await server.dispose();
});

function sqlRequest(sql: string, extra = '', version = '1.1'): string {
  const body = JSON.stringify({ sql });
  return `POST /v1/api/sql HTTP/${version}\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\n${extra}`
    + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

interface Parsed { status: number; headers: Record<string, string>; raw: string; body: string }

/** Splits a byte stream of responses (each with a Content-Length; 1xx have none) into responses. */
function parseResponses(text: string): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = text.slice(at, end);
    const [line, ...fields] = head.split('\r\n');
    const headers: Record<string, string> = {};
    for (const field of fields) headers[field.slice(0, field.indexOf(':')).toLowerCase()] = field.slice(field.indexOf(':') + 1).trim();
    const length = Number(headers['content-length'] ?? 0);
    out.push({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(line!)?.[1]), headers, raw: head, body: text.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

interface Conversation { socket: Socket; received: () => string; closed: Promise<number> }

function open(): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const started = performance.now();
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((done) => socket.on('close', () => done(performance.now() - started)));
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks).toString('latin1'), closed }));
    socket.once('error', reject);
  });
}

/** Waits until `count` whole responses have arrived (or the socket closed), at most 10 s. */
async function responses(c: Conversation, count: number): Promise<Parsed[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const parsed = parseResponses(c.received());
    const whole = parsed.filter((r) => r.body.length === Number(r.headers['content-length'] ?? 0));
    if (whole.length >= count || c.socket.destroyed || performance.now() > deadline) return parsed;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function closedWithin(c: Conversation, ms: number): Promise<void> {
  const result = await Promise.race([c.closed, new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), ms))]);
  assert.notEqual(result, 'open', `socket still open after ${ms} ms`);
}

function rowsOf(r: Parsed): unknown {
  return (JSON.parse(r.body) as { results: Array<{ rows: unknown }> }).results[0]!.rows;
}

test('the response head is what node:http writes: CORS, type, length, Date, keep-alive', async () => {
  const c = await open();
  c.socket.write(sqlRequest('SELECT 1 AS one'));
  const [r] = await responses(c, 1);
  assert.equal(r!.status, 200);
  assert.match(r!.raw, /^HTTP\/1\.1 200 OK\r\naccess-control-allow-origin: \*\r\ncontent-type: application\/json\r\ncontent-length: \d+\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=\d+$/);
  assert.deepEqual(rowsOf(r!), [['1']]);
  c.socket.destroy();
});

test('pipelined requests are answered in order, then one node:http serves (OPTIONS), then more', async () => {
  const c = await open();
  const health = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
  const preflight = 'OPTIONS /v1/api/sql HTTP/1.1\r\nHost: x\r\n\r\n';
  c.socket.write(sqlRequest('SELECT 1 AS n') + sqlRequest('SELECT 2 AS n') + health + sqlRequest('SELECT 3 AS n') + preflight + sqlRequest('SELECT 4 AS n') + health);
  const out = await responses(c, 7);
  assert.equal(out.length, 7);
  assert.deepEqual(rowsOf(out[0]!), [['1']]);
  assert.deepEqual(rowsOf(out[1]!), [['2']]);
  assert.equal((JSON.parse(out[2]!.body) as { status: string }).status, 'healthy');
  assert.deepEqual(rowsOf(out[3]!), [['3']]);
  assert.equal(out[4]!.status, 204);
  assert.equal(out[4]!.headers['access-control-allow-methods'], 'GET, POST, OPTIONS');
  assert.deepEqual(rowsOf(out[5]!), [['4']]);
  assert.equal((JSON.parse(out[6]!.body) as { status: string }).status, 'healthy');
  c.socket.destroy();
});

test('a login, then SQL with its token on the same connection', async () => {
  const c = await open();
  const login = JSON.stringify({ user: 'root', password: ROOT_PASSWORD });
  c.socket.write(`POST /v1/api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\n\r\n${login}`);
  const [r] = await responses(c, 1);
  assert.equal(r!.status, 200);
  const token = (JSON.parse(r!.body) as { access_token: string }).access_token;
  const body = JSON.stringify({ sql: 'SELECT 17 AS n' });
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const out = await responses(c, 2);
  assert.deepEqual(rowsOf(out[1]!), [['17']]);
  // A login body over the route's own 64 KiB limit (but within body_bytes_max) is still refused with the 413.
  const big = JSON.stringify({ user: 'root', password: 'x'.repeat(65 * 1024) });
  c.socket.write(`POST /v1/api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
  const after = await responses(c, 3);
  assert.equal(after[2]!.status, 413);
  c.socket.destroy();
});

test('a request split byte by byte, then another on the same connection', async () => {
  const c = await open();
  const bytes = Buffer.from(sqlRequest('SELECT 5 AS n'));
  for (const byte of bytes) {
    c.socket.write(Buffer.from([byte]));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const [first] = await responses(c, 1);
  assert.deepEqual(rowsOf(first!), [['5']]);
  c.socket.write(sqlRequest('SELECT 6 AS n'));
  const out = await responses(c, 2);
  assert.deepEqual(rowsOf(out[1]!), [['6']]);
  c.socket.destroy();
});

test('a chunked body is served (by node:http)', async () => {
  const c = await open();
  const body = JSON.stringify({ sql: 'SELECT 7 AS n' });
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`
    + `${(5).toString(16)}\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`);
  const [r] = await responses(c, 1);
  assert.equal(r!.status, 200);
  assert.deepEqual(rowsOf(r!), [['7']]);
  c.socket.destroy();
});

test('Expect: 100-continue gets its 100, then the answer', async () => {
  const c = await open();
  const body = JSON.stringify({ sql: 'SELECT 8 AS n' });
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
  const deadline = performance.now() + 5000;
  while (!c.received().startsWith('HTTP/1.1 100 Continue\r\n\r\n') && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(c.received().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), c.received());
  c.socket.write(body);
  const out = await responses(c, 2);
  assert.equal(out[1]!.status, 200);
  assert.deepEqual(rowsOf(out[1]!), [['8']]);
  c.socket.destroy();
});

test('Content-Length with Transfer-Encoding (request smuggling) gets a 400 and the connection closes', async () => {
  const c = await open();
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n`);
  await closedWithin(c, 3000);
  const out = parseResponses(c.received());
  assert.equal(out.length, 1);
  assert.equal(out[0]!.status, 400);
  assert.equal((JSON.parse(out[0]!.body) as { error: { code: string } }).error.code, 'BAD_REQUEST');
});

test('a bad request line after a served request gets a 400 and the connection closes', async () => {
  const c = await open();
  c.socket.write(sqlRequest('SELECT 9 AS n') + 'POST /v1/api/sql HTTP/9.9 nonsense\r\n\r\n');
  await closedWithin(c, 3000);
  const out = parseResponses(c.received());
  assert.equal(out.length, 2);
  assert.deepEqual(rowsOf(out[0]!), [['9']]);
  assert.equal(out[1]!.status, 400);
});

test('oversized headers get a 431', async () => {
  const c = await open();
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  await closedWithin(c, 3000);
  const [r] = parseResponses(c.received());
  assert.equal(r!.status, 431);
});

test('a body over body_bytes_max gets the 413 envelope', async () => {
  const c = await open();
  const body = JSON.stringify({ sql: `SELECT '${'x'.repeat(100 * 1024)}'` });
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await closedWithin(c, 5000);
  const [r] = parseResponses(c.received());
  assert.equal(r!.status, 413);
  assert.equal((JSON.parse(r!.body) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');
  assert.equal(r!.headers.connection, 'close');
});

test('HTTP/1.0 gets Connection: close and the socket closes after the answer', async () => {
  const c = await open();
  c.socket.write(sqlRequest('SELECT 10 AS n', '', '1.0'));
  await closedWithin(c, 3000);
  const [r] = parseResponses(c.received());
  assert.equal(r!.status, 200);
  assert.equal(r!.headers.connection, 'close');
  assert.deepEqual(rowsOf(r!), [['10']]);
});

test('Connection: close is honoured, and requests pipelined after it are not answered', async () => {
  const c = await open();
  c.socket.write(sqlRequest('SELECT 11 AS n', 'Connection: close\r\n') + sqlRequest('SELECT 12 AS n'));
  await closedWithin(c, 3000);
  const out = parseResponses(c.received());
  assert.equal(out.length, 1);
  assert.equal(out[0]!.headers.connection, 'close');
  assert.deepEqual(rowsOf(out[0]!), [['11']]);
});

test('an SQL request, then a WebSocket upgrade on the same connection', async () => {
  const c = await open();
  c.socket.write(sqlRequest('SELECT 13 AS n'));
  const [r] = await responses(c, 1);
  assert.deepEqual(rowsOf(r!), [['13']]);
  const key = randomBytes(16).toString('base64');
  c.socket.write(`GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: ${auth}\r\n\r\n`);
  const deadline = performance.now() + 5000;
  while (!c.received().includes('HTTP/1.1 101') && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.match(c.received(), /HTTP\/1\.1 101 Switching Protocols/);
  c.socket.destroy();
});

test('a slowloris client is cut off with a 408, on a fresh connection and after a served request', async () => {
  const fresh = await open();
  fresh.socket.write('POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  const reused = await open();
  reused.socket.write(sqlRequest('SELECT 14 AS n'));
  await responses(reused, 1);
  reused.socket.write('POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  for (const c of [fresh, reused]) {
    await closedWithin(c, HEADERS_TIMEOUT_MS + 2000);
    const out = parseResponses(c.received());
    assert.equal(out.at(-1)!.status, 408);
  }
});

test('a body that stops short gets the 408 envelope within the body timeout', async () => {
  const c = await open();
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: 100\r\n\r\n{"sql":`);
  await closedWithin(c, BODY_TIMEOUT_MS + 2000);
  const [r] = parseResponses(c.received());
  assert.equal(r!.status, 408);
  assert.equal((JSON.parse(r!.body) as { error: { code: string } }).error.code, 'REQUEST_TIMEOUT');
  assert.equal(r!.headers.connection, 'close');
});

test('clients killed mid-request and mid-response do not hurt the server', async () => {
  for (let i = 0; i < 20; i++) {
    const c = await open();
    const big = sqlRequest('SELECT * FROM range(0, 20000) t(n)');
    c.socket.write(i % 2 === 0 ? big : big.slice(0, big.length - 3));
    if (i % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    c.socket.resetAndDestroy();
  }
  const res = await server.fetch('/v1/api/sql', {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify({ sql: 'SELECT 15 AS n' }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.deepEqual((JSON.parse(text) as { results: Array<{ rows: unknown }> }).results[0]!.rows, [['15']]);
});

test('an auth failure gets the SQL envelope and the connection stays usable', async () => {
  const c = await open();
  const body = JSON.stringify({ sql: 'SELECT 1' });
  c.socket.write(`POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: ${body.length}\r\n\r\n${body}` + sqlRequest('SELECT 16 AS n'));
  const out = await responses(c, 2);
  assert.equal(out[0]!.status, 401);
  assert.equal((JSON.parse(out[0]!.body) as { status: string }).status, 'error');
  assert.deepEqual(rowsOf(out[1]!), [['16']]);
  c.socket.destroy();
});

test('graceful shutdown: idle connections are closed, a request in flight gets its answer (Connection: close)', async () => {
  const own = await TestServer.start();
  try {
    const openTo = (port: number): Promise<Conversation> => new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', () => undefined);
      const closed = new Promise<number>((done) => socket.on('close', () => done(0)));
      socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks).toString('latin1'), closed }));
      socket.once('error', reject);
    });
    const idle = await openTo(own.port);
    idle.socket.write(sqlRequest('SELECT 1 AS n'));
    await responses(idle, 1);
    const busy = await openTo(own.port);
    busy.socket.write(sqlRequest('SELECT count(*) AS n FROM range(0, 1000000) a CROSS JOIN range(0, 300) b'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const exited = own.stop();
    await closedWithin(idle, 5000);
    const [r] = await responses(busy, 1);
    assert.equal(r!.status, 200, r!.body);
    assert.equal(r!.headers.connection, 'close');
    assert.deepEqual(rowsOf(r!), [['300000000']]);
    await closedWithin(busy, 5000);
    assert.equal(await exited, 0);
  } finally {
    await own.dispose();
  }
});
