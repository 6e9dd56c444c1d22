// The floor under workload 1 (decision 0019, third pass): what a server that does nothing but answer costs per
// request with the same client as bench/versus-pg.mjs (16 keep-alive connections, the same INSERT bodies).
//   node bench/http-floor.mjs [http|parser|net] [seconds] [hold ms]
// hold ms > 0 answers the way workload 1's group commit does: each answer waits until a timer started by the
// first waiting request fires (about one WAL sync), then all waiting requests are answered together, so the
// server runs at workload 1's ~10k requests/s with idle gaps instead of flat out.
// http: a bare node:http server that reads the body, JSON.parses it and answers the INSERT's JSON.
// parser: a net server driving llhttp (node:http's own parser) directly, without node:http's streams.
// net: a bare net server that finds each request's end by Content-Length and writes a canned response.
import http from 'node:http';
import net from 'node:net';
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { drive } from './versus-pg.mjs';
import { treeCpuMicros } from './pg.mjs';

const [mode = 'http', seconds = '4', holdArg = '0'] = process.argv.slice(2);
const holdMs = Number(holdArg);
let held = [];
let holdTimer = null;
/** Calls `answer` now, or (hold ms > 0) with every other held answer when the group's timer fires. */
function answerAfterHold(answer) {
  if (holdMs === 0) return answer();
  held.push(answer);
  holdTimer ??= setTimeout(() => {
    holdTimer = null;
    const group = held;
    held = [];
    for (const f of group) f();
  }, holdMs);
}
const answer = JSON.stringify({ status: 'success', results: [{ row_count: 1, message: 'Inserted 1 row(s)' }], took: 0.5 });

function httpServer() {
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      answerAfterHold(() => {
        res.writeHead(200, { 'access-control-allow-origin': '*', 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
        res.end(answer);
      });
    });
  });
}

function netServer() {
  const response = Buffer.from(`HTTP/1.1 200 OK\r\naccess-control-allow-origin: *\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(answer)}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n${answer}`);
  return net.createServer((socket) => {
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = buf.length > 0 ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(buf.toString('latin1', 0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        JSON.parse(buf.toString('utf8', end + 4, end + 4 + length));
        buf = buf.subarray(end + 4 + length);
        answerAfterHold(() => socket.write(response));
      }
    });
  });
}

// llhttp (the parser node:http uses) driven straight from a net socket: no IncomingMessage/ServerResponse streams.
function parserServer() {
  const { HTTPParser } = createRequire(import.meta.url)('_http_common');
  const response = Buffer.from(`HTTP/1.1 200 OK\r\naccess-control-allow-origin: *\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(answer)}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n${answer}`);
  return net.createServer((socket) => {
    socket.setNoDelay(true);
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, 16384, 0);
    let body = [];
    parser[HTTPParser.kOnHeadersComplete] = () => { body = []; };
    parser[HTTPParser.kOnBody] = (b) => { body.push(b); };
    parser[HTTPParser.kOnMessageComplete] = () => {
      JSON.parse((body.length === 1 ? body[0] : Buffer.concat(body)).toString());
      answerAfterHold(() => socket.write(response));
    };
    socket.on('data', (chunk) => { const r = parser.execute(chunk); if (r instanceof Error) socket.destroy(); });
  });
}

if (process.argv[5] === 'serve') {
  const server = mode === 'net' ? netServer() : mode === 'parser' ? parserServer() : httpServer();
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const child = fork(fileURLToPath(import.meta.url), [mode, seconds, holdArg, 'serve']);
  const port = await new Promise((resolve) => child.once('message', resolve));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (body) => new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/api/sql', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${'x'.repeat(200)}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    });
    req.on('error', reject);
    req.end(payload);
  });
  const r = await drive({
    clients: 16, seconds: Number(seconds), warmup: 2, serverCpu: () => treeCpuMicros(child.pid),
    op: async (c, i) => {
      await post({ sql: 'INSERT INTO vs.single (user_id, body, n) VALUES ($1, $2, $3)', params: [`u${c}`, `message ${i} from client ${c}`, i] });
      return 1;
    },
  });
  const { loadavg } = await import('node:os');
  console.log(JSON.stringify({ mode, hold_ms: holdMs, rows_per_s: r.rows_per_s, server_cpu_us_per_row: r.server_cpu_us_per_row, server_cores: r.server_cpu_cores,
    p50_ms: r.latency.p50_ms, loadgen_cores: r.loadgen_cpu_cores, load: loadavg().map((x) => Math.round(x * 100) / 100) }));
  child.kill();
  agent.destroy();
}
