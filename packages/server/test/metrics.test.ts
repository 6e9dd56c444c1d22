/**
 * GET /metrics: Prometheus text, parsed by a Prometheus text parser; every metric the server
 * promises is present and moves with the work done; access is localhost by default, a bearer
 * token, or off.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { TestServer, assertError, eventually } from './harness.js';
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
    ]) assert.ok(families.some((f) => f.name === name), `${name} present`);
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
    const client = await LiveClient.open(server.url, carl);
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
