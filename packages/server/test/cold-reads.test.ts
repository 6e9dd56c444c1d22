/**
 * Reads over hot, cold, mixed, updated-after-flush, deleted-after-flush and multi-segment data give
 * exactly the expected rows (decision 0027): point lookups (answered from the index's copy of a
 * flushed row, or from the segment for a cold marker) agree with a model kept in the test and with
 * the general read path (DuckDB over the mirror), filters and GROUP BY agree with the model, USER
 * partitions stay apart, and all of it holds after a restart and after ALTER TABLE.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestServer } from './harness.js';
import { HotStore } from '../src/storage/hot/hot-store.js';
import { encodeColdMarker, encodeIndexValue } from '../src/storage/hot/row-codec.js';
import { idBodyTable } from './id-body-table.js';

interface ModelRow { readonly id: number; readonly user_id: string; readonly body: string; readonly n: number }

describe('cold reads: point lookups, filters and GROUP BY over every mix of tiers', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };
  const model = new Map<number, ModelRow>();
  const T = 'cr.t';

  const row = (id: number, tag: string): ModelRow => ({ id, user_id: `u${id % 7}`, body: `${tag} ${id}`, n: id % 10 });
  const insert = async (ids: number[], tag: string): Promise<void> => {
    const rows = ids.map((id) => row(id, tag));
    await server.ok(`INSERT INTO ${T} (id, user_id, body, n) VALUES ${rows.map((r) => `(${r.id}, '${r.user_id}', '${r.body}', ${r.n})`).join(', ')}`);
    for (const r of rows) model.set(r.id, r);
  };
  const update = async (ids: number[], tag: string): Promise<void> => {
    for (const id of ids) {
      await server.ok(`UPDATE ${T} SET body = '${tag} ${id}', n = ${(id + 3) % 10} WHERE id = ${id}`);
      model.set(id, { ...model.get(id)!, body: `${tag} ${id}`, n: (id + 3) % 10 });
    }
  };
  const remove = async (ids: number[]): Promise<void> => {
    await server.ok(`DELETE FROM ${T} WHERE id IN (${ids.join(', ')})`);
    for (const id of ids) model.delete(id);
  };
  const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

  /** Every key (and some never written) by the point path, against the model and the engine path. */
  const checkAll = async (label: string): Promise<void> => {
    // The general path: DuckDB over the partition's mirror (hot + cold merged).
    const engine = new Map((await server.rows(`SELECT * FROM ${T} ORDER BY id`)).map((r) => [Number(r.id), r]));
    for (const id of range(0, 160)) {
      const expected = model.get(id);
      const point = await server.rows(`SELECT * FROM ${T} WHERE id = $1`, { params: [id] });
      assert.deepEqual(point, expected === undefined ? [] : [engine.get(id)], `${label}: id ${id}, point path vs engine path`);
      if (expected !== undefined) {
        const { id: _i, _seq: _s, _deleted: _d, ...cells } = point[0]!;
        assert.deepEqual(cells, { user_id: expected.user_id, body: expected.body, n: expected.n }, `${label}: id ${id}`);
      }
    }
    assert.equal(engine.size, model.size, `${label}: row count`);
    const live = [...model.values()];
    const filtered = live.filter((r) => r.n < 5).sort((a, b) => b.id - a.id).slice(0, 20).map((r) => ({ id: String(r.id), body: r.body }));
    assert.deepEqual(await server.rows(`SELECT id, body FROM ${T} WHERE n < 5 ORDER BY id DESC LIMIT 20`), filtered, `${label}: filter`);
    const groups = new Map<string, { c: number; s: number }>();
    for (const r of live) {
      const g = groups.get(r.user_id) ?? { c: 0, s: 0 };
      groups.set(r.user_id, { c: g.c + 1, s: g.s + r.n });
    }
    const expectedGroups = [...groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([user_id, g]) => ({ user_id, c: String(g.c), s: String(g.s) }));
    assert.deepEqual(await server.rows(`SELECT user_id, count(*) AS c, sum(n) AS s FROM ${T} GROUP BY user_id ORDER BY user_id`), expectedGroups, `${label}: GROUP BY`);
  };

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE cr');
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
    await server.ok(`CREATE SHARED TABLE ${T} (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT) WITH (FLUSH_POLICY = 'rows:100000000')`);
  });
  after(async () => {
    await server.dispose();
  });

  it('hot only, then cold only (one segment)', async () => {
    await insert(range(1, 60), 'first');
    await checkAll('hot');
    await server.flushAndWait(T);
    await checkAll('cold');
  });

  it('mixed, updated and deleted after a flush, several overlapping segments, tombstones in a segment', async () => {
    await insert(range(61, 120), 'second');
    await update(range(1, 10), 'updated-then-flushed');
    await remove([40, 41, 42]);
    await checkAll('mixed');
    await server.flushAndWait(T); // segment 2: ids 1-10 again (newer), 61-120, tombstones of 40-42
    await checkAll('two segments');
    await update(range(20, 25), 'updated-after-flush');
    await update([65, 66], 'updated-after-flush');
    await remove([30, 31, 32, 70, 71, 72]);
    await insert(range(121, 150), 'hot');
    await insert([40], 'reinserted');
    // Several versions of one key above the watermark (the mirror keeps the newest), a key written and
    // deleted since the flush, a key deleted and written again.
    await update([22], 'twice');
    await update([22], 'three times');
    await insert([151], 'short-lived');
    await remove([151]);
    await remove([80]);
    await insert([80], 'back');
    await checkAll('updated and deleted after flush');
    await server.flushAndWait(T);
    await checkAll('three segments');
    await remove([1, 121]);
    await update([2, 122], 'again');
    await checkAll('after three segments');
  });

  it('the same after a restart and after compaction', async () => {
    assert.equal(await server.stop(), 0);
    await server.launch();
    await checkAll('restarted');
    await server.flushAndWait(T);
    const [res] = await server.ok(`STORAGE COMPACT TABLE ${T}`);
    const job = await server.waitForJob(/Job ID: (\S+)/.exec(res!.message!)![1]!);
    assert.equal(job.status, 'completed', JSON.stringify(job));
    await checkAll('compacted');
  });

  it('flushed rows read in the current schema after ALTER TABLE, by the point path as by the engine', async () => {
    await server.ok(`ALTER TABLE ${T} ADD COLUMN extra INT DEFAULT 7`);
    await server.ok(`ALTER TABLE ${T} RENAME COLUMN body TO text`);
    for (const id of [2, 5, 50, 100, 140, 999]) {
      const point = await server.rows(`SELECT * FROM ${T} WHERE id = ${id}`);
      assert.deepEqual(point, await server.rows(`SELECT * FROM ${T} WHERE id = ${id} LIMIT 1`), `id ${id}`);
      const expected = model.get(id);
      assert.deepEqual(await server.rows(`SELECT text, extra FROM ${T} WHERE id = ${id}`), expected === undefined ? [] : [{ text: expected.body, extra: 7 }]);
    }
  });

  it('typed columns come back the same from the index copy, the segment and the engine', async () => {
    const t = 'cr.typed';
    await server.ok(`CREATE SHARED TABLE ${t} (id TEXT PRIMARY KEY, d DECIMAL(12,3), ts TIMESTAMP, day DATE, ok BOOLEAN, f DOUBLE, big BIGINT)`);
    await server.ok(`INSERT INTO ${t} VALUES ('a', 12.345, '2026-01-02 03:04:05.123456', '2026-01-02', true, 1.5, 9007199254740993),
      ('b', -0.001, '1970-01-01 00:00:00', '1969-12-31', false, -2.25e-10, -9007199254740993), ('c', NULL, NULL, NULL, NULL, NULL, NULL)`);
    const before = await server.rows(`SELECT * FROM ${t} ORDER BY id`);
    await server.flushAndWait(t);
    for (const [i, id] of ['a', 'b', 'c'].entries()) {
      const point = await server.rows(`SELECT * FROM ${t} WHERE id = $1`, { params: [id] });
      assert.deepEqual(point, await server.rows(`SELECT * FROM ${t} WHERE id = $1 LIMIT 1`, { params: [id] }), id);
      const { _seq: _s, _deleted: _d, ...cells } = point[0]!;
      const { _seq: _s2, _deleted: _d2, ...was } = before[i]!;
      assert.deepEqual(cells, was, id);
    }
    assert.deepEqual(await server.rows(`SELECT * FROM ${t} WHERE id = 'zz'`), []);
  });

  it('USER tables: each user reads only their own flushed rows', async () => {
    const t = 'cr.notes';
    await server.ok(`CREATE USER TABLE ${t} (id BIGINT PRIMARY KEY, body TEXT)`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 'a1'), (2, 'a2')`, { auth: alice });
    await server.ok(`INSERT INTO ${t} VALUES (1, 'b1'), (3, 'b3')`, { auth: bob });
    await server.flushAndWait(t);
    await server.ok(`UPDATE ${t} SET body = 'a2x' WHERE id = 2`, { auth: alice });
    const read = (id: number, auth: { user: string; password: string }) => server.rows(`SELECT body FROM ${t} WHERE id = ${id}`, { auth });
    assert.deepEqual(await read(1, alice), [{ body: 'a1' }]);
    assert.deepEqual(await read(1, bob), [{ body: 'b1' }]);
    assert.deepEqual(await read(2, alice), [{ body: 'a2x' }]);
    assert.deepEqual(await read(2, bob), []);
    assert.deepEqual(await read(3, alice), []);
    assert.deepEqual(await read(3, bob), [{ body: 'b3' }]);
  });

  it('cold markers without cells (hand-overs before decision 0014) are read from the segments', async () => {
    const t = 'cr.markers';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, body TEXT)`);
    await server.ok(`INSERT INTO ${t} SELECT i, 'm' || i FROM range(1, 41) AS r(i)`);
    await server.flushAndWait(t);
    await server.ok(`INSERT INTO ${t} SELECT i, 'n' || i FROM range(41, 81) AS r(i)`);
    await server.ok(`UPDATE ${t} SET body = 'u5' WHERE id = 5`);
    await server.flushAndWait(t);
    await server.ok(`DELETE FROM ${t} WHERE id = 6`);
    const expected = await server.rows(`SELECT * FROM ${t} ORDER BY id`);
    const [{ table_id: tableId }] = await server.rows(`SELECT table_id FROM system.tables WHERE namespace_id = 'cr' AND table_name = 'markers'`) as [{ table_id: string }];
    // Rewrite every flushed index entry as a bare cold marker, as the hand-over wrote them before the watermark.
    assert.equal(await server.stop(), 0);
    const hot = await HotStore.open(join(server.dataDir, 'rocksdb'), 'process');
    const entries = (await hot.scanIndex(idBodyTable(Number(tableId), 'SHARED', 'cr', 'markers'), '', hot.db)).filter((e) => e.row.cold === true);
    assert.equal(entries.length, 79, 'flushed entries (id 6 is hot: deleted after the flush)');
    const batch = hot.db.write({ capacity: entries.length, autoDestroy: true });
    for (const e of entries) batch.tryPut(e.key, encodeIndexValue(e.row.seq, encodeColdMarker(e.row.schemaVersion, e.row.deleted)));
    await batch.flush();
    await hot.close();
    await server.launch();
    for (const id of range(0, 82)) {
      const point = await server.rows(`SELECT * FROM ${t} WHERE id = $1`, { params: [id] });
      assert.deepEqual(point, expected.filter((r) => Number(r.id) === id), `id ${id}`);
    }
    assert.deepEqual(await server.rows(`SELECT * FROM ${t} ORDER BY id`), expected);
  });
});
