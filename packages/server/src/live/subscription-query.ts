/**
 * A live query's SQL: `SELECT <cols|*> FROM <namespace>.<table> [WHERE ...]`, parsed with
 * PostgreSQL's parser, resolved against the catalog and checked for access. Anything richer
 * (joins, grouping, ordering, limits) is refused: a live query is a filter over one table.
 */
import { ServerError, invalidSql } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import { SEQ_COLUMN, SYSTEM_NAMESPACE, type ColumnDef, type TableDef } from '../catalog/types.js';
import { requireRead, type Principal } from '../auth/access.js';
import { splitStatements } from '../sql/lexer.js';
import { parseStatement } from '../sql/parser.js';
import { identifier } from '../sql/names.js';
import type { PgNode } from '../sql/statement.js';
import { compilePredicate, type Predicate } from './predicate.js';

export interface SubscriptionQuery {
  readonly table: TableDef;
  /** Indexes into [...table columns, _seq] of the columns each row message carries (always with _seq). */
  readonly projection: readonly number[];
  /** Canonical projection text: subscriptions with the same one share encoded rows. */
  readonly projectionKey: string;
  readonly predicate: Predicate;
  /** The WHERE clause, for the initial-data query. */
  readonly where: PgNode | undefined;
  readonly sql: string;
}

/** The columns a predicate and a row message see: the table's, then `_seq`. */
export function liveColumns(table: TableDef): Pick<ColumnDef, 'name' | 'type' | 'precision' | 'scale'>[] {
  return [...table.columns, { name: SEQ_COLUMN, type: 'BigInt' }];
}

export function parseSubscription(sql: string, catalog: Catalog, principal: Principal): SubscriptionQuery {
  const statements = splitStatements(sql);
  if (statements.length !== 1) throw invalidSql('A subscription needs exactly one SELECT statement');
  const st = parseStatement(statements[0]!);
  if (st.kind !== 'select') throw invalidSql('A subscription must be a SELECT statement');
  const q: PgNode = st.ast;
  if (q.withClause || q.groupClause || q.havingClause || q.sortClause || q.limitCount || q.limitOffset || q.distinctClause
    || q.windowClause || q.valuesLists || (q.op && q.op !== 'SETOP_NONE') || q.intoClause || q.lockingClause) {
    throw new ServerError('INVALID_SQL', 'A subscription is SELECT <columns|*> FROM <namespace>.<table> [WHERE ...]: no WITH, GROUP BY, ORDER BY, LIMIT, DISTINCT or set operations');
  }
  if (q.fromClause?.length !== 1 || !q.fromClause[0].RangeVar) throw invalidSql('A subscription reads exactly one table (no joins or subqueries in FROM)');
  const rv = q.fromClause[0].RangeVar;
  if (rv.schemaname === undefined) throw invalidSql(`Qualify the table with its namespace: <namespace>.${rv.relname}`);
  const namespace = identifier(rv.schemaname, 'namespace name');
  const name = identifier(rv.relname, 'table name');
  if (namespace === SYSTEM_NAMESPACE) {
    throw new ServerError(principal.role === 'dba' || principal.role === 'system' ? 'INVALID_SQL' : 'PERMISSION_DENIED', 'System tables cannot be subscribed to');
  }
  const table = catalog.table(namespace, name);
  if (table === undefined) throw new ServerError('NOT_FOUND', `Table '${namespace}.${name}' does not exist`);
  requireRead(principal, table, catalog.hasGrant(table.id, principal));
  const columns = liveColumns(table);
  const alias = rv.alias?.aliasname ?? name;
  const projection = projectionOf(q.targetList, columns, new Set([alias, name]));
  const predicate = compilePredicate(q.whereClause, { columns, qualifiers: new Set([alias, name, `${namespace}.${name}`]), userId: principal.userId });
  return { table, projection, projectionKey: projection.join(','), predicate, where: q.whereClause, sql };
}

function projectionOf(targets: PgNode[], columns: readonly Pick<ColumnDef, 'name'>[], qualifiers: ReadonlySet<string>): number[] {
  const out: number[] = [];
  for (const t of targets) {
    const fields: PgNode[] | undefined = t.ResTarget?.val?.ColumnRef?.fields;
    if (!fields || t.ResTarget.name !== undefined) throw invalidSql('A subscription selects plain columns or * (no expressions or aliases)');
    if (fields.length === 2 && !qualifiers.has(String(fields[0].String?.sval))) throw invalidSql('Unknown table qualifier in the select list');
    const last = fields[fields.length - 1];
    if (last.A_Star) {
      for (let i = 0; i < columns.length; i++) if (!out.includes(i)) out.push(i);
      continue;
    }
    const idx = columns.findIndex((c) => c.name === String(last.String?.sval).toLowerCase());
    if (idx === -1) throw invalidSql(`Column '${last.String?.sval}' does not exist`);
    if (!out.includes(idx)) out.push(idx);
  }
  const seq = columns.length - 1;
  if (!out.includes(seq)) out.push(seq);
  return out;
}
