/**
 * Data statements over HTTP: INSERT (multi-row, column defaults, the DEFAULT keyword, INSERT ...
 * SELECT), UPDATE (constants, expressions, no-op counting), DELETE with tombstones and `_deleted`,
 * `$n` params (BIGINT params as strings), SELECT (joins, subqueries, CTEs, aggregates, window
 * functions, ORDER BY/LIMIT/OFFSET), primary-key point reads, multi-statement requests, duplicate
 * primary keys and per-user primary-key uniqueness.
 * Not covered here: exact cell encodings of every type (types.test.ts), BEGIN/COMMIT and concurrent
 * writers (transactions.test.ts), access control between users (auth.test.ts), error envelope
 * details and limits (errors.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, assertError, type Auth } from './harness.js';

const SNOWFLAKE_EPOCH_MS = 1704067200000n;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Milliseconds since the Unix epoch encoded in a snowflake (ms since 2024-01-01 above 22 bits). */
function snowflakeMs(id: string): number {
  return Number((BigInt(id) >> 22n) + SNOWFLAKE_EPOCH_MS);
}

function ulidMs(id: string): number {
  let ms = 0;
  for (const ch of id.slice(0, 10)) ms = ms * 32 + CROCKFORD.indexOf(ch);
  return ms;
}

function assertRecent(ms: number, what: string): void {
  assert.ok(Math.abs(ms - Date.now()) < 60_000, `${what}: ${new Date(ms).toISOString()} is not close to now`);
}

