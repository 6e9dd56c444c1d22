/**
 * The catalog as relations: system.users, namespaces, tables, columns and table_schemas, built
 * from the in-memory catalog when a query (admins only; checked by the binder) reads them.
 */
import { execError } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import type { JobStore } from '../jobs/job-store.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import type { LiveControl } from './context.js';
import type { AuditLog } from '../auth/audit-log.js';
import type { Principal } from '../auth/access.js';
import { tableTypeName, type ColumnDef, type ColumnType, type StoredValue, type TableDef } from '../catalog/types.js';
import type { Segment } from '../storage/cold/manifest.js';
import { TableUnavailableError } from '../util/errors.js';
import type { SourceColumn } from '../storage/duck/duck-engine.js';
import { typeLabel } from '../sql/values.js';
import { defaultText } from './ddl-exec.js';
import { formatFlushPolicy } from './table-options.js';

export interface SystemRelation {
  readonly columns: readonly SourceColumn[];
  readonly rows: StoredValue[][];
}

const col = (name: string, type: ColumnType): SourceColumn => ({ name, type });
const micros = (ms: number): number => ms * 1000;

export interface SystemSources {
  readonly catalog: Catalog;
  readonly audit: AuditLog;
  readonly jobs: JobStore;
  readonly cold: ColdStore;
  readonly live: LiveControl | null;
}

export function systemRelation(s: SystemSources, name: string, viewer: Principal): SystemRelation {
  const catalog = s.catalog;
  switch (name) {
    case 'audit_log':
      return {
        columns: [col('audit_id', 'Text'), col('timestamp', 'Timestamp'), col('actor', 'Text'), col('effective_user', 'Text'),
          col('action', 'Text'), col('target', 'Text'), col('status', 'Text'), col('client_address', 'Text'), col('details', 'Text')],
        rows: s.audit.list().map((a) => [a.audit_id, micros(a.timestamp), a.actor, a.effective_user, a.action, a.target, a.status, a.client_address, a.details]),
      };
    case 'jobs':
      return {
        columns: [col('job_id', 'Text'), col('job_type', 'Text'), col('status', 'Text'), col('namespace_id', 'Text'),
          col('table_name', 'Text'), col('user_id', 'Text'), col('parameters', 'Json'), col('result', 'Json'),
          col('error_message', 'Text'), col('rows_processed', 'BigInt'), col('created_at', 'Timestamp'),
          col('started_at', 'Timestamp'), col('finished_at', 'Timestamp'), col('node_id', 'Text')],
        rows: s.jobs.list().map((j) => [j.job_id, j.job_type, j.status, j.namespace_id, j.table_name, j.user_id, j.parameters,
          j.result, j.error_message, BigInt(j.rows_processed), micros(j.created_at), j.started_at === null ? null : micros(j.started_at),
          j.finished_at === null ? null : micros(j.finished_at), j.node_id]),
      };
    case 'live':
      return {
        columns: [col('live_id', 'Text'), col('connection_id', 'Text'), col('subscription_id', 'Text'), col('user_id', 'Text'),
          col('namespace_id', 'Text'), col('table_name', 'Text'), col('query', 'Text'), col('options', 'Json'),
          col('created_at', 'Timestamp'), col('last_change_at', 'Timestamp'), col('changes', 'BigInt'), col('node_id', 'Text')],
        rows: (s.live?.liveRows() ?? []).map((l) => [l.live_id, l.connection_id, l.subscription_id, l.user_id, l.namespace_id,
          l.table_name, l.query, l.options, micros(l.created_at), l.last_change_at === null ? null : micros(l.last_change_at),
          BigInt(l.changes), l.node_id]),
      };
    case 'manifest':
      return {
        columns: [col('namespace_id', 'Text'), col('table_name', 'Text'), col('user_id', 'Text'), col('path', 'Text'),
          col('row_count', 'BigInt'), col('size_bytes', 'BigInt'), col('min_seq', 'BigInt'), col('max_seq', 'BigInt'),
          col('schema_version', 'Int'), col('created_at', 'Timestamp'), col('column_stats', 'Json')],
        // A damaged partition has no usable manifest: it is left out here (system.tables says why).
        rows: catalog.tablesIn(null).filter((t) => t.type !== 'STREAM').flatMap((t) =>
          s.cold.partitions(t).flatMap((p) => usableManifest(s.cold, t, p).map((seg) => [
            t.namespace, t.name, p === '' ? null : catalog.account(p)?.userId ?? p, seg.path, BigInt(seg.row_count), BigInt(seg.size_bytes),
            BigInt(seg.min_seq), BigInt(seg.max_seq), seg.schema_version, micros(seg.created_at), JSON.stringify(seg.columns),
          ]))),
      };
    case 'users':
      return {
        columns: [col('user_id', 'Text'), col('username', 'Text'), col('role', 'Text'), col('email', 'Text'),
          col('password_hash', 'Text'), col('created_at', 'Timestamp'), col('updated_at', 'Timestamp'),
          col('deleted_at', 'Timestamp'), col('account_id', 'Text')],
        // The hashes are argon2id; only role system sees them, everyone else reads ***. Dropped accounts
        // stay listed, with deleted_at, until they are purged; account_id names their partition directories.
        rows: catalog.listUsers().map((u) => [u.userId, u.userId, u.role, u.email, viewer.role === 'system' ? u.passwordHash : '***',
          micros(u.createdAt), micros(u.updatedAt), u.deletedAt === null ? null : micros(u.deletedAt), u.id]),
      };
    case 'namespaces':
      return {
        columns: [col('namespace_id', 'Text'), col('name', 'Text'), col('table_count', 'Int'), col('created_at', 'Timestamp')],
        rows: catalog.listNamespaces().map((n) => [n.name, n.name, catalog.tablesIn(n.name).length, micros(n.createdAt)]),
      };
    case 'tables':
      return {
        columns: [col('table_id', 'BigInt'), col('namespace_id', 'Text'), col('table_name', 'Text'), col('table_type', 'Text'),
          col('schema_version', 'Int'), col('access_level', 'Text'), col('flush_policy', 'Text'), col('ttl_seconds', 'BigInt'),
          col('max_buffer', 'BigInt'), col('ephemeral', 'Boolean'), col('deleted_retention_hours', 'Int'),
          col('created_at', 'Timestamp'), col('created_by', 'Text'), col('status', 'Text'), col('unavailable_reason', 'Text')],
        rows: catalog.tablesIn(null).map((t) => [
          BigInt(t.id), t.namespace, t.name, tableTypeName(t.type), t.schemaVersion, t.options.accessLevel,
          t.type === 'STREAM' ? null : formatFlushPolicy(t.options.flushPolicy),
          t.options.ttlSeconds === null ? null : BigInt(t.options.ttlSeconds),
          t.options.maxBuffer === null ? null : BigInt(t.options.maxBuffer),
          t.options.ephemeral, t.options.deletedRetentionHours, micros(t.createdAt), t.createdBy,
          ...availability(s, t),
        ]),
      };
    case 'columns':
      return {
        columns: [col('namespace_id', 'Text'), col('table_name', 'Text'), col('column_name', 'Text'), col('ordinal_position', 'Int'),
          col('data_type', 'Text'), col('is_nullable', 'Boolean'), col('is_primary_key', 'Boolean'), col('column_default', 'Text')],
        rows: catalog.tablesIn(null).flatMap((t) =>
          t.columns.map((c, i) => [t.namespace, t.name, c.name, i + 1, typeLabel(c), c.nullable, c.primaryKey, defaultText(c)])),
      };
    case 'table_schemas':
      return {
        columns: [col('table_id', 'BigInt'), col('namespace_id', 'Text'), col('table_name', 'Text'), col('version', 'Int'),
          col('columns', 'Json'), col('created_at', 'Timestamp')],
        rows: catalog.schemaVersions().flatMap((s) => {
          const t = catalog.tablesIn(null).find((x) => x.id === s.tableId);
          if (t === undefined) return [];
          const cols = s.columns.map((c) => ({ name: c.name, data_type: typeLabel(c), nullable: c.nullable, primary_key: c.primaryKey, default: defaultText(c) }));
          return [[BigInt(s.tableId), t.namespace, t.name, s.version, JSON.stringify(cols), micros(s.createdAt)]];
        }),
      };
    case 'schemas': {
      // One row per schema version (upstream's system.schemas): the columns with their stable ids and what changed.
      const tables = new Map(catalog.tablesIn(null).map((t) => [t.id, t]));
      return {
        columns: [col('table_id', 'BigInt'), col('namespace_id', 'Text'), col('table_name', 'Text'), col('table_type', 'Text'),
          col('version', 'Int'), col('columns', 'Json'), col('change', 'Text'), col('created_at', 'Timestamp'), col('is_latest', 'Boolean')],
        rows: catalog.schemaVersions().flatMap((s) => {
          const t = tables.get(s.tableId);
          if (t === undefined) return [];
          return [[BigInt(s.tableId), t.namespace, t.name, tableTypeName(t.type), s.version, schemaColumnsJson(s.columns), s.change,
            micros(s.createdAt), s.version === t.schemaVersion]];
        }),
      };
    }
    default:
      throw execError(`Table 'system.${name}' does not exist (system tables: users, namespaces, tables, columns, table_schemas, schemas, jobs, manifest, live, audit_log)`);
  }
}

