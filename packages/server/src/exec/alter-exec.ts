/**
 * ALTER TABLE (schema evolution): one operation per statement, each a new schema version written
 * with the catalog's `alterTable` (metadata only: rows keep the version they were written with and
 * are mapped by column id when read, see catalog/schema-map.ts). Messages and refusals are
 * upstream's; `ADD COLUMN ... DEFAULT v` gives older rows `v` (PostgreSQL's fast default), and
 * MODIFY only widens.
 */
import { execError, invalidSql } from '../util/errors.js';
import {
  DELETED_COLUMN, SEQ_COLUMN, qualifiedName, type ColumnDef, type ColumnSpec, type SchemaChange, type StoredValue, type TableDef,
  type TableOptions,
} from '../catalog/types.js';
import { requireAdmin } from '../auth/access.js';
import type { OptionValue, Statement } from '../sql/statement.js';
import { typeLabel } from '../sql/values.js';
import { columnDefault } from '../sql/create-table.js';
import { sqlIdent } from '../storage/duck/duck-engine.js';
import { messageResult, type RunContext, type Services, type StatementResult, underDdlLock } from './context.js';
import { resolveTable } from './ddl-exec.js';
import { defaultValue } from './expr-eval.js';
import { formatFlushPolicy, tableOptions } from './table-options.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;
type Op = Of<'alter_table'>['op'];

/** What an operation does: a new definition, or nothing (the no-op message, no version bump). */
type Planned =
  | {
      readonly changed: true; readonly next: TableDef; readonly change: SchemaChange;
      /** A column that must hold no NULL (SET NOT NULL, ADD ... NOT NULL): checked again once the version is in place. */
      readonly notNull?: string;
    }
  | { readonly changed: false; readonly description: string };

const SYSTEM_COLUMNS: ReadonlySet<string> = new Set([SEQ_COLUMN, DELETED_COLUMN]);

export async function alterTable(s: Services, ctx: RunContext, st: Of<'alter_table'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'ALTER TABLE');
  return underDdlLock(s, ctx, async () => {
    const table = resolveTable(s, ctx, st.table);
    const name = qualifiedName(table);
    const planned = await plan(s, ctx, table, st.op);
    if (!planned.changed) {
      return messageResult(ctx, `Table ${name} unchanged: ${planned.description} (version ${table.schemaVersion} - no changes needed)`);
    }
    await s.catalog.alterTable(planned.next, planned.change);
    if (planned.notNull !== undefined) await recheckNotNull(s, table, planned.next, planned.notNull, planned.change);
    return messageResult(ctx, `Table ${name} altered successfully: ${planned.change.description} (version ${planned.next.schemaVersion})`);
  });
}

