/**
 * The cleanup job that purges dropped accounts. DROP USER only marks an account deleted; once its
 * grace period (`user_purge_grace_seconds`) has passed, a `cleanup` job removes, for every USER and
 * STREAM table, the account's hot keys (row versions, primary-key index, cold markers), its Parquet
 * segments and manifest directory and its stream buffer, and then the account record itself.
 *
 * Crash safety: every step is idempotent and the record goes last, so a purge killed part-way is
 * still pending and simply runs again, at start-up and at every check (once a minute, and sooner
 * when a DROP USER makes a purge due before the next check). A failed purge is retried a minute later.
 */
import type { Logger } from '../util/log.js';
import type { Mutex } from '../util/mutex.js';
import type { Catalog } from '../catalog/catalog.js';
import type { TableDef, UserDef } from '../catalog/types.js';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { Committer } from '../storage/hot/committer.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import type { StreamStore } from '../storage/stream/stream-store.js';
import { CancelledError, type FlushService } from './flush-service.js';
import type { JobRow, JobStore } from './job-store.js';
import { failpoint } from '../util/failpoints.js';

/** Time between checks for due purges (and before a failed purge is tried again). */
export const USER_PURGE_CHECK_MS = 60_000;

export interface UserPurgeDeps {
  readonly catalog: Catalog;
  readonly hot: HotStore;
  readonly cold: ColdStore;
  readonly committer: Committer;
  readonly streams: StreamStore;
  readonly flush: FlushService;
  readonly jobs: JobStore;
  /** The executor's DDL mutex: catalog changes are serialized by it, and DROP TABLE cannot interleave. */
  readonly ddl: Mutex;
  readonly log: Logger;
  readonly graceSeconds: number;
}

/** What one purge removed; the cleanup job's `result`. */
interface PurgeTotals {
  tables: number;
  hot_versions: number;
  cold_segments: number;
  cold_rows: number;
  cold_bytes: number;
  stream_events: number;
}

