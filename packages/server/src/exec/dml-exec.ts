/**
 * INSERT, UPDATE and DELETE. Each statement computes its row writes (full new rows, tombstones for
 * deletes) and either adds them to the open transaction or commits them as one intent. UPDATE and
 * DELETE read their target rows through the same read path as SELECT, or a primary-key point read.
 */
import { LimitError, execError, invalidSql } from '../util/errors.js';
import { SEQ_COLUMN, primaryKeyIndex, qualifiedName, type StoredValue, type TableDef } from '../catalog/types.js';
import type { DuckDBValue } from '@duckdb/node-api';
import { partitionFor, requireWrite } from '../auth/access.js';
import type { PgNode, Statement } from '../sql/statement.js';
import { coerce, type InputValue } from '../sql/values.js';
import { identifier } from '../sql/names.js';
import { SchemaChangedError, WriteConflictError, type RowWrite } from '../storage/hot/committer.js';
import { messageResult, type RunContext, type Services, type StatementResult } from './context.js';
import { duckToInput } from './duck-cells.js';
import { DEFAULT_MARKER, NOT_CONSTANT, defaultValue, evalSimple, type EvalEnv } from './expr-eval.js';
import type { SelectStmt } from '@pgsql/types';
import { runQuery } from './query.js';
import { pkEquality } from './select-exec.js';
import type { VisibleRow } from './sources.js';
import { pkString } from './transaction.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;
/** Autocommit UPDATE/DELETE retry write conflicts this long (with jittered backoff) before failing. */
const CONFLICT_RETRY_MS = 5_000;
/** Rows built between two looks at the statement's deadline: often enough to stop within milliseconds. */
const DEADLINE_CHECK_ROWS = 1024;

/** Throws the statement's time-limit error once its deadline has passed (nothing is written then). */
function checkDeadline(ctx: RunContext): void {
  ctx.budgets?.deadline?.check();
}

function tooManyRows(what: string, rowsMax: number): LimitError {
  return new LimitError('SQL_EXECUTION_ERROR', 'write_rows_max',
    `${what} more than ${rowsMax} rows (write_rows_max): split it into smaller statements; nothing was written`);
}

/** A SELECT that returns at most one row more than `rowsMax`: enough to tell "too many" without reading them all. */
function limitedSelect(select: PgNode, rowsMax: number): SelectStmt {
  return {
    targetList: [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }],
    fromClause: [{ RangeSubselect: { subquery: select, alias: { aliasname: 'kalam_write_source' } } }],
    limitCount: { A_Const: { ival: { ival: rowsMax + 1 } } },
    limitOption: 'LIMIT_OPTION_COUNT',
    op: 'SETOP_NONE',
  };
}

function targetTable(s: Services, ctx: RunContext, rv: PgNode, verb: string): TableDef {
  const table = writableTable(s, ctx, rv, verb);
  if (table.type === 'STREAM') {
    throw execError(`${verb.split(' ')[0]} is not supported on STREAM table ${qualifiedName(table)}: stream events are immutable and expire by TTL`);
  }
  return table;
}

function writableTable(s: Services, ctx: RunContext, rv: PgNode, verb: string): TableDef {
  if (rv.catalogname !== undefined) throw invalidSql('Catalog-qualified table names are not supported');
  const namespace = rv.schemaname !== undefined ? identifier(rv.schemaname, 'namespace name') : ctx.namespace;
  if (namespace === 'system') throw execError(`System tables are read-only: cannot ${verb} system.${rv.relname}`);
  const table = s.catalog.table(namespace, identifier(rv.relname, 'table name'));
  if (table === undefined) throw execError(`Table '${namespace}.${rv.relname}' does not exist`);
  requireWrite(ctx.principal, table);
  return table;
}

function evalEnv(s: Services, ctx: RunContext): EvalEnv {
  return { params: ctx.params, userId: ctx.principal.userId, seqs: s.seqs, nowMicros: Date.now() * 1000 };
}

/**
 * Hands the statement's writes on: to the open transaction, or to the committer. The last look at
 * the deadline is here, so a statement over its time limit writes nothing; the commit itself is
 * bounded by write_rows_max instead.
 */
