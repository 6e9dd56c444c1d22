// Child process of bench/versus-pg-realtime.mjs (workload 3b): what Supabase Realtime does with
// "Postgres Changes": ONE logical decoder (a wal2json replication slot read with
// pg_logical_slot_get_changes in a loop) and the fan-out in a separate service. Here that service is
// this process: it polls the slot, parses each wal2json (format-version 2) change and hands it to
// SUBSCRIBERS in-process "subscribers" (callbacks that record the insert→receipt latency). Its own CPU
// (process.cpuUsage) is reported apart from PostgreSQL's and from the load generator's.
// Poll loop: when a call returned changes, call again at once; when it returned none, wait
// POLL_IDLE_MS; at most 1,000 changes per call (the function decodes them all before it returns any, so a
// larger batch adds latency) (Realtime's default poll interval is 100 ms; 5 ms here, to give latency a fair chance).
// Protocol with the parent (IPC): {cmd:'reset'} → counters and latencies cleared, CPU baseline taken,
// replies {reset:true}; {cmd:'drain', expected, timeoutMs} → replies once `expected` deliveries arrived
// (or on timeout) with { delivered, latencies stats, cpu_us, last_delivery_ms, polls };
// {cmd:'exit'}.
import pg from 'pg';
import { latencyStats } from './lib.mjs';

const [port, slot, subscribersArg, pollIdleArg] = process.argv.slice(2);
const SUBSCRIBERS = Number(subscribersArg);
const POLL_IDLE_MS = Number(pollIdleArg ?? '5');
const now = () => performance.timeOrigin + performance.now();

const client = new pg.Client({ host: '127.0.0.1', port: Number(port), user: 'bench', database: 'postgres' });
await client.connect();

let delivered = 0;
let latencies = [];
let cpu0 = process.cpuUsage();
let lastDelivery = 0;
let polls = 0;
let stopping = false;

// The subscribers: each receives every change object (as a Realtime channel would before encoding it
// for its socket) and records its latency.
const subscribers = Array.from({ length: SUBSCRIBERS }, () => ({
  received: 0,
  deliver(change, sentAt) {
    this.received++;
    delivered++;
    latencies.push(now() - sentAt);
  },
}));

async function pollLoop() {
  const text = `SELECT data FROM pg_logical_slot_get_changes($1, NULL, 1000, 'format-version', '2', 'include-transaction', 'false')`;
  while (!stopping) {
    const res = await client.query(text, [slot]);
    polls++;
    for (const { data } of res.rows) {
      const change = JSON.parse(data);
      if (change.action !== 'I') continue;
      let sentAt = NaN;
      for (const c of change.columns) if (c.name === 'sent_at') sentAt = Number(c.value);
      for (const s of subscribers) s.deliver(change, sentAt);
      lastDelivery = now();
    }
    if (res.rows.length === 0) await new Promise((r) => setTimeout(r, POLL_IDLE_MS));
  }
}
const loop = pollLoop().catch((error) => {
  process.send({ error: String(error.stack ?? error) });
});

process.on('message', async (msg) => {
  if (msg.cmd === 'reset') {
    delivered = 0;
    latencies = [];
    polls = 0;
    cpu0 = process.cpuUsage();
    process.send({ reset: true });
  } else if (msg.cmd === 'drain') {
    const deadline = performance.now() + (msg.timeoutMs ?? 30_000);
    while (delivered < msg.expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const cpu = process.cpuUsage(cpu0);
    process.send({ delivered, latency: latencyStats(latencies), cpu_us: cpu.user + cpu.system, last_delivery_ms: lastDelivery, polls });
  } else if (msg.cmd === 'exit') {
    stopping = true;
    await loop;
    await client.end();
    process.exit(0);
  }
});
process.send({ ready: true });
