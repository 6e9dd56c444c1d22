/**
 * EXPORT USER DATA as a job (system.jobs, type `user_export`): for every USER table, the caller's
 * partition exactly as their SELECT sees it (the hot mirror's live relation: newest version per key
 * across the hot and cold tiers, no tombstones) is copied chunk by chunk into a DuckDB instance of
 * its own, which writes it as zstd Parquet; the files and a JSON manifest are zipped into
 * `<data-dir>/exports/<account id>/<export id>.zip`. Also owns the archives' limits (one running
 * export per user, one export at a time per server, a size cap, N archives per user, an age) and
 * resolving an archive for the download route.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Catalog } from '../catalog/catalog.js';
import type { HotMirror } from '../storage/duck/hot-mirror.js';
import { DuckEngine, columnList, sqlIdent, sqlString, type DuckConfig } from '../storage/duck/duck-engine.js';
import { primaryKeyIndex, type TableDef } from '../catalog/types.js';
import type { Principal } from '../auth/access.js';
import type { Logger } from '../util/log.js';
import { Mutex } from '../util/mutex.js';
import { LimitError, ServerError, StartupError, execError } from '../util/errors.js';
import { protocolType } from '../sql/values.js';
import type { JobRow, JobStore } from './job-store.js';
import { writeArchive, type ArchiveEntry } from './export-archive.js';
import { failpoint } from '../util/failpoints.js';

export interface UserExportDeps {
  readonly config: Config;
  readonly catalog: Catalog;
  readonly mirror: HotMirror;
  /** The query engine, which holds the mirrors. */
  readonly duck: DuckEngine;
  readonly jobs: JobStore;
  readonly log: Logger;
  /** Written into each archive's manifest. */
  readonly serverVersion: string;
}

/** What a user_export job row's `parameters` hold. */
export interface UserExportParams {
  readonly user_id: string;
  readonly account_id: string;
  readonly export_id: string;
}

/** One table in the archive's manifest.json. */
interface ManifestTable {
  readonly namespace: string;
  readonly table: string;
  readonly file: string;
  readonly row_count: number;
  readonly columns: readonly { name: string; data_type: unknown; nullable: boolean; primary_key: boolean }[];
}

/** upstream's export ids: `export-<user>-<YYYYMMDD-HHMMSS>` (here with `-<n>` when one second holds two). */
const EXPORT_ID = /^export-[a-z0-9_][a-z0-9_.@-]{0,63}-\d{8}-\d{6}(?:-\d{1,4})?$/;
const WORK_DIR = '.work';
const SWEEP_MS = 600_000;
/** The export engine's budget: a table's rows wait there between the copy and the Parquet write (it spills past this). */
const EXPORT_ENGINE_MEMORY_LIMIT = '512MB';

class CancelledError extends Error {}

