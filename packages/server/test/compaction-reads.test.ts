/**
 * A compaction replaces a partition's segments while reads that listed the old ones are still
 * running: those reads finish with the rows they started on (the replaced files are deleted only
 * when they end), the partition is never marked damaged, and the files do go once nothing reads
 * them. A pause point holds every cold read for 2 s after it listed its segments, so the
 * compaction commits and retires the files exactly in that window.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, jobIdOf, TestServer } from './harness.js';
import { LiveClient } from './ws-client.js';

const T = 'cmp.t';

describe('reads running while a compaction replaces their segments', () => {
  let server: TestServer;
  const segmentDir = (): string => join(server.dataDir, 'storage', 'cmp', 't');
  const segmentFiles = (): string[] => readdirSync(segmentDir()).filter((f) => /^batch-\d+\.parquet$/.test(f)).sort();

  before(async () => {
    server = await TestServer.start(undefined, { KALAMDB_PAUSEPOINT: 'cold:read@2000' });
    await server.ok('CREATE NAMESPACE cmp');
    await server.ok(`CREATE SHARED TABLE ${T} (id INT PRIMARY KEY, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')`);
    // Three segments, each holding rows the others do not, and one update of a flushed row.
    for (let part = 0; part < 3; part++) {
      const ids = Array.from({ length: 10 }, (_, i) => part * 10 + i);
      await server.ok(`INSERT INTO ${T} (id, v) VALUES ${ids.map((id) => `(${id}, ${id})`).join(', ')}`);
      if (part === 2) await server.ok(`UPDATE ${T} SET v = 100 WHERE id = 0`);
      await server.flushAndWait(T);
    }
  });

  after(async () => {
    await server?.dispose();
  });

  const compact = async (): Promise<void> => {
    const [res] = await server.ok(`STORAGE COMPACT TABLE ${T}`);
    const job = await server.waitForJob(jobIdOf(res!.message));
    assert.equal(job.status, 'completed', JSON.stringify(job));
  };

  it('a query and a resumed subscription read the replaced segments to the end; the files go afterwards', async () => {
    const before = segmentFiles();
    assert.equal(before.length, 3);
    const seqs = await server.rows(`SELECT _seq FROM ${T} ORDER BY _seq LIMIT 1`);
    const from = String(BigInt(seqs[0]!._seq as string) - 1n);
    // Another round of segments for the reads below to list (the query above loaded the mirror).
    await server.ok(`UPDATE ${T} SET v = 200 WHERE id = 1`);
    await server.flushAndWait(T);
    const listed = segmentFiles();
    assert.equal(listed.length, 4);

    // Both list the four segments, then wait 2 s at the pause point before reading them.
    const query = server.rows(`SELECT count(*) AS n, sum(v) AS s FROM ${T}`);
    const live = await LiveClient.connect(server.url, { user: 'root', password: 'root-password-for-tests' });
    live.send({ type: 'subscribe', subscription: { id: 'r', sql: `SELECT * FROM ${T} WHERE v >= 100`, options: { from } } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await compact();
    const after = segmentFiles();
    for (const file of listed) assert.ok(after.includes(file), `${file} is still on disk while a read listed it`);

    const [row] = await query;
    // 30 rows; v sums 0..29 with id 0 at 100 and id 1 at 200 instead of 0 and 1.
    assert.deepEqual(row, { n: '30', s: String(435 - 0 - 1 + 100 + 200) });
    const ack = await live.waitFor((m) => m.subscription_id === 'r' && (m.type === 'subscription_ack' || m.type === 'error'), 10_000);
    assert.equal(ack.type, 'subscription_ack', JSON.stringify(ack));
    // The rows matching now arrive as inserts (rows that never matched may come as deletes: the
    // client might have held a version the first flush replaced).
    const inserts = await live.waitForCount((m) => m.subscription_id === 'r' && m.change_type === 'insert', 2, 10_000);
    assert.deepEqual(inserts.map((m) => (m.rows as Record<string, unknown>[])[0]!.id).sort(), [0, 1]);
    assert.equal(live.messages.filter((m) => m.type === 'error').length, 0);
    await live.close();

    await eventually('the replaced segments deleted', async () => segmentFiles().length === 1);
    assert.ok(!listed.includes(segmentFiles()[0]!), 'the one left is the compacted segment');
    assert.deepEqual(await server.rows(`SELECT status FROM system.tables WHERE namespace_id = 'cmp' AND table_name = 't'`), [{ status: 'available' }]);
    assert.deepEqual(await server.rows(`SELECT count(*) AS n FROM ${T}`), [{ n: '30' }]);
  });
  /** A table of three segments (ids 0..29), and a query that lists them and is held at the pause point. */
  const threeSegments = async (name: string): Promise<{ query: Promise<Record<string, unknown>[]>; files: () => string[] }> => {
    await server.ok(`CREATE SHARED TABLE cmp.${name} (id INT PRIMARY KEY, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')`);
    for (let part = 0; part < 3; part++) {
      await server.ok(`INSERT INTO cmp.${name} (id, v) VALUES ${Array.from({ length: 10 }, (_, i) => `(${part * 10 + i}, 1)`).join(', ')}`);
      await server.flushAndWait(`cmp.${name}`);
    }
    const query = server.rows(`SELECT count(*) AS n FROM cmp.${name}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { query, files: () => readdirSync(join(server.dataDir, 'storage', 'cmp', name)).filter((f) => /^batch-\d+\.parquet$/.test(f)).sort() };
  };

  it('STORAGE REPAIR TABLE re-listing the replaced files while a read holds them: they are kept, the table stays available', async () => {
    const { query, files } = await threeSegments('rp');
    const [compaction] = await server.ok('STORAGE COMPACT TABLE cmp.rp');
    assert.equal((await server.waitForJob(jobIdOf(compaction!.message))).status, 'completed');
    const [repair] = await server.ok('STORAGE REPAIR TABLE cmp.rp');
    assert.equal((await server.waitForJob(jobIdOf(repair!.message))).status, 'completed');
    assert.deepEqual(await query, [{ n: '30' }]);
    const listed = (await server.rows("SELECT path FROM system.manifest WHERE namespace_id = 'cmp' AND table_name = 'rp'")).length;
    assert.equal(files().length, listed, 'every listed file is on disk');
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM cmp.rp'), [{ n: '30' }]);
    assert.deepEqual(await server.rows("SELECT status FROM system.tables WHERE namespace_id = 'cmp' AND table_name = 'rp'"), [{ status: 'available' }]);
  });

  it('DROP TABLE and CREATE again under the same name while a read holds the old files: the new table keeps its segments', async () => {
    const { query } = await threeSegments('rc');
    const [compaction] = await server.ok('STORAGE COMPACT TABLE cmp.rc');
    assert.equal((await server.waitForJob(jobIdOf(compaction!.message))).status, 'completed');
    await server.ok('DROP TABLE cmp.rc');
    await server.ok("CREATE SHARED TABLE cmp.rc (id INT PRIMARY KEY, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok('INSERT INTO cmp.rc (id, v) VALUES (10, 2), (11, 2)');
    await server.flushAndWait('cmp.rc');
    await server.ok('INSERT INTO cmp.rc (id, v) VALUES (12, 2)');
    await server.flushAndWait('cmp.rc');
    await query.catch(() => undefined); // the old table's read: whatever it answers, it ends
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(await server.rows('SELECT id FROM cmp.rc ORDER BY id'), [{ id: 10 }, { id: 11 }, { id: 12 }]);
  });
});
