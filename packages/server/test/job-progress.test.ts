/**
 * Flush and compaction jobs report progress while they run: system.jobs.progress between 0 and 1
 * with a message ("rows 20,000 of 20,000 read; ...", "rewriting 3 segments ..."), and 1 once
 * completed. A pause point (KALAMDB_PAUSEPOINT) holds each job mid-way so the test can watch it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, eventually, jobIdOf } from './harness.js';

const PAUSE_MS = 3000;

describe('job progress', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start(undefined, { KALAMDB_PAUSEPOINT: `flush:after-scan@${PAUSE_MS},compaction:before-rewrite@${PAUSE_MS}` });
  });
  after(async () => {
    await server.dispose();
  });

  async function job(jobId: string): Promise<Record<string, unknown>> {
    const [row] = await server.rows('SELECT job_id, status, progress, message FROM system.jobs WHERE job_id = $1', { params: [jobId] });
    return row!;
  }

  it('a flush shows 0 < progress < 1 with rows read of rows to flush while it runs, and 1 at the end', async () => {
    // No policy flush (the default is every 10,000 rows): the command's flush takes all 20,000.
    await server.ok("CREATE SHARED TABLE default.p (id BIGINT PRIMARY KEY, v TEXT) WITH (FLUSH_POLICY = 'rows:1000000')");
    for (let b = 0; b < 4; b++) {
      await server.ok(`INSERT INTO default.p VALUES ${Array.from({ length: 5000 }, (_, i) => `(${b * 5000 + i}, 'row ${i}')`).join(', ')}`);
    }
    const [res] = await server.ok('STORAGE FLUSH TABLE default.p');
    const id = jobIdOf(res!.message);
    // Every report seen while it runs; the pause after the scan keeps the last one up for 3 s.
    const seen: { progress: number; message: string }[] = [];
    await eventually('flush progress', async () => {
      const row = await job(id);
      if (row.status === 'running' && row.progress !== null) seen.push({ progress: row.progress as number, message: String(row.message) });
      return seen.at(-1)?.message.endsWith('writing the segment');
    }, PAUSE_MS + 5000, 20);
    // The scan's first report ("rows 0 of 20,000 read") is progress 0; a poll can land on it.
    assert.ok(seen.some((r) => r.progress > 0 && r.progress < 1), `no report between 0 and 1: ${JSON.stringify(seen)}`);
    for (const [i, r] of seen.entries()) {
      assert.ok(r.progress >= 0 && r.progress < 1, `progress ${r.progress}`);
      assert.match(r.message, /^rows [\d,]+ of 20,000 read/);
      if (i > 0) assert.ok(r.progress >= seen[i - 1]!.progress, 'progress never goes back');
    }
    assert.equal(seen.at(-1)!.message, 'rows 20,000 of 20,000 read; writing the segment');
    const done = await server.waitForJob(id);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress, 1);
    assert.match(String(done.message), /Flushed default\.p successfully \(20000 rows, 1 files\)/);
  });

  it('a flush over several partitions (a USER table) reports which partition it is at, its progress spread over them', async () => {
    await server.ok("CREATE USER TABLE default.u (id BIGINT PRIMARY KEY, v TEXT) WITH (FLUSH_POLICY = 'rows:1000000')");
    for (const name of ['ann', 'ben']) {
      const user = await server.createUser(name);
      await server.ok(`INSERT INTO default.u VALUES ${Array.from({ length: 100 }, (_, i) => `(${i}, '${name}')`).join(', ')}`, { auth: user });
    }
    const [res] = await server.ok('STORAGE FLUSH TABLE default.u');
    const id = jobIdOf(res!.message);
    const seen = new Map<string, number>();
    await eventually('both partitions reported', async () => {
      const row = await job(id);
      if (row.status === 'running' && row.progress !== null) seen.set(String(row.message), row.progress as number);
      return seen.has('partition 2 of 2: rows 100 of 100 read; writing the segment');
    }, 2 * PAUSE_MS + 10_000, 20);
    const first = seen.get('partition 1 of 2: rows 100 of 100 read; writing the segment');
    assert.ok(first !== undefined, `seen: ${JSON.stringify([...seen])}`);
    assert.ok(first > 0 && first < 0.5, `partition 1 at ${first}`);
    const second = seen.get('partition 2 of 2: rows 100 of 100 read; writing the segment')!;
    assert.ok(second > 0.5 && second < 1, `partition 2 at ${second}`);
    const done = await server.waitForJob(id, 20_000);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress, 1);
  });

  it('a compaction shows its segments while it runs, and 1 at the end', async () => {
    await server.ok('CREATE SHARED TABLE default.q (id BIGINT PRIMARY KEY, v TEXT)');
    for (let b = 0; b < 3; b++) {
      await server.ok(`INSERT INTO default.q VALUES ${Array.from({ length: 10 }, (_, i) => `(${b * 10 + i}, 'x')`).join(', ')}`);
      await server.flushAndWait('default.q');
    }
    const [res] = await server.ok('STORAGE COMPACT TABLE default.q');
    const id = jobIdOf(res!.message);
    const running = await eventually('compaction progress', async () => {
      const row = await job(id);
      return row.status === 'running' && /rewriting/.test(String(row.message)) ? row : null;
    }, PAUSE_MS + 5000, 20);
    assert.ok((running.progress as number) > 0 && (running.progress as number) < 1, `progress ${String(running.progress)}`);
    assert.equal(running.message, 'rewriting 3 segments (30 rows) as one');
    const done = await server.waitForJob(id);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress, 1);
  });
});
