/** Wire shapes of the KalamDB v1 protocol that the SDK exposes. */

export type DataType = string | { Decimal: { precision: number; scale: number } };

export interface SchemaField {
  readonly name: string;
  readonly data_type: DataType;
  readonly index: number;
  readonly flags?: readonly string[];
}

export interface QueryResult {
  readonly schema?: readonly SchemaField[];
  readonly rows?: readonly (readonly unknown[])[];
  readonly row_count: number;
  readonly message?: string;
  readonly as_user: string;
}

export interface QueryResponse {
  readonly status: 'success' | 'error';
  readonly results: readonly QueryResult[];
  readonly took: number;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface BatchControl {
  readonly batch_num: number;
  readonly has_more: boolean;
  readonly status: 'loading' | 'loading_batch' | 'ready';
  readonly last_seq_id?: string;
}

export type Row = Record<string, unknown>;

export interface ServerMessage {
  readonly type: string;
  readonly subscription_id?: string;
  readonly change_type?: 'insert' | 'update' | 'delete' | 'flush';
  readonly rows?: readonly Row[];
  readonly old_values?: readonly Row[];
  readonly schema?: readonly SchemaField[];
  readonly total_rows?: number;
  readonly batch_control?: BatchControl;
  readonly flush?: { readonly table: string; readonly row_count: number; readonly files: readonly string[]; readonly flushed_at: number };
  readonly code?: string;
  readonly message?: string;
  readonly last_seq_id?: string;
  readonly user?: string;
  readonly role?: string;
  /** schema_changed: the table's schema version the new schema belongs to. */
  readonly schema_version?: number;
  /** schema_changed: how the subscription's columns changed since the schema it replaces. */
  readonly changes?: readonly SchemaChange[];
}

/**
 * One column change in a `schema_changed` message (ALTER TABLE on a subscribed table): `add` (with
 * the value rows written before hold, `default`), `drop`, `rename` (to `new_name`), `modify` (new
 * type or nullability, `data_type`).
 */
export interface SchemaChange {
  readonly kind: 'add' | 'drop' | 'rename' | 'modify';
  readonly column: string;
  readonly new_name?: string;
  readonly default?: unknown;
  readonly data_type?: DataType;
}

/** A change as delivered to subscription callbacks. */
export interface ChangeEvent<T = Row> {
  /** `reset`: the server could not resume after a reconnect; the rows are sent again (`ready` follows). */
  readonly type: 'insert' | 'update' | 'delete' | 'flush' | 'ready' | 'schema_changed' | 'reset';
  readonly rows: readonly T[];
  readonly oldValues: readonly T[];
  readonly flush?: ServerMessage['flush'];
  /** schema_changed: the new columns, and how they changed. */
  readonly schema?: readonly SchemaField[];
  readonly changes?: readonly SchemaChange[];
}
