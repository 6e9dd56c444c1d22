/**
 * Parsed statements: a discriminated union with one kind per statement the server runs.
 * Dialect statements are fully parsed here; SQL statements keep PostgreSQL's parse tree (`ast`),
 * which the executor binds against the catalog.
 */
import type { DeleteStmt, InsertStmt, SelectStmt, UpdateStmt } from '@pgsql/types';
import type { ColumnSpec, Role, TableType } from '../catalog/types.js';
import type { InputValue } from './values.js';

/** An untyped node of libpg-query's JSON parse tree. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PgNode = any;

export interface TableName {
  readonly namespace: string | null;
  readonly name: string;
}

export type OptionValue = string | number | boolean;

/** CREATE STORAGE's clauses as written (JSON and templates are validated by the executor). */
export interface CreateStorageSpec {
  readonly storageId: string;
  readonly storageType: 'filesystem' | 's3';
  readonly storageName: string | null;
  readonly description: string | null;
  /** PATH / BASE_DIRECTORY, or `s3://` + BUCKET. */
  readonly baseDirectory: string;
  readonly region: string | null;
  readonly credentials: string | null;
  readonly config: string | null;
  readonly sharedTablesTemplate: string | null;
  readonly userTablesTemplate: string | null;
}

/** ALTER STORAGE ... SET clauses given (absent ones are unchanged). */
export interface AlterStorageSpec {
  readonly storageName?: string;
  readonly description?: string;
  readonly sharedTablesTemplate?: string;
  readonly userTablesTemplate?: string;
  readonly config?: string;
  readonly credentials?: string;
}