async function plan(s: Services, ctx: RunContext, table: TableDef, op: Op): Promise<Planned> {
  const bump = (columns: readonly ColumnDef[], change: SchemaChange, extra: Partial<TableDef> = {}): Planned => ({
    changed: true, change, next: { ...table, ...extra, columns, schemaVersion: table.schemaVersion + 1 },
  });
  if (op.op === 'options') return planOptions(table, op.options, op.text, bump);
  if (table.type === 'STREAM') throw execError(`ALTER TABLE cannot change the columns of STREAM table ${qualifiedName(table)} (its options can change)`);
  switch (op.op) {
    case 'add': {
      const spec = op.column;
      const description = `ADD COLUMN ${spec.name} ${typeLabel(spec)}`;
      if (SYSTEM_COLUMNS.has(spec.name)) throw execError(`Cannot add column '${spec.name}': reserved system column name`);
      if (table.columns.some((c) => c.name.toLowerCase() === spec.name.toLowerCase())) {
        if (op.ifNotExists) return { changed: false, description };
        throw execError(`Column '${spec.name}' already exists`);
      }
      if (spec.primaryKey) throw execError(`Cannot add PRIMARY KEY column '${spec.name}': a table's primary key cannot change`);
      const missing = missingValue(s, ctx, spec);
      if (!spec.nullable && missing === null && await hasRows(s, table)) {
        throw execError(`Cannot add NOT NULL column '${spec.name}' without a DEFAULT: ${qualifiedName(table)} already has rows (add a DEFAULT, or add it nullable)`);
      }
      const column: ColumnDef = { ...spec, id: table.nextColumnId, ...(missing !== null ? { missing } : {}) };
      const added = bump([...table.columns, column], { kind: 'add', column: spec.name, description }, { nextColumnId: table.nextColumnId + 1 });
      return !spec.nullable && missing === null ? { ...added, notNull: spec.name } as Planned : added;
    }
    case 'drop': {
      const description = `DROP COLUMN ${op.column}`;
      const column = table.columns.find((c) => c.name === op.column);
      if (column === undefined) {
        if (op.ifExists) return { changed: false, description };
        throw execError(`Column '${op.column}' does not exist`);
      }
      if (column.primaryKey) throw execError(`Cannot drop column '${op.column}': it is the PRIMARY KEY`);
      if (op.restrict) refuseIfSubscribed(s, table, column, description);
      return bump(table.columns.filter((c) => c !== column), { kind: 'drop', column: op.column, description });
    }
    case 'rename': {
      const description = `RENAME COLUMN ${op.column} TO ${op.newName}`;
      const column = existing(table, op.column);
      if (table.columns.some((c) => c !== column && c.name.toLowerCase() === op.newName.toLowerCase())) throw execError(`Column '${op.newName}' already exists`);
      if (column.primaryKey) throw execError(`Cannot rename column '${op.column}': it is the PRIMARY KEY`);
      if (column.name === op.newName) return { changed: false, description };
      if (op.restrict) refuseIfSubscribed(s, table, column, description);
      return bump(table.columns.map((c) => (c === column ? { ...c, name: op.newName } : c)), { kind: 'rename', column: op.column, newName: op.newName, description });
    }
    case 'modify': {
      const spec = op.column;
      const description = `MODIFY COLUMN ${spec.name} ${typeLabel(spec)}`;
      const column = existing(table, spec.name);
      const nullable = op.nullable ?? column.nullable;
      const typeChanged = column.type !== spec.type || (column.type === 'Decimal' && (column.precision !== spec.precision || column.scale !== spec.scale));
      if (!typeChanged && nullable === column.nullable) return { changed: false, description };
      if (column.primaryKey) {
        if (nullable) throw execError(`Column '${column.name}' is a PRIMARY KEY and cannot be nullable`);
        throw execError(`Cannot modify column '${column.name}': it is the PRIMARY KEY (primary key columns cannot change)`);
      }
      if (typeChanged) {
        const refusal = wideningRefusal(column, spec);
        if (refusal !== null) throw execError(`Cannot change column '${column.name}' from ${typeLabel(column)} to ${typeLabel(spec)}: ${refusal}`);
      }
      if (!nullable && column.nullable) await requireNoNulls(s, table, column);
      const next: ColumnDef = { ...column, type: spec.type, precision: spec.precision, scale: spec.scale, nullable };
      if (spec.precision === undefined) {
        delete (next as { precision?: number }).precision;
        delete (next as { scale?: number }).scale;
      }
      const modified = bump(table.columns.map((c) => (c === column ? next : c)), { kind: 'modify', column: column.name, description });
      return !nullable && column.nullable ? { ...modified, notNull: column.name } as Planned : modified;
    }
    case 'set_not_null': case 'drop_not_null': {
      const nullable = op.op === 'drop_not_null';
      const description = `ALTER COLUMN ${op.column} ${nullable ? 'DROP NOT NULL' : 'SET NOT NULL'}`;
      const column = existing(table, op.column);
      if (column.primaryKey && nullable) throw execError(`Column '${op.column}' is a PRIMARY KEY and cannot be nullable`);
      if (column.nullable === nullable) return { changed: false, description };
      if (!nullable) await requireNoNulls(s, table, column);
      const altered = bump(table.columns.map((c) => (c === column ? { ...c, nullable } : c)), { kind: 'alter_column', column: op.column, description });
      return nullable ? altered : { ...altered, notNull: op.column } as Planned;
    }
    case 'set_default': {
      const column = existing(table, op.column);
      const value = columnDefault(column, op.expr);
      const description = `ALTER COLUMN ${op.column} SET DEFAULT ${op.text}`;
      if (sameJson(column.default, value)) return { changed: false, description };
      return bump(table.columns.map((c) => (c === column ? { ...c, default: value } : c)), { kind: 'alter_column', column: op.column, description });
    }
    case 'drop_default': {
      const column = existing(table, op.column);
      const description = `ALTER COLUMN ${op.column} DROP DEFAULT`;
      if (column.default === undefined) return { changed: false, description };
      const { default: _dropped, ...rest } = column;
      return bump(table.columns.map((c) => (c === column ? rest : c)), { kind: 'alter_column', column: op.column, description });
    }
    default: {
      const never: never = op;
      throw invalidSql(`Unsupported ALTER TABLE operation ${String((never as { op: string }).op)}`);
    }
  }
}

