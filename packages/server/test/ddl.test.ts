/**
 * DDL over HTTP: namespaces (CREATE [IF NOT EXISTS], DROP [IF EXISTS] [CASCADE], reserved and invalid
 * names, SHOW NAMESPACES), CREATE/DROP TABLE for USER, SHARED and STREAM (syntax and options only),
 * the table-type word vs the TYPE option, SHOW TABLES [IN ns], DESCRIBE TABLE, the catalog as seen
 * through system.namespaces/tables/columns/table_schemas, and that only dba/system may run DDL.
 * Not covered here: row data (dml.test.ts), column encodings (types.test.ts), users and table
 * access levels for reads and writes (auth.test.ts), STREAM table behaviour beyond CREATE.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, assertError, type Auth } from './harness.js';

describe('DDL', () => {
  let server: TestServer;
  let alice: Auth;
  let svc: Auth;
  let dba: Auth;

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('ddl_alice', 'user');
    svc = await server.createUser('ddl_svc', 'service');
    dba = await server.createUser('ddl_dba', 'dba');
  });
  after(async () => {
    await server.dispose();
  });

  const names = (rows: Record<string, unknown>[], key: string): unknown[] => rows.map((r) => r[key]);

  describe('namespaces', () => {
    it('creates a namespace once; a second CREATE fails and IF NOT EXISTS succeeds', async () => {
      const [created] = await server.ok('CREATE NAMESPACE ns_create');
      assert.deepEqual(created, { row_count: 0, message: "Namespace 'ns_create' created successfully", as_user: 'root' });
      assertError(await server.sql('CREATE NAMESPACE ns_create'), 400, 'SQL_EXECUTION_ERROR', /Namespace 'ns_create' already exists/);
      const [again] = await server.ok('CREATE NAMESPACE IF NOT EXISTS ns_create');
      assert.equal(again!.message, "Namespace 'ns_create' already exists");
      assert.equal(again!.row_count, 0);
    });

    it('stores names lower-case', async () => {
      const [created] = await server.ok('CREATE NAMESPACE Ns_MixedCase');
      assert.equal(created!.message, "Namespace 'ns_mixedcase' created successfully");
      const rows = await server.rows('SHOW NAMESPACES');
      assert.ok(names(rows, 'namespace_id').includes('ns_mixedcase'));
      assert.ok(!names(rows, 'namespace_id').includes('Ns_MixedCase'));
      await server.ok('CREATE TABLE NS_MIXEDCASE.T (ID INT PRIMARY KEY)');
      const tables = await server.rows('SHOW TABLES IN ns_mixedcase');
      assert.deepEqual(names(tables, 'table_name'), ['t']);
    });

    it('has the default namespace from start-up and refuses to create or drop it', async () => {
      const rows = await server.rows('SHOW NAMESPACES');
      assert.ok(names(rows, 'namespace_id').includes('default'));
      assertError(await server.sql('CREATE NAMESPACE default'), 400, 'SQL_EXECUTION_ERROR', /'default' already exists/);
      const drop = await server.sql('DROP NAMESPACE default');
      assert.equal(drop.status, 400, JSON.stringify(drop.body));
      assert.match(drop.body.error!.message, /default/);
      assert.ok(names(await server.rows('SHOW NAMESPACES'), 'namespace_id').includes('default'));
    });

    for (const reserved of ['system', 'information_schema']) {
      it(`refuses to create the reserved namespace ${reserved}`, async () => {
        const res = await server.sql(`CREATE NAMESPACE ${reserved}`);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.match(res.body.error!.code, /^(INVALID_SQL|SQL_EXECUTION_ERROR)$/);
        assert.match(res.body.error!.message, new RegExp(`'${reserved}'.*reserved`));
        const shown = names(await server.rows('SHOW NAMESPACES'), 'namespace_id');
        assert.ok(!shown.includes(reserved));
      });
    }

    it('refuses names that are not [A-Za-z_][A-Za-z0-9_]* or longer than 64 characters', async () => {
      assertError(await server.sql('CREATE NAMESPACE "bad-name"'), 400, 'INVALID_SQL', /bad-name/);
      assertError(await server.sql('CREATE NAMESPACE 1abc'), 400, 'INVALID_SQL', /position|1abc/);
      assertError(await server.sql('CREATE NAMESPACE "sp ace"'), 400, 'INVALID_SQL', /sp ace/);
      assertError(await server.sql(`CREATE NAMESPACE ${'n'.repeat(65)}`), 400, 'INVALID_SQL', /64/);
      const shown = names(await server.rows('SHOW NAMESPACES'), 'namespace_id');
      assert.ok(!shown.some((n) => typeof n === 'string' && /bad|1abc|sp ace|^nnnn/.test(n)), JSON.stringify(shown));
    });

    it('accepts a 64-character namespace name and can create and read tables in it', async () => {
      const ns = `n${'x'.repeat(63)}`;
      assert.equal(ns.length, 64);
      await server.ok(`CREATE NAMESPACE ${ns}`);
      const [created] = await server.ok(`CREATE TABLE ${ns}.t (id INT PRIMARY KEY)`);
      assert.equal(created!.message, `Table '${ns}.t' created successfully`);
      await server.ok(`INSERT INTO ${ns}.t (id) VALUES (1)`);
      assert.deepEqual(await server.rows(`SELECT id FROM ${ns}.t`), [{ id: 1 }]);
    });

    it('SHOW NAMESPACES lists every namespace with its table count', async () => {
      await server.ok('CREATE NAMESPACE ns_show');
      await server.ok('CREATE TABLE ns_show.a (id INT PRIMARY KEY); CREATE TABLE ns_show.b (id INT PRIMARY KEY)');
      const [result] = await server.ok('SHOW NAMESPACES');
      assert.deepEqual(result!.schema!.map((f) => f.name), ['namespace_id', 'table_count', 'created_at']);
      const rows = await server.rows('SHOW NAMESPACES');
      const row = rows.find((r) => r.namespace_id === 'ns_show');
      assert.ok(row, JSON.stringify(rows));
      assert.equal(row.table_count, 2);
      assert.equal(typeof row.created_at, 'number');
      const createdMs = (row.created_at as number) / 1000;
      assert.ok(Math.abs(createdMs - Date.now()) < 60_000, `created_at ${String(row.created_at)} is µs since epoch`);
    });

    it('DROP NAMESPACE without CASCADE fails while it holds tables and names them', async () => {
      await server.ok('CREATE NAMESPACE ns_full');
      await server.ok('CREATE TABLE ns_full.alpha (id INT PRIMARY KEY); CREATE USER TABLE ns_full.beta (id INT PRIMARY KEY)');
      assertError(await server.sql('DROP NAMESPACE ns_full'), 400, 'SQL_EXECUTION_ERROR', /alpha.*beta|beta.*alpha/);
      assert.deepEqual(names(await server.rows('SHOW TABLES IN ns_full'), 'table_name').sort(), ['alpha', 'beta']);
    });

    it('DROP NAMESPACE ... CASCADE drops its tables and their rows', async () => {
      await server.ok('CREATE NAMESPACE ns_cascade');
      await server.ok('CREATE TABLE ns_cascade.t (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO ns_cascade.t VALUES (1, 'old')");
      assert.deepEqual(await server.rows('SELECT id, v FROM ns_cascade.t'), [{ id: 1, v: 'old' }]);
      const [dropped] = await server.ok('DROP NAMESPACE ns_cascade CASCADE');
      assert.equal(dropped!.message, "Namespace 'ns_cascade' dropped successfully");
      assert.ok(!names(await server.rows('SHOW NAMESPACES'), 'namespace_id').includes('ns_cascade'));
      assert.deepEqual(await server.rows("SELECT table_name FROM system.tables WHERE namespace_id = 'ns_cascade'"), []);
      assertError(await server.sql('SELECT * FROM ns_cascade.t'), 400, 'SQL_EXECUTION_ERROR', /ns_cascade\.t/);
      // Re-created under the same names, the table starts empty.
      await server.ok('CREATE NAMESPACE ns_cascade');
      await server.ok('CREATE TABLE ns_cascade.t (id INT PRIMARY KEY, v TEXT)');
      assert.deepEqual(await server.rows('SELECT id, v FROM ns_cascade.t'), []);
    });

    it('DROP NAMESPACE [IF EXISTS] on a missing namespace', async () => {
      assertError(await server.sql('DROP NAMESPACE ns_never'), 400, 'SQL_EXECUTION_ERROR', /'ns_never' does not exist/);
      const [res] = await server.ok('DROP NAMESPACE IF EXISTS ns_never');
      assert.equal(res!.row_count, 0);
      assert.match(res!.message!, /ns_never/);
    });

    it('drops an empty namespace', async () => {
      await server.ok('CREATE NAMESPACE ns_empty');
      const [res] = await server.ok('DROP NAMESPACE ns_empty');
      assert.deepEqual(res, { row_count: 0, message: "Namespace 'ns_empty' dropped successfully", as_user: 'root' });
      assert.deepEqual(await server.rows("SELECT namespace_id FROM system.namespaces WHERE namespace_id = 'ns_empty'"), []);
    });
  });

  describe('tables', () => {
    before(async () => {
      await server.ok('CREATE NAMESPACE tbl');
    });

    it('creates USER, SHARED and STREAM tables with the type word', async () => {
      const [u] = await server.ok('CREATE USER TABLE tbl.u1 (id BIGINT PRIMARY KEY, body TEXT)');
      assert.deepEqual(u, { row_count: 0, message: "Table 'tbl.u1' created successfully", as_user: 'root' });
      await server.ok('CREATE SHARED TABLE tbl.s1 (id BIGINT PRIMARY KEY, body TEXT)');
      await server.ok('CREATE STREAM TABLE tbl.st1 (id BIGINT, payload TEXT) WITH (TTL_SECONDS = 30)');
      const rows = await server.rows("SELECT table_name, table_type FROM system.tables WHERE namespace_id = 'tbl' AND table_name IN ('u1', 's1', 'st1') ORDER BY table_name");
      assert.deepEqual(rows, [
        { table_name: 's1', table_type: 'shared' },
        { table_name: 'st1', table_type: 'stream' },
        { table_name: 'u1', table_type: 'user' },
      ]);
    });

    it('takes the type from the TYPE option, and defaults to SHARED for admins', async () => {
      await server.ok("CREATE TABLE tbl.o_user (id INT PRIMARY KEY) WITH (TYPE = 'USER')");
      await server.ok("CREATE TABLE tbl.o_shared (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')");
      await server.ok("CREATE TABLE tbl.o_stream (id INT) WITH (TYPE = 'STREAM', TTL_SECONDS = 5)");
      await server.ok('CREATE TABLE tbl.o_default (id INT PRIMARY KEY)');
      await server.ok('CREATE TABLE tbl.o_default_dba (id INT PRIMARY KEY)', { auth: dba });
      const rows = await server.rows("SELECT table_name, table_type FROM system.tables WHERE namespace_id = 'tbl' AND table_name IN ('o_user', 'o_shared', 'o_stream', 'o_default', 'o_default_dba') ORDER BY table_name");
      assert.deepEqual(rows, [
        { table_name: 'o_default', table_type: 'shared' },
        { table_name: 'o_default_dba', table_type: 'shared' },
        { table_name: 'o_shared', table_type: 'shared' },
        { table_name: 'o_stream', table_type: 'stream' },
        { table_name: 'o_user', table_type: 'user' },
      ]);
    });

    it('accepts the type word and TYPE option when they agree, refuses them when they differ', async () => {
      await server.ok("CREATE USER TABLE tbl.agree (id INT PRIMARY KEY) WITH (TYPE = 'USER')");
      for (const [word, option] of [['USER', 'SHARED'], ['SHARED', 'USER'], ['STREAM', 'USER'], ['USER', 'STREAM']] as const) {
        const res = await server.sql(`CREATE ${word} TABLE tbl.conflict (id INT PRIMARY KEY) WITH (TYPE = '${option}', TTL_SECONDS = 5)`);
        assertError(res, 400, 'INVALID_SQL', new RegExp(`${word}.*${option}|${option}.*${word}`));
      }
      assertError(await server.sql("CREATE TABLE tbl.conflict (id INT PRIMARY KEY) WITH (TYPE = 'BOGUS')"), 400, 'INVALID_SQL', /BOGUS/);
      assert.deepEqual(await server.rows("SELECT table_name FROM system.tables WHERE table_name = 'conflict'"), []);
    });

    it('STREAM tables need TTL_SECONDS; TTL_SECONDS, MAX_BUFFER and EPHEMERAL are recorded', async () => {
      assertError(await server.sql('CREATE STREAM TABLE tbl.st_nottl (id BIGINT)'), 400, 'INVALID_SQL', /TTL_SECONDS/);
      await server.ok('CREATE STREAM TABLE tbl.st_opts (id BIGINT, p TEXT) WITH (TTL_SECONDS = 10, MAX_BUFFER = 100, EPHEMERAL = true)');
      const rows = await server.rows("SELECT table_type, ttl_seconds, max_buffer, ephemeral FROM system.tables WHERE namespace_id = 'tbl' AND table_name = 'st_opts'");
      assert.deepEqual(rows, [{ table_type: 'stream', ttl_seconds: '10', max_buffer: '100', ephemeral: true }]);
      assertError(await server.sql('CREATE SHARED TABLE tbl.s_ttl (id INT PRIMARY KEY) WITH (TTL_SECONDS = 5)'), 400, 'INVALID_SQL', /TTL_SECONDS/);
    });

    it('a new STREAM table can be read (no rows, no error)', async () => {
      await server.ok('CREATE STREAM TABLE tbl.st_read (id BIGINT, p TEXT) WITH (TTL_SECONDS = 10)');
      const res = await server.sql('SELECT id, p FROM tbl.st_read');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.results[0]!.rows, []);
      assert.deepEqual(res.body.results[0]!.schema!.map((f) => [f.name, f.data_type]), [['id', 'BigInt'], ['p', 'Text']]);
    });

    it('STREAM tables have _seq but no _deleted column', async () => {
      await server.ok('CREATE STREAM TABLE tbl.st_cols (id BIGINT, p TEXT) WITH (TTL_SECONDS = 10)');
      const describe = await server.rows('DESCRIBE TABLE tbl.st_cols');
      assert.deepEqual(names(describe, 'column_name'), ['id', 'p', '_seq']);
      const [result] = await server.ok('SELECT * FROM tbl.st_cols');
      assert.deepEqual(result!.schema!.map((f) => f.name), ['id', 'p', '_seq']);
    });

    it('USER and SHARED tables need exactly one PRIMARY KEY column', async () => {
      assertError(await server.sql('CREATE USER TABLE tbl.nopk (id INT)'), 400, 'SQL_EXECUTION_ERROR', /^User tables require a PRIMARY KEY column$/);
      assertError(await server.sql('CREATE SHARED TABLE tbl.nopk (id INT)'), 400, 'SQL_EXECUTION_ERROR', /^Shared tables require a PRIMARY KEY column$/);
      assertError(await server.sql('CREATE TABLE tbl.nopk (a INT, b INT, PRIMARY KEY (a, b))'), 400, 'INVALID_SQL', /[Cc]omposite|single/);
      assertError(await server.sql('CREATE TABLE tbl.nopk (a INT PRIMARY KEY, b INT PRIMARY KEY)'), 400, 'INVALID_SQL', /PRIMARY KEY/);
      await server.ok('CREATE TABLE tbl.pk_clause (a INT, b TEXT, PRIMARY KEY (a))');
      const rows = await server.rows('DESCRIBE TABLE tbl.pk_clause');
      assert.deepEqual(rows.slice(0, 2).map((r) => [r.column_name, r.is_primary_key, r.is_nullable]), [['a', true, false], ['b', false, true]]);
    });

    it('refuses unknown options, unknown types, reserved and duplicate column names', async () => {
      assertError(await server.sql('CREATE TABLE tbl.bad (id INT PRIMARY KEY) WITH (BOGUS = 1)'), 400, 'INVALID_SQL', /BOGUS/);
      assertError(await server.sql('CREATE TABLE tbl.bad (id INT PRIMARY KEY, v FOO)'), 400, 'INVALID_SQL', /'v'.*FOO/);
      assertError(await server.sql('CREATE TABLE tbl.bad (id INT PRIMARY KEY, _x INT)'), 400, 'INVALID_SQL', /_x/);
      assertError(await server.sql('CREATE TABLE tbl.bad (id INT PRIMARY KEY, v INT, v TEXT)'), 400, 'INVALID_SQL', /'v'/);
      assertError(await server.sql("CREATE TABLE tbl.bad (id INT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:0')"), 400, 'INVALID_SQL', /FLUSH_POLICY/);
      assertError(await server.sql("CREATE TABLE tbl.bad (id INT PRIMARY KEY) WITH (ACCESS_LEVEL = 'BOGUS')"), 400, 'INVALID_SQL', /BOGUS/);
      assert.deepEqual(await server.rows("SELECT table_name FROM system.tables WHERE table_name = 'bad'"), []);
    });

    it('CREATE TABLE twice fails, IF NOT EXISTS succeeds and keeps the first definition', async () => {
      await server.ok('CREATE TABLE tbl.twice (id INT PRIMARY KEY, a TEXT)');
      assertError(await server.sql('CREATE TABLE tbl.twice (id INT PRIMARY KEY)'), 400, 'SQL_EXECUTION_ERROR', /'tbl\.twice' already exists/);
      const [res] = await server.ok('CREATE TABLE IF NOT EXISTS tbl.twice (id INT PRIMARY KEY, b INT)');
      assert.equal(res!.message, "Table 'tbl.twice' already exists");
      assert.deepEqual(names(await server.rows('DESCRIBE TABLE tbl.twice'), 'column_name'), ['id', 'a', '_seq', '_deleted']);
    });

    it('fails in a namespace that does not exist and in the system namespace', async () => {
      assertError(await server.sql('CREATE TABLE nope_ns.t (id INT PRIMARY KEY)'), 400, 'SQL_EXECUTION_ERROR', /Namespace 'nope_ns' does not exist/);
      const res = await server.sql('CREATE TABLE system.t (id INT PRIMARY KEY)');
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error!.message, /system/);
    });

    it('resolves unqualified names with namespace_id, else the default namespace', async () => {
      const [inNs] = await server.ok('CREATE TABLE unq_a (id INT PRIMARY KEY)', { namespace: 'tbl' });
      assert.equal(inNs!.message, "Table 'tbl.unq_a' created successfully");
      const [inDefault] = await server.ok('CREATE TABLE unq_b (id INT PRIMARY KEY)');
      assert.equal(inDefault!.message, "Table 'default.unq_b' created successfully");
      assert.deepEqual(names(await server.rows('SHOW TABLES IN default'), 'table_name'), ['unq_b']);
      await server.ok('DROP TABLE unq_a', { namespace: 'tbl' });
      assert.deepEqual(await server.rows("SELECT table_name FROM system.tables WHERE table_name = 'unq_a'"), []);
    });

    it('accepts the default namespace written out as default.<table>', async () => {
      await server.ok('CREATE TABLE default.qual_default (id INT PRIMARY KEY)');
      await server.ok('INSERT INTO default.qual_default (id) VALUES (1)');
      assert.deepEqual(await server.rows('SELECT id FROM default.qual_default'), [{ id: 1 }]);
      await server.ok('DROP TABLE default.qual_default');
    });

    it('accepts a 64-character table name', async () => {
      const name64 = `t${'y'.repeat(63)}`;
      const [created] = await server.ok(`CREATE TABLE tbl.${name64} (id INT PRIMARY KEY)`);
      assert.equal(created!.message, `Table 'tbl.${name64}' created successfully`);
      await server.ok(`INSERT INTO tbl.${name64} (id) VALUES (1)`);
      assert.deepEqual(await server.rows(`SELECT id FROM tbl.${name64}`), [{ id: 1 }]);
    });

    it('refuses a 65-character table name instead of truncating it', async () => {
      const name65 = `u${'z'.repeat(64)}`;
      assertError(await server.sql(`CREATE TABLE tbl.${name65} (id INT PRIMARY KEY)`), 400, 'INVALID_SQL', /64/);
      assert.deepEqual(await server.rows("SELECT table_name FROM system.tables WHERE table_name LIKE 'uzzz%'"), []);
    });

    it('SHOW TABLES and SHOW TABLES IN ns list exactly the tables', async () => {
      await server.ok('CREATE NAMESPACE show_a; CREATE NAMESPACE show_b');
      await server.ok('CREATE USER TABLE show_a.x (id INT PRIMARY KEY); CREATE SHARED TABLE show_a.y (id INT PRIMARY KEY)');
      await server.ok('CREATE STREAM TABLE show_b.z (id INT) WITH (TTL_SECONDS = 5)');
      const [result] = await server.ok('SHOW TABLES IN show_a');
      assert.deepEqual(result!.schema!.map((f) => f.name), ['namespace_id', 'table_name', 'table_type', 'created_at']);
      const inA = await server.rows('SHOW TABLES IN show_a');
      assert.deepEqual(inA.map((r) => [r.namespace_id, r.table_name, r.table_type]), [['show_a', 'x', 'user'], ['show_a', 'y', 'shared']]);
      const all = await server.rows('SHOW TABLES');
      const both = all.filter((r) => r.namespace_id === 'show_a' || r.namespace_id === 'show_b');
      assert.deepEqual(both.map((r) => `${String(r.namespace_id)}.${String(r.table_name)}`).sort(), ['show_a.x', 'show_a.y', 'show_b.z']);
      assertError(await server.sql('SHOW TABLES IN show_missing'), 400, 'SQL_EXECUTION_ERROR', /show_missing/);
    });

    it('DESCRIBE TABLE lists columns, types, nullability, key, defaults and the system columns', async () => {
      await server.ok(`CREATE USER TABLE tbl.described (
        id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(),
        room TEXT NOT NULL,
        body TEXT,
        amount DECIMAL(10,2),
        n INT DEFAULT 7,
        created_at TIMESTAMP DEFAULT NOW()
      )`);
      const [result] = await server.ok('DESCRIBE TABLE tbl.described');
      assert.deepEqual(result!.schema!.map((f) => f.name),
        ['column_name', 'data_type', 'is_nullable', 'is_primary_key', 'column_default', 'ordinal_position']);
      assert.deepEqual(result!.rows, [
        ['id', 'BIGINT', false, true, 'SNOWFLAKE_ID()', 1],
        ['room', 'TEXT', false, false, null, 2],
        ['body', 'TEXT', true, false, null, 3],
        ['amount', 'DECIMAL(10,2)', true, false, null, 4],
        ['n', 'INT', true, false, '7', 5],
        ['created_at', 'TIMESTAMP', true, false, 'NOW()', 6],
        ['_seq', 'BIGINT', false, false, null, 7],
        ['_deleted', 'BOOLEAN', false, false, null, 8],
      ]);
      // DESCRIBE without TABLE, and with namespace_id.
      const short = await server.rows('DESCRIBE described', { namespace: 'tbl' });
      assert.equal(short.length, 8);
      assertError(await server.sql('DESCRIBE TABLE tbl.nope'), 400, 'SQL_EXECUTION_ERROR', /'tbl\.nope' does not exist/);
    });

    it('AUTO_INCREMENT, SERIAL and BIGSERIAL mean DEFAULT SNOWFLAKE_ID()', async () => {
      await server.ok('CREATE TABLE tbl.ai (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)');
      await server.ok('CREATE TABLE tbl.se (id SERIAL PRIMARY KEY, v TEXT)');
      await server.ok('CREATE TABLE tbl.bs (id BIGSERIAL PRIMARY KEY, v TEXT)');
      for (const t of ['ai', 'se', 'bs']) {
        const [id] = await server.rows(`DESCRIBE TABLE tbl.${t}`);
        assert.deepEqual([id!.column_name, id!.data_type, id!.column_default], ['id', 'BIGINT', 'SNOWFLAKE_ID()'], t);
        await server.ok(`INSERT INTO tbl.${t} (v) VALUES ('a'), ('b')`);
        const rows = await server.rows(`SELECT id FROM tbl.${t} ORDER BY id`);
        assert.equal(rows.length, 2);
        assert.match(String(rows[0]!.id), /^\d{15,19}$/);
        assert.notEqual(rows[0]!.id, rows[1]!.id);
      }
    });

    it('DROP TABLE removes the table and its rows; IF EXISTS tolerates a missing table', async () => {
      await server.ok('CREATE TABLE tbl.dropme (id INT PRIMARY KEY, v TEXT)');
      await server.ok("INSERT INTO tbl.dropme VALUES (1, 'old')");
      assert.deepEqual(await server.rows('SELECT id, v FROM tbl.dropme'), [{ id: 1, v: 'old' }]);
      const [dropped] = await server.ok('DROP TABLE tbl.dropme');
      assert.deepEqual(dropped, { row_count: 0, message: "Table 'tbl.dropme' dropped successfully", as_user: 'root' });
      assertError(await server.sql('SELECT * FROM tbl.dropme'), 400, 'SQL_EXECUTION_ERROR', /'tbl\.dropme' does not exist/);
      assertError(await server.sql('DROP TABLE tbl.dropme'), 400, 'SQL_EXECUTION_ERROR', /'tbl\.dropme' does not exist/);
      const [ifExists] = await server.ok('DROP TABLE IF EXISTS tbl.dropme');
      assert.equal(ifExists!.row_count, 0);
      await server.ok('CREATE TABLE tbl.dropme (id INT PRIMARY KEY, v TEXT)');
      assert.deepEqual(await server.rows('SELECT * FROM tbl.dropme'), []);
    });
  });

  describe('system catalog tables', () => {
    before(async () => {
      await server.ok('CREATE NAMESPACE cat');
      await server.ok(`CREATE USER TABLE cat.msgs (
        id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), room TEXT NOT NULL, price DECIMAL(8,3), at TIMESTAMP DEFAULT NOW()
      ) WITH (FLUSH_POLICY = 'rows:5,interval:10')`);
      await server.ok("CREATE SHARED TABLE cat.pub (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
      await server.ok('CREATE SHARED TABLE cat.priv (id INT PRIMARY KEY)');
    });

    it('system.namespaces has one row per namespace with its table count', async () => {
      const rows = await server.rows("SELECT namespace_id, table_count FROM system.namespaces WHERE namespace_id IN ('cat', 'default') ORDER BY namespace_id");
      assert.equal(rows.length, 2);
      assert.deepEqual(rows[0], { namespace_id: 'cat', table_count: 3 });
      assert.equal(rows[1]!.namespace_id, 'default');
    });

    it('system.tables has type, access level, flush policy, schema version and creator', async () => {
      const rows = await server.rows(`SELECT table_name, table_type, access_level, flush_policy, schema_version, created_by
        FROM system.tables WHERE namespace_id = 'cat' ORDER BY table_name`);
      assert.deepEqual(rows, [
        { table_name: 'msgs', table_type: 'user', access_level: null, flush_policy: 'rows:5,interval:10', schema_version: 1, created_by: 'root' },
        { table_name: 'priv', table_type: 'shared', access_level: 'PRIVATE', flush_policy: 'rows:10000,interval:300', schema_version: 1, created_by: 'root' },
        { table_name: 'pub', table_type: 'shared', access_level: 'PUBLIC', flush_policy: 'rows:10000,interval:300', schema_version: 1, created_by: 'root' },
      ]);
    });

    it('system.columns has every user column in order with type, nullability, key and default', async () => {
      const rows = await server.rows(`SELECT column_name, ordinal_position, data_type, is_nullable, is_primary_key, column_default
        FROM system.columns WHERE namespace_id = 'cat' AND table_name = 'msgs' ORDER BY ordinal_position`);
      assert.deepEqual(rows, [
        { column_name: 'id', ordinal_position: 1, data_type: 'BIGINT', is_nullable: false, is_primary_key: true, column_default: 'SNOWFLAKE_ID()' },
        { column_name: 'room', ordinal_position: 2, data_type: 'TEXT', is_nullable: false, is_primary_key: false, column_default: null },
        { column_name: 'price', ordinal_position: 3, data_type: 'DECIMAL(8,3)', is_nullable: true, is_primary_key: false, column_default: null },
        { column_name: 'at', ordinal_position: 4, data_type: 'TIMESTAMP', is_nullable: true, is_primary_key: false, column_default: 'NOW()' },
      ]);
    });

    it('system.table_schemas has version 1 of each table with its columns as JSON', async () => {
      const rows = await server.rows("SELECT table_name, version, columns FROM system.table_schemas WHERE namespace_id = 'cat' ORDER BY table_name");
      assert.deepEqual(rows.map((r) => [r.table_name, r.version]), [['msgs', 1], ['priv', 1], ['pub', 1]]);
      const columns = JSON.parse(rows[0]!.columns as string) as Array<Record<string, unknown>>;
      assert.deepEqual(columns.map((c) => c.name), ['id', 'room', 'price', 'at']);
      assert.equal(columns[0]!.primary_key, true);
      assert.equal(columns[1]!.nullable, false);
      assert.equal(columns[2]!.data_type, 'DECIMAL(8,3)');
    });

    it('dropped tables leave system.tables, system.columns and system.table_schemas', async () => {
      await server.ok('CREATE TABLE cat.gone (id INT PRIMARY KEY, v TEXT)');
      assert.equal((await server.rows("SELECT * FROM system.columns WHERE table_name = 'gone'")).length, 2);
      await server.ok('DROP TABLE cat.gone');
      assert.deepEqual(await server.rows("SELECT table_name FROM system.tables WHERE table_name = 'gone'"), []);
      assert.deepEqual(await server.rows("SELECT column_name FROM system.columns WHERE table_name = 'gone'"), []);
      assert.deepEqual(await server.rows("SELECT version FROM system.table_schemas WHERE table_name = 'gone'"), []);
    });
  });

  describe('who may run DDL', () => {
    before(async () => {
      await server.ok('CREATE NAMESPACE perm; CREATE TABLE perm.keep (id INT PRIMARY KEY)');
    });

    for (const [label, who] of [['user', () => alice], ['service', () => svc]] as const) {
      it(`role ${label} gets 403 PERMISSION_DENIED for every DDL statement and changes nothing`, async () => {
        const auth = who();
        const statements = [
          `CREATE NAMESPACE perm_${label}`,
          'DROP NAMESPACE perm CASCADE',
          'DROP NAMESPACE IF EXISTS perm',
          `CREATE TABLE perm.t_${label} (id INT PRIMARY KEY)`,
          `CREATE USER TABLE perm.t_${label} (id INT PRIMARY KEY)`,
          `CREATE STREAM TABLE perm.t_${label} (id INT) WITH (TTL_SECONDS = 5)`,
          'DROP TABLE perm.keep',
          'DROP TABLE IF EXISTS perm.keep',
        ];
        for (const sql of statements) {
          assertError(await server.sql(sql, { auth }), 403, 'PERMISSION_DENIED', /[Pp]ermission denied/);
        }
        assert.ok(!names(await server.rows('SHOW NAMESPACES'), 'namespace_id').includes(`perm_${label}`));
        assert.deepEqual(names(await server.rows('SHOW TABLES IN perm'), 'table_name'), ['keep']);
      });
    }

    it('a DDL statement in a batch from role user fails with the statement number', async () => {
      const res = await server.sql('SELECT 1; CREATE NAMESPACE perm_batch', { auth: alice });
      assertError(res, 403, 'PERMISSION_DENIED', /^Statement 2 failed: /);
    });

    it('EXECUTE AS USER does not let an admin run DDL with a user role', async () => {
      assertError(await server.sql("EXECUTE AS USER 'ddl_alice' (CREATE TABLE perm.via_exec (id INT PRIMARY KEY))"), 403, 'PERMISSION_DENIED');
      assert.deepEqual(names(await server.rows('SHOW TABLES IN perm'), 'table_name'), ['keep']);
    });

    it('role dba may create and drop namespaces and tables', async () => {
      const [ns] = await server.ok('CREATE NAMESPACE perm_dba', { auth: dba });
      assert.deepEqual(ns, { row_count: 0, message: "Namespace 'perm_dba' created successfully", as_user: 'ddl_dba' });
      await server.ok('CREATE USER TABLE perm_dba.t (id INT PRIMARY KEY)', { auth: dba });
      assert.deepEqual(await server.rows("SELECT created_by FROM system.tables WHERE namespace_id = 'perm_dba'"), [{ created_by: 'ddl_dba' }]);
      await server.ok('DROP TABLE perm_dba.t', { auth: dba });
      await server.ok('DROP NAMESPACE perm_dba', { auth: dba });
    });
  });
});
