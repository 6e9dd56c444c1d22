// `node bench/durability-hot.mjs [seconds]`: the committer alone (no HTTP, no SQL), 16 concurrent
// single-row writers and 2 concurrent 1,000-row writers, once per durability mode. It isolates what the
// WAL sync costs from the CPU the HTTP/SQL path needs (which dominates on a loaded 2-core machine).
// Needs `npm run build` first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HotStore } from '../packages/server/dist/src/storage/hot/hot-store.js';
import { Committer } from '../packages/server/dist/src/storage/hot/committer.js';
import { SnowflakeGenerator } from '../packages/server/dist/src/util/snowflake.js';
import { latencyStats, machine } from './lib.mjs';

const seconds = Number(process.argv[2] ?? '3');
const table = {
  id: 1, namespace: 'bench', name: 'hot', type: 'SHARED', schemaVersion: 1,
  columns: [
    { name: 'id', type: 'BigInt', nullable: false, primaryKey: true },
    { name: 'body', type: 'Text', nullable: true, primaryKey: false },
  ],
  options: { flushPolicy: { rows: null, intervalSeconds: null }, accessLevel: null, ttlSeconds: null, maxBuffer: null, ephemeral: false, deletedRetentionHours: 0 },
  createdAt: 0, createdBy: 'bench',
};
const row = (id) => ({ table, partition: '', values: [BigInt(id), `bulk body number ${id}`], deleted: false, expect: 'absent' });

async function run(durability, writers, rowsPerCommit) {
  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-durability-hot-'));
  const hot = await HotStore.open(dir, durability);
  const committer = new Committer(hot, new SnowflakeGenerator());
  let next = 0;
  let rows = 0;
  const latencies = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(Array.from({ length: writers }, async () => {
    while (performance.now() < deadline) {
      const writes = Array.from({ length: rowsPerCommit }, () => row(next++));
      const t = performance.now();
      await committer.commit(writes);
      latencies.push(performance.now() - t);
      rows += rowsPerCommit;
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const { syncs } = hot.walSyncState();
  await hot.close();
  rmSync(dir, { recursive: true, force: true });
  return { rows_per_s: Math.round(rows / elapsed), commits: latencies.length, wal_syncs: syncs, commit_latency: latencyStats(latencies) };
}

const out = { machine: machine(), seconds_per_run: seconds };
for (const mode of ['fsync', 'process']) {
  out[mode] = { single_row_16_writers: await run(mode, 16, 1), rows_1000_2_writers: await run(mode, 2, 1000) };
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