/**
 * RESTRICT: the column must not be named by an open live subscription (those would end with
 * SCHEMA_CHANGED); the refusal lists their live ids (system.live) so they can be found and closed.
 */
function refuseIfSubscribed(s: Services, table: TableDef, column: ColumnDef, description: string): void {
  const using = s.live?.subscriptionsUsingColumns(table.id, [column.name]) ?? [];
  if (using.length === 0) return;
  throw execError(`Cannot ${description} RESTRICT on ${qualifiedName(table)}: ${using.length} live subscription(s) use column '${column.name}': `
    + `${using.join(', ')} (close them, or run it without RESTRICT to end them)`);
}

function existing(table: TableDef, name: string): ColumnDef {
  const column = table.columns.find((c) => c.name === name);
  if (column === undefined) throw execError(`Column '${name}' does not exist`);
  return column;
}

/**
 * What rows written before ADD COLUMN read: a literal DEFAULT, NOW() as of the ALTER (as PostgreSQL
 * stores a stable default once), otherwise NULL (per-row functions such as SNOWFLAKE_ID() would need
 * a table rewrite).
 */
function missingValue(s: Services, ctx: RunContext, spec: ColumnSpec): StoredValue {
  const d = spec.default;
  if (d === undefined) return null;
  if (d.kind === 'literal') return d.value;
  if (d.name === 'now') return defaultValue({ ...spec, id: 0 }, { params: [], userId: ctx.principal.userId, seqs: s.seqs, nowMicros: Date.now() * 1000 });
  return null;
}

const WIDER: Readonly<Record<string, readonly string[]>> = {
  SmallInt: ['Int', 'BigInt'],
  Int: ['BigInt'],
  Float: ['Double'],
};

/** Null when `from` → `to` keeps every stored value; otherwise why not. */
function wideningRefusal(from: ColumnDef, to: ColumnSpec): string | null {
  if (from.type === 'Decimal' && to.type === 'Decimal') {
    if ((to.scale ?? 0) !== (from.scale ?? 0)) return 'a DECIMAL keeps its scale (changing it would rescale stored values)';
    if ((to.precision ?? 18) < (from.precision ?? 18)) return 'narrowing a DECIMAL\'s precision could lose data (only widening is allowed)';
    return null;
  }
  if (WIDER[from.type]?.includes(to.type)) return null;
  return 'only widening changes are allowed (SMALLINT → INT → BIGINT, FLOAT → DOUBLE, DECIMAL precision up with the same scale); '
    + (WIDER[to.type]?.includes(from.type) ? 'narrowing could lose data' : 'the types are not compatible');
}

function sameJson(a: unknown, b: unknown): boolean {
  const replacer = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v);
  return JSON.stringify(a, replacer) === JSON.stringify(b, replacer);
}

/** The table's partitions with any rows (hot or cold). */
async function partitions(s: Services, table: TableDef): Promise<string[]> {
  const set = new Set<string>(await s.hot.partitionsWithRows(table.id));
  for (const p of s.cold.partitions(table)) set.add(p);
  if (table.type === 'SHARED') return set.size > 0 ? [''] : [];
  return [...set];
}