async function apply(s: Services, ctx: RunContext, writes: RowWrite[]): Promise<void> {
  const rowsMax = s.config.writeRowsMax;
  if (writes.length > rowsMax) throw tooManyRows('The statement writes', rowsMax);
  checkDeadline(ctx);
  if (ctx.tx) {
    for (const w of writes) ctx.tx.add(w);
    // A failing statement discards the whole transaction, so adding before checking leaves nothing behind.
    if (ctx.tx.size > rowsMax) throw tooManyRows('The transaction writes', rowsMax);
  } else {
    await s.committer.commit(writes);
  }
}

// INSERT ------------------------------------------------------------------------------------

export async function insert(s: Services, ctx: RunContext, st: Of<'insert'>): Promise<StatementResult> {
  const ast = st.ast;
  if (ast.onConflictClause) throw invalidSql('INSERT ... ON CONFLICT is not supported');
  if (ast.returningClause) throw invalidSql('RETURNING is not supported');
  if (ast.withClause) throw invalidSql('WITH ... INSERT is not supported: put the WITH inside the SELECT');
  const table = writableTable(s, ctx, ast.relation, 'INSERT INTO');
  const targets = insertColumns(table, ast.cols);
  const env = evalEnv(s, ctx);
  const inputs = st.rows !== undefined ? literalRows(s, st.rows, targets.length) : await insertInputs(s, ctx, ast.selectStmt, targets.length, env);
  const partition = partitionFor(ctx.principal, table);
  if (table.type === 'STREAM') return insertStreamEvents(s, ctx, table, partition, targets, inputs, env);
  const pkIdx = primaryKeyIndex(table);
  const buildRow = rowBuilder(table, targets, env);
  const writes: RowWrite[] = inputs.map((input, i) => {
    if (i % DEADLINE_CHECK_ROWS === 0) checkDeadline(ctx);
    const values = buildRow(input);
    if (values[pkIdx] === null) throw execError(`Primary key column '${table.columns[pkIdx]!.name}' cannot be NULL`);
    return { table, partition, values, deleted: false, expect: 'absent' };
  });
  if (ctx.tx) {
    const seen = new Set<string>();
    for (const w of writes) {
      const key = pkString(table, w.values[pkIdx]!);
      if (seen.has(key)) throw execError(`Duplicate primary key in ${qualifiedName(table)}: ${table.columns[pkIdx]!.name} = ${String(w.values[pkIdx])} is given twice`);
      seen.add(key);
    }
    const existing = await s.sources.byPks(table, partition, writes.map((w) => w.values[pkIdx]!), ctx.tx);
    existing.forEach((row, i) => {
      if (row !== null) throw execError(`Duplicate primary key in ${qualifiedName(table)}: ${table.columns[pkIdx]!.name} = ${String(writes[i]!.values[pkIdx])} already exists`);
    });
  }
  await apply(s, ctx, writes);
  return messageResult(ctx, `Inserted ${writes.length} row(s)`, writes.length);
}

/**
 * Full rows from INSERT inputs: given columns coerced, the others from their defaults (in column
 * order). Made once per statement: the columns the statement leaves out are listed once, not found
 * again for each of a bulk INSERT's rows.
 */
function rowBuilder(table: TableDef, targets: readonly number[], env: EvalEnv): (input: readonly InsertCell[]) => StoredValue[] {
  const columns = table.columns;
  const targeted = new Set(targets);
  const omitted = columns.map((_, c) => c).filter((c) => !targeted.has(c));
  return (input) => {
    const values: StoredValue[] = new Array(columns.length);
    for (let i = 0; i < targets.length; i++) {
      const v = input[i];
      // DEFAULT among the values: its default is taken in column order with the others'.
      if (v === DEFAULT_MARKER) return buildRowWithDefaults(table, targets, input, env);
      values[targets[i]!] = coerce(columns[targets[i]!]!, v as InputValue);
    }
    for (let i = 0; i < omitted.length; i++) values[omitted[i]!] = defaultValue(columns[omitted[i]!]!, env);
    return values;
  };
}

function buildRowWithDefaults(table: TableDef, targets: readonly number[], input: readonly InsertCell[], env: EvalEnv): StoredValue[] {
  const values: StoredValue[] = new Array(table.columns.length);
  const given = new Array<boolean>(table.columns.length).fill(false);
  targets.forEach((colIdx, i) => {
    const v = input[i];
    if (v === DEFAULT_MARKER) return;
    values[colIdx] = coerce(table.columns[colIdx]!, v as InputValue);
    given[colIdx] = true;
  });
  for (let c = 0; c < table.columns.length; c++) if (!given[c]) values[c] = defaultValue(table.columns[c]!, env);
  return values;
}

