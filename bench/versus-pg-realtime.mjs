// Issue 15's realtime workloads, our server and a throw-away PostgreSQL side by side (`--only pg-realtime`):
// 3. insert→notification, 8 writers (closed loop, single-row INSERTs) and 50 subscribers each receiving
//    every row. Ours: 50 WebSocket connections with one `SELECT * FROM rt.events` subscription each on a
//    SHARED table (one table everybody sees, as PostgreSQL's table is; all opened by root). PostgreSQL:
//    (a) AFTER INSERT trigger + pg_notify(row_to_json(NEW)) and 50 LISTEN connections (one pg.Client
//    each); (b) logical decoding with wal2json as Supabase Realtime does: one replication slot read with
//    pg_logical_slot_get_changes in a loop by a separate fan-out process (bench/pg-wal2json-fanout.mjs)
//    that hands every change to 50 in-process subscribers; that process's CPU is reported apart.
//    PostgreSQL runs with synchronous_commit on and off (SET per writer session); the cluster runs with
//    wal_level=logical for both (a) and (b).
//    Latency: from the INSERT's send time (embedded in the row as sent_at, ms since the epoch with
//    sub-ms precision) to each subscriber's receipt, every delivery counted after a 1 s warm-up.
//    Throughput: rows written and notifications delivered per second, over the time from the first
//    write to the last delivery. Server CPU per delivered notification: /proc of the server's process
//    tree over the same window.
// 8. STREAM events/s with 100 subscribers (ours only: PostgreSQL has no STREAM table): bench/stream.mjs
//    at the issue's 50k events/s offered, plus server and load-generator CPU around it.
// 9. RSS per idle connection and per idle subscription (ours: /proc/<pid>/status VmRSS and
//    smaps_rollup Pss before/after N connections, then M subscriptions each); PostgreSQL: RSS and PSS
//    summed over all its processes before/after N idle connections that each ran LISTEN.
import WebSocket from 'ws';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { latencyStats } from './lib.mjs';
import { treeCpuMicros, findPgBin, memKb, pgClients, treeMemKb } from './pg.mjs';
import { benchStream } from './stream.mjs';

const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const ratio = (a, b) => (b ? round(a / b, 2) : null);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const WRITERS = 8;
const SUBSCRIBERS = 50;
const SENT_AT = /"sent_at":([0-9.e+]+)/g;

async function until(what, done, ms = 60_000) {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Closed-loop writers for `seconds`; returns rows written. */
async function writeFor(seconds, insert) {
  let rows = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await insert(w, i);
      rows++;
    }
  }));
  return rows;
}

/**
 * One insert→notification run against a `sink` that counts deliveries: { reset(), drain(expected) →
 * { delivered, latencies, lastDelivery } }. Warm-up for 1 s (drained, not measured), then `seconds`.
 */
async function notifyRun({ seconds, insert, sink, serverCpu, extraCpu }) {
  await sink.reset(); // the previous run's deliveries must not satisfy this warm-up's drain
  const warm = await writeFor(1, insert);
  await sink.drain(warm * SUBSCRIBERS, 30_000);
  await sink.reset();
  const cpu0 = serverCpu();
  const me0 = process.cpuUsage();
  const t0 = now();
  const rows = await writeFor(seconds, insert);
  const writeSecs = (now() - t0) / 1000;
  const expected = rows * SUBSCRIBERS;
  const got = await sink.drain(expected, 30_000);
  const end = Math.max(got.lastDelivery, t0 + writeSecs * 1000);
  const elapsed = (end - t0) / 1000;
  const server = serverCpu() - cpu0;
  const me = process.cpuUsage(me0);
  const loadgen = me.user + me.system;
  const out = {
    writers: WRITERS, subscribers: SUBSCRIBERS, write_seconds: round(writeSecs, 2), seconds_to_last_delivery: round(elapsed, 2),
    rows, rows_per_s: Math.round(rows / writeSecs), delivered: got.delivered, expected, lost: expected - got.delivered,
    notifications_per_s: Math.round(got.delivered / elapsed),
    latency: got.latency,
    server_cpu_us_per_notification: round(server / got.delivered, 2), server_cpu_us_per_row: round(server / rows),
    server_cpu_cores: round(server / 1e6 / elapsed, 2),
    loadgen_cpu_us_per_notification: round(loadgen / got.delivered, 2), loadgen_cpu_cores: round(loadgen / 1e6 / elapsed, 2),
  };
  if (extraCpu) Object.assign(out, extraCpu(got, elapsed, server));
  return out;
}

