/**
 * Writes a backup (the format of backup-format.ts, decision 0021) of a running server (the backup
 * job) or of a stopped data dir (`main.js backup`). The caller supplies the two guards that make it
 * consistent online: `withCatalogQuiet` (the DDL mutex: no catalog change in flight) and `freezeCold`
 * (the flush service's freeze: no flush, compaction, repair or purge in flight or starting, each
 * holding its partition lock through its hand-over). Under both, the RocksDB snapshot is taken and
 * the manifests are read in one synchronous step; then, still frozen, the segments those manifests
 * list are copied (the freeze keeps compaction and DROP TABLE from deleting them). DDL is let go
 * right after the snapshot; flushes wait until the cold files are copied; writes never wait. Then
 * the snapshot's keys are dumped, streamed, while everything runs.
 */
import { countPacked } from '../hot/version-pack.js';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Catalog } from '../../catalog/catalog.js';
import { qualifiedName, type TableDef } from '../../catalog/types.js';
import type { HotStore } from '../hot/hot-store.js';
import type { ColdStore } from '../cold/cold-store.js';
import type { Manifest } from '../cold/manifest.js';
import { fsyncPath } from '../cold/manifest.js';
import { KEY_CATALOG, KEY_VERSION, catalogKey } from '../hot/keys.js';
import {
  BACKUP_FORMAT, BACKUP_MANIFEST_FILE, CHECKSUMS_FILE, COLD_DIR, IN_PROGRESS_FILE, JWT_SECRET_FILE, KV_DIR, KvDumpWriter,
  SHARED_PARTITION_DIR, hashFile, writeChecksums, type BackupColdPartition, type BackupManifest, type ListedFile,
} from './backup-format.js';
import { SERVER_VERSION } from '../../util/version.js';

export interface BackupSource {
  readonly catalog: Catalog;
  readonly hot: HotStore;
  readonly cold: ColdStore;
  readonly dataDir: string;
  readonly nodeId: string;
  /** True when the JWT secret comes from the configuration (then it is not copied into the backup). */
  readonly jwtSecretConfigured: boolean;
  /** Runs `fn` with the cold tier frozen (FlushService.freezeCold; offline: runs it). */
  freezeCold<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` with no catalog change in flight (the DDL mutex; offline: runs it). */
  withCatalogQuiet<T>(fn: () => Promise<T>): Promise<T>;
}

export interface BackupResult {
  readonly backup_path: string;
  readonly files: number;
  readonly bytes: number;
  readonly tables: number;
  readonly cold_rows: number;
  readonly hot_row_versions: number;
  readonly kv_records: number;
  readonly duration_ms: number;
}

export interface BackupOptions {
  /** Written into `.in-progress` (the job id, or `offline`). */
  readonly marker: string;
  /** A catalog key left out of the dump (the job's own row, which says `running`), or null. */
  readonly skipCatalogKey: string | null;
  readonly signal?: AbortSignal;
  /** Called often; throttling is the caller's. */
  readonly onProgress?: (fraction: number, message: string) => Promise<void> | void;
}

export class BackupCancelledError extends Error {
  constructor() {
    super('Cancelled by KILL JOB');
  }
}

/** Why a target directory cannot take a backup (null: it can). */
export function backupTargetProblem(dir: string): string | null {
  if (!existsSync(dir)) return null;
  let entries: string[];
  try {
    // A file (not a directory) at the path fails with ENOTDIR, reported as is.
    entries = readdirSync(dir);
  } catch (error) {
    return `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  if (entries.length === 0) return null;
  // An unfinished backup of ours (a failed or killed job) is cleared and written again.
  if (entries.includes(IN_PROGRESS_FILE) && entries.every((e) => OURS.has(e))) return null;
  if (entries.includes(BACKUP_MANIFEST_FILE)) return 'already holds a backup; choose a new directory';
  return 'is not empty; choose a new or empty directory';
}

const OURS: ReadonlySet<string> = new Set([IN_PROGRESS_FILE, BACKUP_MANIFEST_FILE, CHECKSUMS_FILE, KV_DIR, COLD_DIR, 'config']);

