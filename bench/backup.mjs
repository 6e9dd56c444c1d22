// `--only backup`: BACKUP DATABASE and `main.js restore` throughput on ~1 GB of data (--backup-mb N, default 1024).
// The data: one SHARED table of 8 KiB random (incompressible) text rows, half flushed to Parquet segments and
// half still in the hot tier. Measured: the backup job (statement to completed job: snapshot, segment copy, key
// dump, checksums), the insert latency of one writer while it runs, and the offline restore into an empty data
// dir (checksum verification, then the load), both as MB/s of backup bytes.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { latencyStats, waitForJob } from './lib.mjs';

const MAIN = process.env.KALAMDB_BENCH_MAIN ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'packages/server/dist/src/main.js');
const ROW_BYTES = 8192;
const ROWS_PER_STATEMENT = 100;

const mbps = (bytes, ms) => Math.round((bytes / 1048576) / (ms / 1000) * 10) / 10;

export async function benchBackup(server, targetMb) {
  await server.sql('CREATE NAMESPACE IF NOT EXISTS bb');
  // No policy flushes: the half-and-half split between tiers is made by the explicit flush below.
  await server.sql("CREATE SHARED TABLE bb.blobs (id BIGINT PRIMARY KEY, body TEXT) WITH (FLUSH_POLICY = 'rows:100000000')");
  const rows = Math.ceil((targetMb * 1048576) / ROW_BYTES);
  const loadStarted = performance.now();
  let next = 0;
  const insertRange = async (end) => {
    const statements = [];
    for (; next < end; next += ROWS_PER_STATEMENT) {
      const values = [];
      for (let i = next; i < Math.min(end, next + ROWS_PER_STATEMENT); i++) values.push(`(${i}, '${randomBytes(ROW_BYTES * 3 / 4).toString('base64')}')`);
      statements.push(`INSERT INTO bb.blobs VALUES ${values.join(',')}`);
      if (statements.length === 2) await Promise.all(statements.splice(0).map((s) => server.sql(s)));
    }
    await Promise.all(statements.map((s) => server.sql(s)));
  };
  await insertRange(Math.floor(rows / 2));
  const flush = await server.sql('STORAGE FLUSH TABLE bb.blobs');
  await waitForJob(server.sql, flush.results[0].message);
  await insertRange(rows);
  const loadMs = performance.now() - loadStarted;

  const work = mkdtempSync(join(tmpdir(), 'kalamdb-bench-backup-'));
  try {
    const backupDir = join(work, 'backup');
    // One writer during the backup: single-row inserts, latency per insert.
    const during = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const t = performance.now();
        await server.sql(`INSERT INTO bb.blobs VALUES (${rows + i}, 'during backup')`);
        during.push(performance.now() - t);
      }
    })();
    const started = performance.now();
    const res = await server.sql(`BACKUP DATABASE TO '${backupDir}'`);
    const job = await waitForJob(server.sql, res.results[0].message);
    const backupMs = performance.now() - started;
    writing = false;
    await writer;
    // waitForJob throws unless the job completed; its result is parsed already.
    const result = job.result;

    const dataDir = join(work, 'restored');
    const restoreStarted = performance.now();
    const out = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, 'restore', '--from', backupDir, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`restore exited ${code}: ${stderr}`))));
    });
    const restoreMs = performance.now() - restoreStarted;
    return {
      rows, row_bytes: ROW_BYTES, load_seconds: Math.round(loadMs / 100) / 10,
      backup: {
        bytes: result.bytes, files: result.files, cold_rows: result.cold_rows, hot_row_versions: result.hot_row_versions,
        seconds: Math.round(backupMs / 100) / 10, mb_per_s: mbps(result.bytes, backupMs),
        writes_during_backup: latencyStats(during),
      },
      restore: {
        bytes: out.bytes, seconds: Math.round(restoreMs / 100) / 10, mb_per_s: mbps(out.bytes, restoreMs),
        verify_ms: out.verify_ms, load_ms: out.load_ms, kv_records: out.kv_records, cold_files: out.cold_files,
        note: 'offline main.js restore into an empty data dir, process start included; verify = SHA-256 of every file',
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
