/**
 * Cold tier over HTTP: flushes to Parquet per partition, manifests, merged hot+cold reads after
 * updates and deletes of cold rows, uniqueness across tiers, flush policies, jobs, compaction,
 * KILL JOB and DROP TABLE. Crash safety of the flush steps is in flush-crash.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, eventually, jobIdOf } from './harness.js';

describe('cold tier', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };

  const jobDone = (message: string): Promise<Record<string, unknown>> => server.waitForJob(jobIdOf(message));
  const flush = async (table: string): Promise<Record<string, unknown>> => {
    const [res] = await server.ok(`STORAGE FLUSH TABLE ${table}`);
    const job = await jobDone(res!.message!);
    assert.equal(job.status, 'completed', JSON.stringify(job));
    return job;
  };

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE cold');
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
  });
  after(async () => {
    await server.dispose();
  });

  it('flushes each user partition into its own Parquet file with a manifest', async () => {
    await server.ok('CREATE USER TABLE cold.notes (id BIGINT PRIMARY KEY, body TEXT, score DOUBLE)');
    await server.ok("INSERT INTO cold.notes VALUES (1, 'a1', 1.5), (2, 'a2', 2.5), (3, 'a3', 3.5)", { auth: alice });
    await server.ok("INSERT INTO cold.notes VALUES (1, 'b1', 10), (2, 'b2', 20)", { auth: bob });
    const job = await flush('cold.notes');
    assert.equal(job.job_type, 'flush');
    assert.equal(job.rows_processed, '5');
    const segments = await server.rows("SELECT user_id, path, row_count FROM system.manifest WHERE table_name = 'notes' ORDER BY user_id");
    assert.deepEqual(segments, [
      { user_id: 'alice', path: 'batch-0.parquet', row_count: '3' },
      { user_id: 'bob', path: 'batch-0.parquet', row_count: '2' },
    ]);
    // A user's partition directory is named by their account id (system.users.account_id).
    const ids = new Map((await server.rows('SELECT user_id, account_id FROM system.users')).map((u) => [u.user_id, String(u.account_id)]));
    const dir = join(server.dataDir, 'storage', 'cold', 'notes');
    assert.ok(existsSync(join(dir, ids.get('alice')!, 'batch-0.parquet')));
    assert.ok(existsSync(join(dir, ids.get('bob')!, 'batch-0.parquet')));
    const manifest = JSON.parse(readFileSync(join(dir, ids.get('alice')!, 'manifest.json'), 'utf8'));
    assert.equal(manifest.user_id, ids.get('alice'));
    assert.equal(manifest.segments.length, 1);
    const seg = manifest.segments[0];
    assert.equal(seg.row_count, 3);
    assert.ok(seg.size_bytes > 0);
    assert.ok(BigInt(seg.min_seq) <= BigInt(seg.max_seq));
    assert.equal(seg.schema_version, 1);
    assert.deepEqual(seg.columns.id, { min: '1', max: '3' });
    assert.deepEqual(seg.columns.body, { min: 'a1', max: 'a3' });
    // Reads after the flush see the same rows, each user only their own.
    assert.deepEqual(await server.rows('SELECT id, body FROM cold.notes ORDER BY id', { auth: alice }), [
      { id: '1', body: 'a1' }, { id: '2', body: 'a2' }, { id: '3', body: 'a3' },
    ]);
    assert.deepEqual(await server.rows('SELECT id, body FROM cold.notes ORDER BY id', { auth: bob }), [
      { id: '1', body: 'b1' }, { id: '2', body: 'b2' },
    ]);
    assert.deepEqual(await server.rows('SELECT id, body FROM cold.notes WHERE id = 2', { auth: bob }), [{ id: '2', body: 'b2' }]);
  });

  it('merges hot and cold: updates and deletes of cold rows, tombstones, duplicates across tiers', async () => {
    await server.ok('CREATE SHARED TABLE cold.items (id BIGINT PRIMARY KEY, name TEXT, qty INT)');
    await server.ok("INSERT INTO cold.items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3), (4, 'four', 4)");
    await flush('cold.items');
    await server.ok("UPDATE cold.items SET qty = qty * 10 WHERE id IN (1, 2)");
    await server.ok('DELETE FROM cold.items WHERE id = 3');
    await server.ok("UPDATE cold.items SET name = 'FOUR' WHERE id = 4");
    const expected = [
      { id: '1', name: 'one', qty: 10 }, { id: '2', name: 'two', qty: 20 }, { id: '4', name: 'FOUR', qty: 4 },
    ];
    assert.deepEqual(await server.rows('SELECT id, name, qty FROM cold.items ORDER BY id'), expected);
    assert.deepEqual(await server.rows('SELECT id FROM cold.items WHERE _deleted = true'), [{ id: '3' }]);
    const dup = await server.sql("INSERT INTO cold.items VALUES (2, 'again', 0)");
    assert.equal(dup.status, 400);
    assert.match(dup.body.error!.message, /Duplicate primary key.*id = 2/);
    // A key deleted in the cold tier can be inserted again.
    await server.ok("INSERT INTO cold.items VALUES (3, 'three again', 33)");
    // Flush the hot versions too: the answers stay the same with everything cold.
    await flush('cold.items');
    assert.deepEqual(await server.rows('SELECT id, name, qty FROM cold.items ORDER BY id'), [
      { id: '1', name: 'one', qty: 10 }, { id: '2', name: 'two', qty: 20 }, { id: '3', name: 'three again', qty: 33 }, { id: '4', name: 'FOUR', qty: 4 },
    ]);
    assert.deepEqual(await server.rows('SELECT name FROM cold.items WHERE id = 3'), [{ name: 'three again' }]);
    assert.deepEqual(await server.rows('SELECT count(*) AS n, sum(qty) AS s FROM cold.items'), [{ n: '4', s: '67' }]);
    const seg = await server.rows("SELECT count(*) AS n FROM system.manifest WHERE table_name = 'items'");
    assert.deepEqual(seg, [{ n: '2' }]);
  });

  it('compaction rewrites segments into one and keeps every answer identical', async () => {
    await server.ok('CREATE SHARED TABLE cold.hist (id BIGINT PRIMARY KEY, v TEXT) WITH (DELETED_RETENTION_HOURS = 1)');
    for (let round = 0; round < 3; round++) {
      const values = Array.from({ length: 20 }, (_, i) => `(${round * 10 + i}, 'r${round}-${i}')`).join(', ');
      await server.ok(`INSERT INTO cold.hist VALUES ${values.replace(/\((\d+),/g, (m, id) => (Number(id) < round * 10 + 10 && round > 0 ? `(${Number(id) + 1000},` : m))}`);
      await server.ok(`DELETE FROM cold.hist WHERE id = ${round}`);
      await flush('cold.hist');
    }
    const before = await server.rows('SELECT id, v FROM cold.hist ORDER BY id');
    const deletedBefore = await server.rows('SELECT id FROM cold.hist WHERE _deleted = true ORDER BY id');
    assert.ok((await server.rows("SELECT path FROM system.manifest WHERE table_name = 'hist'")).length === 3);
    const [res] = await server.ok('STORAGE COMPACT TABLE cold.hist');
    const job = await jobDone(res!.message!);
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.job_type, 'compaction');
    assert.deepEqual(await server.rows('SELECT id, v FROM cold.hist ORDER BY id'), before);
    // Tombstones younger than the retention are kept.
    assert.deepEqual(await server.rows('SELECT id FROM cold.hist WHERE _deleted = true ORDER BY id'), deletedBefore);
    const segs = await server.rows("SELECT path FROM system.manifest WHERE table_name = 'hist'");
    assert.deepEqual(segs, [{ path: 'batch-3.parquet' }]);
    const dir = join(server.dataDir, 'storage', 'cold', 'hist');
    assert.ok(!existsSync(join(dir, 'batch-0.parquet')), 'old segments are deleted');
  });

  it('flushes a partition when it reaches the rows policy, leaving other partitions hot', async () => {
    await server.ok("CREATE USER TABLE cold.policy (id BIGINT PRIMARY KEY, v TEXT) WITH (FLUSH_POLICY = 'rows:5')");
    await server.ok("INSERT INTO cold.policy VALUES (1,'a'),(2,'a'),(3,'a')", { auth: bob });
    await server.ok("INSERT INTO cold.policy VALUES (1,'a'),(2,'a'),(3,'a'),(4,'a'),(5,'a')", { auth: alice });
    const segs = await eventually('alice policy flush', async () => {
      const rows = await server.rows("SELECT user_id, row_count FROM system.manifest WHERE table_name = 'policy'");
      return rows.length > 0 ? rows : null;
    });
    assert.deepEqual(segs, [{ user_id: 'alice', row_count: '5' }]);
    // The manifest is published before the job's hand-over step finishes: wait for the job row.
    const jobs = await eventually('the policy flush job completed', async () => {
      const rows = await server.rows("SELECT user_id, status, parameters FROM system.jobs WHERE table_name = 'policy'");
      return rows.length > 0 && rows.every((r) => r.status !== 'running') ? rows : null;
    });
    assert.deepEqual(jobs.map((j) => [j.user_id, j.status]), [['alice', 'completed']]);
    assert.match(String(jobs[0]!.parameters), /policy/);
    assert.equal((await server.rows('SELECT id FROM cold.policy', { auth: bob })).length, 3);
  });

  it('flushes by the interval policy', async () => {
    await server.ok("CREATE SHARED TABLE cold.ticks (id BIGINT PRIMARY KEY) WITH (FLUSH_POLICY = 'interval:1')");
    await server.ok('INSERT INTO cold.ticks VALUES (1), (2)');
    const segs = await eventually('interval flush', async () => {
      const rows = await server.rows("SELECT row_count FROM system.manifest WHERE table_name = 'ticks'");
      return rows.length > 0 ? rows : null;
    }, 10_000);
    assert.deepEqual(segs, [{ row_count: '2' }]);
  });

  it('answers FLUSH with "skipped" when nothing is pending, and refuses STREAM tables and non-admins', async () => {
    await server.ok('CREATE SHARED TABLE cold.empty (id BIGINT PRIMARY KEY)');
    const [res] = await server.ok('FLUSH TABLE cold.empty');
    assert.match(res!.message!, /skipped/);
    await server.ok('CREATE STREAM TABLE cold.ev (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 10)');
    const stream = await server.sql('STORAGE FLUSH TABLE cold.ev');
    assert.equal(stream.status, 400);
    assert.match(stream.body.error!.message, /STREAM/);
    const denied = await server.sql('STORAGE FLUSH TABLE cold.empty', { auth: alice });
    assert.equal(denied.status, 403);
    const all = await server.ok('STORAGE FLUSH ALL IN cold');
    assert.match(all[0]!.message!, /skipped|started/);
    const kill = await server.sql("KILL JOB 'FL-does-not-exist'");
    assert.equal(kill.status, 400);
    assert.match(kill.body.error!.message, /does not exist/);
  });

  it('DROP TABLE removes the table files', async () => {
    await server.ok('CREATE SHARED TABLE cold.gone (id BIGINT PRIMARY KEY)');
    await server.ok('INSERT INTO cold.gone VALUES (1)');
    await flush('cold.gone');
    const dir = join(server.dataDir, 'storage', 'cold', 'gone');
    assert.ok(existsSync(dir));
    await server.ok('DROP TABLE cold.gone');
    assert.ok(!existsSync(dir));
    await server.ok('CREATE SHARED TABLE cold.gone (id BIGINT PRIMARY KEY)');
    assert.deepEqual(await server.rows('SELECT * FROM cold.gone'), []);
  });

  it('keeps writes that race a flush: the newest acknowledged value always wins', async () => {
    await server.ok("CREATE SHARED TABLE cold.race (id BIGINT PRIMARY KEY, v INT) WITH (FLUSH_POLICY = 'rows:100000000')");
    const n = 20_000;
    for (let start = 0; start < n; start += 2000) {
      await server.ok(`INSERT INTO cold.race VALUES ${Array.from({ length: 2000 }, (_, i) => `(${start + i}, 0)`).join(', ')}`);
    }
    const latest = new Map<number, number>();
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let round = 1; !stop; round++) {
        const id = (round * 7919 + w * 104729) % n;
        await server.ok('UPDATE cold.race SET v = $1 WHERE id = $2', { params: [round, id] });
        latest.set(id, round);
      }
    };
    const writers = [writer(1), writer(2), writer(3)];
    // The writers are in full swing before the flush starts: a flush of 20,000 rows now takes tens of
    // milliseconds, and under load the writers' first round trips could otherwise all land after it.
    await eventually('writers under way', async () => latest.size > 10);
    const [res] = await server.ok('STORAGE FLUSH TABLE cold.race');
    const job = await jobDone(res!.message!);
    stop = true;
    await Promise.all(writers);
    assert.equal(job.status, 'completed');
    assert.ok(latest.size > 10, `writers made progress (${latest.size} keys)`);
    const rows = await server.rows('SELECT id, v FROM cold.race WHERE v > 0');
    const stored = new Map(rows.map((r) => [Number(r.id), r.v as number]));
    for (const [id, v] of latest) assert.equal(stored.get(id), v, `row ${id}`);
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM cold.race'), [{ n: String(n) }]);
    // A second flush moves the raced rows too; answers stay the same.
    await flush('cold.race');
    const after = await server.rows('SELECT id, v FROM cold.race WHERE v > 0');
    assert.deepEqual(new Map(after.map((r) => [Number(r.id), r.v as number])), stored);
  });

  it('keeps cold data across a restart and completes reads from both tiers', async () => {
    await server.ok('CREATE SHARED TABLE cold.restart (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok("INSERT INTO cold.restart VALUES (1, 'cold'), (2, 'cold')");
    await flush('cold.restart');
    await server.ok("INSERT INTO cold.restart VALUES (3, 'hot')");
    await server.ok("UPDATE cold.restart SET v = 'updated' WHERE id = 1");
    await server.stop();
    await server.launch();
    assert.deepEqual(await server.rows('SELECT id, v FROM cold.restart ORDER BY id'), [
      { id: '1', v: 'updated' }, { id: '2', v: 'cold' }, { id: '3', v: 'hot' },
    ]);
  });
});
