// STREAM benchmark: events inserted into one stream table (100 events per statement, several
// writers) with 100 subscriptions; reports events/s, deliveries/s, insert→delivery latency sampled
// on one subscription, and server RSS sampled every second (it must stay flat: buffers are capped).
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { latencyStats } from './lib.mjs';
import { treeCpuMicros } from './pg.mjs';

function rssMb(pid) {
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024);
}

export async function benchStream(server, seconds, eventsPerSecond) {
  const { sql, port } = server;
  const token = (await server.post('/v1/api/auth/login', { user: 'root', password: 'bench-root-password' })).access_token;
  await sql('CREATE NAMESPACE IF NOT EXISTS streambench');
  await sql('CREATE STREAM TABLE streambench.events (room TEXT, sent_at DOUBLE) WITH (TTL_SECONDS = 10, MAX_BUFFER = 20000)');
  let delivered = 0;
  let acks = 0;
  const latencies = [];
  const marker = '"subscription_id":"s0"';
  const SEQ = '"_seq"';
  let measureFrom = Infinity;
  const sockets = [];
  // A client that does not keep up is closed by the server (SLOW_CONSUMER): reported, not hidden.
  const closedEarly = [];
  const errors = [];
  let closing = false;
  for (let c = 0; c < 10; c++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, {
      headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false,
      // The load generator counts rows by their ASCII keys; checking every byte for UTF-8 costs it CPU it shares with the server.
      skipUTF8Validation: true,
    });
    ws.on('close', (code) => { if (!closing) closedEarly.push(code); });
    ws.on('message', (data) => {
      // The message type is in its first bytes: the client looks at those, not at the whole message.
      const head = data.latin1Slice(0, Math.min(data.length, 80));
      if (head.includes('"subscription_ack"')) { acks++; return; }
      if (head.includes('"type":"error"')) { errors.push(JSON.parse(data.toString()).code); return; }
      if (!head.includes('"change_type":"insert"')) return;
      // One message may carry many rows (the events of one INSERT): count rows (each has one _seq).
      const text = data.latin1Slice(0, data.length);
      delivered += text.split(SEQ).length - 1;
      if (c !== 0 || !head.includes(marker)) return;
      const sent = Number(/"sent_at":([0-9.e+]+)/.exec(text)[1]);
      if (sent >= measureFrom) latencies.push(performance.timeOrigin + performance.now() - sent);
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    for (let i = 0; i < 10; i++) ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: `s${i}`, sql: 'SELECT * FROM streambench.events' } }));
    sockets.push(ws);
  }
  const deadlineAcks = performance.now() + 30_000;
  while (acks < 100 && performance.now() < deadlineAcks) await new Promise((r) => setTimeout(r, 10));
  const batch = 100;
  const statementsPerSecond = eventsPerSecond / batch;
  const total = Math.round(statementsPerSecond * (seconds + 1));
  const rss = [];
  const rssTimer = setInterval(() => rss.push(rssMb(server.pid)), 1000);
  const cpu0 = treeCpuMicros(server.pid);
  const me0 = process.cpuUsage();
  const started = performance.now();
  measureFrom = performance.timeOrigin + started + 1000;
  let inserted = 0;
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / statementsPerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const now = performance.timeOrigin + performance.now();
    const values = Array.from({ length: batch }, () => `('r', ${now})`).join(', ');
    pending.push(sql(`INSERT INTO streambench.events (room, sent_at) VALUES ${values}`).then(() => { inserted += batch; }));
    if (pending.length > 64) await pending.shift();
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - started) / 1000;
  const deadline = performance.now() + 15_000;
  while (delivered < inserted * 100 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  clearInterval(rssTimer);
  const drained = (performance.now() - started) / 1000;
  const cpu = treeCpuMicros(server.pid) - cpu0;
  const me = process.cpuUsage(me0);
  closing = true;
  for (const ws of sockets) ws.close();
  return {
    subscriptions: 100, target_events_per_s: eventsPerSecond, events: inserted, events_per_s: Math.round(inserted / elapsed),
    delivered, expected: inserted * 100, connections_closed_by_server: closedEarly.length, error_codes: [...new Set(errors)], deliveries_per_s: Math.round(delivered / elapsed),
    latency: latencyStats(latencies), target_p99_ms: 5,
    // Server CPU from the first INSERT to the last delivery (or the 15 s drain limit).
    server_cpu_us_per_event: Math.round((cpu / Math.max(1, inserted)) * 10) / 10,
    server_cpu_cores: Math.round((cpu / 1e6 / drained) * 100) / 100,
    loadgen_cpu_cores: Math.round(((me.user + me.system) / 1e6 / drained) * 100) / 100,
    rss_mb_per_second: rss,
  };
}
