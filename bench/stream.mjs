// STREAM benchmark (issue 15, workload 8): events inserted into one stream table (100 events per
// statement, paced at the offered rate) with 100 subscriptions (10 connections × 10); reports events/s,
// deliveries/s, send→receipt latency of every delivered event after a warm-up (3 s at the offered rate,
// as workload 1's: a fresh server JIT-compiles at full load and falls behind for its first 1-2 s; that
// cold start is reported on its own, `cold_start`), the server's and the load generator's CPU, both
// processes' event-loop delay, and server RSS every second (it must stay flat: buffers are capped).
// Every event of both phases is checked exactly once per subscription.
//
// The subscribers run in worker threads (bench/stream-subscribers.mjs), the INSERTs in the main one;
// they are the lean reader of bench/stream-rows.mjs: every row of every message is checked
// (each subscription's `_seq` strictly increasing, and as many rows per subscription as events were
// inserted: every event exactly once), without JSON.parse per row. Latency: each INSERT's events carry
// its send time (`sent_at`, µs); a message holds one INSERT's events, or (from a server that fell
// behind and coalesced) the events of several, one run of equal `sent_at` each: every run's latency
// counts once per row it carries, from its own `sent_at`.
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { watchGcPauses } from './gc-pauses.mjs';
import { treeCpuMicros } from './pg.mjs';
import { paddedRoom, sentAtMicros } from './stream-rows.mjs';

const CONNECTIONS = 10;
const SUBS_PER_CONNECTION = 10;
/** Threads reading the subscriptions (the connections split between them). */
const SUBSCRIBER_THREADS = 2;
const BATCH = 100;
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function rssMb(pid) {
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024);
}

/** p50/p99/max of latencies (ms) where sample i stands for weights[i] events. */
export function weightedLatencyStats(latencies, weights) {
  const order = Array.from(latencies.keys()).sort((a, b) => latencies[a] - latencies[b]);
  let total = 0;
  for (const w of weights) total += w;
  const at = (p) => {
    const rank = Math.min(total - 1, Math.floor((p / 100) * total));
    let seen = 0;
    for (const i of order) {
      seen += weights[i];
      if (seen > rank) return latencies[i];
    }
    return NaN;
  };
  const r = (x) => Math.round(x * 1000) / 1000;
  return { count: total, p50_ms: r(at(50)), p99_ms: r(at(99)), max_ms: r(order.length ? latencies[order[order.length - 1]] : NaN) };
}

function perSecondP99(latencies, weights, sentAts, fromMicros) {
  const seconds = [];
  for (let i = 0; i < latencies.length; i++) {
    const s = Math.floor((sentAts[i] - fromMicros) / 1e6);
    (seconds[s] ??= { latencies: [], weights: [] }).latencies.push(latencies[i]);
    seconds[s].weights.push(weights[i]);
  }
  return Array.from(seconds, (s) => (s === undefined ? null : round(weightedLatencyStats(s.latencies, s.weights).p99_ms)));
}

function gcStats(gc) {
  return { pauses: gc.pauses, total_ms: round(gc.total_ms), longest_ms: round(gc.longest_ms), major: gc.major, major_ms: round(gc.major_ms) };
}

