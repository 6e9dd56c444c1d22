/**
 * Upstream KalamDB's topic scenarios replayed against the real server. Each case names the upstream
 * file and test it follows (paths in jamals86/KalamDB):
 *   backend/tests/integration_tests/topic_pubsub.rs             (topic_pubsub.rs below)
 *   cli/tests/smoke/topics/smoke_test_topic_consumption.rs      (smoke_test_topic_consumption.rs)
 *   cli/tests/smoke/topics/smoke_test_topic_high_load.rs        (smoke_test_topic_high_load.rs)
 *   backend/tests/misc/system/test_topic_cleanup_job.rs         (test_topic_cleanup_job.rs)
 *   backend/crates/kalamdb-handlers/crates/stream/src/topics/*.rs (the handlers: messages, roles)
 *   backend/crates/kalamdb-api/src/http/topics/*.rs              (the HTTP routes)
 *   backend/crates/kalamdb-configs/src/config/override.rs        (visibility timeout settings)
 * Upstream's `clear_cache()` (dropping in-memory claims) is replayed as a server restart, which drops
 * ours. Where this server deliberately differs (docs/protocol.md, "Differences from upstream KalamDB",
 * Topics) the case asserts our behaviour and says so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_PASSWORD, TestServer, assertError, authHeader, eventually, type Auth } from './harness.js';

type Row = Record<string, unknown>;
interface HttpMessage { topic_id: string; partition_id: number; offset: number; payload: string; key: string | null; timestamp_ms: number; user?: string; op: string }
interface HttpConsumed { messages: HttpMessage[]; next_offset: number; has_more: boolean }

const offsets = (rows: Row[]): number[] => rows.map((r) => Number(r.offset));
const payloadOf = (m: HttpMessage): Row => JSON.parse(Buffer.from(m.payload, 'base64').toString('utf8')) as Row;
const sqlPayload = (r: Row): Row => JSON.parse(String(r.payload)) as Row;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** POST /v1/api/topics/{consume,ack} as `auth`. */
async function http(server: TestServer, route: 'consume' | 'ack', body: Row, auth: Auth): Promise<{ status: number; json: unknown; text: string }> {
  return server.post(`/v1/api/topics/${route}`, body, authHeader(auth));
}

async function consumeHttp(server: TestServer, body: Row, auth: Auth): Promise<HttpConsumed> {
  const res = await http(server, 'consume', body, auth);
  assert.equal(res.status, 200, res.text);
  return res.json as HttpConsumed;
}

/** upstream's wait_until_group_reads_at_least: polls a group until it has read min messages (distinct offsets). */
async function readAtLeast(server: TestServer, auth: Auth, topic: string, group: string, start: unknown, limit: number, min: number): Promise<HttpConsumed> {
  const seen = new Map<string, HttpMessage>();
  let last: HttpConsumed = { messages: [], next_offset: 0, has_more: false };
  await eventually(`${group} reads ${min}`, async () => {
    last = await consumeHttp(server, { topic_id: topic, group_id: group, start, limit, partition_id: 0, timeout_seconds: 1 }, auth);
    for (const m of last.messages) if (!seen.has(`${m.partition_id}:${m.offset}`)) seen.set(`${m.partition_id}:${m.offset}`, m);
    return seen.size >= min;
  }, 20_000, 120);
  return { messages: [...seen.values()], next_offset: last.next_offset, has_more: last.has_more };
}