/**
 * STREAM INSERT: events get a `_seq`, go to the in-memory stream store and straight to the
 * subscribers; nothing is written to disk. EPHEMERAL tables drop events nobody is subscribed to.
 */
function insertStreamEvents(
  s: Services, ctx: RunContext, table: TableDef, partition: string, targets: readonly number[], inputs: readonly (readonly InsertCell[])[], env: EvalEnv,
): StatementResult {
  if (ctx.tx !== null) throw execError(`stream tables are not supported inside explicit transactions (${qualifiedName(table)}: events are not transactional)`);
  const buildRow = rowBuilder(table, targets, env);
  const rows = inputs.map((input, i) => {
    if (i % DEADLINE_CHECK_ROWS === 0) checkDeadline(ctx);
    return buildRow(input);
  });
  if (rows.length > s.config.writeRowsMax) throw tooManyRows('The statement writes', s.config.writeRowsMax);
  checkDeadline(ctx);
  if (table.options.ephemeral && !(s.live?.hasSubscribers(table.id, partition) ?? false)) {
    return messageResult(ctx, `Inserted ${rows.length} row(s)`, rows.length);
  }
  const seqs = new Array<bigint>(rows.length);
  for (let i = 0; i < rows.length; i++) seqs[i] = s.seqs.next();
  s.streams.append(table, partition, seqs, rows);
  // One message per subscription for the whole INSERT (live/stream-fanout.ts).
  s.live?.publishStream(table, partition, seqs, rows);
  return messageResult(ctx, `Inserted ${rows.length} row(s)`, rows.length);
}

function insertColumns(table: TableDef, cols: PgNode[] | undefined): number[] {
  if (!cols) return table.columns.map((_, i) => i);
  const seen = new Set<number>();
  return cols.map((c) => {
    const name = String(c.ResTarget.name);
    const lower = name.toLowerCase();
    const idx = table.columns.findIndex((col) => col.name === lower);
    if (idx === -1) throw execError(`Column '${name}' does not exist in table ${qualifiedName(table)}`);
    if (seen.has(idx)) throw execError(`Column '${name}' is given twice`);
    if (c.ResTarget.indirection) throw invalidSql(`Column '${name}': subscripts are not supported`);
    seen.add(idx);
    return idx;
  });
}

type InsertCell = InputValue | typeof DEFAULT_MARKER;

/** The rows of a literal VALUES list read by the parser's scanner, checked as insertInputs checks VALUES. */
function literalRows(s: Services, rows: readonly (readonly InputValue[])[], width: number): readonly (readonly InsertCell[])[] {
  if (rows.length > s.config.writeRowsMax) throw tooManyRows('INSERT ... VALUES has', s.config.writeRowsMax);
  for (const row of rows) {
    if (row.length !== width) throw execError(`INSERT has ${width} target column(s) but a VALUES row has ${row.length} value(s)`);
  }
  return rows;
}

/** The rows to insert: VALUES evaluated in JS when simple, otherwise the SELECT run on DuckDB. */
async function insertInputs(s: Services, ctx: RunContext, select: PgNode, width: number, env: EvalEnv): Promise<InsertCell[][]> {
  const q = select?.SelectStmt;
  if (!q) throw invalidSql('INSERT needs VALUES or a SELECT');
  const rowsMax = s.config.writeRowsMax;
  if (q.valuesLists && q.valuesLists.length > rowsMax) throw tooManyRows('INSERT ... VALUES has', rowsMax);
  if (q.valuesLists && !q.withClause && !q.sortClause && !q.limitCount) {
    const rows: InsertCell[][] = [];
    let simple = true;
    for (const list of q.valuesLists) {
      const items: PgNode[] = list.List.items;
      if (items.length !== width) throw execError(`INSERT has ${width} target column(s) but a VALUES row has ${items.length} value(s)`);
      const row: InsertCell[] = [];
      for (const item of items) {
        const v = evalSimple(item, env);
        if (v === NOT_CONSTANT) { simple = false; break; }
        row.push(v);
      }
      if (!simple) break;
      rows.push(row);
    }
    if (simple) return rows;
  }
  // DuckDB stops after one row too many, instead of producing (and this converting) them all.
  const result = await runQuery(s, ctx, q.valuesLists ? q : limitedSelect(select, rowsMax));
  if (result.columnNames.length !== width) {
    throw execError(`INSERT has ${width} target column(s) but the query returns ${result.columnNames.length}`);
  }
  if (result.rows.length > rowsMax) throw tooManyRows('INSERT ... SELECT returns', rowsMax);
  return result.rows.map((r, i) => {
    if (i % DEADLINE_CHECK_ROWS === 0) checkDeadline(ctx);
    return r.map(duckToInput);
  });
}