export class UserExportService {
  readonly dir: string;
  /** Account id → its running export's job id: one export per user at a time (upstream's idempotency key). */
  private readonly running = new Map<string, string>();
  private readonly runs = new Set<Promise<void>>();
  /** Exports run one at a time: each holds a mirror and a DuckDB instance while it copies. */
  private readonly serial = new Mutex();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: UserExportDeps) {
    this.dir = join(deps.config.dataDir, 'exports');
  }

  /** Removes what a crash left (work files, half archives), applies retention, and sweeps every 10 minutes. */
  async start(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (error) {
      throw new StartupError(`${this.dir} cannot hold user exports (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        'Move away whatever is at that path, or fix its permissions: the server keeps export archives there', { cause: error });
    }
    await rm(join(this.dir, WORK_DIR), { recursive: true, force: true });
    await this.sweep();
    this.timer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.deps.log.error('export sweep failed', { error: String(error) }));
    }, SWEEP_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    for (const id of this.running.values()) if (id !== '') this.deps.jobs.cancel(id);
    await Promise.allSettled([...this.runs]);
  }

  /** Starts an export of `principal`'s data; returns its job row (status running). */
  async begin(principal: Principal): Promise<JobRow> {
    const now = new Date();
    if (this.running.has(principal.id)) {
      // upstream's words: its idempotency key allows one queued or running export per user.
      throw execError(`Job with idempotency key 'user_export:${principal.userId}:${stamp(now).slice(0, 8)}' is already running or queued`);
    }
    const exportId = this.newExportId(principal, now);
    const params: UserExportParams = { user_id: principal.userId, account_id: principal.id, export_id: exportId };
    // Reserved before the job row's write, so two requests at once cannot both pass the check above.
    this.running.set(principal.id, '');
    let created: Awaited<ReturnType<JobStore['create']>>;
    try {
      created = await this.deps.jobs.create({
        job_type: 'user_export', namespace_id: null, table_name: null, user_id: principal.userId, parameters: params,
      });
    } catch (error) {
      this.running.delete(principal.id);
      throw error;
    }
    const { job, signal } = created;
    this.running.set(principal.id, job.job_id);
    const run = this.run(job, params, signal).finally(() => {
      this.running.delete(principal.id);
      this.runs.delete(run);
    });
    this.runs.add(run);
    return job;
  }

  /** The account's export jobs, newest first. */
  jobsOf(accountId: string): { job: JobRow; params: UserExportParams }[] {
    const out: { job: JobRow; params: UserExportParams }[] = [];
    for (const job of this.deps.jobs.list()) {
      if (job.job_type !== 'user_export' || job.parameters === null) continue;
      const params = JSON.parse(job.parameters) as UserExportParams;
      if (params.account_id === accountId) out.push({ job, params });
    }
    return out.sort((a, b) => b.job.created_at - a.job.created_at);
  }

  /** The archive's path, or null when the id is not an export id (the caller answers 400). */
  archivePath(accountId: string, exportId: string): string | null {
    if (!EXPORT_ID.test(exportId) || exportId.includes('..')) return null;
    return join(this.accountDir(accountId), `${exportId}.zip`);
  }

  private accountDir(accountId: string): string {
    // Account ids are validated partition ids (`@<digits>` or a user name), never `..` or a slash.
    if (accountId.includes('/') || accountId.includes('\\') || accountId.includes('..') || accountId.includes('\0') || accountId === '' || accountId.startsWith('.')) {
      throw new ServerError('INVALID_INPUT', 'Invalid export path');
    }
    return join(this.dir, accountId);
  }

  private newExportId(principal: Principal, now: Date): string {
    const base = `export-${principal.userId}-${stamp(now).slice(0, 8)}-${stamp(now).slice(8)}`;
    const taken = new Set(this.jobsOf(principal.id).map((j) => j.params.export_id));
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
    return id;
  }

  private async run(job: JobRow, params: UserExportParams, signal: AbortSignal): Promise<void> {
    const { jobs, log } = this.deps;
    const unlock = await this.serial.lock();
    const work = join(this.dir, WORK_DIR, job.job_id);
    try {
      if (signal.aborted) throw new CancelledError();
      await mkdir(work, { recursive: true });
      const accountDir = this.accountDir(params.account_id);
      await mkdir(accountDir, { recursive: true });
      const { tables, files, rows, bytes } = await this.writeTables(params.account_id, work, signal);
      failpoint('export:after-parquet');
      if (signal.aborted) throw new CancelledError();
      const createdAt = new Date();
      const manifest = {
        format: 'kalamdb-user-export', format_version: 1, server_version: this.deps.serverVersion,
        export_id: params.export_id, job_id: job.job_id, user: params.user_id, account_id: params.account_id,
        created_at: createdAt.toISOString(), tables,
      };
      const entries: ArchiveEntry[] = [
        { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8') },
        ...files.map((f) => ({ name: f.name, file: f.path })),
      ];
      const zipName = `${params.export_id}.zip`;
      const zipBytes = await writeArchive(join(accountDir, zipName), entries, createdAt);
      const message = `Exported ${files.length} Parquet files (${zipBytes} bytes) to ${zipName}`;
      await jobs.update(job.job_id, {
        status: 'completed', finished_at: Date.now(), rows_processed: rows,
        result: JSON.stringify({ message, export_id: params.export_id, tables: tables.length, parquet_bytes: bytes, zip_bytes: zipBytes }),
      });
      log.info('user export completed', { job_id: job.job_id, user: params.user_id, tables: tables.length, rows, zip_bytes: zipBytes });
      await this.retain(accountDir);
    } catch (error) {
      const cancelled = error instanceof CancelledError;
      if (!cancelled && !(error instanceof ServerError)) log.error('user export failed', { job_id: job.job_id, error: (error as Error)?.stack ?? String(error) });
      await jobs.update(job.job_id, {
        status: cancelled ? 'cancelled' : 'failed', finished_at: Date.now(),
        error_message: cancelled ? 'Cancelled by KILL JOB' : (error as Error).message,
      }).catch((e: unknown) => log.error('user export: job row not updated', { job_id: job.job_id, error: String(e) }));
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => undefined);
      unlock();
    }
  }

  /**
   * One Parquet file per USER table in which the account has rows. SHARED tables are not exported
   * (upstream exports USER tables only: a SHARED table's rows belong to no one user), nor STREAM
   * tables (ephemeral events, not stored data).
   */
  private async writeTables(accountId: string, work: string, signal: AbortSignal): Promise<{
    tables: ManifestTable[]; files: { name: string; path: string }[]; rows: number; bytes: number;
  }> {
    const { catalog, config } = this.deps;
    const userTables = catalog.tablesIn(null).filter((t) => t.type === 'USER')
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const tables: ManifestTable[] = [];
    const files: { name: string; path: string }[] = [];
    let rows = 0;
    let bytes = 0;
    const engine = await DuckEngine.open(exportEngineConfig(config, this.dir));
    try {
      for (const table of userTables) {
        if (signal.aborted) throw new CancelledError();
        // Read at its current schema (ALTER TABLE may have run since the list was taken); dropped
        // while the export ran: nothing of it goes into the archive.
        const current = catalog.tableById(table.id);
        if (current === undefined) continue;
        const path = join(work, `${table.namespace}.${table.name}.parquet`);
        const count = await this.writeTable(engine, current, accountId, path);
        if (count === 0) continue;
        bytes += (await stat(path)).size;
        if (bytes > config.exportBytesMax) {
          throw new LimitError('PAYLOAD_TOO_LARGE', 'export_bytes_max', `Export is larger than ${config.exportBytesMax} bytes (export_bytes_max)`);
        }
        const name = `${table.namespace}/${table.name}.parquet`;
        files.push({ name, path });
        rows += count;
        tables.push({
          namespace: table.namespace, table: table.name, file: name, row_count: count,
          columns: table.columns.map((c) => ({ name: c.name, data_type: protocolType(c), nullable: c.nullable, primary_key: c.primaryKey })),
        });
      }
    } finally {
      engine.close();
    }
    return { tables, files, rows, bytes };
  }

  /**
   * Copies the partition's live rows (the mirror, held so no sync lands half-way) into the export
   * engine and writes them as Parquet; returns the row count (0: no file written).
   */
  private async writeTable(engine: DuckEngine, table: TableDef, accountId: string, path: string): Promise<number> {
    const columns = table.columns.map((c) => ({ name: c.name, type: c.type, precision: c.precision, scale: c.scale }));
    const names = table.columns.map((c) => sqlIdent(c.name)).join(', ');
    const pk = sqlIdent(table.columns[primaryKeyIndex(table)]!.name);
    return engine.withConnection(async (conn) => {
      await conn.run(`CREATE OR REPLACE TABLE memory.main.export_rows (${columnList(columns)})`);
      try {
        const lease = await this.deps.mirror.acquire(table, accountId, true);
        let count: number;
        try {
          count = await this.deps.duck.copyInto(`SELECT ${names} FROM ${lease.liveName} ORDER BY ${pk}`, conn, 'export_rows', 'memory');
        } finally {
          lease.release();
        }
        if (count > 0) {
          await conn.run(`COPY memory.main.export_rows TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd)`);
        }
        return count;
      } finally {
        await conn.run('DROP TABLE IF EXISTS memory.main.export_rows');
      }
    });
  }

  /** Keeps the account's newest `exports_per_user_max` archives. */
  private async retain(accountDir: string): Promise<void> {
    const archives = await listArchives(accountDir);
    for (const old of archives.slice(this.deps.config.exportsPerUserMax)) await rm(old.path, { force: true });
  }

  /**
   * Deletes archives past their age or past the per-user count, leftover `.tmp` files, and every
   * archive of an account that was dropped (or purged).
   */
  async sweep(): Promise<void> {
    const { catalog, config } = this.deps;
    const cutoff = Date.now() - config.exportRetentionHours * 3_600_000;
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch {
      return;
    }
    for (const accountId of entries) {
      if (accountId === WORK_DIR) continue;
      const accountDir = join(this.dir, accountId);
      const account = catalog.account(accountId);
      if (account === undefined || account.deletedAt !== null) {
        if (!this.running.has(accountId)) await rm(accountDir, { recursive: true, force: true });
        continue;
      }
      if (this.running.has(accountId)) continue;
      const archives = await listArchives(accountDir);
      for (const [i, a] of archives.entries()) {
        if (i >= config.exportsPerUserMax || a.mtimeMs < cutoff) await rm(a.path, { force: true });
      }
      for (const name of await readdir(accountDir).catch(() => [] as string[])) {
        if (name.endsWith('.tmp')) await rm(join(accountDir, name), { force: true });
      }
    }
  }
}

/** The account's archives, newest first. */
async function listArchives(accountDir: string): Promise<{ path: string; mtimeMs: number }[]> {
  const names = await readdir(accountDir).catch(() => [] as string[]);
  const out: { path: string; mtimeMs: number }[] = [];
  for (const name of names) {
    if (!name.endsWith('.zip')) continue;
    const path = join(accountDir, name);
    const s = await stat(path).catch(() => null);
    if (s !== null) out.push({ path, mtimeMs: s.mtimeMs });
  }
  return out.sort((a, b) => b.mtimeMs - a.mtimeMs);
}

/** A DuckDB instance that may write only under the exports directory (and spills there). */
export function exportEngineConfig(config: Config, exportsDir: string): DuckConfig {
  return {
    threads: 1, memoryLimit: EXPORT_ENGINE_MEMORY_LIMIT, connections: 1, queryTimeoutMs: config.queryTimeoutMs,
    storageDirs: [exportsDir], resultRowsMax: Number.MAX_SAFE_INTEGER, resultBytesMax: Number.MAX_SAFE_INTEGER,
    setup: [`SET temp_directory = ${sqlString(join(exportsDir, WORK_DIR, 'spill'))}`],
  };
}

/** `YYYYMMDDHHMMSS` in UTC. */
function stamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