describe('topics: upstream scenarios', () => {
  let server: TestServer;
  let user: Auth;
  let service: Auth;
  let dba: Auth;
  const root: Auth = { user: 'root', password: ROOT_PASSWORD };

  before(async () => {
    // The default visibility timeout (60 s): group claims do not expire during these cases.
    server = await TestServer.start();
    user = await server.createUser('up_user', 'user');
    service = await server.createUser('up_service', 'service');
    dba = await server.createUser('up_dba', 'dba');
    await server.ok('CREATE NAMESPACE IF NOT EXISTS default');
  });
  after(async () => {
    await server.dispose();
  });

  /** upstream's assert_topic_offset_state: the group's system.topic_offsets row (partition 0), or none. */
  const offsetState = async (topic: string, group: string): Promise<{ acked: number; updatedAt: number } | null> => {
    const rows = await server.rows(`SELECT topic_id, group_id, partition_id, last_acked_offset, updated_at FROM system.topic_offsets WHERE topic_id = '${topic}' AND group_id = '${group}' ORDER BY partition_id`);
    if (rows.length === 0) return null;
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0]!.topic_id, topic);
    assert.equal(rows[0]!.group_id, group);
    assert.equal(Number(rows[0]!.partition_id), 0);
    const updatedAt = Number(rows[0]!.updated_at);
    assert.ok(updatedAt > 0, 'updated_at is populated');
    return { acked: Number(rows[0]!.last_acked_offset), updatedAt };
  };
  const offsetCount = async (topic: string): Promise<number> =>
    Number((await server.rows(`SELECT COUNT(*) AS count FROM system.topic_offsets WHERE topic_id = '${topic}'`))[0]!.count);

  /** upstream's setup_topic_source_fixture: namespace, (id INT PRIMARY KEY, payload TEXT), topic fed ON INSERT (full). */
  let fixtures = 0;
  const fixture = async (name: string): Promise<{ topic: string; table: string }> => {
    const ns = `${name}_${++fixtures}`;
    await server.ok(`CREATE NAMESPACE ${ns}`);
    await server.ok(`CREATE TABLE ${ns}.events (id INT PRIMARY KEY, payload TEXT)`);
    const [created] = await server.ok(`CREATE TOPIC ${ns}.topic PARTITIONS 1`);
    assert.equal(created!.message, `Created topic '${ns}.topic' with 1 partition(s)`);
    await server.ok(`ALTER TOPIC ${ns}.topic ADD SOURCE ${ns}.events ON INSERT WITH (payload = 'full')`);
    return { topic: `${ns}.topic`, table: `${ns}.events` };
  };
  const insertMany = async (table: string, ids: number[], prefix = 'payload'): Promise<void> => {
    for (const id of ids) await server.ok(`INSERT INTO ${table} (id, payload) VALUES (${id}, '${prefix}_${id}')`);
  };
  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  // topic_pubsub.rs: test_create_topic_basic, test_alter_topic_add_source, test_drop_topic,
  // test_drop_topic_schedules_cleanup_job; handlers create.rs, add_source.rs, drop.rs.
  it('CREATE / ALTER ... ADD SOURCE / DROP TOPIC: messages and errors as upstream', async () => {
    const [created] = await server.ok('CREATE TOPIC default.user_events_topic PARTITIONS 1');
    assert.equal(created!.message, "Created topic 'default.user_events_topic' with 1 partition(s)");
    assertError(await server.sql('CREATE TOPIC default.user_events_topic PARTITIONS 1'), 400, 'SQL_EXECUTION_ERROR', /^Topic 'default.user_events_topic' already exists$/);
    const [four] = await server.ok('CREATE TOPIC default.four PARTITIONS 4');
    assert.equal(four!.message, "Created topic 'default.four' with 4 partition(s)");
    const missingNs = await server.sql('CREATE TOPIC no_such_ns.t');
    assert.equal(missingNs.body.error?.code, 'NOT_FOUND');
    assert.equal(missingNs.body.error?.message, "Namespace 'no_such_ns' does not exist");

    await server.ok('CREATE NAMESPACE test_alter_ns');
    await server.ok('CREATE TABLE test_alter_ns.data (id TEXT PRIMARY KEY, value TEXT)');
    await server.ok('CREATE TOPIC test_alter_ns.data_changes_tp PARTITIONS 1');
    const [added] = await server.ok('ALTER TOPIC test_alter_ns.data_changes_tp ADD SOURCE test_alter_ns.data ON INSERT');
    assert.equal(added!.message, "Added source test_alter_ns.data ON Insert to topic 'test_alter_ns.data_changes_tp'");
    // add_source.rs: a second route for the same table and operation is refused.
    assertError(await server.sql('ALTER TOPIC test_alter_ns.data_changes_tp ADD SOURCE test_alter_ns.data ON INSERT'), 400, 'SQL_EXECUTION_ERROR',
      /^Route for test_alter_ns.data ON Insert already exists in topic 'test_alter_ns.data_changes_tp'$/);
    const [upd] = await server.ok("ALTER TOPIC test_alter_ns.data_changes_tp ADD SOURCE test_alter_ns.data ON UPDATE WITH (payload = 'diff')");
    assert.equal(upd!.message, "Added source test_alter_ns.data ON Update to topic 'test_alter_ns.data_changes_tp'");
    const missingTopic = await server.sql('ALTER TOPIC test_alter_ns.nope ADD SOURCE test_alter_ns.data ON INSERT');
    assert.equal(missingTopic.body.error?.code, 'NOT_FOUND');
    assert.equal(missingTopic.body.error?.message, "Topic 'test_alter_ns.nope' does not exist");
    const [topic] = await server.rows("SELECT topic_id, name, partitions, retention_seconds, retention_max_bytes, routes FROM system.topics WHERE topic_id = 'test_alter_ns.data_changes_tp'");
    // create.rs: 7 days and 1 GiB of retention by default.
    assert.deepEqual([topic!.name, Number(topic!.partitions), Number(topic!.retention_seconds), Number(topic!.retention_max_bytes)],
      ['test_alter_ns.data_changes_tp', 1, 604_800, 1_073_741_824]);
    assert.deepEqual(JSON.parse(String(topic!.routes)), [
      { table_id: 'test_alter_ns.data', op: 'INSERT', payload_mode: 'full', filter_expr: null },
      { table_id: 'test_alter_ns.data', op: 'UPDATE', payload_mode: 'diff', filter_expr: null },
    ]);

    // test_drop_topic / test_drop_topic_schedules_cleanup_job: ours deletes at once (documented difference:
    // upstream answers "... and scheduled cleanup job [<id>]"); a second DROP says the topic does not exist.
    await server.ok('CREATE TOPIC default.temp_drop_tp PARTITIONS 1');
    const [dropped] = await server.ok('DROP TOPIC default.temp_drop_tp');
    assert.equal(dropped!.message, "Dropped topic 'default.temp_drop_tp'");
    const again = await server.sql('DROP TOPIC default.temp_drop_tp');
    assert.equal(again.body.status, 'error');
    assert.equal(again.body.error?.code, 'NOT_FOUND');
    assert.equal(again.body.error?.message, "Topic 'default.temp_drop_tp' does not exist");
  });

  // Not in upstream's grammar (docs/protocol.md lists them): IF NOT EXISTS / IF EXISTS.
  it('CREATE TOPIC IF NOT EXISTS and DROP TOPIC IF EXISTS', async () => {
    await server.ok('CREATE TOPIC default.ifx PARTITIONS 2');
    const [exists] = await server.ok('CREATE TOPIC IF NOT EXISTS default.ifx PARTITIONS 5');
    assert.equal(exists!.message, "Topic 'default.ifx' already exists");
    const [t] = await server.rows("SELECT partitions FROM system.topics WHERE topic_id = 'default.ifx'");
    assert.equal(Number(t!.partitions), 2, 'an existing topic is left as it is');
    const [made] = await server.ok('CREATE TOPIC IF NOT EXISTS default.ifx_new');
    assert.equal(made!.message, "Created topic 'default.ifx_new' with 1 partition(s)");
    const [gone] = await server.ok('DROP TOPIC IF EXISTS default.ifx_new');
    assert.equal(gone!.message, "Dropped topic 'default.ifx_new'");
    const [absent] = await server.ok('DROP TOPIC IF EXISTS default.ifx_new');
    assert.equal(absent!.message, "Topic 'default.ifx_new' does not exist");
    assert.deepEqual(await server.rows("SELECT topic_id FROM system.topics WHERE topic_id = 'default.ifx_new'"), []);
    // Documented difference: a name without namespace uses the request's (upstream: "Topic name must be namespace-qualified").
    const [plain] = await server.ok('CREATE TOPIC ifx_plain', { namespace: 'test_alter_ns' });
    assert.equal(plain!.message, "Created topic 'test_alter_ns.ifx_plain' with 1 partition(s)");
    await server.ok('DROP TOPIC ifx_plain', { namespace: 'test_alter_ns' });
  });

  // topic_pubsub.rs: test_consume_user_role_forbidden, test_consume_privileged_roles_allowed,
  // test_ack_user_role_forbidden, test_clear_topic_user_role_forbidden; the check_authorization of every
  // handler (create/add_source/drop/clear: DBA or System; consume/ack: service, dba or system) and of
  // the HTTP routes (consume.rs, ack.rs: 403 for role user).
  it('the role matrix: user / service / dba / system for every topic statement and HTTP route', async () => {
    await server.ok('CREATE NAMESPACE rm');
    await server.ok('CREATE TABLE rm.src (id INT PRIMARY KEY, v INT)');
    await server.ok('CREATE TOPIC rm.t');
    await server.ok('INSERT INTO rm.src VALUES (1, 1)');
    const roles: Array<[string, Auth]> = [['user', user], ['service', service], ['dba', dba], ['system', root]];
    const admin = new Set(['dba', 'system']);
    const ops = ['INSERT', 'UPDATE', 'DELETE'];
    let opIndex = 0;
    for (const [role, auth] of roles) {
      const name = `rm.by_${role}`;
      const create = await server.sql(`CREATE TOPIC ${name}`, { auth });
      if (admin.has(role)) assert.equal(create.body.status, 'success', JSON.stringify(create.body));
      else assertError(create, 403, 'PERMISSION_DENIED', /^CREATE TOPIC requires DBA or System role$/);
      const alter = await server.sql(`ALTER TOPIC rm.t ADD SOURCE rm.src ON ${admin.has(role) ? ops[opIndex++] : 'INSERT'}`, { auth });
      if (admin.has(role)) assert.equal(alter.body.status, 'success', JSON.stringify(alter.body));
      else assertError(alter, 403, 'PERMISSION_DENIED', /^ALTER TOPIC requires DBA or System role$/);
      const clear = await server.sql('CLEAR TOPIC rm.t', { auth });
      if (admin.has(role)) assert.equal(clear.body.status, 'success', JSON.stringify(clear.body));
      else assertError(clear, 403, 'PERMISSION_DENIED', /^CLEAR TOPIC requires DBA or System role$/);
      const consume = await server.sql(`CONSUME FROM rm.t GROUP '${role}_group' START EARLIEST LIMIT 10`, { auth });
      if (role !== 'user') assert.equal(consume.body.status, 'success', JSON.stringify(consume.body));
      else assertError(consume, 403, 'PERMISSION_DENIED', /^Only service, dba, or system roles can consume from topics$/);
      const ack = await server.sql(`ACK rm.t GROUP '${role}_group' UPTO OFFSET 0`, { auth });
      if (role !== 'user') assert.deepEqual(ack.body.results[0]?.rows, [['rm.t', `${role}_group`, 0, '0']], JSON.stringify(ack.body));
      else assertError(ack, 403, 'PERMISSION_DENIED', /^Only service, dba, or system roles can acknowledge topic offsets$/);
      const httpConsume = await http(server, 'consume', { topic_id: 'rm.t', group_id: `${role}_http`, start: 'Earliest' }, auth);
      const httpAck = await http(server, 'ack', { topic_id: 'rm.t', group_id: `${role}_http`, partition_id: 0, upto_offset: 0 }, auth);
      if (role !== 'user') {
        assert.equal(httpConsume.status, 200, httpConsume.text);
        assert.deepEqual(httpAck.json, { success: true, acknowledged_offset: 0 });
      } else {
        assert.equal(httpConsume.status, 403, httpConsume.text);
        assert.equal((httpConsume.json as Row).message, 'Topic consumption requires service, dba, or system role');
        assert.equal(httpAck.status, 403, httpAck.text);
        assert.equal((httpAck.json as Row).message, 'Topic acknowledgment requires service, dba, or system role');
      }
      // The system views of topics are for dba/system.
      const view = await server.sql('SELECT topic_id FROM system.topic_offsets', { auth });
      assert.equal(view.body.status, admin.has(role) ? 'success' : 'error', JSON.stringify(view.body));
      const drop = await server.sql(`DROP TOPIC ${admin.has(role) ? name : 'rm.t'}`, { auth });
      if (admin.has(role)) assert.equal(drop.body.status, 'success', JSON.stringify(drop.body));
      else assertError(drop, 403, 'PERMISSION_DENIED', /^DROP TOPIC requires DBA or System role$/);
    }
    // The role is checked before the topic is looked up (upstream's check_authorization runs first).
    assertError(await server.sql("CONSUME FROM rm.nope GROUP 'g'", { auth: user }), 403, 'PERMISSION_DENIED');
    // Without credentials the HTTP routes answer 401.
    assert.equal((await server.post('/v1/api/topics/consume', { topic_id: 'rm.t', group_id: 'g' })).status, 401);
    assert.equal((await server.post('/v1/api/topics/ack', { topic_id: 'rm.t', group_id: 'g', upto_offset: 0 })).status, 401);
  });

  // topic_pubsub.rs: test_consume_from_topic, test_consume_schema_structure, test_ack_offset.
  it('CONSUME on an empty topic: success, the 8-column message schema; ACK creates the offset row', async () => {
    await server.ok('CREATE TOPIC default.test_consume_tp PARTITIONS 1');
    const res = await server.ok("CONSUME FROM default.test_consume_tp GROUP 'consumers' START EARLIEST LIMIT 10");
    assert.equal(res[0]!.row_count, 0);
    // Names and order as upstream's topic_message_schema; payload is Text here (upstream Bytes: documented).
    assert.deepEqual(res[0]!.schema!.map((f) => [f.name, f.data_type]), [
      ['topic_id', 'Text'], ['partition_id', 'Int'], ['offset', 'BigInt'], ['key', 'Text'],
      ['payload', 'Text'], ['timestamp_ms', 'BigInt'], ['user_id', 'Text'], ['op', 'Text'],
    ]);
    // test_ack_offset: an empty grouped consume records nothing; ACK 0 creates the row.
    assert.equal(await offsetState('default.test_consume_tp', 'consumers'), null);
    const acked = await server.ok("ACK default.test_consume_tp GROUP 'consumers' UPTO OFFSET 0");
    assert.deepEqual(acked[0]!.schema!.map((f) => [f.name, f.data_type]), [['topic', 'Text'], ['group_id', 'Text'], ['partition', 'Int'], ['committed_offset', 'BigInt']]);
    assert.deepEqual(acked[0]!.rows, [['default.test_consume_tp', 'consumers', 0, '0']]);
    assert.equal((await offsetState('default.test_consume_tp', 'consumers'))!.acked, 0);
    // Unknown topics: NOT_FOUND with upstream's words (consume.rs, ack.rs).
    const missing = await server.sql("CONSUME FROM default.nope GROUP 'g' FROM EARLIEST");
    assert.equal(missing.body.error?.code, 'NOT_FOUND');
    assert.equal(missing.body.error?.message, "Topic 'default.nope' does not exist");
    assert.equal((await server.sql("ACK default.nope GROUP 'g' UPTO OFFSET 0")).body.error?.code, 'NOT_FOUND');
    const httpMissing = await http(server, 'consume', { topic_id: 'default.nope', group_id: 'g' }, service);
    assert.equal(httpMissing.status, 404);
    assert.equal((httpMissing.json as Row).message, "Topic 'default.nope' does not exist");
    assert.equal((await http(server, 'ack', { topic_id: 'default.nope', group_id: 'g', upto_offset: 0 }, service)).status, 404);
  });

  // topic_pubsub.rs: test_cdc_insert_to_consume_workflow (TEXT keys evt1/evt2, SQL schema, HTTP keys as root with a Bearer token).
  it('INSERT -> topic -> CONSUME end to end; HTTP keys with a Bearer token', async () => {
    await server.ok('CREATE NAMESPACE test_cdc_ns');
    await server.ok('CREATE TABLE test_cdc_ns.events (event_id TEXT PRIMARY KEY, event_type TEXT, payload TEXT)');
    await server.ok('CREATE TOPIC test_cdc_ns.events_stream PARTITIONS 1');
    await server.ok('ALTER TOPIC test_cdc_ns.events_stream ADD SOURCE test_cdc_ns.events ON INSERT');
    await server.ok("INSERT INTO test_cdc_ns.events (event_id, event_type, payload) VALUES ('evt1', 'login', 'user1')");
    await server.ok("INSERT INTO test_cdc_ns.events (event_id, event_type, payload) VALUES ('evt2', 'logout', 'user2')");
    const res = await server.ok("CONSUME FROM test_cdc_ns.events_stream GROUP 'cdc_consumers' FROM EARLIEST LIMIT 10");
    assert.deepEqual(res[0]!.schema!.map((f) => f.name), ['topic_id', 'partition_id', 'offset', 'key', 'payload', 'timestamp_ms', 'user_id', 'op']);
    assert.ok(res[0]!.row_count <= 10);
    assert.deepEqual(res[0]!.rows!.map((r) => [r[2], r[3], r[7]]), [['0', 'evt1', 'insert'], ['1', 'evt2', 'insert']]);
    const { access_token } = await server.login('root', ROOT_PASSWORD);
    const got = await readAtLeast(server, { token: access_token }, 'test_cdc_ns.events_stream', 'cdc-key-check', 'earliest', 10, 2);
    assert.deepEqual(new Set(got.messages.map((m) => m.key)), new Set(['evt1', 'evt2']));
  });

  // topic_pubsub.rs: test_sql_group_consume_resumes_from_committed_offsets_after_cache_clear.
  it('a grouped SQL CONSUME commits what it returns; a lower ACK changes nothing; resumes after a restart', async () => {
    const { topic, table } = await fixture('tp_sql_resume');
    const group = 'sql-resume-group';
    await insertMany(table, [1, 2]);
    assert.equal((await server.rows(`CONSUME FROM ${topic} FROM EARLIEST LIMIT 10`, { auth: service })).length, 2);
    assert.equal(await offsetState(topic, group), null);
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT 1`)), [0]);
    const first = await offsetState(topic, group);
    assert.equal(first!.acked, 0, 'the first grouped consume auto-acks offset 0');
    await server.stop();
    await server.launch();
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT 10`)), [1]);
    const second = await offsetState(topic, group);
    assert.equal(second!.acked, 1);
    assert.ok(second!.updatedAt >= first!.updatedAt);
    await server.ok(`ACK ${topic} GROUP '${group}' UPTO OFFSET 0`);
    assert.deepEqual(await offsetState(topic, group), second, 'a lower ACK neither regresses nor rewrites the row');
    await server.stop();
    await server.launch();
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT 10`)), []);
    assert.deepEqual(await offsetState(topic, group), second);
  });

  // topic_pubsub.rs: test_sql_group_offsets_are_isolated_per_group.
  it('group offsets are isolated per group, and survive a restart', async () => {
    const { topic, table } = await fixture('tp_sql_groups');
    await insertMany(table, range(1, 10));
    assert.equal((await server.rows(`CONSUME FROM ${topic} FROM EARLIEST LIMIT 20`)).length, 10);
    const specs = [['group-a', 1], ['group-b', 2], ['group-c', 3], ['group-d', 4], ['group-e', 5]] as const;
    for (const [group, limit] of specs) {
      const rows = await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT ${limit}`);
      assert.equal(rows.length, limit);
      assert.equal(Number(rows[0]!.offset), 0, `${group} starts at the beginning`);
      assert.equal((await offsetState(topic, group))!.acked, limit - 1);
    }
    assert.equal(await offsetCount(topic), specs.length);
    await server.stop();
    await server.launch();
    for (const [group, limit] of specs) {
      const rows = await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT 1`);
      assert.deepEqual(offsets(rows), [limit], `${group} resumes from its own cursor`);
      assert.equal((await offsetState(topic, group))!.acked, limit);
    }
    const all = await server.rows(`SELECT group_id, last_acked_offset FROM system.topic_offsets WHERE topic_id = '${topic}' ORDER BY group_id`);
    assert.deepEqual(all.map((r) => [r.group_id, Number(r.last_acked_offset)]), specs.map(([g, l]) => [g, l]));
  });

  // topic_pubsub.rs: test_sql_group_from_latest_tails_new_messages_and_then_persists_offset.
  it('FROM LATEST tails new messages, then the committed cursor wins over FROM 0', async () => {
    const { topic, table } = await fixture('tp_sql_latest');
    const group = 'latest-group';
    await insertMany(table, range(1, 5));
    assert.equal((await server.rows(`CONSUME FROM ${topic} FROM EARLIEST LIMIT 10`)).length, 5);
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM LATEST LIMIT 10`)), [], 'no backlog replay');
    // Documented difference: the starting position is recorded (upstream keeps it in memory, no row yet).
    assert.equal((await offsetState(topic, group))!.acked, 4);
    await insertMany(table, [100, 101], 'live');
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT 10`)), [5, 6]);
    assert.equal((await offsetState(topic, group))!.acked, 6);
    await server.stop();
    await server.launch();
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM 0 LIMIT 10`)), []);
    assert.equal((await offsetState(topic, group))!.acked, 6);
  });

  // topic_pubsub.rs: test_sql_group_from_offset_starts_at_requested_offset_and_persists_resume.
  it('FROM <offset> starts a new group there and the resume continues after it', async () => {
    const { topic, table } = await fixture('tp_sql_offset');
    const group = 'offset-group';
    await insertMany(table, range(1, 6));
    assert.equal((await server.rows(`CONSUME FROM ${topic} FROM EARLIEST LIMIT 10`)).length, 6);
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM 3 LIMIT 2`)), [3, 4]);
    assert.equal((await offsetState(topic, group))!.acked, 4);
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic} GROUP '${group}' FROM EARLIEST LIMIT 10`)), [5]);
    assert.equal((await offsetState(topic, group))!.acked, 5);
  });

  // topic_pubsub.rs: test_sql_consume_without_group_is_stateless_and_does_not_persist_offsets.
  it('CONSUME without GROUP is stateless and records no offsets', async () => {
    const { topic, table } = await fixture('tp_sql_stateless');
    await insertMany(table, [1, 2]);
    const first = await server.rows(`CONSUME FROM ${topic} FROM EARLIEST LIMIT 1`);
    const second = await server.rows(`CONSUME FROM ${topic} FROM EARLIEST LIMIT 1`);
    assert.deepEqual([offsets(first), offsets(second)], [[0], [0]]);
    assert.equal(await offsetCount(topic), 0);
    // Documented difference: without FROM the position is EARLIEST (upstream: LATEST).
    assert.deepEqual(offsets(await server.rows(`CONSUME FROM ${topic}`)), [0, 1]);
  });

  // topic_pubsub.rs: test_http_api_consume_ack_option_combinations.
  it('HTTP consume / ack option combinations: limit, has_more, next_offset, ack echo, resume, start latest, {Offset: n}', async () => {
    const { topic, table } = await fixture('tp_http_opts');
    const auth: Auth = { token: (await server.login('root', ROOT_PASSWORD)).access_token };
    await insertMany(table, range(0, 79));
    assert.equal((await readAtLeast(server, auth, topic, 'ready-opts', 'earliest', 80, 80)).messages.length, 80);
    const first = await readAtLeast(server, auth, topic, 'group-earliest', 'earliest', 2, 2);
    assert.equal(first.messages.length, 2, 'limit caps the batch');
    assert.equal(first.has_more, true);
    assert.equal(first.next_offset, first.messages[1]!.offset + 1);
    const ackOffset = first.messages[1]!.offset;
    const acked = await http(server, 'ack', { topic_id: topic, group_id: 'group-earliest', partition_id: 0, upto_offset: ackOffset }, auth);
    assert.equal(acked.status, 200, acked.text);
    assert.deepEqual(acked.json, { success: true, acknowledged_offset: ackOffset });
    const resumed = await readAtLeast(server, auth, topic, 'group-earliest', 'earliest', 10, 10);
    assert.ok(resumed.messages.every((m) => m.offset > ackOffset), 'resumes strictly after the acknowledged offset');
    const latest = await consumeHttp(server, { topic_id: topic, group_id: 'group-latest', start: 'latest', limit: 10, partition_id: 0, timeout_seconds: 1 }, auth);
    assert.equal(latest.messages.length, 0, 'start=latest does not replay the backlog');
    assert.equal(latest.next_offset, 80);
    await insertMany(table, [100, 101], 'live');
    const after = await readAtLeast(server, auth, topic, 'group-latest', { Offset: latest.next_offset }, 10, 2);
    assert.deepEqual(after.messages.map((m) => m.offset), [80, 81]);
    // Message shape (topic_message.rs): no `user` for a SHARED table, payload base64 of the JSON row.
    const m = after.messages[0]!;
    assert.deepEqual(Object.keys(m), ['topic_id', 'partition_id', 'offset', 'payload', 'key', 'timestamp_ms', 'op']);
    assert.equal(m.op, 'Insert');
    assert.equal(m.key, '100');
    const { _seq, ...rest } = payloadOf(m);
    assert.match(String(_seq), /^\d+$/);
    assert.deepEqual(rest, { id: 100, payload: 'live_100', _deleted: false, _table: table });
    // start_position.rs: "Latest"/"Earliest" in any case, {"Offset": n} or {"offset": n}; anything else is a 400.
    for (const start of ['EARLIEST', 'earliest', 'Latest', { offset: 3 }]) {
      assert.equal((await http(server, 'consume', { topic_id: topic, group_id: `start-${JSON.stringify(start)}`, start }, auth)).status, 200);
    }
    assert.equal((await http(server, 'consume', { topic_id: topic, group_id: 'bad', start: 'middle' }, auth)).status, 400);
    assert.equal((await http(server, 'consume', { topic_id: topic }, auth)).status, 400, 'group_id is required');
    assert.equal((await http(server, 'ack', { topic_id: topic, group_id: 'g' }, auth)).status, 400, 'upto_offset is required');
  });

  // topic_pubsub.rs: test_http_api_same_group_consumers_no_overlap;
  // smoke_test_topic_high_load.rs: test_topic_high_load_two_consumers_same_group_single_delivery,
  // test_topic_four_consumers_same_group_no_duplicates, test_topic_fan_out_different_groups_receive_all.
  it('same-group consumers never overlap (sequential and 4 concurrent); different groups each get everything', async () => {
    const { topic, table } = await fixture('tp_http_group');
    await server.ok(`INSERT INTO ${table} (id, payload) VALUES ${range(0, 79).map((i) => `(${i}, 'event_${i}')`).join(', ')}`);
    const first = await readAtLeast(server, service, topic, 'shared', 'earliest', 40, 40);
    const second = await readAtLeast(server, service, topic, 'shared', 'earliest', 40, 40);
    const a = new Set(first.messages.map((m) => m.offset));
    const b = new Set(second.messages.map((m) => m.offset));
    assert.equal([...a].filter((o) => b.has(o)).length, 0, 'no overlap');
    assert.equal(new Set([...a, ...b]).size, 80);

    // Four concurrent members of one group, polling small batches and acknowledging each.
    const delivered: number[] = [];
    let idle = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (idle < 20) {
        const got = await consumeHttp(server, { topic_id: topic, group_id: 'four', start: 'Earliest', limit: 7 }, service);
        if (got.messages.length === 0) { idle++; await sleep(20); continue; }
        delivered.push(...got.messages.map((m) => m.offset));
        await http(server, 'ack', { topic_id: topic, group_id: 'four', upto_offset: got.messages[got.messages.length - 1]!.offset }, service);
      }
    }));
    assert.equal(delivered.length, 80, 'each message delivered exactly once');
    assert.deepEqual([...delivered].sort((x, y) => x - y), range(0, 79));

    // Fan-out: every group receives all 80.
    for (const group of ['fan-1', 'fan-2', 'fan-3']) {
      const got = await readAtLeast(server, service, topic, group, 'earliest', 100, 80);
      assert.equal(got.messages.length, 80);
    }
  });

  // topic_pubsub.rs: test_clear_topic, test_clear_topic_not_found; handlers clear.rs.
  it('CLEAR TOPIC empties the topic but keeps it; an unknown topic does not exist', async () => {
    await server.ok('CREATE NAMESPACE test_clear_ns');
    await server.ok('CREATE TABLE test_clear_ns.messages (id TEXT PRIMARY KEY, content TEXT)');
    await server.ok('CREATE TOPIC test_clear_ns.messages_topic PARTITIONS 1');
    await server.ok('ALTER TOPIC test_clear_ns.messages_topic ADD SOURCE test_clear_ns.messages ON INSERT');
    for (const i of [1, 2, 3]) await server.ok(`INSERT INTO test_clear_ns.messages (id, content) VALUES ('${i}', 'message${i}')`);
    assert.equal((await server.rows("CONSUME FROM test_clear_ns.messages_topic GROUP 'test_group' START EARLIEST LIMIT 10")).length, 3);
    // Documented difference: cleared at once (upstream: "Scheduled cleanup job [<id>] for topic '<t>'").
    const [cleared] = await server.ok('CLEAR TOPIC test_clear_ns.messages_topic');
    assert.equal(cleared!.message, "Cleared topic 'test_clear_ns.messages_topic'");
    assert.deepEqual(await server.rows("CONSUME FROM test_clear_ns.messages_topic GROUP 'verify_group' START EARLIEST LIMIT 10"), []);
    assertError(await server.sql('CREATE TOPIC test_clear_ns.messages_topic PARTITIONS 1'), 400, 'SQL_EXECUTION_ERROR', /already exists/);
    const missing = await server.sql('CLEAR TOPIC default.nonexistent_topic');
    assert.equal(missing.body.status, 'error');
    assert.match(missing.body.error!.message, /does not exist/);
  });

  // test_topic_cleanup_job.rs: test_topic_cleanup_job_scheduled_on_drop (messages and offsets are removed).
  it('DROP TOPIC removes the topic, its messages and its group offsets; a new topic of that name starts empty', async () => {
    const { topic, table } = await fixture('tp_cleanup');
    await insertMany(table, [1, 2, 3]);
    await server.rows(`CONSUME FROM ${topic} GROUP 'g' FROM EARLIEST`);
    assert.equal(await offsetCount(topic), 1);
    await server.ok(`DROP TOPIC ${topic}`);
    assert.deepEqual(await server.rows(`SELECT topic_id FROM system.topics WHERE topic_id = '${topic}'`), []);
    assert.equal(await offsetCount(topic), 0);
    await server.ok(`CREATE TOPIC ${topic}`);
    assert.deepEqual(await server.rows(`CONSUME FROM ${topic} FROM EARLIEST`), []);
    await server.ok(`ALTER TOPIC ${topic} ADD SOURCE ${table} ON INSERT`);
    await insertMany(table, [4]);
    const rows = await server.rows(`CONSUME FROM ${topic} GROUP 'g' FROM EARLIEST`);
    assert.deepEqual(rows.map((r) => [Number(r.offset), r.key]), [[0, '4']], 'offsets and group positions start over');
  });

  // smoke_test_topic_consumption.rs: test_topic_consume_insert_events, _update_events, _delete_events,
  // _mixed_operations (payload fields, op, _deleted), via HTTP as its consumer does.
  it('INSERT / UPDATE / DELETE messages: op, payload fields and _deleted as upstream', async () => {
    await server.ok('CREATE NAMESPACE smoke_ops');
    await server.ok('CREATE TABLE smoke_ops.items (id INT PRIMARY KEY, name TEXT, value DOUBLE, status TEXT, counter INT)');
    await server.ok('CREATE TOPIC smoke_ops.items_topic');
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) await server.ok(`ALTER TOPIC smoke_ops.items_topic ADD SOURCE smoke_ops.items ON ${op}`);
    for (const i of [1, 2, 3]) await server.ok(`INSERT INTO smoke_ops.items (id, name, value, status, counter) VALUES (${i}, 'test${i}', ${i * 1.5}, 'pending', 0)`);
    await server.ok("UPDATE smoke_ops.items SET status = 'active', counter = 1 WHERE id = 1");
    await server.ok('UPDATE smoke_ops.items SET counter = 2 WHERE id = 1');
    await server.ok('DELETE FROM smoke_ops.items WHERE id = 2');
    const got = await readAtLeast(server, service, 'smoke_ops.items_topic', 'ops', 'earliest', 100, 6);
    const msgs = got.messages.sort((x, y) => x.offset - y.offset);
    assert.deepEqual(msgs.map((m) => [m.offset, m.op, m.key]), [
      [0, 'Insert', '1'], [1, 'Insert', '2'], [2, 'Insert', '3'], [3, 'Update', '1'], [4, 'Update', '1'], [5, 'Delete', '2'],
    ]);
    const p = msgs.map(payloadOf);
    for (const i of [0, 1, 2]) {
      assert.equal(p[i]!.name, `test${i + 1}`);
      assert.equal(p[i]!.value, (i + 1) * 1.5);
      assert.equal(p[i]!._deleted, false);
    }
    assert.deepEqual([p[3]!.status, p[3]!.counter, p[4]!.counter], ['active', 1, 2], 'updates carry the new row');
    assert.deepEqual([p[5]!.id, p[5]!.name, p[5]!._deleted], [2, 'test2', true], 'a delete carries the deleted row');
    assert.ok(p.every((x) => x._table === 'smoke_ops.items' && /^\d+$/.test(String(x._seq))));
    const acked = await http(server, 'ack', { topic_id: 'smoke_ops.items_topic', group_id: 'ops', partition_id: 0, upto_offset: 2 }, service);
    assert.deepEqual(acked.json, { success: true, acknowledged_offset: 2 });
  });

  // smoke_test_topic_consumption.rs: test_topic_consume_offset_persistence, test_topic_consume_from_earliest,
  // test_topic_consume_from_latest (a consumer commits, a new consumer of the group sees only newer messages).
  it('HTTP consumer offsets persist across consumers; earliest sees all, latest only new', async () => {
    const { topic, table } = await fixture('smoke_offsets');
    await insertMany(table, [1, 2], 'batch1');
    const c1 = await readAtLeast(server, service, topic, 'persist', 'earliest', 20, 2);
    assert.equal(c1.messages.length, 2);
    await http(server, 'ack', { topic_id: topic, group_id: 'persist', upto_offset: Math.max(...c1.messages.map((m) => m.offset)) }, service);
    await insertMany(table, [3, 4], 'batch2');
    const c2 = await readAtLeast(server, service, topic, 'persist', 'earliest', 20, 2);
    assert.deepEqual(c2.messages.map((m) => payloadOf(m).id), [3, 4], 'only batch 2');
    const earliest = await readAtLeast(server, service, topic, 'from-earliest', 'earliest', 20, 4);
    assert.deepEqual(earliest.messages.map((m) => m.offset), [0, 1, 2, 3]);
    const warm = await consumeHttp(server, { topic_id: topic, group_id: 'from-latest', start: 'latest', timeout_seconds: 1 }, service);
    assert.equal(warm.messages.length, 0);
    await insertMany(table, [5, 6], 'new');
    const latest = await readAtLeast(server, service, topic, 'from-latest', 'latest', 20, 2);
    assert.deepEqual(latest.messages.map((m) => payloadOf(m).payload), ['new_5', 'new_6']);
  });

  // smoke_test_topic_consumption.rs: test_topic_http_consume_preserves_impersonated_user_and_payloads,
  // test_topic_http_consume_direct_multi_user_publishers_no_missing_changes.
  it('USER tables: messages carry the impersonated writer, not the service account; concurrent writers lose nothing', async () => {
    await server.ok('CREATE NAMESPACE smoke_topic_actor');
    await server.ok('CREATE USER TABLE smoke_topic_actor.messages (id INT PRIMARY KEY, body TEXT, status TEXT, version INT)');
    await server.createUser('topic_alice', 'user');
    await server.createUser('topic_bob', 'user');
    const userId = async (name: string): Promise<string> => String((await server.rows(`SELECT user_id FROM system.users WHERE username = '${name}'`))[0]!.user_id);
    const alice = await userId('topic_alice');
    const bob = await userId('topic_bob');
    await server.ok('CREATE TOPIC smoke_topic_actor.cdc_topic');
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) await server.ok(`ALTER TOPIC smoke_topic_actor.cdc_topic ADD SOURCE smoke_topic_actor.messages ON ${op}`);
    const t = 'smoke_topic_actor.messages';
    await server.ok(`EXECUTE AS USER '${alice}' (INSERT INTO ${t} (id, body, status, version) VALUES (1, 'alice message v1', 'draft', 1))`, { auth: service });
    await server.ok(`EXECUTE AS USER '${alice}' (UPDATE ${t} SET body = 'alice message v2', status = 'sent', version = 2 WHERE id = 1)`, { auth: service });
    await server.ok(`EXECUTE AS USER '${bob}' (INSERT INTO ${t} (id, body, status, version) VALUES (2, 'bob message v1', 'queued', 1))`, { auth: service });
    await server.ok(`EXECUTE AS USER '${bob}' (DELETE FROM ${t} WHERE id = 2)`, { auth: service });
    const got = await readAtLeast(server, service, 'smoke_topic_actor.cdc_topic', 'actor', 'earliest', 100, 4);
    const msgs = got.messages.sort((x, y) => x.offset - y.offset);
    assert.deepEqual(msgs.map((m) => [m.offset, m.partition_id, m.user, m.op]), [
      [0, 0, alice, 'Insert'], [1, 0, alice, 'Update'], [2, 0, bob, 'Insert'], [3, 0, bob, 'Delete'],
    ]);
    assert.deepEqual(msgs.map((m) => { const p = payloadOf(m); return [p.id, p.body, p.status, p.version, p._deleted]; }), [
      [1, 'alice message v1', 'draft', 1, false], [1, 'alice message v2', 'sent', 2, false],
      [2, 'bob message v1', 'queued', 1, false], [2, 'bob message v1', 'queued', 1, true],
    ]);
    // SQL CONSUME shows the same writer in user_id.
    const sqlRows = await server.rows('CONSUME FROM smoke_topic_actor.cdc_topic FROM EARLIEST');
    assert.deepEqual(sqlRows.map((r) => r.user_id), [alice, alice, bob, bob]);

    // Three users write concurrently (each its own partition of the USER table): every change is published once.
    const writers = ['topic_user_a', 'topic_user_b', 'topic_user_c'];
    const creds: Auth[] = [];
    for (const w of writers) creds.push(await server.createUser(w, 'user'));
    await Promise.all(creds.map(async (auth, w) => {
      for (let i = 0; i < 15; i++) {
        await server.ok(`INSERT INTO ${t} (id, body, status, version) VALUES (${100 + i}, 'w${w}-${i}', 'new', 1)`, { auth });
        if (i % 5 === 4) await server.ok(`UPDATE ${t} SET version = 2 WHERE id = ${100 + i}`, { auth });
      }
    }));
    const all = await server.rows('CONSUME FROM smoke_topic_actor.cdc_topic FROM 4 LIMIT 1000');
    assert.deepEqual(offsets(all), range(4, 4 + 3 * 18 - 1), 'gap-free');
    for (const w of writers) {
      const mine = all.filter((r) => r.user_id === w);
      assert.equal(mine.filter((r) => r.op === 'insert').length, 15, `${w} inserts`);
      assert.equal(mine.filter((r) => r.op === 'update').length, 3, `${w} updates`);
    }
  });

  // smoke_test_topic_consumption.rs: test_topic_sql_consume_docs_getting_started_flow (without its FILE
  // column: there is no FILE type here). Generated ULID key and NOW() default in the payload.
  it('docs getting-started flow: a USER table with generated id, SQL CONSUME FROM EARLIEST LIMIT 1', async () => {
    await server.ok('CREATE NAMESPACE demo');
    await server.ok('CREATE USER TABLE demo.messages (id TEXT PRIMARY KEY DEFAULT ULID(), author TEXT NOT NULL, msg TEXT NOT NULL, created TIMESTAMP NOT NULL DEFAULT NOW())');
    await server.ok('CREATE TOPIC demo.message_events PARTITIONS 1');
    await server.ok("ALTER TOPIC demo.message_events ADD SOURCE demo.messages ON INSERT WITH (payload = 'full')");
    await server.ok("INSERT INTO demo.messages (author, msg) VALUES ('user', 'Write a short summary of this support ticket.')");
    const rows = await server.rows('CONSUME FROM demo.message_events FROM EARLIEST LIMIT 1');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.topic_id, 'demo.message_events');
    assert.equal(rows[0]!.op, 'insert');
    const p = sqlPayload(rows[0]!);
    assert.equal(p.author, 'user');
    assert.equal(p.msg, 'Write a short summary of this support ticket.');
    assert.equal(typeof p.id, 'string');
    assert.equal(rows[0]!.key, p.id);
    assert.ok(p.created !== undefined && p.created !== null);
  });

  // Multi-source topics (one topic fed by several tables; _table names the source, as upstream's payload.rs).
  it('a topic with several sources interleaves them in commit order; _table and user_id tell them apart', async () => {
    await server.ok('CREATE NAMESPACE ms');
    await server.ok('CREATE SHARED TABLE ms.orders (id INT PRIMARY KEY, total INT)');
    await server.ok('CREATE USER TABLE ms.notes (id INT PRIMARY KEY, body TEXT)');
    await server.ok('CREATE TOPIC ms.all');
    await server.ok('ALTER TOPIC ms.all ADD SOURCE ms.orders ON INSERT');
    await server.ok('ALTER TOPIC ms.all ADD SOURCE ms.notes ON INSERT');
    await server.ok("ALTER TOPIC ms.all ADD SOURCE ms.notes ON DELETE WITH (payload = 'key')");
    await server.ok('INSERT INTO ms.orders VALUES (1, 10)');
    await server.ok("INSERT INTO ms.notes VALUES (1, 'n1')", { auth: user });
    await server.ok('INSERT INTO ms.orders VALUES (2, 20)');
    await server.ok('DELETE FROM ms.notes WHERE id = 1', { auth: user });
    const rows = await server.rows("CONSUME FROM ms.all GROUP 'multi' FROM EARLIEST");
    assert.deepEqual(rows.map((r) => { const p = sqlPayload(r); return [Number(r.offset), r.op, p._table ?? null, r.user_id, p.id]; }), [
      [0, 'insert', 'ms.orders', null, 1], [1, 'insert', 'ms.notes', 'up_user', 1], [2, 'insert', 'ms.orders', null, 2], [3, 'delete', null, 'up_user', 1],
    ]);
    // payload = 'key' is the key only (documented difference: upstream sends the whole row).
    assert.deepEqual(sqlPayload(rows[3]!), { id: 1 });
  });

  // Multiple partitions (CREATE TOPIC ... PARTITIONS n; HTTP partition_id; ACK ... PARTITION n).
  it('PARTITIONS 3: keys hash to a stable partition, offsets per partition, SQL reads all, HTTP and ACK per partition', async () => {
    await server.ok('CREATE NAMESPACE mp');
    await server.ok('CREATE TABLE mp.src (id INT PRIMARY KEY, v INT)');
    await server.ok('CREATE TOPIC mp.t PARTITIONS 3');
    await server.ok('ALTER TOPIC mp.t ADD SOURCE mp.src ON INSERT');
    await server.ok('ALTER TOPIC mp.t ADD SOURCE mp.src ON UPDATE');
    await server.ok(`INSERT INTO mp.src VALUES ${range(1, 30).map((i) => `(${i}, 0)`).join(', ')}`);
    await server.ok('UPDATE mp.src SET v = 1 WHERE id <= 5');
    const rows = await server.rows('CONSUME FROM mp.t FROM EARLIEST LIMIT 1000');
    assert.equal(rows.length, 35);
    const byPartition = new Map<number, number[]>();
    for (const r of rows) byPartition.set(Number(r.partition_id), [...(byPartition.get(Number(r.partition_id)) ?? []), Number(r.offset)]);
    assert.deepEqual([...byPartition.keys()].sort(), [0, 1, 2], 'all partitions used');
    for (const [, list] of byPartition) assert.deepEqual(list, range(0, list.length - 1), 'gap-free per partition');
    // An update lands in the partition of its key's insert.
    const partitionOfKey = new Map<string, number>();
    for (const r of rows.filter((x) => x.op === 'insert')) partitionOfKey.set(String(r.key), Number(r.partition_id));
    for (const r of rows.filter((x) => x.op === 'update')) assert.equal(Number(r.partition_id), partitionOfKey.get(String(r.key)));
    // HTTP reads one partition.
    for (let p = 0; p < 3; p++) {
      const got = await consumeHttp(server, { topic_id: 'mp.t', group_id: 'http-mp', start: 'Earliest', partition_id: p, limit: 100 }, service);
      assert.deepEqual(got.messages.map((m) => m.offset), byPartition.get(p));
      assert.ok(got.messages.every((m) => m.partition_id === p));
    }
    assert.equal((await http(server, 'consume', { topic_id: 'mp.t', group_id: 'x', partition_id: 3 }, service)).status, 400);
    // A grouped SQL CONSUME commits per partition.
    assert.equal((await server.rows("CONSUME FROM mp.t GROUP 'sql-mp' FROM EARLIEST LIMIT 1000")).length, 35);
    const committed = await server.rows("SELECT partition_id, last_acked_offset FROM system.topic_offsets WHERE topic_id = 'mp.t' AND group_id = 'sql-mp' ORDER BY partition_id");
    assert.deepEqual(committed.map((r) => [Number(r.partition_id), Number(r.last_acked_offset)]), [0, 1, 2].map((p) => [p, byPartition.get(p)!.length - 1]));
    const [acked] = await server.rows("ACK mp.t GROUP 'ack-mp' PARTITION 1 UPTO OFFSET 2");
    assert.deepEqual(acked, { topic: 'mp.t', group_id: 'ack-mp', partition: 1, committed_offset: '2' });
    const again = await consumeHttp(server, { topic_id: 'mp.t', group_id: 'ack-mp', partition_id: 1, limit: 1 }, service);
    assert.deepEqual(again.messages.map((m) => m.offset), [3]);
    assertError(await server.sql("ACK mp.t GROUP 'g' PARTITION 3 UPTO OFFSET 0"), 400, 'SQL_EXECUTION_ERROR', /no partition 3/);
  });

  // Retention (create.rs defaults; our WITH options): a group behind retention continues at the oldest kept message.
  it('retention: aged messages go, offsets continue, a group continues at the oldest kept message', async () => {
    await server.ok('CREATE NAMESPACE ret');
    await server.ok('CREATE TABLE ret.src (id INT PRIMARY KEY)');
    await server.ok('CREATE TOPIC ret.t WITH (retention_seconds = 1)');
    await server.ok('ALTER TOPIC ret.t ADD SOURCE ret.src ON INSERT');
    await server.ok('INSERT INTO ret.src VALUES (1), (2), (3)');
    assert.deepEqual(offsets(await server.rows("CONSUME FROM ret.t GROUP 'slow' FROM EARLIEST LIMIT 1")), [0]);
    await eventually('aged out', async () => (await server.rows('CONSUME FROM ret.t FROM EARLIEST')).length === 0, 30_000, 200);
    await server.ok('INSERT INTO ret.src VALUES (4)');
    assert.deepEqual(offsets(await server.rows("CONSUME FROM ret.t GROUP 'slow' LIMIT 10")), [3]);
  });

  // WHERE on a source (add_source.rs stores filter_expr; upstream does not apply it: documented difference).
  it('a source WHERE condition is applied (upstream stores it only)', async () => {
    await server.ok('CREATE NAMESPACE wf');
    await server.ok('CREATE TABLE wf.src (id INT PRIMARY KEY, amount INT)');
    await server.ok('CREATE TOPIC wf.t');
    await server.ok('ALTER TOPIC wf.t ADD SOURCE wf.src ON INSERT WHERE amount >= 100');
    await server.ok('INSERT INTO wf.src VALUES (1, 50), (2, 150)');
    const rows = await server.rows('CONSUME FROM wf.t FROM EARLIEST');
    assert.deepEqual(rows.map((r) => r.key), ['2']);
    const [t] = await server.rows("SELECT routes FROM system.topics WHERE topic_id = 'wf.t'");
    assert.equal(JSON.parse(String(t!.routes))[0].filter_expr, 'amount >= 100');
  });
});

