/**
 * Primary-key uniqueness when the committer validates keys above their partition's index-key bound
 * without reading them (decision 0013): explicit keys below, at and above the bound, the bound
 * learned again after a restart and after kill -9, keys only in the cold tier, generated keys next
 * to explicit ones, TEXT keys, and USER partitions learned one by one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, assertError, type Auth } from './harness.js';

const DUPLICATE = /Duplicate primary key/;

describe('key bounds', () => {
  let server: TestServer;
  let alice: Auth;
  let bob: Auth;

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('kb_alice');
    bob = await server.createUser('kb_bob');
    await server.ok('CREATE NAMESPACE kb');
  });
  after(async () => server.dispose());

  it('refuses duplicates below, at and after the largest key, and accepts keys above it', async () => {
    await server.ok('CREATE SHARED TABLE kb.ids (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok("INSERT INTO kb.ids (id, v) VALUES (10, 'a'), (20, 'b'), (30, 'c')");
    for (const id of [10, 20, 30]) assertError(await server.sql(`INSERT INTO kb.ids (id, v) VALUES (${id}, 'dup')`), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    await server.ok("INSERT INTO kb.ids (id, v) VALUES (31, 'd'), (15, 'e')");
    assertError(await server.sql("INSERT INTO kb.ids (id, v) VALUES (40, 'f'), (31, 'dup')"), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    // A deleted key can be inserted again, an UPDATE of a key above every other still finds it.
    await server.ok('DELETE FROM kb.ids WHERE id = 31');
    await server.ok("INSERT INTO kb.ids (id, v) VALUES (31, 'again')");
    await server.ok("UPDATE kb.ids SET v = 'updated' WHERE id = 31");
    const rows = await server.rows('SELECT id, v FROM kb.ids ORDER BY id');
    assert.deepEqual(rows.map((r) => `${String(r.id)}:${String(r.v)}`), ['10:a', '15:e', '20:b', '30:c', '31:updated']);
  });

  it('learns the bound again after a restart and after kill -9, cold keys included', async () => {
    await server.ok('CREATE SHARED TABLE kb.restart (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok("INSERT INTO kb.restart (id, v) VALUES (1, 'cold'), (2, 'cold')");
    await server.flushAndWait('kb.restart');
    await server.ok("INSERT INTO kb.restart (id, v) VALUES (3, 'hot')");
    await server.stop();
    await server.launch();
    for (const id of [1, 2, 3]) assertError(await server.sql(`INSERT INTO kb.restart (id, v) VALUES (${id}, 'dup')`), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    await server.ok("INSERT INTO kb.restart (id, v) VALUES (4, 'after restart')");
    await server.kill();
    await server.launch();
    for (const id of [2, 4]) assertError(await server.sql(`INSERT INTO kb.restart (id, v) VALUES (${id}, 'dup')`), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    assert.equal((await server.rows('SELECT id FROM kb.restart')).length, 4);
  });

  it('refuses an explicit key equal to a generated one, and generated keys after explicit large ones', async () => {
    await server.ok('CREATE SHARED TABLE kb.gen (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), v TEXT)');
    await server.ok("INSERT INTO kb.gen (v) VALUES ('g1'), ('g2')");
    const [first] = await server.rows('SELECT id FROM kb.gen ORDER BY id LIMIT 1');
    assertError(await server.sql('INSERT INTO kb.gen (id, v) VALUES ($1, $2)', { params: [String(first!.id), 'dup'] }), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    // An explicit key far above every generated one: generated keys below it are still checked, and written.
    await server.ok("INSERT INTO kb.gen (id, v) VALUES (9000000000000000000, 'far')");
    await server.ok("INSERT INTO kb.gen (v) VALUES ('g3')");
    assert.equal((await server.rows('SELECT id FROM kb.gen')).length, 4);
  });

  it('keeps TEXT keys unique and learns USER partitions one by one', async () => {
    await server.ok('CREATE SHARED TABLE kb.names (name TEXT PRIMARY KEY, n INT)');
    await server.ok("INSERT INTO kb.names (name, n) VALUES ('b', 1), ('bb', 2)");
    assertError(await server.sql("INSERT INTO kb.names (name, n) VALUES ('bb', 3)"), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    await server.ok("INSERT INTO kb.names (name, n) VALUES ('c', 3), ('a', 4)");
    assertError(await server.sql("INSERT INTO kb.names (name, n) VALUES ('c', 5)"), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);

    await server.ok('CREATE USER TABLE kb.mine (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok("INSERT INTO kb.mine (id, v) VALUES (5, 'alice')", { auth: alice });
    // Bob's partition is empty: the same key is his to take, then his alone.
    await server.ok("INSERT INTO kb.mine (id, v) VALUES (5, 'bob'), (1, 'bob')", { auth: bob });
    assertError(await server.sql("INSERT INTO kb.mine (id, v) VALUES (1, 'dup')", { auth: bob }), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    assertError(await server.sql("INSERT INTO kb.mine (id, v) VALUES (5, 'dup')", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', DUPLICATE);
    await server.ok("INSERT INTO kb.mine (id, v) VALUES (1, 'alice')", { auth: alice });
    assert.equal((await server.rows('SELECT id FROM kb.mine', { auth: alice })).length, 2);
  });

  it('keeps concurrent inserts of the same new keys unique', async () => {
    await server.ok('CREATE SHARED TABLE kb.race (id BIGINT PRIMARY KEY, w INT)');
    const results = await Promise.all(Array.from({ length: 16 }, (_, w) => server.sql(`INSERT INTO kb.race (id, w) VALUES (${100 + (w % 4)}, ${w})`)));
    assert.equal(results.filter((r) => r.status === 200).length, 4);
    assert.equal((await server.rows('SELECT id FROM kb.race')).length, 4);
  });
});
