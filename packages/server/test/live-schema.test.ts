/**
 * Live subscriptions across ALTER TABLE, against the real server over HTTP and WebSocket: a `*`
 * subscription gets `schema_changed` (in commit order, before the first row under the new schema)
 * and later rows in the new shape (an added column with the value older rows read, a dropped one
 * gone, a renamed one under its new name); a subscription that names a dropped or renamed column
 * ends with SCHEMA_CHANGED and leaves system.live; `... RESTRICT` is refused while a subscription
 * names the column; initial data is read under one schema version; under concurrent inserts every
 * row arrives once, each in the schema announced before it.
 * Not covered here: ALTER TABLE itself (ddl tests), access changes (live-reauth.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer } from './harness.js';
import { LiveClient, eventually, type Row, type WsMessage } from './ws-client.js';

const T = 20_000;
const changeOf = (id: string) => (m: WsMessage): boolean => m.type === 'change' && m.subscription_id === id;
const schemaChangedOf = (id: string) => (m: WsMessage): boolean => m.type === 'schema_changed' && m.subscription_id === id;
const errorOf = (id: string) => (m: WsMessage): boolean => m.type === 'error' && m.subscription_id === id;
const namesOf = (m: WsMessage): string[] => (m.schema ?? []).map((f) => f.name);
const rowOf = (m: WsMessage): Row => (m.rows ?? m.old_values ?? [])[0]!;

/** The messages of subscription `id` that are rows or schema changes, in arrival order. */
function stream(c: LiveClient, id: string): WsMessage[] {
  return c.messages.filter((m) => m.subscription_id === id && (m.type === 'change' || m.type === 'schema_changed' || m.type === 'initial_data_batch'));
}