// override.rs: KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS, its alias KALAMDB_VISIBILITY_TIMEOUT_SECS, and
// [topics] visibility_timeout_secs in the config file; smoke_test_topic_high_load.rs:
// test_topic_ack_failure_recovery_no_message_loss_with_latency (unacknowledged claims come back, offset 0 included).
describe('topics: the visibility timeout setting and redelivery', () => {
  const redelivers = async (server: TestServer): Promise<void> => {
    await server.ok('CREATE NAMESPACE vis');
    await server.ok('CREATE TABLE vis.src (id INT PRIMARY KEY)');
    await server.ok('CREATE TOPIC vis.t');
    await server.ok('ALTER TOPIC vis.t ADD SOURCE vis.src ON INSERT');
    await server.ok('INSERT INTO vis.src VALUES (1), (2), (3), (4)');
    const root: Auth = { user: 'root', password: ROOT_PASSWORD };
    const poll = async (): Promise<number[]> =>
      (await consumeHttp(server, { topic_id: 'vis.t', group_id: 'crashy', start: 'Earliest', limit: 2 }, root)).messages.map((m) => m.offset);
    // A member takes 0-1 and "crashes" (no ACK); another takes 2-3 and acknowledges nothing either.
    assert.deepEqual(await poll(), [0, 1]);
    assert.deepEqual(await poll(), [2, 3]);
    assert.deepEqual(await poll(), []);
    // After the timeout (2 s, so a loaded machine stays inside it between the polls above; the default is 60 s) the unacknowledged messages are delivered again from 0.
    const started = Date.now();
    const again = await eventually('redelivery', async () => { const o = await poll(); return o.length > 0 ? o : null; }, 15_000, 100);
    assert.deepEqual(again, [0, 1]);
    assert.ok(Date.now() - started < 15_000);
    const acked = await http(server, 'ack', { topic_id: 'vis.t', group_id: 'crashy', upto_offset: 1 }, root);
    assert.equal(acked.status, 200);
    // 2-3 were claimed a moment after 0-1, so their claim may still hold for a few milliseconds.
    const rest = await eventually('the rest', async () => { const o = await poll(); return o.length > 0 ? o : null; }, 15_000, 50);
    assert.deepEqual(rest, [2, 3], 'everything after the acknowledged offset, nothing lost');
    await http(server, 'ack', { topic_id: 'vis.t', group_id: 'crashy', upto_offset: 3 }, root);
    await sleep(2_200);
    assert.deepEqual(await poll(), [], 'acknowledged messages never come back');
  };

  it('KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS', async () => {
    const server = await TestServer.start(undefined, { KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS: '2' });
    try { await redelivers(server); } finally { await server.dispose(); }
  });

  it('KALAMDB_VISIBILITY_TIMEOUT_SECS (upstream\'s alias)', async () => {
    const server = await TestServer.start(undefined, { KALAMDB_VISIBILITY_TIMEOUT_SECS: '2' });
    try { await redelivers(server); } finally { await server.dispose(); }
  });

  it('[topics] visibility_timeout_secs in the config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-topics-config-'));
    const path = join(dir, 'config.toml');
    writeFileSync(path, '[topics]\nvisibility_timeout_secs = 2\n');
    const server = await TestServer.start(join(dir, 'data'), {}, ['--config', path]);
    try {
      await redelivers(server);
    } finally {
      await server.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
