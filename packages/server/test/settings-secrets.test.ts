/**
 * system.settings shows the effective configuration with every secret masked: the root password,
 * the JWT secret and the metrics token are set, and none of their values appears in
 * `SELECT * FROM system.settings`, in /metrics, or in the server's log lines from start-up on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer } from './harness.js';

const JWT_SECRET = 'jwt-secret-for-the-settings-test-0123456789';
const METRICS_TOKEN = 'metrics-token-for-the-settings-test-98765';
/** Not configuration (the S3 client reads it from the environment), but a secret the server must not echo either. */
const AWS_SECRET = 'aws-secret-for-the-settings-test-ABCDEF';
const SECRETS = [ROOT_PASSWORD, JWT_SECRET, METRICS_TOKEN, AWS_SECRET];

describe('system.settings', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start(undefined, {
      KALAMDB_JWT_SECRET: JWT_SECRET, KALAMDB_METRICS_ACCESS: 'token', KALAMDB_METRICS_TOKEN: METRICS_TOKEN, AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    });
  });
  after(async () => {
    await server.dispose();
  });

  it('shows the effective configuration, by config-file name', async () => {
    const settings = new Map((await server.rows('SELECT * FROM system.settings')).map((r) => [r.name, r.value]));
    assert.equal(settings.get('metrics_access'), 'token');
    assert.equal(settings.get('data_dir'), server.dataDir);
    assert.equal(settings.get('durability'), 'fsync');
    assert.equal(settings.get('live_buffered_bytes_max'), String(8 * 1024 * 1024));
  });

  it('describes and categorises every setting', async () => {
    const rows = await server.rows('SELECT name, description, category FROM system.settings');
    assert.ok(rows.length >= 50, `only ${rows.length} settings`);
    for (const r of rows) {
      assert.equal(typeof r.description, 'string', `${String(r.name)} has no description`);
      assert.ok(String(r.description).length > 10, `${String(r.name)}: ${String(r.description)}`);
    }
    const byName = new Map(rows.map((r) => [r.name, r.category]));
    assert.equal(byName.get('http_headers_timeout_ms'), 'http');
    assert.equal(byName.get('live_buffered_bytes_max'), 'live');
    assert.equal(byName.get('jwt_secret'), 'auth');
    assert.deepEqual((await server.rows("SELECT name FROM system.settings WHERE category = 'metrics' ORDER BY name")).map((r) => r.name),
      ['metrics_access', 'metrics_token']);
  });

  it('masks every secret: no secret value in system.settings, /metrics or the logs', async () => {
    const rows = await server.rows('SELECT * FROM system.settings');
    const settings = new Map(rows.map((r) => [r.name, r.value]));
    for (const name of ['root_password', 'jwt_secret', 'metrics_token']) assert.equal(settings.get(name), '***', `${name} is masked`);
    // Any setting named like a secret is masked or unset (a new secret key added to the config without masking fails here).
    for (const [name, value] of settings) {
      if (/(password|secret|token|key|credentials?)$/.test(String(name))) assert.ok(value === '***' || value === null, `${String(name)} = ${String(value)}`);
    }
    const text = JSON.stringify(rows);
    const res = await server.fetch('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(res.status, 200);
    const metrics = await res.text();
    // The start-up lines and everything logged since (the queries above, a failed login).
    await server.fetch('/v1/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'root', password: 'wrong' }) });
    const logs = server.output.join('');
    assert.match(logs, /"msg":"listening"/);
    for (const secret of SECRETS) {
      assert.ok(!text.includes(secret), 'a secret in system.settings');
      assert.ok(!metrics.includes(secret), 'a secret in /metrics');
      assert.ok(!logs.includes(secret), 'a secret in the logs');
    }
  });
});
