/**
 * EXPORT USER DATA killed (SIGKILL, at a failpoint) after the Parquet files are written and after
 * the archive's temp file is written but before its rename: after a restart the job is failed, no
 * work file, temp file or archive is left, SHOW EXPORT offers no link, and a new export completes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, waitForExit } from './harness.js';

const STEPS = ['export:after-parquet', 'export:before-rename'];
const STARTED = /Job ID: (UE-\S+)\./;

describe('user export crash safety', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  for (const step of STEPS) {
    it(`leaves no archive and a failed job when killed at ${step}`, async () => {
      const server = await TestServer.start(undefined, { KALAMDB_FAILPOINT: step });
      servers.push(server);
      const erin = await server.createUser('erin');
      await server.ok('CREATE NAMESPACE ec');
      await server.ok('CREATE USER TABLE ec.t (id INT PRIMARY KEY, v TEXT)');
      await server.ok(`INSERT INTO ec.t VALUES ${Array.from({ length: 100 }, (_, i) => `(${i}, 'v${i}')`).join(', ')}`, { auth: erin });
      const [res] = await server.ok('EXPORT USER DATA', { auth: erin });
      const jobId = STARTED.exec(res!.message!)![1]!;
      await waitForExit(server);
      await server.kill();
      const [account] = [readdirSync(join(server.dataDir, 'exports')).filter((n) => n.startsWith('@'))];
      assert.equal(account!.length, 1, 'the archive directory was created before the crash');
      const accountDir = join(server.dataDir, 'exports', account![0]!);
      // What the crash left: work files, and at before-rename the archive's temp file.
      assert.ok(existsSync(join(server.dataDir, 'exports', '.work', jobId)));
      if (step === 'export:before-rename') assert.ok(readdirSync(accountDir).some((n) => n.endsWith('.zip.tmp')));

      await server.launch({ KALAMDB_FAILPOINT: '' });
      const job = await server.waitForJob(jobId);
      assert.equal(job.status, 'failed');
      assert.deepEqual(readdirSync(accountDir), []);
      assert.equal(existsSync(join(server.dataDir, 'exports', '.work')), false);
      const [row] = await server.rows('SHOW EXPORT', { auth: erin });
      assert.equal(row!.job_id, jobId);
      assert.equal(row!.status, 'failed');
      assert.equal(row!.download_url, '');

      const [again] = await server.ok('EXPORT USER DATA', { auth: erin });
      const done = await server.waitForJob(STARTED.exec(again!.message!)![1]!, 30_000);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      assert.equal(readdirSync(accountDir).filter((n) => n.endsWith('.zip')).length, 1);
    });
  }
});
