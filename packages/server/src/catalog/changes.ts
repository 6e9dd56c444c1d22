/**
 * The catalog's change bus: one typed event for every mutation of namespaces, tables, grants and
 * users. The Catalog emits it itself, synchronously, right after its in-memory state changed and
 * before the mutating call returns, so no code path can change access without an event and a
 * listener runs before any later statement (or commit fan-out) can observe the new state.
 *
 * Listeners must be synchronous and must not throw for expected conditions: the change is already
 * persisted and applied when they run. A throwing listener is a bug; every other listener still
 * runs, then the error is rethrown to the statement that made the change.
 */
import type { SchemaChange, TableDef, UserDef } from './types.js';

/** A change before the bus numbers it. */
export type CatalogChangeBody =
  | { readonly kind: 'namespace_created'; readonly namespace: string }
  | { readonly kind: 'namespace_dropped'; readonly namespace: string }
  | { readonly kind: 'table_created'; readonly table: TableDef }
  /** ALTER TABLE (today only SET ACCESS_LEVEL): the id stays, the definition is replaced. */
  | { readonly kind: 'table_altered'; readonly table: TableDef; readonly previous: TableDef }
  /**
   * ALTER TABLE that wrote a new schema version (columns or options): `table` is the new definition
   * (schemaVersion = previous.schemaVersion + 1), `change` what happened, by column name before it.
   * Rows keep the version they were written with; map them with schema-map.ts (by column id).
   */
  | { readonly kind: 'table_schema_changed'; readonly table: TableDef; readonly previous: TableDef; readonly change: SchemaChange }
  | { readonly kind: 'table_dropped'; readonly table: TableDef }
  | { readonly kind: 'grant_changed'; readonly tableId: number; readonly accountId: string; readonly granted: boolean }
  | { readonly kind: 'user_created'; readonly user: UserDef }
  /** ALTER USER: password, role or email. */
  | { readonly kind: 'user_altered'; readonly user: UserDef; readonly previous: UserDef }
  | { readonly kind: 'user_dropped'; readonly previous: UserDef };

/**
 * A numbered catalog change. `version` counts the changes applied in this process (it starts at 0
 * when the catalog is loaded and is not persisted): a reader that remembers the version it checked
 * against can tell whether anything changed since.
 */
export type CatalogChange = CatalogChangeBody & { readonly version: number };

export type CatalogChangeKind = CatalogChange['kind'];

export type CatalogListener = (change: CatalogChange) => void;

export class CatalogChanges {
  private readonly listeners = new Set<CatalogListener>();
  private current = 0;

  /** The number of changes applied so far (the version of the latest one). */
  get version(): number {
    return this.current;
  }

  /**
   * Calls `listener` with every later change, synchronously inside the mutating call; returns the
   * function that unsubscribes it.
   * @example
   * const stop = catalog.changes.subscribe((c) => { if (c.kind === 'table_dropped') forget(c.table.id); });
   */
  subscribe(listener: CatalogListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Numbers a change and hands it to every listener (for the Catalog's mutation methods only). */
  emit(body: CatalogChangeBody): CatalogChange {
    const change: CatalogChange = { ...body, version: ++this.current };
    const errors: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} catalog change listeners failed on ${change.kind}`);
    return change;
  }
}

/** Whether an ALTER USER replaced the password (which ends the user's sessions and old tokens). */
export function passwordChanged(change: CatalogChange): boolean {
  return change.kind === 'user_altered' && change.user.passwordHash !== change.previous.passwordHash;
}
