/**
 * Column types over HTTP: the exact JSON cell of every type per protocol.md (BIGINT as decimal
 * strings, SMALLINT/INT/FLOAT/DOUBLE as numbers, BOOLEAN, TEXT, TIMESTAMP in µs from integers and
 * ISO-8601 strings, DATE in days, TIME in µs, DECIMAL(p,s) strings with their scale, lowercase UUID,
 * JSON as text, BYTES as byte arrays, NULL), the schema's data_type names, on both the primary-key
 * point path and the general (DuckDB) read path, and type errors naming the column.
 * Not covered here: which statements exist (dml.test.ts), the error envelope itself (errors.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer, type SqlResponse } from './harness.js';

const ALL_TYPES = `(
  id BIGINT PRIMARY KEY, si SMALLINT, i INT, bi BIGINT, f FLOAT, d DOUBLE, b BOOLEAN, t TEXT,
  ts TIMESTAMP, dt DATE, tm TIME, dec DECIMAL(10,2), u UUID, j JSON, bin BYTES
)`;

const EXPECTED_SCHEMA = [
  { name: 'id', data_type: 'BigInt', index: 0 },
  { name: 'si', data_type: 'SmallInt', index: 1 },
  { name: 'i', data_type: 'Int', index: 2 },
  { name: 'bi', data_type: 'BigInt', index: 3 },
  { name: 'f', data_type: 'Float', index: 4 },
  { name: 'd', data_type: 'Double', index: 5 },
  { name: 'b', data_type: 'Boolean', index: 6 },
  { name: 't', data_type: 'Text', index: 7 },
  { name: 'ts', data_type: 'Timestamp', index: 8 },
  { name: 'dt', data_type: 'Date', index: 9 },
  { name: 'tm', data_type: 'Time', index: 10 },
  { name: 'dec', data_type: { Decimal: { precision: 10, scale: 2 } }, index: 11 },
  { name: 'u', data_type: 'Uuid', index: 12 },
  { name: 'j', data_type: 'Json', index: 13 },
  { name: 'bin', data_type: 'Bytes', index: 14 },
  { name: '_seq', data_type: 'BigInt', index: 15 },
  { name: '_deleted', data_type: 'Boolean', index: 16 },
];

/** A type error: 400, the error envelope, SQL_EXECUTION_ERROR or INVALID_SQL, and a message naming the column. */
function assertTypeError(res: { status: number; body: SqlResponse }, column: RegExp, what = ''): void {
  const context = `${what} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, 400, context);
  assert.equal(res.body.status, 'error', context);
  assert.deepEqual(res.body.results, [], context);
  assert.match(res.body.error?.code ?? '', /^(SQL_EXECUTION_ERROR|INVALID_SQL)$/, context);
  assert.match(res.body.error?.message ?? '', column, context);
}

/** 2024-01-02T03:04:05.123456Z in µs since the epoch. */
const TS_MICROS = 1704164645123456;

const EXPECTED_ROW = [
  '1', 12, 123456, '9007199254740993', 1.5, 2.25, true, 'txt',
  TS_MICROS, 19724, 11045123456, '12.50', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":[1,2]}', [1, 2, 255],
];

describe('types', () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE ty');
    await server.ok(`CREATE SHARED TABLE ty.all_types ${ALL_TYPES}`);
    await server.ok(`INSERT INTO ty.all_types VALUES (1, 12, 123456, 9007199254740993, 1.5, 2.25, true, 'txt',
      '2024-01-02T03:04:05.123456Z', '2024-01-02', '03:04:05.123456', 12.5,
      'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"a":[1,2]}', '\\x0102ff')`);
    await server.ok('INSERT INTO ty.all_types (id) VALUES (2)');
  });
  after(async () => {
    await server.dispose();
  });

  const single = async (sql: string, params?: unknown[]): Promise<NonNullable<SqlResponse['results'][number]>> => {
    const [result] = await server.ok(sql, params === undefined ? {} : { params });
    return result!;
  };

  describe('cell encoding and schema of every type', () => {
    for (const [path, sql] of [['primary-key point read', 'SELECT * FROM ty.all_types WHERE id = 1'], ['general read path', 'SELECT * FROM ty.all_types WHERE id < 2 ORDER BY id']] as const) {
      it(`${path}: schema data_type names`, async () => {
        const result = await single(sql);
        assert.deepEqual(result.schema, EXPECTED_SCHEMA);
      });

      it(`${path}: cells`, async () => {
        const result = await single(sql);
        assert.equal(result.row_count, 1);
        const row = result.rows![0]!;
        assert.deepEqual(row.slice(0, 15), EXPECTED_ROW);
        assert.match(row[15] as string, /^\d+$/);
        assert.equal(row[16], false);
      });

      it(`${path}: NULL in every nullable column`, async () => {
        const result = await single(sql.replace('id = 1', 'id = 2').replace('id < 2', 'id = 2'));
        assert.deepEqual(result.rows![0]!.slice(0, 15), ['2', ...new Array(14).fill(null)]);
      });
    }
  });

  describe('BIGINT', () => {
    it('round-trips 64-bit values exactly as decimal strings (literals and string params)', async () => {
      await server.ok('CREATE TABLE ty.big (id INT PRIMARY KEY, v BIGINT)');
      await server.ok('INSERT INTO ty.big VALUES (1, 9007199254740993), (2, 9223372036854775807), (3, -9223372036854775808), (4, 0), (5, -1)');
      await server.ok('INSERT INTO ty.big VALUES ($1, $2)', { params: [6, '9007199254740995'] });
      await server.ok('INSERT INTO ty.big VALUES ($1, $2)', { params: [7, 42] });
      const rows = (await single('SELECT id, v FROM ty.big ORDER BY id')).rows;
      assert.deepEqual(rows, [
        [1, '9007199254740993'], [2, '9223372036854775807'], [3, '-9223372036854775808'], [4, '0'], [5, '-1'],
        [6, '9007199254740995'], [7, '42'],
      ]);
      assert.deepEqual((await single('SELECT v FROM ty.big WHERE id = 1')).rows, [['9007199254740993']]);
    });

    it('computes past 2^53 exactly and encodes 64-bit results as strings', async () => {
      const result = await single('SELECT v + 1 AS next, v * 2 AS twice FROM ty.big WHERE id = 1 ORDER BY id');
      assert.deepEqual(result.schema!.map((f) => f.data_type), ['BigInt', 'BigInt']);
      assert.deepEqual(result.rows, [['9007199254740994', '18014398509481986']]);
      assert.deepEqual((await single('SELECT count(*) AS c FROM ty.big')).rows, [['7']]);
      assert.deepEqual((await single('SELECT sum(v) AS s FROM ty.big WHERE id IN (1, 6)')).rows![0]![0], '18014398509481988');
    });

    it('refuses 2^63 and -2^63-1, as literals and as params, naming the column', async () => {
      for (const value of ['9223372036854775808', '-9223372036854775809', '99999999999999999999']) {
        assertTypeError(await server.sql(`INSERT INTO ty.big VALUES (100, ${value})`), /'v'/, value);
        assertTypeError(await server.sql('INSERT INTO ty.big VALUES (100, $1)', { params: [value] }), /'v'/, value);
      }
      assert.deepEqual((await single('SELECT id FROM ty.big WHERE id = 100')).rows, []);
    });

    it('reads a JSON number param past 2^53 as the digits it is written with, as upstream does; past int64 it is refused', async () => {
      // Upstream's Rust clients (and its TypeScript SDK, through its WASM core) send i64 params as JSON numbers.
      const res = await server.post('/v1/api/sql', '{"sql":"INSERT INTO ty.big VALUES (101, $1)","params":[1152921504606846977]}',
        { authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual((await single('SELECT v FROM ty.big WHERE id = 101')).rows, [['1152921504606846977']]);
      // JavaScript writes a double past 2^53 in its shortest form (JSON.stringify(2 ** 60) is
      // "1152921504606847000"): those digits are what is stored, as upstream would. Send such values as strings.
      await server.ok('INSERT INTO ty.big VALUES (102, $1)', { params: [2 ** 60] });
      assert.deepEqual((await single('SELECT v FROM ty.big WHERE id = 102')).rows, [['1152921504606847000']]);
      assertTypeError(await server.sql('INSERT INTO ty.big VALUES (103, $1)', { params: [2 ** 64] }), /'v'/);
    });
  });

  describe('SMALLINT, INT, FLOAT, DOUBLE', () => {
    before(async () => {
      await server.ok('CREATE TABLE ty.nums (id INT PRIMARY KEY, si SMALLINT, i INT, f FLOAT, d DOUBLE)');
    });

    it('are JSON numbers, across their whole range', async () => {
      await server.ok(`INSERT INTO ty.nums VALUES
        (1, 32767, 2147483647, 0.5, 0.1),
        (2, -32768, -2147483648, -1.25, -1e300),
        (3, 0, 0, 0, 0)`);
      await server.ok('INSERT INTO ty.nums VALUES ($1, $2, $3, $4, $5)', { params: [4, '7', '-8', '2.5', '3.75'] });
      const result = await single('SELECT si, i, f, d FROM ty.nums ORDER BY id');
      assert.deepEqual(result.schema!.map((s) => s.data_type), ['SmallInt', 'Int', 'Float', 'Double']);
      assert.deepEqual(result.rows, [[32767, 2147483647, 0.5, 0.1], [-32768, -2147483648, -1.25, -1e300], [0, 0, 0, 0], [7, -8, 2.5, 3.75]]);
    });

    it('refuses values outside the range, naming the column', async () => {
      assertTypeError(await server.sql('INSERT INTO ty.nums (id, si) VALUES (10, 32768)'), /'si'/);
      assertTypeError(await server.sql('INSERT INTO ty.nums (id, si) VALUES (10, -32769)'), /'si'/);
      assertTypeError(await server.sql('INSERT INTO ty.nums (id, i) VALUES (10, 2147483648)'), /'i'/);
      assertTypeError(await server.sql('INSERT INTO ty.nums (id, i) VALUES (10, 1.5)'), /'i'/);
      assertTypeError(await server.sql("INSERT INTO ty.nums (id, d) VALUES (10, 'abc')"), /'d'/);
      assert.deepEqual((await single('SELECT id FROM ty.nums WHERE id = 10')).rows, []);
    });

    it('a FLOAT reads back the same on the point path and the general path', async () => {
      await server.ok('INSERT INTO ty.nums (id, f) VALUES (20, 1.1)');
      const point = (await single('SELECT f FROM ty.nums WHERE id = 20')).rows![0]![0];
      const general = (await single('SELECT f FROM ty.nums WHERE id >= 20 ORDER BY id')).rows![0]![0];
      assert.equal(typeof point, 'number');
      assert.equal(Math.fround(point as number), Math.fround(1.1));
      assert.equal(general, point);
    });

    it('NaN and Infinity read back the same on the point path and the general path', async () => {
      await server.ok("INSERT INTO ty.nums (id, d) VALUES (30, 'NaN'), (31, 'Infinity')");
      const point = [(await single('SELECT d FROM ty.nums WHERE id = 30')).rows![0]![0], (await single('SELECT d FROM ty.nums WHERE id = 31')).rows![0]![0]];
      const general = (await single('SELECT d FROM ty.nums WHERE id IN (30, 31) ORDER BY id')).rows!.map((r) => r[0]);
      assert.deepEqual(general, point);
      assert.notEqual(point[0], null, 'NaN is not NULL');
    });
  });

  describe('BOOLEAN and TEXT', () => {
    it('BOOLEAN is true/false/null, TEXT keeps every character', async () => {
      await server.ok('CREATE TABLE ty.bt (id INT PRIMARY KEY, b BOOLEAN, t TEXT)');
      const tricky = "it's \"quoted\"; back\\slash\nnew line, ünïcødé 🚀";
      await server.ok('INSERT INTO ty.bt VALUES (1, true, $1)', { params: [tricky] });
      await server.ok("INSERT INTO ty.bt VALUES (2, false, ''), (3, NULL, NULL), (4, 'true', 'it''s')");
      assert.deepEqual((await single('SELECT b, t FROM ty.bt ORDER BY id')).rows, [[true, tricky], [false, ''], [null, null], [true, "it's"]]);
      assert.deepEqual((await single('SELECT t FROM ty.bt WHERE id = 1')).rows, [[tricky]]);
      assertTypeError(await server.sql("INSERT INTO ty.bt (id, b) VALUES (9, 'maybe')"), /'b'/);
    });
  });

  describe('TIMESTAMP, DATE, TIME', () => {
    before(async () => {
      await server.ok('CREATE TABLE ty.times (id INT PRIMARY KEY, ts TIMESTAMP, dt DATE, tm TIME)');
    });

    it('TIMESTAMP takes ISO-8601 (Z, offsets, fractions, space, date only) and integer µs, and returns µs', async () => {
      await server.ok(`INSERT INTO ty.times (id, ts) VALUES
        (1, '2024-01-02T03:04:05Z'),
        (2, '2024-01-02T03:04:05.123456Z'),
        (3, '2024-01-02T03:04:05.5Z'),
        (4, '2024-01-02T03:04:05+02:00'),
        (5, '2024-01-02T03:04:05.25-05:30'),
        (6, '2024-01-02 03:04:05'),
        (7, '2024-01-02'),
        (8, 1700000000000000),
        (9, '1970-01-01T00:00:00Z'),
        (10, '1969-12-31T23:59:59Z')`);
      await server.ok('INSERT INTO ty.times (id, ts) VALUES ($1, $2)', { params: [11, '2024-01-02T03:04:05.000001Z'] });
      await server.ok('INSERT INTO ty.times (id, ts) VALUES ($1, $2)', { params: [12, 1704164645123456] });
      const base = 1704164645000000;
      const result = await single('SELECT id, ts FROM ty.times WHERE id <= 12 ORDER BY id');
      assert.equal(result.schema![1]!.data_type, 'Timestamp');
      assert.deepEqual(result.rows, [
        [1, base], [2, base + 123456], [3, base + 500000], [4, base - 2 * 3600e6], [5, base + 250000 + 5.5 * 3600e6],
        [6, base], [7, 1704153600000000], [8, 1700000000000000], [9, 0], [10, -1000000], [11, base + 1], [12, base + 123456],
      ]);
      assert.deepEqual((await single('SELECT ts FROM ty.times WHERE id = 4')).rows, [[base - 2 * 3600e6]]);
    });

    it('DATE is days since the epoch, TIME is µs since midnight', async () => {
      await server.ok(`INSERT INTO ty.times (id, dt, tm) VALUES
        (20, '2024-01-02', '03:04:05.123456'), (21, '1970-01-01', '00:00:00'), (22, '1969-12-31', '23:59:59.999999'), (23, '2000-02-29', '12:00')`);
      const result = await single('SELECT dt, tm FROM ty.times WHERE id >= 20 ORDER BY id');
      assert.deepEqual(result.schema!.map((s) => s.data_type), ['Date', 'Time']);
      assert.deepEqual(result.rows, [[19724, 11045123456], [0, 0], [-1, 86399999999], [11016, 43200000000]]);
      assert.deepEqual((await single('SELECT dt, tm FROM ty.times WHERE id = 22')).rows, [[-1, 86399999999]]);
      // A timestamp at midnight UTC (what a JS Date of that day serializes to) is that day; any other
      // time would be cut off, so it is refused.
      await server.ok("INSERT INTO ty.times (id, dt) VALUES (24, '2024-05-06T00:00:00.000Z')");
      assert.deepEqual((await single('SELECT dt FROM ty.times WHERE id = 24')).rows, [[19849]]);
      assert.equal((await server.sql("INSERT INTO ty.times (id, dt) VALUES (25, '2024-05-06T10:00:00Z')")).status, 400);
    });

    it('computed temporal values use the same encodings', async () => {
      const result = await single("SELECT CAST('2024-01-02 03:04:05.123456' AS TIMESTAMP) AS ts, CAST('2024-01-02' AS DATE) AS dt, CAST('03:04:05' AS TIME) AS tm");
      assert.deepEqual(result.schema!.map((s) => s.data_type), ['Timestamp', 'Date', 'Time']);
      assert.deepEqual(result.rows, [[TS_MICROS, 19724, 11045000000]]);
    });

    it('refuses malformed or impossible timestamps, dates and times, naming the column', async () => {
      for (const bad of ['not a time', '2024-02-30T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T25:00:00Z', '2024-01-01T10:61:00Z', '']) {
        assertTypeError(await server.sql('INSERT INTO ty.times (id, ts) VALUES (90, $1)', { params: [bad] }), /'ts'/, bad);
      }
      assertTypeError(await server.sql("INSERT INTO ty.times (id, ts) VALUES (90, 'yesterday')"), /'ts'.*TIMESTAMP/);
      assertTypeError(await server.sql('INSERT INTO ty.times (id, ts) VALUES (90, true)'), /'ts'/);
      assertTypeError(await server.sql("INSERT INTO ty.times (id, dt) VALUES (90, '2023-02-29')"), /'dt'/);
      assertTypeError(await server.sql("INSERT INTO ty.times (id, dt) VALUES (90, 'Jan 1')"), /'dt'/);
      assertTypeError(await server.sql("INSERT INTO ty.times (id, tm) VALUES (90, '24:00:01')"), /'tm'/);
      assertTypeError(await server.sql("INSERT INTO ty.times (id, tm) VALUES (90, 'noon')"), /'tm'/);
      assert.deepEqual((await single('SELECT id FROM ty.times WHERE id = 90')).rows, []);
    });
  });

  describe('DECIMAL', () => {
    before(async () => {
      await server.ok('CREATE TABLE ty.money (id INT PRIMARY KEY, amount DECIMAL(10,2), whole DECIMAL(5,0))');
    });

    it('is a string with exactly the column scale', async () => {
      await server.ok(`INSERT INTO ty.money (id, amount, whole) VALUES
        (1, 12.5, 5), (2, '3', 0), (3, '-0.05', -99999), (4, 0, 12345), (5, 99999999.99, NULL), (6, '-12.34', 1)`);
      await server.ok('INSERT INTO ty.money (id, amount) VALUES ($1, $2)', { params: [7, '0.1'] });
      await server.ok('INSERT INTO ty.money (id, amount) VALUES ($1, $2)', { params: [8, 7.25] });
      const result = await single('SELECT amount, whole FROM ty.money WHERE id <= 8 ORDER BY id');
      assert.deepEqual(result.schema!.map((s) => s.data_type), [{ Decimal: { precision: 10, scale: 2 } }, { Decimal: { precision: 5, scale: 0 } }]);
      assert.deepEqual(result.rows, [
        ['12.50', '5'], ['3.00', '0'], ['-0.05', '-99999'], ['0.00', '12345'], ['99999999.99', null], ['-12.34', '1'], ['0.10', null], ['7.25', null],
      ]);
      assert.deepEqual((await single('SELECT amount FROM ty.money WHERE id = 1')).rows, [['12.50']]);
    });

    it('sums exactly, keeping the scale', async () => {
      await server.ok("CREATE TABLE ty.cents (id INT PRIMARY KEY, v DECIMAL(10,2)); INSERT INTO ty.cents VALUES (1, '0.10'), (2, '0.20'), (3, '0.30')");
      const result = await single('SELECT sum(v) AS total FROM ty.cents');
      assert.equal(result.rows![0]![0], '0.60');
      assert.deepEqual(result.schema![0]!.data_type, { Decimal: { precision: 38, scale: 2 } });
    });

    it('refuses values with too many digits or not a number, naming the column', async () => {
      assertTypeError(await server.sql('INSERT INTO ty.money (id, amount) VALUES (90, 123456789.12)'), /'amount'.*DECIMAL\(10,2\)/);
      assertTypeError(await server.sql("INSERT INTO ty.money (id, amount) VALUES (90, 'ten')"), /'amount'/);
      assertTypeError(await server.sql('INSERT INTO ty.money (id, whole) VALUES (90, 100000)'), /'whole'/);
      assert.deepEqual((await single('SELECT id FROM ty.money WHERE id = 90')).rows, []);
    });
  });

  describe('wide DECIMAL (own server: a failure here may take the server down)', () => {
    let wide: TestServer;
    before(async () => {
      wide = await TestServer.start();
      await wide.ok('CREATE TABLE w (id INT PRIMARY KEY, d38 DECIMAL(38,10), d19 DECIMAL(19,0))');
    });
    after(async () => {
      await wide.dispose();
    });

    it('keeps 38 digits exactly, past the 64-bit range, on both read paths', async () => {
      const d38 = '1234567890123456789012345678.0123456789';
      const d19 = '9999999999999999999';
      const res = await wide.sql('INSERT INTO w (id, d38, d19) VALUES ($1, $2, $3)', { params: [1, d38, d19] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual((await wide.ok('SELECT d38, d19 FROM w WHERE id = 1'))[0]!.rows, [[d38, d19]]);
      assert.deepEqual((await wide.ok('SELECT d38, d19 FROM w WHERE id >= 1 ORDER BY id'))[0]!.rows, [[d38, d19]]);
      assert.deepEqual((await wide.ok("INSERT INTO w (id, d38) VALUES (2, -99999999999999999999999999.5)"))[0]!.row_count, 1);
      assert.deepEqual((await wide.ok('SELECT d38 FROM w WHERE id = 2'))[0]!.rows, [['-99999999999999999999999999.5000000000']]);
    });

    it('the server is still up afterwards', async () => {
      const res = await wide.fetch('/health');
      assert.equal(res.status, 200);
    });
  });

  describe('UUID, JSON, BYTES', () => {
    before(async () => {
      await server.ok('CREATE TABLE ty.misc (id INT PRIMARY KEY, u UUID, j JSON, bin BYTES)');
    });

    it('UUID is the canonical lowercase string', async () => {
      await server.ok("INSERT INTO ty.misc (id, u) VALUES (1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), (2, '00000000-0000-0000-0000-000000000000')");
      await server.ok('INSERT INTO ty.misc (id, u) VALUES ($1, $2)', { params: [3, 'FFFFFFFF-FFFF-4FFF-8FFF-FFFFFFFFFFFF'] });
      assert.deepEqual((await single('SELECT u FROM ty.misc WHERE id <= 3 ORDER BY id')).rows, [
        ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'], ['00000000-0000-0000-0000-000000000000'], ['ffffffff-ffff-4fff-8fff-ffffffffffff'],
      ]);
      assertTypeError(await server.sql("INSERT INTO ty.misc (id, u) VALUES (90, 'not-a-uuid')"), /'u'.*UUID/);
      assertTypeError(await server.sql("INSERT INTO ty.misc (id, u) VALUES (90, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1')"), /'u'/);
    });

    it('JSON is the JSON text as a string, from a string or a JSON param', async () => {
      await server.ok(`INSERT INTO ty.misc (id, j) VALUES (10, '{"a":[1,2],"b":{"c":null}}'), (11, '[1,"two",3.5]'), (12, '"str"'), (13, 'null')`);
      await server.ok('INSERT INTO ty.misc (id, j) VALUES ($1, $2)', { params: [14, { k: 'v', n: [1, 2] }] });
      const general = await single('SELECT id, j FROM ty.misc WHERE id BETWEEN 10 AND 14 ORDER BY id');
      const cells = general.rows!.map((r) => r[1]);
      assert.deepEqual(cells, ['{"a":[1,2],"b":{"c":null}}', '[1,"two",3.5]', '"str"', 'null', '{"k":"v","n":[1,2]}']);
      for (const cell of cells) assert.equal(typeof cell, 'string');
      assert.deepEqual((await single('SELECT j FROM ty.misc WHERE id = 14')).rows, [['{"k":"v","n":[1,2]}']]);
      assertTypeError(await server.sql("INSERT INTO ty.misc (id, j) VALUES (90, '{bad json')"), /'j'.*JSON/);
    });

    it('a JSON column has data_type Json on every read path', async () => {
      assert.equal((await single('SELECT j FROM ty.misc WHERE id = 10')).schema![0]!.data_type, 'Json');
      assert.equal((await single('SELECT j FROM ty.misc WHERE id >= 10 ORDER BY id')).schema![0]!.data_type, 'Json');
    });

    it('BYTES is an array of byte values, from \\x hex or an array param', async () => {
      await server.ok("INSERT INTO ty.misc (id, bin) VALUES (20, '\\x0102ff'), (21, '\\x')");
      await server.ok('INSERT INTO ty.misc (id, bin) VALUES ($1, $2)', { params: [22, [0, 255, 16, 128]] });
      const result = await single('SELECT bin FROM ty.misc WHERE id >= 20 ORDER BY id');
      assert.equal(result.schema![0]!.data_type, 'Bytes');
      assert.deepEqual(result.rows, [[[1, 2, 255]], [[]], [[0, 255, 16, 128]]]);
      assert.deepEqual((await single('SELECT bin FROM ty.misc WHERE id = 22')).rows, [[[0, 255, 16, 128]]]);
      assertTypeError(await server.sql('INSERT INTO ty.misc (id, bin) VALUES ($1, $2)', { params: [90, [1, 256]] }), /'bin'/);
    });
  });

  describe('type errors', () => {
    before(async () => {
      await server.ok('CREATE TABLE ty.strict (id INT PRIMARY KEY, n INT, name TEXT NOT NULL, big BIGINT)');
      await server.ok("INSERT INTO ty.strict (id, name) VALUES (50, 'ok')");
    });

    const check = async (sql: string, column: RegExp, params?: unknown[]): Promise<void> => {
      assertTypeError(await server.sql(sql, params === undefined ? {} : { params }), column, sql);
    };

    it('text into INT', async () => {
      await check("INSERT INTO ty.strict (id, n, name) VALUES (1, 'abc', 'x')", /'n'/);
      await check('INSERT INTO ty.strict (id, n, name) VALUES ($1, $2, $3)', /'n'/, [1, 'abc', 'x']);
      await check("UPDATE ty.strict SET n = 'abc' WHERE id = 50", /'n'/);
      await check("UPDATE ty.strict SET n = 'abc' WHERE name = 'ok'", /'n'/);
    });

    it('2^63 into BIGINT', async () => {
      await check("INSERT INTO ty.strict (id, name, big) VALUES (1, 'x', 9223372036854775808)", /'big'/);
      await check('INSERT INTO ty.strict (id, name, big) VALUES ($1, $2, $3)', /'big'/, [1, 'x', '9223372036854775808']);
    });

    it('NULL into NOT NULL, given or omitted, on INSERT and UPDATE', async () => {
      await check('INSERT INTO ty.strict (id, name) VALUES (1, NULL)', /'name'/);
      await check('INSERT INTO ty.strict (id) VALUES (1)', /'name'/);
      await check('INSERT INTO ty.strict (id, name) VALUES ($1, $2)', /'name'/, [1, null]);
      await check('UPDATE ty.strict SET name = NULL WHERE id = 50', /'name'/);
      assert.deepEqual((await single('SELECT name FROM ty.strict WHERE id = 50')).rows, [['ok']]);
    });

    it('unknown column in INSERT, UPDATE and SELECT', async () => {
      await check("INSERT INTO ty.strict (id, name, nope) VALUES (1, 'x', 1)", /nope/);
      await check('UPDATE ty.strict SET nope = 1 WHERE id = 50', /nope/);
      await check('SELECT nope FROM ty.strict', /nope/);
      await check('SELECT nope FROM ty.strict WHERE id = 50', /nope/);
    });

    it('a failed statement stored nothing', async () => {
      assert.deepEqual((await single('SELECT id, n, name, big FROM ty.strict ORDER BY id')).rows, [[50, null, 'ok', null]]);
    });
  });

  describe('computed values', () => {
    it('literals and expressions get the protocol types', async () => {
      const result = await single("SELECT 1 AS i, 9007199254740993 AS b, 2.5 AS dec, CAST(2.5 AS DOUBLE) AS d, 'x' AS t, true AS bo, NULL AS n, CAST('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AS UUID) AS u");
      assert.deepEqual(result.schema!.map((s) => [s.name, s.data_type]), [
        ['i', 'BigInt'], ['b', 'BigInt'], ['dec', { Decimal: { precision: 2, scale: 1 } }], ['d', 'Double'], ['t', 'Text'], ['bo', 'Boolean'], ['n', result.schema![6]!.data_type], ['u', 'Uuid'],
      ]);
      assert.deepEqual(result.rows, [['1', '9007199254740993', '2.5', 2.5, 'x', true, null, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']]);
    });
  });
});
