/**
 * Binds a query's parse tree to the catalog before DuckDB sees it. Every relation reference is
 * resolved (default namespace, CTE names), access-checked, and replaced by the temp table that will
 * hold exactly the rows the caller may see; so isolation does not depend on a WHERE clause. Table
 * functions and file/catalog functions are refused on the parse tree, not by string matching.
 */
import { denied, execError, invalidSql } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import { DELETED_COLUMN, SYSTEM_NAMESPACE, type TableDef } from '../catalog/types.js';
import { requireRead, requireSystemTableAccess, type Principal } from '../auth/access.js';
import type { PgNode } from '../sql/statement.js';
import { identifier } from '../sql/names.js';

export type BoundSource =
  | { readonly kind: 'table'; readonly table: TableDef; readonly tempName: string }
  | { readonly kind: 'system'; readonly name: string; readonly tempName: string };

export interface BoundQuery {
  /** A rewritten copy of the input tree; the input is never mutated. */
  readonly ast: PgNode;
  readonly sources: readonly BoundSource[];
  /** The query filters on `_deleted` (WHERE, JOIN ... ON, HAVING), so tombstones stay visible to it. */
  readonly includeDeleted: boolean;
}

export interface BindContext {
  readonly catalog: Catalog;
  readonly principal: Principal;
  readonly namespace: string;
  readonly tempName: () => string;
}

const ALLOWED_TABLE_FUNCTIONS: ReadonlySet<string> = new Set(['generate_series', 'range', 'unnest']);
const DENIED_FUNCTION =
  /^(read_|duckdb_|pragma|parquet_|sniff_|glob$|current_setting$|set_config$|query$|query_table$|getvariable$|setvariable$|set_variable$|load$|install$|checkpoint|export_|import_|iceberg|delta_|sqlite_|postgres_|mysql_|json_execute_serialized_sql$|from_substrait|to_substrait|test_|enable_|disable_|pg_read|pg_ls|lo_|dblink|current_database$|current_schema|current_catalog|version$)/;
/** Clauses that filter rows: mentioning `_deleted` there makes tombstones visible to the query. */
const FILTER_KEYS: ReadonlySet<string> = new Set(['whereClause', 'quals', 'havingClause']);
const USER_FUNCTIONS = new Set(['SVFOP_CURRENT_USER', 'SVFOP_USER', 'SVFOP_SESSION_USER', 'SVFOP_CURRENT_ROLE']);

export function bindQuery(input: PgNode, ctx: BindContext): BoundQuery {
  const ast = structuredClone(input);
  const sources: BoundSource[] = [];
  const byQualified = new Map<string, string>();
  let includeDeleted = false;
  let inFilter = false;

  const bindRangeVar = (rv: PgNode, ctes: ReadonlySet<string>): void => {
    if (rv.catalogname !== undefined) throw invalidSql('Catalog-qualified table names are not supported');
    const rawName = String(rv.relname);
    // Only a CTE in scope at this point may stay unbound; anything else is a catalog table.
    if (rv.schemaname === undefined && ctes.has(rawName)) return;
    const namespace = rv.schemaname !== undefined ? identifier(rv.schemaname, 'namespace name') : ctx.namespace;
    const name = identifier(rawName, 'table name');
    const tempName = ctx.tempName();
    if (namespace === SYSTEM_NAMESPACE) {
      requireSystemTableAccess(ctx.principal, name);
      sources.push({ kind: 'system', name, tempName });
    } else {
      const table = ctx.catalog.table(namespace, name);
      if (table === undefined) throw execError(`Table '${namespace}.${name}' does not exist`);
      requireRead(ctx.principal, table, ctx.catalog.hasGrant(table.id, ctx.principal));
      sources.push({ kind: 'table', table, tempName });
    }
    byQualified.set(`${namespace}.${name}`, rv.alias?.aliasname ?? name);
    if (rv.alias === undefined) rv.alias = { aliasname: name };
    delete rv.schemaname;
    rv.relname = tempName;
  };

  const visitKeys = (node: PgNode, ctes: ReadonlySet<string>, skip?: string): void => {
    for (const key in node) {
      if (key === skip) continue;
      const outer = inFilter;
      if (FILTER_KEYS.has(key)) inFilter = true;
      node[key] = key === 'SelectStmt' ? visitSelect(node[key], ctes) : visit(node[key], ctes);
      inFilter = outer;
    }
  };

  /** A SELECT's WITH list scopes its names: a CTE body sees only the CTEs before it (all of them if RECURSIVE). */
  const visitSelect = (select: PgNode, scope: ReadonlySet<string>): PgNode => {
    if (select.intoClause) throw invalidSql('SELECT ... INTO is not supported');
    let inner = scope;
    if (select.withClause) {
      const ctes: PgNode[] = select.withClause.ctes ?? [];
      const names = ctes.map((c) => String(c.CommonTableExpr.ctename));
      if (select.withClause.recursive) {
        inner = new Set([...scope, ...names]);
        for (const c of ctes) c.CommonTableExpr.ctequery = visit(c.CommonTableExpr.ctequery, inner);
      } else {
        let visible = new Set(scope);
        ctes.forEach((c, i) => {
          c.CommonTableExpr.ctequery = visit(c.CommonTableExpr.ctequery, visible);
          visible = new Set([...visible, names[i]!]);
        });
        inner = visible;
      }
    }
    visitKeys(select, inner, 'withClause');
    return select;
  };

  const visit = (node: PgNode, ctes: ReadonlySet<string>): PgNode => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) node[i] = visit(node[i], ctes);
      return node;
    }
    if (node === null || typeof node !== 'object') return node;
    if (node.SQLValueFunction && USER_FUNCTIONS.has(node.SQLValueFunction.op)) {
      return { A_Const: { sval: { sval: ctx.principal.userId }, location: node.SQLValueFunction.location ?? -1 } };
    }
    const likeEscape = likeEscapeCall(node);
    if (likeEscape !== null) return visit(likeEscape, ctes);
    if (node.RangeVar) bindRangeVar(node.RangeVar, ctes);
    if (node.RangeFunction) checkRangeFunction(node.RangeFunction);
    if (node.FuncCall) checkFunction(node.FuncCall);
    if (node.ColumnRef && inFilter) {
      const fields: PgNode[] = node.ColumnRef.fields;
      const last = fields[fields.length - 1];
      if (last?.String?.sval === DELETED_COLUMN) includeDeleted = true;
    }
    visitKeys(node, ctes);
    return node;
  };
  if (ast.SelectStmt) visit(ast, new Set());
  else visitSelect(ast, new Set());
  rewriteQualifiedColumns(ast, byQualified);
  nameFunctionColumns(ast.SelectStmt ?? ast);
  return { ast, sources, includeDeleted };
}