describe('live subscriptions across ALTER TABLE', { timeout: 180_000 }, () => {
  let server: TestServer;
  const clients: LiveClient[] = [];
  const connect = async (): Promise<LiveClient> => {
    const c = await LiveClient.connect(server.url, { user: 'root', password: ROOT_PASSWORD });
    clients.push(c);
    return c;
  };
  const liveIds = async (table: string): Promise<string[]> =>
    (await server.rows(`SELECT live_id, subscription_id FROM system.live WHERE table_name = '${table}'`)).map((r) => String(r.subscription_id)).sort();

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE ls');
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.dispose();
  });

  it('a * subscription gets schema_changed, then rows with the added column (its default), without the dropped one, under the new name', async () => {
    await server.ok('CREATE SHARED TABLE ls.t1 (id BIGINT PRIMARY KEY, a TEXT, n INT)');
    await server.ok("INSERT INTO ls.t1 (id, a, n) VALUES (1, 'one', 1)");
    const c = await connect();
    try {
      const ack = await c.subscribeOk('s', 'SELECT * FROM ls.t1', { batch_size: 100 });
      assert.deepEqual(namesOf(ack), ['id', 'a', 'n', '_seq']);
      await c.loadAll('s');
      // An explicit select list that the ALTERs leave alone sees no schema change.
      await c.subscribeOk('e', 'SELECT id, n FROM ls.t1');

      await server.ok('ALTER TABLE ls.t1 ADD COLUMN b INT DEFAULT 7');
      await server.ok("INSERT INTO ls.t1 (id, a, n, b) VALUES (2, 'two', 2, 9)");
      await server.ok('UPDATE ls.t1 SET n = 10 WHERE id = 1');
      const added = await c.waitFor(schemaChangedOf('s'), T);
      assert.deepEqual(namesOf(added), ['id', 'a', 'n', 'b', '_seq']);
      assert.equal(typeof added.schema_version, 'number');
      assert.deepEqual(added.changes, [{ kind: 'add', column: 'b', default: 7 }]);
      const [ins, upd] = await c.waitForCount(changeOf('s'), 2, T);
      assert.equal(ins!.change_type, 'insert');
      assert.deepEqual({ ...rowOf(ins!), _seq: undefined }, { id: '2', a: 'two', n: 2, b: 9, _seq: undefined });
      assert.equal(upd!.change_type, 'update');
      // The row written before the ALTER reads the column's default, before and after the update.
      assert.equal(rowOf(upd!).b, 7);
      assert.equal(upd!.old_values![0]!.b, 7);
      assert.equal(rowOf(upd!).n, 10);
      assert.ok(c.messages.indexOf(added) < c.messages.indexOf(ins!), 'schema_changed precedes the first row under the new schema');

      await server.ok('ALTER TABLE ls.t1 DROP COLUMN a');
      await server.ok('INSERT INTO ls.t1 (id, n, b) VALUES (3, 3, 3)');
      const dropped = await c.waitFor(schemaChangedOf('s'), T, c.messages.indexOf(added) + 1);
      assert.deepEqual(namesOf(dropped), ['id', 'n', 'b', '_seq']);
      assert.deepEqual(dropped.changes, [{ kind: 'drop', column: 'a' }]);
      const row3 = await c.waitFor((m) => changeOf('s')(m) && rowOf(m).id === '3', T);
      assert.deepEqual(Object.keys(rowOf(row3)).sort(), ['_seq', 'b', 'id', 'n']);

      await server.ok('ALTER TABLE ls.t1 RENAME COLUMN b TO bee');
      await server.ok('UPDATE ls.t1 SET bee = 8 WHERE id = 1');
      const renamed = await c.waitFor(schemaChangedOf('s'), T, c.messages.indexOf(dropped) + 1);
      assert.deepEqual(namesOf(renamed), ['id', 'n', 'bee', '_seq']);
      assert.deepEqual(renamed.changes, [{ kind: 'rename', column: 'b', new_name: 'bee' }]);
      const upd1 = await c.waitFor((m) => changeOf('s')(m) && m.change_type === 'update' && rowOf(m).bee === 8, T);
      assert.deepEqual(Object.keys(rowOf(upd1)).sort(), ['_seq', 'bee', 'id', 'n']);
      assert.equal(upd1.old_values![0]!.bee, 7, 'old values are in the new schema too');

      // Every row message is in the schema announced last before it.
      let names = namesOf(ack);
      for (const m of stream(c, 's')) {
        if (m.type === 'schema_changed') names = namesOf(m);
        else for (const r of [...(m.rows ?? []), ...(m.old_values ?? [])]) assert.deepEqual(Object.keys(r).sort(), [...names].sort(), JSON.stringify(m));
      }
      // The subscription that selects id and n only never saw a schema change, and got every row (its
      // frames may leave in a later write than 's''s of the same commit).
      await c.waitForCount(changeOf('e'), 4, T);
      assert.deepEqual(c.of('e', 'schema_changed'), []);
      assert.deepEqual(c.of('e', 'error'), []);
      assert.equal(c.changes('e').length, 4);
      for (const m of c.changes('e')) assert.deepEqual(Object.keys(rowOf(m)).sort(), ['_seq', 'id', 'n']);
    } finally {
      await c.close();
    }
  });

  it('a selected column widened by MODIFY COLUMN: schema_changed with the new type, later rows in it', async () => {
    await server.ok('CREATE SHARED TABLE ls.t7 (id BIGINT PRIMARY KEY, n INT, other TEXT)');
    await server.ok("INSERT INTO ls.t7 (id, n, other) VALUES (1, 1, 'o')");
    const c = await connect();
    try {
      const ack = await c.subscribeOk('s', 'SELECT id, n FROM ls.t7');
      assert.deepEqual(ack.schema?.map((f) => f.data_type), ['BigInt', 'Int', 'BigInt']);
      await server.ok('ALTER TABLE ls.t7 MODIFY COLUMN n BIGINT');
      await server.ok('UPDATE ls.t7 SET n = 9007199254740993 WHERE id = 1');
      const changed = await c.waitFor(schemaChangedOf('s'), T);
      assert.deepEqual(changed.schema?.map((f) => f.data_type), ['BigInt', 'BigInt', 'BigInt']);
      assert.deepEqual(changed.changes, [{ kind: 'modify', column: 'n', data_type: 'BigInt' }]);
      const upd = await c.waitFor(changeOf('s'), T);
      assert.equal(rowOf(upd).n, '9007199254740993');
      assert.equal(upd.old_values![0]!.n, '1', 'the old value in the new type');
    } finally {
      await c.close();
    }
  });

  it('flushed rows across an ALTER: initial data and updates of cold rows are in the new schema', async () => {
    await server.ok('CREATE SHARED TABLE ls.t9 (id BIGINT PRIMARY KEY, v TEXT, gone TEXT)');
    await server.ok("INSERT INTO ls.t9 (id, v, gone) VALUES (1, 'a', 'g1'), (2, 'b', 'g2')");
    await server.flushAndWait('ls.t9');
    const c = await connect();
    try {
      await c.subscribeOk('before', 'SELECT * FROM ls.t9');
      await server.ok('ALTER TABLE ls.t9 ADD COLUMN w INT DEFAULT 4');
      await server.ok('ALTER TABLE ls.t9 DROP COLUMN gone');
      const ack = await c.subscribeOk('after', 'SELECT * FROM ls.t9', { batch_size: 10 });
      assert.deepEqual(namesOf(ack), ['id', 'v', 'w', '_seq']);
      const initial = (await c.loadAll('after', c.messages.indexOf(ack), T)).flatMap((b) => b.rows ?? []);
      assert.deepEqual(initial.map((r) => ({ ...r, _seq: undefined })), [
        { id: '1', v: 'a', w: 4, _seq: undefined }, { id: '2', v: 'b', w: 4, _seq: undefined },
      ]);
      await server.ok("UPDATE ls.t9 SET v = 'B' WHERE id = 2");
      for (const id of ['before', 'after']) {
        const upd = await c.waitFor((m) => changeOf(id)(m) && m.change_type === 'update', T);
        assert.deepEqual({ ...rowOf(upd), _seq: undefined }, { id: '2', v: 'B', w: 4, _seq: undefined }, id);
        assert.deepEqual({ ...upd.old_values![0]!, _seq: undefined }, { id: '2', v: 'b', w: 4, _seq: undefined }, id);
      }
      assert.equal(c.of('before', 'schema_changed').length, 2);
    } finally {
      await c.close();
    }
  });

  it('USER table, two users with CURRENT_USER() filters: each is compiled for its own user and sees only its own rows in the new schema', async () => {
    await server.ok('CREATE USER TABLE ls.u1 (id BIGINT PRIMARY KEY, owner TEXT, v TEXT)');
    const alice = await server.createUser('alice_ls');
    const bob = await server.createUser('bob_ls');
    const a = await LiveClient.connect(server.url, alice);
    const b = await LiveClient.connect(server.url, bob);
    clients.push(a, b);
    try {
      for (const c of [a, b]) await c.subscribeOk('s', 'SELECT * FROM ls.u1 WHERE owner = CURRENT_USER()');
      await server.ok('ALTER TABLE ls.u1 ADD COLUMN w INT DEFAULT 1');
      await server.ok("INSERT INTO ls.u1 (id, owner, v, w) VALUES (1, 'alice_ls', 'a', 2), (2, 'someone', 'x', 3)", { auth: alice });
      await server.ok("INSERT INTO ls.u1 (id, owner, v) VALUES (1, 'bob_ls', 'b')", { auth: bob });
      for (const [c, owner, w] of [[a, 'alice_ls', 2], [b, 'bob_ls', 1]] as const) {
        const changed = await c.waitFor(schemaChangedOf('s'), T);
        assert.deepEqual(namesOf(changed), ['id', 'owner', 'v', 'w', '_seq']);
        const ins = await c.waitFor(changeOf('s'), T);
        assert.deepEqual({ ...rowOf(ins), _seq: undefined, v: undefined }, { id: '1', owner, v: undefined, w, _seq: undefined });
        assert.equal(c.changes('s').length, 1);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('resuming with from across an ALTER that changed the columns is refused (the rows held are in the old ones); from after it resumes in the new schema', async () => {
    await server.ok('CREATE SHARED TABLE ls.t8 (id BIGINT PRIMARY KEY, v TEXT)');
    const c = await connect();
    let from: string;
    try {
      const ack = await c.subscribeOk('s', 'SELECT * FROM ls.t8');
      await server.ok("INSERT INTO ls.t8 (id, v) VALUES (1, 'a'), (2, 'b')");
      const rows = await c.waitForCount(changeOf('s'), 2, T);
      from = String(rowOf(rows[1]!)._seq ?? ack.batch_control?.last_seq_id);
    } finally {
      await c.close();
    }
    // A new default does not change the rows a client holds: resuming across it works.
    await server.ok("ALTER TABLE ls.t8 ALTER COLUMN v SET DEFAULT 'z'");
    const e = await connect();
    try {
      const ack = await e.subscribeOk('s', 'SELECT * FROM ls.t8', { from });
      assert.equal(ack.total_rows, 0);
    } finally {
      await e.close();
    }
    await server.ok("ALTER TABLE ls.t8 ADD COLUMN w TEXT DEFAULT 'old'");
    await server.ok("INSERT INTO ls.t8 (id, v, w) VALUES (3, 'c', 'new')");
    await server.ok("UPDATE ls.t8 SET v = 'A' WHERE id = 1");
    const d = await connect();
    try {
      // Row 2 was not changed, so it would not be sent, and the client could not know its w is 'old'.
      const refused = await d.subscribe('s', 'SELECT * FROM ls.t8', { from });
      assert.equal(refused.type, 'error');
      assert.match(String(refused.message), /ALTER TABLE changed its columns since then.*without 'from'/);
      const [three] = await server.rows('SELECT _seq FROM ls.t8 WHERE id = 3');
      const ack = await d.subscribeOk('s2', 'SELECT * FROM ls.t8', { from: three!._seq });
      assert.deepEqual(namesOf(ack), ['id', 'v', 'w', '_seq']);
      const [upd] = await d.waitForCount(changeOf('s2'), 1, T);
      assert.deepEqual({ ...rowOf(upd!), _seq: undefined }, { id: '1', v: 'A', w: 'old', _seq: undefined });
      assert.deepEqual(d.of('s2', 'schema_changed'), []);
    } finally {
      await d.close();
    }
  });

  it('a subscription that names a dropped or renamed column ends with SCHEMA_CHANGED and leaves system.live; the others keep flowing', async () => {
    await server.ok('CREATE SHARED TABLE ls.t2 (id BIGINT PRIMARY KEY, a TEXT, b TEXT, c TEXT)');
    const c = await connect();
    try {
      await c.subscribeOk('sel', 'SELECT id, a FROM ls.t2');
      await c.subscribeOk('where', "SELECT * FROM ls.t2 WHERE a = 'x'");
      await c.subscribeOk('ren', 'SELECT id, b FROM ls.t2');
      await c.subscribeOk('star', 'SELECT * FROM ls.t2');
      assert.deepEqual(await liveIds('t2'), ['ren', 'sel', 'star', 'where']);

      await server.ok('ALTER TABLE ls.t2 DROP COLUMN a');
      await server.ok("INSERT INTO ls.t2 (id, b, c) VALUES (1, 'b1', 'c1')");
      for (const id of ['sel', 'where']) {
        const err = await c.waitFor(errorOf(id), T);
        assert.equal(err.code, 'SCHEMA_CHANGED', JSON.stringify(err));
        assert.match(err.message ?? '', /column 'a'.*dropped.*DROP COLUMN a/, JSON.stringify(err));
      }
      await c.waitFor((m) => changeOf('star')(m) && rowOf(m).id === '1', T);
      await c.waitFor((m) => changeOf('ren')(m) && rowOf(m).id === '1', T);
      assert.deepEqual(c.changes('sel'), []);
      assert.deepEqual(c.changes('where'), []);

      await server.ok('ALTER TABLE ls.t2 RENAME COLUMN b TO bb');
      await server.ok("INSERT INTO ls.t2 (id, bb, c) VALUES (2, 'b2', 'c2')");
      const err = await c.waitFor(errorOf('ren'), T);
      assert.equal(err.code, 'SCHEMA_CHANGED');
      assert.match(err.message ?? '', /column 'b'.*renamed to 'bb'.*RENAME COLUMN b TO bb/, JSON.stringify(err));
      const row2 = await c.waitFor((m) => changeOf('star')(m) && rowOf(m).id === '2', T);
      assert.equal(rowOf(row2).bb, 'b2');
      assert.equal(c.changes('ren').length, 1, 'nothing after the error');
      assert.deepEqual(await liveIds('t2'), ['star']);
      // The connection lives on; the ids are free again and the new names work.
      await c.subscribeOk('ren', 'SELECT id, bb FROM ls.t2');
    } finally {
      await c.close();
    }
  });

  it('DROP COLUMN / RENAME COLUMN ... RESTRICT are refused, listing the subscriptions, while one names the column; they work once it is closed', async () => {
    await server.ok('CREATE SHARED TABLE ls.t3 (id BIGINT PRIMARY KEY, a TEXT, b TEXT, z TEXT)');
    const c = await connect();
    try {
      await c.subscribeOk('uses-a', "SELECT id FROM ls.t3 WHERE a = 'k'");
      await c.subscribeOk('star', 'SELECT * FROM ls.t3');
      const [row] = await server.rows("SELECT live_id FROM system.live WHERE subscription_id = 'uses-a'");
      const liveId = String(row!.live_id);
      for (const sql of ['ALTER TABLE ls.t3 DROP COLUMN a RESTRICT', 'ALTER TABLE ls.t3 RENAME COLUMN a TO a2 RESTRICT']) {
        const res = await server.sql(sql);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.match(res.body.error?.message ?? '', new RegExp(`column 'a'.*${liveId.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}`), JSON.stringify(res.body));
      }
      // A column only `*` covers is not named: RESTRICT lets it go, the * subscription follows.
      await server.ok('ALTER TABLE ls.t3 DROP COLUMN z RESTRICT');
      await c.waitFor(schemaChangedOf('star'), T);
      assert.deepEqual(c.of('uses-a', 'error'), []);
      assert.deepEqual(await liveIds('t3'), ['star', 'uses-a']);

      c.send({ type: 'unsubscribe', subscription_id: 'uses-a' });
      await eventually('uses-a gone from system.live', async () => !(await liveIds('t3')).includes('uses-a'), T);
      await server.ok('ALTER TABLE ls.t3 RENAME COLUMN a TO a2 RESTRICT');
      await server.ok('ALTER TABLE ls.t3 DROP COLUMN a2 RESTRICT');
      const last = await c.waitForCount(schemaChangedOf('star'), 3, T);
      assert.deepEqual(namesOf(last[2]!), ['id', 'b', '_seq']);
    } finally {
      await c.close();
    }
  });

  it('initial data is read under one schema version: an ALTER while it loads is announced after the last batch', async () => {
    await server.ok('CREATE SHARED TABLE ls.t4 (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok(`INSERT INTO ls.t4 (id, v) VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, 'v${i + 1}')`).join(', ')}`);
    const c = await connect();
    try {
      const ack = await c.subscribeOk('s', 'SELECT * FROM ls.t4', { batch_size: 3 });
      assert.deepEqual(namesOf(ack), ['id', 'v', '_seq']);
      const first = await c.waitFor((m) => m.type === 'initial_data_batch' && m.subscription_id === 's', T);
      assert.equal(first.batch_control?.has_more, true);
      await server.ok("ALTER TABLE ls.t4 ADD COLUMN w TEXT DEFAULT 'dw'");
      await server.ok("INSERT INTO ls.t4 (id, v, w) VALUES (11, 'v11', 'w11')");
      await server.ok("UPDATE ls.t4 SET v = 'changed' WHERE id = 10");
      // Loading continues (the client asks for the rest) in the schema of the ack.
      c.send({ type: 'next_batch', subscription_id: 's', last_seq_id: first.batch_control!.last_seq_id });
      const batches = [first];
      while (batches.at(-1)!.batch_control!.has_more) {
        const from = c.messages.indexOf(batches.at(-1)!) + 1;
        const next = await c.waitFor((m) => m.type === 'initial_data_batch' && m.subscription_id === 's', T, from);
        batches.push(next);
        if (next.batch_control!.has_more) c.send({ type: 'next_batch', subscription_id: 's', last_seq_id: next.batch_control!.last_seq_id });
      }
      const initial = batches.flatMap((b) => b.rows ?? []);
      assert.equal(initial.length, 10);
      for (const r of initial) assert.deepEqual(Object.keys(r).sort(), ['_seq', 'id', 'v']);
      const changed = await c.waitFor(schemaChangedOf('s'), T);
      assert.ok(c.messages.indexOf(changed) > c.messages.indexOf(batches.at(-1)!), 'schema_changed after the initial data');
      const [ins, upd] = await c.waitForCount(changeOf('s'), 2, T);
      assert.ok(c.messages.indexOf(ins!) > c.messages.indexOf(changed));
      assert.deepEqual({ ...rowOf(ins!), _seq: undefined }, { id: '11', v: 'v11', w: 'w11', _seq: undefined });
      assert.deepEqual({ ...rowOf(upd!), _seq: undefined }, { id: '10', v: 'changed', w: 'dw', _seq: undefined });
      // A subscription made after the ALTER gets the new schema in its ack and no schema_changed.
      const ack2 = await c.subscribeOk('s2', 'SELECT * FROM ls.t4', { batch_size: 100 });
      assert.deepEqual(namesOf(ack2), ['id', 'v', 'w', '_seq']);
      const rows2 = (await c.loadAll('s2', c.messages.indexOf(ack2))).flatMap((b) => b.rows ?? []);
      assert.equal(rows2.length, 11);
      assert.ok(rows2.every((r) => 'w' in r));
      assert.deepEqual(c.of('s2', 'schema_changed'), []);
    } finally {
      await c.close();
    }
  });

  it('subscriptions made while ALTERs run: each reads its initial data under one version, the one its ack announces, and ends at the newest', async () => {
    await server.ok('CREATE SHARED TABLE ls.t6 (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok(`INSERT INTO ls.t6 (id, v) VALUES ${Array.from({ length: 40 }, (_, i) => `(${i + 1}, 'v')`).join(', ')}`);
    const c = await connect();
    try {
      const ids: string[] = [];
      for (let round = 0; round < 6; round++) {
        const alter = server.ok(`ALTER TABLE ls.t6 ADD COLUMN c${round} INT DEFAULT ${round}`);
        const subs = Array.from({ length: 4 }, (_, k) => {
          const id = `r${round}-${k}`;
          ids.push(id);
          return c.subscribeOk(id, 'SELECT * FROM ls.t6', { batch_size: 1000 }, T);
        });
        await Promise.all([alter, ...subs]);
      }
      await server.ok("INSERT INTO ls.t6 (id, v) VALUES (1000, 'last')");
      const final = ['id', 'v', 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', '_seq'];
      for (const id of ids) {
        await c.waitFor((m) => changeOf(id)(m) && rowOf(m).id === '1000', T);
        const ack = c.of(id, 'subscription_ack')[0]!;
        let names = namesOf(ack);
        let initial = 0;
        for (const m of stream(c, id)) {
          if (m.type === 'schema_changed') {
            names = namesOf(m);
            continue;
          }
          if (m.type === 'initial_data_batch') initial += m.rows?.length ?? 0;
          for (const r of m.rows ?? []) assert.deepEqual(Object.keys(r).sort(), [...names].sort(), `${id}: ${JSON.stringify(m)}`);
        }
        assert.equal(initial, 40, id);
        assert.deepEqual(names, final, id);
        assert.deepEqual(c.of(id, 'error'), [], id);
      }
    } finally {
      await c.close();
    }
  });

  it('concurrent inserts during ALTERs: every row arrives exactly once, each under the schema announced before it', async () => {
    await server.ok('CREATE SHARED TABLE ls.t5 (id BIGINT PRIMARY KEY, v TEXT, d TEXT)');
    const c = await connect();
    try {
      const ack = await c.subscribeOk('s', 'SELECT * FROM ls.t5');
      let stop = false;
      const written: number[] = [];
      // Inserts name only the columns every version has; the server retries a statement that raced an ALTER.
      const writer = async (first: number): Promise<void> => {
        for (let id = first; !stop; id += 3) {
          await server.ok(`INSERT INTO ls.t5 (id, v) VALUES (${id}, 'v${id}')`);
          written.push(id);
        }
      };
      const writers = Promise.all([writer(1), writer(2), writer(3)]);
      try {
        await eventually('rows before the ALTERs', async () => c.changes('s').length >= 10, T);
        await server.ok('ALTER TABLE ls.t5 ADD COLUMN x INT DEFAULT 5');
        await eventually('rows after ADD', async () => c.changes('s', c.messages.findIndex(schemaChangedOf('s'))).length >= 10, T);
        await server.ok('ALTER TABLE ls.t5 DROP COLUMN d');
        await eventually('rows after DROP', async () => c.of('s', 'schema_changed').length === 2 && c.changes('s', c.messages.lastIndexOf(c.of('s', 'schema_changed')[1]!)).length >= 10, T);
      } finally {
        stop = true;
        await writers;
      }
      await c.waitForCount(changeOf('s'), written.length, T);
      const ids: string[] = [];
      let names = namesOf(ack);
      const schemas: string[][] = [names];
      for (const m of stream(c, 's')) {
        if (m.type === 'schema_changed') {
          names = namesOf(m);
          schemas.push(names);
          continue;
        }
        assert.equal(m.change_type, 'insert');
        for (const r of m.rows ?? []) {
          ids.push(String(r.id));
          assert.deepEqual(Object.keys(r).sort(), [...names].sort(), `row ${JSON.stringify(r)} under schema ${names.join()}`);
          if ('x' in r) assert.equal(r.x, 5);
          assert.equal(r.v, `v${String(r.id)}`);
          if ('d' in r) assert.equal(r.d, null);
        }
      }
      assert.deepEqual(schemas, [['id', 'v', 'd', '_seq'], ['id', 'v', 'd', 'x', '_seq'], ['id', 'v', 'x', '_seq']]);
      assert.equal(new Set(ids).size, ids.length, 'no row twice');
      assert.deepEqual([...ids].sort(), written.map(String).sort(), 'every row once');
      // Rows arrive in commit order: _seq increases across the schema changes.
      const seqs = stream(c, 's').filter((m) => m.type === 'change').flatMap((m) => (m.rows ?? []).map((r) => BigInt(String(r._seq))));
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, 'increasing _seq');
    } finally {
      await c.close();
    }
  });
});
