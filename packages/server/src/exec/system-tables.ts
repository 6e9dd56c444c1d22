/**
 * The catalog as relations: system.users, namespaces, tables, columns and table_schemas, built
 * from the in-memory catalog when a query (admins only; checked by the binder) reads them.
 */
import { execError } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import type { JobStore } from '../jobs/job-store.js';
import { resultMessage } from './export-exec.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import type { LiveControl } from './context.js';
import type { AuditLog } from '../auth/audit-log.js';
import type { Principal } from '../auth/access.js';
import { tableStorageId, tableTypeName, type ColumnDef, type ColumnType, type StoredValue, type TableDef } from '../catalog/types.js';
import type { Segment } from '../storage/cold/manifest.js';
import { TableUnavailableError } from '../util/errors.js';
import type { SourceColumn } from '../storage/duck/duck-engine.js';
import { typeLabel } from '../sql/values.js';
import { defaultText } from './ddl-exec.js';
import { formatFlushPolicy } from './table-options.js';
import { STORAGE_COLUMNS, storageRows } from './storage-ddl-exec.js';
import { SECRET_SETTINGS, type Config } from '../config/config.js';
import { SETTING_DOCS } from '../config/setting-docs.js';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { Metrics } from '../util/metrics.js';
import { statsRows } from './system-stats.js';

export interface SystemRelation {
  readonly columns: readonly SourceColumn[];
  readonly rows: StoredValue[][];
  /** Rows read asynchronously (the storage layer, the metrics registry): read instead of `rows` when the relation is queried. */
  readonly load?: () => Promise<StoredValue[][]>;
}

import type { TopicService } from '../topics/topic-service.js';

const col = (name: string, type: ColumnType): SourceColumn => ({ name, type });
const micros = (ms: number): number => ms * 1000;

export interface SystemSources {
  readonly catalog: Catalog;
  readonly audit: AuditLog;
  readonly jobs: JobStore;
  readonly cold: ColdStore;
  readonly live: LiveControl | null;
  /** For system.stats; absent in callers that only need the catalog relations. */
  readonly config?: Config;
  /** For system.topics and system.topic_offsets. */
  readonly topics?: TopicService;
  /** For system.stats: the registry /metrics reads (exec/system-stats.ts). */
  readonly metrics?: Metrics;
  /** For system.table_stats (hot row counts). */
  readonly hot?: HotStore;
}

