/**
 * Transactions and concurrent writers over HTTP: BEGIN/COMMIT is atomic within one request,
 * ROLLBACK discards, an unclosed BEGIN rolls back, a failing statement inside a transaction discards
 * everything before it, reads inside a transaction see its own writes, and parallel requests
 * (inserts, updates of the same and of different rows, transactions, duplicate keys) never lose an
 * acknowledged write nor keep a refused one.
 * Not covered here: crash durability of acknowledged writes (durability.test.ts), isolation between
 * users (auth.test.ts), transactions spanning several requests (not part of the protocol).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, assertError, type Auth, type SqlResponse } from './harness.js';

const PARALLEL = 20;

describe('transactions', () => {
  let server: TestServer;
  let alice: Auth;

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('tx_alice');
    await server.ok('CREATE NAMESPACE tx');
  });
  after(async () => {
    await server.dispose();
  });

  const ids = async (table: string, auth?: Auth): Promise<unknown[]> =>
    (await server.rows(`SELECT id FROM ${table} ORDER BY id`, auth === undefined ? {} : { auth })).map((r) => r.id);

  describe('within one request', () => {
    it('BEGIN ... COMMIT applies every statement, with one result per statement', async () => {
      await server.ok('CREATE TABLE tx.commit (id INT PRIMARY KEY, v INT)');
      const results = await server.ok('BEGIN; INSERT INTO tx.commit VALUES (1, 1); INSERT INTO tx.commit VALUES (2, 2); UPDATE tx.commit SET v = v + 10; DELETE FROM tx.commit WHERE id = 1; COMMIT');
      assert.deepEqual(results.map((r) => r.message), [
        'Transaction started', 'Inserted 1 row(s)', 'Inserted 1 row(s)', 'Updated 2 row(s)', 'Deleted 1 row(s)', 'Transaction committed',
      ]);
      assert.deepEqual(await server.rows('SELECT id, v FROM tx.commit'), [{ id: 2, v: 12 }]);
      assert.deepEqual(await server.rows('SELECT id FROM tx.commit WHERE _deleted = true'), []);
    });

    it('accepts START TRANSACTION, BEGIN TRANSACTION, COMMIT WORK and END', async () => {
      await server.ok('CREATE TABLE tx.words (id INT PRIMARY KEY)');
      await server.ok('START TRANSACTION; INSERT INTO tx.words VALUES (1); COMMIT WORK');
      await server.ok('BEGIN TRANSACTION; INSERT INTO tx.words VALUES (2); END');
      await server.ok('begin; insert into tx.words values (3); commit;');
      assert.deepEqual(await ids('tx.words'), [1, 2, 3]);
    });

    it('ROLLBACK discards inserts, updates and deletes', async () => {
      await server.ok('CREATE TABLE tx.rb (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO tx.rb VALUES (1, 'keep'), (2, 'keep')");
      assert.equal((await server.rows('SELECT id FROM tx.rb')).length, 2);
      const results = await server.ok("BEGIN; INSERT INTO tx.rb VALUES (3, 'new'); UPDATE tx.rb SET v = 'changed' WHERE id = 1; DELETE FROM tx.rb WHERE id = 2; ROLLBACK");
      assert.equal(results[results.length - 1]!.message, 'Transaction rolled back');
      assert.deepEqual(await server.rows('SELECT id, v FROM tx.rb ORDER BY id'), [{ id: 1, v: 'keep' }, { id: 2, v: 'keep' }]);
      assert.deepEqual(await server.rows('SELECT id FROM tx.rb WHERE _deleted = true'), []);
    });

    it('statements after ROLLBACK in the same request run on their own', async () => {
      await server.ok('CREATE TABLE tx.after_rb (id INT PRIMARY KEY)');
      await server.ok('BEGIN; INSERT INTO tx.after_rb VALUES (1); ROLLBACK; INSERT INTO tx.after_rb VALUES (2)');
      assert.deepEqual(await ids('tx.after_rb'), [2]);
    });

    it('an unclosed BEGIN rolls back and fails the request (400), so no client believes the rows were saved', async () => {
      await server.ok('CREATE TABLE tx.unclosed (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO tx.unclosed VALUES (1, 'before')");
      assert.deepEqual(await ids('tx.unclosed'), [1]);
      const res = await server.sql("BEGIN; INSERT INTO tx.unclosed VALUES (2, 'x'); UPDATE tx.unclosed SET v = 'after' WHERE id = 1; SELECT count(*) AS c FROM tx.unclosed");
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /^Request completed with an open explicit transaction; rolled back automatically$/);
      const single = await server.sql("BEGIN; INSERT INTO tx.unclosed VALUES (3, 'y')");
      assertError(single, 400, 'SQL_EXECUTION_ERROR', /open explicit transaction/);
      assert.deepEqual(await server.rows('SELECT id, v FROM tx.unclosed ORDER BY id'), [{ id: 1, v: 'before' }]);
      // Statements before the BEGIN stay committed, as in any batch that fails part way.
      assertError(await server.sql("INSERT INTO tx.unclosed VALUES (4, 'kept'); BEGIN; DELETE FROM tx.unclosed"), 400, 'SQL_EXECUTION_ERROR');
      assert.deepEqual(await ids('tx.unclosed'), [1, 4]);
      // A later request starts clean.
      await server.ok("INSERT INTO tx.unclosed VALUES (2, 'later')");
      assert.deepEqual(await ids('tx.unclosed'), [1, 2, 4]);
    });

    it('a failing statement inside a transaction discards everything before it', async () => {
      await server.ok('CREATE TABLE tx.fail (id INT PRIMARY KEY, n INT, s TEXT NOT NULL)');
      await server.ok("INSERT INTO tx.fail VALUES (1, 1, 'orig')");
      assert.deepEqual(await ids('tx.fail'), [1]);
      const cases: Array<[string, RegExp]> = [
        ["BEGIN; INSERT INTO tx.fail VALUES (2, 2, 'a'); UPDATE tx.fail SET s = 'x' WHERE id = 1; INSERT INTO tx.fail VALUES (1, 9, 'dup'); COMMIT", /^Statement 4 failed: .*[Dd]uplicate/],
        ["BEGIN; INSERT INTO tx.fail VALUES (3, 3, 'b'); UPDATE tx.fail SET n = 'abc' WHERE id = 1; COMMIT", /^Statement 3 failed: .*'n'/],
        ["BEGIN; DELETE FROM tx.fail WHERE id = 1; INSERT INTO tx.fail VALUES (4, 4, NULL); COMMIT", /^Statement 3 failed: .*'s'/],
        ["BEGIN; INSERT INTO tx.fail VALUES (5, 5, 'c'); SELECT * FROM tx.missing; COMMIT", /^Statement 3 failed: .*tx\.missing/],
        ["BEGIN; INSERT INTO tx.fail VALUES (6, 6, 'd'); CREATE NAMESPACE tx_in_tx; COMMIT", /^Statement 3 failed: /],
        ["BEGIN; INSERT INTO tx.fail VALUES (7, 7, 'e'); BEGIN; COMMIT", /^Statement 3 failed: /],
      ];
      for (const [sql, message] of cases) {
        const res = await server.sql(sql);
        assert.equal(res.status, 400, `${sql}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.status, 'error');
        assert.match(res.body.error!.message, message, sql);
      }
      assert.deepEqual(await server.rows('SELECT id, n, s FROM tx.fail ORDER BY id'), [{ id: 1, n: 1, s: 'orig' }]);
      assert.deepEqual(await server.rows('SELECT id FROM tx.fail WHERE _deleted = true'), []);
      assert.ok(!(await server.rows('SHOW NAMESPACES')).some((r) => r.namespace_id === 'tx_in_tx'));
    });

    it('a permission error inside a transaction discards everything before it', async () => {
      await server.ok('CREATE USER TABLE tx.mine (id INT PRIMARY KEY)');
      await server.ok('CREATE SHARED TABLE tx.locked (id INT PRIMARY KEY)');
      const res = await server.sql('BEGIN; INSERT INTO tx.mine VALUES (1); INSERT INTO tx.locked VALUES (1); COMMIT', { auth: alice });
      assertError(res, 403, 'PERMISSION_DENIED', /^Statement 3 failed: /);
      assert.deepEqual(await ids('tx.mine', alice), []);
    });

    it('a transaction over several tables is all or nothing', async () => {
      await server.ok('CREATE TABLE tx.orders (id INT PRIMARY KEY, total INT); CREATE TABLE tx.lines (id INT PRIMARY KEY, order_id INT)');
      await server.ok('BEGIN; INSERT INTO tx.orders VALUES (1, 10); INSERT INTO tx.lines VALUES (1, 1), (2, 1); COMMIT');
      const res = await server.sql('BEGIN; INSERT INTO tx.orders VALUES (2, 20); INSERT INTO tx.lines VALUES (3, 2), (1, 2); COMMIT');
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /^Statement 3 failed: .*[Dd]uplicate/);
      assert.deepEqual(await ids('tx.orders'), [1]);
      assert.deepEqual(await ids('tx.lines'), [1, 2]);
    });

    it('COMMIT or ROLLBACK without BEGIN fails', async () => {
      assertError(await server.sql('COMMIT'), 400, 'SQL_EXECUTION_ERROR', /COMMIT/);
      assertError(await server.sql('ROLLBACK'), 400, 'SQL_EXECUTION_ERROR', /ROLLBACK/);
    });
  });

  describe('reads inside a transaction', () => {
    it('see the transaction\'s own inserts, updates and deletes on every read path', async () => {
      await server.ok('CREATE TABLE tx.own (id INT PRIMARY KEY, v INT)');
      await server.ok('INSERT INTO tx.own VALUES (1, 1), (2, 2)');
      const results = await server.ok(`BEGIN;
        INSERT INTO tx.own VALUES (3, 3);
        SELECT v FROM tx.own WHERE id = 3;
        UPDATE tx.own SET v = v * 100 WHERE id >= 2;
        SELECT id, v FROM tx.own ORDER BY id;
        DELETE FROM tx.own WHERE id = 1;
        SELECT count(*) AS c, sum(v) AS s FROM tx.own;
        SELECT v FROM tx.own WHERE id = 1;
        SELECT id FROM tx.own WHERE _deleted = true;
        INSERT INTO tx.own VALUES (1, 42);
        SELECT v FROM tx.own WHERE id = 1;
        SELECT a.id, b.v FROM tx.own a JOIN tx.own b ON a.id = b.id ORDER BY a.id;
        COMMIT`);
      assert.deepEqual(results[2]!.rows, [[3]]);
      assert.deepEqual(results[4]!.rows, [[1, 1], [2, 200], [3, 300]]);
      assert.deepEqual(results[6]!.rows, [['2', '500']]);
      assert.deepEqual(results[7]!.rows, []);
      assert.deepEqual(results[8]!.rows, [[1]]);
      assert.deepEqual(results[10]!.rows, [[42]]);
      assert.deepEqual(results[11]!.rows, [[1, 42], [2, 200], [3, 300]]);
      assert.deepEqual(await server.rows('SELECT id, v FROM tx.own ORDER BY id'), [{ id: 1, v: 42 }, { id: 2, v: 200 }, { id: 3, v: 300 }]);
    });

    it('INSERT ... SELECT inside a transaction reads the transaction\'s rows', async () => {
      await server.ok('CREATE TABLE tx.src (id INT PRIMARY KEY); CREATE TABLE tx.dst (id INT PRIMARY KEY)');
      await server.ok('BEGIN; INSERT INTO tx.src VALUES (1), (2); INSERT INTO tx.dst SELECT id * 10 FROM tx.src; COMMIT');
      assert.deepEqual(await ids('tx.dst'), [10, 20]);
    });

    it('a key inserted twice in one transaction is a duplicate, in one statement or two', async () => {
      await server.ok('CREATE TABLE tx.dupe (id INT PRIMARY KEY, v INT)');
      assertError(await server.sql('BEGIN; INSERT INTO tx.dupe VALUES (1, 1); INSERT INTO tx.dupe VALUES (1, 2); COMMIT'), 400, 'SQL_EXECUTION_ERROR', /^Statement 3 failed: .*[Dd]uplicate/);
      assertError(await server.sql('BEGIN; INSERT INTO tx.dupe VALUES (2, 1), (2, 2); COMMIT'), 400, 'SQL_EXECUTION_ERROR', /^Statement 2 failed: .*[Dd]uplicate/);
      assert.deepEqual(await server.rows('SELECT id, v FROM tx.dupe'), []);
    });

    it('a USER-table transaction stays in the caller\'s partition, also through EXECUTE AS', async () => {
      await server.ok('CREATE USER TABLE tx.notes (id INT PRIMARY KEY, body TEXT)');
      await server.ok("BEGIN; INSERT INTO tx.notes VALUES (1, 'mine'); SELECT count(*) FROM tx.notes; COMMIT", { auth: alice });
      await server.ok("BEGIN; EXECUTE AS USER 'tx_alice' (INSERT INTO tx.notes VALUES (2, 'via root')); COMMIT");
      assert.deepEqual(await server.rows('SELECT id, body FROM tx.notes ORDER BY id', { auth: alice }), [{ id: 1, body: 'mine' }, { id: 2, body: 'via root' }]);
      assert.deepEqual(await server.rows('SELECT id FROM tx.notes'), []);
    });
  });

  describe('concurrent writers', () => {
    const parallel = async (make: (i: number) => { sql: string; params?: unknown[]; auth?: Auth }): Promise<Array<{ status: number; body: SqlResponse }>> =>
      Promise.all(Array.from({ length: PARALLEL }, (_, i) => {
        const { sql, ...opts } = make(i);
        return server.sql(sql, opts);
      }));

    const assertNoServerErrors = (responses: Array<{ status: number; body: SqlResponse }>): void => {
      for (const r of responses) {
        assert.ok(r.status === 200 || (r.status >= 400 && r.status < 500), `unexpected ${r.status}: ${JSON.stringify(r.body)}`);
        if (r.status !== 200) assert.equal(r.body.error!.code, 'SQL_EXECUTION_ERROR', JSON.stringify(r.body));
      }
    };

    it(`${PARALLEL} parallel single-row inserts all succeed and all rows are there`, async () => {
      await server.ok('CREATE TABLE tx.par_ins (id INT PRIMARY KEY, v TEXT)');
      const res = await parallel((i) => ({ sql: 'INSERT INTO tx.par_ins VALUES ($1, $2)', params: [i, `row-${i}`] }));
      assert.deepEqual(res.map((r) => r.status), new Array(PARALLEL).fill(200));
      assert.deepEqual(await ids('tx.par_ins'), Array.from({ length: PARALLEL }, (_, i) => i));
    });

    it(`${PARALLEL} parallel multi-row inserts keep every row`, async () => {
      await server.ok('CREATE TABLE tx.par_multi (id INT PRIMARY KEY, batch INT)');
      const res = await parallel((i) => ({
        sql: `INSERT INTO tx.par_multi VALUES ${Array.from({ length: 10 }, (_, j) => `(${i * 10 + j}, ${i})`).join(', ')}`,
      }));
      assert.deepEqual(res.map((r) => r.status), new Array(PARALLEL).fill(200));
      assert.deepEqual(await server.rows('SELECT count(*) AS c, count(DISTINCT batch) AS b FROM tx.par_multi'), [{ c: String(PARALLEL * 10), b: String(PARALLEL) }]);
    });

    it(`${PARALLEL} parallel increments of one row lose no acknowledged update`, async () => {
      await server.ok('CREATE TABLE tx.counter (id INT PRIMARY KEY, v INT); INSERT INTO tx.counter VALUES (1, 0)');
      const res = await parallel(() => ({ sql: 'UPDATE tx.counter SET v = v + 1 WHERE id = 1' }));
      assertNoServerErrors(res);
      const acknowledged = res.filter((r) => r.status === 200 && r.body.results[0]!.message === 'Updated 1 row(s)').length;
      assert.deepEqual(await server.rows('SELECT v FROM tx.counter WHERE id = 1'), [{ v: acknowledged }]);
    });

    it(`${PARALLEL} parallel increments of one row all succeed (a single statement is retried, not refused)`, async () => {
      await server.ok('CREATE TABLE tx.counter2 (id INT PRIMARY KEY, v INT); INSERT INTO tx.counter2 VALUES (1, 0)');
      const res = await parallel(() => ({ sql: 'UPDATE tx.counter2 SET v = v + 1 WHERE id = 1' }));
      const failures = res.filter((r) => r.status !== 200).map((r) => r.body.error?.message);
      assert.deepEqual(failures, [], `${failures.length} of ${PARALLEL} increments refused`);
      assert.deepEqual(await server.rows('SELECT v FROM tx.counter2 WHERE id = 1'), [{ v: PARALLEL }]);
    });

    it(`${PARALLEL} parallel blind writes to one row all succeed and the row holds one of them`, async () => {
      await server.ok('CREATE TABLE tx.blind (id INT PRIMARY KEY, v INT); INSERT INTO tx.blind VALUES (1, -1)');
      const res = await parallel((i) => ({ sql: 'UPDATE tx.blind SET v = $1 WHERE id = 1', params: [i] }));
      const failures = res.filter((r) => r.status !== 200).map((r) => r.body.error?.message);
      assert.deepEqual(failures, [], `${failures.length} of ${PARALLEL} blind updates refused`);
      const [row] = await server.rows('SELECT v FROM tx.blind WHERE id = 1');
      assert.ok(typeof row!.v === 'number' && row!.v >= 0 && row!.v < PARALLEL);
    });

    it(`${PARALLEL} parallel increments of different rows all succeed`, async () => {
      await server.ok('CREATE TABLE tx.many (id INT PRIMARY KEY, v INT)');
      await server.ok(`INSERT INTO tx.many VALUES ${Array.from({ length: PARALLEL }, (_, i) => `(${i}, ${i})`).join(', ')}`);
      const res = await parallel((i) => ({ sql: 'UPDATE tx.many SET v = v + 1000 WHERE id = $1', params: [i] }));
      assert.deepEqual(res.map((r) => r.status), new Array(PARALLEL).fill(200));
      assert.deepEqual((await server.rows('SELECT v FROM tx.many ORDER BY id')).map((r) => r.v), Array.from({ length: PARALLEL }, (_, i) => i + 1000));
    });

    it(`${PARALLEL} parallel transactions: each one is entirely there or entirely absent`, async () => {
      await server.ok('CREATE TABLE tx.acct (id INT PRIMARY KEY, n INT); INSERT INTO tx.acct VALUES (1, 0)');
      await server.ok('CREATE TABLE tx.log (id INT PRIMARY KEY, who INT)');
      const res = await parallel((i) => ({ sql: `BEGIN; UPDATE tx.acct SET n = n + 1 WHERE id = 1; INSERT INTO tx.log VALUES (${i}, ${i}); COMMIT` }));
      assertNoServerErrors(res);
      const committed = res.flatMap((r, i) => (r.status === 200 ? [i] : []));
      assert.ok(committed.length >= 1, 'at least one transaction commits');
      assert.deepEqual(await ids('tx.log'), committed);
      assert.deepEqual(await server.rows('SELECT n FROM tx.acct WHERE id = 1'), [{ n: committed.length }]);
    });

    it(`${PARALLEL} parallel inserts of the same key: exactly one wins, the rest are duplicates`, async () => {
      await server.ok('CREATE TABLE tx.race (id INT PRIMARY KEY, who INT)');
      const res = await parallel((i) => ({ sql: 'INSERT INTO tx.race VALUES (1, $1)', params: [i] }));
      const winners = res.flatMap((r, i) => (r.status === 200 ? [i] : []));
      assert.equal(winners.length, 1, JSON.stringify(res.map((r) => r.status)));
      for (const r of res) if (r.status !== 200) assertError(r, 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key/);
      assert.deepEqual(await server.rows('SELECT id, who FROM tx.race'), [{ id: 1, who: winners[0] }]);
    });

    it(`${PARALLEL} parallel deletes of one row: exactly one reports it`, async () => {
      await server.ok('CREATE TABLE tx.del_race (id INT PRIMARY KEY); INSERT INTO tx.del_race VALUES (1)');
      const res = await parallel(() => ({ sql: 'DELETE FROM tx.del_race WHERE id = 1' }));
      assertNoServerErrors(res);
      const deleted = res.filter((r) => r.status === 200).map((r) => r.body.results[0]!.row_count);
      assert.equal(deleted.reduce((a, b) => a + b, 0), 1, JSON.stringify(deleted));
      assert.deepEqual(await server.rows('SELECT id FROM tx.del_race WHERE _deleted = true'), [{ id: 1 }]);
    });

    it('parallel writers in different users\' partitions never see each other', async () => {
      await server.ok('CREATE USER TABLE tx.per_user (id INT PRIMARY KEY, owner TEXT)');
      const users: Auth[] = [];
      for (let u = 0; u < 4; u++) users.push(await server.createUser(`tx_user_${u}`));
      const res = await parallel((i) => ({ sql: 'INSERT INTO tx.per_user VALUES ($1, $2)', params: [Math.floor(i / 4), `tx_user_${i % 4}`], auth: users[i % 4]! }));
      assert.deepEqual(res.map((r) => r.status), new Array(PARALLEL).fill(200));
      for (let u = 0; u < 4; u++) {
        const rows = await server.rows('SELECT id, owner FROM tx.per_user ORDER BY id', { auth: users[u]! });
        assert.deepEqual(rows, Array.from({ length: PARALLEL / 4 }, (_, id) => ({ id, owner: `tx_user_${u}` })));
      }
    });

    it('mixed parallel reads and writes: every read sees a consistent count', async () => {
      await server.ok('CREATE TABLE tx.mixed (id INT PRIMARY KEY)');
      const res = await Promise.all(Array.from({ length: PARALLEL * 2 }, (_, i) =>
        i % 2 === 0 ? server.sql('INSERT INTO tx.mixed VALUES ($1)', { params: [i] }) : server.sql('SELECT count(*) AS c FROM tx.mixed')));
      for (const r of res) assert.equal(r.status, 200, JSON.stringify(r.body));
      for (const r of res.filter((_, i) => i % 2 === 1)) {
        const c = Number(r.body.results[0]!.rows![0]![0]);
        assert.ok(c >= 0 && c <= PARALLEL, String(c));
      }
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM tx.mixed'), [{ c: String(PARALLEL) }]);
    });
  });
  it('transactions committing while ALTER TABLE ADD COLUMN runs either commit in one schema or fail as a write conflict; every row stays readable (found by a fuzz: rows of the old width stored under the new version)', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) {
      const t = `tx.alter${attempt}`;
      await server.ok(`CREATE SHARED TABLE ${t} (id INT PRIMARY KEY, v INT)`);
      const requests: Promise<{ status: number; body: { status: string; error?: { message: string } } }>[] = [];
      for (let i = 1; i <= 20; i++) {
        requests.push(server.sql(`BEGIN; INSERT INTO ${t} (id, v) VALUES (${i}, ${i}); UPDATE ${t} SET v = 7 WHERE id = ${i}; COMMIT`));
        if (i === 10) requests.push(server.sql(`ALTER TABLE ${t} ADD COLUMN x INT`));
      }
      const answers = await Promise.all(requests);
      const committed: number[] = [];
      answers.forEach((a, n) => {
        if (a.status === 200) {
          if (n !== 10) committed.push(n < 10 ? n + 1 : n);
          return;
        }
        assert.equal(a.status, 400, JSON.stringify(a.body));
        assert.match(a.body.error!.message, /schema changed/);
      });
      for (let i = 1; i <= 20; i++) {
        const read = await server.sql(`SELECT id, v FROM ${t} WHERE id = ${i}`);
        assert.equal(read.status, 200, `${t} id ${i}: ${JSON.stringify(read.body)}`);
      }
      assert.deepEqual(await server.rows(`SELECT count(*) AS n, min(v) AS lo, max(v) AS hi FROM ${t}`),
        [{ n: String(committed.length), lo: committed.length ? 7 : null, hi: committed.length ? 7 : null }]);
      if (committed.length > 0) await server.flushAndWait(t);
      assert.equal((await server.rows(`SELECT count(*) AS n FROM ${t}`))[0]!.n, String(committed.length), 'after a flush');
    }
  });
});