export class UserPurgeService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private rerun = false;
  private stopping = false;
  /** Accounts whose last purge failed, and when to try again, so a lasting error does not spin. */
  private readonly retryAt = new Map<string, number>();

  constructor(private readonly d: UserPurgeDeps) {}

  /** Checks at once (a purge a crash interrupted is due already), then on schedule. */
  start(): void {
    this.arm(0);
  }

  /** After DROP USER: the new purge may be due before the next scheduled check. */
  wake(): void {
    if (!this.stopping) this.arm(this.delayToNextDueMs());
  }

  /** Stops scheduling and waits for a purge in progress to stop at its next table. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Purges every account whose grace period has passed, one after the other. */
  runDue(): Promise<void> {
    if (this.running !== null) {
      this.rerun = true;
      return this.running;
    }
    // `.finally` runs asynchronously, so `running` is always set before it is cleared.
    this.running = this.runDueLoop().finally(() => {
      this.running = null;
      if (!this.stopping) this.arm(this.delayToNextDueMs());
    });
    return this.running;
  }

  private async runDueLoop(): Promise<void> {
    do {
      this.rerun = false;
      for (const user of this.due(Date.now())) {
        if (this.stopping) return;
        await this.purge(user);
      }
    } while (this.rerun && !this.stopping);
  }

  private due(nowMs: number): UserDef[] {
    return this.d.catalog.deletedUsers()
      .filter((u) => this.dueAtMs(u) <= nowMs)
      .sort((a, b) => a.deletedAt! - b.deletedAt!);
  }

  private dueAtMs(user: UserDef): number {
    return Math.max(user.deletedAt! + this.d.graceSeconds * 1000, this.retryAt.get(user.id) ?? 0);
  }

  private delayToNextDueMs(): number {
    const now = Date.now();
    let delay = USER_PURGE_CHECK_MS;
    for (const user of this.d.catalog.deletedUsers()) delay = Math.min(delay, Math.max(0, this.dueAtMs(user) - now));
    return delay;
  }

  private arm(delayMs: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.runDue().catch((error: unknown) => this.d.log.error('user purge check failed', { error: (error as Error).stack ?? String(error) }));
    }, delayMs);
    this.timer.unref();
  }

  // One purge --------------------------------------------------------------------------------

  private async purge(user: UserDef): Promise<void> {
    // Set before anything can fail (even recording the job): a failing purge waits instead of spinning.
    this.retryAt.set(user.id, Date.now() + USER_PURGE_CHECK_MS);
    const started = performance.now();
    const { job, signal } = await this.d.jobs.create({
      job_type: 'cleanup', namespace_id: null, table_name: null, user_id: user.userId,
      parameters: { account_id: user.id, deleted_at: new Date(user.deletedAt!).toISOString(), grace_seconds: this.d.graceSeconds },
    });
    try {
      const totals = await this.purgePartitions(user.id, signal, job);
      failpoint('purge:before-record');
      await this.d.ddl.run(() => this.d.catalog.removeUser(user.id));
      this.retryAt.delete(user.id);
      const durationMs = Math.round(performance.now() - started);
      await this.d.jobs.update(job.job_id, {
        status: 'completed', rows_processed: rowsOf(totals), finished_at: Date.now(),
        result: JSON.stringify({ account_id: user.id, ...totals, duration_ms: durationMs }),
      });
      this.d.log.info('dropped user purged', { job_id: job.job_id, user: user.userId, account_id: user.id, ...totals, ms: durationMs });
    } catch (error) {
      const cancelled = error instanceof CancelledError;
      this.retryAt.set(user.id, Date.now() + USER_PURGE_CHECK_MS);
      await this.d.jobs.update(job.job_id, {
        status: cancelled ? 'cancelled' : 'failed', finished_at: Date.now(),
        error_message: cancelled ? 'Cancelled; the purge runs again at a later check' : (error as Error).message,
      }).catch(() => undefined);
      if (!cancelled) this.d.log.error('user purge failed', { job_id: job.job_id, account_id: user.id, error: (error as Error).stack ?? String(error) });
    }
  }

  /** Every USER and STREAM table, one at a time under the DDL mutex; progress is recorded per table. */
  private async purgePartitions(accountId: string, signal: AbortSignal, job: JobRow): Promise<PurgeTotals> {
    const totals: PurgeTotals = { tables: 0, hot_versions: 0, cold_segments: 0, cold_rows: 0, cold_bytes: 0, stream_events: 0 };
    for (const table of this.d.catalog.tablesIn(null)) {
      if (table.type === 'SHARED') continue;
      if (signal.aborted || this.stopping) throw new CancelledError();
      await this.d.ddl.run(() => this.purgePartitionsOf(table, accountId, totals));
      await this.d.jobs.update(job.job_id, { rows_processed: rowsOf(totals) });
    }
    return totals;
  }

  private async purgePartitionsOf(listed: TableDef, accountId: string, totals: PurgeTotals): Promise<void> {
    const table = this.d.catalog.table(listed.namespace, listed.name);
    // Dropped while the purge waited for the mutex: DROP TABLE removed every partition already.
    if (table === undefined || table.id !== listed.id) return;
    totals.tables++;
    if (table.type === 'STREAM') {
      totals.stream_events += this.d.streams.dropPartition(table.id, accountId);
      return;
    }
    await this.d.flush.dropPartition(table, accountId, async () => {
      // Commits already queued for the partition land before the range delete, not after it.
      await this.d.committer.idle();
      totals.hot_versions += await this.d.hot.dropPartitionRows(table.id, accountId);
      failpoint('purge:after-hot');
      const cold = this.d.cold.removePartition(table, accountId);
      totals.cold_segments += cold.segments;
      totals.cold_rows += cold.rows;
      totals.cold_bytes += cold.bytes;
    });
  }
}

function rowsOf(t: PurgeTotals): number {
  return t.hot_versions + t.cold_rows + t.stream_events;
}