/** Every relation `SELECT * FROM system.<name>` answers (information_schema.* are reached by their own names). */
export const SYSTEM_TABLE_NAMES = [
  'users', 'namespaces', 'tables', 'columns', 'schemas', 'table_schemas', 'jobs', 'manifest', 'live', 'audit_log', 'stats', 'settings', 'datatypes',
  'topics', 'topic_offsets', 'storages', 'sessions', 'table_stats',
] as const;

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
          col('started_at', 'Timestamp'), col('finished_at', 'Timestamp'), col('node_id', 'Text'), col('message', 'Text'), col('progress', 'Double')],
        rows: s.jobs.list().map((j) => [j.job_id, j.job_type, j.status, j.namespace_id, j.table_name, j.user_id, j.parameters,
          j.result, j.error_message, BigInt(j.rows_processed), micros(j.created_at), j.started_at === null ? null : micros(j.started_at),
          j.finished_at === null ? null : micros(j.finished_at), j.node_id, jobMessage(j), j.progress ?? null]),
      };
    case 'topics':
      return {
        columns: [col('topic_id', 'Text'), col('name', 'Text'), col('alias', 'Text'), col('partitions', 'Int'),
          col('retention_seconds', 'BigInt'), col('retention_max_bytes', 'BigInt'), col('routes', 'Json'),
          col('created_at', 'Timestamp'), col('updated_at', 'Timestamp')],
        rows: (s.topics?.list() ?? []).map((t) => [t.name, t.name, null, t.partitions,
          t.retentionSeconds === undefined ? null : BigInt(t.retentionSeconds), t.retentionMaxBytes === undefined ? null : BigInt(t.retentionMaxBytes),
          JSON.stringify(t.routes.map((r) => ({ table_id: r.table, op: r.op.toUpperCase(), payload_mode: r.payload, filter_expr: r.where }))),
          micros(t.createdAt), micros(t.updatedAt)]),
      };
    case 'topic_offsets':
      return {
        columns: [col('topic_id', 'Text'), col('group_id', 'Text'), col('partition_id', 'Int'), col('last_acked_offset', 'BigInt'),
          col('updated_at', 'Timestamp')],
        rows: (s.topics?.groupOffsets() ?? []).map((o) => [o.topic, o.group, o.partition, BigInt(o.acked), o.updatedAt === null ? null : micros(o.updatedAt)]),
      };
    case 'sessions':
      return {
        columns: [col('session_id', 'Text'), col('user_id', 'Text'), col('role', 'Text'), col('client_address', 'Text'),
          col('connected_at', 'Timestamp'), col('subscriptions', 'Int'), col('node_id', 'Text')],
        rows: (s.live?.sessionRows() ?? []).map((r) => [r.session_id, r.user_id, r.role, r.client_address, micros(r.connected_at), r.subscriptions, r.node_id]),
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
          col('schema_version', 'Int'), col('created_at', 'Timestamp'), col('column_stats', 'Json'), col('manifest_json', 'Json')],
        // A damaged partition has no usable manifest: it is left out here (system.tables says why).
        // manifest_json (upstream's name) is the whole manifest.json of the segment's partition.
        rows: catalog.tablesIn(null).filter((t) => t.type !== 'STREAM').flatMap((t) =>
          s.cold.partitions(t).flatMap((p) => {
            const segments = usableManifest(s.cold, t, p);
            const manifestJson = segments.length === 0 ? null : JSON.stringify(s.cold.manifest(t, p));
            return segments.map((seg) => [
              t.namespace, t.name, p === '' ? null : catalog.account(p)?.userId ?? p, seg.path, BigInt(seg.row_count), BigInt(seg.size_bytes),
              BigInt(seg.min_seq), BigInt(seg.max_seq), seg.schema_version, micros(seg.created_at), JSON.stringify(seg.columns), manifestJson,
            ]);
          })),
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
      // Upstream's catalog view (its columns, in its order: table_id is `ns:table`), one row per schema
      // version, the newest flagged is_latest; plus `version` (= schema_version) and `change`, what the
      // version changed. Each column in `columns` carries its stable id.
      const tables = new Map(catalog.tablesIn(null).map((t) => [t.id, t]));
      return {
        columns: [col('table_id', 'Text'), col('table_name', 'Text'), col('namespace_id', 'Text'), col('table_type', 'Text'),
          col('created_at', 'Timestamp'), col('schema_version', 'Int'), col('columns', 'Json'), col('table_comment', 'Text'),
          col('updated_at', 'Timestamp'), col('options', 'Json'), col('access_level', 'Text'), col('is_latest', 'Boolean'),
          col('storage_id', 'Text'), col('use_user_storage', 'Boolean'), col('version', 'Int'), col('change', 'Text')],
        rows: catalog.schemaVersions().flatMap((v) => {
          const t = tables.get(v.tableId);
          if (t === undefined) return [];
          return [[`${t.namespace}:${t.name}`, t.name, t.namespace, tableTypeName(t.type), micros(t.createdAt), v.version,
            schemaColumnsJson(v.columns), null, micros(v.createdAt), JSON.stringify(tableOptionsJson(t)), t.options.accessLevel,
            v.version === t.schemaVersion, tableStorageId(t), t.type === 'USER' ? false : null, v.version, v.change]];
        }),
      };
    }
    case 'table_stats':
      return {
        columns: [col('namespace_id', 'Text'), col('table_name', 'Text'), col('table_type', 'Text'), col('hot_rows', 'BigInt'),
          col('cold_rows', 'BigInt'), col('segments', 'Int'), col('cold_bytes', 'BigInt')],
        rows: [],
        load: () => tableStats(s),
      };
    case 'stats':
      return { columns: [col('metric_name', 'Text'), col('metric_value', 'Text')], rows: [], load: () => statsRows(s, s.metrics) };
    case 'storages':
      return { columns: STORAGE_COLUMNS.map(([name, type]) => col(name, type)), rows: storageRows(s, viewer) };
    case 'settings':
      return {
        columns: [col('name', 'Text'), col('value', 'Text'), col('description', 'Text'), col('category', 'Text')],
        rows: settings(s.config),
      };
    case 'datatypes':
      return {
        columns: [col('arrow_type', 'Text'), col('kalam_type', 'Text'), col('sql_name', 'Text'), col('description', 'Text')],
        rows: DATATYPES.map((d) => [...d]),
      };
    case 'information_schema.tables':
      return {
        columns: [col('table_catalog', 'Text'), col('table_schema', 'Text'), col('table_name', 'Text'), col('table_type', 'Text')],
        rows: [
          ...catalog.tablesIn(null).map((t) => ['kalam', t.namespace, t.name, 'BASE TABLE']),
          ...SYSTEM_TABLE_NAMES.map((n) => ['kalam', 'system', n, 'VIEW']),
        ],
      };
    case 'information_schema.columns':
      return {
        columns: [col('table_catalog', 'Text'), col('table_schema', 'Text'), col('table_name', 'Text'), col('column_name', 'Text'),
          col('ordinal_position', 'Int'), col('column_default', 'Text'), col('is_nullable', 'Text'), col('data_type', 'Text')],
        rows: [
          ...catalog.tablesIn(null).flatMap((t) => t.columns.map((c, i) =>
            ['kalam', t.namespace, t.name, c.name, i + 1, defaultText(c), c.nullable ? 'YES' : 'NO', typeLabel(c)])),
          ...SYSTEM_TABLE_NAMES.flatMap((n) => systemRelation(s, n, viewer).columns.map((c, i) =>
            ['kalam', 'system', n, c.name, i + 1, null, 'YES', typeLabel({ type: c.type })])),
        ],
      };
    default:
      throw execError(`Table 'system.${name}' does not exist (system tables: ${SYSTEM_TABLE_NAMES.join(', ')}; and information_schema.tables, information_schema.columns)`);
  }
}

