/** Namespaces and tables: CREATE/DROP, SHOW and DESCRIBE. Changes run under the DDL mutex. */
import { execError, invalidSql } from '../util/errors.js';
import {
  RESERVED_NAMESPACES, DEFAULT_NAMESPACE, isAdminRole, tableTypeName, type TableDef, type TableType,
} from '../catalog/types.js';
import { requireAdmin, requireRead } from '../auth/access.js';
import type { Statement, TableName } from '../sql/statement.js';
import { typeLabel } from '../sql/values.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult, underDdlLock } from './context.js';
import { tableOptions, tableTypeOption } from './table-options.js';
import type { SchemaField } from './duck-cells.js';
import { schemaColumnsJson } from './system-tables.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

export function resolveTable(s: Services, ctx: RunContext, name: TableName): TableDef {
  const namespace = name.namespace ?? ctx.namespace;
  const table = s.catalog.table(namespace, name.name);
  if (table === undefined) throw execError(`Table '${namespace}.${name.name}' does not exist`);
  return table;
}

export async function createNamespace(s: Services, ctx: RunContext, st: Of<'create_namespace'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'CREATE NAMESPACE');
  if (RESERVED_NAMESPACES.has(st.name)) throw invalidSql(`Namespace name '${st.name}' is reserved`);
  return underDdlLock(s, ctx, async () => {
    if (s.catalog.namespace(st.name)) {
      if (st.ifNotExists) return messageResult(ctx, `Namespace '${st.name}' already exists`);
      throw execError(`Namespace '${st.name}' already exists`);
    }
    await s.catalog.putNamespace({ name: st.name, createdAt: Date.now() });
    return messageResult(ctx, `Namespace '${st.name}' created successfully`);
  });
}

export async function dropNamespace(s: Services, ctx: RunContext, st: Of<'drop_namespace'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'DROP NAMESPACE');
  if (st.name === DEFAULT_NAMESPACE || RESERVED_NAMESPACES.has(st.name)) throw execError(`Namespace '${st.name}' cannot be dropped`);
  return underDdlLock(s, ctx, async () => {
    if (!s.catalog.namespace(st.name)) {
      if (st.ifExists) return messageResult(ctx, `Namespace '${st.name}' does not exist`);
      throw execError(`Namespace '${st.name}' does not exist`);
    }
    const tables = s.catalog.tablesIn(st.name);
    if (tables.length > 0 && !st.cascade) {
      throw execError(`Namespace '${st.name}' still holds tables: ${tables.map((t) => t.name).join(', ')}; use DROP NAMESPACE ${st.name} CASCADE`);
    }
    const topics = s.topics.list().filter((t) => t.namespace === st.name);
    if (topics.length > 0 && !st.cascade) {
      throw execError(`Namespace '${st.name}' still holds topics: ${topics.map((t) => t.name).join(', ')}; use DROP NAMESPACE ${st.name} CASCADE`);
    }
    for (const topic of topics) await s.topics.remove(topic.name, true, () => s.committer.barrier());
    for (const table of tables) await dropTableData(s, table);
    await s.catalog.dropNamespace(st.name);
    return messageResult(ctx, `Namespace '${st.name}' dropped successfully`);
  });
}

export function showNamespaces(s: Services, ctx: RunContext): StatementResult {
  const schema: SchemaField[] = [
    { name: 'namespace_id', data_type: 'Text', index: 0 },
    { name: 'table_count', data_type: 'Int', index: 1 },
    { name: 'created_at', data_type: 'Timestamp', index: 2 },
  ];
  const rows = s.catalog.listNamespaces().map((ns) => [ns.name, s.catalog.tablesIn(ns.name).length, ns.createdAt * 1000]);
  return rowsResult(ctx, schema, rows);
}

export function showTables(s: Services, ctx: RunContext, st: Of<'show_tables'>): StatementResult {
  if (st.namespace !== null && !s.catalog.namespace(st.namespace)) throw execError(`Namespace '${st.namespace}' does not exist`);
  const schema: SchemaField[] = [
    { name: 'namespace_id', data_type: 'Text', index: 0 },
    { name: 'table_name', data_type: 'Text', index: 1 },
    { name: 'table_type', data_type: 'Text', index: 2 },
    { name: 'created_at', data_type: 'Timestamp', index: 3 },
  ];
  const rows = s.catalog.tablesIn(st.namespace).map((t) => [t.namespace, t.name, tableTypeName(t.type), t.createdAt * 1000]);
  return rowsResult(ctx, schema, rows);
}

