// Issue 15, workloads 4, 5 and 7 (`npm run bench -- --only pg-fanout`):
// 4. fan-out: C WebSocket connections x 10 subscriptions (subscription fK watches table fan.tK), one
//    writer inserting at a steady rate round-robin into the 10 tables: every write reaches C
//    subscriptions. PostgreSQL: C connections each LISTENing on 10 channels, an AFTER INSERT trigger on
//    each of 10 tables doing pg_notify('cK', sent_at) (max_connections raised for it).
// 5. reconnect storm: N clients subscribed to one table, one writer inserting rows numbered w = 0, 1, ...
//    at a steady rate; every client records the newest `_seq` it got; all N drop their sockets at once
//    (terminate: no close handshake) and reconnect with options.from = that `_seq`; writes go on
//    throughout. Lost (a w never received) and duplicated (a w received twice) counted per client.
//    Ours only: LISTEN/NOTIFY has no resume (a notification sent while a listener is away is gone).
// 7. flush: STORAGE FLUSH TABLE of R hot rows (rows/s from the job's duration), next to DuckDB alone
//    (@duckdb/node-api, in-memory) writing the same rows (read back from our segment: same columns, same
//    values, `_seq` included) to a zstd Parquet file with COPY ... TO.
// Server CPU from /proc (ours: the node process; PostgreSQL: the postmaster and every backend), the load
// generator's CPU from process.cpuUsage, server memory as RSS (ours) and PSS summed over the process
// tree (PostgreSQL: RSS would count shared buffers once per backend).
import WebSocket from 'ws';
import { readdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bulkInsert, latencyStats, waitForJob } from './lib.mjs';
import { memKb, treeCpuMicros, treeMemKb } from './pg.mjs';

const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const ratio = (a, b) => (b ? round(a / b, 3) : null);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const SEQ = Buffer.from('"_seq"');
const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";

function countRows(data) {
  let n = 0;
  for (let at = data.indexOf(SEQ); at !== -1; at = data.indexOf(SEQ, at + 1)) n++;
  return n;
}

function rssMb(pid) {
  return Math.round(memKb(pid).rss / 1024);
}

/** PSS (MB) of `pid` and all its descendants: shared memory split between the processes sharing it. */
function treePssMb(pid) {
  return Math.round(treeMemKb(pid).pss / 1024);
}

async function until(what, done, ms = 60_000) {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function openWs(port, token, onMessage) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  ws.on('message', onMessage);
  ws.on('error', () => {}); // a terminated socket may report ECONNRESET; handled by the caller
  return new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject); });
}

/** Calls `write(i)` (not awaited) `rate` times a second until `stop()`; returns the count written. */
async function steadyWriter(rate, write, stop) {
  const started = performance.now();
  let i = 0;
  while (!stop()) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    write(i++);
  }
  return i;
}

/**
 * Measures a fan-out run: `deliveredRef()` counts notifications received so far, `latencies` fills with
 * samples; warm-up of 1 s, then `seconds` measured, then up to 10 s to drain.
 */
async function measureFanout({ seconds, rate, write, delivered, latencies, serverCpu, serverMem, perWrite, setMeasureFrom, failed }) {
  let stopAt = Infinity;
  let writes = 0;
  const base = delivered();
  const writer = steadyWriter(rate, (i) => { writes++; write(i); }, () => performance.now() >= stopAt);
  stopAt = performance.now() + (seconds + 1) * 1000;
  await sleep(1000);
  setMeasureFrom(performance.timeOrigin + performance.now());
  const d0 = delivered();
  const cpu0 = serverCpu();
  const me0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const d = delivered() - d0;
  const server = serverCpu() - cpu0;
  const me = process.cpuUsage(me0);
  const memory_mb = serverMem();
  await writer;
  const expected = writes * perWrite;
  const deadline = performance.now() + 10_000;
  while (delivered() - base < expected && performance.now() < deadline) await sleep(20);
  return {
    writes_per_s: rate, writes, failed_writes: failed(), expected_notifications: expected, delivered_notifications: delivered() - base,
    delivered_within_10_s_of_the_last_write: round((delivered() - base) / expected, 4),
    measured_s: round(elapsed, 2), notifications_per_s: Math.round(d / elapsed),
    latency: latencyStats(latencies),
    server_cpu_us_per_notification: round(server / d, 2), server_cpu_cores: round(server / 1e6 / elapsed, 2),
    server_memory_mb: memory_mb,
    loadgen_cpu_us_per_notification: round((me.user + me.system) / d, 2), loadgen_cpu_cores: round((me.user + me.system) / 1e6 / elapsed, 2),
  };
}