export type Statement =
  | { readonly kind: 'create_namespace'; readonly name: string; readonly ifNotExists: boolean }
  | { readonly kind: 'drop_namespace'; readonly name: string; readonly ifExists: boolean; readonly cascade: boolean }
  | { readonly kind: 'show_namespaces' }
  | { readonly kind: 'use_namespace'; readonly name: string }
  | { readonly kind: 'show_tables'; readonly namespace: string | null }
  | { readonly kind: 'describe_table'; readonly table: TableName; readonly history?: boolean }
  | {
      readonly kind: 'create_table';
      readonly table: TableName;
      readonly ifNotExists: boolean;
      readonly tableType: TableType | null;
      readonly columns: readonly ColumnSpec[];
      readonly options: Readonly<Record<string, OptionValue>>;
    }
  | { readonly kind: 'drop_table'; readonly table: TableName; readonly ifExists: boolean; readonly tableType?: TableType }
  | { readonly kind: 'create_user'; readonly userId: string; readonly password: string; readonly role: Role; readonly email: string | null }
  | {
      readonly kind: 'alter_user';
      readonly userId: string;
      readonly field: 'password' | 'role' | 'email';
      readonly value: string;
      /** SET PASSWORD '…' OLD PASSWORD '…': required when users change their own password. */
      readonly oldPassword?: string;
    }
  | { readonly kind: 'drop_user'; readonly userId: string; readonly ifExists: boolean }
  | { readonly kind: 'execute_as'; readonly userId: string; readonly inner: Statement }
  | { readonly kind: 'flush_table'; readonly table: TableName }
  | ({ readonly kind: 'create_storage' } & CreateStorageSpec)
  | { readonly kind: 'alter_storage'; readonly storageId: string; readonly changes: AlterStorageSpec }
  | { readonly kind: 'drop_storage'; readonly storageId: string; readonly ifExists: boolean }
  | { readonly kind: 'show_storages' }
  | { readonly kind: 'check_storage'; readonly storageId: string; readonly extended: boolean }
  | { readonly kind: 'flush_all'; readonly namespace: string | null }
  | { readonly kind: 'compact_table'; readonly table: TableName }
  | { readonly kind: 'compact_all'; readonly namespace: string | null }
  | { readonly kind: 'check_table'; readonly table: TableName }
  | { readonly kind: 'repair_table'; readonly table: TableName }
  | { readonly kind: 'kill_job'; readonly jobId: string }
  | { readonly kind: 'backup_database'; readonly path: string }
  | { readonly kind: 'restore_database'; readonly path: string }
  | { readonly kind: 'show_backup'; readonly path: string }
  | { readonly kind: 'kill_live'; readonly liveId: string }
  | { readonly kind: 'grant' | 'revoke'; readonly table: TableName; readonly userId: string }
  | { readonly kind: 'alter_table_access'; readonly table: TableName; readonly accessLevel: string }
  | { readonly kind: 'alter_table'; readonly table: TableName; readonly op: AlterTableOp }
  | { readonly kind: 'subscribe'; readonly table: TableName; readonly where: string | null; readonly options: Readonly<Record<string, OptionValue>> }
  | {
      readonly kind: 'create_topic';
      readonly topic: TableName;
      readonly partitions: number | null;
      readonly ifNotExists: boolean;
      /** WITH (retention_seconds = n, retention_max_bytes = n): ours, upstream has only its defaults. */
      readonly retentionSeconds: number | null;
      readonly retentionMaxBytes: number | null;
    }
  | { readonly kind: 'drop_topic'; readonly topic: TableName; readonly ifExists: boolean }
  | { readonly kind: 'clear_topic'; readonly topic: TableName }
  | {
      readonly kind: 'alter_topic_add_source';
      readonly topic: TableName;
      readonly table: TableName;
      readonly op: 'insert' | 'update' | 'delete';
      /** The WHERE condition's text, verbatim, or null. */
      readonly where: string | null;
      readonly payload: 'key' | 'full' | 'diff';
    }
  | {
      readonly kind: 'consume';
      readonly topic: TableName;
      readonly group: string | null;
      /** FROM EARLIEST | LATEST | n; null when not written (EARLIEST, or the group's position). */
      readonly from: 'earliest' | 'latest' | number | null;
      readonly limit: number | null;
    }
  | { readonly kind: 'ack'; readonly topic: TableName; readonly group: string; readonly partition: number; readonly uptoOffset: number }
  | { readonly kind: 'export_user_data' }
  | { readonly kind: 'show_export' }
  | { readonly kind: 'begin' }
  | { readonly kind: 'commit' }
  | { readonly kind: 'rollback' }
  | { readonly kind: 'select'; readonly ast: SelectStmt; readonly paramCount: number }
  | {
      readonly kind: 'insert';
      readonly ast: InsertStmt;
      readonly paramCount: number;
      /** Literal VALUES rows read straight from the text (insert-scan.ts): the tree's valuesLists is then empty. */
      readonly rows?: readonly (readonly InputValue[])[];
    }
  | { readonly kind: 'update'; readonly ast: UpdateStmt; readonly paramCount: number }
  | { readonly kind: 'delete'; readonly ast: DeleteStmt; readonly paramCount: number };

/** One ALTER TABLE operation (one per statement). Column names are as written (identifiers). */
export type AlterTableOp =
  | { readonly op: 'add'; readonly column: ColumnSpec; readonly ifNotExists: boolean }
  /** `restrict`: refused while an open live subscription names the column (RESTRICT written). */
  | { readonly op: 'drop'; readonly column: string; readonly ifExists: boolean; readonly restrict: boolean }
  | { readonly op: 'rename'; readonly column: string; readonly newName: string; readonly restrict: boolean }
  /** MODIFY [COLUMN] c TYPE [NOT NULL | NULL]; `nullable` null when neither was written. */
  | { readonly op: 'modify'; readonly column: ColumnSpec; readonly nullable: boolean | null }
  | { readonly op: 'set_not_null' | 'drop_not_null' | 'drop_default'; readonly column: string }
  /** The DEFAULT expression's parse tree (a constant or one of the default functions), with its SQL text. */
  | { readonly op: 'set_default'; readonly column: string; readonly expr: PgNode; readonly text: string }
  /** SET TBLPROPERTIES (k = v, ...), SET FLUSH_POLICY ..., SET TTL_SECONDS ..., SET MAX_BUFFER ...: lower-case keys. */
  | { readonly op: 'options'; readonly options: Readonly<Record<string, OptionValue>>; readonly text: string };

export type StatementKind = Statement['kind'];