export function describeTable(s: Services, ctx: RunContext, st: Of<'describe_table'>): StatementResult {
  const table = resolveTable(s, ctx, st.table);
  // A table's columns, defaults and history are for those who may read it (as system.columns is).
  requireRead(ctx.principal, table, s.catalog.hasGrant(table.id, ctx.principal));
  if (st.history === true) {
    // Every schema version, oldest first: when, what changed, and the columns it had.
    const schema: SchemaField[] = [
      { name: 'version', data_type: 'Int', index: 0 },
      { name: 'created_at', data_type: 'Timestamp', index: 1 },
      { name: 'change', data_type: 'Text', index: 2 },
      { name: 'columns', data_type: 'Json', index: 3 },
      { name: 'is_latest', data_type: 'Boolean', index: 4 },
    ];
    const rows = s.catalog.tableHistory(table.id).map((v) => [v.version, v.createdAt * 1000, v.change, schemaColumnsJson(v.columns), v.version === table.schemaVersion]);
    return rowsResult(ctx, schema, rows);
  }
  const schema: SchemaField[] = [
    { name: 'column_name', data_type: 'Text', index: 0 },
    { name: 'data_type', data_type: 'Text', index: 1 },
    { name: 'is_nullable', data_type: 'Boolean', index: 2 },
    { name: 'is_primary_key', data_type: 'Boolean', index: 3 },
    { name: 'column_default', data_type: 'Text', index: 4 },
    { name: 'ordinal_position', data_type: 'Int', index: 5 },
  ];
  const rows: unknown[][] = table.columns.map((c, i) => [c.name, typeLabel(c), c.nullable, c.primaryKey, defaultText(c), i + 1]);
  rows.push(['_seq', 'BIGINT', false, false, null, rows.length + 1]);
  if (table.type !== 'STREAM') rows.push(['_deleted', 'BOOLEAN', false, false, null, rows.length + 1]);
  return rowsResult(ctx, schema, rows);
}

export function defaultText(c: TableDef['columns'][number]): string | null {
  if (c.default === undefined) return null;
  if (c.default.kind === 'function') return `${c.default.name.toUpperCase()}()`;
  const v = c.default.value;
  return v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : v instanceof Uint8Array ? `'\\x${Buffer.from(v).toString('hex')}'` : String(v);
}

export async function createTable(s: Services, ctx: RunContext, st: Of<'create_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'CREATE TABLE');
  const namespace = st.table.namespace ?? ctx.namespace;
  if (RESERVED_NAMESPACES.has(namespace)) throw execError(`Cannot create tables in reserved namespace '${namespace}'`);
  const optionType = tableTypeOption(st.options);
  if (st.tableType !== null && optionType !== null && st.tableType !== optionType) {
    throw invalidSql(`Table type given twice and differently: ${st.tableType} TABLE with TYPE = '${optionType}'`);
  }
  const type: TableType = st.tableType ?? optionType ?? (isAdminRole(ctx.principal.role) ? 'SHARED' : 'USER');
  const options = tableOptions(type, st.options, (id) => s.catalog.storage(id) !== undefined);
  const pkCount = st.columns.filter((c) => c.primaryKey).length;
  // Upstream's words (its InvalidOperation: SQL_EXECUTION_ERROR): `User tables require a PRIMARY KEY column`.
  if (type !== 'STREAM' && pkCount === 0) throw execError(`${type === 'USER' ? 'User' : 'Shared'} tables require a PRIMARY KEY column`);
  if (type !== 'STREAM' && pkCount > 1) throw invalidSql('Multiple PRIMARY KEY definitions found');
  const name = `${namespace}.${st.table.name}`;
  return underDdlLock(s, ctx, async () => {
    if (!s.catalog.namespace(namespace)) throw execError(`Namespace '${namespace}' does not exist`);
    if (s.catalog.table(namespace, st.table.name)) {
      if (st.ifNotExists) return messageResult(ctx, `Table '${name}' already exists`);
      throw execError(`Table '${name}' already exists`);
    }
    await s.catalog.createTable({
      namespace, name: st.table.name, type, columns: st.columns, options, createdAt: Date.now(), createdBy: ctx.caller.userId,
    });
    return messageResult(ctx, `Table '${name}' created successfully`);
  });
}

export async function dropTable(s: Services, ctx: RunContext, st: Of<'drop_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'DROP TABLE');
  const namespace = st.table.namespace ?? ctx.namespace;
  const name = `${namespace}.${st.table.name}`;
  return underDdlLock(s, ctx, async () => {
    const table = s.catalog.table(namespace, st.table.name);
    if (table === undefined) {
      if (st.ifExists) return messageResult(ctx, `Table '${name}' does not exist`);
      throw execError(`Table '${name}' does not exist`);
    }
    if (st.tableType !== undefined && st.tableType !== table.type) {
      throw execError(`Table '${name}' is a ${table.type} table, not ${st.tableType}: use DROP TABLE or DROP ${table.type} TABLE`);
    }
    await dropTableData(s, table);
    return messageResult(ctx, `Table '${name}' dropped successfully`);
  });
}

/**
 * Removes a table from the catalog first (so no new statement finds it; its subscriptions end
 * inside that change, see the catalog change bus), then its rows and files.
 */
async function dropTableData(s: Services, table: TableDef): Promise<void> {
  await s.catalog.dropTable(table);
  s.mirror.dropTable(table.id);
  await s.flush.quiesce(table);
  await s.committer.idle();
  await s.hot.dropTableRows(table.id);
  if (table.type !== 'STREAM') s.cold.removeTable(table);
  else s.streams.dropTable(table.id);
}
