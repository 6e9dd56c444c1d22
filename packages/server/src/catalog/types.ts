/**
 * Catalog data model: namespaces, tables with every schema version, users. Plain frozen data that
 * is persisted as JSON in the hot store's catalog keyspace and cached in memory.
 */

export const COLUMN_TYPES = [
  'Boolean', 'SmallInt', 'Int', 'BigInt', 'Float', 'Double', 'Text',
  'Timestamp', 'Date', 'Time', 'Json', 'Bytes', 'Uuid', 'Decimal',
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export type DefaultFunction = 'snowflake_id' | 'uuid_v7' | 'ulid' | 'now' | 'current_user';

export type ColumnDefault =
  | { readonly kind: 'function'; readonly name: DefaultFunction }
  | { readonly kind: 'literal'; readonly value: StoredValue };

/** A column as CREATE TABLE / ALTER TABLE ADD spell it, before the catalog gives it an id. */
export interface ColumnSpec {
  readonly name: string;
  readonly type: ColumnType;
  /** DECIMAL only. */
  readonly precision?: number;
  readonly scale?: number;
  readonly nullable: boolean;
  readonly primaryKey: boolean;
  readonly default?: ColumnDefault;
  /**
   * What rows written before this column existed read (ADD COLUMN ... DEFAULT v: PostgreSQL's "fast
   * default", fixed when the column was added; later SET/DROP DEFAULT do not change it). Absent: NULL.
   */
  readonly missing?: StoredValue;
}

export interface ColumnDef extends ColumnSpec {
  /**
   * Stable for the life of the table and never reused (not even after DROP COLUMN): rows of older
   * schema versions and Parquet segments (field ids) are mapped to the current schema by it.
   */
  readonly id: number;
}

export type TableType = 'USER' | 'SHARED' | 'STREAM';
export type AccessLevel = 'PUBLIC' | 'PRIVATE' | 'RESTRICTED' | 'DBA';

export interface FlushPolicy {
  readonly rows: number | null;
  readonly intervalSeconds: number | null;
}

export interface TableOptions {
  readonly flushPolicy: FlushPolicy;
  readonly accessLevel: AccessLevel | null;
  readonly ttlSeconds: number | null;
  readonly maxBuffer: number | null;
  readonly ephemeral: boolean;
  readonly deletedRetentionHours: number;
  /** The storage holding the table's cold tier (system.storages); absent means 'local'. */
  readonly storageId?: string;
}

export type StorageType = 'filesystem' | 's3';

/** A registered storage (system.storages): where the cold tier of the tables using it lives. */
export interface StorageDef {
  readonly storageId: string;
  readonly storageName: string;
  readonly description: string | null;
  readonly storageType: StorageType;
  /** A filesystem path (absolute) or `s3://bucket[/prefix]`. */
  readonly baseDirectory: string;
  /** CREDENTIALS '{json}' (secrets: shown to the system role only). */
  readonly credentials: Readonly<Record<string, unknown>> | null;
  /** CONFIG '{json}' (S3: region, endpoint, allow_http, access_key_id, secret_access_key, session_token). */
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly sharedTablesTemplate: string;
  readonly userTablesTemplate: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** The built-in storage every table uses unless it names another. */
export const LOCAL_STORAGE_ID = 'local';

export function tableStorageId(table: TableDef): string {
  return table.options.storageId ?? LOCAL_STORAGE_ID;
}

export interface TableDef {
  /** Unique for the life of the database: a dropped and re-created table never sees old rows. */
  readonly id: number;
  readonly namespace: string;
  readonly name: string;
  readonly type: TableType;
  readonly schemaVersion: number;
  readonly columns: readonly ColumnDef[];
  /** The id the next added column gets (ids are never reused). */
  readonly nextColumnId: number;
  readonly options: TableOptions;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface TableSchemaVersion {
  readonly tableId: number;
  readonly version: number;
  readonly columns: readonly ColumnDef[];
  readonly createdAt: number;
  /** What made this version: `CREATE TABLE`, `ADD COLUMN c INT`, ... (upstream's change description). */
  readonly change: string;
}

/** The structured description of an ALTER TABLE that wrote a new schema version. */
export interface SchemaChange {
  readonly kind: 'add' | 'drop' | 'rename' | 'modify' | 'alter_column' | 'options';
  /** The column the change is about (its name before the change). */
  readonly column?: string;
  /** RENAME COLUMN: the new name. */
  readonly newName?: string;
  /** Upstream's text: `ADD COLUMN c INT`, `RENAME COLUMN a TO b`, `SET TBLPROPERTIES (...)`. */
  readonly description: string;
}

export interface NamespaceDef {
  readonly name: string;
  readonly createdAt: number;
}

export const ROLES = ['user', 'service', 'dba', 'system'] as const;
export type Role = (typeof ROLES)[number];

export interface UserDef {
  /**
   * The account's immutable id: partitions (hot keys, cold directories, stream buffers) and grants are
   * keyed by it, so a dropped name created again starts empty. `@<snowflake>` for accounts created by
   * this version, the user name for accounts migrated from data dirs that predate ids (their existing
   * partition key). Never reused. Shown only where operators need it (system.users.account_id, the
   * JWT `uid` claim, directory names); everything else shows the name.
   */
  readonly id: string;
  /** The login name: what SQL and the protocol call the user id (`as_user`, `CURRENT_USER()`, JWT `sub`). */
  readonly userId: string;
  readonly role: Role;
  readonly passwordHash: string;
  readonly email: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Bumped when the password or role changes; tokens issued for an older generation stop working. */
  readonly tokenGeneration: number;
  /**
   * Set by DROP USER (Unix ms): the account can no longer log in, its name is free, and its partitions
   * are purged once the grace period has passed. Null for live accounts.
   */
  readonly deletedAt: number | null;
}

/**
 * Account ids of this version: `@` and a decimal snowflake. User names never start with `@`, so an id
 * can never equal a name, and a migrated account (id = name) can never collide with a new one.
 */
export const ACCOUNT_ID_PATTERN = /^@[0-9]{1,20}$/;

export function accountIdOf(snowflake: bigint): string {
  return `@${snowflake}`;
}

/**
 * How a cell is held in memory and in RocksDB: BigInt columns as bigint, DECIMAL as its unscaled
 * bigint, TIMESTAMP/TIME as integer microseconds, DATE as days, BYTES as Uint8Array, the rest as is.
 */
export type StoredValue = null | boolean | number | bigint | string | Uint8Array;

export const SYSTEM_NAMESPACE = 'system';
export const DEFAULT_NAMESPACE = 'default';
export const RESERVED_NAMESPACES: ReadonlySet<string> = new Set(['system', 'information_schema', 'pg_catalog', 'main', 'temp']);

export const SEQ_COLUMN = '_seq';
export const DELETED_COLUMN = '_deleted';

/**
 * The in-memory id of one partition of a table (flush counters, mirrors, subscriptions, streams).
 * One function, because the hot store's start-up counts are matched to the flush policy's by it.
 */
export function partitionId(tableId: number, partition: string): string {
  return `${tableId}\u0000${partition}`;
}

/** The prefix of every partitionId of a table. */
export function tablePartitionPrefix(tableId: number): string {
  return `${tableId}\u0000`;
}

export function primaryKeyIndex(table: Pick<TableDef, 'columns'>): number {
  return table.columns.findIndex((c) => c.primaryKey);
}

export function qualifiedName(table: Pick<TableDef, 'namespace' | 'name'>): string {
  return `${table.namespace}.${table.name}`;
}

/** A table type as the wire spells it in `table_type` (upstream KalamDB: `user`, `shared`, `stream`, `system`). */
export function tableTypeName(type: TableDef['type']): string {
  return type.toLowerCase();
}

export function isAdminRole(role: Role): boolean {
  return role === 'dba' || role === 'system';
}
