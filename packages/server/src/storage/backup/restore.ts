/**
 * Restoring a backup (decision 0021) into a data directory that holds no database: every checksum
 * is verified first, then the key/value dump is loaded into a new RocksDB, the catalog is read from
 * it, and each backed-up partition's segments and manifest are written where the cold store puts
 * that partition (ColdStore.dir, so the layout is the cold store's, not this module's). Start-up
 * recovery (orphans, an unfinished flush hand-over) then runs as after any stop.
 *
 * RESTORE DATABASE on a running server stages the backup in `<data>/restore-pending` (verified as it
 * is copied); the next start applies it before anything opens the stores: the current rocksdb/,
 * storage/ and jwt-secret are moved into `<data>/pre-restore-<time>/` (kept, never deleted), then
 * the staged backup is restored. A crash half-way is safe: the `applying` marker makes the next
 * start discard the partial restore and apply it again.
 */
import { filesystemStorageDirs } from '../storages/storage-locations.js';
import { copyFile, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Catalog } from '../../catalog/catalog.js';
import { HotStore } from '../hot/hot-store.js';
import { ColdStore } from '../cold/cold-store.js';
import { DuckEngine } from '../duck/duck-engine.js';
import { MANIFEST_FILE, fsyncPath } from '../cold/manifest.js';
import {
  BackupDamagedError, JWT_SECRET_FILE, KV_DIR, hashFile, readKvChunk, verifyBackup, type BackupManifest, type ListedFile,
} from './backup-format.js';

export const RESTORE_PENDING_DIR = 'restore-pending';
const STAGING_DIR = 'restore-pending.tmp';
const READY_FILE = '.ready';
const APPLYING_FILE = '.applying';
const BATCH_BYTES = 4 * 1024 * 1024;

export interface RestoreSummary {
  readonly manifest: BackupManifest;
  readonly kv_records: number;
  readonly cold_files: number;
  readonly bytes: number;
  readonly verify_ms: number;
  readonly load_ms: number;
}

/** What a restore replaces: the hot tier, the cold tier of local and remote (S3) storages, the generated secret. */
const DATABASE_ENTRIES = ['rocksdb', 'storage', 'remote', 'jwt-secret'];

/** Entries of a data directory that mean it holds a database (a restore target must have none). */
export function dataDirContents(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir).filter((name) => {
    if (name !== 'storage' && name !== 'rocksdb' && name !== 'remote') return true;
    // Empty directories left by a start that failed early do not count.
    return readdirSync(join(dataDir, name)).length > 0;
  });
}

/** Verifies `backupDir` and restores it into `dataDir` (which must hold no database). */
export async function restoreInto(dataDir: string, backupDir: string, onProgress?: (fraction: number, message: string) => void): Promise<RestoreSummary> {
  const verifyStarted = performance.now();
  const { manifest, files } = await verifyBackup(backupDir, (bytes, all) => onProgress?.(0.5 * bytes / Math.max(1, all), 'verifying checksums'));
  const verifyMs = performance.now() - verifyStarted;
  const total = totalBytes(files);
  let done = 0;
  const loadStarted = performance.now();
  await mkdir(join(dataDir, 'storage'), { recursive: true });
  const hot = await HotStore.open(join(dataDir, 'rocksdb'), 'process');
  let duck: DuckEngine | null = null;
  let kvRecords = 0;
  let coldFiles = 0;
  try {
    for (const f of files.filter((x) => x.path.startsWith(`${KV_DIR}/`)).sort((a, b) => (a.path < b.path ? -1 : 1))) {
      let batch = hot.db.write({ capacity: 1024, autoDestroy: true });
      let batchBytes = 0;
      kvRecords += await readKvChunk(join(backupDir, f.path), f.path, async (key, value) => {
        batch.tryPut(key, value);
        batchBytes += key.length + value.length;
        if (batchBytes >= BATCH_BYTES) {
          await batch.flush();
          batch = hot.db.write({ capacity: 1024, autoDestroy: true });
          batchBytes = 0;
        }
      });
      await batch.flush();
      done += f.bytes;
      onProgress?.(0.5 + 0.5 * done / total, 'loading the hot tier and catalog');
    }
    // Written without the WAL synced per batch: one flush to table files makes all of it durable.
    await hot.db.flush();
    const catalog = await Catalog.load(hot);
    duck = await DuckEngine.open({
      threads: 1, memoryLimit: '64MB', connections: 1, queryTimeoutMs: 60_000, resultRowsMax: 1, resultBytesMax: 1,
      storageDirs: [join(dataDir, 'storage'), join(dataDir, 'remote'), ...filesystemStorageDirs(catalog.listStorages())],
    });
    // Remote (S3) tables' segments land in the local cache; the first start uploads those the bucket lacks.
    const cold = ColdStore.open(dataDir, duck, (id) => catalog.storage(id), Number.MAX_SAFE_INTEGER);
    for (const part of manifest.cold) {
      const table = catalog.tableById(part.table_id);
      if (table === undefined) throw new BackupDamagedError('backup.json', `lists cold files of table id ${part.table_id} (${part.table}), which its catalog does not hold`);
      const target = cold.dir(table, part.partition);
      await mkdir(target, { recursive: true });
      for (const segment of part.segments) {
        await copyDurably(join(backupDir, part.dir, segment), join(target, segment));
        coldFiles++;
        done += files.find((x) => x.path === `${part.dir}/${segment}`)?.bytes ?? 0;
        onProgress?.(0.5 + 0.5 * done / total, 'copying cold segments');
      }
      // The manifest last, atomically: its segments are in place before it names them.
      await copyDurably(join(backupDir, part.dir, MANIFEST_FILE), join(target, `${MANIFEST_FILE}.tmp`));
      await rename(join(target, `${MANIFEST_FILE}.tmp`), join(target, MANIFEST_FILE));
      fsyncPath(target);
      coldFiles++;
    }
    if (files.some((f) => f.path === JWT_SECRET_FILE)) {
      await writeFile(join(dataDir, 'jwt-secret'), readFileSync(join(backupDir, JWT_SECRET_FILE)), { mode: 0o600 });
    }
  } finally {
    duck?.close();
    await hot.close();
  }
  fsyncPath(dataDir);
  return { manifest, kv_records: kvRecords, cold_files: coldFiles, bytes: total, verify_ms: Math.round(verifyMs), load_ms: Math.round(performance.now() - loadStarted) };
}