/** Workload 4, ours. */
async function fanoutOurs(server, token, { connections, seconds, rates }) {
  const { sql, port } = server;
  await sql('CREATE NAMESPACE IF NOT EXISTS fan');
  for (let k = 0; k < 10; k++) await sql(`CREATE SHARED TABLE fan.t${k} (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), sent_at DOUBLE) ${NO_FLUSH}`);
  const rssIdle = rssMb(server.pid);
  let delivered = 0;
  let acks = 0;
  let measureFrom = Infinity;
  let latencies = [];
  const sockets = [];
  // Latency is sampled on every 10th connection (100 samples per write, every table).
  const onMessage = (sampled) => (data) => {
    if (data.length > 30 && data[9] === 0x63 /* "type":"c(hange)" */) {
      delivered += countRows(data);
      if (sampled) {
        const now = performance.timeOrigin + performance.now();
        const re = /"sent_at":([0-9.e+]+)/g;
        for (let m; (m = re.exec(data.toString())); ) if (Number(m[1]) >= measureFrom) latencies.push(now - Number(m[1]));
      }
    } else if (data.includes('subscription_ack')) acks++;
  };
  const connectStarted = performance.now();
  for (let c = 0; c < connections; c++) sockets.push(await openWs(port, token, onMessage(c % 10 === 0)));
  for (const ws of sockets) {
    for (let k = 0; k < 10; k++) ws.send(JSON.stringify({ type: 'subscribe', subscription: { id: `f${k}`, sql: `SELECT id, sent_at FROM fan.t${k}` } }));
  }
  await until('fan-out acks', () => acks >= connections * 10, 120_000);
  const setupMs = Math.round(performance.now() - connectStarted);
  await sleep(500);
  const rssSubscribed = rssMb(server.pid);
  const runs = {};
  for (const rate of rates) {
    latencies = [];
    measureFrom = Infinity;
    let failed = 0;
    runs[`writes_${rate}_per_s`] = await measureFanout({
      seconds, rate, latencies, perWrite: connections, failed: () => failed,
      write: (i) => { void sql(`INSERT INTO fan.t${i % 10} (sent_at) VALUES ($1)`, [performance.timeOrigin + performance.now()]).catch(() => { failed++; }); },
      delivered: () => delivered, serverCpu: () => treeCpuMicros(server.pid), serverMem: () => rssMb(server.pid),
      setMeasureFrom: (t) => { measureFrom = t; },
    });
  }
  for (const ws of sockets) ws.terminate();
  return {
    connections, subscriptions: acks, setup_ms: setupMs, latency_sampled_on: 'every 10th connection (100 samples per write), after a 1 s warm-up',
    server_memory: 'RSS (server_memory_mb: at the end of the measured window)', rss_idle_mb: rssIdle, rss_subscribed_mb: rssSubscribed, runs,
  };
}