describe('DML', () => {
  let server: TestServer;
  let alice: Auth;
  let bob: Auth;

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('dml_alice');
    bob = await server.createUser('dml_bob');
    await server.ok('CREATE NAMESPACE d');
  });
  after(async () => {
    await server.dispose();
  });

  describe('INSERT', () => {
    it('inserts several rows in one statement and reports the count', async () => {
      await server.ok('CREATE TABLE d.multi (id INT PRIMARY KEY, v TEXT)');
      const [res] = await server.ok("INSERT INTO d.multi (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
      assert.deepEqual(res, { row_count: 3, message: 'Inserted 3 row(s)', as_user: 'root' });
      assert.deepEqual(await server.rows('SELECT id, v FROM d.multi ORDER BY id'), [
        { id: 1, v: 'a' }, { id: 2, v: 'b' }, { id: 3, v: 'c' },
      ]);
      // Without a column list the values follow the table's column order.
      await server.ok("INSERT INTO d.multi VALUES (4, 'd')");
      assert.deepEqual(await server.rows('SELECT v FROM d.multi WHERE id = 4'), [{ v: 'd' }]);
    });

    it('refuses a VALUES row whose width does not match the column list, inserting nothing', async () => {
      await server.ok('CREATE TABLE d.width (id INT PRIMARY KEY, v TEXT)');
      assertError(await server.sql('INSERT INTO d.width VALUES (1)'), 400, 'SQL_EXECUTION_ERROR', /2 target column\(s\).*1 value/);
      assertError(await server.sql("INSERT INTO d.width (id, v) VALUES (1, 'x'), (2, 'y', 'z')"), 400, 'SQL_EXECUTION_ERROR', /3 value/);
      assertError(await server.sql('INSERT INTO d.width (id, nope) VALUES (1, 2)'), 400, 'SQL_EXECUTION_ERROR', /'nope'/);
      assert.deepEqual(await server.rows('SELECT id FROM d.width'), []);
    });

    it('fills SNOWFLAKE_ID(), UUID_V7(), ULID(), NOW(), CURRENT_USER() and literal defaults', async () => {
      await server.ok(`CREATE USER TABLE d.defaults (
        id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(),
        u UUID DEFAULT UUID_V7(),
        l TEXT DEFAULT ULID(),
        who TEXT DEFAULT CURRENT_USER(),
        at TIMESTAMP DEFAULT NOW(),
        at2 TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        n INT DEFAULT 7,
        s TEXT DEFAULT 'hi',
        b BOOLEAN DEFAULT true,
        note TEXT
      )`);
      const before = Date.now();
      const [res] = await server.ok("INSERT INTO d.defaults (note) VALUES ('one'), ('two')", { auth: alice });
      assert.equal(res!.message, 'Inserted 2 row(s)');
      const rows = await server.rows('SELECT * FROM d.defaults ORDER BY note', { auth: alice });
      assert.equal(rows.length, 2);
      for (const row of rows) {
        assert.match(row.id as string, /^\d{17,19}$/);
        assertRecent(snowflakeMs(row.id as string), 'SNOWFLAKE_ID()');
        assert.match(row.u as string, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assertRecent(parseInt((row.u as string).replace(/-/g, '').slice(0, 12), 16), 'UUID_V7()');
        assert.match(row.l as string, /^[0-9A-HJKMNP-TV-Z]{26}$/);
        assertRecent(ulidMs(row.l as string), 'ULID()');
        assert.equal(row.who, 'dml_alice');
        assert.equal(typeof row.at, 'number');
        assert.ok((row.at as number) >= (before - 5_000) * 1000 && (row.at as number) <= (Date.now() + 5_000) * 1000, `NOW() = ${String(row.at)} µs`);
        assert.equal(row.at2, row.at);
        assert.equal(row.n, 7);
        assert.equal(row.s, 'hi');
        assert.equal(row.b, true);
      }
      assert.notEqual(rows[0]!.id, rows[1]!.id);
      assert.notEqual(rows[0]!.u, rows[1]!.u);
      assert.notEqual(rows[0]!.l, rows[1]!.l);
      // CURRENT_USER() is whoever inserts.
      await server.ok("INSERT INTO d.defaults (note) VALUES ('bob')", { auth: bob });
      assert.deepEqual(await server.rows('SELECT who, note FROM d.defaults', { auth: bob }), [{ who: 'dml_bob', note: 'bob' }]);
    });

    it('accepts literal defaults for BIGINT and DECIMAL columns', async () => {
      const [res] = await server.ok('CREATE TABLE d.lit_defaults (id INT PRIMARY KEY, big BIGINT DEFAULT 5, price DECIMAL(10,2) DEFAULT 1.5, neg INT DEFAULT -3)');
      assert.equal(res!.message, "Table 'd.lit_defaults' created successfully");
      await server.ok('INSERT INTO d.lit_defaults (id) VALUES (1)');
      assert.deepEqual(await server.rows('SELECT big, price, neg FROM d.lit_defaults'), [{ big: '5', price: '1.50', neg: -3 }]);
    });

    it('uses the column default for the DEFAULT keyword, also for the primary key', async () => {
      await server.ok("CREATE TABLE d.kw (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), n INT DEFAULT 42, s TEXT DEFAULT 'dflt', free TEXT)");
      await server.ok("INSERT INTO d.kw (id, n, s, free) VALUES (DEFAULT, DEFAULT, 'given', DEFAULT), (DEFAULT, 1, DEFAULT, 'x')");
      const rows = await server.rows('SELECT id, n, s, free FROM d.kw ORDER BY n');
      assert.equal(rows.length, 2);
      assert.deepEqual(rows.map((r) => [r.n, r.s, r.free]), [[1, 'dflt', 'x'], [42, 'given', null]]);
      assert.match(rows[0]!.id as string, /^\d+$/);
      assert.notEqual(rows[0]!.id, rows[1]!.id);
      // A column without a default takes NULL for DEFAULT; a NOT NULL one then fails.
      await server.ok('CREATE TABLE d.kw_nn (id INT PRIMARY KEY, must TEXT NOT NULL)');
      assertError(await server.sql('INSERT INTO d.kw_nn (id, must) VALUES (1, DEFAULT)'), 400, 'SQL_EXECUTION_ERROR', /'must'/);
    });

    it('INSERT ... SELECT copies rows, with expressions, from the same or another table', async () => {
      await server.ok('CREATE TABLE d.src (id INT PRIMARY KEY, v TEXT, n INT)');
      await server.ok('CREATE TABLE d.dst (id BIGINT PRIMARY KEY, label TEXT)');
      await server.ok("INSERT INTO d.src VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)");
      const [res] = await server.ok("INSERT INTO d.dst (id, label) SELECT id * 100, v || '-' || CAST(n AS TEXT) FROM d.src WHERE n >= 20");
      assert.deepEqual(res, { row_count: 2, message: 'Inserted 2 row(s)', as_user: 'root' });
      assert.deepEqual(await server.rows('SELECT id, label FROM d.dst ORDER BY id'), [{ id: '200', label: 'b-20' }, { id: '300', label: 'c-30' }]);
      await server.ok("INSERT INTO d.src (id, v, n) SELECT id + 10, upper(v), n + 1 FROM d.src");
      assert.deepEqual(await server.rows('SELECT id, v, n FROM d.src WHERE id > 10 ORDER BY id'), [
        { id: 11, v: 'A', n: 11 }, { id: 12, v: 'B', n: 21 }, { id: 13, v: 'C', n: 31 },
      ]);
      assertError(await server.sql('INSERT INTO d.dst (id, label) SELECT id FROM d.src'), 400, 'SQL_EXECUTION_ERROR', /2 target column/);
      // A SELECT producing a duplicate key fails as a whole.
      assertError(await server.sql("INSERT INTO d.dst (id, label) SELECT 200 + id - id, 'dup' FROM d.src WHERE id = 1"), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key/);
      assert.deepEqual(await server.rows("SELECT count(*) AS c FROM d.dst WHERE label = 'dup'"), [{ c: '0' }]);
    });
  });

  describe('UPDATE', () => {
    before(async () => {
      await server.ok('CREATE TABLE d.upd (id INT PRIMARY KEY, x INT, s TEXT)');
      await server.ok("INSERT INTO d.upd VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 30, 'c')");
    });

    it('sets constants on the matching rows only', async () => {
      const [res] = await server.ok("UPDATE d.upd SET s = 'changed' WHERE id = 2");
      assert.deepEqual(res, { row_count: 1, message: 'Updated 1 row(s)', as_user: 'root' });
      assert.deepEqual(await server.rows('SELECT id, s FROM d.upd ORDER BY id'), [{ id: 1, s: 'a' }, { id: 2, s: 'changed' }, { id: 3, s: 'c' }]);
    });

    it('evaluates expressions over the old row (x = x + 1, several columns)', async () => {
      const [res] = await server.ok("UPDATE d.upd SET x = x + 1, s = s || '!' WHERE x >= 20");
      assert.equal(res!.message, 'Updated 2 row(s)');
      assert.equal(res!.row_count, 2);
      assert.deepEqual(await server.rows('SELECT id, x, s FROM d.upd ORDER BY id'), [
        { id: 1, x: 10, s: 'a' }, { id: 2, x: 21, s: 'changed!' }, { id: 3, x: 31, s: 'c!' },
      ]);
      await server.ok('UPDATE d.upd SET x = x * 2 WHERE id IN (SELECT id FROM d.upd WHERE s = $1)', { params: ['a'] });
      assert.deepEqual(await server.rows('SELECT x FROM d.upd WHERE id = 1'), [{ x: 20 }]);
    });

    it('counts 0 when nothing matches or nothing changes, and leaves _seq alone', async () => {
      const [before] = await server.rows('SELECT _seq FROM d.upd WHERE id = 3');
      const [none] = await server.ok('UPDATE d.upd SET x = 99 WHERE id = 12345');
      assert.deepEqual(none, { row_count: 0, message: 'Updated 0 row(s)', as_user: 'root' });
      const [same] = await server.ok('UPDATE d.upd SET x = x WHERE id = 3');
      assert.deepEqual(same, { row_count: 0, message: 'Updated 0 row(s)', as_user: 'root' });
      const [sameConst] = await server.ok("UPDATE d.upd SET s = 'c!' WHERE id = 3");
      assert.equal(sameConst!.message, 'Updated 0 row(s)');
      const [after] = await server.rows('SELECT _seq FROM d.upd WHERE id = 3');
      assert.equal(after!._seq, before!._seq);
      // A real change appends a new version with a larger _seq.
      await server.ok('UPDATE d.upd SET x = 300 WHERE id = 3');
      const [changed] = await server.rows('SELECT _seq FROM d.upd WHERE id = 3');
      assert.ok(BigInt(changed!._seq as string) > BigInt(before!._seq as string));
    });

    it('refuses to update the primary key or an unknown column', async () => {
      assertError(await server.sql('UPDATE d.upd SET id = 10 WHERE id = 1'), 400, 'SQL_EXECUTION_ERROR', /'id'.*primary key/);
      assertError(await server.sql('UPDATE d.upd SET nope = 1 WHERE id = 1'), 400, 'SQL_EXECUTION_ERROR', /'nope'/);
      assertError(await server.sql("UPDATE d.upd SET x = 'abc' WHERE id = 1"), 400, 'SQL_EXECUTION_ERROR', /'x'/);
      assert.deepEqual(await server.rows('SELECT id, x FROM d.upd WHERE id = 1'), [{ id: 1, x: 20 }]);
    });

    it('SET col = DEFAULT takes the column default (NULL without one)', async () => {
      await server.ok("CREATE TABLE d.upd_dflt (id INT PRIMARY KEY, n INT DEFAULT 42, s TEXT); INSERT INTO d.upd_dflt VALUES (1, 1, 'x'), (2, 2, 'y')");
      const [res] = await server.ok('UPDATE d.upd_dflt SET n = DEFAULT, s = DEFAULT WHERE id = 1');
      assert.equal(res!.message, 'Updated 1 row(s)');
      await server.ok('UPDATE d.upd_dflt SET n = DEFAULT WHERE n > 1');
      assert.deepEqual(await server.rows('SELECT id, n, s FROM d.upd_dflt ORDER BY id'), [{ id: 1, n: 42, s: null }, { id: 2, n: 42, s: 'y' }]);
    });

    it('UPDATE ... FROM and DELETE ... USING join another table', async () => {
      await server.ok("CREATE TABLE d.uf_t (id INT PRIMARY KEY, v TEXT); CREATE TABLE d.uf_s (id INT PRIMARY KEY, v TEXT)");
      await server.ok("INSERT INTO d.uf_t VALUES (1, 'a'), (2, 'b'), (3, 'c'); INSERT INTO d.uf_s VALUES (1, 'A'), (3, 'C')");
      const [upd] = await server.ok('UPDATE d.uf_t SET v = s.v FROM d.uf_s s WHERE s.id = uf_t.id');
      assert.equal(upd!.message, 'Updated 2 row(s)');
      assert.deepEqual(await server.rows('SELECT id, v FROM d.uf_t ORDER BY id'), [{ id: 1, v: 'A' }, { id: 2, v: 'b' }, { id: 3, v: 'C' }]);
      const [del] = await server.ok('DELETE FROM d.uf_t USING d.uf_s s WHERE s.id = uf_t.id');
      assert.equal(del!.message, 'Deleted 2 row(s)');
      assert.deepEqual(await server.rows('SELECT id FROM d.uf_t'), [{ id: 2 }]);
    });

    it('takes $n params in SET and WHERE', async () => {
      const [res] = await server.ok('UPDATE d.upd SET s = $1, x = $2 WHERE id = $3', { params: ['p', 5, 1] });
      assert.equal(res!.message, 'Updated 1 row(s)');
      assert.deepEqual(await server.rows('SELECT s, x FROM d.upd WHERE id = 1'), [{ s: 'p', x: 5 }]);
    });
  });

  describe('DELETE', () => {
    it('deletes matching rows, hides them, and lists their tombstones with WHERE _deleted = true', async () => {
      await server.ok('CREATE TABLE d.del (id INT PRIMARY KEY, room TEXT)');
      await server.ok("INSERT INTO d.del VALUES (1, 'r1'), (2, 'r1'), (3, 'r2')");
      const [res] = await server.ok("DELETE FROM d.del WHERE room = 'r1'");
      assert.deepEqual(res, { row_count: 2, message: 'Deleted 2 row(s)', as_user: 'root' });
      assert.deepEqual(await server.rows('SELECT id FROM d.del'), [{ id: 3 }]);
      assert.deepEqual(await server.rows('SELECT id FROM d.del WHERE id = 1'), []);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM d.del'), [{ c: '1' }]);
      assert.deepEqual(await server.rows('SELECT id, room, _deleted FROM d.del WHERE _deleted = true ORDER BY id'), [
        { id: 1, room: 'r1', _deleted: true }, { id: 2, room: 'r1', _deleted: true },
      ]);
      assert.deepEqual(await server.rows('SELECT id FROM d.del WHERE _deleted = false'), [{ id: 3 }]);
      // Deleting again finds nothing.
      const [again] = await server.ok("DELETE FROM d.del WHERE room = 'r1'");
      assert.deepEqual(again, { row_count: 0, message: 'Deleted 0 row(s)', as_user: 'root' });
      // Updating a deleted row finds nothing either.
      const [upd] = await server.ok("UPDATE d.del SET room = 'x' WHERE id = 1");
      assert.equal(upd!.message, 'Updated 0 row(s)');
    });

    it('a tombstone carries a newer _seq, and the key can be inserted again', async () => {
      await server.ok('CREATE TABLE d.del2 (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO d.del2 VALUES (7, 'first')");
      const [live] = await server.rows('SELECT _seq FROM d.del2 WHERE id = 7');
      await server.ok('DELETE FROM d.del2 WHERE id = 7');
      const [tomb] = await server.rows('SELECT _seq, _deleted FROM d.del2 WHERE _deleted = true');
      assert.equal(tomb!._deleted, true);
      assert.ok(BigInt(tomb!._seq as string) > BigInt(live!._seq as string));
      const [res] = await server.ok("INSERT INTO d.del2 VALUES (7, 'second')");
      assert.equal(res!.message, 'Inserted 1 row(s)');
      assert.deepEqual(await server.rows('SELECT id, v, _deleted FROM d.del2'), [{ id: 7, v: 'second', _deleted: false }]);
      assert.deepEqual(await server.rows('SELECT id FROM d.del2 WHERE _deleted = true'), []);
    });

    it('deletes everything without WHERE, and by subquery or param', async () => {
      await server.ok('CREATE TABLE d.del3 (id INT PRIMARY KEY, n INT)');
      await server.ok('INSERT INTO d.del3 VALUES (1, 1), (2, 2), (3, 3), (4, 4)');
      const [bySub] = await server.ok('DELETE FROM d.del3 WHERE id IN (SELECT id FROM d.del3 WHERE n > 2)');
      assert.equal(bySub!.message, 'Deleted 2 row(s)');
      const [byParam] = await server.ok('DELETE FROM d.del3 WHERE id = $1', { params: [1] });
      assert.equal(byParam!.message, 'Deleted 1 row(s)');
      const [all] = await server.ok('DELETE FROM d.del3');
      assert.equal(all!.message, 'Deleted 1 row(s)');
      assert.deepEqual(await server.rows('SELECT id FROM d.del3'), []);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM d.del3 WHERE _deleted = true'), [{ c: '4' }]);
    });
  });

  describe('params', () => {
    before(async () => {
      await server.ok('CREATE TABLE d.big (id BIGINT PRIMARY KEY, v TEXT, n INT, ok BOOLEAN)');
    });

    it('binds $n in INSERT, including BIGINT values given as strings', async () => {
      await server.ok('INSERT INTO d.big (id, v, n, ok) VALUES ($1, $2, $3, $4)', { params: ['9007199254740993', 'big', 3, true] });
      await server.ok('INSERT INTO d.big (id, v, n, ok) VALUES ($1, $2, $3, $4)', { params: [5, null, null, false] });
      await server.ok('INSERT INTO d.big (id, v) VALUES ($1, $2)', { params: ['-9223372036854775808', 'min'] });
      assert.deepEqual(await server.rows('SELECT id, v, n, ok FROM d.big ORDER BY id'), [
        { id: '-9223372036854775808', v: 'min', n: null, ok: null },
        { id: '5', v: null, n: null, ok: false },
        { id: '9007199254740993', v: 'big', n: 3, ok: true },
      ]);
    });

    it('finds a BIGINT row by a string param, on the point path and the general path', async () => {
      const point = await server.rows('SELECT v FROM d.big WHERE id = $1', { params: ['9007199254740993'] });
      assert.deepEqual(point, [{ v: 'big' }]);
      const general = await server.rows('SELECT v FROM d.big WHERE id >= $1 ORDER BY id', { params: ['9007199254740993'] });
      assert.deepEqual(general, [{ v: 'big' }]);
      const inList = await server.rows('SELECT v FROM d.big WHERE id IN ($1, $2) ORDER BY id', { params: ['9007199254740993', '5'] });
      assert.deepEqual(inList, [{ v: null }, { v: 'big' }]);
      // 9007199254740992 is a different key, even though it is the same JS number.
      assert.deepEqual(await server.rows('SELECT v FROM d.big WHERE id = $1', { params: ['9007199254740992'] }), []);
      const [upd] = await server.ok('UPDATE d.big SET v = $1 WHERE id = $2', { params: ['BIG', '9007199254740993'] });
      assert.equal(upd!.message, 'Updated 1 row(s)');
      assert.deepEqual(await server.rows('SELECT id, v FROM d.big WHERE id = 9007199254740993'), [{ id: '9007199254740993', v: 'BIG' }]);
    });

    it('binds params in plain SELECT expressions', async () => {
      assert.deepEqual(await server.rows('SELECT $1::int + 1 AS x, $2 AS s', { params: [41, 'str'] }), [{ x: '42', s: 'str' }]);
      assert.deepEqual(await server.rows('SELECT CAST($1 AS BIGINT) AS b', { params: ['9007199254740993'] }), [{ b: '9007199254740993' }]);
    });

    it('treats a param as a value, never as SQL', async () => {
      const evil = "x'); DROP TABLE d.big; --";
      await server.ok('INSERT INTO d.big (id, v) VALUES ($1, $2)', { params: [77, evil] });
      assert.deepEqual(await server.rows('SELECT v FROM d.big WHERE id = 77'), [{ v: evil }]);
      assert.deepEqual(await server.rows('SELECT id FROM d.big WHERE v = $1', { params: [evil] }), [{ id: '77' }]);
      assert.equal((await server.rows('SELECT count(*) AS c FROM d.big'))[0]!.c, '4');
    });

    it('fails when a referenced param is missing', async () => {
      const res = await server.sql('SELECT id FROM d.big WHERE id = $1');
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error!.message, /\$1|param/i);
      const res2 = await server.sql('INSERT INTO d.big (id, v) VALUES ($1, $2)', { params: [88] });
      assert.equal(res2.status, 400, JSON.stringify(res2.body));
      assert.match(res2.body.error!.message, /\$2/);
      assert.deepEqual(await server.rows('SELECT id FROM d.big WHERE id = 88'), []);
    });
  });

  describe('SELECT', () => {
    before(async () => {
      await server.ok('CREATE TABLE d.emp (id INT PRIMARY KEY, name TEXT, dept TEXT, salary INT, boss INT)');
      await server.ok('CREATE TABLE d.dept (code TEXT PRIMARY KEY, title TEXT)');
      await server.ok(`INSERT INTO d.emp VALUES
        (1, 'ann', 'eng', 100, NULL), (2, 'bo', 'eng', 90, 1), (3, 'cy', 'ops', 80, 1),
        (4, 'di', 'ops', 70, 3), (5, 'ed', 'eng', 90, 2), (6, 'fay', NULL, 50, 1)`);
      await server.ok("INSERT INTO d.dept VALUES ('eng', 'Engineering'), ('ops', 'Operations'), ('hr', 'People')");
    });

    it('joins: inner, left, self-join and join with aggregate', async () => {
      assert.deepEqual(await server.rows('SELECT e.name, d.title FROM d.emp e JOIN d.dept d ON d.code = e.dept WHERE e.salary >= 90 ORDER BY e.id'), [
        { name: 'ann', title: 'Engineering' }, { name: 'bo', title: 'Engineering' }, { name: 'ed', title: 'Engineering' },
      ]);
      assert.deepEqual(await server.rows('SELECT d.code, count(e.id) AS n FROM d.dept d LEFT JOIN d.emp e ON e.dept = d.code GROUP BY d.code ORDER BY d.code'), [
        { code: 'eng', n: '3' }, { code: 'hr', n: '0' }, { code: 'ops', n: '2' },
      ]);
      assert.deepEqual(await server.rows('SELECT e.name, b.name AS boss FROM d.emp e LEFT JOIN d.emp b ON b.id = e.boss ORDER BY e.id LIMIT 3'), [
        { name: 'ann', boss: null }, { name: 'bo', boss: 'ann' }, { name: 'cy', boss: 'ann' },
      ]);
    });

    it('subqueries: IN, scalar, correlated EXISTS, derived table', async () => {
      assert.deepEqual(await server.rows("SELECT name FROM d.emp WHERE dept IN (SELECT code FROM d.dept WHERE title LIKE 'O%') ORDER BY name"), [
        { name: 'cy' }, { name: 'di' },
      ]);
      assert.deepEqual(await server.rows('SELECT name FROM d.emp WHERE salary = (SELECT max(salary) FROM d.emp)'), [{ name: 'ann' }]);
      assert.deepEqual(await server.rows('SELECT b.name FROM d.emp b WHERE EXISTS (SELECT 1 FROM d.emp e WHERE e.boss = b.id) ORDER BY b.id'), [
        { name: 'ann' }, { name: 'bo' }, { name: 'cy' },
      ]);
      assert.deepEqual(await server.rows('SELECT t.dept, t.total FROM (SELECT dept, sum(salary) AS total FROM d.emp GROUP BY dept) t WHERE t.total > 100 ORDER BY t.dept'), [
        { dept: 'eng', total: '280' }, { dept: 'ops', total: '150' },
      ]);
    });

    it('CTEs, several and chained', async () => {
      const rows = await server.rows(`WITH eng AS (SELECT * FROM d.emp WHERE dept = 'eng'),
        rich AS (SELECT name, salary FROM eng WHERE salary > 90)
        SELECT name, salary FROM rich ORDER BY name`);
      assert.deepEqual(rows, [{ name: 'ann', salary: 100 }]);
      assert.deepEqual(await server.rows('WITH c AS (SELECT count(*) AS n FROM d.emp) SELECT n FROM c'), [{ n: '6' }]);
    });

    it('aggregates with GROUP BY and HAVING', async () => {
      const rows = await server.rows(`SELECT dept, count(*) AS n, sum(salary) AS total, min(salary) AS lo, max(salary) AS hi, avg(salary) AS mean
        FROM d.emp WHERE dept IS NOT NULL GROUP BY dept HAVING count(*) > 1 ORDER BY dept`);
      assert.deepEqual(rows, [
        { dept: 'eng', n: '3', total: '280', lo: 90, hi: 100, mean: 280 / 3 },
        { dept: 'ops', n: '2', total: '150', lo: 70, hi: 80, mean: 75 },
      ]);
      assert.deepEqual(await server.rows('SELECT count(*) AS n, count(dept) AS with_dept, count(DISTINCT dept) AS depts FROM d.emp'), [
        { n: '6', with_dept: '5', depts: '2' },
      ]);
      const [res] = await server.ok('SELECT count(*) FROM d.emp');
      assert.deepEqual(res!.schema, [{ name: 'count', data_type: 'BigInt', index: 0 }]);
      assert.deepEqual(res!.rows, [['6']]);
    });

    it('window functions', async () => {
      const rows = await server.rows(`SELECT id,
          row_number() OVER (ORDER BY salary DESC, id) AS rn,
          rank() OVER (PARTITION BY dept ORDER BY salary DESC) AS rk,
          sum(salary) OVER (PARTITION BY dept) AS dept_total,
          lag(name) OVER (ORDER BY id) AS prev
        FROM d.emp WHERE dept IS NOT NULL ORDER BY id`);
      assert.deepEqual(rows, [
        { id: 1, rn: '1', rk: '1', dept_total: '280', prev: null },
        { id: 2, rn: '2', rk: '2', dept_total: '280', prev: 'ann' },
        { id: 3, rn: '4', rk: '1', dept_total: '150', prev: 'bo' },
        { id: 4, rn: '5', rk: '2', dept_total: '150', prev: 'cy' },
        { id: 5, rn: '3', rk: '2', dept_total: '280', prev: 'di' },
      ]);
    });

    it('ORDER BY (several keys, DESC, NULLS), LIMIT and OFFSET, DISTINCT, UNION', async () => {
      assert.deepEqual((await server.rows('SELECT id FROM d.emp ORDER BY salary DESC, id DESC')).map((r) => r.id), [1, 5, 2, 3, 4, 6]);
      assert.deepEqual((await server.rows('SELECT id FROM d.emp ORDER BY dept NULLS FIRST, id')).map((r) => r.id), [6, 1, 2, 5, 3, 4]);
      assert.deepEqual((await server.rows('SELECT id FROM d.emp ORDER BY id LIMIT 2 OFFSET 3')).map((r) => r.id), [4, 5]);
      assert.deepEqual((await server.rows('SELECT id FROM d.emp ORDER BY id OFFSET 5')).map((r) => r.id), [6]);
      assert.deepEqual((await server.rows('SELECT id FROM d.emp ORDER BY id LIMIT 0')), []);
      assert.deepEqual((await server.rows('SELECT DISTINCT dept FROM d.emp WHERE dept IS NOT NULL ORDER BY dept')).map((r) => r.dept), ['eng', 'ops']);
      assert.deepEqual((await server.rows("SELECT name FROM d.emp WHERE id = 1 UNION ALL SELECT title FROM d.dept WHERE code = 'hr' ORDER BY name")).map((r) => r.name), ['People', 'ann']);
      assert.deepEqual((await server.rows('SELECT 1 AS one, 2 + 3 AS five')), [{ one: '1', five: '5' }]);
    });

    it('LIKE with an ESCAPE clause', async () => {
      await server.ok("CREATE TABLE d.pct (id INT PRIMARY KEY, s TEXT); INSERT INTO d.pct VALUES (1, '100%'), (2, '100x')");
      assert.deepEqual(await server.rows("SELECT id FROM d.pct WHERE s LIKE '100!%' ESCAPE '!'"), [{ id: 1 }]);
    });

    it('returns system columns last in SELECT *, with _seq increasing per write', async () => {
      const [res] = await server.ok('SELECT * FROM d.dept ORDER BY code');
      assert.deepEqual(res!.schema!.map((f) => f.name), ['code', 'title', '_seq', '_deleted']);
      assert.deepEqual(res!.schema!.slice(2).map((f) => f.data_type), ['BigInt', 'Boolean']);
      for (const row of res!.rows!) {
        assert.match(row[2] as string, /^\d+$/);
        assertRecent(snowflakeMs(row[2] as string), '_seq');
        assert.equal(row[3], false);
      }
      await server.ok("INSERT INTO d.dept VALUES ('zz', 'later')");
      const seqs = await server.rows('SELECT code, _seq FROM d.dept ORDER BY _seq');
      assert.equal(seqs[seqs.length - 1]!.code, 'zz');
      assert.ok(BigInt(seqs[seqs.length - 1]!._seq as string) > BigInt(seqs[0]!._seq as string));
    });
  });

  describe('primary-key point selects', () => {
    before(async () => {
      await server.ok('CREATE TABLE d.pk (id BIGINT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO d.pk VALUES (5, 'five'), (6, 'six'), (9007199254740993, 'huge')");
    });

    it('finds a row by WHERE id = <literal>, either side, qualified or aliased', async () => {
      assert.deepEqual(await server.rows('SELECT * FROM d.pk WHERE id = 5').then((r) => r.map((x) => [x.id, x.v, x._deleted])), [['5', 'five', false]]);
      assert.deepEqual(await server.rows('SELECT v FROM d.pk WHERE 6 = id'), [{ v: 'six' }]);
      assert.deepEqual(await server.rows('SELECT pk.v FROM d.pk WHERE pk.id = 5'), [{ v: 'five' }]);
      assert.deepEqual(await server.rows('SELECT p.v AS value FROM d.pk AS p WHERE p.id = 5'), [{ value: 'five' }]);
      assert.deepEqual(await server.rows('SELECT v FROM d.pk WHERE id = 9007199254740993'), [{ v: 'huge' }]);
    });

    it('finds a row by WHERE id = $1 (number or string)', async () => {
      assert.deepEqual(await server.rows('SELECT v FROM d.pk WHERE id = $1', { params: [5] }), [{ v: 'five' }]);
      assert.deepEqual(await server.rows('SELECT v FROM d.pk WHERE id = $1', { params: ['6'] }), [{ v: 'six' }]);
      assert.deepEqual(await server.rows('SELECT v FROM d.pk WHERE id = $1', { params: ['9007199254740993'] }), [{ v: 'huge' }]);
    });

    it('returns an empty result with the right schema for a missing or deleted key', async () => {
      const [missing] = await server.ok('SELECT id, v FROM d.pk WHERE id = 404');
      assert.deepEqual(missing, {
        schema: [{ name: 'id', data_type: 'BigInt', index: 0 }, { name: 'v', data_type: 'Text', index: 1 }],
        rows: [], row_count: 0, as_user: 'root',
      });
      await server.ok("INSERT INTO d.pk VALUES (7, 'gone'); DELETE FROM d.pk WHERE id = 7");
      assert.deepEqual(await server.rows('SELECT v FROM d.pk WHERE id = 7'), []);
    });

    it('gives the same answer as the general read path', async () => {
      const point = await server.ok('SELECT * FROM d.pk WHERE id = 5');
      const general = await server.ok('SELECT * FROM d.pk WHERE id = 5 ORDER BY id');
      assert.deepEqual(point, general);
    });

    it('fails for an unknown column with a message naming it', async () => {
      assertError(await server.sql('SELECT nope FROM d.pk WHERE id = 5'), 400, 'SQL_EXECUTION_ERROR', /nope/);
    });
  });

  describe('namespace_id', () => {
    it('resolves unqualified names in every statement, also when the same SQL text is sent for another namespace', async () => {
      await server.ok('CREATE NAMESPACE d_one; CREATE NAMESPACE d_two');
      await server.ok('CREATE TABLE d_one.items (id INT PRIMARY KEY, v TEXT); CREATE TABLE d_two.items (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO items VALUES (1, 'one')", { namespace: 'd_one' });
      await server.ok("INSERT INTO items VALUES (1, 'two'), (2, 'two')", { namespace: 'd_two' });
      const count = 'SELECT count(*) AS c FROM items';
      assert.deepEqual(await server.rows(count, { namespace: 'd_one' }), [{ c: '1' }]);
      assert.deepEqual(await server.rows(count, { namespace: 'd_two' }), [{ c: '2' }]);
      assert.deepEqual(await server.rows(count, { namespace: 'd_one' }), [{ c: '1' }]);
      await server.ok("UPDATE items SET v = 'ONE' WHERE id = 1", { namespace: 'd_one' });
      await server.ok('DELETE FROM items WHERE id = 2', { namespace: 'd_two' });
      assert.deepEqual(await server.rows('SELECT v FROM items WHERE id = 1', { namespace: 'd_one' }), [{ v: 'ONE' }]);
      assert.deepEqual(await server.rows('SELECT id, v FROM d_two.items ORDER BY id'), [{ id: 1, v: 'two' }]);
      // A qualified name ignores namespace_id.
      assert.deepEqual(await server.rows('SELECT v FROM d_two.items WHERE id = 1', { namespace: 'd_one' }), [{ v: 'two' }]);
      assertError(await server.sql('SELECT * FROM items'), 400, 'SQL_EXECUTION_ERROR', /'default\.items' does not exist/);
    });
  });

  describe('multi-statement requests', () => {
    it('runs statements in order and returns one result per statement', async () => {
      await server.ok('CREATE TABLE d.ms (id INT PRIMARY KEY, v TEXT)');
      const results = await server.ok("INSERT INTO d.ms VALUES (1, 'a;b'); SELECT v FROM d.ms WHERE id = 1; UPDATE d.ms SET v = 'c' WHERE id = 1; SELECT v FROM d.ms; DELETE FROM d.ms");
      assert.equal(results.length, 5);
      assert.equal(results[0]!.message, 'Inserted 1 row(s)');
      assert.deepEqual(results[1]!.rows, [['a;b']]);
      assert.equal(results[2]!.message, 'Updated 1 row(s)');
      assert.deepEqual(results[3]!.rows, [['c']]);
      assert.equal(results[4]!.message, 'Deleted 1 row(s)');
      // A trailing semicolon and blank statements add no result.
      const trailing = await server.ok('SELECT 1 AS x;');
      assert.equal(trailing.length, 1);
    });

    it('stops at the first failure; earlier statements stay, later ones never run', async () => {
      await server.ok('CREATE TABLE d.ms2 (id INT PRIMARY KEY)');
      const res = await server.sql('INSERT INTO d.ms2 VALUES (1); INSERT INTO d.ms2 VALUES (1); INSERT INTO d.ms2 VALUES (2)');
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /^Statement 2 failed: .*[Dd]uplicate primary key/);
      assert.deepEqual(await server.rows('SELECT id FROM d.ms2 ORDER BY id'), [{ id: 1 }]);
    });
  });

  describe('primary-key uniqueness', () => {
    it('refuses a duplicate key, naming the table, column and value', async () => {
      await server.ok('CREATE TABLE d.dup (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO d.dup VALUES (1, 'first')");
      assertError(await server.sql("INSERT INTO d.dup VALUES (1, 'second')"), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key.*d\.dup.*id.*1/);
      assert.deepEqual(await server.rows('SELECT v FROM d.dup'), [{ v: 'first' }]);
    });

    it('a multi-row INSERT with a duplicate (in itself or against a stored row) inserts nothing', async () => {
      await server.ok('CREATE TABLE d.dup2 (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO d.dup2 VALUES (1, 'keep')");
      assertError(await server.sql("INSERT INTO d.dup2 VALUES (2, 'a'), (3, 'b'), (2, 'c')"), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key/);
      assertError(await server.sql("INSERT INTO d.dup2 VALUES (4, 'a'), (1, 'b')"), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key/);
      assert.deepEqual(await server.rows('SELECT id, v FROM d.dup2'), [{ id: 1, v: 'keep' }]);
    });

    it('refuses a NULL primary key', async () => {
      await server.ok('CREATE TABLE d.nullpk (id INT PRIMARY KEY, v TEXT)');
      const res = await server.sql("INSERT INTO d.nullpk VALUES (NULL, 'x')");
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /'id'/);
      assert.deepEqual(await server.rows('SELECT * FROM d.nullpk'), []);
    });

    it('in a USER table the key is unique per user: alice and bob may both use id 1', async () => {
      await server.ok('CREATE USER TABLE d.per_user (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO d.per_user VALUES (1, 'alice-1')", { auth: alice });
      const [res] = await server.ok("INSERT INTO d.per_user VALUES (1, 'bob-1')", { auth: bob });
      assert.deepEqual(res, { row_count: 1, message: 'Inserted 1 row(s)', as_user: 'dml_bob' });
      assertError(await server.sql("INSERT INTO d.per_user VALUES (1, 'alice-again')", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key/);
      assert.deepEqual(await server.rows('SELECT id, v FROM d.per_user', { auth: alice }), [{ id: 1, v: 'alice-1' }]);
      assert.deepEqual(await server.rows('SELECT id, v FROM d.per_user', { auth: bob }), [{ id: 1, v: 'bob-1' }]);
      // Deleting bob's row does not touch alice's.
      await server.ok('DELETE FROM d.per_user WHERE id = 1', { auth: bob });
      assert.deepEqual(await server.rows('SELECT v FROM d.per_user WHERE id = 1', { auth: alice }), [{ v: 'alice-1' }]);
    });

    it('in a SHARED table the key is unique across users', async () => {
      const svc = await server.createUser('dml_svc', 'service');
      await server.ok('CREATE SHARED TABLE d.shared_pk (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO d.shared_pk VALUES (1, 'root')");
      assertError(await server.sql("INSERT INTO d.shared_pk VALUES (1, 'svc')", { auth: svc }), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate primary key/);
      assert.deepEqual(await server.rows('SELECT v FROM d.shared_pk', { auth: svc }), [{ v: 'root' }]);
    });
  });
  it('UPDATE and DELETE that match no row, concurrent with point reads, leave the server answering (a capacity-0 read batch once hung it)', { timeout: 60_000 }, async () => {
    await server.ok("CREATE SHARED TABLE d.nomatch (id BIGINT PRIMARY KEY, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok(`INSERT INTO d.nomatch VALUES ${Array.from({ length: 50 }, (_, i) => `(${i}, ${i})`).join(', ')}`);
    await server.flushAndWait('d.nomatch');
    let stop = false;
    const reads = async (): Promise<void> => {
      for (let i = 0; !stop; i++) await server.ok(`SELECT * FROM d.nomatch WHERE id = ${i % 50}`);
    };
    const readers = [reads(), reads(), reads()];
    try {
      for (let round = 0; round < 20; round++) {
        const misses = Array.from({ length: 6 }, (_, j) => 1000 + round * 10 + j);
        const results = await Promise.all(misses.map((id, j) => server.ok(j % 2 === 0
          ? `DELETE FROM d.nomatch WHERE id IN (${id}, ${id + 5000})`
          : `UPDATE d.nomatch SET v = 0 WHERE id IN (${id}, ${id + 5000})`)));
        for (const [r] of results) assert.equal(r!.row_count, 0);
        const answered = await Promise.race([server.ok('SELECT 1').then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 5_000))]);
        assert.equal(answered, true, `no answer within 5 s after round ${round}`);
      }
    } finally {
      stop = true;
    }
    await Promise.all(readers);
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM d.nomatch'), [{ n: '50' }]);
  });
});