// UPDATE / DELETE ---------------------------------------------------------------------------

export async function update(s: Services, ctx: RunContext, st: Of<'update'>): Promise<StatementResult> {
  const ast = st.ast;
  if (ast.returningClause) throw invalidSql('RETURNING is not supported');
  if (ast.withClause) throw invalidSql('WITH ... UPDATE is not supported');
  const table = targetTable(s, ctx, ast.relation, 'UPDATE');
  const sets = setTargets(table, ast.targetList ?? []);
  const env = evalEnv(s, ctx);
  // SET col = DEFAULT takes the column default, evaluated once for the statement.
  const defaults = (ast.targetList ?? []).map((t: PgNode, j: number) =>
    t.ResTarget.val?.SetToDefault ? { value: defaultValue(table.columns[sets[j]!]!, env) } : null);
  const count = await withConflictRetry(ctx, async () => {
    const { rows, newValues } = await updateCandidates(s, ctx, table, ast);
    const writes: RowWrite[] = [];
    rows.forEach((row, i) => {
      if (i % DEADLINE_CHECK_ROWS === 0) checkDeadline(ctx);
      const values = [...row.values];
      sets.forEach((colIdx, j) => {
        values[colIdx] = defaults[j] ? defaults[j].value : coerce(table.columns[colIdx]!, newValues[i]![j] as InputValue);
      });
      if (values.every((v, k) => sameValue(v, row.values[k]!))) return;
      writes.push({ table, partition: partitionFor(ctx.principal, table), values, deleted: false, expect: row.seq ?? 'any', previous: row.values });
    });
    await apply(s, ctx, writes);
    return writes.length;
  });
  return messageResult(ctx, `Updated ${count} row(s)`, count);
}

export async function remove(s: Services, ctx: RunContext, st: Of<'delete'>): Promise<StatementResult> {
  const ast = st.ast;
  if (ast.returningClause) throw invalidSql('RETURNING is not supported');
  if (ast.withClause) throw invalidSql('WITH ... DELETE is not supported');
  const table = targetTable(s, ctx, ast.relation, 'DELETE FROM');
  const count = await withConflictRetry(ctx, async () => {
    const rows = await deleteCandidates(s, ctx, table, ast);
    const partition = partitionFor(ctx.principal, table);
    // `previous`: the row as read, for the old values of a row that lives in the cold tier (its index
    // entry there holds no values). In a transaction a later write to the key keeps it: a delete and
    // re-insert of a flushed row is an update (or a delete for a filter the new row leaves).
    const writes: RowWrite[] = rows.map((row) => ({ table, partition, values: row.values, deleted: true, expect: row.seq ?? 'any', previous: row.values }));
    await apply(s, ctx, writes);
    return writes.length;
  });
  return messageResult(ctx, `Deleted ${count} row(s)`, count);
}

function setTargets(table: TableDef, targetList: PgNode[]): number[] {
  const pkIdx = primaryKeyIndex(table);
  return targetList.map((t) => {
    const name = String(t.ResTarget.name);
    const lower = name.toLowerCase();
    const idx = table.columns.findIndex((c) => c.name === lower);
    if (idx === -1) throw execError(`Column '${name}' does not exist in table ${qualifiedName(table)}`);
    if (idx === pkIdx) throw execError(`Column '${name}' is the primary key and cannot be updated`);
    if (t.ResTarget.indirection) throw invalidSql(`Column '${name}': subscripts are not supported`);
    return idx;
  });
}

/** Rows matched by an UPDATE and, per row, the new value of each SET column. */
async function updateCandidates(
  s: Services, ctx: RunContext, table: TableDef, ast: PgNode,
): Promise<{ rows: VisibleRow[]; newValues: InputValue[][] }> {
  const alias = ast.relation.alias?.aliasname ?? table.name;
  const env = evalEnv(s, ctx);
  const point = !ast.fromClause ? pkEquality(table, ast.whereClause, ctx, alias) : null;
  if (point !== null) {
    const consts = ast.targetList.map((t: PgNode) => evalSimple(t.ResTarget.val, env));
    if (!consts.some((v: unknown) => v === NOT_CONSTANT)) {
      const rows = await pointRows(s, ctx, table, point);
      return { rows, newValues: rows.map(() => consts as InputValue[]) };
    }
  }
  // DEFAULT is not an expression DuckDB can evaluate; the caller substitutes the column default.
  const exprs = ast.targetList.map((t: PgNode) => ({ ResTarget: { val: t.ResTarget.val?.SetToDefault ? { A_Const: { isnull: true } } : t.ResTarget.val } }));
  const matched = await matchRows(s, ctx, 'UPDATE', table, alias, exprs, [{ RangeVar: ast.relation }, ...(ast.fromClause ?? [])], ast.whereClause);
  return { rows: matched.map((m) => m.row), newValues: matched.map((m) => m.extra.map(duckToInput)) };
}