/** Counts the live rows of every partition matching `where` (SQL over the mirror's live relation). */
async function countLive(s: Services, table: TableDef, where: string, stopAtFirst: boolean): Promise<number> {
  let total = 0;
  for (const partition of await partitions(s, table)) {
    const lease = await s.mirror.acquire(table, partition);
    try {
      const rows = await s.duck.withConnection(async (conn) =>
        (await conn.run(`SELECT count(*) FROM ${lease.liveName} WHERE ${where}`)).getRows());
      total += Number(rows[0]![0] as bigint);
    } finally {
      lease.release();
    }
    if (stopAtFirst && total > 0) break;
  }
  return total;
}

async function hasRows(s: Services, table: TableDef): Promise<boolean> {
  return (await countLive(s, table, 'TRUE', true)) > 0;
}

async function requireNoNulls(s: Services, table: TableDef, column: ColumnDef): Promise<void> {
  const nulls = await countLive(s, table, `${sqlIdent(column.name)} IS NULL`, false);
  if (nulls > 0) throw execError(`Cannot set column '${column.name}' NOT NULL: ${nulls} row(s) of ${qualifiedName(table)} hold NULL in it`);
}

/**
 * A NOT NULL that was checked before the new version: writes bound to the old version and committed
 * meanwhile could have brought a NULL. From the new version on, such writes are refused (the
 * committer checks every write's version), so once the committer has written what it held, the
 * check is final. A NULL found then is undone with one more version (the old columns back) and the
 * statement fails.
 */
async function recheckNotNull(s: Services, previous: TableDef, next: TableDef, columnName: string, change: SchemaChange): Promise<void> {
  await s.committer.barrier();
  const column = next.columns.find((c) => c.name === columnName)!;
  const nulls = await countLive(s, next, `${sqlIdent(column.name)} IS NULL`, false);
  if (nulls === 0) return;
  await s.catalog.alterTable(
    { ...next, columns: previous.columns, schemaVersion: next.schemaVersion + 1 },
    { kind: change.kind === 'add' ? 'drop' : change.kind, ...(change.column !== undefined ? { column: change.column } : {}), description: `undo ${change.description}` },
  );
  throw execError(`Cannot set column '${column.name}' NOT NULL: ${nulls} row(s) of ${qualifiedName(next)} written concurrently hold NULL in it (the change was undone; retry)`);
}

/** SET TBLPROPERTIES / FLUSH_POLICY / TTL_SECONDS / MAX_BUFFER: the options validated as CREATE TABLE validates them. */
function planOptions(
  table: TableDef, changes: Readonly<Record<string, OptionValue>>, description: string,
  bump: (columns: readonly ColumnDef[], change: SchemaChange, extra?: Partial<TableDef>) => Planned,
): Planned {
  if (Object.keys(changes).length === 0) throw invalidSql('SET TBLPROPERTIES needs at least one property');
  if ('type' in changes) throw execError('A table\'s TYPE cannot change');
  const raw: Record<string, OptionValue> = { ...rawOptions(table.type, table.options), ...changes };
  const options: TableOptions = tableOptions(table.type, raw, (id) => id === table.options.storageId);
  if (options.storageId !== table.options.storageId) throw execError('A table\'s STORAGE_ID cannot change: its flushed segments live in that storage');
  if (sameJson(options, table.options)) return { changed: false, description };
  return bump(table.columns, { kind: 'options', description }, { options });
}

/** A table's options as CREATE TABLE's WITH (...) would give them. */
function rawOptions(type: TableDef['type'], o: TableOptions): Record<string, OptionValue> {
  const raw: Record<string, OptionValue> = { deleted_retention_hours: o.deletedRetentionHours };
  if (type !== 'STREAM' && formatFlushPolicy(o.flushPolicy) !== '') raw.flush_policy = formatFlushPolicy(o.flushPolicy);
  if (o.accessLevel !== null) raw.access_level = o.accessLevel;
  if (o.ttlSeconds !== null) raw.ttl_seconds = o.ttlSeconds;
  if (o.maxBuffer !== null) raw.max_buffer = o.maxBuffer;
  if (type === 'STREAM') raw.ephemeral = o.ephemeral;
  if (o.storageId !== undefined) raw.storage_id = o.storageId;
  return raw;
}
