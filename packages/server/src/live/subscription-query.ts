/**
 * A live query's SQL: `SELECT <cols|*> FROM <namespace>.<table> [WHERE ...]`, parsed with
 * PostgreSQL's parser, resolved against the catalog and checked for access. Anything richer
 * (joins, grouping, ordering, limits) is refused: a live query is a filter over one table.
 */
import { ServerError, invalidSql } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import { SEQ_COLUMN, SYSTEM_NAMESPACE, type ColumnDef, type TableDef } from '../catalog/types.js';
import { requireRead, type Principal } from '../auth/access.js';
import { parseStatement, splitUserSql } from '../sql/parser.js';
import { identifier } from '../sql/names.js';
import type { PgNode } from '../sql/statement.js';
import { FILTER_NODES_MAX, compilePredicate, countNodes, type Predicate } from './predicate.js';
import { protocolType } from '../sql/values.js';

/** One column of a subscription's schema, as subscription_ack and schema_changed carry it. */
export interface LiveSchemaField {
  readonly name: string;
  readonly data_type: ReturnType<typeof protocolType>;
  readonly index: number;
  /** "pk" marks the key clients maintain row sets by, "nn" NOT NULL (protocol: optional). */
  readonly flags?: string[];
}

/**
 * A subscription's SQL compiled against one schema version of its table. A subscription is
 * compiled again (once per version and query shape, see recompileSubscription) when its table's
 * columns change; the parse tree is kept so that needs no parsing or access check.
 */
export interface SubscriptionQuery {
  /** The table definition (schema version) this compilation is for. */
  readonly table: TableDef;
  /** Indexes into [...table columns, _seq] of the columns each row message carries (always with _seq). */
  readonly projection: readonly number[];
  /** Canonical projection text (with the schema version): subscriptions with the same one share encoded rows. */
  readonly projectionKey: string;
  /** The row messages' columns, as the ack and schema_changed messages announce them. */
  readonly schema: readonly LiveSchemaField[];
  /** Columns the SQL names itself (select list or WHERE), lower-cased: dropping or renaming one ends the subscription. */
  readonly namedColumns: ReadonlySet<string>;
  /** The select list has `*`: the subscription follows added, dropped and renamed columns. */
  readonly star: boolean;
  readonly predicate: Predicate;
  /** Nodes of the WHERE clause's parse tree: what the subscription is charged for its filter (LiveRegistry). */
  readonly filterNodes: number;
  /** The WHERE clause, for the initial-data query. */
  readonly where: PgNode | undefined;
  readonly sql: string;
  /** The parts of the parse tree a recompilation needs. */
  readonly parsed: ParsedSubscription;
  /** Who it was compiled for (CURRENT_USER() in the filter). */
  readonly userId: string;
}

interface ParsedSubscription {
  readonly targets: PgNode[];
  readonly where: PgNode | undefined;
  readonly alias: string;
}

/** The columns a predicate and a row message see: the table's, then `_seq`. */
export function liveColumns(table: TableDef): Pick<ColumnDef, 'name' | 'type' | 'precision' | 'scale'>[] {
  return [...table.columns, { name: SEQ_COLUMN, type: 'BigInt' }];
}

export function parseSubscription(sql: string, catalog: Catalog, principal: Principal): SubscriptionQuery {
  const statements = splitUserSql(sql);
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
  if (countNodes(q.whereClause) > FILTER_NODES_MAX) {
    throw invalidSql(`A subscription filter may have at most ${FILTER_NODES_MAX} parse-tree nodes (about 3,000 comparisons or 10,000 IN-list items): subscribe with a shorter WHERE clause`);
  }
  return compileSubscription(sql, { targets: q.targetList, where: q.whereClause, alias: rv.alias?.aliasname ?? name }, table, principal.userId);
}

/**
 * The same subscription compiled against another definition of its table (after ALTER TABLE).
 * Throws (INVALID_SQL) when the SQL no longer fits it, e.g. a constant that cannot be compared
 * with a column's new type. Access is not checked here: the change bus re-checks it separately.
 */
export function recompileSubscription(q: SubscriptionQuery, table: TableDef): SubscriptionQuery {
  return compileSubscription(q.sql, q.parsed, table, q.userId);
}

function compileSubscription(sql: string, parsed: ParsedSubscription, table: TableDef, userId: string): SubscriptionQuery {
  const columns = liveColumns(table);
  const { name, namespace } = table;
  // As in SQL: a table given an alias is known by the alias only (the initial data's query says so too).
  const qualifiers = parsed.alias !== name ? [parsed.alias] : [name, `${namespace}.${name}`];
  const { projection, star } = projectionOf(parsed.targets, columns, new Set(qualifiers));
  const predicate = compilePredicate(parsed.where, { columns, qualifiers: new Set(qualifiers), userId });
  const namedColumns = new Set<string>();
  for (const t of parsed.targets) collectColumnNames(t, namedColumns);
  collectColumnNames(parsed.where, namedColumns);
  namedColumns.delete(SEQ_COLUMN);
  return {
    table, projection, projectionKey: `${table.schemaVersion}:${projection.join(',')}`, schema: schemaOf(table, projection),
    namedColumns, star, predicate, filterNodes: countNodes(parsed.where), where: parsed.where, sql, parsed, userId,
  };
}

function schemaOf(table: TableDef, projection: readonly number[]): LiveSchemaField[] {
  const columns = liveColumns(table);
  return projection.map((i, index) => {
    const c = table.columns[i];
    const flags = c === undefined ? ['nn'] : [...(c.primaryKey ? ['pk'] : []), ...(!c.nullable ? ['nn'] : [])];
    return { name: columns[i]!.name, data_type: protocolType(columns[i]!), index, ...(flags.length > 0 ? { flags } : {}) };
  });
}

/** Every column a parse tree refers to by name (the last field of each ColumnRef), lower-cased. */
function collectColumnNames(node: unknown, out: Set<string>): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) collectColumnNames(item, out);
    return;
  }
  const ref = (node as PgNode).ColumnRef;
  if (ref !== undefined) {
    const last = (ref.fields as PgNode[] | undefined)?.at(-1);
    if (last?.String?.sval !== undefined) out.add(String(last.String.sval).toLowerCase());
    return;
  }
  for (const value of Object.values(node)) collectColumnNames(value, out);
}

function projectionOf(targets: PgNode[], columns: readonly Pick<ColumnDef, 'name'>[], qualifiers: ReadonlySet<string>): { projection: number[]; star: boolean } {
  const out: number[] = [];
  let star = false;
  for (const t of targets) {
    const fields: PgNode[] | undefined = t.ResTarget?.val?.ColumnRef?.fields;
    if (!fields || t.ResTarget.name !== undefined) throw invalidSql('A subscription selects plain columns or * (no expressions or aliases)');
    if (fields.length === 2 && !qualifiers.has(String(fields[0].String?.sval))) throw invalidSql('Unknown table qualifier in the select list');
    const last = fields[fields.length - 1];
    if (last.A_Star) {
      star = true;
      for (let i = 0; i < columns.length; i++) if (!out.includes(i)) out.push(i);
      continue;
    }
    const idx = columns.findIndex((c) => c.name === String(last.String?.sval).toLowerCase());
    if (idx === -1) throw invalidSql(`Column '${last.String?.sval}' does not exist`);
    if (!out.includes(idx)) out.push(idx);
  }
  const seq = columns.length - 1;
  if (!out.includes(seq)) out.push(seq);
  return { projection: out, star };
}
