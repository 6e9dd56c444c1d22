// Live-query benchmarks: insert→notification latency (100 subscriptions, 1,000 writes/s), fan-out
// (1,000 connections x 10 subscriptions on one shared table), and memory of 100,000 idle
// subscriptions (1,000 connections x 100). Targets come from the live-queries issue.
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { latencyStats } from './lib.mjs';

const SEQ = Buffer.from('"_seq"');

/** Rows in a change message (every row carries _seq). */
function countRows(data) {
  let n = 0;
  for (let at = data.indexOf(SEQ); at !== -1; at = data.indexOf(SEQ, at + 1)) n++;
  return n;
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024);
}

async function connect(port, token, onMessage) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  ws.on('message', onMessage);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return ws;
}

async function subscribeAll(ws, subs, waitFor) {
  for (const s of subs) ws.send(JSON.stringify({ type: 'subscribe', subscription: s }));
  await waitFor();
}

/** Waits until `done()` or fails after `ms`: a benchmark never hangs. */
async function until(what, done, ms = 60_000) {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function benchLive(server, seconds) {
  const { sql, port } = server;
  const out = {};
  const token = (await server.post('/v1/api/auth/login', { user: 'root', password: 'bench-root-password' })).access_token;
  await sql('CREATE NAMESPACE IF NOT EXISTS livebench');
  await sql("CREATE SHARED TABLE livebench.events (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), room TEXT, sent_at DOUBLE) WITH (FLUSH_POLICY = 'rows:100000000')");

  // 1. Latency: 10 connections x 10 subscriptions (ids s0..s9 on each, as clients typically reuse
  //    ids), 1,000 inserts/s. Every delivery is counted; latency is sampled on subscription s0 of
  //    every connection (10 per write) so the client's own parsing does not become the measurement.
  {
    const latencies = [];
    let delivered = 0;
    let acks = 0;
    const sockets = [];
    const marker = Buffer.from('"subscription_id":"s0"');
    // The first second warms the JIT and connection pools up and is not measured.
    let measureFrom = Infinity;
    for (let c = 0; c < 10; c++) {
      sockets.push(await connect(port, token, (data) => {
        if (data.includes('"subscription_ack"')) { acks++; return; }
        if (!data.includes('"change_type":"insert"')) return;
        delivered += countRows(data); // the inserts of one commit can share a message
        if (!data.includes(marker)) return;
        const sent = Number(/"sent_at":([0-9.e+]+)/.exec(data.toString())[1]);
        if (sent >= measureFrom) latencies.push(performance.timeOrigin + performance.now() - sent);
      }));
    }
    for (const [c, ws] of sockets.entries()) {
      const subs = Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, sql: "SELECT * FROM livebench.events WHERE room = 'lat'" }));
      await subscribeAll(ws, subs, () => until('latency acks', () => acks >= (c + 1) * 10));
    }
    const total = 1000 * (seconds + 1);
    const started = performance.now();
    measureFrom = performance.timeOrigin + started + 1000;
    for (let i = 0; i < total; i++) {
      const due = started + i; // one write per millisecond
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      void sql('INSERT INTO livebench.events (room, sent_at) VALUES ($1, $2)', ['lat', performance.timeOrigin + performance.now()]);
    }
    const deadline = performance.now() + 10_000;
    while (delivered < total * 100 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    out.insert_to_notification = {
      subscriptions: 100, writes_per_s: 1000, writes: total, delivered, expected: total * 100,
      latency_sampled_on: 'subscription s0 of each connection, after a 1 s warm-up', latency: latencyStats(latencies), target_p99_ms: 10,
    };
    for (const ws of sockets) ws.close();
  }

  // 2. Fan-out: 1,000 connections x 10 subscriptions; count deliveries for a burst of inserts.
  {
    let delivered = 0;
    let acks = 0;
    const sockets = [];
    for (let c = 0; c < 1000; c++) {
      sockets.push(await connect(port, token, (data) => {
        if (data.length > 30 && data[9] === 0x63 /* "type":"c(hange)" */) delivered += countRows(data);
        else if (data.toString().includes('subscription_ack')) acks++;
      }));
    }
    const subs = Array.from({ length: 10 }, (_, i) => ({ id: `f${i}`, sql: "SELECT id, room FROM livebench.events WHERE room = 'fan'" }));
    for (const ws of sockets) for (const s of subs) ws.send(JSON.stringify({ type: 'subscribe', subscription: s }));
    await until('fan-out acks', () => acks >= 10_000);
    const writes = 200;
    const expected = writes * 10_000;
    const started = performance.now();
    for (let i = 0; i < writes; i += 10) {
      await sql(`INSERT INTO livebench.events (room, sent_at) VALUES ${Array.from({ length: 10 }, () => "('fan', 0)").join(', ')}`);
    }
    const deadline = performance.now() + 60_000;
    while (delivered < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const elapsed = (performance.now() - started) / 1000;
    out.fan_out = {
      connections: 1000, subscriptions: 10_000, writes, delivered, expected,
      notifications_per_s: Math.round(delivered / elapsed), target_notifications_per_s: 150000,
    };
    for (const ws of sockets) ws.close();
  }

  // 3. Idle subscriptions: 1,000 connections x 100 subscriptions; server RSS before and after.
  {
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssMb(server.pid);
    let acks = 0;
    const sockets = [];
    for (let c = 0; c < 1000; c++) {
      sockets.push(await connect(port, token, (data) => { if (data.toString().includes('subscription_ack')) acks++; }));
    }
    for (const ws of sockets) {
      for (let i = 0; i < 100; i++) ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: `i${i}`, sql: `SELECT * FROM livebench.events WHERE room = 'idle-${i}'` } }));
      await new Promise((r) => setImmediate(r));
    }
    const deadline = performance.now() + 120_000;
    while (acks < 100_000 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssMb(server.pid);
    out.idle_subscriptions = { connections: 1000, subscriptions: acks, rss_before_mb: before, rss_after_mb: after, target_rss_mb: 500 };
    for (const ws of sockets) ws.close();
  }
  return out;
}
