/**
 * system.jobs: one row per flush, compaction, repair or cleanup, persisted in the catalog keyspace so that
 * a job left `running` by a crash is found (and marked failed) at the next start. Rows older than
 * the retention are pruned.
 */
import type { CatalogStore } from '../catalog/catalog.js';
import type { SnowflakeGenerator } from '../util/snowflake.js';

export type JobType = 'flush' | 'compaction' | 'repair' | 'cleanup' | 'stream_eviction' | 'topic_retention' | 'backup' | 'restore' | 'user_export';
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** What became of an interrupted job's work, as its error message says after the restart. */
const AFTER_RESTART: Record<JobType, string> = {
  flush: 'what it had written was completed or removed at start-up (no row lost or written twice); the rows it did not flush are flushed later',
  compaction: 'what it had written was removed at start-up; the segments it was merging are unchanged',
  repair: 'run STORAGE REPAIR TABLE again',
  cleanup: 'the next cleanup does its work',
  stream_eviction: 'the next eviction does its work',
  topic_retention: 'the next retention pass does its work',
  backup: 'the backup it was writing is unfinished (its directory says so): run BACKUP DATABASE again',
  restore: 'a restore staged before the stop is applied at start-up; otherwise run RESTORE DATABASE again',
  user_export: 'request the export again',
};

export interface JobRow {
  readonly job_id: string;
  readonly job_type: JobType;
  readonly status: JobStatus;
  readonly namespace_id: string | null;
  readonly table_name: string | null;
  readonly user_id: string | null;
  readonly parameters: string | null;
  readonly result: string | null;
  readonly error_message: string | null;
  readonly rows_processed: number;
  readonly created_at: number;
  readonly started_at: number | null;
  readonly finished_at: number | null;
  readonly node_id: string;
  /**
   * How far a long job is, 0 to 1, and what it is doing (flush, compaction, repair, backup and
   * restore report them; absent in rows of other jobs and in rows written before the field existed).
   */
  readonly progress?: number;
  readonly progress_message?: string;
}

/** What a new job row is given: the rest is filled in (id, status, times, node). */
type JobFields = Pick<JobRow, 'job_type' | 'namespace_id' | 'table_name' | 'user_id'> & { readonly parameters?: unknown };

const JOB_PREFIX = 'job:';
const JOB_ID_PREFIX: Partial<Record<JobType, string>> = { flush: 'FL', compaction: 'CO', repair: 'RP', user_export: 'UE' };
const STREAM_EVICTION_RETENTION_MS = 3_600_000;

export class JobStore {
  private readonly jobs = new Map<string, JobRow>();
  private readonly cancels = new Map<string, AbortController>();
  /** Per job, the last write queued (updates of one job are applied in order). */
  private readonly writes = new Map<string, Promise<void>>();

  /** Keys of job entries left out at load: JSON, but not a job row (a damaged or hand-edited entry). */
  readonly malformed: string[] = [];

  constructor(private readonly store: CatalogStore, private readonly seqs: SnowflakeGenerator, private readonly nodeId: string) {}

  /** Loads persisted jobs and fails those a crash left unfinished; returns them. */
  async load(meta: ReadonlyMap<string, unknown>): Promise<JobRow[]> {
    const interrupted: JobRow[] = [];
    for (const [key, value] of meta) {
      if (!key.startsWith(JOB_PREFIX)) continue;
      // Left out like an entry that is not JSON: one bad row must not make every read of system.jobs a 500.
      if (!isJobRow(value)) {
        this.malformed.push(key);
        continue;
      }
      const job = value;
      this.jobs.set(job.job_id, job);
      if (job.status === 'running' || job.status === 'queued') interrupted.push(job);
    }
    for (const job of interrupted) {
      await this.update(job.job_id, { status: 'failed', error_message: `Interrupted by a server restart; ${AFTER_RESTART[job.job_type]}`, finished_at: Date.now() });
    }
    return interrupted;
  }

  async create(fields: JobFields): Promise<{ job: JobRow; signal: AbortSignal }> {
    const job = this.newRow(fields);
    await this.persist(job);
    const controller = new AbortController();
    this.cancels.set(job.job_id, controller);
    return { job, signal: controller.signal };
  }

  /** A job that already ran (a sweep's work, done before there was anything to record): one write. */
  async recordCompleted(fields: JobFields, rows: number, result: unknown): Promise<JobRow> {
    const job: JobRow = { ...this.newRow(fields), status: 'completed', rows_processed: rows, result: JSON.stringify(result), finished_at: Date.now() };
    await this.persist(job);
    return job;
  }