/** Workload 4, PostgreSQL: LISTEN on 10 channels per connection, trigger + pg_notify per table. */
async function fanoutPg(pg, { connections, seconds, rates }) {
  const admin = await pg.connect();
  await admin.query(`CREATE FUNCTION fan_notify() RETURNS trigger AS $$
    BEGIN PERFORM pg_notify(TG_ARGV[0], NEW.sent_at::text); RETURN NEW; END $$ LANGUAGE plpgsql`);
  for (let k = 0; k < 10; k++) {
    await admin.query(`CREATE TABLE fan_t${k} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sent_at DOUBLE PRECISION)`);
    await admin.query(`CREATE TRIGGER fan_t${k}_notify AFTER INSERT ON fan_t${k} FOR EACH ROW EXECUTE FUNCTION fan_notify('c${k}')`);
  }
  const pssIdle = treePssMb(pg.pid);
  let delivered = 0;
  let measureFrom = Infinity;
  let latencies = [];
  const clients = [];
  const connectStarted = performance.now();
  for (let c = 0; c < connections; c += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, connections - c) }, async (_, j) => {
      const client = await pg.connect();
      const sampled = (c + j) % 10 === 0;
      client.on('notification', (msg) => {
        delivered++;
        if (sampled) {
          const sent = Number(msg.payload);
          if (sent >= measureFrom) latencies.push(performance.timeOrigin + performance.now() - sent);
        }
      });
      await client.query(Array.from({ length: 10 }, (_, k) => `LISTEN c${k};`).join(' '));
      return client;
    }));
    clients.push(...batch);
  }
  const setupMs = Math.round(performance.now() - connectStarted);
  await sleep(500);
  const pssSubscribed = treePssMb(pg.pid);
  // One writer connection per in-flight insert would differ from ours; a small pool of 4 keeps up.
  const writers = await Promise.all(Array.from({ length: 4 }, () => pg.connect()));
  try {
    const runs = {};
    // Each writer connection runs its inserts one after another (a chain), as `pg` wants.
    const chains = writers.map(() => Promise.resolve());
    for (const rate of rates) {
      latencies = [];
      measureFrom = Infinity;
      let failed = 0;
      runs[`writes_${rate}_per_s`] = await measureFanout({
        seconds, rate, latencies, perWrite: connections, failed: () => failed,
        write: (i) => {
          const sent = performance.timeOrigin + performance.now();
          chains[i % 4] = chains[i % 4].then(() => writers[i % 4].query(`INSERT INTO fan_t${i % 10} (sent_at) VALUES ($1)`, [sent])).catch(() => { failed++; });
        },
        delivered: () => delivered, serverCpu: () => pg.cpuMicros(), serverMem: () => treePssMb(pg.pid),
        setMeasureFrom: (t) => { measureFrom = t; },
      });
    }
    return {
      connections, listen_channels_per_connection: 10, setup_ms: setupMs, synchronous_commit: 'on',
      latency_sampled_on: 'every 10th connection (100 samples per write), after a 1 s warm-up (only notifications that arrived)',
      server_memory: 'PSS summed over postmaster + backends (server_memory_mb: at the end of the measured window)',
      pss_idle_mb: pssIdle, pss_listening_mb: pssSubscribed, runs,
    };
  } finally {
    await Promise.all([...clients, ...writers, admin].map((c) => c.end().catch(() => {})));
  }
}

