/**
 * Parsed statements: a discriminated union with one kind per statement the server runs.
 * Dialect statements are fully parsed here; SQL statements keep PostgreSQL's parse tree (`ast`),
 * which the executor binds against the catalog.
 */
import type { DeleteStmt, InsertStmt, SelectStmt, UpdateStmt } from '@pgsql/types';
import type { ColumnDef, Role, TableType } from '../catalog/types.js';

/** An untyped node of libpg-query's JSON parse tree. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PgNode = any;

export interface TableName {
  readonly namespace: string | null;
  readonly name: string;
}

export type OptionValue = string | number | boolean;

export type Statement =
  | { readonly kind: 'create_namespace'; readonly name: string; readonly ifNotExists: boolean }
  | { readonly kind: 'drop_namespace'; readonly name: string; readonly ifExists: boolean; readonly cascade: boolean }
  | { readonly kind: 'show_namespaces' }
  | { readonly kind: 'use_namespace'; readonly name: string }
  | { readonly kind: 'show_tables'; readonly namespace: string | null }
  | { readonly kind: 'describe_table'; readonly table: TableName }
  | {
      readonly kind: 'create_table';
      readonly table: TableName;
      readonly ifNotExists: boolean;
      readonly tableType: TableType | null;
      readonly columns: readonly ColumnDef[];
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
  | { readonly kind: 'flush_all'; readonly namespace: string | null }
  | { readonly kind: 'compact_table'; readonly table: TableName }
  | { readonly kind: 'compact_all'; readonly namespace: string | null }
  | { readonly kind: 'check_table'; readonly table: TableName }
  | { readonly kind: 'repair_table'; readonly table: TableName }
  | { readonly kind: 'kill_job'; readonly jobId: string }
  | { readonly kind: 'kill_live'; readonly liveId: string }
  | { readonly kind: 'grant' | 'revoke'; readonly table: TableName; readonly userId: string }
  | { readonly kind: 'alter_table_access'; readonly table: TableName; readonly accessLevel: string }
  | { readonly kind: 'subscribe'; readonly table: TableName; readonly where: string | null; readonly options: Readonly<Record<string, OptionValue>> }
  | { readonly kind: 'begin' }
  | { readonly kind: 'commit' }
  | { readonly kind: 'rollback' }
  | { readonly kind: 'select'; readonly ast: SelectStmt; readonly paramCount: number }
  | { readonly kind: 'insert'; readonly ast: InsertStmt; readonly paramCount: number }
  | { readonly kind: 'update'; readonly ast: UpdateStmt; readonly paramCount: number }
  | { readonly kind: 'delete'; readonly ast: DeleteStmt; readonly paramCount: number };

export type StatementKind = Statement['kind'];