  private newRow(fields: JobFields): JobRow {
    const now = Date.now();
    return {
      job_id: `${JOB_ID_PREFIX[fields.job_type] ?? 'JB'}-${this.seqs.next()}`,
      job_type: fields.job_type, status: 'running', namespace_id: fields.namespace_id, table_name: fields.table_name,
      user_id: fields.user_id, parameters: fields.parameters === undefined ? null : JSON.stringify(fields.parameters),
      result: null, error_message: null, rows_processed: 0, created_at: now, started_at: now, finished_at: null, node_id: this.nodeId,
    };
  }

  /**
   * Applies `patch` to the job's row. Updates of one job are applied one after another, each to the
   * row the previous one wrote: a progress report in flight cannot overwrite a later update with the
   * row it started from.
   */
  update(jobId: string, patch: Partial<JobRow>): Promise<JobRow> {
    return this.serialized(jobId, () => this.apply(jobId, patch));
  }

  /** A running job's progress (0-1) and what it is doing; nothing once the job has finished. */
  reportProgress(jobId: string, progress: number, message: string): Promise<JobRow | undefined> {
    return this.serialized(jobId, async () => {
      if (this.jobs.get(jobId)?.status !== 'running') return undefined;
      return this.apply(jobId, { progress, progress_message: message });
    });
  }

  private async apply(jobId: string, patch: Partial<JobRow>): Promise<JobRow> {
    const before = this.jobs.get(jobId)!;
    const job = { ...before, ...patch };
    await this.persist(job);
    if (job.status !== 'running' && job.status !== 'queued') {
      this.cancels.delete(jobId);
      if (before.status === 'running' || before.status === 'queued') this.onFinished?.(job);
    }
    return job;
  }

  private serialized<T>(jobId: string, run: () => Promise<T>): Promise<T> {
    const result = (this.writes.get(jobId) ?? Promise.resolve()).then(run);
    const tail = result.then(() => undefined, () => undefined);
    this.writes.set(jobId, tail);
    void tail.then(() => {
      if (this.writes.get(jobId) === tail) this.writes.delete(jobId);
    });
    return result;
  }

  /** Called once per job as it finishes (completed, failed or cancelled): the /metrics counters. */
  onFinished: ((job: JobRow) => void) | null = null;

  get(jobId: string): JobRow | undefined {
    return this.jobs.get(jobId);
  }

  list(): JobRow[] {
    return [...this.jobs.values()].sort((a, b) => a.created_at - b.created_at);
  }

  /** Asks a running job to stop; false when it is not running. */
  cancel(jobId: string): boolean {
    const controller = this.cancels.get(jobId);
    if (controller === undefined) return false;
    controller.abort();
    return true;
  }

  /**
   * Removes finished rows older than the retention. Stream eviction writes a row per sweep that
   * evicted something, so those rows are kept for an hour at most.
   */
  async prune(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    const sweepCutoff = Date.now() - Math.min(olderThanMs, STREAM_EVICTION_RETENTION_MS);
    const old = [...this.jobs.values()].filter((j) => j.finished_at !== null
      && j.finished_at < (j.job_type === 'stream_eviction' || j.job_type === 'topic_retention' ? sweepCutoff : cutoff));
    if (old.length === 0) return 0;
    await this.store.writeCatalog(new Map(old.map((j) => [`${JOB_PREFIX}${j.job_id}`, undefined])));
    for (const j of old) this.jobs.delete(j.job_id);
    return old.length;
  }

  private async persist(job: JobRow): Promise<void> {
    await this.store.writeCatalog(new Map([[`${JOB_PREFIX}${job.job_id}`, job]]));
    this.jobs.set(job.job_id, job);
  }
}

const JOB_TYPES: ReadonlySet<string> = new Set(Object.keys(AFTER_RESTART));
const JOB_STATUSES: ReadonlySet<string> = new Set(['queued', 'running', 'completed', 'failed', 'cancelled']);

/** Whether a stored value has every field of a job row, each of its type. */
function isJobRow(value: unknown): value is JobRow {
  if (typeof value !== 'object' || value === null) return false;
  const j = value as Record<string, unknown>;
  const text = (v: unknown): boolean => typeof v === 'string';
  const textOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
  const time = (v: unknown): boolean => Number.isSafeInteger(v);
  return text(j.job_id) && JOB_TYPES.has(j.job_type as string) && JOB_STATUSES.has(j.status as string)
    && textOrNull(j.namespace_id) && textOrNull(j.table_name) && textOrNull(j.user_id) && textOrNull(j.parameters)
    && textOrNull(j.result) && textOrNull(j.error_message) && Number.isSafeInteger(j.rows_processed) && time(j.created_at)
    && (j.started_at === null || time(j.started_at)) && (j.finished_at === null || time(j.finished_at)) && text(j.node_id)
    && (j.progress === undefined || typeof j.progress === 'number') && (j.progress_message === undefined || text(j.progress_message));
}
