/**
 * Damaged cold-tier files (the "faults" issue), against the real server on a temp data dir:
 * - a truncated manifest, a manifest whose segment path leaves the partition (`../x/...`), a segment
 *   with overwritten bytes, a truncated segment, and one user's partition of a USER table damaged:
 *   the server still starts, every other table (and user) is served, the damaged ones answer
 *   409 TABLE_UNAVAILABLE naming the table and the file, and system.tables says why;
 * - STORAGE CHECK TABLE reports the damaged file; STORAGE REPAIR TABLE (a `repair` job) quarantines
 *   unreadable segments, rebuilds the manifest and brings the table back with the readable rows;
 *   later flushes never reuse a quarantined file's name;
 * - compaction over a damaged segment fails its job with the reason and deletes nothing;
 * - CHECK and REPAIR are for dba/system only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, assertError, jobIdOf } from './harness.js';

type Row = Record<string, unknown>;

describe('damaged cold-tier files', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };
  const dir = (table: string, partition = ''): string => join(server.dataDir, 'storage', 'dmg', table, partition);

  /** Overwrites 64 bytes in the middle of a file (its size unchanged). */
  const overwrite = (path: string): void => {
    const bytes = readFileSync(path);
    const at = Math.floor(bytes.length / 2);
    for (let i = 0; i < 64; i++) bytes[at + i] = bytes[at + i]! ^ 0x5a;
    writeFileSync(path, bytes);
  };

  const count = async (table: string, auth?: { user: string; password: string }): Promise<number> =>
    Number((await server.rows(`SELECT count(*) AS n FROM dmg.${table}`, auth === undefined ? {} : { auth }))[0]!.n);

  const check = async (table: string): Promise<Row[]> => server.rows(`STORAGE CHECK TABLE dmg.${table}`);

  const repair = async (table: string): Promise<Row> => {
    const [res] = await server.ok(`STORAGE REPAIR TABLE dmg.${table}`);
    assert.match(res!.message!, /^Storage repair started for table 'dmg\.\w+'\. Job ID: RP-\d+$/);
    return server.waitForJob(jobIdOf(res!.message));
  };

  const unavailable = async (sql: string, file: RegExp, auth?: { user: string; password: string }): Promise<void> => {
    const res = await server.sql(sql, auth === undefined ? {} : { auth });
    assertError(res, 409, 'TABLE_UNAVAILABLE', file);
  };

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE dmg');
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
    // Two segments each (ids 1-50, then 51-100), so a repair has a readable one to keep.
    for (const t of ['good', 'man', 'esc', 'flip', 'trunc', 'comp', 'lost', 'nextb']) {
      await server.ok(`CREATE SHARED TABLE dmg.${t} (id BIGINT PRIMARY KEY, body TEXT)`);
      for (const [lo, hi] of [[1, 50], [51, 100]] as const) {
        await server.ok(`INSERT INTO dmg.${t} SELECT i, repeat('x', 40) || i FROM range(${lo}, ${hi + 1}) AS r(i)`);
        await server.flushAndWait(`dmg.${t}`);
      }
    }
    await server.ok('CREATE USER TABLE dmg.notes (id BIGINT PRIMARY KEY, body TEXT)');
    await server.ok("INSERT INTO dmg.notes VALUES (1, 'a1'), (2, 'a2')", { auth: alice });
    await server.ok("INSERT INTO dmg.notes VALUES (1, 'b1')", { auth: bob });
    await server.flushAndWait('dmg.notes');
  });
  after(async () => {
    await server.dispose();
  });

  it('starts with damaged files, serves every other table, and names the damaged file', async () => {
    const aliceId = String((await server.rows("SELECT account_id FROM system.users WHERE user_id = 'alice'"))[0]!.account_id);
    assert.equal(await server.stop(), 0);
    // A manifest cut in the middle of its JSON.
    const manifest = join(dir('man'), 'manifest.json');
    truncateSync(manifest, Math.floor(statSync(manifest).size / 2));
    // A segment path that leaves the partition directory.
    const esc = JSON.parse(readFileSync(join(dir('esc'), 'manifest.json'), 'utf8'));
    esc.segments[0].path = '../x/batch-0.parquet';
    writeFileSync(join(dir('esc'), 'manifest.json'), JSON.stringify(esc));
    // A manifest whose next batch number is one it lists (an old copy put back): the next flush would
    // write over that segment (a fault review lost 2,000 rows so).
    const nextb = JSON.parse(readFileSync(join(dir('nextb'), 'manifest.json'), 'utf8'));
    nextb.next_batch = 1;
    writeFileSync(join(dir('nextb'), 'manifest.json'), JSON.stringify(nextb));
    // Bytes overwritten in place (same size), and a segment cut short.
    overwrite(join(dir('flip'), 'batch-1.parquet'));
    const trunc = join(dir('trunc'), 'batch-1.parquet');
    truncateSync(trunc, Math.floor(statSync(trunc).size / 2));
    // One user's partition of a USER table.
    writeFileSync(join(dir('notes', aliceId), 'manifest.json'), '{"format": 1, "segm');
    // A manifest deleted outright: its segments hold the only copy of 100 flushed rows, so they must
    // not be swept at start-up as orphans of a crashed first flush.
    rmSync(join(dir('lost'), 'manifest.json'));
    await server.launch();
    assert.deepEqual(readdirSync(dir('lost')).filter((f) => f.endsWith('.parquet')).sort(), ['batch-0.parquet', 'batch-1.parquet']);
    await unavailable('SELECT * FROM dmg.lost', /storage\/dmg\/lost\/manifest\.json: missing, but the hot tier says rows of this partition were flushed/);

    assert.equal(await count('good'), 100);
    assert.equal(await count('notes', bob), 1);
    await unavailable('SELECT * FROM dmg.man', /Table 'dmg\.man' is unavailable: storage\/dmg\/man\/manifest\.json: not valid JSON/);
    await unavailable('SELECT * FROM dmg.esc WHERE id = 3', /dmg\/esc\/manifest\.json: segment path "\.\.\/x\/batch-0\.parquet" points outside the partition directory/);
    await unavailable('SELECT count(*) FROM dmg.nextb', /dmg\/nextb\/manifest\.json: segment batch-1\.parquet is not below next_batch 1/);
    assert.equal(readdirSync(dir('nextb')).filter((f) => f.endsWith('.parquet')).length, 2, 'no segment touched');
    await unavailable('SELECT count(*) FROM dmg.flip', /Table 'dmg\.flip' is unavailable: storage\/dmg\/flip\/batch-1\.parquet: SHA-256 does not match/);
    await unavailable('SELECT * FROM dmg.trunc', /storage\/dmg\/trunc\/batch-1\.parquet: size \d+ bytes, the manifest says \d+/);
    await unavailable('SELECT * FROM dmg.notes', new RegExp(`dmg/notes/${aliceId}/manifest\\.json`), alice);
    // Writes into a damaged partition's hot tier still fail cleanly on the read they need, never 500.
    const write = await server.sql("UPDATE dmg.trunc SET body = 'y' WHERE id > 0");
    assert.notEqual(write.status, 500, JSON.stringify(write.body));
    // Still served after all that.
    assert.equal(await count('good'), 100);
    assert.equal(await count('notes', bob), 1);

    const tables = await server.rows("SELECT table_name, status, unavailable_reason FROM system.tables WHERE namespace_id = 'dmg' ORDER BY table_name");
    const status = Object.fromEntries(tables.map((t) => [t.table_name, t.status]));
    assert.deepEqual(status, { comp: 'available', esc: 'unavailable', flip: 'unavailable', good: 'available', lost: 'unavailable', man: 'unavailable', nextb: 'unavailable', notes: 'unavailable', trunc: 'unavailable' });
    assert.match(String(tables.find((t) => t.table_name === 'notes')!.unavailable_reason), /\(user alice\): not valid JSON/);
    assert.equal(tables.find((t) => t.table_name === 'good')!.unavailable_reason, null);
    // system.manifest still answers, without the damaged partitions.
    const listed = await server.rows("SELECT DISTINCT table_name FROM system.manifest WHERE namespace_id = 'dmg' ORDER BY table_name");
    assert.deepEqual(listed.map((r) => r.table_name), ['comp', 'good', 'notes']);
  });

  it('STORAGE CHECK TABLE reports each file', async () => {
    const good = await check('good');
    assert.deepEqual(good.map((r) => [r.partition, r.file, r.status]), [[null, 'manifest.json', 'ok'], [null, 'batch-0.parquet', 'ok'], [null, 'batch-1.parquet', 'ok']]);
    assert.match(String(good[1]!.detail), /^50 rows, _seq \d+\.\.\d+, checksum ok$/);
    const flip = await check('flip');
    assert.deepEqual(flip.map((r) => [r.file, r.status]), [['manifest.json', 'ok'], ['batch-0.parquet', 'ok'], ['batch-1.parquet', 'damaged']]);
    assert.match(String(flip[2]!.detail), /SHA-256 .* does not match/);
    const trunc = await check('trunc');
    assert.deepEqual(trunc.map((r) => [r.file, r.status]), [['manifest.json', 'ok'], ['batch-0.parquet', 'ok'], ['batch-1.parquet', 'damaged']]);
    const man = await check('man');
    assert.deepEqual(man.map((r) => [r.file, r.status]), [['manifest.json', 'damaged'], ['batch-0.parquet', 'unlisted'], ['batch-1.parquet', 'unlisted']]);
    const esc = await check('esc');
    assert.deepEqual(esc.map((r) => [r.file, r.status]), [['manifest.json', 'damaged'], ['batch-0.parquet', 'unlisted'], ['batch-1.parquet', 'unlisted']]);
    const notes = await check('notes');
    assert.deepEqual(notes.map((r) => [r.partition, r.file, r.status]).sort(), [['alice', 'batch-0.parquet', 'unlisted'], ['alice', 'manifest.json', 'damaged'], ['bob', 'batch-0.parquet', 'ok'], ['bob', 'manifest.json', 'ok']]);
  });

  it('compaction over a damaged segment fails its job with the reason and deletes nothing', async () => {
    // Damaged while running, after this process verified it on the first read: compaction re-checks.
    assert.equal(await count('comp'), 100);
    overwrite(join(dir('comp'), 'batch-0.parquet'));
    const [res] = await server.ok('STORAGE COMPACT TABLE dmg.comp');
    const job = await server.waitForJob(jobIdOf(res!.message));
    assert.equal(job.status, 'failed', JSON.stringify(job));
    assert.match(String(job.error_message), /Table 'dmg\.comp' is unavailable: storage\/dmg\/comp\/batch-0\.parquet: SHA-256/);
    assert.deepEqual(readdirSync(dir('comp')).filter((f) => f.endsWith('.parquet')).sort(), ['batch-0.parquet', 'batch-1.parquet']);
    await unavailable('SELECT * FROM dmg.comp', /batch-0\.parquet/);
  });

  it('a segment replaced while the server runs, after this process verified it, is checked again before its next read', async () => {
    await server.ok('CREATE NAMESPACE dmg2');
    for (const t of ['live', 'feed']) {
      await server.ok(`CREATE SHARED TABLE dmg2.${t} (id BIGINT PRIMARY KEY, body TEXT)`);
      await server.ok(`INSERT INTO dmg2.${t} SELECT i, '${t}-' || i FROM range(1, 51) AS r(i)`);
      await server.flushAndWait(`dmg2.${t}`);
    }
    const segment = (t: string): string => join(server.dataDir, 'storage', 'dmg2', t, 'batch-0.parquet');
    // Read (and so verified) before the damage.
    assert.deepEqual(await server.rows('SELECT body FROM dmg2.live WHERE id = 5'), [{ body: 'live-5' }]);
    // A valid Parquet file of the same shape with other values (the query engine reads it without
    // complaint): only the checksum tells it from the real one.
    copyFileSync(segment('feed'), segment('live'));
    // A new segment: the next query loads the partition's segments again, the replaced one among them.
    await server.ok("INSERT INTO dmg2.live VALUES (51, 'live-51')");
    await server.flushAndWait('dmg2.live');
    await unavailable("SELECT id, body FROM dmg2.live WHERE body LIKE 'feed%' OR id = 5", /storage\/dmg2\/live\/batch-0\.parquet: (SHA-256 does not match|size)/);
    assert.equal(await count('good'), 100);
  });

  it('STORAGE REPAIR TABLE quarantines unreadable segments and brings the tables back', async () => {
    for (const [table, rows, quarantined] of [['flip', 50, 'batch-1.parquet'], ['trunc', 50, 'batch-1.parquet'], ['comp', 50, 'batch-0.parquet'], ['man', 100, null], ['esc', 100, null], ['lost', 100, null], ['nextb', 100, null]] as const) {
      const job = await repair(table);
      assert.equal(job.status, 'completed', JSON.stringify(job));
      assert.equal(job.job_type, 'repair');
      assert.equal(job.rows_processed, String(rows), table);
      const result = JSON.parse(String(job.result)) as { partitions: { quarantined: { file: string; moved_to: string }[]; forgotten_keys: number }[] };
      assert.deepEqual(result.partitions[0]!.quarantined.map((q) => q.file), quarantined === null ? [] : [quarantined], table);
      // The 50 keys of a quarantined segment no longer point at it.
      assert.equal(result.partitions[0]!.forgotten_keys, quarantined === null ? 0 : 50, table);
      if (quarantined !== null) {
        assert.ok(existsSync(join(dir(table), 'quarantine', quarantined)), `${table}: quarantined, not deleted`);
        assert.ok(!existsSync(join(dir(table), quarantined)));
      }
      assert.equal(await count(table), rows, table);
      const report = await check(table);
      assert.ok(report.every((r) => r.status === 'ok' || r.status === 'quarantined'), JSON.stringify(report));
    }
    // The readable rows are the ones back: ids 1-50 of flip (batch-0), 51-100 of comp (batch-1).
    assert.deepEqual(await server.rows('SELECT min(id) AS lo, max(id) AS hi FROM dmg.flip'), [{ lo: '1', hi: '50' }]);
    assert.deepEqual(await server.rows('SELECT min(id) AS lo, max(id) AS hi FROM dmg.comp'), [{ lo: '51', hi: '100' }]);
    assert.equal((await repair('notes')).status, 'completed');
    assert.equal(await count('notes', alice), 2);
    assert.equal(await count('notes', bob), 1);
    const tables = await server.rows("SELECT DISTINCT status FROM system.tables WHERE namespace_id = 'dmg'");
    assert.deepEqual(tables, [{ status: 'available' }]);

    // Writes and flushes go on; a quarantined file's name is never reused.
    await server.ok("INSERT INTO dmg.flip VALUES (500, 'new')");
    await server.flushAndWait('dmg.flip');
    assert.deepEqual(readdirSync(dir('flip')).filter((f) => f.endsWith('.parquet')).sort(), ['batch-0.parquet', 'batch-2.parquet']);
    assert.equal(await count('flip'), 51);
    // A key whose row was lost with the quarantined file is gone, and can be written again.
    assert.deepEqual(await server.rows('SELECT id FROM dmg.flip WHERE id = 60'), []);
    await server.ok("INSERT INTO dmg.flip VALUES (60, 'again')");
    assert.deepEqual(await server.rows('SELECT body FROM dmg.flip WHERE id = 60'), [{ body: 'again' }]);
    // And a restart finds everything healthy.
    assert.equal(await server.stop(), 0);
    await server.launch();
    for (const [table, rows] of [['flip', 52], ['trunc', 50], ['man', 100], ['esc', 100], ['good', 100]] as const) assert.equal(await count(table), rows, table);
    const compacted = await server.ok('STORAGE COMPACT TABLE dmg.man');
    assert.equal((await server.waitForJob(jobIdOf(compacted[0]!.message))).status, 'completed');
    assert.equal(await count('man'), 100);
  });

  it('CHECK and REPAIR are for dba and system only', async () => {
    for (const sql of ['STORAGE CHECK TABLE dmg.good', 'STORAGE REPAIR TABLE dmg.good']) {
      assertError(await server.sql(sql, { auth: alice }), 403, 'PERMISSION_DENIED');
    }
    assertError(await server.sql('STORAGE CHECK dmg.good'), 400, 'INVALID_SQL');
  });
});

