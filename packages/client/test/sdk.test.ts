/**
 * The SDK against the real server (started from packages/server's test harness): query and params,
 * typed errors, bigint conversion, subscribe handlers, the live row set through inserts, updates and
 * deletes, token refresh with short-lived tokens, and resume after the server is killed (-9) and
 * restarted while writes continue: no change lost, none applied twice. Browser use is not covered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, KalamError, type KalamClient, type Row } from '../src/index.js';
import { configFile, eventually, freePort, ROOT_PASSWORD, TestServer, type Server } from './helpers.js';

describe('@kalamdb/client', () => {
  let server: Server;
  let port: number;
  const clients: KalamClient[] = [];
  const client = (auth: { user: string; password: string }, extra: { bigint?: boolean } = {}): KalamClient => {
    const c = createClient({ url: `http://127.0.0.1:${port}`, auth, ...extra });
    clients.push(c);
    return c;
  };

  before(async () => {
    port = await freePort();
    server = await TestServer.start(undefined, {}, ['--port', String(port), '--config', await tokenConfig()]);
    await server.ok('CREATE NAMESPACE sdk');
    await server.ok('CREATE USER TABLE sdk.msgs (id BIGINT PRIMARY KEY, room TEXT, body TEXT)');
    await server.createUser('alice', 'user', 'alice-password-1');
  });
  after(async () => {
    for (const c of clients) await c.disconnect();
    await server.dispose();
  });

  it('runs queries with params and returns rows as objects; errors are KalamError with code and status', async () => {
    const c = client({ user: 'alice', password: 'alice-password-1' });
    const res = await c.query("INSERT INTO sdk.msgs VALUES ($1, $2, $3), (9007199254740993, 'r2', 'big')", [1, 'r1', 'hello']);
    assert.equal(res.results[0]!.message, 'Inserted 2 row(s)');
    assert.deepEqual(await c.queryRows('SELECT id, body FROM sdk.msgs WHERE room = $1', ['r1']), [{ id: '1', body: 'hello' }]);
    const big = client({ user: 'alice', password: 'alice-password-1' }, { bigint: true });
    assert.deepEqual(await big.queryRows("SELECT id FROM sdk.msgs WHERE room = 'r2'"), [{ id: 9007199254740993n }]);
    await assert.rejects(c.query('SELEC 1'), (e: unknown) => e instanceof KalamError && e.code === 'INVALID_SQL' && e.status === 400);
    await assert.rejects(c.query('CREATE NAMESPACE nope'), (e: unknown) => e instanceof KalamError && e.code === 'PERMISSION_DENIED' && e.status === 403);
    const wrong = client({ user: 'alice', password: 'wrong-password' });
    await assert.rejects(wrong.query('SELECT 1'), (e: unknown) => e instanceof KalamError && e.code === 'INVALID_CREDENTIALS' && e.status === 401);
  });

  it('topics: consume and ack a consumer group over HTTP; users are refused', async () => {
    await server.ok('CREATE TOPIC sdk.events');
    await server.ok('CREATE SHARED TABLE sdk.orders (id BIGINT PRIMARY KEY, v INT)');
    await server.ok('ALTER TOPIC sdk.events ADD SOURCE sdk.orders ON INSERT');
    await server.ok('INSERT INTO sdk.orders VALUES (1, 10), (2, 20)');
    const root = client({ user: 'root', password: ROOT_PASSWORD });
    const first = await root.topics.consume({ topic: 'sdk.events', group: 'g1', start: 'earliest', limit: 1 });
    assert.deepEqual(first.messages.map((m) => [m.offset, m.key, m.op, m.payload]), [[0, '1', 'Insert', { id: '1', v: 10, _seq: (first.messages[0]!.payload as Record<string, unknown>)._seq, _deleted: false, _table: 'sdk.orders' }]]);
    assert.equal(first.next_offset, 1);
    assert.equal(first.has_more, true);
    assert.deepEqual(await root.topics.ack({ topic: 'sdk.events', group: 'g1', uptoOffset: 0 }), { success: true, acknowledged_offset: 0 });
    const second = await root.topics.consume({ topic: 'sdk.events', group: 'g1', timeoutSeconds: 5 });
    assert.deepEqual(second.messages.map((m) => m.offset), [1]);
    const alice = client({ user: 'alice', password: 'alice-password-1' });
    await assert.rejects(alice.topics.consume({ topic: 'sdk.events', group: 'g1' }), (e: unknown) => e instanceof KalamError && e.code === 'PERMISSION_DENIED' && e.status === 403);
    await assert.rejects(root.topics.consume({ topic: 'sdk.nope', group: 'g1' }), (e: unknown) => e instanceof KalamError && e.code === 'NOT_FOUND' && e.status === 404);
  });

  it('keeps tokens fresh: short-lived access tokens are refreshed transparently', async () => {
    const c = client({ user: 'alice', password: 'alice-password-1' });
    await c.query('SELECT 1');
    await new Promise((r) => setTimeout(r, 2500)); // the access token (2 s) has expired
    const res = await c.query('SELECT 2 AS two');
    assert.deepEqual(res.results[0]!.rows, [['2']]);
  });

  it('subscribe: handlers for insert, update, delete and flush, in order', async () => {
    const c = client({ user: 'alice', password: 'alice-password-1' });
    const events: string[] = [];
    const sub = await c.subscribe<Row>("SELECT id, body FROM sdk.msgs WHERE room = 'h'", {
      onInsert: (rows) => events.push(`insert:${rows.map((r) => r.body).join()}`),
      onUpdate: (rows, old) => events.push(`update:${old[0]!.body}->${rows[0]!.body}`),
      onDelete: (old) => events.push(`delete:${old[0]!.id}`),
      onFlush: (f) => events.push(`flush:${f.table}`),
    });
    await c.query("INSERT INTO sdk.msgs VALUES (100, 'h', 'a')");
    await c.query("UPDATE sdk.msgs SET body = 'b' WHERE id = 100");
    await c.query('DELETE FROM sdk.msgs WHERE id = 100');
    await server.ok('STORAGE FLUSH TABLE sdk.msgs');
    await eventually('four events', () => events.length >= 4);
    assert.deepEqual(events, ['insert:a', 'update:a->b', 'delete:100', 'flush:sdk.msgs']);
    assert.ok(sub.lastSeq !== null && /^\d+$/.test(sub.lastSeq));
    await sub.unsubscribe();
  });

  it('live keeps the full row set current by primary key', async () => {
    const c = client({ user: 'alice', password: 'alice-password-1' });
    await c.query("INSERT INTO sdk.msgs VALUES (200, 'lv', 'one'), (201, 'lv', 'two')");
    let latest: Row[] = [];
    const stop = await c.live<Row>("SELECT id, body FROM sdk.msgs WHERE room = 'lv'", (rows) => { latest = rows; });
    await eventually('initial rows', () => latest.length === 2);
    await c.query("INSERT INTO sdk.msgs VALUES (202, 'lv', 'three')");
    await c.query("UPDATE sdk.msgs SET body = 'TWO' WHERE id = 201");
    await c.query('DELETE FROM sdk.msgs WHERE id = 200');
    await c.query("UPDATE sdk.msgs SET room = 'elsewhere' WHERE id = 202");
    await eventually('final rows', () => JSON.stringify(latest.map((r) => [r.id, r.body])) === JSON.stringify([['201', 'TWO']]));
    await stop();
  });

  it('subscribe across ALTER TABLE: onSchemaChanged with the new schema and the changes, later rows in it; a subscription naming a dropped column ends with SCHEMA_CHANGED', async () => {
    await server.ok('CREATE USER TABLE sdk.sch (id BIGINT PRIMARY KEY, a TEXT, gone TEXT)');
    const c = client({ user: 'alice', password: 'alice-password-1' }, { bigint: true });
    const events: string[] = [];
    const errors: KalamError[] = [];
    await c.subscribe<Row>('SELECT * FROM sdk.sch', {
      onInsert: (rows) => events.push(`insert:${JSON.stringify(rows[0], (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`),
      onSchemaChanged: (schema, changes) => events.push(`schema:${schema.map((f) => f.name).join()}:${JSON.stringify(changes)}`),
    });
    await c.subscribe<Row>('SELECT id, gone FROM sdk.sch', { onError: (e) => errors.push(e) });
    await server.ok('ALTER TABLE sdk.sch ADD COLUMN n BIGINT DEFAULT 5');
    await c.query("INSERT INTO sdk.sch (id, a, n) VALUES (1, 'x', 6)");
    await server.ok('ALTER TABLE sdk.sch DROP COLUMN gone');
    await eventually('the schema changes, the row and the error', () => events.length >= 3 && errors.length === 1);
    const [added, row, dropped] = events;
    assert.equal(added, 'schema:id,a,gone,n,_seq:[{"kind":"add","column":"n","default":"5"}]');
    assert.match(row!, /^insert:\{"id":"1n","a":"x","gone":null,"n":"6n","_seq":"\d+n"\}$/);
    assert.equal(dropped, 'schema:id,a,n,_seq:[{"kind":"drop","column":"gone"}]');
    assert.equal(errors[0]!.code, 'SCHEMA_CHANGED');
    assert.match(errors[0]!.message, /column 'gone'.*dropped/);
  });

  it('live() keeps its row set across ALTER TABLE: held rows are re-keyed (added column with its default, dropped one removed, renamed one moved)', async () => {
    await server.ok('CREATE USER TABLE sdk.notes (id BIGINT PRIMARY KEY, title TEXT, tmp TEXT)');
    const c = client({ user: 'alice', password: 'alice-password-1' });
    await c.query("INSERT INTO sdk.notes (id, title, tmp) VALUES (1, 't1', 'x'), (2, 't2', 'y')");
    let latest: Row[] = [];
    const kinds: string[] = [];
    const stop = await c.live<Row>('SELECT * FROM sdk.notes', (rows) => { latest = rows; }, { onEvent: (e) => kinds.push(e.type) });
    const plain = (): Row[] => latest.map((r): Row => ({ ...r, _seq: undefined })).sort((x, y) => String(x.id).localeCompare(String(y.id)));
    await eventually('initial rows', () => latest.length === 2);
    await server.ok("ALTER TABLE sdk.notes ADD COLUMN tag TEXT DEFAULT 'none'");
    await eventually('tag added to the held rows', () => latest.every((r) => r.tag === 'none'));
    await server.ok('ALTER TABLE sdk.notes DROP COLUMN tmp');
    await server.ok('ALTER TABLE sdk.notes RENAME COLUMN title TO name');
    await c.query("INSERT INTO sdk.notes (id, name, tag) VALUES (3, 't3', 'new')");
    await c.query("UPDATE sdk.notes SET tag = 'changed' WHERE id = 1");
    await eventually('the rows in the new shape', () => latest.length === 3 && latest.some((r) => r.tag === 'changed'));
    assert.deepEqual(plain(), [
      { id: '1', name: 't1', tag: 'changed', _seq: undefined },
      { id: '2', name: 't2', tag: 'none', _seq: undefined },
      { id: '3', name: 't3', tag: 'new', _seq: undefined },
    ]);
    assert.deepEqual(kinds.filter((k) => k === 'schema_changed').length, 3);
    await stop();
  });

  it('live() across a reconnect the server cannot resume (ALTER TABLE while away): the rows start afresh, no error', async () => {
    await server.ok('CREATE USER TABLE sdk.away (id BIGINT PRIMARY KEY, title TEXT)');
    const c = client({ user: 'alice', password: 'alice-password-1' });
    await c.query("INSERT INTO sdk.away (id, title) VALUES (1, 't1'), (2, 't2')");
    let latest: Row[] = [];
    const kinds: string[] = [];
    const errors: string[] = [];
    const stop = await c.live<Row>('SELECT * FROM sdk.away', (rows) => { latest = rows; }, {
      onEvent: (e) => kinds.push(e.type), onError: (e) => errors.push(`${e.code}: ${e.message}`),
    });
    await eventually('initial rows', () => latest.length === 2);
    // While the client is away (the server restarted on another port), the columns change and rows move on.
    await server.stop();
    const elsewhere = await freePort();
    await server.launch({}, ['--port', String(elsewhere), '--config', await tokenConfig()]);
    await server.ok("ALTER TABLE sdk.away ADD COLUMN tag TEXT DEFAULT 'none'");
    const meantime = createClient({ url: `http://127.0.0.1:${elsewhere}`, auth: { user: 'alice', password: 'alice-password-1' } });
    await meantime.query("INSERT INTO sdk.away (id, title, tag) VALUES (3, 't3', 'new')");
    await meantime.query('DELETE FROM sdk.away WHERE id = 1');
    await meantime.disconnect();
    await server.stop();
    await server.launch({}, ['--port', String(port), '--config', await tokenConfig()]);
    await eventually('the rows as they are now', () => latest.length === 2 && latest.every((r) => r.tag !== undefined), 20_000);
    assert.deepEqual(latest.map((r) => [r.id, r.title, r.tag]).sort(), [['2', 't2', 'none'], ['3', 't3', 'new']]);
    assert.ok(kinds.includes('reset'), kinds.join(' '));
    assert.deepEqual(errors, []);
    // Live again after the reset.
    await c.query("UPDATE sdk.away SET tag = 'changed' WHERE id = 2");
    await eventually('a change after the reset', () => latest.some((r) => r.tag === 'changed'));
    await stop();
  });

  it('subscribe() with a from the server cannot serve (the table was dropped and created since): a reset and a snapshot, not an error', async () => {
    await server.ok("CREATE SHARED TABLE sdk.again (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("INSERT INTO sdk.again VALUES (1, 'old')");
    const c = client({ user: 'alice', password: 'alice-password-1' });
    const [{ s }] = await c.queryRows<{ s: string }>('SELECT max(_seq) AS s FROM sdk.again');
    await server.ok('DROP TABLE sdk.again');
    await new Promise((r) => setTimeout(r, 5));
    await server.ok("CREATE SHARED TABLE sdk.again (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("INSERT INTO sdk.again VALUES (2, 'new')");
    const events: string[] = [];
    const rows: Row[] = [];
    await c.subscribe<Row>('SELECT id, v FROM sdk.again', {
      onReset: () => events.push('reset'),
      onInitialData: (batch) => rows.push(...batch),
      onReady: () => events.push('ready'),
      onError: (e) => events.push(`error ${e.code}`),
    }, { from: String(s), batchSize: 100 });
    await eventually('the snapshot', () => events.includes('ready'));
    assert.deepEqual(events, ['reset', 'ready']);
    assert.deepEqual(rows.map((r) => [r.id, r.v]), [['2', 'new']]);
  });

  it('a refused subscription rejects subscribe() and is not reported again through onError', async () => {
    const c = client({ user: 'alice', password: 'alice-password-1' });
    const errors: string[] = [];
    await assert.rejects(c.subscribe<Row>('SELECT * FROM sdk.no_such_table', { onError: (e) => errors.push(e.code) }),
      (e: unknown) => e instanceof KalamError && e.code === 'NOT_FOUND');
    // A later subscription on the same socket still works, and the refused one stays silent.
    await c.subscribe<Row>('SELECT id FROM sdk.msgs', {});
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(errors, []);
  });

  it('a password change ends the subscriptions with an error instead of retrying stale credentials', async () => {
    await server.createUser('carol', 'user', 'carol-password-1');
    const c = client({ user: 'carol', password: 'carol-password-1' });
    const errors: string[] = [];
    await c.subscribe<Row>('SELECT id, body FROM sdk.msgs', { onError: (e) => errors.push(e.code) });
    await server.ok("ALTER USER 'carol' SET PASSWORD 'carol-password-2'");
    await eventually('the subscription ends with INVALID_CREDENTIALS', () => errors.length > 0);
    assert.deepEqual(errors, ['INVALID_CREDENTIALS']);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(c.reconnects, 0, 'no reconnect with the old password');
  });

  it('resumes after the server is killed and restarted while writes continue: nothing lost, nothing twice', async () => {
    await server.ok('CREATE SHARED TABLE sdk.feed (id BIGINT PRIMARY KEY, n INT) WITH (ACCESS_LEVEL = \'PUBLIC\')');
    const c = client({ user: 'alice', password: 'alice-password-1' });
    const inserts = new Map<string, number>();
    let latest: Row[] = [];
    const stop = await c.live<Row>('SELECT id, n FROM sdk.feed', (rows) => { latest = rows; }, {
      onEvent: (e) => { if (e.type === 'insert') for (const r of e.rows) inserts.set(String(r.id), (inserts.get(String(r.id)) ?? 0) + 1); },
    });
    const root = createClient({ url: `http://127.0.0.1:${port}`, auth: { user: 'root', password: ROOT_PASSWORD } });
    clients.push(root);
    const acknowledged: number[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        try {
          await root.query('INSERT INTO sdk.feed VALUES ($1, $2)', [i, i]);
          acknowledged.push(i);
        } catch (error) {
          // An insert in flight at the kill may have committed without its answer arriving: its
          // retry then finds the key taken, and the row is there (the live client must deliver it).
          if (/Duplicate primary key/i.test((error as Error).message)) {
            acknowledged.push(i);
            continue;
          }
          i--; // not acknowledged (the server is down): write it again
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    })();
    try {
      await eventually('some rows before the crash', () => latest.length >= 20);
      await server.kill();
      await new Promise((r) => setTimeout(r, 300));
      const beforeRestart = acknowledged.length;
      await server.launch({}, ['--port', String(port), '--config', await tokenConfig()]);
      await eventually('writes after the restart', () => acknowledged.length >= beforeRestart + 5, 20_000);
    } finally {
      // Whatever failed above, the writer stops: a test that fails must not keep the run alive.
      writing = false;
      await writer;
    }
    await eventually('every acknowledged row delivered', () => latest.length === acknowledged.length, 20_000);
    assert.deepEqual(latest.map((r) => Number(r.id)).sort((a, b) => a - b), [...acknowledged].sort((a, b) => a - b));
    assert.deepEqual([...inserts.values()].filter((n) => n > 1), [], 'no row inserted twice');
    assert.ok(c.reconnects >= 1, 'the client reconnected');
    await stop();
  });
});

/** A config with 2-second access tokens, so tests cross an expiry. */
async function tokenConfig(): Promise<string> {
  return configFile({ access_token_ttl_seconds: 2 });
}
