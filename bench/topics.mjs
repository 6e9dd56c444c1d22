// Topics benchmark (issue 14): "publishing to one topic costs at most 15% of single-row INSERT
// throughput; one consumer group drains at least 100,000 messages/s over HTTP batches of 1,000."
//
// a. Single-row INSERTs with 16 clients into a table without a topic route and into a table of the
//    same shape with one (ON INSERT, payload full), for a SHARED and a USER table, plus 1,000-row
//    INSERT statements (2 clients, SHARED). The variants run in interleaved rounds (alternating order)
//    on one server, so a neighbour's load on the shared machine hits both sides alike; the overhead is
//    the ratio of the summed rounds. Server CPU is read from /proc/<pid>/stat around each round.
// b. Drain: N messages preloaded with 1,000-row INSERTs, then one consumer group drains them over
//    POST /v1/api/topics/consume (limit 1,000) + /ack per batch, with a lean node:http keep-alive
//    client that parses each JSON response. Then the same with 4 partitions and 4 consumers.
//
// Alone: `node bench/topics.mjs [--seconds 3] [--rounds 5] [--topic-messages 300000] [--only insert|multi|drain] [--drain-partitions 1,4]`;
// in `npm run bench` as `--only topics`.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bulkInsert, latencyStats, machine, startBenchServer } from './lib.mjs';

const noFlush = "WITH (FLUSH_POLICY = 'rows:100000000')";
const TICK_US = 1e6 / 100; // CLK_TCK is 100 on Linux

/** The server's user+system CPU so far, in µs (10 ms resolution: rounds last seconds). */
function serverCpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

function clientCpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Runs `fn(client, i)` in `clients` loops for `seconds`; returns ops, latencies and CPU used. */
async function timed(pid, clients, seconds, fn) {
  const latencies = [];
  let ops = 0;
  const cpu0 = serverCpuUs(pid);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const t = performance.now();
      const n = await fn(c, i); // not `ops += await`: that reads `ops` before the await and loses counts
      ops += n;
      latencies.push(performance.now() - t);
    }
  }));
  return { ops, elapsed: (performance.now() - started) / 1000, latencies, cpuUs: serverCpuUs(pid) - cpu0 };
}

/** Interleaves the variants for `rounds` rounds (order alternates) and sums each variant's rounds. */
async function interleaved(pid, rounds, seconds, clients, variants) {
  const sums = Object.fromEntries(Object.keys(variants).map((k) => [k, { ops: 0, elapsed: 0, latencies: [], cpuUs: 0, perRound: [] }]));
  const names = Object.keys(variants);
  // A second of each first, uncounted: otherwise the variant that runs first pays the JIT warm-up.
  for (const name of names) await timed(pid, clients, 1, variants[name]);
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      const res = await timed(pid, clients, seconds, variants[name]);
      const s = sums[name];
      s.ops += res.ops; s.elapsed += res.elapsed; s.cpuUs += res.cpuUs; s.latencies.push(...res.latencies);
      s.perRound.push(Math.round(res.ops / res.elapsed));
    }
  }
  const out = {};
  for (const [name, s] of Object.entries(sums)) {
    out[name] = {
      rows: s.ops, rows_per_s: Math.round(s.ops / s.elapsed), rows_per_s_per_round: s.perRound,
      latency: latencyStats(s.latencies), server_cpu_us_per_row: Math.round((s.cpuUs / s.ops) * 10) / 10,
    };
  }
  return out;
}

const pct = (x) => Math.round(x * 1000) / 10;

function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The overhead from the summed rounds, and the median of each round's own ratio: the two variants of
 * a round run back to back, so a neighbour's burst on the shared machine that hits one round (and
 * would swing the sum) moves one ratio only.
 */
function overhead(plain, topic) {
  const perRound = plain.rows_per_s_per_round.map((p, r) => 1 - topic.rows_per_s_per_round[r] / p);
  return {
    throughput_overhead_pct: pct(1 - topic.rows_per_s / plain.rows_per_s),
    throughput_overhead_pct_median_of_rounds: pct(median(perRound)),
    cpu_overhead_pct: pct(topic.server_cpu_us_per_row / plain.server_cpu_us_per_row - 1),
  };
}

