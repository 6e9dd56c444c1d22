/**
 * GET /metrics: Prometheus text, parsed by a Prometheus text parser; every metric the server
 * promises is present and moves with the work done; access is localhost by default, a bearer
 * token, or off.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { TestServer, assertError, eventually, jobIdOf } from './harness.js';
import { LiveClient } from './ws-client.js';

const TOKEN = 'metrics-token-for-tests-0123456789';

type Families = ReturnType<typeof parsePrometheusTextFormat> & { text: string };

async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<Families> {
  const res = await server.fetch('/metrics', { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return Object.assign(parsePrometheusTextFormat(text), { text });
}

/**
 * A histogram's `_count` for one label set. (The parser keeps a labelled histogram's buckets but not
 * its labels, so the count series is read from the text: `name_count{a="x",b="y"} n`.)
 */
function histogramCount(families: Families, name: string, labels: Record<string, string> = {}): number {
  assert.ok(families.some((f) => f.name === name && f.type === 'HISTOGRAM'), `histogram ${name} is present`);
  let n = 0;
  for (const line of families.text.split('\n')) {
    const m = /^(\w+)_count(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) n += Number(m[3]);
  }
  return n;
}

function sum(families: Families, name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  assert.ok(family !== undefined, `metric ${name} is present`);
  return family.metrics
    .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((n, m) => n + Number(m.value ?? m.count ?? 0), 0);
}

