/**
 * The hot mirror's first load of a partition streams the hot rows into DuckDB while writes go on
 * (decision 0016): versions committed during the scan are laid over the scanned rows by `_seq`, so
 * after the load every insert, update and delete is visible exactly once, whatever the interleaving.
 * A queried partition that takes more than 65,536 writes before its next query applies them as they
 * come (the mirror's drain) instead of holding them: the next query sees each write exactly once too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer } from './harness.js';

const ROWS = 20_000;

describe('hot mirror load under concurrent writes', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE ml');
  });
  after(async () => {
    await server.dispose();
  });

  for (const kind of ['SHARED', 'USER']) {
    it(`${kind}: inserts, updates and deletes committed during the first load are all in the mirror`, async () => {
      const table = `ml.t_${kind.toLowerCase()}`;
      await server.ok(`CREATE ${kind} TABLE ${table} (id BIGINT PRIMARY KEY, v INT) WITH (FLUSH_POLICY = 'rows:100000000')`); // hot only
      for (let from = 0; from < ROWS; from += 1000) {
        const values = Array.from({ length: 1000 }, (_, i) => `(${from + i}, 1)`).join(',');
        await server.ok(`INSERT INTO ${table} (id, v) VALUES ${values}`);
      }
      // The first query loads the mirror; one writer runs alongside it until it answers (at least 100
      // rounds), so writes commit before, during and after the load's scan.
      let loaded = false;
      const load = server.rows(`SELECT count(*) AS c FROM ${table}`).finally(() => { loaded = true; });
      let rounds = 0;
      for (; rounds < 130 && (rounds < 100 || !loaded); rounds++) {
        await server.ok(`UPDATE ${table} SET v = 10 WHERE id = $1`, { params: [rounds * 150] });
        await server.ok(`INSERT INTO ${table} (id, v) VALUES ($1, 5)`, { params: [ROWS + rounds] });
        await server.ok(`DELETE FROM ${table} WHERE id = $1`, { params: [rounds * 150 + 1] });
      }
      const [first] = await load;
      const c = Number(first!.c);
      assert.ok(c >= ROWS - rounds && c <= ROWS + rounds, `count during the load: ${c}`);
      // As many inserted as deleted; sum: updates 1 → 10, inserts of 5, deletes of 1.
      const [total] = await server.rows(`SELECT count(*) AS c, sum(v) AS s FROM ${table}`);
      assert.deepEqual({ c: Number(total!.c), s: Number(total!.s) }, { c: ROWS, s: ROWS + rounds * 9 + rounds * 5 - rounds });
      // Every key once: no version of a changed key is left beside its newer one.
      assert.deepEqual(await server.rows(`SELECT count(*) AS c FROM (SELECT id FROM ${table} GROUP BY id HAVING count(*) > 1)`), [{ c: '0' }]);
      assert.deepEqual(await server.rows(`SELECT v FROM ${table} WHERE id = 150`), [{ v: 10 }]);
      assert.deepEqual(await server.rows(`SELECT count(*) AS c FROM ${table} WHERE id = 151`), [{ c: '0' }]);
    });
  }

  it('a queried partition applies a burst of writes as it comes; the next query sees each once', async () => {
    const table = 'ml.burst';
    await server.ok(`CREATE SHARED TABLE ${table} (id BIGINT PRIMARY KEY, v INT) WITH (FLUSH_POLICY = 'rows:100000000')`);
    assert.deepEqual(await server.rows(`SELECT count(*) AS c FROM ${table}`), [{ c: '0' }]); // the mirror exists from here
    const burst = 70_000; // past the 65,536 pending versions that start a drain
    let next = 0;
    await Promise.all([0, 1].map(async () => {
      while (next < burst) {
        const from = next;
        next += 1000;
        await server.ok(`INSERT INTO ${table} (id, v) VALUES ${Array.from({ length: 1000 }, (_, i) => `(${from + i}, 1)`).join(',')}`);
      }
    }));
    // Updates and deletes of keys the drain has probably applied already, then one more insert.
    await server.ok(`UPDATE ${table} SET v = 3 WHERE id < 100`);
    await server.ok(`DELETE FROM ${table} WHERE id >= 100 AND id < 150`);
    await server.ok(`INSERT INTO ${table} (id, v) VALUES (${burst}, 7)`);
    const [total] = await server.rows(`SELECT count(*) AS c, sum(v) AS s FROM ${table}`);
    assert.deepEqual({ c: Number(total!.c), s: Number(total!.s) }, { c: burst - 50 + 1, s: burst + 100 * 2 - 50 + 7 });
    assert.deepEqual(await server.rows(`SELECT count(*) AS c FROM (SELECT id FROM ${table} GROUP BY id HAVING count(*) > 1)`), [{ c: '0' }]);
  });
});
