/**
 * Disk full, on a real full file system: the server's data dir lives on a 64 MB tmpfs, a filler
 * file takes the rest of it. Writes must get 507 INSUFFICIENT_STORAGE (never 500), reads and
 * /health keep answering (/health says degraded), background jobs do not log every second, and
 * once the filler is gone writes resume by themselves with every acknowledged row still there.
 * Needs root (mount); skipped with the reason printed otherwise.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestServer, assertError, eventually } from './harness.js';
import { StorageFullError, isDiskFullError, errorStatus } from '../src/util/errors.js';

describe('disk-full classification', () => {
  it('finds ENOSPC by code, by text and through cause chains; nothing else', () => {
    // rocksdb-native: a generic error whose cause is the RocksDB status text.
    const rocks = new Error('Batch was not applied', { cause: new Error('While appending to file: /d/000004.log: No space left on device') });
    assert.ok(isDiskFullError(rocks));
    assert.ok(isDiskFullError(Object.assign(new Error('write failed'), { code: 'ENOSPC' })));
    assert.ok(isDiskFullError(new Error('IO Error: Could not write file "x.parquet.tmp": No space left on device')));
    assert.ok(isDiskFullError(new AggregateError([new Error('Disk quota exceeded')], 'Batch was not applied')));
    assert.ok(isDiskFullError(new StorageFullError()));
    assert.ok(!isDiskFullError(new Error('Batch was not applied', { cause: new Error('Corruption: bad block') })));
    assert.ok(!isDiskFullError(Object.assign(new Error('denied'), { code: 'EACCES' })));
    assert.ok(!isDiskFullError(null));
    assert.equal(new StorageFullError().status, 507);
    assert.equal(errorStatus.INSUFFICIENT_STORAGE, 507);
    assert.equal(new StorageFullError().withMessage('Statement 2 failed: x').code, 'INSUFFICIENT_STORAGE');
  });
});

function mountTmpfs(): { dir: string } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'not root: cannot mount a tmpfs' };
  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}` };
  }
}

/** Writes zeros until the file system says ENOSPC; returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  let total = 0;
  try {
    for (;;) total += writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  // The last partial chunk: fill the remaining bytes too.
  const fd2 = openSync(path, 'a');
  try {
    for (;;) total += writeSync(fd2, Buffer.alloc(512));
  } catch {
    // ENOSPC: full to the last block.
  } finally {
    closeSync(fd2);
  }
  return total;
}

const mounted = mountTmpfs();
const skip = 'skip' in mounted ? mounted.skip : false;
if (skip !== false) process.stdout.write(`# disk-full tests skipped: ${skip}\n`);

describe('disk full', { skip }, () => {
  const root = 'dir' in mounted ? mounted.dir : '';
  const dataDir = join(root, 'data');
  const filler = join(root, 'filler');
  let server: TestServer;

  before(async () => {
    mkdirSync(dataDir, { recursive: true });
    server = await TestServer.start(dataDir);
  });

  after(async () => {
    await server?.kill();
    rmSync(filler, { force: true });
    try {
      execFileSync('umount', [root], { stdio: 'pipe' });
      rmSync(root, { recursive: true, force: true });
    } catch (error) {
      process.stdout.write(`# could not unmount ${root}: ${(error as Error).message}\n`);
    }
  });

  it('refuses writes with 507, keeps reads and /health, backs off, and resumes by itself', async () => {
    await server.ok('CREATE NAMESPACE df');
    // interval:1 makes the flush policy check fire every second while the disk is full.
    await server.ok("CREATE SHARED TABLE df.items (id BIGINT PRIMARY KEY, body TEXT) WITH (FLUSH_POLICY = 'rows:100000,interval:1')");
    await server.ok('CREATE STREAM TABLE df.events (id BIGINT PRIMARY KEY, body TEXT) WITH (TTL_SECONDS = 1)');
    let acknowledged = 0;
    let nextId = 1;
    const insert = async (): Promise<{ status: number; body: Awaited<ReturnType<TestServer['sql']>>['body'] }> => {
      const id = nextId++;
      const res = await server.sql('INSERT INTO df.items (id, body) VALUES ($1, $2)', { params: [id, 'x'.repeat(200)] });
      if (res.status === 200) acknowledged++;
      return res;
    };
    for (let i = 0; i < 20; i++) assert.equal((await insert()).status, 200);
    await server.createUser('dfu');

    fill(filler);
    const logStart = server.output.length;
    // The first write after the disk filled may still fit in a page the file system had; keep going.
    const refused = await eventually('a 507', async () => {
      const res = await insert();
      assert.notEqual(res.status, 500, `never 500: ${JSON.stringify(res.body)}`);
      return res.status === 507 ? res : null;
    }, 10_000, 20);
    assertError(refused, 507, 'INSUFFICIENT_STORAGE', /storage/i);
    // Every kind of write is refused the same way while full: plain inserts, a batch, DDL.
    assertError(await insert(), 507, 'INSUFFICIENT_STORAGE');
    assertError(await server.sql("INSERT INTO df.items (id, body) VALUES (100001, 'a'); INSERT INTO df.items (id, body) VALUES (100002, 'b')"), 507, 'INSUFFICIENT_STORAGE');
    assertError(await server.sql('CREATE NAMESPACE df_more'), 507, 'INSUFFICIENT_STORAGE');

    // Reads and /health keep answering.
    const counted = await server.rows('SELECT COUNT(*) AS n FROM df.items');
    assert.equal(Number(counted[0]!.n), acknowledged);
    const health = await server.fetch('/health');
    assert.equal(health.status, 200);
    const body = (await health.json()) as Record<string, unknown>;
    assert.equal(body.status, 'degraded');
    assert.equal(body.storage, 'full');
    assert.equal(body.api_version, 'v1');
    assert.equal(typeof body.version, 'string');
    await server.ok("INSERT INTO df.events (id, body) VALUES (1, 'in memory')");
    // A read as another user is served too: its audit record, which cannot be written, is logged as lost.
    const lostBefore = count(server.output.slice(logStart).join(''), 'audit record lost');
    assert.deepEqual(await server.rows("EXECUTE AS USER 'dfu' (SELECT 'served' AS s)"), [{ s: 'served' }]);
    await eventually('the lost audit record logged', async () => count(server.output.slice(logStart).join(''), 'audit record lost') === lostBefore + 1, 5_000, 20);

    // Stay full for a while: the flush policy (every second) and stream eviction (twice a second) run.
    await new Promise((r) => setTimeout(r, 3_500));
    assertError(await insert(), 507, 'INSUFFICIENT_STORAGE');
    const log = server.output.slice(logStart).join('');
    assert.equal(count(log, 'storage full: writes are refused'), 1, log);
    assert.equal(count(log, 'could not record a policy flush job'), 0, log);
    assert.equal(count(log, 'stream eviction job row failed'), 0, log);
    assert.equal(count(log, '"status":500'), 0, log);

    // Space is back: writes resume without a restart.
    rmSync(filler);
    const freedAt = Date.now();
    await eventually('writes to resume', async () => (await insert()).status === 200, 10_000, 50);
    const recoveryMs = Date.now() - freedAt;
    process.stdout.write(`# writes resumed ${recoveryMs} ms after the filler was deleted\n`);
    assert.ok(recoveryMs < 5_000, `resumed within a few seconds (${recoveryMs} ms)`);
    const healthy = (await (await server.fetch('/health')).json()) as Record<string, unknown>;
    assert.equal(healthy.status, 'healthy');
    assert.equal(healthy.storage, undefined);
    const after = server.output.slice(logStart).join('');
    assert.equal(count(after, 'storage writable again'), 1, after);
    const resumed = /\{[^\n]*storage writable again[^\n]*\}/.exec(after)![0];
    process.stdout.write(`# ${resumed}\n`);
    assert.equal(count(after, 'storage full: writes are refused'), 1, after);

    // Nothing acknowledged was lost, before or after a restart (the WAL replays what the reopen kept).
    for (let i = 0; i < 10; i++) assert.equal((await insert()).status, 200);
    const live = await server.rows('SELECT COUNT(*) AS n FROM df.items');
    assert.equal(Number(live[0]!.n), acknowledged);
    await server.stop();
    await server.launch();
    const restarted = await server.rows('SELECT COUNT(*) AS n FROM df.items');
    assert.equal(Number(restarted[0]!.n), acknowledged);
    await server.ok('CREATE NAMESPACE df_more');
  });
});

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}