describe('GET /metrics', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server.dispose();
  });

  it('serves every promised metric, moving with the work done (localhost, no auth)', async () => {
    await server.ok('CREATE SHARED TABLE default.m (id BIGINT PRIMARY KEY, v TEXT)');
    for (let i = 0; i < 5; i++) await server.ok(`INSERT INTO default.m VALUES (${i}, 'x')`);
    await server.ok('SELECT * FROM default.m');
    await server.flushAndWait('default.m');
    const families = await scrape(server);
    for (const name of [
      'kalamdb_http_requests_total', 'kalamdb_http_request_duration_seconds', 'kalamdb_statement_duration_seconds',
      'kalamdb_commit_group_intents', 'kalamdb_wal_syncs_total', 'kalamdb_job_rows_total', 'kalamdb_job_duration_seconds',
      'kalamdb_live_connections', 'kalamdb_live_subscriptions', 'kalamdb_jobs_running', 'kalamdb_remote_cache_bytes',
      'kalamdb_duckdb_memory_bytes', 'kalamdb_nodejs_eventloop_lag_seconds', 'kalamdb_process_resident_memory_bytes',
      'kalamdb_live_messages_sent_total', 'kalamdb_live_bytes_sent_total', 'kalamdb_live_slow_consumers_total',
      'kalamdb_live_messages_dropped_total', 'kalamdb_rocksdb_memory_bytes', 'kalamdb_rocksdb_block_cache_capacity_bytes',
    ]) assert.ok(families.some((f) => f.name === name), `${name} present`);
    // RocksDB's own figures: the inserts sit in its memtables; the block cache has RocksDB's default capacity.
    assert.ok(sum(families, 'kalamdb_rocksdb_memory_bytes', { kind: 'memtables' }) > 0);
    for (const kind of ['block_cache', 'block_cache_pinned', 'table_readers']) assert.ok(families.find((f) => f.name === 'kalamdb_rocksdb_memory_bytes')!.metrics.some((m) => m.labels?.kind === kind), kind);
    assert.ok(sum(families, 'kalamdb_rocksdb_block_cache_capacity_bytes') > 0);
    assert.ok(sum(families, 'kalamdb_http_requests_total', { route: '/v1/api/sql', status: '200' }) >= 8);
    assert.ok(histogramCount(families, 'kalamdb_statement_duration_seconds', { kind: 'insert', outcome: 'ok' }) >= 5);
    assert.ok(histogramCount(families, 'kalamdb_commit_group_intents') >= 5);
    assert.ok(histogramCount(families, 'kalamdb_http_request_duration_seconds', { route: '/v1/api/sql' }) >= 8);
    assert.equal(histogramCount(families, 'kalamdb_job_duration_seconds', { job_type: 'flush', status: 'completed' }), 1);
    assert.ok(sum(families, 'kalamdb_wal_syncs_total') >= 5);
    assert.equal(sum(families, 'kalamdb_job_rows_total', { job_type: 'flush', status: 'completed' }), 5);
    assert.ok(sum(families, 'kalamdb_duckdb_memory_bytes', { engine: 'query' }) >= 0);
    // A failed statement is counted as an error; an unknown path is one label, not one per URL.
    await server.sql('SELECT * FROM default.nope');
    await server.fetch('/some/random/path/1');
    await server.fetch('/some/random/path/2');
    const after = await scrape(server);
    assert.ok(histogramCount(after, 'kalamdb_statement_duration_seconds', { kind: 'select', outcome: 'error' }) >= 1);
    assert.equal(sum(after, 'kalamdb_http_requests_total', { route: 'other', status: '404' }), 2);
  });

  it('observes compaction like flush: rows and duration of the finished job', async () => {
    await server.ok('CREATE SHARED TABLE default.c (id BIGINT PRIMARY KEY, v TEXT)');
    for (let batch = 0; batch < 3; batch++) {
      await server.ok(`INSERT INTO default.c VALUES ${[0, 1, 2, 3].map((i) => `(${batch * 4 + i}, 'x')`).join(', ')}`);
      await server.flushAndWait('default.c');
    }
    const before = await scrape(server);
    const [res] = await server.ok('STORAGE COMPACT TABLE default.c');
    const job = await server.waitForJob(jobIdOf(res!.message));
    assert.equal(job.status, 'completed');
    const after = await scrape(server);
    assert.equal(histogramCount(after, 'kalamdb_job_duration_seconds', { job_type: 'compaction', status: 'completed' })
      - histogramCount(before, 'kalamdb_job_duration_seconds', { job_type: 'compaction', status: 'completed' }), 1);
    assert.equal(sum(after, 'kalamdb_job_rows_total', { job_type: 'compaction', status: 'completed' })
      - sum(before, 'kalamdb_job_rows_total', { job_type: 'compaction', status: 'completed' }), 12);
  });

  it('counts every live message and byte written to a subscriber, exactly as the client received them', async () => {
    await server.ok("CREATE SHARED TABLE default.l (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("INSERT INTO default.l VALUES (0, 'initial')");
    const before = await scrape(server);
    const dave = await server.createUser('dave');
    const client = await LiveClient.open(server.url, dave);
    try {
      await client.subscribeOk('l', 'SELECT * FROM default.l');
      for (let i = 1; i <= 5; i++) await server.ok(`INSERT INTO default.l VALUES (${i}, '${'x'.repeat(i * 10)}')`);
      await client.waitFor((m) => m.type === 'change' && m.rows?.some((r) => r.id === '5' || r.id === 5) === true);
      const after = await scrape(server);
      const sent = sum(after, 'kalamdb_live_messages_sent_total') - sum(before, 'kalamdb_live_messages_sent_total');
      const bytes = sum(after, 'kalamdb_live_bytes_sent_total') - sum(before, 'kalamdb_live_bytes_sent_total');
      // auth_success, subscription_ack, the initial batch and five changes: one count per message on the wire.
      assert.ok(client.frames.filter((m) => m.type === 'change').length >= 1);
      assert.equal(sent, client.frames.length, `server counted ${sent} messages, client got ${client.frames.length}`);
      assert.equal(bytes, client.bytesReceived, `server counted ${bytes} bytes, client got ${client.bytesReceived}`);
      // system.stats shows the same counter (read from the same registry).
      const stats = new Map((await server.rows('SELECT * FROM system.stats')).map((r) => [r.metric_name, Number(r.metric_value)]));
      assert.equal(stats.get('live_messages_sent'), sum(after, 'kalamdb_live_messages_sent_total'));
      assert.equal(stats.get('live_bytes_sent'), sum(after, 'kalamdb_live_bytes_sent_total'));
      assert.equal(stats.get('active_connections'), 1);
    } finally {
      await client.close();
    }
  });

  it('system.stats has every /metrics figure as a row, in upstream\'s naming', async () => {
    const rows = await server.rows('SELECT * FROM system.stats');
    const stats = new Map(rows.map((r) => [String(r.metric_name), String(r.metric_value)]));
    for (const name of [
      'server_uptime_seconds', 'total_users', 'total_tables', 'active_subscriptions', 'memory_rss_bytes', 'memory_native_bytes',
      'http_requests', 'statements', 'statements_failed', 'commit_groups', 'commit_intents', 'wal_syncs', 'active_connections',
      'live_messages_sent', 'live_bytes_sent', 'live_slow_consumers_closed', 'live_messages_dropped',
      'flush_jobs_completed', 'flush_rows', 'flush_seconds', 'compaction_jobs_completed', 'compaction_rows', 'compaction_seconds',
      'rocksdb_memtables_bytes', 'rocksdb_block_cache_bytes', 'rocksdb_block_cache_pinned_bytes', 'rocksdb_table_readers_bytes',
      'rocksdb_block_cache_capacity_bytes', 'duckdb_query_memory_bytes', 'duckdb_files_memory_bytes', 'remote_cache_bytes', 'event_loop_lag_seconds',
    ]) assert.ok(stats.has(name), `system.stats has ${name}`);
    // The earlier tests flushed default.m (5 rows) and default.c three times (12 rows), then compacted default.c once.
    assert.equal(stats.get('flush_jobs_completed'), '4');
    assert.equal(stats.get('flush_rows'), '17');
    assert.equal(stats.get('compaction_rows'), '12');
    assert.ok(Number(stats.get('rocksdb_memtables_bytes')) > 0);
    assert.ok(Number(stats.get('statements_failed')) >= 1);
  });
});