describe('REPAIR forgets the keys whose newest version was lost', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server.dispose();
  });

  it('a delete or an update in a quarantined segment does not bring the older version back; scans and lookups agree', async () => {
    // A fault review: the deleted row came back and the update was undone in scans, while point lookups said absent.
    await server.ok('CREATE NAMESPACE rs');
    await server.ok('CREATE SHARED TABLE rs.t (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok("INSERT INTO rs.t VALUES (1, 'old-1'), (2, 'old-2'), (3, 'old-3')");
    await server.flushAndWait('rs.t');
    await server.ok('DELETE FROM rs.t WHERE id = 1');
    await server.ok("UPDATE rs.t SET v = 'new-2' WHERE id = 2");
    await server.flushAndWait('rs.t');
    assert.equal(await server.stop(), 0);
    const segment = join(server.dataDir, 'storage', 'rs', 't', 'batch-1.parquet');
    truncateSync(segment, Math.floor(statSync(segment).size / 2));
    await server.launch();
    const [res] = await server.ok('STORAGE REPAIR TABLE rs.t');
    const job = await server.waitForJob(jobIdOf(res!.message));
    assert.equal(job.status, 'completed', JSON.stringify(job));
    const result = JSON.parse(String(job.result)) as { partitions: { forgotten_keys: number }[] };
    assert.equal(result.partitions[0]!.forgotten_keys, 2, 'the deleted key and the updated one');
    assert.deepEqual(await server.rows('SELECT id, v FROM rs.t ORDER BY id'), [{ id: '3', v: 'old-3' }]);
    for (const id of [1, 2]) assert.deepEqual(await server.rows(`SELECT id, v FROM rs.t WHERE id = ${id}`), [], `id ${id}`);
    // Forgotten keys take new rows; the state survives a restart and another flush.
    await server.ok("INSERT INTO rs.t VALUES (1, 'again-1')");
    await server.flushAndWait('rs.t');
    assert.equal(await server.stop(), 0);
    await server.launch();
    assert.deepEqual(await server.rows('SELECT id, v FROM rs.t ORDER BY id'), [{ id: '1', v: 'again-1' }, { id: '3', v: 'old-3' }]);
    assert.deepEqual(await server.rows('SELECT id, v FROM rs.t WHERE id = 2'), []);
  });
});
