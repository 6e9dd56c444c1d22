/**
 * STREAM tables over HTTP and WebSocket: TTL expiry (reads at once, eviction within a second, one
 * job row per sweep), MAX_BUFFER, EPHEMERAL with and without a subscriber, per-user isolation, live
 * delivery and initial data, refused UPDATE/DELETE/FLUSH/transactions, DROP TABLE, and that events
 * are memory-only (gone after a restart, by design). Throughput is in bench/, not here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer } from './harness.js';
import { LiveClient, eventually, sleep } from './ws-client.js';

describe('STREAM tables', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };
  const clients: LiveClient[] = [];
  const connect = async (auth: { user: string; password: string }): Promise<LiveClient> => {
    const c = await LiveClient.connect(server.url, auth);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE st');
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.dispose();
  });

  it('inserts and reads events with _seq only, newest buffer kept, per user', async () => {
    await server.ok('CREATE STREAM TABLE st.typing (room TEXT, who TEXT) WITH (TTL_SECONDS = 60, MAX_BUFFER = 3)');
    const [ins] = await server.ok("INSERT INTO st.typing VALUES ('r1', 'a1'), ('r1', 'a2'), ('r1', 'a3'), ('r1', 'a4')", { auth: alice });
    assert.equal(ins!.message, 'Inserted 4 row(s)');
    await server.ok("INSERT INTO st.typing VALUES ('r1', 'b1')", { auth: bob });
    const [res] = await server.ok('SELECT * FROM st.typing ORDER BY _seq', { auth: alice });
    assert.deepEqual(res!.schema!.map((f) => f.name), ['room', 'who', '_seq']);
    assert.deepEqual(res!.rows!.map((r) => r[1]), ['a2', 'a3', 'a4'], 'MAX_BUFFER keeps the newest 3');
    assert.ok(res!.rows!.every((r) => /^\d+$/.test(String(r[2]))));
    assert.deepEqual(await server.rows('SELECT who FROM st.typing', { auth: bob }), [{ who: 'b1' }], 'bob sees only his events');
    const tables = await server.rows("SELECT table_type, ttl_seconds, max_buffer, ephemeral FROM system.tables WHERE table_name = 'typing'");
    assert.deepEqual(tables, [{ table_type: 'stream', ttl_seconds: '60', max_buffer: '3', ephemeral: false }]);
  });

  it('hides events past the TTL at once and evicts them within a second, one job row per sweep', async () => {
    await server.ok('CREATE STREAM TABLE st.blink (v INT) WITH (TTL_SECONDS = 1)');
    await server.ok('INSERT INTO st.blink VALUES (1), (2), (3)');
    assert.equal((await server.rows('SELECT v FROM st.blink')).length, 3);
    await sleep(1100);
    assert.deepEqual(await server.rows('SELECT v FROM st.blink'), [], 'expired events are invisible');
    // The job row is written as running, then completed: wait for the sweep to finish.
    const jobs = await eventually('a finished eviction job row', async () => {
      const rows = await server.rows("SELECT job_type, status, rows_processed FROM system.jobs WHERE table_name = 'blink'");
      return rows.length > 0 && rows.every((r) => r.status !== 'running') ? rows : null;
    }, 3000);
    assert.deepEqual(jobs, [{ job_type: 'stream_eviction', status: 'completed', rows_processed: '3' }]);
  });

  it('refuses UPDATE, DELETE, FLUSH and transactions with clear errors', async () => {
    await server.ok('CREATE STREAM TABLE st.ro (v INT) WITH (TTL_SECONDS = 30)');
    for (const [sql, pattern] of [
      ['UPDATE st.ro SET v = 1', /UPDATE is not supported on STREAM table st\.ro/],
      ['DELETE FROM st.ro', /DELETE is not supported on STREAM table st\.ro/],
      ['STORAGE FLUSH TABLE st.ro', /^STORAGE FLUSH TABLE is not supported for STREAM tables$/],
      ['BEGIN; INSERT INTO st.ro VALUES (1); COMMIT', /stream tables are not supported inside explicit transactions/],
    ] as const) {
      const res = await server.sql(sql);
      assert.equal(res.status, 400, sql);
      assert.match(res.body.error!.message, pattern, sql);
    }
    assert.deepEqual(await server.rows('SELECT v FROM st.ro'), [], 'the failed transaction wrote nothing');
  });

  it('delivers events live, with buffered events as initial data, to the owner only', async () => {
    await server.ok('CREATE STREAM TABLE st.chat (room TEXT, body TEXT) WITH (TTL_SECONDS = 60)');
    await server.ok("INSERT INTO st.chat VALUES ('r1', 'before')", { auth: alice });
    const a = await connect(alice);
    const b = await connect(bob);
    const ack = await a.subscribeOk('c', "SELECT body FROM st.chat WHERE room = 'r1'", { batch_size: 10 });
    assert.equal(ack.total_rows, 1);
    const [batch] = await a.loadAll('c');
    assert.deepEqual(batch!.rows!.map((r) => r.body), ['before']);
    await b.subscribeOk('c', "SELECT body FROM st.chat WHERE room = 'r1'");
    const mark = a.mark();
    await server.ok("INSERT INTO st.chat VALUES ('r1', 'hello'), ('r2', 'other room')", { auth: alice });
    const change = await a.waitFor((m) => m.type === 'change' && m.subscription_id === 'c', 5000, mark);
    assert.equal(change.change_type, 'insert');
    assert.deepEqual(change.rows!.map((r) => r.body), ['hello']);
    assert.ok(/^\d+$/.test(String(change.rows![0]!._seq)));
    await sleep(200);
    assert.deepEqual(b.changes('c'), [], "bob hears nothing of alice's events");
  });

  it('EPHEMERAL drops events nobody is subscribed to, and keeps them while someone is', async () => {
    await server.ok('CREATE STREAM TABLE st.presence (who TEXT) WITH (TTL_SECONDS = 60, EPHEMERAL = true)');
    await server.ok("INSERT INTO st.presence VALUES ('nobody listening')", { auth: alice });
    assert.deepEqual(await server.rows('SELECT who FROM st.presence', { auth: alice }), [], 'dropped: no subscriber');
    const c = await connect(alice);
    await c.subscribeOk('p', 'SELECT who FROM st.presence');
    const mark = c.mark();
    await server.ok("INSERT INTO st.presence VALUES ('alice here')", { auth: alice });
    const change = await c.waitFor((m) => m.type === 'change', 5000, mark);
    assert.deepEqual(change.rows!.map((r) => r.who), ['alice here']);
    assert.deepEqual(await server.rows('SELECT who FROM st.presence', { auth: alice }), [{ who: 'alice here' }]);
    // bob's partition has no subscriber: his events are dropped even while alice listens.
    await server.ok("INSERT INTO st.presence VALUES ('bob here')", { auth: bob });
    assert.deepEqual(await server.rows('SELECT who FROM st.presence', { auth: bob }), []);
  });

  it('DROP TABLE frees the events, and events do not survive a restart (memory only)', async () => {
    await server.ok('CREATE STREAM TABLE st.gone (v INT) WITH (TTL_SECONDS = 60)');
    await server.ok('INSERT INTO st.gone VALUES (1)');
    await server.ok('DROP TABLE st.gone');
    await server.ok('CREATE STREAM TABLE st.gone (v INT) WITH (TTL_SECONDS = 60)');
    assert.deepEqual(await server.rows('SELECT v FROM st.gone'), []);
    await server.ok('INSERT INTO st.gone VALUES (2)');
    await server.stop();
    await server.launch();
    assert.deepEqual(await server.rows('SELECT v FROM st.gone'), [], 'stream events are ephemeral by design');
    assert.deepEqual(await server.rows("SELECT table_type FROM system.tables WHERE table_name = 'gone'"), [{ table_type: 'stream' }]);
  });
});