/** A sink fed by this process's own callbacks (our WebSockets, pg LISTEN). */
function localSink() {
  const sink = {
    delivered: 0, latencies: [], lastDelivery: 0,
    record(sentAt) {
      const t = now();
      sink.delivered++;
      sink.latencies.push(t - sentAt);
      sink.lastDelivery = t;
    },
    async reset() { sink.delivered = 0; sink.latencies = []; },
    async drain(expected, ms) {
      const deadline = performance.now() + ms;
      while (sink.delivered < expected && performance.now() < deadline) await sleep(5);
      return { delivered: sink.delivered, latency: latencyStats(sink.latencies), lastDelivery: sink.lastDelivery };
    },
  };
  return sink;
}

async function wsConnect(port, token, onMessage) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  ws.on('message', onMessage);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return ws;
}

/** True when the newest PostgreSQL's lib dir has wal2json.so. */
export function hasWal2json() {
  return existsSync(join(findPgBin(), '..', 'lib', 'wal2json.so'));
}

/** Workload 3 on both servers. */
async function workload3(server, token, pg, seconds, oursOnly = false) {
  const out = {};
  // Ours.
  {
    const { sql, port } = server;
    await sql('CREATE NAMESPACE IF NOT EXISTS rt');
    await sql("CREATE SHARED TABLE rt.events (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), writer INT, body TEXT, sent_at DOUBLE) WITH (FLUSH_POLICY = 'rows:100000000')");
    const sink = localSink();
    let acks = 0;
    const sockets = [];
    for (let s = 0; s < SUBSCRIBERS; s++) {
      const ws = await wsConnect(port, token, (data) => {
        if (data.includes('"subscription_ack"')) { acks++; return; }
        if (!data.includes('"change_type":"insert"')) return;
        // The inserts of one commit group can share a message: every row is one delivery.
        for (const m of data.toString().matchAll(SENT_AT)) sink.record(Number(m[1]));
      });
      ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: 'events', sql: 'SELECT * FROM rt.events' } }));
      sockets.push(ws);
    }
    await until('acks', () => acks >= SUBSCRIBERS);
    try {
      out.ours = await notifyRun({
        seconds, sink, serverCpu: () => treeCpuMicros(server.pid),
        insert: (w, i) => sql('INSERT INTO rt.events (writer, body, sent_at) VALUES ($1, $2, $3)', [w, `message ${i} from writer ${w}`, now()]),
      });
    } finally {
      for (const ws of sockets) ws.close();
    }
  }

  if (oursOnly) return out;
  const admin = await pg.connect();
  // (a) trigger + NOTIFY, 50 LISTEN connections.
  await admin.query('CREATE TABLE events_notify (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, writer INT, body TEXT, sent_at DOUBLE PRECISION)');
  await admin.query(`CREATE FUNCTION events_notify_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('events', row_to_json(NEW)::text); RETURN NEW; END $$`);
  await admin.query('CREATE TRIGGER events_notify_tr AFTER INSERT ON events_notify FOR EACH ROW EXECUTE FUNCTION events_notify_fn()');
  {
    const sink = localSink();
    const listeners = [];
    for (let s = 0; s < SUBSCRIBERS; s++) {
      const c = await pg.connect();
      c.on('notification', (msg) => { for (const m of msg.payload.matchAll(SENT_AT)) sink.record(Number(m[1])); });
      await c.query('LISTEN events');
      listeners.push(c);
    }
    try {
      for (const sc of ['on', 'off']) {
        const writers = await pgClients(pg, WRITERS, sc);
        try {
          out[`pg_notify_sync_commit_${sc}`] = await notifyRun({
            seconds, sink, serverCpu: () => pg.cpuMicros(),
            insert: (w, i) => writers[w].query('INSERT INTO events_notify (writer, body, sent_at) VALUES ($1, $2, $3)', [w, `message ${i} from writer ${w}`, now()]),
          });
        } finally {
          await Promise.all(writers.map((c) => c.end()));
        }
      }
    } finally {
      await Promise.all(listeners.map((c) => c.end()));
    }
  }

  // (b) wal2json: one slot, a separate fan-out process, 50 in-process subscribers there.
  if (!hasWal2json()) {
    out.pg_wal2json = { skipped: 'wal2json.so not found in PostgreSQL\'s lib dir: apt-get install -y postgresql-15-wal2json' };
  } else {
    await admin.query('CREATE TABLE events_wal (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, writer INT, body TEXT, sent_at DOUBLE PRECISION)');
    await admin.query("SELECT pg_create_logical_replication_slot('rt_bench', 'wal2json')");
    const pollIdleMs = 5;
    const child = fork(join(dirname(fileURLToPath(import.meta.url)), 'pg-wal2json-fanout.mjs'),
      [String(pg.port), 'rt_bench', String(SUBSCRIBERS), String(pollIdleMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const replies = [];
    let waiting;
    child.on('message', (m) => {
      if (m.error) process.stderr.write(`wal2json fan-out: ${m.error}\n`);
      replies.push(m);
      if (waiting) { const w = waiting; waiting = undefined; w(); }
    });
    const next = async () => {
      while (!replies.length) await new Promise((r) => { waiting = r; });
      const m = replies.shift();
      if (m.error) throw new Error(`wal2json fan-out failed: ${m.error}`);
      return m;
    };
    await next(); // ready
    const sink = {
      async reset() { child.send({ cmd: 'reset' }); await next(); },
      async drain(expected, timeoutMs) {
        child.send({ cmd: 'drain', expected, timeoutMs });
        const m = await next();
        sink.last = m;
        return { delivered: m.delivered, latency: m.latency, lastDelivery: m.last_delivery_ms };
      },
    };
    try {
      for (const sc of ['on', 'off']) {
        const writers = await pgClients(pg, WRITERS, sc);
        try {
          out[`pg_wal2json_sync_commit_${sc}`] = await notifyRun({
            seconds, sink, serverCpu: () => pg.cpuMicros(),
            insert: (w, i) => writers[w].query('INSERT INTO events_wal (writer, body, sent_at) VALUES ($1, $2, $3)', [w, `message ${i} from writer ${w}`, now()]),
            extraCpu: (got, elapsed, server) => ({
              fanout_process_cpu_us_per_notification: round(sink.last.cpu_us / got.delivered, 2),
              fanout_process_cpu_cores: round(sink.last.cpu_us / 1e6 / elapsed, 2),
              server_plus_fanout_cpu_us_per_notification: round((server + sink.last.cpu_us) / got.delivered, 2),
              slot_polls: sink.last.polls, poll_idle_ms: pollIdleMs,
            }),
          });
        } finally {
          await Promise.all(writers.map((c) => c.end()));
        }
      }
    } finally {
      child.send({ cmd: 'exit' });
      await new Promise((r) => child.once('exit', r));
      await admin.query("SELECT pg_drop_replication_slot('rt_bench')");
    }
  }
  await admin.end();

  const r = (pgRun) => pgRun && !pgRun.skipped ? {
    p99: ratio(out.ours.latency.p99_ms, pgRun.latency.p99_ms),
    p50: ratio(out.ours.latency.p50_ms, pgRun.latency.p50_ms),
    server_cpu_per_notification: ratio(out.ours.server_cpu_us_per_notification, pgRun.server_cpu_us_per_notification),
    notifications_per_s: ratio(out.ours.notifications_per_s, pgRun.notifications_per_s),
  } : undefined;
  out.ratios_ours_vs = {
    pg_notify_sync_commit_on: r(out.pg_notify_sync_commit_on), pg_notify_sync_commit_off: r(out.pg_notify_sync_commit_off),
    pg_wal2json_sync_commit_on: r(out.pg_wal2json_sync_commit_on), pg_wal2json_sync_commit_off: r(out.pg_wal2json_sync_commit_off),
  };
  out.targets = { p99_vs_pg_notify: '<= 0.5', server_cpu_per_notification_vs_pg_notify: '<= 0.3', notifications_per_s_vs_pg_notify: '>= 1.5' };
  return out;
}

/** Workload 9. */
async function workload9(server, token, pg, connections, subsPerConnection) {
  const out = {};
  const settle = async () => { await sleep(1500); };
  // Ours.
  {
    const { port, sql } = server;
    await sql('CREATE NAMESPACE IF NOT EXISTS rt');
    await sql("CREATE SHARED TABLE IF NOT EXISTS rt.idle (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), room TEXT) WITH (FLUSH_POLICY = 'rows:100000000')");
    await settle();
    const heapMb = async () => {
      const res = await sql("SELECT metric_value FROM system.stats WHERE metric_name = 'memory_heap_used_bytes'");
      return round(Number(res.results[0].rows[0][0]) / 2 ** 20);
    };
    const m0 = memKb(server.pid);
    const h0 = await heapMb();
    let acks = 0;
    const sockets = [];
    for (let c = 0; c < connections; c++) {
      sockets.push(await wsConnect(port, token, (data) => { if (data.includes('"subscription_ack"')) acks++; }));
    }
    await settle();
    const m1 = memKb(server.pid);
    const h1 = await heapMb();
    for (const [c, ws] of sockets.entries()) {
      for (let i = 0; i < subsPerConnection; i++) {
        ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: `i${i}`, sql: `SELECT * FROM rt.idle WHERE room = 'idle-${c}-${i}'` } }));
      }
      await new Promise((r) => setImmediate(r));
    }
    await until('idle acks', () => acks >= connections * subsPerConnection, 120_000);
    await settle();
    const m2 = memKb(server.pid);
    const h2 = await heapMb();
    const subs = connections * subsPerConnection;
    out.ours = {
      connections, subscriptions: subs, subscription_sql: "SELECT * FROM rt.idle WHERE room = '<distinct per subscription>'",
      rss_mb: { before: round(m0.rss / 1024), connected: round(m1.rss / 1024), subscribed: round(m2.rss / 1024) },
      v8_heap_used_mb: { before: h0, connected: h1, subscribed: h2, note: 'system.stats; includes garbage not yet collected' },
      rss_kb_per_connection: round((m1.rss - m0.rss) / connections, 1),
      rss_kb_per_subscription: round((m2.rss - m1.rss) / subs, 2),
      pss_kb_per_connection: round((m1.pss - m0.pss) / connections, 1),
      pss_kb_per_subscription: round((m2.pss - m1.pss) / subs, 2),
    };
    for (const ws of sockets) ws.close();
  }
  // PostgreSQL: idle connections that each LISTEN on a channel of their own.
  {
    const pgConnections = Math.min(connections, 200);
    await settle();
    const m0 = treeMemKb(pg.pid);
    const clients = [];
    for (let c = 0; c < pgConnections; c++) {
      const client = await pg.connect();
      await client.query(`LISTEN idle_${c}`);
      clients.push(client);
    }
    await settle();
    const m1 = treeMemKb(pg.pid);
    out.pg_listen = {
      connections: pgConnections, processes: { before: m0.processes, after: m1.processes },
      rss_kb_per_connection: round((m1.rss - m0.rss) / pgConnections, 1),
      pss_kb_per_connection: round((m1.pss - m0.pss) / pgConnections, 1),
      note: 'summed over the postmaster and all its children; RSS counts shared buffers once per process that touched them, PSS splits them',
    };
    await Promise.all(clients.map((c) => c.end()));
  }
  out.ours.pss_kb_per_connection_with_its_subscriptions = round((out.ours.pss_kb_per_connection * connections
    + out.ours.pss_kb_per_subscription * connections * subsPerConnection) / connections, 1);
  out.ratio_ours_pss_per_connection_with_subscriptions_vs_pg_listen_connection = round(
    out.ours.pss_kb_per_connection_with_its_subscriptions / out.pg_listen.pss_kb_per_connection, 3);
  return out;
}

