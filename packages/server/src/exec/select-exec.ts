/**
 * SELECT: primary-key point reads are answered from the hot index directly (no DuckDB); every
 * other query takes the general read path.
 */
import { DELETED_COLUMN, SEQ_COLUMN, primaryKeyIndex, type StoredValue, type TableDef } from '../catalog/types.js';
import { partitionFor } from '../auth/access.js';
import { execError } from '../util/errors.js';
import type { PgNode, Statement } from '../sql/statement.js';
import { coerce, encodeCell, protocolType } from '../sql/values.js';
import { rowsResult, type RunContext, type Services, type StatementResult } from './context.js';
import { encodeDuckResult, type SchemaField } from './duck-cells.js';
import { constantValue } from '../sql/create-table.js';
import { param } from './expr-eval.js';
import { bindForRequest, runBound } from './query.js';
import { computedColumns, type BoundQuery } from '../sql/bind/bind-select.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

export async function select(s: Services, ctx: RunContext, st: Of<'select'>): Promise<StatementResult> {
  // Bound once: the fast path and the engine read the same resolved, access-checked tables.
  const bound = bindForRequest(s, ctx, st.ast);
  const fast = await pointSelect(s, ctx, st.ast, bound);
  if (fast !== null) return fast;
  const result = await runBound(s, ctx, bound);
  const { schema, rows } = encodeDuckResult(result, computedColumns(bound.outputs, result.typeIds.length));
  return rowsResult(ctx, schema, rows);
}

/** `SELECT cols FROM t WHERE pk = value` on a USER/SHARED table; null when the query is anything else. */
async function pointSelect(s: Services, ctx: RunContext, q: PgNode, bound: BoundQuery): Promise<StatementResult | null> {
  if (q.withClause || q.groupClause || q.havingClause || q.sortClause || q.limitCount || q.limitOffset || q.distinctClause
    || q.windowClause || q.valuesLists || (q.op && q.op !== 'SETOP_NONE') || q.lockingClause) return null;
  if (q.fromClause?.length !== 1 || !q.fromClause[0].RangeVar || bound.sources.length !== 1) return null;
  const source = bound.sources[0]!;
  if (source.kind !== 'table' || source.table.type === 'STREAM') return null;
  const table = source.table;
  const rv = q.fromClause[0].RangeVar;
  const lookup = pkEquality(table, q.whereClause, ctx, rv.alias?.aliasname ?? table.name);
  if (lookup === null) return null;
  const projection = projectionOf(table, q.targetList, rv.alias?.aliasname ?? table.name);
  if (projection === null) return null;
  const pkCol = table.columns[primaryKeyIndex(table)]!;
  let pk: StoredValue;
  try {
    pk = coerce(pkCol, lookup);
  } catch {
    return null; // let DuckDB apply SQL comparison semantics (and errors) to odd literals
  }
  if (pk === null) return rowsResult(ctx, projection.schema, []);
  const [row] = await s.sources.byPks(table, partitionFor(ctx.principal, table), [pk], ctx.tx);
  if (row === null || row === undefined) return rowsResult(ctx, projection.schema, []);
  const full: StoredValue[] = [...row.values, row.seq, row.deleted];
  return rowsResult(ctx, projection.schema, [projection.pick.map((i) => projection.encoders[i]!(full[i]!))]);
}

/** The value of `pk = <constant or param>` (either side), or null. */
export function pkEquality(table: TableDef, where: PgNode, ctx: RunContext, alias: string): StoredValue | string | null {
  const e = where?.A_Expr;
  if (!e || e.kind !== 'AEXPR_OP' || e.name?.length !== 1 || e.name[0].String?.sval !== '=') return null;
  const pkName = table.columns[primaryKeyIndex(table)]!.name;
  const isPk = (n: PgNode): boolean => {
    const f = n?.ColumnRef?.fields;
    if (!f || f.length > 2) return false;
    if (f.length === 2 && f[0].String?.sval !== alias) return false;
    return String(f[f.length - 1].String?.sval).toLowerCase() === pkName;
  };
  const side = isPk(e.lexpr) ? e.rexpr : isPk(e.rexpr) ? e.lexpr : null;
  // Only a literal or a param: anything else (casts, functions) keeps SQL's comparison semantics in DuckDB.
  let value: unknown;
  if (side?.ParamRef) value = param(ctx, side.ParamRef.number);
  else if (side?.A_Const || (side?.A_Expr && side.A_Expr.rexpr?.A_Const)) {
    try {
      value = constantValue(side, 'primary key');
    } catch {
      return null;
    }
  } else return null;
  const scalar = value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value);
  return scalar ? (value as StoredValue) : null;
}

interface Projection {
  readonly schema: SchemaField[];
  readonly pick: number[];
  readonly encoders: ((v: StoredValue) => unknown)[];
}

/** `*` or plain column names (optionally alias-qualified); anything else returns null. */
function projectionOf(table: TableDef, targets: PgNode[], alias: string): Projection | null {
  const names = [...table.columns.map((c) => c.name), SEQ_COLUMN, DELETED_COLUMN];
  const types = [...table.columns, { type: 'BigInt' as const }, { type: 'Boolean' as const }];
  const encoders = types.map((c) => (v: StoredValue) => encodeCell(c, v));
  const pick: number[] = [];
  const labels: string[] = [];
  for (const t of targets) {
    const res = t.ResTarget;
    const fields = res?.val?.ColumnRef?.fields;
    if (!fields || fields.length > 2) return null;
    if (fields.length === 2 && fields[0].String?.sval !== alias) return null;
    const last = fields[fields.length - 1];
    if (last.A_Star) {
      if (res.name !== undefined) return null;
      for (let i = 0; i < names.length; i++) { pick.push(i); labels.push(names[i]!); }
      continue;
    }
    const idx = names.indexOf(String(last.String?.sval).toLowerCase());
    if (idx === -1) {
      throw execError(`Column '${last.String?.sval}' does not exist in table ${table.namespace}.${table.name}`);
    }
    pick.push(idx);
    labels.push(res.name ?? names[idx]!);
  }
  const schema = pick.map((i, index) => ({ name: labels[index]!, data_type: protocolType(types[i] as never), index }));
  return { schema, pick, encoders };
}