/** A lean JSON-over-HTTP client: keep-alive, one socket per consumer, no retries. */
function leanClient(port, token) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  return (path, body) => new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${token}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString());
        if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${JSON.stringify(parsed).slice(0, 300)}`));
        else resolve(parsed);
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** One consumer of `group` drains partition `partition` until it has `expected` messages. */
/**
 * With `pipelined`, the ACK of a batch is not awaited before the next CONSUME (at most one ACK in
 * flight): the group's claim already hands the next range, so this is what a consumer that acks
 * every batch would do to keep the server busy. Without it: CONSUME, ACK, CONSUME, strictly in turn.
 */
async function drainPartition(call, topic, group, partition, expected, check, consumeMs, ackMs, pipelined) {
  let got = 0;
  let nextOffset = 0;
  let requests = 0;
  let acking = Promise.resolve();
  while (got < expected) {
    const t = performance.now();
    const res = await call('/v1/api/topics/consume', { topic_id: topic, group_id: group, partition_id: partition, limit: 1000, start: 'Earliest' });
    consumeMs.push(performance.now() - t);
    requests++;
    const messages = res.messages;
    if (messages.length === 0) throw new Error(`partition ${partition}: no messages after ${got} of ${expected}`);
    for (const m of messages) {
      if (m.offset !== nextOffset) throw new Error(`partition ${partition}: offset ${m.offset}, expected ${nextOffset}`);
      nextOffset++;
    }
    if (check) check(messages);
    got += messages.length;
    await acking;
    const t1 = performance.now();
    acking = call('/v1/api/topics/ack', { topic_id: topic, group_id: group, partition_id: partition, upto_offset: messages[messages.length - 1].offset })
      .then(() => { ackMs.push(performance.now() - t1); });
    if (!pipelined) await acking;
  }
  await acking;
  return { got, requests };
}

/** Waits (up to 20 s) until the server is nearly idle: the preload's RocksDB flushes and compactions are not the drain's. */
async function settle(pid) {
  const until = performance.now() + 20_000;
  while (performance.now() < until) {
    const before = serverCpuUs(pid);
    await new Promise((r) => setTimeout(r, 500));
    if (serverCpuUs(pid) - before <= 25_000) return;
  }
}

/** Messages per partition (a new group placed at Latest answers with the partition's next offset). */
async function partitionSizes(call, topic, partitions) {
  const sizes = [];
  for (let p = 0; p < partitions; p++) {
    const res = await call('/v1/api/topics/consume', { topic_id: topic, group_id: `count_${p}_${Math.random()}`, partition_id: p, limit: 1, start: 'Latest' });
    sizes.push(res.next_offset);
  }
  return sizes;
}

async function drain(server, token, topic, partitions, total, pipelined) {
  const call = leanClient(server.port, token);
  let checked = 0;
  // Decodes one payload per batch: the drain measures real messages, not a transport that lost them.
  const check = (messages) => {
    const m = messages[(checked++ * 7919) % messages.length];
    const payload = JSON.parse(Buffer.from(m.payload, 'base64').toString('utf8'));
    if (typeof payload.body !== 'string' || payload._table === undefined || m.op !== 'Insert') throw new Error(`bad message ${JSON.stringify(m)}`);
  };
  const perPartition = await partitionSizes(call, topic, partitions);
  if (perPartition.reduce((a, b) => a + b, 0) !== total) throw new Error(`partitions hold ${perPartition}, expected ${total} in all`);
  await settle(server.pid);
  const cpu0 = serverCpuUs(server.pid);
  const client0 = clientCpuUs();
  const started = performance.now();
  const consumeMs = [];
  const ackMs = [];
  const group = pipelined ? 'drain_pipelined' : 'drain';
  const results = await Promise.all(perPartition.map((n, p) => drainPartition(call, topic, group, p, n, check, consumeMs, ackMs, pipelined)));
  const elapsed = (performance.now() - started) / 1000;
  const serverCpu = serverCpuUs(server.pid) - cpu0;
  const clientCpu = clientCpuUs() - client0;
  return {
    messages: total, partitions, consumers: partitions, ack: pipelined ? 'pipelined (next CONSUME sent before the ACK answers)' : 'awaited before the next CONSUME', requests: results.reduce((a, r) => a + r.requests, 0),
    messages_per_s: Math.round(total / elapsed), seconds: Math.round(elapsed * 100) / 100,
    server_cpu_us_per_message: Math.round((serverCpu / total) * 100) / 100,
    client_cpu_us_per_message: Math.round((clientCpu / total) * 100) / 100,
    consume_latency: latencyStats(consumeMs), ack_latency: latencyStats(ackMs),
    target_messages_per_s: 100_000,
  };
}

export async function benchTopics(server, seconds, rounds, messages, only = 'all', drainPartitions = [1, 4]) {
  const { sql, pid } = server;
  const token = (await server.post('/v1/api/auth/login', { user: 'root', password: 'bench-root-password' })).access_token;
  const out = {};
  await sql('CREATE NAMESPACE IF NOT EXISTS tb');
  const shape = '(id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT)';
  for (const kind of ['SHARED', 'USER']) {
    const t = kind.toLowerCase();
    await sql(`CREATE ${kind} TABLE tb.${t}_plain ${shape} ${noFlush}`);
    await sql(`CREATE ${kind} TABLE tb.${t}_topic ${shape} ${noFlush}`);
    await sql(`CREATE TOPIC tb.${t}_events`);
    await sql(`ALTER TOPIC tb.${t}_events ADD SOURCE tb.${t}_topic ON INSERT WITH (payload = 'full')`);
  }
  const single = (table) => async (c, i) => {
    await sql(`INSERT INTO ${table} (user_id, body, n) VALUES ($1, $2, $3)`, [`u${c}`, `message ${i} from client ${c}`, i]);
    return 1;
  };
  for (const kind of only === 'all' || only === 'insert' ? ['shared', 'user'] : []) {
    const res = await interleaved(pid, rounds, seconds, 16, { without_topic: single(`tb.${kind}_plain`), with_topic: single(`tb.${kind}_topic`) });
    out[`insert_single_row_16_clients_${kind}`] = { ...res, ...overhead(res.without_topic, res.with_topic), target_overhead_pct: 15 };
  }
  if (only === 'all' || only === 'insert') {
    // The messages the single-row INSERTs published: a chunk (RocksDB entry) per message, the
    // costliest layout to read, unlike the 1,000-message chunks of the preloaded drains below.
    const [total] = await partitionSizes(leanClient(server.port, token), 'tb.shared_events', 1);
    out.drain_single_row_messages = { ...await drain(server, token, 'tb.shared_events', 1, total, false), note: 'published by the single-row INSERTs above: one message per stored chunk' };
  }

  const multi = (table) => async (c, i) => {
    const values = Array.from({ length: 1000 }, (_, j) => `('u${c}', 'bulk body ${i}.${j} from client ${c}', ${j})`).join(',');
    await sql(`INSERT INTO ${table} (user_id, body, n) VALUES ${values}`);
    return 1000;
  };
  if (only === 'all' || only === 'insert' || only === 'multi') {
    const res = await interleaved(pid, rounds, seconds, 2, { without_topic: multi('tb.shared_plain'), with_topic: multi('tb.shared_topic') });
    out.insert_multi_row_1000_2_clients_shared = { ...res, ...overhead(res.without_topic, res.with_topic) };
  }

  for (const partitions of only === 'all' || only === 'drain' ? drainPartitions : []) {
    const topic = `tb.drain${partitions}`;
    await sql(`CREATE SHARED TABLE ${topic}_src ${shape} ${noFlush}`);
    await sql(`CREATE TOPIC ${topic} PARTITIONS ${partitions}`);
    await sql(`ALTER TOPIC ${topic} ADD SOURCE ${topic}_src ON INSERT WITH (payload = 'full')`);
    const started = performance.now();
    await bulkInsert(sql, `${topic}_src`, 'user_id, body, n', 0, messages, (i) => `'u${i % 100}', 'drain body number ${i}', ${i % 1000}`);
    const preload = { preload_seconds: Math.round((performance.now() - started) / 10) / 100 };
    const name = `drain_${partitions}_partition${partitions > 1 ? 's' : ''}`;
    // Two groups drain the same messages: acks awaited in turn, then pipelined.
    out[name] = { ...await drain(server, token, topic, partitions, messages, false), ...preload };
    out[`${name}_ack_pipelined`] = await drain(server, token, topic, partitions, messages, true);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const seconds = Number(arg('seconds', '3'));
  const rounds = Number(arg('rounds', '5'));
  const messages = Number(arg('topic-messages', '300000'));
  const server = await startBenchServer(arg('durability', undefined) === undefined ? '' : `durability = "${arg('durability')}"\n`);
  try {
    const topics = await benchTopics(server, seconds, rounds, messages, arg('only', 'all'), arg('drain-partitions', '1,4').split(',').map(Number));
    process.stdout.write(JSON.stringify({ machine: machine(), seconds_per_round: seconds, rounds, topics }, null, 2) + '\n');
  } finally {
    await server.stop();
  }
}
