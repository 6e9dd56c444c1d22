/**
 * BACKUP DATABASE TO 'dir', RESTORE DATABASE FROM 'dir' and SHOW BACKUP 'dir' (dba and system only).
 * BACKUP starts a `backup` job (jobs/backup-job.ts). RESTORE verifies every checksum in the request
 * (a damaged backup is refused naming the file), then a `restore` job stages it for the next start
 * (storage/backup/restore.ts; upstream also restores at the restart). SHOW BACKUP describes one.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isWithin } from '../util/paths.js';
import { validateBackupPath } from '../sql/backup-parser.js';
import { ServerError, execError } from '../util/errors.js';
import { Mutex } from '../util/mutex.js';
import { requireAdmin } from '../auth/access.js';
import type { Statement } from '../sql/statement.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult } from './context.js';
import type { SchemaField } from './duck-cells.js';
import { startBackup } from '../jobs/backup-job.js';
import { JobProgress } from '../jobs/job-progress.js';
import { backupTargetProblem } from '../storage/backup/backup-writer.js';
import { BackupDamagedError, readBackupManifest, verifyBackup, type BackupManifest } from '../storage/backup/backup-format.js';
import { stageRestore } from '../storage/backup/restore.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

/**
 * Checking "none running" and creating the job row are one step per process: two concurrent BACKUP
 * statements to the same directory would otherwise both find it free and clear each other's files.
 */
const starting = new Mutex();

/**
 * The path as the file system resolves it (symbolic links in its existing part followed): a link
 * must not lead into a system directory or the data dir that the written path avoids.
 */
function resolvedPath(path: string): string {
  let existing = resolve(path);
  const rest: string[] = [];
  while (!existsSync(existing) && dirname(existing) !== existing) {
    rest.unshift(basename(existing));
    existing = dirname(existing);
  }
  return join(realpathSync(existing), ...rest);
}

/** The path rules on the resolved path too, and: not inside the data dir, nor holding it. */
function checkTarget(s: Services, path: string): void {
  const real = resolvedPath(path);
  if (real !== resolve(path)) validateBackupPath(real);
  const data = realpathSync(resolve(s.config.dataDir));
  if (isWithin(real, data) || isWithin(data, real)) throw execError(`Backup path '${path}' cannot be inside the data directory or contain it`);
}

export async function backupDatabase(s: Services, ctx: RunContext, st: Of<'backup_database'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'BACKUP DATABASE');
  checkTarget(s, st.path);
  const job = await starting.run(async () => {
    const problem = backupTargetProblem(st.path);
    if (problem !== null) throw execError(`Backup path '${st.path}' ${problem}`);
    if (s.jobs.list().some((j) => j.job_type === 'backup' && j.status === 'running')) throw execError('A backup is already running: wait for it to finish (system.jobs)');
    return startBackup({
      catalog: s.catalog, hot: s.hot, cold: s.cold, flush: s.flush, jobs: s.jobs, ddl: s.ddl, log: s.log,
      dataDir: s.config.dataDir, nodeId: s.config.nodeId, jwtSecretConfigured: s.config.jwtSecret !== null,
    }, st.path, ctx.principal.userId);
  });
  return messageResult(ctx, `Database backup started to '${st.path}'. Job ID: ${job.job_id}`);
}

/** The backup directory must exist and be a directory (upstream's messages). */
function existingBackupDir(path: string): void {
  if (!existsSync(path)) throw new ServerError('NOT_FOUND', `Backup directory '${path}' not found`);
  if (!statSync(path).isDirectory()) throw execError(`'${path}' is not a directory. RESTORE DATABASE expects a backup directory, not a file.`);
}

function damaged(path: string, error: unknown): never {
  if (error instanceof BackupDamagedError) throw execError(`Backup '${path}' cannot be used: ${error.message}`);
  throw error;
}

export async function restoreDatabase(s: Services, ctx: RunContext, st: Of<'restore_database'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'RESTORE DATABASE');
  checkTarget(s, st.path);
  existingBackupDir(st.path);
  const { files } = await verifyBackup(st.path).catch((error: unknown) => damaged(st.path, error));
  const { job } = await starting.run(async () => {
    if (s.jobs.list().some((j) => j.job_type === 'restore' && j.status === 'running')) throw execError('A restore is already being staged: wait for it to finish (system.jobs)');
    return s.jobs.create({ job_type: 'restore', namespace_id: null, table_name: null, user_id: ctx.principal.userId, parameters: { backup_path: st.path } });
  });
  void (async () => {
    const progress = new JobProgress(s.jobs, job.job_id);
    try {
      await stageRestore(s.config.dataDir, st.path, files, (fraction) => progress.report(fraction, 'staging the backup in the data directory'))
        .finally(() => progress.settled());
      await s.jobs.update(job.job_id, {
        status: 'completed', finished_at: Date.now(), progress: 1,
        progress_message: `Restore staged from '${st.path}'. It is applied when the server restarts.`,
        result: JSON.stringify({ backup_path: st.path, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) }),
      });
      s.log.warn('restore staged: applied at the next start', { job_id: job.job_id, backup_path: st.path });
    } catch (error) {
      await s.jobs.update(job.job_id, { status: 'failed', finished_at: Date.now(), error_message: `Restore failed: ${(error as Error).message}` }).catch(() => undefined);
      s.log.error('restore staging failed', { job_id: job.job_id, error: (error as Error)?.stack ?? String(error) });
    }
  })();
  return messageResult(ctx, `Database restore started from '${st.path}'. Job ID: ${job.job_id}. Server restart required after completion.`);
}

const SHOW_BACKUP_SCHEMA: SchemaField[] = [
  'backup_path', 'created_at', 'server_version', 'format', 'tables', 'users', 'cold_rows', 'hot_row_versions', 'cold_segments', 'files', 'bytes', 'verified', 'problem',
].map((name, index) => ({
  name, index,
  data_type: ['format', 'tables', 'users', 'cold_rows', 'hot_row_versions', 'cold_segments', 'files', 'bytes'].includes(name) ? 'BigInt'
    : name === 'verified' ? 'Boolean' : 'Text',
}));

/** SHOW BACKUP 'dir': one row describing the backup; `verified` says whether every checksum matched. */
export async function showBackup(_s: Services, ctx: RunContext, st: Of<'show_backup'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'SHOW BACKUP');
  existingBackupDir(st.path);
  let manifest: BackupManifest | null = null;
  let problem: string | null = null;
  try {
    manifest = (await verifyBackup(st.path)).manifest;
  } catch (error) {
    if (!(error instanceof BackupDamagedError)) throw error;
    problem = error.message;
    try {
      manifest = readBackupManifest(st.path);
    } catch {
      // Described as far as it can be: the problem column says why the rest is empty.
    }
  }
  // BigInt columns travel as decimal strings, as in every other result.
  const n = (v: number | undefined): string | null => (v === undefined ? null : String(v));
  const row = [
    st.path, manifest?.created_at ?? null, manifest?.server_version ?? null, n(manifest?.format), n(manifest?.tables), n(manifest?.users),
    n(manifest?.cold_rows), n(manifest?.hot_row_versions), n(manifest?.cold_segments), n(manifest?.files), n(manifest?.bytes), problem === null, problem,
  ];
  return rowsResult(ctx, SHOW_BACKUP_SCHEMA, [row]);
}