/** Workload 5: reconnect storm, ours. */
async function reconnectStorm(server, token, { clients: n, rate, beforeDropMs, afterDropMs, prefill }) {
  const { sql, port } = server;
  await sql('CREATE NAMESPACE IF NOT EXISTS storm');
  await sql(`CREATE SHARED TABLE storm.events (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), w BIGINT) ${NO_FLUSH}`);
  // Rows from before the subscriptions (w < 0, never delivered): hot versions every resume has to look through.
  for (let i = 0; i < prefill; i += 1000) {
    const ws = Array.from({ length: Math.min(1000, prefill - i) }, (_, k) => `(${-1 - i - k})`);
    await sql(`INSERT INTO storm.events (w) VALUES ${ws.join(', ')}`);
  }
  const state = Array.from({ length: n }, () => ({
    ws: null, lastSeq: null, seen: new Map(), acks: 0, errors: [], resumedRows: 0, reconnectMs: null, gen: 0, maxWAtDrop: -1, issuedAtAck: 0,
  }));
  let issued = 0; // writes sent so far
  const handle = (s, gen) => (data) => {
    if (gen !== s.gen) return; // a late frame of a dropped socket: the client no longer reads it
    const msg = JSON.parse(data.toString());
    if (msg.type === 'subscription_ack') {
      s.acks++;
      if (s.dropAt && s.reconnectMs === null) { s.reconnectMs = performance.now() - s.dropAt; s.issuedAtAck = issued; }
    }
    if (msg.type === 'error') { s.errors.push(msg); return; }
    const rows = msg.type === 'change' && msg.change_type === 'insert' ? msg.rows
      : msg.type === 'initial_data_batch' ? msg.rows : undefined;
    if (msg.type !== 'change' && msg.type !== 'initial_data_batch' && msg.type !== 'subscription_ack') return;
    if (msg.type === 'change' && msg.change_type !== 'insert') { s.errors.push({ unexpected: msg.change_type }); return; }
    for (const row of rows ?? []) {
      const w = Number(row.w);
      s.seen.set(w, (s.seen.get(w) ?? 0) + 1);
      if (s.lastSeq === null || BigInt(row._seq) > BigInt(s.lastSeq)) s.lastSeq = row._seq;
      // Rows written while the client was away (after the newest it held, before its resumed ack).
      if (gen > 1 && w > s.maxWAtDrop && w < s.issuedAtAck) s.resumedRows++;
    }
    const bc = msg.batch_control;
    // The first batch follows the ack unasked; each later one is asked for after the one before it.
    if (msg.type === 'initial_data_batch' && bc && bc.has_more) s.ws.send(JSON.stringify({ type: 'next_batch', subscription_id: 'storm', last_seq_id: bc.last_seq_id }));
  };
  const subscribe = async (s, from) => {
    const gen = ++s.gen;
    s.ws = await openWs(port, token, handle(s, gen));
    const subscription = { id: 'storm', sql: 'SELECT id, w FROM storm.events' };
    if (from !== undefined) subscription.options = { from, batch_size: 10_000 };
    s.ws.send(JSON.stringify({ type: 'subscribe', subscription }));
  };
  for (const s of state) await subscribe(s);
  await until('storm acks', () => state.every((s) => s.acks >= 1));
  // Writes start after every client is subscribed: each must see every row w = 0 .. writes-1.
  let stop = false;
  let written = 0;
  const pending = new Set();
  const writer = steadyWriter(rate, (i) => {
    issued = i + 1;
    const p = sql('INSERT INTO storm.events (w) VALUES ($1)', [i]).then(() => { written++; }, (e) => { throw e; });
    pending.add(p); p.finally(() => pending.delete(p)).catch(() => {});
  }, () => stop);
  await sleep(beforeDropMs);
  // The storm: every socket dropped in the same turn, then every client reconnects at once.
  const dropAt = performance.now();
  const lastSeqAtDrop = [];
  for (const s of state) { s.gen++; s.dropAt = dropAt; lastSeqAtDrop.push(s.lastSeq); s.maxWAtDrop = Math.max(-1, ...s.seen.keys()); s.ws.terminate(); }
  const cpu0 = treeCpuMicros(server.pid);
  const me0 = process.cpuUsage();
  await Promise.all(state.map((s) => subscribe(s, s.lastSeq ?? undefined)));
  await until('resumed acks', () => state.every((s) => s.acks >= 2), 120_000);
  const allResumedMs = Math.round(performance.now() - dropAt);
  const stormCpuMs = Math.round((treeCpuMicros(server.pid) - cpu0) / 1000);
  const me = process.cpuUsage(me0);
  const loadgenStormCpuMs = Math.round((me.user + me.system) / 1000);
  await sleep(afterDropMs);
  stop = true;
  const writes = await writer;
  await Promise.all([...pending]);
  // Every client must now get every row 0 .. writes-1 (20 s at most).
  const complete = (s) => s.seen.size >= writes;
  const deadline = performance.now() + 20_000;
  while (!state.every(complete) && performance.now() < deadline) await sleep(50);
  const perClient = state.map((s, i) => {
    let lost = 0;
    const lostW = [];
    for (let w = 0; w < writes; w++) if (!s.seen.has(w)) { lost++; if (lostW.length < 10) lostW.push(w); }
    let duplicated = 0;
    const dupW = [];
    for (const [w, c] of s.seen) if (c > 1) { duplicated += c - 1; if (dupW.length < 10) dupW.push(w); }
    const extra = [...s.seen.keys()].filter((w) => w < 0 || w >= writes).length;
    return { client: i, lost, duplicated, extra, lostW, dupW, errors: s.errors.slice(0, 3), lastSeqAtDrop: lastSeqAtDrop[i], resumedRows: s.resumedRows };
  });
  for (const s of state) s.ws.terminate();
  const bad = perClient.filter((c) => c.lost || c.duplicated || c.extra || c.errors.length);
  const reconnect = state.map((s) => s.reconnectMs).filter((x) => x !== null);
  const resumed = perClient.map((c) => c.resumedRows);
  return {
    clients: n, writes_per_s: rate, prefilled_hot_rows: prefill, writes, rows_confirmed: written, drop_after_ms: beforeDropMs, writes_after_drop_ms: afterDropMs,
    lost_events_total: perClient.reduce((a, c) => a + c.lost, 0),
    duplicated_events_total: perClient.reduce((a, c) => a + c.duplicated, 0),
    clients_with_loss: perClient.filter((c) => c.lost).length,
    clients_with_duplicates: perClient.filter((c) => c.duplicated).length,
    clients_with_errors: perClient.filter((c) => c.errors.length).length,
    rows_written_while_away_per_client: { min: Math.min(...resumed), max: Math.max(...resumed), note: 'rows after the newest one a client held at the drop and before its resumed ack: what the resume had to catch up' },
    resubscribe_latency: latencyStats(reconnect), all_resumed_ms: allResumedMs, server_cpu_ms_during_storm: stormCpuMs, loadgen_cpu_ms_during_storm: loadgenStormCpuMs,
    evidence: bad.slice(0, 20), // the first clients that lost, duplicated or erred (empty when 0 and 0)
  };
}

