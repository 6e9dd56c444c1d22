/**
 * DuckDB instances. The server runs two: the query engine, where user SQL runs over relations
 * holding exactly the rows each statement may see, with no file access at all (not even to the
 * cold tier) and its configuration locked; and the file engine, which reads and writes the cold
 * tier's Parquet segments for flushes, compaction, point lookups and for loading segments into
 * the query engine, and never runs SQL a user wrote. So even SQL that slipped past the bind
 * layer's checks could not list, read or overwrite a file.
 */
import {
  DuckDBConnection, DuckDBDateValue, DuckDBDecimalValue, DuckDBInstance, DuckDBTimeValue, DuckDBTimestampValue,
  type DuckDBAppender, type DuckDBValue,
} from '@duckdb/node-api';
import { assert, execError, ServerError } from '../../util/errors.js';
import { ByteBudget, type Budgets } from '../../util/budget.js';
import type { ColumnDef, ColumnType, StoredValue } from '../../catalog/types.js';
import { mergedRelationSql } from './merged-relation.js';
import { readRowsBounded } from './result-reader.js';
import { RunningQueries } from './running-queries.js';

export interface DuckConfig {
  readonly threads: number;
  readonly memoryLimit: string;
  readonly connections: number;
  readonly queryTimeoutMs: number;
  /** Rows one query may return (config.resultRowsMax). */
  readonly resultRowsMax: number;
  /** Bytes of results, when the caller runs outside a request's budgets (config.resultBytesMax). */
  readonly resultBytesMax: number;
  /**
   * The file engine: the cold tier's directories, the only places it may read or write (more are
   * added by `allowDirectories`). The query engine: null (no file access at all).
   */
  readonly storageDirs: readonly string[] | null;
  /** Statements run once at start-up, before the configuration is locked (the query engine's macros). */
  readonly setup?: readonly string[];
}


/** A relation a query reads: columns and rows already resolved to "newest version, visible". */
export interface TempSource {
  readonly name: string;
  readonly columns: readonly SourceColumn[];
  readonly rows: readonly (readonly StoredValue[])[];
  /** Hot rows to merge with a partition's cold rows (a relation in this engine; the rows include tombstones then). */
  readonly merge?: { readonly coldRelation: string | null; readonly pk: string; readonly liveOnly: boolean };
}

export interface SourceColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly precision?: number;
  readonly scale?: number;
}

export interface DuckResult {
  readonly columnNames: string[];
  /** DuckDB's type text, or its alias (JSON) when it has one. */
  readonly columnTypes: string[];
  readonly typeIds: number[];
  readonly rows: DuckDBValue[][];
}

export class DuckEngine {
  private readonly idle: DuckDBConnection[] = [];
  /** Callers waiting for a connection, with whose query it is (null: the server's own work). */
  private readonly waiters: { readonly owner: string | null; readonly resolve: (c: DuckDBConnection) => void }[] = [];
  /** Connections each account's queries hold now. */
  private readonly held = new Map<string, number>();
  private tempCounter = 0;
  /** User queries running now: their timers and the memory guard stop them through this. */
  readonly running = new RunningQueries();

  private instance!: DuckDBInstance;
  private allowed: string[];
  /** allowDirectories calls, one at a time. */
  private reopening: Promise<void> = Promise.resolve();

  private constructor(private readonly config: DuckConfig) {
    this.allowed = (config.storageDirs ?? []).map(withSlash);
  }

  static async open(config: DuckConfig): Promise<DuckEngine> {
    const engine = new DuckEngine(config);
    await engine.start();
    return engine;
  }

  /**
   * The file engine: lets it reach more directories (a filesystem storage created at run time).
   * DuckDB fixes allowed_directories once external access is off, so the instance is reopened with
   * the longer list: every connection is taken first (running work finishes, later work waits), the
   * old instance closed, a new one opened. Nothing of the file engine outlives a call (temp tables
   * are dropped by their users), so nothing is lost but the Parquet footer cache.
   */
  async allowDirectories(dirs: readonly string[]): Promise<void> {
    assert(this.config.storageDirs !== null, 'only the file engine reads files');
    const run = this.reopening.then(async () => {
      const missing = dirs.map(withSlash).filter((d) => !this.allowed.some((a) => d.startsWith(a)));
      if (missing.length === 0) return;
      const held: DuckDBConnection[] = [];
      for (let i = 0; i < this.config.connections; i++) held.push(await this.acquire());
      for (const c of held) c.closeSync();
      this.instance.closeSync();
      this.allowed = [...this.allowed, ...missing];
      await this.start();
    });
    this.reopening = run.catch(() => undefined);
    return run;
  }