/**
 * `x LIKE p ESCAPE e` parses as LIKE over pg_catalog.like_escape(p, e), which DuckDB lacks; its
 * equivalent is like_escape(x, p, e) (ilike_escape for ILIKE), negated for NOT LIKE.
 */
function likeEscapeCall(node: PgNode): PgNode | null {
  const e = node.A_Expr;
  if (!e || (e.kind !== 'AEXPR_LIKE' && e.kind !== 'AEXPR_ILIKE')) return null;
  const parts: string[] | undefined = e.rexpr?.FuncCall?.funcname?.map((n: PgNode) => n.String?.sval);
  if (parts?.join('.') !== 'pg_catalog.like_escape') return null;
  const name = e.kind === 'AEXPR_ILIKE' ? 'ilike_escape' : 'like_escape';
  const call = { FuncCall: { funcname: [{ String: { sval: name } }], args: [e.lexpr, ...e.rexpr.FuncCall.args], funcformat: 'COERCE_EXPLICIT_CALL' } };
  const negated = String(e.name?.[0]?.String?.sval ?? '').startsWith('!');
  return negated ? { BoolExpr: { boolop: 'NOT_EXPR', args: [call] } } : call;
}

function checkRangeFunction(rf: PgNode): void {
  for (const item of rf.functions ?? []) {
    const call = item?.List?.items?.[0]?.FuncCall ?? item?.[0]?.FuncCall;
    const name = call ? functionName(call) : '';
    if (!ALLOWED_TABLE_FUNCTIONS.has(name)) {
      throw denied(`Permission denied: table function '${name || 'unknown'}' is not available (allowed: ${[...ALLOWED_TABLE_FUNCTIONS].join(', ')})`);
    }
  }
}

function checkFunction(call: PgNode): void {
  const parts: string[] = call.funcname.map((n: PgNode) => String(n.String?.sval ?? ''));
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) {
    throw denied(`Permission denied: schema-qualified function '${parts.join('.')}' is not available`);
  }
  const name = parts[parts.length - 1]!.toLowerCase();
  if (DENIED_FUNCTION.test(name)) throw denied(`Permission denied: function '${name}' is not available`);
}

function functionName(call: PgNode): string {
  const parts: string[] = call.funcname.map((n: PgNode) => String(n.String?.sval ?? ''));
  return parts.join('.').toLowerCase();
}

/** `ns.table.col` references become `alias.col` once the table is a temp relation. */
function rewriteQualifiedColumns(node: PgNode, byQualified: ReadonlyMap<string, string>): void {
  if (Array.isArray(node)) { for (const n of node) rewriteQualifiedColumns(n, byQualified); return; }
  if (node === null || typeof node !== 'object') return;
  if (node.ColumnRef && node.ColumnRef.fields.length === 3) {
    const [ns, table, col] = node.ColumnRef.fields;
    const alias = byQualified.get(`${ns.String?.sval}.${table.String?.sval}`);
    if (alias !== undefined) node.ColumnRef.fields = [{ String: { sval: alias } }, col];
  }
  for (const key in node) rewriteQualifiedColumns(node[key], byQualified);
}

/** Unnamed function results are named after the function, as PostgreSQL does (`count`, not `count_star()`). */
function nameFunctionColumns(select: PgNode): void {
  for (const target of select.targetList ?? []) {
    const res = target.ResTarget;
    if (res && res.name === undefined && res.val?.FuncCall) {
      const parts = res.val.FuncCall.funcname;
      res.name = String(parts[parts.length - 1].String?.sval ?? '?column?');
    }
  }
}