describe('system.sessions', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server.dispose();
  });

  it('lists open WebSocket connections with user, address and since, to admins only', async () => {
    const carl = await server.createUser('carl');
    const before = Date.now();
    const client = await LiveClient.connect(server.url, carl);
    try {
      const [row] = await server.rows("SELECT * FROM system.sessions WHERE user_id = 'carl'");
      assert.equal(row!.role, 'user');
      assert.match(String(row!.client_address), /127\.0\.0\.1/);
      assert.ok(Number(row!.connected_at) / 1000 >= before - 1000 && Number(row!.connected_at) / 1000 <= Date.now());
      assert.equal(row!.subscriptions, 0);
      assertError(await server.sql('SELECT * FROM system.sessions', { auth: carl }), 403, 'PERMISSION_DENIED');
    } finally {
      await client.close();
    }
    await eventually('session gone', async () => (await server.rows("SELECT * FROM system.sessions WHERE user_id = 'carl'")).length === 0);
  });
});

describe('GET /metrics access', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  it('needs the bearer token when metrics_access = token', async () => {
    const server = await TestServer.start(undefined, { KALAMDB_METRICS_ACCESS: 'token', KALAMDB_METRICS_TOKEN: TOKEN });
    servers.push(server);
    assert.equal((await server.fetch('/metrics')).status, 401);
    assert.equal((await server.fetch('/metrics', { headers: { authorization: `Bearer ${TOKEN}x` } })).status, 401);
    await scrape(server, { authorization: `Bearer ${TOKEN}` });
  });

  it('is not served when metrics_access = off', async () => {
    const server = await TestServer.start(undefined, { KALAMDB_METRICS_ACCESS: 'off' });
    servers.push(server);
    assert.equal((await server.fetch('/metrics')).status, 404);
  });
});

describe('slow consumers in /metrics', () => {
  let server: TestServer;
  before(async () => {
    // A small cap and no burst past it, so a paused reader trips it after a few MB (the kernel's socket
    // buffers take the rest) on a refused message (the grace is slow-consumer.test's).
    server = await TestServer.startWithConfig({ live_buffered_bytes_max: 256 * 1024, live_buffered_bytes_burst_max: 256 * 1024 });
  });
  after(async () => {
    await server.dispose();
  });

  it('counts the connection closed as a slow consumer and the message it dropped', async () => {
    await server.ok("CREATE SHARED TABLE default.big (id BIGINT PRIMARY KEY, payload TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    const erin = await server.createUser('erin');
    const slow = await LiveClient.open(server.url, erin);
    await slow.subscribeOk('big', 'SELECT * FROM default.big');
    const before = await scrape(server);
    assert.equal(sum(before, 'kalamdb_live_slow_consumers_total'), 0);
    slow.socket.pause();
    const payload = 'p'.repeat(100_000);
    let id = 0;
    // Up to 64 MB of changes; a paused socket trips the cap long before.
    for (let r = 0; r < 80 && slow.closeInfo === null; r++) {
      await server.ok(`INSERT INTO default.big VALUES ${Array.from({ length: 8 }, () => `(${++id}, '${payload}')`).join(', ')}`);
      if (sum(await scrape(server), 'kalamdb_live_slow_consumers_total') > 0) break;
    }
    const after = await scrape(server);
    assert.equal(sum(after, 'kalamdb_live_slow_consumers_total'), 1);
    assert.ok(sum(after, 'kalamdb_live_messages_dropped_total') >= 1);
    slow.socket.resume();
    const info = await slow.waitClosed(10_000);
    assert.equal(info.code, 1008);
    assert.ok(slow.messages.some((m) => m.code === 'SLOW_CONSUMER'));
    const stats = new Map((await server.rows('SELECT * FROM system.stats')).map((r) => [r.metric_name, r.metric_value]));
    assert.equal(stats.get('live_slow_consumers_closed'), '1');
  });
});
