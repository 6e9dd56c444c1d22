/**
 * BACKUP DATABASE TO 'dir' as a job (system.jobs, type `backup`, with progress): the backup is
 * written by storage/backup/backup-writer.ts, made consistent online by the DDL mutex and the flush
 * service's cold-tier freeze (decision 0021).
 */
import type { Catalog } from '../catalog/catalog.js';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import { BackupCancelledError, writeBackup } from '../storage/backup/backup-writer.js';
import type { Mutex } from '../util/mutex.js';
import type { Logger } from '../util/log.js';
import type { FlushService } from './flush-service.js';
import type { JobRow, JobStore } from './job-store.js';
import { JobProgress } from './job-progress.js';

export interface BackupDeps {
  readonly catalog: Catalog;
  readonly hot: HotStore;
  readonly cold: ColdStore;
  readonly flush: FlushService;
  readonly jobs: JobStore;
  readonly ddl: Mutex;
  readonly log: Logger;
  readonly dataDir: string;
  readonly nodeId: string;
  readonly jwtSecretConfigured: boolean;
}

/** Progress is written to the job row at most twice a second (each write is a synced catalog write). */

/** Starts the backup job; the returned row is `running`. */
export async function startBackup(d: BackupDeps, dir: string, requestedBy: string): Promise<JobRow> {
  const { job, signal } = await d.jobs.create({ job_type: 'backup', namespace_id: null, table_name: null, user_id: requestedBy, parameters: { backup_path: dir } });
  void runBackup(d, dir, job, signal);
  return job;
}

async function runBackup(d: BackupDeps, dir: string, job: JobRow, signal: AbortSignal): Promise<void> {
  const progress = new JobProgress(d.jobs, job.job_id);
  try {
    const result = await writeBackup({
      catalog: d.catalog, hot: d.hot, cold: d.cold, dataDir: d.dataDir, nodeId: d.nodeId, jwtSecretConfigured: d.jwtSecretConfigured,
      freezeCold: (fn) => d.flush.freezeCold(fn),
      withCatalogQuiet: (fn) => d.ddl.run(fn),
    }, dir, {
      marker: job.job_id, skipCatalogKey: `job:${job.job_id}`, signal,
      onProgress: (fraction, message) => progress.report(fraction, message),
    }).finally(() => progress.settled());
    await d.jobs.update(job.job_id, {
      status: 'completed', finished_at: Date.now(), progress: 1, progress_message: `Backup written to '${dir}'`,
      rows_processed: result.cold_rows + result.hot_row_versions, result: JSON.stringify(result),
    });
    d.log.info('backup completed', { job_id: job.job_id, ...result });
  } catch (error) {
    const cancelled = error instanceof BackupCancelledError;
    await d.jobs.update(job.job_id, {
      status: cancelled ? 'cancelled' : 'failed', finished_at: Date.now(),
      error_message: cancelled ? 'Cancelled by KILL JOB' : `Backup failed: ${(error as Error).message}`,
    }).catch(() => undefined);
    if (!cancelled) d.log.error('backup failed', { job_id: job.job_id, error: (error as Error)?.stack ?? String(error) });
  }
}
