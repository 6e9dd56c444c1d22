/**
 * The general read path: bind the parse tree, materialize each source with exactly the rows the
 * caller may see, run the deparsed SQL on DuckDB. SELECT, INSERT ... SELECT, UPDATE and DELETE all
 * read through here; only primary-key point reads take the fast path in select-exec.
 */
import { deparseSync } from 'pgsql-deparser';
import type { DuckDBValue } from '@duckdb/node-api';
import { execError } from '../util/errors.js';
import type { StoredValue, TableDef } from '../catalog/types.js';
import { partitionFor } from '../auth/access.js';
import type { PgNode } from '../sql/statement.js';
import type { DuckResult, SourceColumn, TempSource } from '../storage/duck/duck-engine.js';
import { bindQuery, type BoundSource } from './bind.js';
import type { RunContext, Services } from './context.js';
import { sourceColumns, withSystemColumns, type VisibleRow } from './sources.js';
import { systemRelation } from './system-tables.js';

export const ROW_ID_COLUMN = '__kalam_rid';

export interface QueryOptions {
  /** The table an UPDATE/DELETE targets: its source gets a row-id column and its rows are returned. */
  readonly target?: TableDef;
}

export interface QueryOutput {
  readonly result: DuckResult;
  /** Visible rows of the target table, indexed by the row-id column. */
  readonly targetRows: readonly VisibleRow[];
}

export async function runQuery(s: Services, ctx: RunContext, selectNode: PgNode, options: QueryOptions = {}): Promise<QueryOutput> {
  const bound = bindQuery(selectNode, {
    catalog: s.catalog,
    principal: ctx.principal,
    namespace: ctx.namespace,
    tempName: () => s.duck.tempName(),
    skipReadCheck: options.target ? new Set([options.target]) : undefined,
  });
  let targetRows: VisibleRow[] = [];
  let targetBound = false;
  const sources: TempSource[] = [];
  const names = new Map<string, string>();
  for (const source of bound.sources) {
    const isTarget = !targetBound && source.kind === 'table' && source.table === options.target;
    const built = await buildSource(s, ctx, source, isTarget ? false : bound.includeDeleted, isTarget);
    if (isTarget) {
      targetRows = built.rows;
      targetBound = true;
    }
    sources.push(built.source);
    names.set(source.tempName, source.kind === 'table' ? `${source.table.namespace}.${source.table.name}` : `system.${source.name}`);
  }
  const sql = deparseSync(selectNode.SelectStmt ? bound.ast : { SelectStmt: bound.ast });
  try {
    const result = await s.duck.query(sql, duckParams(ctx.params), sources);
    if (result.rows.length > s.config.resultRowsMax) {
      throw execError(`Result has more than ${s.config.resultRowsMax} rows: add a LIMIT or a narrower WHERE`);
    }
    return { result, targetRows };
  } catch (error) {
    if (error instanceof Error) error.message = error.message.replace(/kt_\d+/g, (m) => names.get(m) ?? m);
    throw error;
  }
}

async function buildSource(
  s: Services, ctx: RunContext, source: BoundSource, includeDeleted: boolean, isTarget: boolean,
): Promise<{ source: TempSource; rows: VisibleRow[] }> {
  if (source.kind === 'system') {
    const rel = systemRelation(s.catalog, source.name);
    return { source: { name: source.tempName, columns: rel.columns, rows: rel.rows }, rows: [] };
  }
  const table = source.table;
  const visible = await s.sources.visible(table, partitionFor(ctx.principal, table), includeDeleted, ctx.tx);
  const columns: SourceColumn[] = sourceColumns(table);
  let rows: StoredValue[][];
  if (isTarget) {
    columns.push({ name: ROW_ID_COLUMN, type: 'Int' });
    rows = visible.map((r, i) => [...withSystemColumns(r), i]);
  } else {
    rows = visible.map(withSystemColumns);
  }
  return { source: { name: source.tempName, columns, rows }, rows: visible };
}

/** JSON params as DuckDB values: numbers, strings, booleans and null pass through. */
function duckParams(params: readonly unknown[]): DuckDBValue[] {
  return params.map((p, i) => {
    if (p === null || typeof p === 'string' || typeof p === 'number' || typeof p === 'boolean') return p;
    throw execError(`Parameter $${i + 1}: only strings, numbers, booleans and null can be bound in queries`);
  });
}
