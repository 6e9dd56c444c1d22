// STREAM benchmark: events inserted into one stream table (100 events per statement, several
// writers) with 100 subscriptions; reports events/s, deliveries/s, insert→delivery latency sampled
// on one subscription, and server RSS sampled every second (it must stay flat: buffers are capped).
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { latencyStats } from './lib.mjs';

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
  const marker = Buffer.from('"subscription_id":"s0"');
  const SEQ = Buffer.from('"_seq"');
  let measureFrom = Infinity;
  const sockets = [];
  for (let c = 0; c < 10; c++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    ws.on('message', (data) => {
      if (data.includes('"subscription_ack"')) { acks++; return; }
      if (!data.includes('"change_type":"insert"')) return;
      // One message may carry many rows (the events of one INSERT): count rows.
      let at = -1;
      while ((at = data.indexOf(SEQ, at + 1)) !== -1) delivered++;
      if (c !== 0 || !data.includes(marker)) return;
      const sent = Number(/"sent_at":([0-9.e+]+)/.exec(data.toString())[1]);
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
  for (const ws of sockets) ws.close();
  return {
    subscriptions: 100, target_events_per_s: eventsPerSecond, events: inserted, events_per_s: Math.round(inserted / elapsed),
    delivered, expected: inserted * 100, deliveries_per_s: Math.round(delivered / elapsed),
    latency: latencyStats(latencies), target_p99_ms: 5, rss_mb_per_second: rss,
  };
}