function concatColumns(parts) {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function delayStats(h) {
  return { p50_ms: round(h.percentile(50) / 1e6, 2), p99_ms: round(h.percentile(99) / 1e6, 2), max_ms: round(h.max / 1e6, 2) };
}

export async function benchStream(server, seconds, eventsPerSecond, warmupSeconds = 3) {
  const { sql, port } = server;
  const token = (await server.post('/v1/api/auth/login', { user: 'root', password: 'bench-root-password' })).access_token;
  await sql('CREATE NAMESPACE IF NOT EXISTS streambench');
  await sql('CREATE STREAM TABLE streambench.events (room TEXT, sent_at DOUBLE) WITH (TTL_SECONDS = 10, MAX_BUFFER = 20000)');
  // One probe event tells the _seq's width (the rows' layout depends on it); it is gone before the subscriptions start.
  await sql("INSERT INTO streambench.events (room, sent_at) VALUES ('probe', 0)");
  const probe = await sql('SELECT _seq FROM streambench.events');
  const seqDigits = String(probe.results[0].rows[0][0]).length;
  const room = paddedRoom(seqDigits);
  // The subscribers run in SUBSCRIBER_THREADS worker threads (bench/stream-subscribers.mjs), the
  // INSERTs in this one: reading 5M rows/s in the thread that also paces the INSERTs made each one's
  // GC pauses and reading bursts everybody's latency.
  const deliveredShared = new SharedArrayBuffer(8 * SUBSCRIBER_THREADS);
  const deliveredPerThread = new Float64Array(deliveredShared);
  const threads = [];
  for (let w = 0; w < SUBSCRIBER_THREADS; w++) {
    const connections = Math.floor(CONNECTIONS / SUBSCRIBER_THREADS) + (w < CONNECTIONS % SUBSCRIBER_THREADS ? 1 : 0);
    const worker = new Worker(new URL('./stream-subscribers.mjs', import.meta.url), {
      workerData: { port, token, connections, subsPerConnection: SUBS_PER_CONNECTION, slot: w, deliveredShared, room, seqDigits },
    });
    const ready = new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    threads.push({ worker, ready });
  }
  await Promise.race([Promise.all(threads.map((t) => t.ready)), new Promise((r) => setTimeout(r, 30_000))]);
  const subscriptions = CONNECTIONS * SUBS_PER_CONNECTION;
  const delivered = () => deliveredPerThread.reduce((n, x) => n + x, 0);
  const statementsPerSecond = eventsPerSecond / BATCH;
  const warmStatements = Math.round(statementsPerSecond * warmupSeconds);
  const total = warmStatements + Math.round(statementsPerSecond * seconds);
  const rss = [];
  const rssTimer = setInterval(() => rss.push(rssMb(server.pid)), 1000);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const started = performance.now();
  // The subscribers keep the latency of every event from the first; the steady-state figures start at measureFrom.
  const startedMicros = (performance.timeOrigin + started) * 1000; // µs since the epoch
  const measureFrom = startedMicros + warmupSeconds * 1e6;
  for (const t of threads) t.worker.postMessage({ start: startedMicros });
  // CPU, events and the event loop from the end of the warm-up (its first statement's due time).
  let cpu0 = 0;
  let me0 = null;
  let insertedAtWarmEnd = 0;
  let measuredFromMs = 0;
  const warmEnd = setTimeout(() => {
    cpu0 = treeCpuMicros(server.pid);
    me0 = process.cpuUsage();
    insertedAtWarmEnd = inserted;
    measuredFromMs = performance.now();
    loop.enable();
  }, warmupSeconds * 1000);
  // The generator's own GC pauses (a pause delays every message it has not read yet).
  const { gc, stop: stopGcWatch } = watchGcPauses();
  let inserted = 0;
  const responseMs = [];
  const pending = [];
  let behind = 0; // statements after the warm-up sent later than due by more than 5 ms (the generator not keeping its pace)
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / statementsPerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    else if (wait < -5 && i >= warmStatements) behind++;
    const sentAt = sentAtMicros();
    const values = `('${room}', ${sentAt}), `.repeat(BATCH - 1) + `('${room}', ${sentAt})`;
    const t = performance.now();
    pending.push(sql(`INSERT INTO streambench.events (room, sent_at) VALUES ${values}`).then(() => {
      inserted += BATCH;
      responseMs.push(performance.now() - t);
    }));
    if (pending.length > 64) await pending.shift();
  }
  await Promise.all(pending);
  clearTimeout(warmEnd);
  if (me0 === null) throw new Error('the STREAM run ended before its warm-up did');
  const elapsed = (performance.now() - measuredFromMs) / 1000;
  const deadline = performance.now() + 15_000;
  while (delivered() < inserted * subscriptions && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  loop.disable();
  stopGcWatch();
  clearInterval(rssTimer);
  const drained = (performance.now() - measuredFromMs) / 1000;
  const cpu = treeCpuMicros(server.pid) - cpu0;
  const me = process.cpuUsage(me0);
  // Subscriber connections that fell past the server's unsent-bytes cap and were given its grace (decision 0033).
  const metricsText = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const stalls = Number(/^kalamdb_live_stalls_total (\d+)/m.exec(metricsText)?.[1] ?? NaN);
  const results = await Promise.all(threads.map(async ({ worker }) => {
    const done = new Promise((resolve) => worker.once('message', resolve));
    worker.postMessage({ stop: true });
    const out = await done;
    await worker.terminate();
    return out;
  }));
  const tallies = results.flatMap((r) => r.tallies);
  const got = tallies.reduce((n, t) => n + t.rows, 0);
  const short = tallies.filter((t) => t.rows !== inserted).length;
  const outOfOrder = tallies.reduce((n, t) => n + t.violations, 0);
  const closedEarly = results.flatMap((r) => r.closedEarly);
  const errors = results.flatMap((r) => r.errors);
  const allLatencies = concatColumns(results.map((r) => r.latencies));
  const allWeights = concatColumns(results.map((r) => r.weights));
  const allSentAts = concatColumns(results.map((r) => r.sentAts));
  // Steady state: the events sent from measureFrom on; the cold start: those sent before.
  const split = (keep) => {
    const at = [];
    for (let i = 0; i < allSentAts.length; i++) if (keep(allSentAts[i])) at.push(i);
    const pick = (col) => Float64Array.from(at, (i) => col[i]);
    return { latencies: pick(allLatencies), weights: pick(allWeights), sentAts: pick(allSentAts) };
  };
  const { latencies, weights, sentAts } = split((t) => t >= measureFrom);
  const cold = split((t) => t < measureFrom);
  const measuredEvents = inserted - insertedAtWarmEnd;
  const responses = responseMs.sort((a, b) => a - b);
  return {
    subscriptions, target_events_per_s: eventsPerSecond, warmup_s: warmupSeconds, events: inserted,
    events_measured: measuredEvents, events_per_s: Math.round(measuredEvents / elapsed),
    delivered: got, expected: inserted * subscriptions,
    // Exactly once: each subscription's _seq strictly increasing over its stream, and each got every event.
    subscriptions_with_missing_or_extra_events: short, out_of_order_or_duplicate_rows: outOfOrder,
    connections_closed_by_server: closedEarly.length, error_codes: [...new Set(errors)], connection_stalls_past_cap: stalls,
    // Deliveries of the measured events (all of them, when every subscription got every event).
    deliveries_per_s: Math.round((got * measuredEvents) / Math.max(1, inserted) / elapsed),
    latency: weightedLatencyStats(latencies, weights), target_p99_ms: 20,
    // p99 (ms) of the events sent in each second after the warm-up: a tail from one stall shows in one second, a steady one in all.
    latency_p99_ms_per_second: perSecondP99(latencies, weights, sentAts, measureFrom),
    latency_measured_on: `every row of every subscription, from its INSERT's send to the receipt of its message, for the events sent after a ${warmupSeconds} s warm-up at the same rate`,
    // The same figures for the warm-up's events: a fresh server at full load from its first second.
    cold_start: { latency: weightedLatencyStats(cold.latencies, cold.weights), latency_p99_ms_per_second: perSecondP99(cold.latencies, cold.weights, cold.sentAts, startedMicros) },
    insert_response_ms: { p50: round(responses[Math.floor(responses.length / 2)] ?? NaN, 2), p99: round(responses[Math.floor(responses.length * 0.99)] ?? NaN, 2) },
    statements_sent_late: behind,
    // Server CPU from the end of the warm-up to the last delivery (or the 15 s drain limit), per measured event.
    server_cpu_us_per_event: round(cpu / Math.max(1, measuredEvents)),
    server_cpu_cores: round(cpu / 1e6 / drained, 2),
    loadgen_cpu_us_per_event: round((me.user + me.system) / Math.max(1, measuredEvents)),
    loadgen_cpu_cores: round((me.user + me.system) / 1e6 / drained, 2),
    // System time is mostly the kernel receiving the subscribers' bytes (100 × ~70 per event).
    loadgen_cpu_user_system_us_per_event: [round(me.user / Math.max(1, measuredEvents)), round(me.system / Math.max(1, measuredEvents))],
    // The INSERT thread's event loop and GC, then each subscriber thread's.
    loadgen_event_loop_delay: delayStats(loop),
    loadgen_gc: gcStats(gc),
    subscriber_threads: results.map((r) => ({
      event_loop_delay: { p50_ms: round(r.loop.p50_ms, 2), p99_ms: round(r.loop.p99_ms, 2), max_ms: round(r.loop.max_ms, 2) }, gc: gcStats(r.gc),
    })),
    messages_read_fast_slow: [results.reduce((n, r) => n + r.fast, 0), results.reduce((n, r) => n + r.slow, 0)],
    // Of the fast ones: rows part byte-equal to a message already checked row by row (the same INSERT to another subscription).
    messages_equal_to_a_checked_one: results.reduce((n, r) => n + r.matched, 0),
    rss_mb_per_second: rss,
  };
}