  private async start(): Promise<void> {
    const config = this.config;
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(config.threads),
      memory_limit: config.memoryLimit,
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      // Freed memory goes back to the OS within a second or two instead of staying resident until the
      // allocator is next busy: the memory guard reads RSS, and a bomb's leftovers would otherwise
      // keep it over the bound and stop the queries after it too.
      allocator_background_threads: 'true',
    });
    const conns: DuckDBConnection[] = [];
    for (let i = 0; i < config.connections; i++) conns.push(await instance.connect());
    const conn = conns[0]!;
    if (config.storageDirs !== null) {
      // Instance-wide: files only under the storage dirs, and no statement can change that.
      await conn.run(`SET allowed_directories = [${this.allowed.map(sqlString).join(', ')}]`);
      // Segments are immutable: their footers can be cached across queries.
      await conn.run('SET parquet_metadata_cache = true');
    }
    for (const statement of config.setup ?? []) await conn.run(statement);
    await conn.run('SET enable_external_access = false');
    await conn.run('SET lock_configuration = true');
    this.instance = instance;
    for (const c of conns) this.release(c);
  }

  close(): void {
    for (const c of this.idle) c.closeSync();
    this.idle.length = 0;
    this.instance.closeSync();
  }

  /** A fresh temp table name, unique within this process. */
  tempName(): string {
    return `kt_${++this.tempCounter}`;
  }

  /**
   * Materializes the sources, runs one statement with positional params, drops the sources. The
   * result is streamed and read under the request's byte budget; the time limit is what is left of
   * the statement's deadline (or query_timeout_ms outside a statement).
   */
  async query(
    sql: string, params: readonly DuckDBValue[], sources: readonly TempSource[], budgets: Budgets | null = null, owner: string | null = null,
  ): Promise<DuckResult> {
    budgets?.deadline?.check();
    const conn = await this.acquire(owner);
    const created: string[] = [];
    const running = this.running.start(conn);
    const timeLimit = budgets?.deadline ?? null;
    const timer = setTimeout(
      () => running.stop(timeLimit?.error() ?? execError(`Query exceeded the time limit of ${this.config.queryTimeoutMs} ms`)),
      timeLimit?.remainingMs() ?? this.config.queryTimeoutMs,
    );
    try {
      // The deadline may have passed while the query waited for a connection.
      budgets?.deadline?.check();
      for (const source of sources) await this.materialize(conn, source, created);
      if (running.stopReason !== null) throw running.stopReason;
      const result = await conn.stream(sql, params as DuckDBValue[]);
      const columnCount = result.columnCount;
      const typeIds: number[] = [];
      const columnTypes: string[] = [];
      for (let i = 0; i < columnCount; i++) {
        typeIds.push(result.columnTypeId(i));
        const type = result.columnType(i);
        columnTypes.push(type.alias ?? type.toString());
      }
      const rows = await readRowsBounded(result, {
        rowsMax: this.config.resultRowsMax,
        bytes: budgets?.resultBytes ?? new ByteBudget(this.config.resultBytesMax),
        stopped: () => running.stopReason,
      });
      return { columnNames: result.columnNames(), columnTypes, typeIds, rows };
    } catch (error) {
      // A stopped query fails with whatever DuckDB says (usually INTERRUPT); the stop's reason is the answer.
      if (running.stopReason !== null) throw running.stopReason;
      if (error instanceof ServerError) throw error;
      throw execError(cleanDuckMessage((error as Error).message));
    } finally {
      clearTimeout(timer);
      this.running.finish(running);
      for (const what of created) await conn.run(`DROP ${what.replace(' ', ' IF EXISTS ')}`).catch(() => undefined);
      this.release(conn, owner);
    }
  }

  /** Runs `fn` with a pooled connection (used by the hot mirror to load and sync its tables). */
  async withConnection<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    try {
      return await fn(conn);
    } finally {
      this.release(conn);
    }
  }

  /** Bytes DuckDB holds in memory (its buffer manager: tables, caches, running queries). */
  async memoryBytes(): Promise<number> {
    return this.withConnection(async (conn) => {
      const rows = await (await conn.run('SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()')).getRows();
      return Number(rows[0]![0] as bigint);
    });
  }

  /** The engine's own parse of a statement, as JSON (json_serialize_sql; only SELECTs serialize). */
  async serialize(sql: string): Promise<string> {
    return this.withConnection(async (conn) => {
      const result = await conn.run('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
      return String((await result.getRows())[0]![0]);
    });
  }

  /**
   * Runs `sql` here and appends its rows, chunk by chunk and without converting them to JS values,
   * to `table` through `target` (a connection of another instance). Returns the row count.
   */
  async copyInto(sql: string, target: DuckDBConnection, table: string, catalog: 'temp' | 'memory'): Promise<number> {
    return this.withConnection(async (conn) => {
      const result = await conn.stream(sql);
      const appender = await target.createAppender(table, 'main', catalog);
      let rows = 0;
      try {
        for (;;) {
          const chunk = await result.fetchChunk();
          if (chunk === null || chunk.rowCount === 0) break;
          appender.appendDataChunk(chunk);
          rows += chunk.rowCount;
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
      return rows;
    });
  }

  /**
   * Creates a source's temp relations, recording each in `created` as soon as it exists (views
   * first, so the caller drops them before their tables) so a failure halfway leaks nothing.
   */
  private async materialize(conn: DuckDBConnection, source: TempSource, created: string[]): Promise<void> {
    if (source.merge === undefined) {
      await conn.run(`CREATE TEMP TABLE ${source.name} (${columnList(source.columns)})`);
      created.push(`TABLE temp.main.${source.name}`);
      await appendRows(conn, source.name, 'temp', source.columns, source.rows);
      return;
    }
    const hot = `${source.name}_h`;
    await conn.run(`CREATE TEMP TABLE ${hot} (${columnList(source.columns)})`);
    created.push(`TABLE temp.main.${hot}`);
    await appendRows(conn, hot, 'temp', source.columns, source.rows);
    const { coldRelation, pk, liveOnly } = source.merge;
    await conn.run(`CREATE TEMP VIEW ${source.name} AS ${mergedRelationSql(`temp.main.${hot}`, coldRelation, pk, liveOnly)}`);
    created.unshift(`VIEW temp.main.${source.name}`);
  }

  /**
   * A connection for `owner`'s query (an account id; null for the server's own work). One account
   * holds at most all connections but one, and a freed connection goes to the waiting account that
   * holds the fewest (the server's own work first, then first come): one account's slow queries
   * (each may run for query_timeout_ms) cannot keep everyone else's reads waiting.
   */
  private acquire(owner: string | null = null): Promise<DuckDBConnection> {
    if (this.mayTake(owner) && this.idle.length > 0) {
      this.take(owner);
      return Promise.resolve(this.idle.pop()!);
    }
    return new Promise((resolve) => this.waiters.push({ owner, resolve }));
  }

  private release(conn: DuckDBConnection, owner: string | null = null): void {
    if (owner !== null) {
      const n = this.held.get(owner)! - 1;
      if (n === 0) this.held.delete(owner);
      else this.held.set(owner, n);
    }
    let next = -1;
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (this.mayTake(w.owner) && (next === -1 || this.heldBy(w.owner) < this.heldBy(this.waiters[next]!.owner))) next = i;
    }
    if (next === -1) {
      this.idle.push(conn);
      return;
    }
    const [waiter] = this.waiters.splice(next, 1);
    this.take(waiter!.owner);
    waiter!.resolve(conn);
  }

  private mayTake(owner: string | null): boolean {
    return owner === null || this.heldBy(owner) < Math.max(1, this.config.connections - 1);
  }

  private heldBy(owner: string | null): number {
    return owner === null ? -1 : (this.held.get(owner) ?? 0);
  }

  private take(owner: string | null): void {
    if (owner !== null) this.held.set(owner, this.heldBy(owner) + 1);
  }
}

function withSlash(dir: string): string {
  return dir.endsWith('/') ? dir : `${dir}/`;
}

/** A SQL string literal. */
export function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The file engine's relation over Parquet files (absolute paths), as SQL. */
export function readParquetSql(paths: readonly string[]): string {
  return `read_parquet([${paths.map(sqlString).join(', ')}])`;
}

/** A quoted SQL identifier. */
export function sqlIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function columnList(columns: readonly SourceColumn[]): string {
  return columns.map((c) => `"${c.name}" ${duckType(c)}`).join(', ');
}

/** Appends rows (cells in column order) to a table through DuckDB's appender. */
export async function appendRows(
  conn: DuckDBConnection, table: string, catalog: 'temp' | 'memory', columns: readonly SourceColumn[], rows: readonly (readonly StoredValue[])[],
): Promise<void> {
  if (rows.length === 0) return;
  const appender = await RowAppender.open(conn, table, catalog, columns);
  try {
    for (const row of rows) {
      assert(row.length === columns.length, 'row width matches source columns');
      for (let i = 0; i < row.length; i++) appender.cell(i, row[i]);
      appender.endRow();
    }
    appender.flush();
  } finally {
    appender.close();
  }
}

/**
 * DuckDB's appender with a converter per column, for callers that produce rows a few at a time (the
 * hot mirror's load streams a partition through one) instead of as one array of arrays.
 */
export class RowAppender {
  private constructor(private readonly appender: DuckDBAppender, private readonly cells: readonly CellAppender[]) {}

  static async open(conn: DuckDBConnection, table: string, catalog: 'temp' | 'memory', columns: readonly SourceColumn[]): Promise<RowAppender> {
    return new RowAppender(await conn.createAppender(table, 'main', catalog), columns.map(cellAppender));
  }

  /** The next cell of the current row, which is column `i` (cells go in column order). */
  cell(i: number, v: StoredValue | undefined): void {
    if (v === null || v === undefined) this.appender.appendNull();
    else this.cells[i]!(this.appender, v);
  }

  endRow(): void {
    this.appender.endRow();
  }

  /** One stored version as a row of a table whose columns are the version's cells, then `_seq` and `_deleted`. */
  version(values: readonly StoredValue[], seq: bigint, deleted: boolean): void {
    assert(values.length === this.cells.length - 2, 'version width matches the columns before _seq, _deleted');
    for (let i = 0; i < values.length; i++) this.cell(i, values[i]);
    this.appender.appendBigInt(seq);
    this.appender.appendBoolean(deleted);
    this.appender.endRow();
  }

  /** Writes the rows appended so far to the table. */
  flush(): void {
    this.appender.flushSync();
  }

  close(): void {
    this.appender.closeSync();
  }
}

export function duckType(c: Pick<ColumnDef, 'type' | 'precision' | 'scale'>): string {
  switch (c.type) {
    case 'Boolean': return 'BOOLEAN';
    case 'SmallInt': return 'SMALLINT';
    case 'Int': return 'INTEGER';
    case 'BigInt': return 'BIGINT';
    case 'Float': return 'FLOAT';
    case 'Double': return 'DOUBLE';
    case 'Text': return 'VARCHAR';
    case 'Json': return 'JSON';
    case 'Timestamp': return 'TIMESTAMP';
    case 'Date': return 'DATE';
    case 'Time': return 'TIME';
    case 'Bytes': return 'BLOB';
    case 'Uuid': return 'UUID';
    case 'Decimal': return `DECIMAL(${c.precision ?? 18},${c.scale ?? 0})`;
  }
}

type CellAppender = (a: DuckDBAppender, v: StoredValue) => void;

function cellAppender(c: SourceColumn): CellAppender {
  switch (c.type) {
    case 'Boolean': return (a, v) => a.appendBoolean(v as boolean);
    case 'SmallInt': return (a, v) => a.appendSmallInt(v as number);
    case 'Int': return (a, v) => a.appendInteger(v as number);
    case 'BigInt': return (a, v) => a.appendBigInt(v as bigint);
    case 'Float': return (a, v) => a.appendFloat(v as number);
    case 'Double': return (a, v) => a.appendDouble(v as number);
    case 'Text': case 'Json': case 'Uuid': return (a, v) => a.appendVarchar(v as string);
    case 'Timestamp': return (a, v) => a.appendTimestamp(new DuckDBTimestampValue(BigInt(v as number)));
    case 'Date': return (a, v) => a.appendDate(new DuckDBDateValue(v as number));
    case 'Time': return (a, v) => a.appendTime(new DuckDBTimeValue(BigInt(v as number)));
    case 'Bytes': return (a, v) => a.appendBlob(v as Uint8Array);
    case 'Decimal': {
      const width = c.precision ?? 18;
      const scale = c.scale ?? 0;
      return (a, v) => a.appendDecimal(new DuckDBDecimalValue(v as bigint, width, scale));
    }
  }
}

/** DuckDB error text without its internal line/caret excerpt of the rewritten SQL. */
function cleanDuckMessage(message: string): string {
  const firstBlock = message.split('\n\nLINE ')[0]!.split('\nLINE ')[0]!;
  return firstBlock.trim();
}