function totalBytes(files: readonly ListedFile[]): number {
  return files.reduce((n, f) => n + f.bytes, 0);
}

async function copyDurably(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  const handle = await open(to, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// RESTORE DATABASE on a running server: stage now, apply at the next start ---------------------------

/**
 * Copies a verified backup into `<data>/restore-pending` (each copy checked against the list), for
 * the next start to apply. A previously staged restore is replaced.
 */
export async function stageRestore(dataDir: string, backupDir: string, files: readonly ListedFile[], onProgress?: (fraction: number) => void): Promise<void> {
  const staging = join(dataDir, STAGING_DIR);
  await rm(staging, { recursive: true, force: true });
  const total = Math.max(1, totalBytes(files));
  let done = 0;
  for (const f of [...files].sort((a, b) => (a.path === 'checksums.sha256' ? 1 : b.path === 'checksums.sha256' ? -1 : 0))) {
    const target = join(staging, f.path);
    await mkdir(dirname(target), { recursive: true });
    await copyDurably(join(backupDir, f.path), target);
    const { sha256 } = await hashFile(target);
    if (sha256 !== f.sha256) throw new BackupDamagedError(f.path, 'changed while it was being copied (SHA-256 of the copy differs)');
    done += f.bytes;
    onProgress?.(done / total);
  }
  await copyDurably(join(backupDir, 'checksums.sha256'), join(staging, 'checksums.sha256'));
  for (const sub of new Set(files.map((f) => dirname(join(staging, f.path))))) fsyncPath(sub);
  await writeFile(join(staging, READY_FILE), `${backupDir}\n`);
  fsyncPath(staging);
  const pending = join(dataDir, RESTORE_PENDING_DIR);
  await rm(pending, { recursive: true, force: true });
  await rename(staging, pending);
  fsyncPath(dataDir);
}

/**
 * Removes a staged restore before the next start applies it (KILL JOB on the restore job). Returns
 * whether one was staged.
 */
export async function unstageRestore(dataDir: string): Promise<boolean> {
  if (!restorePending(dataDir)) return false;
  await rm(join(dataDir, RESTORE_PENDING_DIR), { recursive: true, force: true });
  fsyncPath(dataDir);
  return true;
}

/** True when a staged restore waits for the next start. */
export function restorePending(dataDir: string): boolean {
  return existsSync(join(dataDir, RESTORE_PENDING_DIR, READY_FILE));
}

/**
 * At start-up, before the stores open: applies a staged restore. `lockCheck` opens and closes the
 * data dir's RocksDB (it throws when another process holds it). Returns the summary, or null when
 * nothing was staged.
 */
export async function applyPendingRestore(dataDir: string, lockCheck: () => Promise<void>): Promise<(RestoreSummary & { previous: string }) | null> {
  // No data dir yet (or not a directory): nothing staged; opening it reports the real problem.
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) return null;
  await rm(join(dataDir, STAGING_DIR), { recursive: true, force: true });
  const pending = join(dataDir, RESTORE_PENDING_DIR);
  if (!restorePending(dataDir)) {
    await rm(pending, { recursive: true, force: true });
    return null;
  }
  await lockCheck();
  const applying = join(pending, APPLYING_FILE);
  let previous: string;
  if (existsSync(applying)) {
    // A restore that a crash interrupted: what is in rocksdb/ and storage/ is its partial work.
    previous = readFileSync(applying, 'utf8').trim();
    for (const name of DATABASE_ENTRIES) await rm(join(dataDir, name), { recursive: true, force: true });
  } else {
    previous = join(dataDir, `pre-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await mkdir(previous, { recursive: true });
    for (const name of DATABASE_ENTRIES) {
      if (existsSync(join(dataDir, name))) await rename(join(dataDir, name), join(previous, name));
    }
    await writeFile(applying, `${previous}\n`);
    fsyncPath(pending);
    fsyncPath(dataDir);
  }
  const summary = await restoreInto(dataDir, pending);
  const done = join(dataDir, `${RESTORE_PENDING_DIR}.applied`);
  await rm(done, { recursive: true, force: true });
  await rename(pending, done);
  fsyncPath(dataDir);
  await rm(done, { recursive: true, force: true });
  return { ...summary, previous };
}