async function deleteCandidates(s: Services, ctx: RunContext, table: TableDef, ast: PgNode): Promise<VisibleRow[]> {
  const alias = ast.relation.alias?.aliasname ?? table.name;
  const point = !ast.usingClause ? pkEquality(table, ast.whereClause, ctx, alias) : null;
  if (point !== null) return pointRows(s, ctx, table, point);
  const matched = await matchRows(s, ctx, 'DELETE', table, alias, [], [{ RangeVar: ast.relation }, ...(ast.usingClause ?? [])], ast.whereClause);
  return matched.map((m) => m.row);
}

/**
 * Finds the target rows of an UPDATE/DELETE with DuckDB (`SELECT pk, _seq, extra... FROM ... WHERE ...`),
 * then reads each row by primary key. A row whose version moved on since DuckDB saw it is a write
 * conflict, so the statement is retried on fresh data rather than applied to a row it did not match.
 */
async function matchRows(
  s: Services, ctx: RunContext, verb: 'UPDATE' | 'DELETE', table: TableDef, alias: string, extra: PgNode[], fromClause: PgNode[], whereClause: PgNode,
): Promise<{ row: VisibleRow; extra: DuckDBValue[] }[]> {
  const pkCol = table.columns[primaryKeyIndex(table)]!;
  const column = (name: string): PgNode => ({ ResTarget: { val: { ColumnRef: { fields: [{ String: { sval: alias } }, { String: { sval: name } }] } } } });
  const select: SelectStmt = {
    targetList: [column(pkCol.name), column(SEQ_COLUMN), ...extra],
    fromClause,
    ...(whereClause ? { whereClause } : {}),
    // One row more than may be written tells "too many" without DuckDB producing them all.
    limitCount: { A_Const: { ival: { ival: s.config.writeRowsMax + 1 } } },
    limitOption: 'LIMIT_OPTION_COUNT',
    op: 'SETOP_NONE',
  };
  const result = await runQuery(s, ctx, select);
  if (result.rows.length > s.config.writeRowsMax) {
    throw tooManyRows(`${verb} matches`, s.config.writeRowsMax);
  }
  const seen = new Set<string>();
  const unique = result.rows.filter((r) => {
    const key = String(r[0]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const pks = unique.map((r) => coerce(pkCol, duckToInput(r[0]!)));
  const rows = await s.sources.byPks(table, partitionFor(ctx.principal, table), pks, ctx.tx);
  return unique.map((r, i) => {
    const row = rows[i];
    const seenSeq = r[1] === null ? null : BigInt(r[1] as bigint);
    if (row === null || row === undefined || (seenSeq !== null && row.seq !== seenSeq)) throw new WriteConflictError(table);
    return { row, extra: r.slice(2) };
  });
}

async function pointRows(s: Services, ctx: RunContext, table: TableDef, value: StoredValue | string): Promise<VisibleRow[]> {
  const pkCol = table.columns[primaryKeyIndex(table)]!;
  let pk: StoredValue;
  try {
    pk = coerce({ ...pkCol, nullable: true }, value);
  } catch {
    return [];
  }
  if (pk === null) return [];
  const [row] = await s.sources.byPks(table, partitionFor(ctx.principal, table), [pk], ctx.tx);
  return row ? [row] : [];
}

/** Outside a transaction a statement that lost a write race re-reads and tries again. */
async function withConflictRetry<T>(ctx: RunContext, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + CONFLICT_RETRY_MS;
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      // A schema change needs a fresh bind (the executor retries the whole statement), not a re-read.
      if (!(error instanceof WriteConflictError) || error instanceof SchemaChangedError || ctx.tx !== null || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** i, 50)));
    }
  }
}

function sameValue(a: StoredValue, b: StoredValue): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  return a === b;
}
