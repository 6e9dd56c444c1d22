/**
 * STORAGE FLUSH / FLUSH TABLE / STORAGE FLUSH ALL / STORAGE COMPACT TABLE / STORAGE CHECK TABLE /
 * STORAGE REPAIR TABLE / KILL JOB (admins only).
 */
import { unstageRestore } from '../storage/backup/restore.js';
import { ServerError, TableUnavailableError, execError } from '../util/errors.js';
import { qualifiedName, type TableDef } from '../catalog/types.js';
import { requireAdmin } from '../auth/access.js';
import type { Statement } from '../sql/statement.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult } from './context.js';
import { resolveTable } from './ddl-exec.js';
import type { SchemaField } from './duck-cells.js';
import { checkPartition } from '../storage/cold/table-check.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

/** `statement` names the command in upstream's words: `STORAGE FLUSH TABLE is not supported for STREAM tables`. */
function flushable(table: TableDef, statement: string): void {
  if (table.type === 'STREAM') {
    throw execError(`${statement} is not supported for STREAM tables`);
  }
}

export async function flushTable(s: Services, ctx: RunContext, st: Of<'flush_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE FLUSH');
  const table = resolveTable(s, ctx, st.table);
  flushable(table, 'STORAGE FLUSH TABLE');
  const job = await s.flush.flushTable(table);
  if (job === null) return messageResult(ctx, `Storage flush skipped: no pending writes for table '${qualifiedName(table)}'`);
  return messageResult(ctx, `Storage flush started for table '${qualifiedName(table)}'. Job ID: ${job.job_id}`);
}

/** The tables of a STORAGE ... ALL statement (every namespace, or one that must exist): all but STREAM tables. */
function persistedTables(s: Services, namespace: string | null): { tables: TableDef[]; scope: string } {
  if (namespace !== null && !s.catalog.namespace(namespace)) throw execError(`Namespace '${namespace}' does not exist`);
  const tables = s.catalog.tablesIn(namespace).filter((t) => t.type !== 'STREAM');
  return { tables, scope: namespace === null ? 'all namespaces' : `namespace '${namespace}'` };
}

export async function flushAll(s: Services, ctx: RunContext, st: Of<'flush_all'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE FLUSH ALL');
  const { tables, scope } = persistedTables(s, st.namespace);
  const started: string[] = [];
  for (const table of tables) {
    const job = await s.flush.flushTable(table);
    if (job !== null) started.push(job.job_id);
  }
  if (started.length === 0) return messageResult(ctx, `Storage flush skipped: no pending writes in ${scope}`);
  return messageResult(ctx, `Storage flush started for ${started.length} table(s) in ${scope}. Job IDs: [${started.join(', ')}]`);
}

export async function compactTable(s: Services, ctx: RunContext, st: Of<'compact_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE COMPACT');
  const table = resolveTable(s, ctx, st.table);
  flushable(table, 'STORAGE COMPACT TABLE');
  const job = await s.flush.compactTable(table);
  return messageResult(ctx, `Storage compaction started for table '${qualifiedName(table)}'. Job ID: ${job.job_id}`);
}

/** STORAGE COMPACT ALL [IN ns]: one compaction job per USER/SHARED table (upstream's message). */
export async function compactAll(s: Services, ctx: RunContext, st: Of<'compact_all'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE COMPACT ALL');
  const { tables, scope } = persistedTables(s, st.namespace);
  const started: string[] = [];
  for (const table of tables) started.push((await s.flush.compactTable(table)).job_id);
  if (started.length === 0) throw execError(`No compactable tables found in ${st.namespace === null ? 'any namespace' : `namespace ${st.namespace}`} (STREAM tables are never compacted)`);
  return messageResult(ctx, `Storage compaction started for ${started.length} table(s) in ${scope}. Job IDs: [${started.join(', ')}]`);
}

/**
 * STORAGE CHECK TABLE: runs in the request (it only reads) and answers one row per file. A damaged
 * file it finds makes its partition unavailable, as a failed read would.
 */
export async function checkTable(s: Services, ctx: RunContext, st: Of<'check_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE CHECK');
  const table = resolveTable(s, ctx, st.table);
  flushable(table, 'STORAGE CHECK TABLE');
  const schema: SchemaField[] = [
    { name: 'partition', data_type: 'Text', index: 0 },
    { name: 'file', data_type: 'Text', index: 1 },
    { name: 'status', data_type: 'Text', index: 2 },
    { name: 'detail', data_type: 'Text', index: 3 },
  ];
  const rows: unknown[][] = [];
  // With the partitions the hot tier says were flushed: one whose directory is gone is reported too.
  for (const partition of s.flush.partitionsOf(table)) {
    // USER partitions are shown by user name, as in system.manifest; SHARED tables have one, null.
    const shown = partition === '' ? null : s.catalog.account(partition)?.userId ?? partition;
    try {
      // A remote table's segments are checked as downloaded (size and SHA-256 against the manifest).
      await s.cold.fetchSegments(table, partition);
    } catch (error) {
      if (!(error instanceof ServerError)) throw error;
      rows.push([shown, 'remote', error instanceof TableUnavailableError ? 'damaged' : 'unreachable', error.message]);
      continue;
    }
    const flushed = async (): Promise<boolean> => s.hot.flushedSeq(table.id, partition) > 0n && s.hot.hasLiveColdRows(table, partition);
    for (const r of await checkPartition(s.cold, table, partition, flushed)) rows.push([shown, r.file, r.status, r.detail]);
  }
  return rowsResult(ctx, schema, rows);
}

/** STORAGE REPAIR TABLE: a job (system.jobs, type `repair`) rebuilding every partition's manifest. */
export async function repairTable(s: Services, ctx: RunContext, st: Of<'repair_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE REPAIR');
  const table = resolveTable(s, ctx, st.table);
  flushable(table, 'STORAGE REPAIR TABLE');
  const job = await s.flush.repairTable(table);
  return messageResult(ctx, `Storage repair started for table '${qualifiedName(table)}'. Job ID: ${job.job_id}`);
}

export async function killJob(s: Services, ctx: RunContext, st: Of<'kill_job'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'KILL JOB');
  const job = s.jobs.get(st.jobId);
  if (job === undefined) throw execError(`Job '${st.jobId}' does not exist`);
  // A completed restore job has staged a backup for the next start: killing it removes the staged
  // copy, so nothing is restored (otherwise a restore outlives the account that asked for it, and
  // everything done after it would be rolled back at the next start).
  if (job.job_type === 'restore' && job.status === 'completed' && isNewestRestore(s, job.job_id) && await unstageRestore(s.config.dataDir)) {
    await s.jobs.update(job.job_id, { status: 'cancelled', progress_message: `Cancelled by ${ctx.caller.userId}: the staged restore was removed and will not be applied` });
    s.log.warn('staged restore removed', { job_id: job.job_id, by: ctx.caller.userId });
    return messageResult(ctx, `Job '${st.jobId}': the staged restore was removed; it will not be applied at the next start`);
  }
  if (!s.jobs.cancel(st.jobId)) throw execError(`Job '${st.jobId}' is not running (status: ${job.status})`);
  return messageResult(ctx, `Job '${st.jobId}' cancellation requested`);
}

/** Whether `jobId` is the restore job that staged what waits in the data dir (the newest one staged). */
function isNewestRestore(s: Services, jobId: string): boolean {
  // list() is oldest first.
  return s.jobs.list().filter((j) => j.job_type === 'restore' && j.status === 'completed').at(-1)?.job_id === jobId;
}