/** Writes the backup into `dir` (new, empty, or an unfinished backup of ours). */
export async function writeBackup(d: BackupSource, dir: string, o: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const progress = { total: 1, done: 0 };
  const report = async (message: string): Promise<void> => {
    await o.onProgress?.(Math.min(0.99, progress.done / Math.max(1, progress.total)), message);
  };
  const checkCancelled = (): void => {
    if (o.signal?.aborted === true) throw new BackupCancelledError();
  };
  const problem = backupTargetProblem(dir);
  if (problem !== null) throw new Error(`Backup path '${dir}' ${problem}`);
  await mkdir(dir, { recursive: true });
  // A backup holds every row, the password hashes, storage credentials and the JWT secret: only the
  // server's own account may enter its directory, whatever the files' own modes.
  await chmod(dir, 0o700);
  await writeFile(join(dir, IN_PROGRESS_FILE), `${o.marker}\n`);
  for (const name of [KV_DIR, COLD_DIR, 'config', BACKUP_MANIFEST_FILE, CHECKSUMS_FILE]) await rm(join(dir, name), { recursive: true, force: true });
  await mkdir(join(dir, KV_DIR));
  await mkdir(join(dir, COLD_DIR));
  await report('waiting for running flushes and DDL');

  const files: ListedFile[] = [];
  const cold: BackupColdPartition[] = [];
  let coldRows = 0;
  let coldSegments = 0;
  let tables = 0;
  let users = 0;
  const snapshot = await d.freezeCold(async () => {
    // Everything captured here is of one instant: no await between the snapshot and the manifests.
    const captured = await d.withCatalogQuiet(async () => {
      const snap = d.hot.db.snapshot();
      const parts: { table: TableDef; partition: string; manifest: Manifest; files: string[] }[] = [];
      const all = d.catalog.tablesIn(null).filter((t) => t.type !== 'STREAM');
      for (const table of all) {
        for (const partition of d.cold.partitions(table)) {
          // A damaged partition fails the backup (TableUnavailableError names the file): a backup
          // must not silently miss rows.
          const manifest = d.cold.manifest(table, partition);
          if (manifest.segments.length === 0) continue;
          parts.push({ table, partition, manifest, files: d.cold.files(table, partition) });
        }
      }
      tables = all.length;
      users = d.catalog.listUsers().filter((u) => u.deletedAt === null).length;
      return { snap, parts };
    });
    try {
      progress.total = await estimateBytes(d.hot, captured.parts.flatMap((p) => p.manifest.segments.map((s) => s.size_bytes)));
      for (const part of captured.parts) {
        const rel = `${COLD_DIR}/t${part.table.id}/${part.partition === '' ? SHARED_PARTITION_DIR : part.partition}`;
        await mkdir(join(dir, rel), { recursive: true });
        // A remote (S3) partition's segments are copied from the local cache: bring in what is not there
        // (the partitions are frozen, so the manifest captured above is still the current one).
        await d.cold.fetchSegments(part.table, part.partition);
        for (const source of part.files) {
          checkCancelled();
          const target = join(dir, rel, basename(source));
          await copyFile(source, target);
          const { sha256, bytes } = await hashFile(target);
          files.push({ path: `${rel}/${basename(source)}`, sha256, bytes });
          progress.done += bytes;
          await report(`copying cold segments of ${qualifiedName(part.table)}`);
        }
        await writeFile(join(dir, rel, 'manifest.json'), JSON.stringify(part.manifest, null, 2));
        files.push({ path: `${rel}/manifest.json`, ...(await hashFile(join(dir, rel, 'manifest.json'))) });
        const rows = part.manifest.segments.reduce((n, s) => n + s.row_count, 0);
        coldRows += rows;
        coldSegments += part.manifest.segments.length;
        cold.push({ table_id: part.table.id, table: qualifiedName(part.table), partition: part.partition, dir: rel, segments: part.manifest.segments.map((s) => s.path), rows });
      }
    } catch (error) {
      await captured.snap.close().catch(() => undefined);
      throw error;
    }
    return captured.snap;
  });

  // The hot tier, catalog included, from the snapshot: flushes run again meanwhile.
  const kv = new KvDumpWriter(dir);
  let hotVersions = 0;
  const skipKey = o.skipCatalogKey === null ? null : catalogKey(o.skipCatalogKey);
  try {
    for await (const { key, value } of snapshot.iterator({ capacity: 1024 })) {
      if (skipKey !== null && key[0] === KEY_CATALOG && key.equals(skipKey)) continue;
      // A version entry may be a pack of one commit group's versions (decision 0018); its key ends with the highest `_seq`.
      if (key[0] === KEY_VERSION) hotVersions += countPacked(key.readBigUInt64BE(key.length - 8), value, 0n);
      await kv.put(key, value);
      progress.done += key.length + value.length + 8;
      if ((kv.records & 0x3ff) === 0) {
        checkCancelled();
        await report('dumping the hot tier and catalog');
      }
    }
    await kv.finish();
  } catch (error) {
    await kv.abort();
    throw error;
  } finally {
    await snapshot.close().catch(() => undefined);
  }
  files.push(...kv.files);

  const secret = join(d.dataDir, 'jwt-secret');
  if (!d.jwtSecretConfigured && existsSync(secret)) {
    await mkdir(join(dir, 'config'), { recursive: true });
    await copyFile(secret, join(dir, JWT_SECRET_FILE));
    files.push({ path: JWT_SECRET_FILE, ...(await hashFile(join(dir, JWT_SECRET_FILE))) });
  }

  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT, created_at: new Date().toISOString(), server_version: SERVER_VERSION, node_id: d.nodeId,
    tables, users, kv_records: kv.records, hot_row_versions: hotVersions, cold_rows: coldRows, cold_segments: coldSegments,
    files: files.length + 1, bytes, duration_ms: Math.round(performance.now() - started), cold,
  };
  await writeFile(join(dir, BACKUP_MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  files.push({ path: BACKUP_MANIFEST_FILE, ...(await hashFile(join(dir, BACKUP_MANIFEST_FILE))) });
  for (const sub of new Set(files.map((f) => join(dir, f.path, '..')))) fsyncPath(sub);
  await writeChecksums(dir, files);
  // The list is written: the backup is complete once the marker is gone.
  await rm(join(dir, IN_PROGRESS_FILE));
  fsyncPath(dir);
  return {
    backup_path: dir, files: files.length + 1, bytes, tables, cold_rows: coldRows, hot_row_versions: hotVersions,
    kv_records: kv.records, duration_ms: Math.round(performance.now() - started),
  };
}

/** Bytes the backup will write, for progress: the segments plus RocksDB's live data estimate. */
async function estimateBytes(hot: HotStore, segmentSizes: readonly number[]): Promise<number> {
  let hotBytes = 0;
  try {
    hotBytes = Number(await hot.db.getProperty('rocksdb.estimate-live-data-size')) || 0;
    hotBytes += Number(await hot.db.getProperty('rocksdb.cur-size-all-mem-tables')) || 0;
  } catch {
    // No estimate: progress moves by the segments alone.
  }
  return segmentSizes.reduce((n, s) => n + s, 0) + hotBytes;
}
