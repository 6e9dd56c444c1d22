/**
 * Statements and answers from upstream KalamDB's CLI smoke tests (cli/tests/smoke/**) and backend
 * integration tests (backend/tests/**), replayed against the real server. Each case names the
 * upstream file it comes from; the assertions are upstream's (substrings, column names, row values),
 * sometimes tightened where our answer is exact. Storages, backup/restore, export and ALTER TABLE
 * column changes are not covered here; topics are in topics-upstream.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer, assertError, eventually, type Auth } from './harness.js';

const ROOT: Auth = { user: 'root', password: ROOT_PASSWORD };
type Row = Record<string, unknown>;

describe('upstream smoke tests', () => {
  let server: TestServer;
  const alice: Auth = { user: 'smoke_alice', password: 'smoke_pass_123' };
  const dba: Auth = { user: 'smoke_dba', password: 'smoke_pass_123' };

  /** The message of a single-statement request that must succeed. */
  const message = async (sql: string, auth: Auth = ROOT): Promise<string> => {
    const [result] = await server.ok(sql, { auth });
    return result!.message ?? '';
  };
  const waitJob = (jobId: string): Promise<Row> => eventually(`job ${jobId}`, async () => {
    const [row] = await server.rows(`SELECT job_id, status, message FROM system.jobs WHERE job_id = '${jobId}'`);
    return row !== undefined && row.status !== 'running' && row.status !== 'queued' ? row : undefined;
  }, 30_000);

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE smk');
    await server.ok(`CREATE USER smoke_alice WITH PASSWORD 'smoke_pass_123' ROLE 'user'`);
    await server.ok(`CREATE USER smoke_dba WITH PASSWORD 'smoke_pass_123' ROLE 'dba'`);
  });
  after(async () => {
    await server.dispose();
  });

  it('every system table and view upstream lists can be read with SELECT * ... LIMIT 5', async () => {
    // cli/tests/smoke/system/smoke_test_all_system_tables_schemas.rs:36-60 (those that exist here:
    // storages, job_nodes, server_logs, cluster, cluster_groups do not)
    for (const name of ['users', 'namespaces', 'schemas', 'jobs', 'audit_log', 'manifest', 'topics', 'topic_offsets', 'live', 'stats', 'settings', 'datatypes', 'tables', 'columns']) {
      const [result] = await server.ok(`SELECT * FROM system.${name} LIMIT 5`);
      assert.ok(result!.schema!.length >= 2, name);
    }
    // cli/tests/smoke/system/smoke_test_system_and_users.rs:19-23
    for (const sql of ['SELECT * FROM system.jobs LIMIT 1', 'SELECT * FROM system.users LIMIT 1', 'SELECT * FROM system.live LIMIT 1',
      'SELECT * FROM system.schemas LIMIT 1', 'SELECT * FROM system.namespaces LIMIT 1']) {
      await server.ok(sql);
    }
  });

  it('system.schemas lists tables with their type and options, one row per schema version', async () => {
    // cli/tests/smoke/system/smoke_test_system_tables_extended.rs:40-148
    await server.ok(`CREATE TABLE smk.ut (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), name TEXT NOT NULL, created_at TIMESTAMP DEFAULT NOW())
      WITH (TYPE = 'USER', FLUSH_POLICY = 'rows:1000')`);
    await server.ok(`CREATE TABLE smk.st (id BIGINT PRIMARY KEY, config_key TEXT) WITH (TYPE = 'SHARED', FLUSH_POLICY = 'rows:100', ACCESS_LEVEL = 'PUBLIC')`);
    await server.ok(`CREATE TABLE smk.ev (event_id TEXT PRIMARY KEY DEFAULT ULID(), event_type TEXT, payload TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 30)`);
    const rows = await server.rows(`SELECT table_name, table_type, options FROM system.schemas WHERE namespace_id = 'smk' ORDER BY table_name`);
    assert.deepEqual(rows.map((r) => [r.table_name, r.table_type]), [['ev', 'stream'], ['st', 'shared'], ['ut', 'user']]);
    const options = Object.fromEntries(rows.map((r) => [r.table_name, JSON.parse(String(r.options)) as Row]));
    assert.equal(options.ut!.table_type, 'USER');
    assert.equal(options.ut!.storage_id, 'local');
    assert.equal(options.ut!.flush_policy, 'rows:1000');
    assert.equal(options.st!.access_level, 'PUBLIC');
    assert.equal(options.ev!.ttl_seconds, 30);

    // cli/tests/smoke/usecases/smoke_test_schema_history.rs:57-80: a new table has version 1, the latest
    assert.deepEqual(await server.rows(`SELECT schema_version, is_latest FROM system.schemas WHERE namespace_id = 'smk' AND table_name = 'ut' ORDER BY schema_version`),
      [{ schema_version: 1, is_latest: true }]);
    // cli/tests/smoke/usecases/smoke_test_timing_output.rs:262 and smoke_test_cleanup_job.rs:15: a dropped table is gone
    await server.ok('CREATE TABLE smk.gone (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = \'SHARED\')');
    assert.equal((await server.rows(`SELECT table_name FROM system.schemas WHERE namespace_id = 'smk' AND table_name = 'gone'`)).length, 1);
    await server.ok('DROP TABLE IF EXISTS smk.gone');
    assert.deepEqual(await server.rows(`SELECT COUNT(*) as cnt FROM system.schemas WHERE namespace_id = 'smk' AND table_name = 'gone'`), [{ cnt: '0' }]);
  });

  it("WITH (STORAGE_ID = 'local') is accepted, another storage id is not", async () => {
    // cli/tests/smoke/system/smoke_test_system_tables_extended.rs:60-65, cli/smoke_test_cluster_operations.rs:733-750
    await server.ok(`CREATE TABLE smk.stored (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), data TEXT) WITH (TYPE = 'SHARED', STORAGE_ID = 'local')`);
    const [row] = await server.rows(`SELECT options FROM system.schemas WHERE namespace_id = 'smk' AND table_name = 'stored'`);
    assert.ok(String(row!.options).includes('local'));
    assertError(await server.sql(`CREATE TABLE smk.elsewhere (id INT PRIMARY KEY) WITH (TYPE = 'USER', STORAGE_ID = 's3_main')`),
      400, 'INVALID_SQL', /Storage 's3_main' does not exist/);
  });

  it('DROP USER|SHARED|STREAM TABLE drops a table of that type', async () => {
    // backend/tests/common/testserver/fixtures.rs:351-353
    await server.ok(`CREATE TABLE smk.drop_u (id INT PRIMARY KEY) WITH (TYPE = 'USER')`);
    await server.ok(`CREATE TABLE smk.drop_s (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')`);
    await server.ok(`CREATE TABLE smk.drop_e (id INT PRIMARY KEY) WITH (TYPE = 'STREAM', TTL_SECONDS = 10)`);
    assertError(await server.sql('DROP SHARED TABLE smk.drop_u'), 400, 'SQL_EXECUTION_ERROR', /is a USER table, not SHARED/);
    assert.equal(await message('DROP USER TABLE smk.drop_u'), "Table 'smk.drop_u' dropped successfully");
    assert.equal(await message('DROP SHARED TABLE smk.drop_s'), "Table 'smk.drop_s' dropped successfully");
    assert.equal(await message('DROP STREAM TABLE IF EXISTS smk.drop_e'), "Table 'smk.drop_e' dropped successfully");
    assert.equal(await message('DROP USER TABLE IF EXISTS smk.drop_u'), "Table 'smk.drop_u' does not exist");
  });

  it('system.schemas.columns is a JSON array of column_name / data_type with the Kalam type names', async () => {
    // cli/tests/smoke/ddl/smoke_test_datatype_preservation.rs:178-240
    await server.ok(`CREATE TABLE smk.types (id BIGINT PRIMARY KEY, data JSON, note TEXT, amount DOUBLE, at TIMESTAMP) WITH (TYPE = 'SHARED')`);
    const [row] = await server.rows(`SELECT columns FROM system.schemas WHERE namespace_id = 'smk' AND table_name = 'types'`);
    const columns = JSON.parse(String(row!.columns)) as Array<{ column_name: string; data_type: string }>;
    assert.deepEqual(Object.fromEntries(columns.map((c) => [c.column_name, c.data_type])),
      { id: 'BigInt', data: 'Json', note: 'Text', amount: 'Double', at: 'Timestamp' });
  });

  it('system.stats has metric_name / metric_value rows, system.settings masks secrets', async () => {
    // cli/tests/smoke/cli/smoke_test_cli_commands.rs:29-37
    const stats = await server.rows('SELECT metric_name, metric_value FROM system.stats ORDER BY metric_name LIMIT 5000');
    const names = stats.map((r) => r.metric_name);
    for (const name of ['server_workers_effective', 'max_connections', 'total_users', 'total_namespaces', 'total_tables', 'server_uptime_seconds']) {
      assert.ok(names.includes(name), name);
    }
    assert.ok(stats.every((r) => typeof r.metric_value === 'string'));
    assert.equal(stats.find((r) => r.metric_name === 'total_namespaces')!.metric_value, '2');
    const settings = await server.rows(`SELECT name, value FROM system.settings WHERE name IN ('root_password', 'statements_per_request_max')`);
    assert.deepEqual(settings.map((r) => r.name).sort(), ['root_password', 'statements_per_request_max']);
    assert.equal(settings.find((r) => r.name === 'root_password')!.value, '***');
  });

  it('information_schema.tables and information_schema.columns describe user and system tables', async () => {
    // cli/tests/smoke/cli/smoke_test_cli_commands.rs:119-129, 308, 314
    await server.ok(`CREATE TABLE smk.cols (id BIGINT PRIMARY KEY, name VARCHAR, active BOOLEAN) WITH (TYPE = 'SHARED')`);
    assert.deepEqual(await server.rows(`SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = 'smk' AND table_name = 'cols' ORDER BY ordinal_position`), [
      { column_name: 'id', data_type: 'BIGINT', is_nullable: 'NO' },
      { column_name: 'name', data_type: 'TEXT', is_nullable: 'YES' },
      { column_name: 'active', data_type: 'BOOLEAN', is_nullable: 'YES' },
    ]);
    const tables = await server.rows(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'smk' AND table_name = 'cols'`);
    assert.deepEqual(tables, [{ table_schema: 'smk', table_name: 'cols' }]);
    await server.ok('SELECT table_schema, table_name, column_name FROM information_schema.columns LIMIT 5');
    // cli/tests/smoke/system/smoke_test_all_system_tables_schemas.rs:208-240
    const system = await server.rows(`SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_catalog = 'kalam' AND table_schema = 'system' AND table_name IN ('users', 'jobs') ORDER BY table_name, ordinal_position`);
    assert.ok(system.some((r) => r.table_name === 'users' && r.column_name === 'user_id'));
    assert.ok(system.some((r) => r.table_name === 'jobs' && r.column_name === 'message'));
  });

  it('STORAGE FLUSH ALL IN ns lists job ids as [id, ...]; system.jobs has them; system.manifest has manifest_json', async () => {
    // cli/tests/smoke/system/smoke_test_system_and_users.rs:60-100 with cli/tests/common/mod.rs
    // parse_job_ids_from_flush_all_output (split on "Job IDs: [")
    await server.ok('CREATE NAMESPACE smk_flush');
    await server.ok(`CREATE TABLE smk_flush.t (id INT PRIMARY KEY, value VARCHAR) WITH (TYPE = 'USER', FLUSH_POLICY = 'rows:100')`);
    await server.ok(`INSERT INTO smk_flush.t (id, value) VALUES (1, 'test')`);
    const started = await message('STORAGE FLUSH ALL IN smk_flush');
    const ids = /Job IDs: \[([^\]]*)\]/.exec(started)?.[1]?.split(',').map((s) => s.trim().split(/\s+/)[0]!).filter((s) => s !== '');
    assert.ok(ids !== undefined && ids.length === 1, started);
    for (const id of ids) {
      assert.equal((await server.rows(`SELECT job_id FROM system.jobs WHERE job_id='${id}'`)).length, 1);
      const job = await waitJob(id);
      assert.equal(job.status, 'completed');
      assert.match(String(job.message), /^Flushed smk_flush\.t successfully \(1 rows, 1 files\)$/);
    }
    // cli/tests/smoke/flushing/smoke_test_flush_manifest.rs:246 via manifest_exists_in_system_table
    const manifests = await server.rows(`SELECT manifest_json FROM system.manifest WHERE namespace_id = 'smk_flush' AND table_name = 't'`);
    assert.equal(manifests.length, 1);
    assert.ok(String(manifests[0]!.manifest_json).includes('batch-'), String(manifests[0]!.manifest_json));
    // the IN NAMESPACE spelling (backend kalamdb-dialect flush_commands.rs)
    assert.match(await message('STORAGE FLUSH ALL IN NAMESPACE smk_flush'), /^Storage flush skipped: no pending writes in namespace 'smk_flush'$/);
  });

  it('STORAGE COMPACT TABLE and STORAGE COMPACT ALL IN ns: jobs whose message says Compaction completed', async () => {
    // cli/tests/smoke/storage/smoke_test_storage_compact.rs:84-113
    await server.ok('CREATE NAMESPACE smk_compact');
    await server.ok(`CREATE TABLE smk_compact.t (id INT PRIMARY KEY, value TEXT) WITH (TYPE = 'SHARED')`);
    await server.ok(`INSERT INTO smk_compact.t (id, value) VALUES ${Array.from({ length: 40 }, (_, i) => `(${i + 1}, 'v${i + 1}')`).join(', ')}`);
    await server.ok('DELETE FROM smk_compact.t WHERE id <= 25');
    const [compact] = await server.ok('STORAGE COMPACT TABLE smk_compact.t');
    const jobId = /Job ID: (\S+)/.exec(compact!.message ?? '')![1]!;
    const job = await waitJob(jobId);
    assert.equal(job.status, 'completed');
    assert.ok(String(job.message).includes('Compaction completed'), String(job.message));
    // backend/tests/misc/storage/test_storage_compact.rs:286-296, 328-337
    await server.ok(`CREATE TABLE smk_compact.u (id INT PRIMARY KEY, value TEXT) WITH (TYPE = 'USER')`);
    const all = await message('STORAGE COMPACT ALL IN smk_compact');
    const ids = /^Storage compaction started for 2 table\(s\) in namespace 'smk_compact'\. Job IDs: \[(CO-\d+), (CO-\d+)\]$/.exec(all);
    assert.ok(ids, all);
    for (const id of ids.slice(1)) assert.equal((await waitJob(id!)).status, 'completed');
    await server.ok('CREATE NAMESPACE smk_streams');
    await server.ok(`CREATE TABLE smk_streams.e (id TEXT PRIMARY KEY, v TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 60)`);
    assertError(await server.sql('STORAGE COMPACT TABLE smk_streams.e'), 400, 'SQL_EXECUTION_ERROR', /STREAM/);
    assertError(await server.sql('STORAGE COMPACT ALL IN smk_streams'), 400, 'SQL_EXECUTION_ERROR', /No compactable tables/);
    // only admins
    assertError(await server.sql('STORAGE COMPACT ALL IN smk_compact', { auth: alice }), 403, 'PERMISSION_DENIED');
  });

  it('JSON operators and upstream JSON functions', async () => {
    // cli/tests/smoke/query/smoke_test_json_operators.rs
    await server.ok(`CREATE TABLE smk.docs (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), doc JSON, metadata JSON) WITH (TYPE = 'SHARED')`);
    await server.ok(`INSERT INTO smk.docs (doc, metadata) VALUES
      ('{"name":"alice","city":"paris","profile":{"city":"london"},"user":{"address":{"zip":"90210"}},"tags":["admin","user"]}', '{"source":"web"}'),
      ('{"customer_id":"cust_123","status":"paid","items":[10,20,30],"meta":{"a":1,"b":2},"count":7,"flag":true,"ratio":0.5}', NULL)`);
    // :133-215 (->> and -> chains)
    assert.deepEqual(await server.rows(`SELECT doc->>'name' AS name, doc->'profile'->>'city' AS city, doc->'user'->'address'->>'zip' AS zip,
      metadata->>'source' AS src FROM smk.docs WHERE doc->>'name' = 'alice'`), [{ name: 'alice', city: 'london', zip: '90210', src: 'web' }]);
    // :239-263 (? and json_contains)
    assert.deepEqual(await server.rows(`SELECT doc->>'customer_id' AS customer_id FROM smk.docs WHERE doc ? 'customer_id'`), [{ customer_id: 'cust_123' }]);
    assert.deepEqual(await server.rows(`SELECT json_as_text(doc, 'status') AS status FROM smk.docs WHERE json_contains(doc, 'customer_id')`), [{ status: 'paid' }]);
    // :338-360 (json_length, json_get_int, json_get_bool, json_object_keys)
    const [helpers] = await server.rows(`SELECT json_length(doc, 'items') AS item_count, json_get_int(doc, 'count') AS count_value,
      json_get_bool(doc, 'flag') AS flag_value, json_get_float(doc, 'ratio') AS ratio, json_get_str(doc, 'status') AS status,
      json_get_int(doc, 'items', 1) AS second_item, json_object_keys(doc, 'meta') AS meta_keys FROM smk.docs WHERE doc ? 'items'`);
    assert.deepEqual({ ...helpers, meta_keys: JSON.parse(String(helpers!.meta_keys)) },
      { item_count: '3', count_value: '7', flag_value: true, ratio: 0.5, status: 'paid', second_item: '20', meta_keys: ['a', 'b'] });
    // a wrong type is NULL, as in datafusion-functions-json
    assert.deepEqual(await server.rows(`SELECT json_get_int(doc, 'status') AS n, json_get_str(doc, 'count') AS s FROM smk.docs WHERE doc ? 'status'`), [{ n: null, s: null }]);
    // DuckDB's own json_contains(document, document) still works
    assert.deepEqual(await server.rows(`SELECT json_contains('{"a":1,"b":2}', '{"a":1}') AS c`), [{ c: true }]);
    assertError(await server.sql(`SELECT json_get_str(doc, name) FROM smk.docs, (SELECT 'a' AS name) n`), 400, 'INVALID_SQL', /constant keys/);
    // users reach the same functions through the bind layer
    await server.ok(`CREATE TABLE smk.mydocs (id INT PRIMARY KEY, doc JSON) WITH (TYPE = 'USER')`);
    await server.ok(`INSERT INTO smk.mydocs (id, doc) VALUES (1, '{"k":{"n":5}}')`, { auth: alice });
    assert.deepEqual(await server.rows(`SELECT json_get_int(doc, 'k', 'n') AS n FROM smk.mydocs WHERE doc ? 'k'`, { auth: alice }), [{ n: '5' }]);
  });

  it('SHOW COLUMNS FROM ns.t describes a table', async () => {
    // backend/tests/misc/sql/test_datafusion_commands.rs:140-158
    await server.ok(`CREATE TABLE smk.show_cols (id INT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED')`);
    const rows = await server.rows('SHOW COLUMNS FROM smk.show_cols', { auth: dba });
    assert.deepEqual(rows.map((r) => r.column_name).slice(0, 2), ['id', 'name']);
  });

  it('regular users cannot read system tables or information_schema, even inside a batch', async () => {
    // cli/tests/smoke/security/smoke_test_security_access.rs:137-167
    for (const sql of ['SELECT 1; SELECT * FROM system.users', 'SELECT 1; SELECT * FROM system.schemas',
      'SELECT 1; SELECT * FROM (SELECT * FROM system.users) AS u', 'WITH u AS (SELECT * FROM system.users) SELECT * FROM u',
      'SELECT (SELECT COUNT(*) FROM system.users) AS cnt', 'SELECT 1 UNION SELECT user_id FROM system.users',
      'SELECT * FROM system.stats', 'SELECT * FROM system.settings', 'SELECT * FROM information_schema.tables']) {
      const res = await server.sql(sql, { auth: alice });
      assert.equal(res.body.status, 'error', sql);
      assert.match(res.body.error!.message, /Permission denied/, sql);
    }
  });

  it('EXECUTE AS USER: privileged roles write into the target partition, a SHARED table is refused by table type', async () => {
    // cli/tests/smoke/impersonating/smoke_test_as_user_impersonation.rs:76-110, 330-384
    await server.ok(`CREATE TABLE smk.asu (id VARCHAR PRIMARY KEY, value VARCHAR) WITH (TYPE='USER')`);
    await server.ok(`CREATE TABLE smk.ass (id VARCHAR PRIMARY KEY, value VARCHAR) WITH (TYPE='SHARED')`);
    await server.ok(`EXECUTE AS USER 'smoke_alice' (INSERT INTO smk.asu (id, value) VALUES ('n1', 'allowed'))`, { auth: dba });
    assert.deepEqual(await server.rows('SELECT id, value FROM smk.asu', { auth: alice }), [{ id: 'n1', value: 'allowed' }]);
    const shared = await server.sql(`EXECUTE AS USER 'smoke_alice' (INSERT INTO smk.ass (id, value) VALUES ('s1', 'blocked'))`, { auth: dba });
    assert.equal(shared.body.status, 'error');
    assert.match(shared.body.error!.message.toLowerCase(), /shared/);
    // cli/tests/smoke/impersonating/smoke_test_as_user_authorization.rs:98-116
    const denied = await server.sql(`EXECUTE AS USER 'root' (INSERT INTO smk.asu (id, value) VALUES ('x', 'x')); SELECT 1;`, { auth: dba });
    assert.equal(denied.body.status, 'error');
    assert.match(denied.body.error!.message.toLowerCase(), /permission/);
  });

  it('USE [NAMESPACE] ns and SET NAMESPACE ns switch the namespace of unqualified names for the rest of the request', async () => {
    // backend/crates/kalamdb-dialect/src/ddl/use_namespace.rs (USE ns, USE NAMESPACE ns, SET NAMESPACE ns) and its
    // handler's message (kalamdb-handlers/crates/ddl/src/namespace/use_namespace.rs:76)
    await server.ok(`CREATE TABLE smk.use_t (id INT PRIMARY KEY, v TEXT) WITH (TYPE = 'SHARED')`);
    const results = await server.ok(`USE smk; INSERT INTO use_t (id, v) VALUES (1, 'a'); SELECT id, v FROM use_t`);
    assert.equal(results[0]!.message, "Namespace switched to 'smk'");
    assert.deepEqual(results[2]!.rows, [[1, 'a']]);
    assert.deepEqual((await server.ok('USE NAMESPACE smk; SELECT COUNT(*) AS n FROM use_t'))[1]!.rows, [['1']]);
    assert.deepEqual((await server.ok('SET NAMESPACE smk; SELECT COUNT(*) AS n FROM use_t'))[1]!.rows, [['1']]);
    // the next request starts again from its namespace_id (no session)
    assertError(await server.sql('SELECT * FROM use_t'), 400, 'SQL_EXECUTION_ERROR', /'default\.use_t' does not exist/);
    assertError(await server.sql('USE nope'), 400, 'SQL_EXECUTION_ERROR', /Namespace 'nope' does not exist/);
  });

  it('system.users, system.namespaces and system.jobs answer the columns the smoke tests select', async () => {
    // cli/tests/smoke/cli/smoke_test_cli_commands.rs:278-302, usecases/smoke_test_core_operations.rs:91-175
    assert.deepEqual(await server.rows(`SELECT user_id, role FROM system.users WHERE user_id = 'root' LIMIT 1`), [{ user_id: 'root', role: 'system' }]);
    assert.deepEqual(await server.rows(`SELECT namespace_id, name FROM system.namespaces WHERE name = 'smk'`), [{ namespace_id: 'smk', name: 'smk' }]);
    await server.ok('SELECT job_id, job_type, status FROM system.jobs LIMIT 5');
    await server.ok(`CREATE USER smoke_gone WITH PASSWORD 'smoke_pass_123' ROLE 'user'`);
    await server.ok(`DROP USER 'smoke_gone'`);
    const [gone] = await server.rows(`SELECT user_id, deleted_at FROM system.users WHERE user_id = 'smoke_gone'`);
    assert.notEqual(gone!.deleted_at, null);
  });
});
