// One thread of the STREAM benchmark's subscribers (bench/stream.mjs starts SUBSCRIBER_THREADS of
// them): opens its share of the WebSocket connections, subscribes, reads and checks every row with
// bench/stream-rows.mjs and keeps each message's latency. A thread has its own event loop and heap,
// so one thread's GC pause or burst of reading delays only its own connections, and none of them
// delays the INSERTs (sent by the main thread). Latency stays honest: the receipt time is taken in
// the thread that has the row (performance.timeOrigin + now(): µs since the epoch, as `sent_at`).
//
// Protocol with the main thread: workerData { port, token, connections, subsPerConnection };
// posts { ready } once every subscription is acknowledged; gets { start: fromMicros } (the latency of
// every event sent from then on is kept: bench/stream.mjs splits warm-up and measured part by send time);
// keeps `delivered[slot]` (a shared Float64Array) current; gets { stop } and posts its results.
import WebSocket from 'ws';
import { parentPort, workerData } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { watchGcPauses } from './gc-pauses.mjs';
import { StreamRowReader, SubscriptionTally, warmUpReader } from './stream-rows.mjs';

const { port, token, connections, subsPerConnection, slot, deliveredShared, room, seqDigits } = workerData;
// The reader's own JIT warm-up, before any connection: the server's cold start is what is measured.
if (room !== undefined) warmUpReader(room, seqDigits);
const delivered = new Float64Array(deliveredShared);

/** A growable Float64Array (a plain array of 300k pushed doubles is reallocated and copied as it grows). */
class Column {
  data = new Float64Array(1 << 16);
  length = 0;
  push(x) {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = x;
  }
  view() {
    return this.data.subarray(0, this.length);
  }
}

let measureFrom = Infinity; // µs since the epoch
const latencies = new Column(); // ms, one per insert message received after measureFrom
const weights = new Column(); // rows of that message
const sentAts = new Column(); // its INSERT's send time (µs since the epoch)
let rows = 0;
const onRows = (_tally, n, sentAt) => {
  rows += n;
  delivered[slot] = rows;
  if (sentAt < measureFrom) return;
  latencies.push((performance.timeOrigin + performance.now()) - sentAt / 1000);
  weights.push(n);
  sentAts.push(sentAt);
};

const loop = monitorEventLoopDelay({ resolution: 1 });
const { gc } = watchGcPauses();

const tallies = [];
const readers = [];
const sockets = [];
const closedEarly = [];
const errors = [];
let acks = 0;
let closing = false;
for (let c = 0; c < connections; c++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, {
    headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false,
    // The reader checks the rows' bytes itself; validating every byte as UTF-8 first costs CPU the server needs.
    skipUTF8Validation: true,
  });
  const mine = new Map();
  for (let i = 0; i < subsPerConnection; i++) {
    const t = new SubscriptionTally();
    mine.set(`s${i}`, t);
    tallies.push(t);
  }
  const reader = new StreamRowReader(mine, onRows, (msg) => {
    if (msg.type === 'subscription_ack') {
      if (++acks === connections * subsPerConnection) parentPort.postMessage({ ready: true });
    } else if (msg.type === 'error') errors.push(msg.code);
  });
  readers.push(reader);
  // A client that does not keep up is closed by the server (SLOW_CONSUMER): reported, not hidden.
  ws.on('close', (code) => { if (!closing) closedEarly.push(code); });
  ws.on('message', (data) => reader.read(data));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  for (let i = 0; i < subsPerConnection; i++) ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: `s${i}`, sql: 'SELECT * FROM streambench.events' } }));
  sockets.push(ws);
}

parentPort.on('message', (msg) => {
  if (msg.start !== undefined) {
    measureFrom = msg.start;
    setTimeout(() => loop.enable(), Math.max(0, msg.start / 1000 - (performance.timeOrigin + performance.now())));
  } else if (msg.stop) {
    loop.disable();
    closing = true;
    for (const ws of sockets) ws.close();
    const out = {
      tallies: tallies.map((t) => ({ rows: t.rows, violations: t.violations })),
      latencies: latencies.view(), weights: weights.view(), sentAts: sentAts.view(),
      closedEarly, errors,
      fast: readers.reduce((n, r) => n + r.fastMessages, 0), slow: readers.reduce((n, r) => n + r.slowMessages, 0),
      matched: readers.reduce((n, r) => n + r.matchedMessages, 0),
      loop: { p50_ms: loop.percentile(50) / 1e6, p99_ms: loop.percentile(99) / 1e6, max_ms: loop.max / 1e6 },
      gc,
    };
    parentPort.postMessage(out);
    parentPort.close();
  }
});
