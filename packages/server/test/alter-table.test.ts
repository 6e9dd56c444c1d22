/**
 * ALTER TABLE (schema evolution) end to end: every operation with rows written before and after it,
 * hot, flushed and compacted, read back through SELECT and point lookups (`WHERE pk = ...`);
 * fast defaults; restart after ALTER; every refusal with its message; system.schemas, DESCRIBE
 * TABLE ... HISTORY and the audit log; ALTER during concurrent writers and during a flush.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer, assertError, eventually, jobIdOf } from './harness.js';
import { LiveClient } from './ws-client.js';

describe('ALTER TABLE', () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE alt');
  });
  after(async () => {
    await server.dispose();
  });

  const rows = async (sql: string): Promise<unknown[][]> => {
    const res = await server.sql(sql);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body.results[0] as { rows?: unknown[][] }).rows ?? [];
  };
  const message = async (sql: string): Promise<string> => (await server.ok(sql))[0]!.message!;
  const compact = async (table: string): Promise<void> => {
    const job = await server.waitForJob(jobIdOf(await message(`STORAGE COMPACT TABLE ${table}`)), 30_000);
    assert.equal(job.status, 'completed', JSON.stringify(job));
  };

  /** Reads every row and a point lookup of each id, and checks them against `expected` ([id, ...cells]). */
  const check = async (table: string, columns: string, expected: unknown[][], where: string): Promise<void> => {
    assert.deepEqual(await rows(`SELECT ${columns} FROM ${table} ORDER BY id`), expected, `${where}: scan`);
    for (const row of expected) {
      assert.deepEqual(await rows(`SELECT ${columns} FROM ${table} WHERE id = ${String(row[0])}`), [row], `${where}: point lookup of ${String(row[0])}`);
    }
  };

  for (const tier of ['hot', 'flushed', 'compacted'] as const) {
    it(`ADD, RENAME, MODIFY, DROP over ${tier} rows of a USER table`, async () => {
      const t = `alt.evo_${tier}`;
      await server.ok(`CREATE USER TABLE ${t} (id BIGINT PRIMARY KEY, name TEXT, n INT)`);
      await server.ok(`INSERT INTO ${t} VALUES (1, 'one', 10), (2, 'two', 20)`);
      const settle = async (): Promise<void> => {
        if (tier === 'hot') return;
        await server.flushAndWait(t);
        if (tier === 'compacted') await compact(t);
      };
      await settle();

      assert.equal(await message(`ALTER TABLE ${t} ADD COLUMN c INT DEFAULT 7`), `Table ${t} altered successfully: ADD COLUMN c INT (version 2)`);
      await server.ok(`INSERT INTO ${t} (id, name, n, c) VALUES (3, 'three', 30, 8)`);
      await server.ok(`INSERT INTO ${t} (id, name, n) VALUES (4, 'four', 40)`);
      await check(t, 'id, name, n, c', [['1', 'one', 10, 7], ['2', 'two', 20, 7], ['3', 'three', 30, 8], ['4', 'four', 40, 7]], 'after ADD');
      await settle();

      assert.equal(await message(`ALTER TABLE ${t} RENAME COLUMN name TO title`), `Table ${t} altered successfully: RENAME COLUMN name TO title (version 3)`);
      await server.ok(`INSERT INTO ${t} (id, title, n) VALUES (5, 'five', 50)`);
      await check(t, 'id, title, n, c', [['1', 'one', 10, 7], ['2', 'two', 20, 7], ['3', 'three', 30, 8], ['4', 'four', 40, 7], ['5', 'five', 50, 7]], 'after RENAME');
      assertError(await server.sql(`SELECT name FROM ${t}`), 400, 'SQL_EXECUTION_ERROR', /column "name" not found/);
      await settle();

      assert.equal(await message(`ALTER TABLE ${t} MODIFY COLUMN n BIGINT`), `Table ${t} altered successfully: MODIFY COLUMN n BIGINT (version 4)`);
      await server.ok(`INSERT INTO ${t} (id, title, n) VALUES (6, 'six', 9007199254740993)`);
      await check(t, 'id, title, n', [['1', 'one', '10'], ['2', 'two', '20'], ['3', 'three', '30'], ['4', 'four', '40'], ['5', 'five', '50'], ['6', 'six', '9007199254740993']], 'after MODIFY');
      await settle();

      assert.equal(await message(`ALTER TABLE ${t} DROP COLUMN title`), `Table ${t} altered successfully: DROP COLUMN title (version 5)`);
      await server.ok(`UPDATE ${t} SET c = 70 WHERE id = 1`);
      await check(t, '*', (await rows(`SELECT * FROM ${t} ORDER BY id`)), 'after DROP: SELECT * is stable');
      await check(t, 'id, n, c', [['1', '10', 70], ['2', '20', 7], ['3', '30', 8], ['4', '40', 7], ['5', '50', 7], ['6', '9007199254740993', 7]], 'after DROP');
      assert.deepEqual((await rows(`SELECT * FROM ${t} WHERE id = 2`))[0]!.slice(0, 3), ['2', '20', 7]);
      // A column added again under a dropped name is a new column: old rows read NULL, not the dropped data.
      await server.ok(`ALTER TABLE ${t} ADD COLUMN title TEXT`);
      await check(t, 'id, title', [['1', null], ['2', null], ['3', null], ['4', null], ['5', null], ['6', null]], 'dropped data does not come back');
      await settle();
      await check(t, 'id, n, c, title', [['1', '10', 70, null], ['2', '20', 7, null], ['3', '30', 8, null], ['4', '40', 7, null], ['5', '50', 7, null], ['6', '9007199254740993', 7, null]], 'at the end');
    });
  }

  it('ALTER COLUMN SET/DROP NOT NULL and SET/DROP DEFAULT on a SHARED table; the fast default stays with old rows', async () => {
    const t = 'alt.cols';
    await server.ok(`CREATE SHARED TABLE ${t} (id INT PRIMARY KEY, v TEXT)`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 'a'), (2, NULL)`);
    await server.flushAndWait(t);
    assertError(await server.sql(`ALTER TABLE ${t} ALTER COLUMN v SET NOT NULL`), 400, 'SQL_EXECUTION_ERROR', /Cannot set column 'v' NOT NULL: 1 row\(s\) of alt\.cols hold NULL in it/);
    await server.ok(`UPDATE ${t} SET v = 'b' WHERE id = 2`);
    assert.equal(await message(`ALTER TABLE ${t} ALTER COLUMN v SET NOT NULL`), `Table ${t} altered successfully: ALTER COLUMN v SET NOT NULL (version 2)`);
    assert.equal(await message(`ALTER TABLE ${t} ALTER COLUMN v SET NOT NULL`), `Table ${t} unchanged: ALTER COLUMN v SET NOT NULL (version 2 - no changes needed)`);
    assertError(await server.sql(`INSERT INTO ${t} VALUES (3, NULL)`), 400, 'SQL_EXECUTION_ERROR', /NULL value in column 'v' violates NOT NULL/);
    assert.equal(await message(`ALTER TABLE ${t} ALTER COLUMN v DROP NOT NULL`), `Table ${t} altered successfully: ALTER COLUMN v DROP NOT NULL (version 3)`);
    await server.ok(`INSERT INTO ${t} VALUES (3, NULL)`);

    assert.equal(await message(`ALTER TABLE ${t} ADD COLUMN score INT DEFAULT 5`), `Table ${t} altered successfully: ADD COLUMN score INT (version 4)`);
    assert.equal(await message(`ALTER TABLE ${t} ALTER COLUMN score SET DEFAULT 9`), `Table ${t} altered successfully: ALTER COLUMN score SET DEFAULT 9 (version 5)`);
    await server.ok(`INSERT INTO ${t} (id, v) VALUES (4, 'd')`);
    assert.equal(await message(`ALTER TABLE ${t} ALTER COLUMN score DROP DEFAULT`), `Table ${t} altered successfully: ALTER COLUMN score DROP DEFAULT (version 6)`);
    assert.equal(await message(`ALTER TABLE ${t} ALTER COLUMN score DROP DEFAULT`), `Table ${t} unchanged: ALTER COLUMN score DROP DEFAULT (version 6 - no changes needed)`);
    await server.ok(`INSERT INTO ${t} (id, v) VALUES (5, 'e')`);
    // Rows from before ADD COLUMN keep the default it had then (5), whatever the default is later.
    await check(t, 'id, v, score', [[1, 'a', 5], [2, 'b', 5], [3, null, 5], [4, 'd', 9], [5, 'e', null]], 'hot and flushed');
    await server.flushAndWait(t);
    await compact(t);
    await check(t, 'id, v, score', [[1, 'a', 5], [2, 'b', 5], [3, null, 5], [4, 'd', 9], [5, 'e', null]], 'compacted');
    const described = await server.rows(`DESCRIBE TABLE ${t}`);
    assert.deepEqual(described.map((r) => [r.column_name, r.data_type, r.is_nullable, r.column_default]),
      [['id', 'INT', false, null], ['v', 'TEXT', true, null], ['score', 'INT', true, null], ['_seq', 'BIGINT', false, null], ['_deleted', 'BOOLEAN', false, null]]);
  });

  it('ADD COLUMN NOT NULL needs a DEFAULT on a table with rows; with one, every old row reads it', async () => {
    const t = 'alt.nn';
    await server.ok(`CREATE SHARED TABLE ${t} (id INT PRIMARY KEY)`);
    assert.equal(await message(`ALTER TABLE ${t} ADD COLUMN a TEXT NOT NULL`), `Table ${t} altered successfully: ADD COLUMN a TEXT (version 2)`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 'x')`);
    assertError(await server.sql(`ALTER TABLE ${t} ADD COLUMN b TEXT NOT NULL`), 400, 'SQL_EXECUTION_ERROR',
      /Cannot add NOT NULL column 'b' without a DEFAULT: alt\.nn already has rows/);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN b TEXT NOT NULL DEFAULT 'fill'`);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN d DECIMAL(10,2) DEFAULT 12.50`);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN ok BOOLEAN DEFAULT TRUE`);
    await server.flushAndWait(t);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN later BIGINT DEFAULT 42`);
    await check(t, 'id, a, b, d, ok, later', [[1, 'x', 'fill', '12.50', true, '42']], 'defaults over hot and cold');
  });

  it('refuses what upstream refuses, with its messages', async () => {
    const t = 'alt.refuse';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, n INT, f FLOAT, s TEXT, d DECIMAL(10,2))`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 1, 1.5, 'x', 1.25)`);
    const refused = async (sql: string, code: string, re: RegExp): Promise<void> => assertError(await server.sql(sql), 400, code, re);
    await refused(`ALTER TABLE ${t} ADD COLUMN _seq INT`, 'SQL_EXECUTION_ERROR', /^Cannot add column '_seq': reserved system column name$/);
    await refused(`ALTER TABLE ${t} ADD COLUMN _deleted BOOLEAN`, 'SQL_EXECUTION_ERROR', /^Cannot add column '_deleted': reserved system column name$/);
    await refused(`ALTER TABLE ${t} DROP COLUMN _seq`, 'SQL_EXECUTION_ERROR', /^Cannot drop column '_seq': system column cannot be modified$/);
    await refused(`ALTER TABLE ${t} RENAME COLUMN _seq TO x`, 'SQL_EXECUTION_ERROR', /^Cannot rename column '_seq': system column cannot be modified$/);
    await refused(`ALTER TABLE ${t} RENAME COLUMN n TO _deleted`, 'SQL_EXECUTION_ERROR', /^Cannot rename column to '_deleted': reserved system column name$/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN _seq INT`, 'SQL_EXECUTION_ERROR', /^Cannot modify column '_seq': system column cannot be altered$/);
    await refused(`ALTER TABLE ${t} ADD COLUMN n INT`, 'SQL_EXECUTION_ERROR', /^Column 'n' already exists$/);
    await refused(`ALTER TABLE ${t} DROP COLUMN nope`, 'SQL_EXECUTION_ERROR', /^Column 'nope' does not exist$/);
    await refused(`ALTER TABLE ${t} RENAME COLUMN nope TO x`, 'SQL_EXECUTION_ERROR', /^Column 'nope' does not exist$/);
    await refused(`ALTER TABLE ${t} RENAME COLUMN n TO s`, 'SQL_EXECUTION_ERROR', /^Column 's' already exists$/);
    await refused(`ALTER TABLE ${t} ADD COLUMN x INT FIRST`, 'INVALID_SQL', /Column position modifiers \(FIRST\/AFTER\) are not supported/);
    await refused(`ALTER TABLE ${t} ADD COLUMN x INT AFTER n`, 'INVALID_SQL', /Column position modifiers \(FIRST\/AFTER\) are not supported/);
    await refused(`ALTER TABLE ${t} ALTER COLUMN id DROP NOT NULL`, 'SQL_EXECUTION_ERROR', /^Column 'id' is a PRIMARY KEY and cannot be nullable$/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN id BIGINT NULL`, 'SQL_EXECUTION_ERROR', /^Column 'id' is a PRIMARY KEY and cannot be nullable$/);
    await refused(`ALTER TABLE ${t} DROP COLUMN id`, 'SQL_EXECUTION_ERROR', /^Cannot drop column 'id': it is the PRIMARY KEY$/);
    await refused(`ALTER TABLE ${t} RENAME COLUMN id TO key`, 'SQL_EXECUTION_ERROR', /^Cannot rename column 'id': it is the PRIMARY KEY$/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN n SMALLINT`, 'SQL_EXECUTION_ERROR', /^Cannot change column 'n' from INT to SMALLINT: only widening .*narrowing could lose data$/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN f INT`, 'SQL_EXECUTION_ERROR', /^Cannot change column 'f' from FLOAT to INT: only widening/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN s INT`, 'SQL_EXECUTION_ERROR', /^Cannot change column 's' from TEXT to INT: only widening .*not compatible$/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN d DECIMAL(8,2)`, 'SQL_EXECUTION_ERROR', /^Cannot change column 'd' from DECIMAL\(10,2\) to DECIMAL\(8,2\): narrowing a DECIMAL's precision/);
    await refused(`ALTER TABLE ${t} MODIFY COLUMN d DECIMAL(12,3)`, 'SQL_EXECUTION_ERROR', /^Cannot change column 'd' from DECIMAL\(10,2\) to DECIMAL\(12,3\): a DECIMAL keeps its scale/);
    await refused(`ALTER TABLE ${t} ADD COLUMN k INT PRIMARY KEY`, 'SQL_EXECUTION_ERROR', /^Cannot add PRIMARY KEY column 'k'/);
    await refused(`ALTER TABLE ${t} SET TBLPROPERTIES (bogus = 1)`, 'INVALID_SQL', /Unknown table option 'BOGUS'/);
    await refused(`ALTER TABLE ${t} SET TTL_SECONDS 10`, 'INVALID_SQL', /TTL_SECONDS, MAX_BUFFER and EPHEMERAL apply to STREAM tables only/);
    await refused(`ALTER TABLE ${t} RENAME TO other`, 'INVALID_SQL', /renaming a table is not supported/);
    await refused(`ALTER TABLE alt.missing ADD COLUMN x INT`, 'SQL_EXECUTION_ERROR', /Table 'alt\.missing' does not exist/);
    const alice = await server.createUser('alt_alice', 'user');
    assertError(await server.sql(`ALTER TABLE ${t} ADD COLUMN x INT`, { auth: alice }), 403, 'PERMISSION_DENIED');
    // Widening that is allowed, and no-ops that leave the version alone.
    assert.equal(await message(`ALTER TABLE ${t} MODIFY COLUMN f DOUBLE`), `Table ${t} altered successfully: MODIFY COLUMN f DOUBLE (version 2)`);
    assert.equal(await message(`ALTER TABLE ${t} MODIFY COLUMN d DECIMAL(14,2)`), `Table ${t} altered successfully: MODIFY COLUMN d DECIMAL(14,2) (version 3)`);
    assert.equal(await message(`ALTER TABLE ${t} MODIFY COLUMN s TEXT`), `Table ${t} unchanged: MODIFY COLUMN s TEXT (version 3 - no changes needed)`);
    assert.equal(await message(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS n INT`), `Table ${t} unchanged: ADD COLUMN n INT (version 3 - no changes needed)`);
    assert.equal(await message(`ALTER TABLE ${t} DROP COLUMN IF EXISTS nope`), `Table ${t} unchanged: DROP COLUMN nope (version 3 - no changes needed)`);
    assert.deepEqual(await rows(`SELECT id, n, f, s, d FROM ${t}`), [['1', 1, 1.5, 'x', '1.25']]);
    const [table] = await server.rows(`SELECT schema_version FROM system.tables WHERE namespace_id = 'alt' AND table_name = 'refuse'`);
    assert.equal(table!.schema_version, 3);
  });

  it('options: SET TBLPROPERTIES, FLUSH_POLICY, TTL_SECONDS and MAX_BUFFER write versions too', async () => {
    await server.ok(`CREATE SHARED TABLE alt.opts (id INT PRIMARY KEY)`);
    assert.equal(await message(`ALTER TABLE alt.opts SET FLUSH_POLICY 'rows:50'`), `Table alt.opts altered successfully: SET FLUSH_POLICY 'rows:50' (version 2)`);
    assert.equal(await message(`ALTER TABLE alt.opts SET TBLPROPERTIES (flush_policy = 'rows:50')`), `Table alt.opts unchanged: SET TBLPROPERTIES (flush_policy = 'rows:50') (version 2 - no changes needed)`);
    assert.equal(await message(`ALTER TABLE alt.opts SET TBLPROPERTIES (deleted_retention_hours = 2)`), `Table alt.opts altered successfully: SET TBLPROPERTIES (deleted_retention_hours = 2) (version 3)`);
    const [row] = await server.rows(`SELECT flush_policy, deleted_retention_hours, schema_version FROM system.tables WHERE table_name = 'opts'`);
    assert.deepEqual(row, { flush_policy: 'rows:50', deleted_retention_hours: 2, schema_version: 3 });
    await server.ok(`CREATE STREAM TABLE alt.events (id INT, body TEXT) WITH (TTL_SECONDS = 60)`);
    assert.equal(await message(`ALTER TABLE alt.events SET TTL_SECONDS = 120`), `Table alt.events altered successfully: SET TTL_SECONDS 120 (version 2)`);
    assert.equal(await message(`ALTER TABLE alt.events SET MAX_BUFFER 1000`), `Table alt.events altered successfully: SET MAX_BUFFER 1000 (version 3)`);
    assertError(await server.sql(`ALTER TABLE alt.events SET FLUSH_POLICY 'rows:5'`), 400, 'INVALID_SQL', /STREAM tables are never flushed/);
    const [stream] = await server.rows(`SELECT ttl_seconds, max_buffer FROM system.tables WHERE table_name = 'events'`);
    assert.deepEqual(stream, { ttl_seconds: '120', max_buffer: '1000' });
  });

  it('system.schemas and DESCRIBE TABLE ... HISTORY list every version; the audit log records each ALTER', async () => {
    const t = 'alt.hist';
    await server.ok(`CREATE SHARED TABLE ${t} (id INT PRIMARY KEY, a TEXT)`);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN b INT`);
    await server.ok(`ALTER TABLE ${t} RENAME COLUMN a TO aa`);
    await server.ok(`ALTER TABLE ${t} DROP COLUMN b`);
    const versions = await server.rows(`SELECT version, table_type, change, is_latest, columns FROM system.schemas WHERE namespace_id = 'alt' AND table_name = 'hist' ORDER BY version`);
    assert.deepEqual(versions.map((v) => [v.version, v.table_type, v.change, v.is_latest]), [
      [1, 'shared', 'CREATE TABLE', false], [2, 'shared', 'ADD COLUMN b INT', false], [3, 'shared', 'RENAME COLUMN a TO aa', false], [4, 'shared', 'DROP COLUMN b', true],
    ]);
    const cols = (v: Record<string, unknown>): unknown => (JSON.parse(String(v.columns)) as { column_id: number; name: string }[]).map((c) => [c.column_id, c.name]);
    assert.deepEqual(cols(versions[1]!), [[1, 'id'], [2, 'a'], [3, 'b']]);
    assert.deepEqual(cols(versions[3]!), [[1, 'id'], [2, 'aa']]);
    // Column ids are never reused: a column added after a drop gets a new one.
    await server.ok(`ALTER TABLE ${t} ADD COLUMN b INT`);
    const [latest] = await server.rows(`SELECT columns FROM system.schemas WHERE table_name = 'hist' AND is_latest`);
    assert.deepEqual(cols(latest!), [[1, 'id'], [2, 'aa'], [4, 'b']]);
    const history = await server.rows(`DESCRIBE TABLE ${t} HISTORY`);
    assert.deepEqual(history.map((h) => [h.version, h.change, h.is_latest]), [
      [1, 'CREATE TABLE', false], [2, 'ADD COLUMN b INT', false], [3, 'RENAME COLUMN a TO aa', false], [4, 'DROP COLUMN b', false], [5, 'ADD COLUMN b INT', true],
    ]);
    assert.ok(history.every((h) => typeof h.created_at === 'number' || typeof h.created_at === 'string'));
    // system.table_schemas keeps working.
    assert.equal((await server.rows(`SELECT version FROM system.table_schemas WHERE table_name = 'hist'`)).length, 5);
    const audit = await server.rows(`SELECT action, target, status, details FROM system.audit_log WHERE action = 'alter_table' AND target = '${t}' ORDER BY timestamp`);
    assert.deepEqual(audit.map((a) => a.details), [
      `Table ${t} altered successfully: ADD COLUMN b INT (version 2)`,
      `Table ${t} altered successfully: RENAME COLUMN a TO aa (version 3)`,
      `Table ${t} altered successfully: DROP COLUMN b (version 4)`,
      `Table ${t} altered successfully: ADD COLUMN b INT (version 5)`,
    ]);
  });

  it('survives a restart: old hot and cold rows still map by column id', async () => {
    const t = 'alt.restart';
    await server.ok(`CREATE USER TABLE ${t} (id BIGINT PRIMARY KEY, name TEXT, n INT)`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 'one', 1)`);
    await server.flushAndWait(t);
    await server.ok(`INSERT INTO ${t} VALUES (2, 'two', 2)`);
    await server.ok(`ALTER TABLE ${t} RENAME COLUMN name TO title`);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN c TEXT DEFAULT 'dflt'`);
    await server.ok(`ALTER TABLE ${t} DROP COLUMN n`);
    await server.ok(`INSERT INTO ${t} VALUES (3, 'three', 'c3')`);
    const expected = [['1', 'one', 'dflt'], ['2', 'two', 'dflt'], ['3', 'three', 'c3']];
    await check(t, 'id, title, c', expected, 'before restart');
    await server.stop();
    await server.launch();
    await check(t, 'id, title, c', expected, 'after restart');
    await server.flushAndWait(t);
    await compact(t);
    await check(t, 'id, title, c', expected, 'after restart, flush and compaction');
  });

  it('ALTER during concurrent writers: every write lands under exactly one schema version', async () => {
    const t = 'alt.race';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, v INT)`);
    let stop = false;
    let next = 0;
    const failures: string[] = [];
    const writer = async (): Promise<void> => {
      while (!stop) {
        const id = ++next;
        const res = await server.sql(`INSERT INTO ${t} (id, v) VALUES (${id}, ${id})`);
        if (res.status !== 200) failures.push(JSON.stringify(res.body));
      }
    };
    const writers = [writer(), writer(), writer()];
    await eventually('some rows', async () => next > 20, 20_000);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN w INT DEFAULT -1`);
    await eventually('rows after the first ALTER', async () => next > 60, 20_000);
    await server.ok(`ALTER TABLE ${t} MODIFY COLUMN v BIGINT`);
    await eventually('rows after the second ALTER', async () => next > 100, 20_000);
    await server.ok(`ALTER TABLE ${t} RENAME COLUMN w TO ww`);
    await eventually('rows after the third ALTER', async () => next > 140, 20_000);
    stop = true;
    await Promise.all(writers);
    assert.deepEqual(failures, []);
    const all = await rows(`SELECT id, v, ww FROM ${t} ORDER BY id`);
    assert.equal(all.length, next);
    for (const [id, v, ww] of all) {
      assert.equal(String(v), String(id));
      assert.equal(ww, -1);
    }
    await server.flushAndWait(t);
    assert.equal((await rows(`SELECT count(*) FROM ${t} WHERE ww = -1`))[0]![0], String(next));
  });

  it('ALTER during a flush: the segment keeps the version it was written with and reads in the new one', async () => {
    const t = 'alt.flushrace';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, v TEXT)`);
    const values = Array.from({ length: 2000 }, (_, i) => `(${i + 1}, 'v${i + 1}')`).join(', ');
    await server.ok(`INSERT INTO ${t} VALUES ${values}`);
    const [flush] = await server.ok(`STORAGE FLUSH TABLE ${t}`);
    await server.ok(`ALTER TABLE ${t} RENAME COLUMN v TO label`);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN extra INT DEFAULT 3`);
    const job = await server.waitForJob(jobIdOf(flush!.message), 30_000);
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.deepEqual(await rows(`SELECT count(*), count(label), sum(extra) FROM ${t}`), [['2000', '2000', '6000']]);
    assert.deepEqual(await rows(`SELECT label, extra FROM ${t} WHERE id = 1234`), [['v1234', 3]]);
    await compact(t);
    assert.deepEqual(await rows(`SELECT label, extra FROM ${t} WHERE id = 1999`), [['v1999', 3]]);
  });

  it('an open subscription survives ADD COLUMN and keeps getting changes', async () => {
    const t = 'alt.live';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, v TEXT)`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 'a')`);
    const c = await LiveClient.connect(server.url, { user: 'root', password: ROOT_PASSWORD });
    try {
      await c.subscribeOk('s', `SELECT * FROM ${t}`, { last_rows: 10 });
      const mark = c.mark();
      await server.ok(`ALTER TABLE ${t} ADD COLUMN extra INT DEFAULT 5`);
      await server.ok(`INSERT INTO ${t} (id, v, extra) VALUES (2, 'b', 6)`);
      const change = await c.waitFor((m) => m.subscription_id === 's' && (m.type === 'change' || m.type === 'error'), 15_000, mark);
      assert.notEqual(change.type, 'error', JSON.stringify(change));
      const row = (change.rows as Record<string, unknown>[])[0]!;
      assert.equal(row.id, '2');
      assert.equal(row.v, 'b');
      await server.ok(`UPDATE ${t} SET v = 'a2' WHERE id = 1`);
      const update = await c.waitFor((m) => m.subscription_id === 's' && m.type === 'change' && m.change_type === 'update', 15_000, mark);
      assert.equal((update.rows as Record<string, unknown>[])[0]!.v, 'a2');
    } finally {
      await c.close();
    }
    assert.deepEqual(await rows(`SELECT id, v, extra FROM ${t} ORDER BY id`), [['1', 'a2', 5], ['2', 'b', 6]]);
  });

  it('SET NOT NULL racing writers of NULL: either it succeeds and no NULL is left, or it fails and the column stays nullable', async () => {
    const t = 'alt.nullrace';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, v TEXT)`);
    let stop = false;
    let next = 0;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const id = ++next;
        // Half the rows NULL until the column is NOT NULL, then refused (NOT NULL) or written.
        await server.sql(`INSERT INTO ${t} (id, v) VALUES (${id}, ${id % 2 === 0 ? 'NULL' : `'x'`})`);
      }
    };
    const writers = [writer(), writer()];
    await eventually('some rows', async () => next > 10, 20_000);
    // Delete the NULLs and set NOT NULL in a tight loop: the writers keep adding NULLs meanwhile.
    let outcome: { status: number; message: string } | null = null;
    for (let i = 0; i < 5 && (outcome === null || outcome.status !== 200); i++) {
      await server.sql(`DELETE FROM ${t} WHERE v IS NULL`);
      const res = await server.sql(`ALTER TABLE ${t} ALTER COLUMN v SET NOT NULL`);
      outcome = { status: res.status, message: res.body.error?.message ?? res.body.results[0]?.message ?? '' };
    }
    stop = true;
    await Promise.all(writers);
    const [column] = await server.rows(`SELECT is_nullable FROM system.columns WHERE table_name = 'nullrace' AND column_name = 'v'`);
    const nulls = Number((await rows(`SELECT count(*) FROM ${t} WHERE v IS NULL`))[0]![0]);
    if (column!.is_nullable === false) assert.equal(nulls, 0, `NOT NULL column holds ${nulls} NULLs; last ALTER: ${JSON.stringify(outcome)}`);
    else assert.equal(outcome!.status, 400, JSON.stringify(outcome));
  });

  it('the rows flush policy keeps counting across an ALTER and flushes in the current schema', async () => {
    const t = 'alt.policy';
    await server.ok(`CREATE SHARED TABLE ${t} (id BIGINT PRIMARY KEY, v TEXT) WITH (FLUSH_POLICY = 'rows:5')`);
    await server.ok(`INSERT INTO ${t} VALUES (1, 'a')`);
    await server.ok(`INSERT INTO ${t} VALUES (2, 'b')`);
    await server.ok(`INSERT INTO ${t} VALUES (3, 'c')`);
    await server.ok(`ALTER TABLE ${t} ADD COLUMN w INT DEFAULT 1`);
    await server.ok(`INSERT INTO ${t} VALUES (4, 'd', 2)`);
    await server.ok(`INSERT INTO ${t} VALUES (5, 'e', 3)`);
    const segment = await eventually('a policy flush', async () =>
      (await server.rows(`SELECT row_count, schema_version FROM system.manifest WHERE table_name = 'policy'`))[0], 20_000);
    assert.deepEqual(segment, { row_count: '5', schema_version: 2 });
    await check(t, 'id, v, w', [['1', 'a', 1], ['2', 'b', 1], ['3', 'c', 1], ['4', 'd', 2], ['5', 'e', 3]], 'flushed by policy');
  });
});