/** A schema version's columns as system.schemas and DESCRIBE TABLE ... HISTORY show them. */
/**
 * A schema version's columns as JSON: upstream's keys (column_name, data_type as the Kalam type name,
 * is_nullable, is_primary_key, column_default) with each column's stable id, and the SQL type text.
 */
export function schemaColumnsJson(columns: readonly ColumnDef[]): string {
  return JSON.stringify(columns.map((c, i) => ({
    column_id: c.id, column_name: c.name, name: c.name, ordinal_position: i + 1, data_type: c.type, sql_type: typeLabel(c),
    is_nullable: c.nullable, is_primary_key: c.primaryKey, column_default: defaultText(c),
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

/** system.jobs.message: upstream's one-line outcome of a job (while running: its progress message, if it reports one). */
function jobMessage(j: { job_type: string; status: string; progress_message?: string; namespace_id: string | null; table_name: string | null; rows_processed: number; result: string | null; error_message: string | null }): string | null {
  const table = j.namespace_id !== null && j.table_name !== null ? `${j.namespace_id}.${j.table_name}` : null;
  if (j.status === 'failed') return j.error_message;
  if (j.status === 'cancelled') return j.error_message ?? 'Job cancelled';
  if (j.status !== 'completed') return j.progress_message ?? null;
  switch (j.job_type) {
    case 'flush': {
      let files: unknown = null;
      try { files = (JSON.parse(j.result ?? 'null') as { files?: unknown } | null)?.files; } catch { /* no result */ }
      const count = Array.isArray(files) ? files.length : typeof files === 'number' ? files : 0;
      return `Flushed ${table ?? ''} successfully (${j.rows_processed} rows, ${count} files)`;
    }
    case 'compaction': return `Compaction completed for ${table ?? ''}`;
    case 'repair': return `Repair completed for ${table ?? ''}`;
    case 'stream_eviction': return `Evicted ${j.rows_processed} expired rows from ${table ?? ''}`;
    case 'topic_retention': return `Removed ${j.rows_processed} expired messages from topic ${table ?? ''}`;
    case 'cleanup': return 'Cleanup completed';
    case 'user_export': return resultMessage(j.result);
    case 'backup': case 'restore': return j.progress_message ?? `${j.job_type} completed`;
    default: return `${j.job_type} completed`;
  }
}

/** system.schemas.options: the table's options as JSON, with upstream's key names. */
function tableOptionsJson(t: TableDef): Record<string, unknown> {
  const o = t.options;
  if (t.type === 'STREAM') {
    return { table_type: 'STREAM', ttl_seconds: o.ttlSeconds, max_buffer: o.maxBuffer, ephemeral: o.ephemeral };
  }
  return {
    table_type: t.type, storage_id: tableStorageId(t), ...(t.type === 'USER' ? { use_user_storage: false } : { access_level: o.accessLevel }),
    flush_policy: formatFlushPolicy(o.flushPolicy), deleted_retention_hours: o.deletedRetentionHours,
  };
}

/**
 * Index entries one query of system.table_stats reads at most, over all tables: ~4 µs each measured on
 * a loaded 2-core machine, so about 1 s (decision 0025). Tables past it get hot_rows NULL.
 */
export const TABLE_STATS_SCAN_BUDGET = 250_000;

/**
 * system.table_stats, per USER/SHARED table summed over its partitions: cold_rows, segments and
 * cold_bytes from the manifests (rows in the Parquet segments: tombstones included, and a key's older
 * versions until compaction merges them); hot_rows from the hot tier's index (HotStore.countHotKeys:
 * keys whose newest version is unflushed, tombstones included; NULL once the scan budget is spent).
 */
async function tableStats(s: SystemSources): Promise<StoredValue[][]> {
  let budget = TABLE_STATS_SCAN_BUDGET;
  const rows: StoredValue[][] = [];
  for (const t of s.catalog.tablesIn(null)) {
    if (t.type === 'STREAM') continue;
    let coldRows = 0;
    let segments = 0;
    let coldBytes = 0;
    for (const p of s.cold.partitions(t)) {
      for (const seg of usableManifest(s.cold, t, p)) {
        coldRows += seg.row_count;
        coldBytes += seg.size_bytes;
        segments++;
      }
    }
    const counted = s.hot === undefined || budget <= 0 ? null : await s.hot.countHotKeys(t.id, budget);
    budget = counted === null ? 0 : budget - counted.scanned;
    rows.push([t.namespace, t.name, tableTypeName(t.type), counted === null ? null : BigInt(counted.hot), BigInt(coldRows), segments, BigInt(coldBytes)]);
  }
  return rows;
}

/** system.datatypes: the column types, with the Arrow type they are exchanged as and their SQL name. */
const DATATYPES: ReadonlyArray<readonly [string, string, string, string]> = [
  ['Boolean', 'Boolean', 'BOOLEAN', 'True/false boolean value'],
  ['Int16', 'SmallInt', 'SMALLINT', '16-bit signed integer'],
  ['Int32', 'Int', 'INT', '32-bit signed integer'],
  ['Int64', 'BigInt', 'BIGINT', '64-bit signed integer'],
  ['Float32', 'Float', 'FLOAT', '32-bit floating point'],
  ['Float64', 'Double', 'DOUBLE', '64-bit floating point'],
  ['Utf8', 'Text', 'TEXT', 'Variable-length UTF-8 string'],
  ['Timestamp(Microsecond, None)', 'Timestamp', 'TIMESTAMP', 'Timestamp with microsecond precision'],
  ['Date32', 'Date', 'DATE', 'Date (days since epoch)'],
  ['Time64(Microsecond)', 'Time', 'TIME', 'Time of day with microsecond precision'],
  ['Utf8', 'Json', 'JSON', 'JSON document stored as text'],
  ['Binary', 'Bytes', 'BYTES', 'Variable-length binary data'],
  ['FixedSizeBinary(16)', 'Uuid', 'UUID', 'UUID (128-bit)'],
  ['Decimal128(p, s)', 'Decimal', 'DECIMAL(p,s)', 'Fixed-point decimal, precision 1-38'],
];


/** system.settings: the effective configuration by its config-file (snake_case) names; secrets are masked. */
function settings(config: Config | undefined): StoredValue[][] {
  if (config === undefined) return [];
  return Object.entries(config).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => {
    const name = key.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
    const shown = SECRET_SETTINGS.has(key as keyof Config) ? (value === null ? null : '***') : value === null ? null : String(value);
    const doc = SETTING_DOCS[key as keyof Config] as (typeof SETTING_DOCS)[keyof Config] | undefined;
    return [name, shown, doc?.description ?? null, doc?.category ?? null];
  });
}