/** A schema version's columns as system.schemas and DESCRIBE TABLE ... HISTORY show them. */
export function schemaColumnsJson(columns: readonly ColumnDef[]): string {
  return JSON.stringify(columns.map((c, i) => ({
    column_id: c.id, name: c.name, ordinal_position: i + 1, data_type: typeLabel(c), nullable: c.nullable, primary_key: c.primaryKey, default: defaultText(c),
  })));
}

/** The partition's segments, or none when it is unavailable (damaged files). */
function usableManifest(cold: ColdStore, table: TableDef, partition: string): readonly Segment[] {
  try {
    return cold.manifest(table, partition).segments;
  } catch (error) {
    if (error instanceof TableUnavailableError) return [];
    throw error;
  }
}

/**
 * system.tables status: 'unavailable' when a partition has a damaged file (found at start-up, by a
 * read or by STORAGE CHECK TABLE), with each damaged partition's file and reason.
 */
function availability(s: SystemSources, table: TableDef): [string, string | null] {
  const damage = s.cold.unavailable(table);
  if (damage.length === 0) return ['available', null];
  const who = (p: string): string => (p === '' ? '' : ` (user ${s.catalog.account(p)?.userId ?? p})`);
  return ['unavailable', damage.map((d) => `${d.file}${who(d.partition)}: ${d.reason}`).join('; ')];
}
