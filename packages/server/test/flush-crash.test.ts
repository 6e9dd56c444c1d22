/**
 * Crash safety of a flush: the real server is started with KALAMDB_FAILPOINT so that it kills itself
 * with SIGKILL at one exact step of a flush (after the Parquet temp file is written, after it is
 * renamed, after the manifest is committed, after the hot hand-over). After a restart without the
 * failpoint every row must be there exactly once, with its newest version, and a new flush must work.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, waitForExit } from './harness.js';

const STEPS = ['flush:after-write', 'flush:after-rename', 'flush:after-manifest', 'flush:after-handover'];

describe('flush crash safety', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  for (const step of STEPS) {
    it(`loses nothing and doubles nothing when killed at ${step}`, async () => {
      const server = await TestServer.start(undefined, { KALAMDB_FAILPOINT: step });
      servers.push(server);
      await server.ok('CREATE NAMESPACE crash');
      await server.ok('CREATE SHARED TABLE crash.t (id BIGINT PRIMARY KEY, v TEXT)');
      // A first, clean segment so that the crashed flush also has older cold versions to shadow.
      const first = Array.from({ length: 50 }, (_, i) => `(${i}, 'v0-${i}')`).join(', ');
      await server.ok(`INSERT INTO crash.t VALUES ${first}`);
      // No flush can succeed while the failpoint is armed, so prepare all data hot.
      await server.ok("UPDATE crash.t SET v = 'v1-' || id WHERE id < 20");
      await server.ok('DELETE FROM crash.t WHERE id >= 45');
      await server.ok(`INSERT INTO crash.t VALUES ${Array.from({ length: 10 }, (_, i) => `(${100 + i}, 'new-${i}')`).join(', ')}`);
      const expected = await server.rows('SELECT id, v FROM crash.t ORDER BY id');
      assert.equal(expected.length, 55);
      const res = await server.sql('STORAGE FLUSH TABLE crash.t');
      assert.equal(res.status, 200);
      await waitForExit(server);
      await server.kill();

      await server.launch({ KALAMDB_FAILPOINT: '' });
      assert.deepEqual(await server.rows('SELECT id, v FROM crash.t ORDER BY id'), expected, 'same rows after the crash');
      assert.deepEqual(await server.rows('SELECT count(*) AS n, count(DISTINCT id) AS d FROM crash.t'), [{ n: '55', d: '55' }]);
      assert.deepEqual(await server.rows('SELECT v FROM crash.t WHERE id = 5'), [{ v: 'v1-5' }]);
      assert.deepEqual(await server.rows('SELECT v FROM crash.t WHERE id = 30'), [{ v: 'v0-30' }]);
      const dup = await server.sql("INSERT INTO crash.t VALUES (101, 'dup')");
      assert.equal(dup.status, 400, 'uniqueness holds across the crash');
      const [job] = await server.rows("SELECT status, error_message FROM system.jobs WHERE table_name = 't' AND job_type = 'flush'");
      assert.equal(job!.status, 'failed');
      assert.match(String(job!.error_message), /restart/);
      const dir = join(server.dataDir, 'storage', 'crash', 't');
      const files = existsSync(dir) ? readdirSync(dir) : [];
      assert.ok(!files.some((f) => f.endsWith('.tmp')), `no temp files left: ${files.join(', ')}`);
      const listed = (await server.rows("SELECT path FROM system.manifest WHERE table_name = 't'")).map((r) => r.path);
      assert.deepEqual(files.filter((f) => f.endsWith('.parquet')).sort(), [...listed].sort(), 'every Parquet file is in the manifest');

      // The table keeps working: write, flush, read.
      await server.ok("UPDATE crash.t SET v = 'after' WHERE id = 0");
      await server.flushAndWait('crash.t');
      const final = expected.map((r) => (r.id === '0' ? { id: '0', v: 'after' } : r));
      assert.deepEqual(await server.rows('SELECT id, v FROM crash.t ORDER BY id'), final);
    });
  }
});
