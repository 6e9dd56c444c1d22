/**
 * Topics and consumer groups against the real server: CREATE/ALTER/DROP/CLEAR TOPIC, publishing in
 * the same batch as the row writes (transactions all or nothing, kill -9 with exact offsets), WHERE
 * filters, payload modes, CONSUME/ACK in SQL and over HTTP, per-group isolation, LATEST tailing,
 * FROM offset, no overlap within a group, redelivery after the visibility timeout, the role matrix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer, assertError, eventually, type Auth } from './harness.js';

describe('topics', () => {
  let server: TestServer;
  let svc: Auth;
  let alice: Auth;
  let dba: Auth;

  before(async () => {
    // A short visibility timeout for the redelivery test.
    server = await TestServer.start(undefined, { KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS: '1' });
    svc = await server.createUser('tp_service', 'service');
    alice = await server.createUser('tp_alice', 'user');
    dba = await server.createUser('tp_dba', 'dba');
    await server.ok('CREATE NAMESPACE tp');
  });
  after(async () => {
    await server.dispose();
  });

  const consume = async (sql: string, auth: Auth = svc): Promise<Record<string, unknown>[]> => server.rows(sql, { auth });
  const offsets = (rows: Record<string, unknown>[]): number[] => rows.map((r) => Number(r.offset));

  it('CREATE / ALTER TOPIC with upstream messages, system.topics, errors', async () => {
    const [created] = await server.ok('CREATE TOPIC tp.events PARTITIONS 1');
    assert.equal(created!.message, "Created topic 'tp.events' with 1 partition(s)");
    assertError(await server.sql('CREATE TOPIC tp.events'), 400, 'SQL_EXECUTION_ERROR', /Topic 'tp.events' already exists/);
    const missingNs = await server.sql('CREATE TOPIC nons.t');
    assert.equal(missingNs.body.error?.code, 'NOT_FOUND');
    assert.match(missingNs.body.error!.message, /Namespace 'nons' does not exist/);
    await server.ok('CREATE TABLE tp.orders (id INT PRIMARY KEY, status TEXT, amount INT)');
    const [added] = await server.ok('ALTER TOPIC tp.events ADD SOURCE tp.orders ON INSERT');
    assert.equal(added!.message, "Added source tp.orders ON Insert to topic 'tp.events'");
    await server.ok("ALTER TOPIC tp.events ADD SOURCE tp.orders ON UPDATE WITH (payload = 'full')");
    await server.ok('ALTER TOPIC tp.events ADD SOURCE tp.orders ON DELETE');
    const missingTopic = await server.sql('ALTER TOPIC tp.nope ADD SOURCE tp.orders ON INSERT');
    assert.equal(missingTopic.body.error?.code, 'NOT_FOUND');
    assertError(await server.sql('ALTER TOPIC tp.events ADD SOURCE tp.orders ON INSERT'), 400, 'SQL_EXECUTION_ERROR', /^Route for tp.orders ON Insert already exists in topic 'tp.events'$/);
    assertError(await server.sql("ALTER TOPIC tp.events ADD SOURCE tp.orders ON INSERT WITH (payload = 'x')"), 400, 'INVALID_SQL', /Unknown payload/);
    const [topic] = await server.rows("SELECT topic_id, partitions, routes FROM system.topics WHERE topic_id = 'tp.events'");
    assert.equal(topic!.partitions, 1);
    assert.equal(JSON.parse(String(topic!.routes)).length, 3);
  });

  it('publishes INSERT / UPDATE (new row) / DELETE (tombstone) with gap-free offsets', async () => {
    await server.ok("INSERT INTO tp.orders VALUES (1, 'new', 10), (2, 'new', 20)");
    await server.ok("UPDATE tp.orders SET status = 'paid' WHERE id = 1");
    await server.ok('DELETE FROM tp.orders WHERE id = 2');
    const rows = await consume('CONSUME FROM tp.events FROM EARLIEST LIMIT 100');
    assert.deepEqual(offsets(rows), [0, 1, 2, 3]);
    assert.deepEqual(rows.map((r) => r.op), ['insert', 'insert', 'update', 'delete']);
    const { _seq, ...updated } = JSON.parse(String(rows[2]!.payload)) as Record<string, unknown>;
    assert.match(String(_seq), /^\d+$/, 'full payloads carry _seq as upstream');
    assert.deepEqual(updated, { id: 1, status: 'paid', amount: 10, _deleted: false, _table: 'tp.orders' });
    assert.equal(JSON.parse(String(rows[3]!.payload)).id, 2);
    assert.equal(JSON.parse(String(rows[3]!.payload))._deleted, true);
    assert.equal(rows[0]!.key, '1');
    assert.equal(rows[0]!.user_id, null);
    assert.deepEqual(Object.keys(rows[0]!), ['topic_id', 'partition_id', 'offset', 'key', 'payload', 'timestamp_ms', 'user_id', 'op']);
  });

  it('the role matrix: users cannot manage or consume; service consumes; dba manages', async () => {
    assertError(await server.sql('CREATE TOPIC tp.x', { auth: alice }), 403, 'PERMISSION_DENIED');
    assertError(await server.sql('CREATE TOPIC tp.x', { auth: svc }), 403, 'PERMISSION_DENIED');
    assertError(await server.sql('ALTER TOPIC tp.events ADD SOURCE tp.orders ON INSERT', { auth: svc }), 403, 'PERMISSION_DENIED', /ALTER TOPIC requires DBA or System role/);
    assertError(await server.sql('DROP TOPIC tp.events', { auth: svc }), 403, 'PERMISSION_DENIED', /DROP TOPIC requires DBA or System role/);
    assertError(await server.sql('CLEAR TOPIC tp.events', { auth: alice }), 403, 'PERMISSION_DENIED');
    assertError(await server.sql('CONSUME FROM tp.events', { auth: alice }), 403, 'PERMISSION_DENIED', /Only service, dba, or system roles can consume from topics/);
    assertError(await server.sql("ACK tp.events GROUP 'g' UPTO OFFSET 1", { auth: alice }), 403, 'PERMISSION_DENIED');
    await server.ok('CREATE TOPIC tp.x', { auth: dba });
    await server.ok('CONSUME FROM tp.x', { auth: dba });
    const [dropped] = await server.ok('DROP TOPIC tp.x', { auth: dba });
    assert.equal(dropped!.message, "Dropped topic 'tp.x'");
    assert.equal((await server.sql('CONSUME FROM tp.x', { auth: svc })).body.error?.code, 'NOT_FOUND');
  });

  it('a consumer must be able to read every source table: a DBA-level source keeps a service out (SQL, HTTP), a dba reads', async () => {
    await server.ok('CREATE TOPIC tp.guarded');
    await server.ok('CREATE SHARED TABLE tp.open_src (id INT PRIMARY KEY) WITH (ACCESS_LEVEL = \'PUBLIC\')');
    await server.ok('CREATE SHARED TABLE tp.dba_src (id INT PRIMARY KEY, secret TEXT) WITH (ACCESS_LEVEL = \'DBA\')');
    await server.ok('ALTER TOPIC tp.guarded ADD SOURCE tp.open_src ON INSERT');
    await server.ok('INSERT INTO tp.open_src VALUES (1)');
    assert.equal((await consume('CONSUME FROM tp.guarded FROM EARLIEST')).length, 1, 'a PUBLIC source: the service consumes');
    await server.ok('ALTER TOPIC tp.guarded ADD SOURCE tp.dba_src ON INSERT');
    await server.ok("INSERT INTO tp.dba_src VALUES (1, 'DBA-ONLY')");
    assertError(await server.sql('CONSUME FROM tp.guarded FROM EARLIEST', { auth: svc }), 403, 'PERMISSION_DENIED', /tp\.dba_src \(DBA\) is not readable by role service/);
    const http = await server.post('/v1/api/topics/consume', { topic_id: 'tp.guarded', group_id: 'g', start: 'Earliest' },
      { authorization: `Basic ${Buffer.from('tp_service:tp_service-password-1').toString('base64')}` });
    assert.equal(http.status, 403);
    assert.doesNotMatch(http.text, /DBA-ONLY/);
    const rows = await consume('CONSUME FROM tp.guarded FROM EARLIEST', dba);
    assert.ok(rows.some((r) => String(r.payload).includes('DBA-ONLY')), 'a dba reads the DBA-level source');
    // Nor may it move a group's position.
    assertError(await server.sql("ACK tp.guarded GROUP 'g' UPTO OFFSET 0", { auth: svc }), 403, 'PERMISSION_DENIED');
    // A dropped source's messages stay in the topic: dba and system only.
    await server.ok('DROP TABLE tp.dba_src');
    assertError(await server.sql('CONSUME FROM tp.guarded FROM EARLIEST', { auth: svc }), 403, 'PERMISSION_DENIED', /dropped table tp\.dba_src/);
    assert.ok((await consume('CONSUME FROM tp.guarded FROM EARLIEST', dba)).some((r) => String(r.payload).includes('DBA-ONLY')));
  });

  it('groups: per-group positions, SQL CONSUME commits, no overlap within a group, HTTP redelivery after the visibility timeout', async () => {
    await server.ok('CREATE TOPIC tp.g');
    await server.ok('CREATE SHARED TABLE tp.gsrc (id INT PRIMARY KEY, v INT)');
    await server.ok('ALTER TOPIC tp.g ADD SOURCE tp.gsrc ON INSERT');
    await server.ok(`INSERT INTO tp.gsrc VALUES ${Array.from({ length: 10 }, (_, i) => `(${i}, ${i})`).join(', ')}`);
    // Two members of one group: disjoint ranges (a grouped SQL CONSUME commits what it returns, as upstream).
    const a = offsets(await consume("CONSUME FROM tp.g GROUP 'workers' FROM EARLIEST LIMIT 4"));
    const b = offsets(await consume("CONSUME FROM tp.g GROUP 'workers' FROM EARLIEST LIMIT 4"));
    assert.deepEqual(a, [0, 1, 2, 3]);
    assert.deepEqual(b, [4, 5, 6, 7]);
    // Another group starts on its own.
    assert.deepEqual(offsets(await consume("CONSUME FROM tp.g GROUP 'audit' FROM EARLIEST LIMIT 3")), [0, 1, 2]);
    const [acked] = await server.rows("ACK tp.g GROUP 'workers' UPTO OFFSET 7", { auth: svc });
    assert.deepEqual(acked, { topic: 'tp.g', group_id: 'workers', partition: 0, committed_offset: '7' });
    assert.deepEqual(offsets(await consume("CONSUME FROM tp.g GROUP 'workers' LIMIT 100")), [8, 9]);
    // Committed by the CONSUME itself: no redelivery, even after the visibility timeout.
    await new Promise((r) => setTimeout(r, 1_200));
    assert.deepEqual(offsets(await consume("CONSUME FROM tp.g GROUP 'workers' LIMIT 100")), []);
    // Over HTTP nothing is committed until an ACK: after the visibility timeout (1 s) the claim comes again.
    const auth = { authorization: `Basic ${Buffer.from('tp_service:tp_service-password-1').toString('base64')}` };
    const httpOffsets = async (): Promise<number[]> => {
      const res = await server.post('/v1/api/topics/consume', { topic_id: 'tp.g', group_id: 'http-workers', start: 'Earliest', limit: 100 }, auth);
      assert.equal(res.status, 200, res.text);
      return (res.json as { messages: { offset: number }[] }).messages.map((m) => m.offset);
    };
    assert.deepEqual(await httpOffsets(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await httpOffsets(), []);
    await eventually('redelivery', async () => {
      const again = await httpOffsets();
      return again.length > 0 ? (assert.deepEqual(again, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), true) : false;
    }, 20_000, 200);
    const positions = await server.rows("SELECT group_id, last_acked_offset FROM system.topic_offsets WHERE topic_id = 'tp.g' ORDER BY group_id");
    assert.deepEqual(positions.map((p) => [p.group_id, Number(p.last_acked_offset)]), [['audit', 2], ['workers', 9]]);
  });

  it('a member that dies loses nothing: another member\'s later ACK does not commit past its range', async () => {
    await server.ok('CREATE TOPIC tp.m');
    await server.ok('CREATE SHARED TABLE tp.msrc (id INT PRIMARY KEY)');
    await server.ok('ALTER TOPIC tp.m ADD SOURCE tp.msrc ON INSERT');
    await server.ok(`INSERT INTO tp.msrc VALUES ${Array.from({ length: 20 }, (_, i) => `(${i})`).join(', ')}`);
    const auth = { authorization: `Basic ${Buffer.from('tp_service:tp_service-password-1').toString('base64')}` };
    const take = async (member: string, limit: number): Promise<number[]> => {
      const res = await server.post('/v1/api/topics/consume', { topic_id: 'tp.m', group_id: 'w', start: 'Earliest', limit, member_id: member }, auth);
      assert.equal(res.status, 200, res.text);
      return (res.json as { messages: { offset: number }[] }).messages.map((m) => m.offset);
    };
    const ack = async (member: string, upto: number): Promise<void> => {
      const res = await server.post('/v1/api/topics/ack', { topic_id: 'tp.m', group_id: 'w', upto_offset: upto, member_id: member }, auth);
      assert.deepEqual(res.json, { success: true, acknowledged_offset: upto });
    };
    const committed = async (): Promise<number[]> => (await server.rows("SELECT last_acked_offset FROM system.topic_offsets WHERE topic_id = 'tp.m'")).map((r) => Number(r.last_acked_offset));
    assert.deepEqual(await take('a', 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await take('b', 10), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    // b finishes; a dies holding 0..9. Upstream would commit 19 here and 0..9 would never be processed.
    await ack('b', 19);
    assert.deepEqual(await committed(), []);
    await eventually('a\'s range redelivered to b', async () => {
      const again = await take('b', 100);
      return again.length > 0 ? (assert.deepEqual(again, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), true) : false;
    }, 20_000, 200);
    await ack('b', 9);
    assert.deepEqual(await committed(), [19]);
  });

  it('FROM LATEST tails new messages only; FROM n starts at an offset', async () => {
    await server.ok('CREATE TOPIC tp.tail');
    await server.ok('CREATE TABLE tp.tsrc (id INT PRIMARY KEY)');
    await server.ok('ALTER TOPIC tp.tail ADD SOURCE tp.tsrc ON INSERT');
    await server.ok('INSERT INTO tp.tsrc VALUES (1), (2), (3)');
    assert.deepEqual(offsets(await consume("CONSUME FROM tp.tail GROUP 'tailer' FROM LATEST")), []);
    await server.ok('INSERT INTO tp.tsrc VALUES (4)');
    assert.deepEqual(offsets(await consume("CONSUME FROM tp.tail GROUP 'tailer' FROM LATEST")), [3]);
    assert.deepEqual(offsets(await consume('CONSUME FROM tp.tail FROM 2')), [2, 3]);
    assert.deepEqual(offsets(await consume("CONSUME FROM tp.tail GROUP 'from1' FROM 1 LIMIT 1")), [1]);
  });

  it('the WHERE filter of a route is applied; payload key / full / diff', async () => {
    await server.ok('CREATE TOPIC tp.big');
    await server.ok('CREATE TABLE tp.pay (id INT PRIMARY KEY, status TEXT, amount INT)');
    await server.ok("ALTER TOPIC tp.big ADD SOURCE tp.pay ON INSERT WHERE amount >= 100 AND status <> 'test' WITH (payload = 'key')");
    await server.ok("ALTER TOPIC tp.big ADD SOURCE tp.pay ON UPDATE WITH (payload = 'diff')");
    await server.ok("INSERT INTO tp.pay VALUES (1, 'new', 50), (2, 'new', 150), (3, 'test', 500), (4, 'new', 100)");
    await server.ok("UPDATE tp.pay SET amount = 175 WHERE id = 2");
    const rows = await consume('CONSUME FROM tp.big FROM EARLIEST');
    const withoutSeq = (text: unknown): Record<string, unknown> => {
      const { _seq, ...rest } = JSON.parse(String(text)) as Record<string, unknown>;
      return rest;
    };
    assert.deepEqual(rows.map((r) => [r.op, withoutSeq(r.payload)]), [
      ['insert', { id: 2 }],
      ['insert', { id: 4 }],
      ['update', { id: 2, amount: 175, old_values: { amount: 150 }, _deleted: false, _table: 'tp.pay' }],
    ]);
    assertError(await server.sql('ALTER TOPIC tp.big ADD SOURCE tp.pay ON DELETE WHERE nosuch = 1'), 400, 'INVALID_SQL');
    assertError(await server.sql('ALTER TOPIC tp.big ADD SOURCE tp.pay ON DELETE WHERE status = CURRENT_USER'), 400, 'INVALID_SQL', /CURRENT_USER\(\) cannot be used here/);
  });

  it('USER-table messages carry the writer; a transaction publishes all or nothing', async () => {
    await server.ok('CREATE TOPIC tp.tx');
    await server.ok('CREATE USER TABLE tp.notes (id INT PRIMARY KEY, body TEXT)');
    await server.ok('ALTER TOPIC tp.tx ADD SOURCE tp.notes ON INSERT');
    await server.ok("INSERT INTO tp.notes VALUES (1, 'a')", { auth: alice });
    const failed = await server.sql("BEGIN; INSERT INTO tp.notes VALUES (2, 'b'); INSERT INTO tp.notes VALUES (1, 'dup'); COMMIT", { auth: alice });
    assert.equal(failed.body.status, 'error');
    await server.ok("BEGIN; INSERT INTO tp.notes VALUES (3, 'c'); INSERT INTO tp.notes VALUES (4, 'd'); COMMIT", { auth: alice });
    await server.ok("BEGIN; INSERT INTO tp.notes VALUES (5, 'e'); ROLLBACK", { auth: alice });
    const rows = await consume('CONSUME FROM tp.tx FROM EARLIEST');
    assert.deepEqual(rows.map((r) => [Number(r.offset), r.key, r.user_id]), [[0, '1', 'tp_alice'], [1, '3', 'tp_alice'], [2, '4', 'tp_alice']]);
  });

  it('CLEAR TOPIC removes messages, offsets keep growing', async () => {
    await server.ok('CREATE TOPIC tp.clr');
    await server.ok('CREATE TABLE tp.csrc (id INT PRIMARY KEY)');
    await server.ok('ALTER TOPIC tp.clr ADD SOURCE tp.csrc ON INSERT');
    await server.ok('INSERT INTO tp.csrc VALUES (1), (2)');
    const [cleared] = await server.ok('CLEAR TOPIC tp.clr');
    assert.equal(cleared!.message, "Cleared topic 'tp.clr'");
    assert.deepEqual(offsets(await consume('CONSUME FROM tp.clr FROM EARLIEST')), []);
    await server.ok('INSERT INTO tp.csrc VALUES (3)');
    assert.deepEqual(offsets(await consume('CONSUME FROM tp.clr FROM EARLIEST')), [2]);
  });

  it('DROP NAMESPACE refuses a namespace holding topics; CASCADE drops them', async () => {
    await server.ok('CREATE NAMESPACE tpdrop');
    await server.ok('CREATE TOPIC tpdrop.t');
    assertError(await server.sql('DROP NAMESPACE tpdrop'), 400, 'SQL_EXECUTION_ERROR', /still holds topics: tpdrop.t/);
    await server.ok('DROP NAMESPACE tpdrop CASCADE');
    assert.deepEqual(await server.rows("SELECT topic_id FROM system.topics WHERE topic_id = 'tpdrop.t'"), []);
  });

  it('retention by age and by size runs as topic_retention jobs in system.jobs', async () => {
    const [topic] = await server.rows("SELECT retention_seconds, retention_max_bytes FROM system.topics WHERE topic_id = 'tp.events'");
    assert.deepEqual([Number(topic!.retention_seconds), Number(topic!.retention_max_bytes)], [7 * 86_400, 1024 * 1024 * 1024]);
    await server.ok('CREATE TOPIC tp.aged WITH (retention_seconds = 1)');
    await server.ok('CREATE TOPIC tp.sized WITH (retention_max_bytes = 1000)');
    assertError(await server.sql('CREATE TOPIC tp.bad WITH (retention_days = 1)'), 400, 'INVALID_SQL', /Unknown topic option/);
    await server.ok('CREATE TABLE tp.rsrc (id INT PRIMARY KEY, body TEXT)');
    await server.ok('ALTER TOPIC tp.aged ADD SOURCE tp.rsrc ON INSERT');
    await server.ok('ALTER TOPIC tp.sized ADD SOURCE tp.rsrc ON INSERT');
    const body = 'x'.repeat(100);
    await server.ok(`INSERT INTO tp.rsrc VALUES ${Array.from({ length: 20 }, (_, i) => `(${i}, '${body}')`).join(', ')}`);
    await eventually('aged messages removed', async () => (await consume('CONSUME FROM tp.aged FROM EARLIEST')).length === 0, 30_000, 200);
    const left = await eventually('sized messages trimmed', async () => {
      const rows = offsets(await consume('CONSUME FROM tp.sized FROM EARLIEST'));
      return rows.length < 20 ? rows : null;
    }, 30_000, 200);
    assert.ok(left.length > 0, 'the newest messages stay');
    assert.deepEqual(left, Array.from({ length: left.length }, (_, i) => 20 - left.length + i), 'the oldest go first');
    // New messages continue the offsets.
    await server.ok(`INSERT INTO tp.rsrc VALUES (100, 'y')`);
    assert.deepEqual(offsets(await consume('CONSUME FROM tp.sized FROM EARLIEST')).slice(-1), [20]);
    const jobs = await server.rows("SELECT job_type, status, namespace_id, table_name FROM system.jobs WHERE job_type = 'topic_retention' AND table_name = 'aged'");
    assert.ok(jobs.length >= 1);
    assert.deepEqual(jobs[0], { job_type: 'topic_retention', status: 'completed', namespace_id: 'tp', table_name: 'aged' });
  });

  it('HTTP consume / ack with upstream shapes and long-poll', async () => {
    await server.ok('CREATE TOPIC tp.http PARTITIONS 2');
    await server.ok('CREATE TABLE tp.hsrc (id INT PRIMARY KEY)');
    await server.ok('ALTER TOPIC tp.http ADD SOURCE tp.hsrc ON INSERT');
    const auth = { authorization: `Basic ${Buffer.from('tp_service:tp_service-password-1').toString('base64')}` };
    const denied = await server.post('/v1/api/topics/consume', { topic_id: 'tp.http', group_id: 'h' },
      { authorization: `Basic ${Buffer.from('tp_alice:tp_alice-password-1').toString('base64')}` });
    assert.equal(denied.status, 403);
    const missing = await server.post('/v1/api/topics/consume', { topic_id: 'tp.nope', group_id: 'h' }, auth);
    assert.equal(missing.status, 404);
    // Long-poll: the request waits until a message is published.
    const polled = server.post('/v1/api/topics/consume', { topic_id: 'tp.http', group_id: 'h', start: 'Earliest', partition_id: 0, timeout_seconds: 20 }, auth);
    await new Promise((r) => setTimeout(r, 300));
    await eventually('a message on partition 0', async () => {
      await server.ok(`INSERT INTO tp.hsrc VALUES (${Math.floor(Math.random() * 1e9)})`);
      const [m] = await server.rows('CONSUME FROM tp.http FROM EARLIEST LIMIT 1', { auth: svc });
      return m !== undefined && m.partition_id === 0;
    }, 20_000, 100);
    const got = await polled;
    assert.equal(got.status, 200, got.text);
    const body = got.json as { messages: Record<string, unknown>[]; next_offset: number; has_more: boolean };
    assert.ok(body.messages.length >= 1, got.text);
    assert.deepEqual(Object.keys(body.messages[0]!).sort(), ['key', 'offset', 'op', 'partition_id', 'payload', 'timestamp_ms', 'topic_id']);
    assert.equal(body.next_offset, Number(body.messages[body.messages.length - 1]!.offset) + 1);
    // As upstream: the payload's bytes in base64, the op capitalized.
    assert.equal(body.messages[0]!.op, 'Insert');
    assert.deepEqual(Object.keys(JSON.parse(Buffer.from(String(body.messages[0]!.payload), 'base64').toString('utf8'))), ['id', '_seq', '_deleted', '_table']);
    const acked = await server.post('/v1/api/topics/ack', { topic_id: 'tp.http', group_id: 'h', partition_id: 0, upto_offset: 0 }, auth);
    assert.deepEqual(acked.json, { success: true, acknowledged_offset: 0 });
  });

  it('a multi-row statement is stored as one chunk: reads start inside chunks, cross them, any LIMIT', async () => {
    await server.ok('CREATE TOPIC tp.chunks');
    await server.ok('CREATE TOPIC tp.chunks2 PARTITIONS 2');
    await server.ok('CREATE TABLE tp.chsrc (id INT PRIMARY KEY, v TEXT)');
    await server.ok('ALTER TOPIC tp.chunks ADD SOURCE tp.chsrc ON INSERT');
    await server.ok('ALTER TOPIC tp.chunks2 ADD SOURCE tp.chsrc ON INSERT');
    const ids: number[] = [];
    const insert = async (from: number, n: number): Promise<void> => {
      const rows = Array.from({ length: n }, (_, i) => from + i);
      ids.push(...rows);
      await server.ok(`INSERT INTO tp.chsrc VALUES ${rows.map((id) => `(${id}, 'v${id}')`).join(', ')}`);
    };
    await insert(0, 250);
    await insert(250, 1);
    await insert(251, 1);
    await insert(252, 100);
    const slice = await consume('CONSUME FROM tp.chunks FROM 37 LIMIT 7');
    assert.deepEqual(offsets(slice), [37, 38, 39, 40, 41, 42, 43]);
    assert.deepEqual(slice.map((m) => Number(m.key)), [37, 38, 39, 40, 41, 42, 43]);
    const { _seq: seq, ...fields } = JSON.parse(String(slice[3]!.payload)) as Record<string, unknown>;
    assert.deepEqual(fields, { id: 40, v: 'v40', _deleted: false, _table: 'tp.chsrc' });
    assert.match(String(seq), /^\d+$/);
    const across = await consume('CONSUME FROM tp.chunks FROM 248 LIMIT 6');
    assert.deepEqual(across.map((m) => Number(m.key)), [248, 249, 250, 251, 252, 253]);
    // A group in batches of 13 (never aligned with the chunks) sees every offset once, in order.
    const seen: number[] = [];
    for (;;) {
      const batch = await consume("CONSUME FROM tp.chunks GROUP 'chunky' FROM EARLIEST LIMIT 13");
      if (batch.length === 0) break;
      seen.push(...offsets(batch));
      await server.ok(`ACK tp.chunks GROUP 'chunky' UPTO OFFSET ${seen[seen.length - 1]}`);
    }
    assert.deepEqual(seen, ids.map((_, i) => i));
    // Two partitions: each statement's messages split into a chunk per partition, offsets gap-free in each.
    const all = await consume('CONSUME FROM tp.chunks2 FROM EARLIEST LIMIT 1000');
    for (const p of [0, 1]) {
      const mine = all.filter((m) => Number(m.partition_id) === p);
      assert.ok(mine.length > 0, `partition ${p} has messages`);
      assert.deepEqual(offsets(mine), mine.map((_, i) => i));
    }
    assert.deepEqual(all.map((m) => Number(m.key)).sort((x, y) => x - y), ids);
  });

  it('kill -9 while publishing: every acknowledged write has exactly one message, offsets gap-free', async () => {
    await server.ok('CLEAR TOPIC tp.clr'); // offsets 0-2 were used: the next one is 3, after the restart too
    await server.ok('CREATE TOPIC tp.crash');
    await server.ok('CREATE TABLE tp.crsrc (id INT PRIMARY KEY, v INT)');
    await server.ok('ALTER TOPIC tp.crash ADD SOURCE tp.crsrc ON INSERT');
    const acknowledged: number[] = [];
    let stop = false;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const id = w * 1_000_000 + i;
        try {
          const res = await server.sql(`INSERT INTO tp.crsrc VALUES (${id}, ${i})`);
          if (res.body.status === 'success') acknowledged.push(id);
        } catch {
          return;
        }
      }
    });
    await eventually('some writes', async () => acknowledged.length >= 50, 30_000);
    await server.kill();
    stop = true;
    await Promise.all(writers);
    await server.launch({ KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS: '1' });
    const ids = (await server.rows('SELECT id FROM tp.crsrc ORDER BY id')).map((r) => Number(r.id));
    for (const id of acknowledged) assert.ok(ids.includes(id), `acknowledged ${id} survived`);
    const messages = await consume(`CONSUME FROM tp.crash FROM EARLIEST LIMIT ${ids.length + 100}`);
    assert.deepEqual(offsets(messages), ids.map((_, i) => i), 'offsets 0..n-1, one per committed row');
    assert.deepEqual(messages.map((m) => Number(m.key)).sort((x, y) => x - y), ids);
    // Publishing continues after the restart at the next offset.
    await server.ok('INSERT INTO tp.crsrc VALUES (-1, 0)');
    const [next] = await consume(`CONSUME FROM tp.crash FROM ${ids.length}`);
    assert.equal(Number(next!.offset), ids.length);
    assert.equal(next!.key, '-1');
    // tp.clr was emptied before the restart: its offsets still do not go back.
    await server.ok('INSERT INTO tp.csrc VALUES (4)');
    assert.deepEqual(offsets(await consume('CONSUME FROM tp.clr FROM EARLIEST')), [3]);
    // Group positions survive the restart.
    const [g] = await server.rows("SELECT last_acked_offset FROM system.topic_offsets WHERE topic_id = 'tp.g' AND group_id = 'workers'");
    assert.equal(Number(g!.last_acked_offset), 9);
  });
});

describe('what one consume may return', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.startWithConfig({ result_bytes_max: 1024 * 1024 });
  });
  after(async () => {
    await server.dispose();
  });

  it('a grouped CONSUME with a huge LIMIT returns what fits and commits exactly that; the next one continues', async () => {
    // An attack review: LIMIT 100000000 overflowed the stack (500), and a result refused for its size
    // had already committed 100,000 offsets the client never received.
    await server.ok('CREATE NAMESPACE cb');
    await server.ok('CREATE TOPIC cb.t');
    await server.ok('CREATE SHARED TABLE cb.src (id INT PRIMARY KEY, body TEXT)');
    await server.ok('ALTER TOPIC cb.t ADD SOURCE cb.src ON INSERT');
    await server.ok(`INSERT INTO cb.src VALUES ${Array.from({ length: 20 }, (_, i) => `(${i}, '${'x'.repeat(50_000)}')`).join(', ')}`);
    const seen: number[] = [];
    for (let round = 0; round < 20 && seen.length < 20; round++) {
      const res = await server.sql("CONSUME FROM cb.t GROUP 'g' FROM EARLIEST LIMIT 100000000");
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      const offsets = res.body.results[0]!.rows!.map((r) => Number(r[2]));
      assert.ok(offsets.length >= 1 && offsets.length <= 6, `a quarter of result_bytes_max holds about 5 messages, got ${offsets.length}`);
      seen.push(...offsets);
      const [state] = await server.rows("SELECT last_acked_offset FROM system.topic_offsets WHERE topic_id = 'cb.t' AND group_id = 'g'");
      assert.equal(Number(state!.last_acked_offset), offsets.at(-1), 'committed what was returned, no more');
    }
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i), 'every message once, in order');
    const http = await server.post('/v1/api/topics/consume', { topic_id: 'cb.t', group_id: 'h', start: 'Earliest', limit: 1_000_000 },
      { authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` });
    assert.equal(http.status, 200);
    const messages = (http.json as { messages: unknown[] }).messages;
    assert.ok(messages.length >= 1 && messages.length <= 6, String(messages.length));
  });
});