function findParquet(dir, name) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.parquet') && p.includes(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Workload 7: our flush vs DuckDB alone writing the same rows to zstd Parquet. */
async function flushVersusDuckdb(server, rows) {
  const { sql } = server;
  await sql('CREATE NAMESPACE IF NOT EXISTS flushbench');
  await sql(`CREATE SHARED TABLE flushbench.big (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) ${NO_FLUSH}`);
  let t = performance.now();
  await bulkInsert(sql, 'flushbench.big', 'id, user_id, body, n, score', 0, rows,
    (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`, 1000, 4);
  const loadMs = Math.round(performance.now() - t);
  const cpu0 = treeCpuMicros(server.pid);
  t = performance.now();
  const res = await sql('STORAGE FLUSH TABLE flushbench.big');
  const job = await waitForJob(sql, res.results[0].message);
  const wallMs = performance.now() - t;
  const cpuMs = (treeCpuMicros(server.pid) - cpu0) / 1000;
  const files = findParquet(server.dataDir, join('flushbench', 'big'));
  const ours = {
    rows: job.rows_processed, job_ms: job.result.duration_ms, wall_ms: Math.round(wallMs),
    rows_per_s: Math.round(job.rows_processed / (job.result.duration_ms / 1000)),
    server_cpu_us_per_row: round((cpuMs * 1000) / job.rows_processed, 2),
    files: files.length, bytes: files.reduce((a, f) => a + statSync(f).size, 0),
  };

  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-bench-duck-'));
  try {
    const duck = {};
    for (const threads of [2, 1]) {
      const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
      const con = await inst.connect();
      // The same rows and columns as our segment (its `_seq` and any internal columns included).
      await con.run(`CREATE TABLE t AS SELECT * FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}])`);
      const columns = (await con.runAndReadAll("SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position")).getRows().map((r) => r[0]);
      const count = Number((await con.runAndReadAll('SELECT count(*) FROM t')).getRows()[0][0]);
      const samples = [];
      for (let i = 0; i < 3; i++) {
        const file = join(dir, `out-${threads}-${i}.parquet`);
        const t1 = performance.now();
        await con.run(`COPY (SELECT * FROM t) TO '${file}' (FORMAT parquet, COMPRESSION zstd)`);
        samples.push({ ms: performance.now() - t1, bytes: statSync(file).size });
        rmSync(file);
      }
      const best = samples.reduce((a, b) => (a.ms < b.ms ? a : b));
      const median = [...samples].sort((a, b) => a.ms - b.ms)[1];
      duck[`threads_${threads}`] = {
        rows: count, columns, runs_ms: samples.map((s) => round(s.ms, 1)),
        rows_per_s_median: Math.round(count / (median.ms / 1000)), rows_per_s_best: Math.round(count / (best.ms / 1000)), bytes: best.bytes,
      };
      con.closeSync?.();
      inst.closeSync?.();
    }
    return {
      rows, load_ms: loadMs, ours, duckdb_alone: duck,
      ours_over_duckdb_2_threads: ratio(ours.rows_per_s, duck.threads_2.rows_per_s_median),
      ours_over_duckdb_1_thread: ratio(ours.rows_per_s, duck.threads_1.rows_per_s_median),
      target_ours_over_duckdb: 0.25,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Workloads 4, 5 and 7. `server` from startBenchServer (with raised subscription limits), `pg` from
 * startPostgres with max_connections above `fanoutConnections` (or undefined: PostgreSQL skipped).
 */
export async function benchFanoutVersusPg(server, pg, opts) {
  const token = (await server.post('/v1/api/auth/login', { user: 'root', password: 'bench-root-password' })).access_token;
  const out = { options: { ...opts, parts: [...opts.parts] } };
  if (opts.parts.has('fanout')) {
    // Rates in increasing order: a saturated run's backlog must not spill into a lighter one.
    const fan = { connections: opts.fanoutConnections, seconds: opts.seconds, rates: [...opts.fanoutWrites].sort((a, b) => a - b) };
    out.fan_out = { ours: await fanoutOurs(server, token, fan) };
    if (pg) {
      out.fan_out.pg_listen_notify = await fanoutPg(pg, fan);
      const o = out.fan_out.ours;
      const p = out.fan_out.pg_listen_notify;
      out.fan_out.ratios_ours_over_pg = {};
      for (const [k, or] of Object.entries(o.runs)) {
        const pr = p.runs[k];
        out.fan_out.ratios_ours_over_pg[k] = {
          notifications_per_s: ratio(or.notifications_per_s, pr.notifications_per_s),
          p50: ratio(or.latency.p50_ms, pr.latency.p50_ms), p99: ratio(or.latency.p99_ms, pr.latency.p99_ms),
          server_cpu_per_notification: ratio(or.server_cpu_us_per_notification, pr.server_cpu_us_per_notification),
          server_memory: ratio(or.server_memory_mb, pr.server_memory_mb),
        };
      }
    } else out.fan_out.pg_listen_notify = { skipped: opts.pgSkipReason };
  }
  if (opts.parts.has('storm')) {
    await sleep(1000);
    out.reconnect_storm = await reconnectStorm(server, token, {
      clients: opts.stormClients, rate: opts.stormWrites, beforeDropMs: opts.stormBeforeMs, afterDropMs: opts.stormAfterMs, prefill: opts.stormPrefill ?? 0,
    });
  }
  if (opts.parts.has('flush')) out.flush = await flushVersusDuckdb(server, opts.flushRows);
  return out;
}
