/**
 * Durability modes: the `durability` setting is validated, and in `fsync` mode every acknowledged
 * write (group commits, catalog writes, flush hand-overs) has had the RocksDB WAL synced past it, one
 * sync per commit group. Checked at the hot-store level through the syncer's counter and the WAL bytes
 * the last sync covered, compared with the WAL file's size: removing the sync, or doing it before the
 * write, fails these tests. Power loss itself cannot be simulated here (see docs/operations.md); the
 * kill -9 test in durability.test.ts runs in both modes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaults, loadConfig, type Durability } from '../src/config/config.js';
import { HotStore } from '../src/storage/hot/hot-store.js';
import { Committer, type RowWrite } from '../src/storage/hot/committer.js';
import { SnowflakeGenerator } from '../src/util/snowflake.js';
import { idBodyTable } from './id-body-table.js';
import { TestServer } from './harness.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');

const table = idBodyTable(7, 'SHARED', 'app', 'events');

function insert(id: number): RowWrite {
  return { table, partition: '', values: [BigInt(id), `row ${id}`], deleted: false, expect: 'absent' };
}

/** Size of the WAL file the store writes to now (the highest-numbered `*.log`). */
function walSize(dir: string): number {
  const wals = readdirSync(dir).filter((f) => /^\d+\.log$/.test(f)).sort();
  assert.ok(wals.length > 0, 'a WAL file');
  return statSync(join(dir, wals[wals.length - 1]!)).size;
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-durability-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function withStore<T>(durability: Durability, fn: (hot: HotStore, dir: string) => Promise<T>): Promise<T> {
  const dir = tempDir();
  const hot = await HotStore.open(dir, durability);
  hot.recordWalBytes();
  try {
    return await fn(hot, dir);
  } finally {
    await hot.close();
  }
}

describe('durability setting', () => {
  it('defaults to fsync and is read from flags, environment and TOML', () => {
    assert.equal(defaults.durability, 'fsync');
    assert.equal(loadConfig([], {}).durability, 'fsync');
    assert.equal(loadConfig(['--durability', 'process'], {}).durability, 'process');
    assert.equal(loadConfig([], { KALAMDB_DURABILITY: 'process' }).durability, 'process');
    assert.equal(loadConfig(['--durability=fsync'], { KALAMDB_DURABILITY: 'process' }).durability, 'fsync', 'flags win over the environment');
    const path = join(tempDir(), 'config.toml');
    writeFileSync(path, 'durability = "process"\n');
    assert.equal(loadConfig(['--config', path], {}).durability, 'process');
  });

  it('rejects unknown modes with a message naming the valid ones', () => {
    const message = /unknown durability mode 'sync' \(expected 'fsync' or 'process'/;
    assert.throws(() => loadConfig(['--durability', 'sync'], {}), message);
    assert.throws(() => loadConfig([], { KALAMDB_DURABILITY: 'FSYNC' }), /KALAMDB_DURABILITY: unknown durability mode 'FSYNC'/);
    const path = join(tempDir(), 'config.toml');
    writeFileSync(path, 'durability = "none"\n');
    assert.throws(() => loadConfig(['--config', path], {}), /unknown durability mode 'none'/);
    writeFileSync(path, 'durability = 1\n');
    assert.throws(() => loadConfig(['--config', path], {}), /Setting 'durability' .* must be a string/);
  });

  it('fails start-up of the real server with one line naming the setting, and exit code 1', () => {
    const run = spawnSync(process.execPath, [MAIN, '--port', '0', '--data-dir', tempDir(), '--durability', 'power'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /kalamdb: bad configuration: --durability: unknown durability mode 'power'/);
  });
});

describe('fsync mode', () => {
  it('syncs the WAL once per commit group, past the group, before any writer is acknowledged', async () => {
    await withStore('fsync', async (hot, dir) => {
      const committer = new Committer(hot, new SnowflakeGenerator());
      // 64 concurrent single-row commits: the committer groups them, and each group is synced once.
      const acknowledged: { syncs: number; walBytes: number }[] = [];
      await Promise.all(Array.from({ length: 64 }, (_, i) => committer.commit([insert(i)]).then(() => {
        const state = hot.walSyncState();
        acknowledged.push({ syncs: state.syncs, walBytes: state.walBytes });
      })));
      const { syncs, walBytes } = hot.walSyncState();
      assert.ok(syncs >= 1, 'the WAL was synced');
      // Queued together, they form one group (two if the first commit starts a group alone).
      assert.ok(syncs <= 2, `one sync per group, not per row (got ${syncs} syncs for 64 commits)`);
      assert.ok(acknowledged.every((a) => a.syncs >= 1), 'no writer acknowledged before a sync');
      // The last sync happened after the last write: it covered the whole WAL as it is now.
      assert.equal(walBytes, walSize(dir));

      // One commit alone: exactly one more sync, covering that write.
      await committer.commit([insert(1000)]);
      assert.equal(hot.walSyncState().syncs, syncs + 1);
      assert.equal(hot.walSyncState().walBytes, walSize(dir));
      assert.ok(hot.walSyncState().walBytes > walBytes);
    });
  });

  it('waits for returning writers before a group of small commits, not before a large one', async () => {
    await withStore('fsync', async (hot) => {
      const committer = new Committer(hot, new SnowflakeGenerator());
      let id = 0;
      const rows = (n: number): RowWrite[] => Array.from({ length: n }, () => insert(id++));
      // A group of two: the next group waits (a few ms at most) for two writers.
      await Promise.all([committer.commit(rows(1)), committer.commit(rows(1))]);
      /** Groups written for a commit of `n` rows and a single-row commit arriving one turn after it. */
      const groupsFor = async (n: number): Promise<number> => {
        const before = committer.stats.groups;
        const first = committer.commit(rows(n));
        const second = new Promise<unknown>((resolve) => setImmediate(() => resolve(committer.commit(rows(1)))));
        await Promise.all([first, second]);
        return committer.stats.groups - before;
      };
      // A single-row commit is held until the second writer is back: one group, one sync. (The hold
      // needs the last acknowledgement to be recent, which a test process starved for 20 ms misses.)
      const small: number[] = [];
      while (small.length < 10 && !small.includes(1)) {
        small.push(await groupsFor(1));
        await Promise.all([committer.commit(rows(1)), committer.commit(rows(1))]);
      }
      assert.ok(small.includes(1), `groups per held pair: ${small.join(', ')}`);
      // 300 rows are written at once: the writer that comes a turn later is in the next group.
      assert.equal(await groupsFor(300), 2);
    });
  });

  it('syncs a small group on the JS thread when the loop has room, never a large one', async () => {
    await withStore('fsync', async (hot, dir) => {
      const committer = new Committer(hot, new SnowflakeGenerator());
      let id = 0;
      const rows = (n: number): RowWrite[] => Array.from({ length: n }, () => insert(id++));
      await committer.commit(rows(1)); // the first sync finds the WAL file (on the pool)
      let before = hot.walSyncState();
      await committer.commit(rows(300));
      let after = hot.walSyncState();
      assert.equal(after.syncs, before.syncs + 1);
      assert.equal(after.syncsOnLoop, before.syncsOnLoop, '300 rows: synced on the pool');
      assert.equal(after.walBytes, walSize(dir));
      // A single-row group on a quiet loop (a busy test process may need a quiet moment first).
      for (let attempt = 0; attempt < 20 && after.syncsOnLoop === before.syncsOnLoop; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        before = hot.walSyncState();
        await committer.commit(rows(1));
        after = hot.walSyncState();
      }
      assert.equal(after.syncs, before.syncs + 1);
      assert.equal(after.syncsOnLoop, before.syncsOnLoop + 1, 'one row: synced on the loop');
      // (walBytes equals the file's size after any sync, or none: the kill -9 tests are what show data survives.)
      assert.equal(after.walBytes, walSize(dir), 'and the sync covered the write');

      // Right after a sync on the loop (same window, quick disk): 255 rows still go on the loop; 256
      // rows, or one row of 40,000 bytes, go to the pool.
      const groupOn = async (writes: RowWrite[]): Promise<'loop' | 'pool'> => {
        const was = hot.walSyncState().syncsOnLoop;
        await committer.commit(writes);
        return hot.walSyncState().syncsOnLoop > was ? 'loop' : 'pool';
      };
      const bigId = id++;
      const big: RowWrite = { ...insert(bigId), values: [BigInt(bigId), 'x'.repeat(40_000)] };
      // Small groups go on the loop only while it has room and the disk is quick: a test process on a
      // loaded machine may need a few tries (as above). Large groups go to the pool, always.
      const onLoopSoon = async (writes: () => RowWrite[]): Promise<'loop' | 'pool'> => {
        let where = await groupOn(writes());
        for (let attempt = 0; attempt < 20 && where === 'pool'; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 150));
          where = await groupOn(writes());
        }
        return where;
      };
      assert.deepEqual(
        [await onLoopSoon(() => rows(255)), await groupOn(rows(256)), await groupOn([big]), await onLoopSoon(() => rows(1))],
        ['loop', 'pool', 'pool', 'loop'],
      );
    });
  });

  it('syncs catalog writes (DDL, users) and flush hand-overs too', async () => {
    await withStore('fsync', async (hot, dir) => {
      await hot.writeCatalog(new Map([['ns:app', { name: 'app', createdAt: 1 }]]));
      assert.equal(hot.walSyncState().syncs, 1);
      assert.equal(hot.walSyncState().walBytes, walSize(dir));

      const committer = new Committer(hot, new SnowflakeGenerator());
      const [change] = await committer.commit([insert(1)]);
      await committer.idle(); // else the watch counts the group just written as written after the flush's read
      const before = hot.walSyncState().syncs;
      const watch = committer.watchPartition(table.id, '');
      const [entry] = await hot.scanIndex(table, '', hot.db);
      const converted = await committer.handOverToCold({
        table, partition: '', maxSeq: change!.row.seq,
        entries: [{ key: entry!.key, seq: change!.row.seq, deleted: false, schemaVersion: 1 }],
      }, watch);
      assert.equal(converted, 1);
      assert.equal(hot.walSyncState().syncs, before + 1, 'the hand-over chunk was synced');
      assert.equal(hot.walSyncState().walBytes, walSize(dir));
    });
  });

  it('keeps syncing the right file after RocksDB switches to a new WAL', async () => {
    await withStore('fsync', async (hot, dir) => {
      const committer = new Committer(hot, new SnowflakeGenerator());
      await committer.commit([insert(1)]);
      const first = hot.walSyncState().walNumber;
      await hot.db.flush(); // a memtable flush starts a new WAL file
      await committer.commit([insert(2)]);
      const state = hot.walSyncState();
      assert.ok(state.walNumber > first, `a new WAL (${first} -> ${state.walNumber})`);
      assert.equal(state.walBytes, walSize(dir));
      assert.ok(state.walBytes > 0);
    });
  });

  it('after a failed sync refuses every write until RocksDB is reopened, then syncs the new WAL', async () => {
    await withStore('fsync', async (hot, dir) => {
      const committer = new Committer(hot, new SnowflakeGenerator());
      await committer.commit([insert(1)]);
      // The next sync fails: its descriptor is closed behind its back (EBADF; a full disk gives ENOSPC).
      const syncer = (hot as unknown as { syncer: { current: { handle: { close(): Promise<void> } } } }).syncer;
      await syncer.current.handle.close();
      await assert.rejects(committer.commit([insert(2)]), /EBADF|closed|"fd" is out of range/);
      // Every later write is refused, even though this descriptor problem would not recur: no later sync vouches for the WAL.
      await assert.rejects(committer.commit([insert(3)]), /could not be synced earlier/);
      await assert.rejects(hot.probeWrite(), /could not be synced earlier/, 'the recovery probe sees it too');
      await hot.reopen();
      await hot.probeWrite();
      await committer.commit([insert(4)]);
      assert.equal(hot.walSyncState().walBytes, walSize(dir), 'the new WAL is synced');
    });
  });

  it('shares one sync between callers that arrive while a sync runs', async () => {
    await withStore('fsync', async (hot) => {
      await hot.writeCatalog(new Map([['a', 1]]));
      const before = hot.walSyncState().syncs;
      // The first sync starts; the next ten callers arrive while it may run: they cannot rely on it
      // (it may have started before their writes) and all share one following sync.
      const first = hot.syncWal();
      await new Promise(setImmediate);
      await Promise.all([first, ...Array.from({ length: 10 }, () => hot.syncWal())]);
      const syncs = hot.walSyncState().syncs - before;
      assert.ok(syncs === 1 || syncs === 2, `11 callers, ${syncs} syncs`);
    });
  });
});

describe('process mode', () => {
  it('never syncs the WAL, and the writes are still applied', async () => {
    await withStore('process', async (hot) => {
      const committer = new Committer(hot, new SnowflakeGenerator());
      await Promise.all(Array.from({ length: 16 }, (_, i) => committer.commit([insert(i)])));
      await hot.writeCatalog(new Map([['ns:app', { name: 'app', createdAt: 1 }]]));
      assert.deepEqual(hot.walSyncState(), { syncs: 0, syncsOnLoop: 0, walNumber: 0, walBytes: 0 });
      assert.equal((await hot.scanPartition(table, '')).length, 16);
    });
  });
});

describe('server start-up', () => {
  it('logs the durability mode it runs with', async () => {
    const server = await TestServer.start(undefined, { KALAMDB_DURABILITY: 'process' });
    try {
      assert.match(server.output.join(''), /"msg":"listening".*"durability":"process"/);
      await server.ok('CREATE NAMESPACE modes');
    } finally {
      await server.dispose();
    }
  });
});