/**
 * Workloads 3, 8 and 9. `server`: startBenchServer with live_subscriptions_per_user_max raised;
 * `pg`: startPostgres with wal_level=logical and room for the connections.
 */
export async function benchRealtimeVersusPg(server, pg, seconds, { streamEvents = 50_000, idleConnections = 200, idleSubsPerConnection = 100, parts = ['3', '8', '9'] } = {}) {
  const token = (await server.post('/v1/api/auth/login', { user: 'root', password: 'bench-root-password' })).access_token;
  const out = {};
  // Idle memory first: on a fresh server the heap holds no garbage of the other workloads for the GC
  // to give back in the middle of the measurement (that made the per-subscription figure negative).
  if (parts.includes('9')) out.idle_memory = await workload9(server, token, pg, idleConnections, idleSubsPerConnection);
  // '3-ours' runs our side of workload 3 alone (for comparing builds of our server; no ratios).
  if (parts.includes('3') || parts.includes('3-ours')) {
    out.insert_to_notification_8_writers_50_subscribers = await workload3(server, token, pg, seconds, !parts.includes('3'));
  }
  if (parts.includes('8')) {
    // benchStream's CPU and rates are those of the measured part (after its warm-up).
    const s = await benchStream(server, seconds, streamEvents);
    out.stream_100_subscribers = {
      ...s, target_p99_ms: 20, issue_target_events_per_s: 50_000,
      subscriptions_layout: '10 WebSocket connections x 10 subscriptions (SELECT * FROM streambench.events), 100 events per INSERT',
      latency_sampled_on: `every row of every subscription, after a ${s.warmup_s} s warm-up at the same rate (bench/stream-rows.mjs, read in 2 subscriber threads); cold_start: the warm-up's events`,
      server_cpu_us_per_delivery: round(s.server_cpu_us_per_event / s.subscriptions, 2),
      pg_comparison: 'none: PostgreSQL has no STREAM table (NOTIFY at this rate is workload 3\'s path)',
    };
  }
  return out;
}
