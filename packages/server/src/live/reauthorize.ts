/**
 * Which open connections and subscriptions a catalog change can affect. A change that can only add
 * access (a new namespace, table or user) affects none; the others name the user and/or table whose
 * sessions and subscriptions must be re-checked, so a GRANT loop on one table does not re-check
 * every subscription on the server.
 */
import { assertNever } from '../util/errors.js';
import { passwordChanged, type CatalogChange } from '../catalog/changes.js';

export interface ReauthScope {
  /** Only this account's connections (its immutable id); null: every connection. */
  readonly accountId: string | null;
  /** Only subscriptions on this table id; null: every subscription of the connections in scope. */
  readonly tableId: number | null;
  /** The user's password changed: their connections end (and their old tokens already fail). */
  readonly passwordChanged: boolean;
}

/** What to re-check after `change`; null when it cannot take access away. */
export function reauthScope(change: CatalogChange): ReauthScope | null {
  switch (change.kind) {
    case 'namespace_created':
    case 'table_created':
    case 'user_created':
      return null;
    case 'namespace_dropped':
      // Its tables were dropped (each with its own event) before the namespace; checking everything
      // once more costs little for a rare statement and does not depend on that order.
      return { accountId: null, tableId: null, passwordChanged: false };
    case 'table_schema_changed':
      // A new schema version takes access away only when its options changed the access level.
      if (change.previous.options.accessLevel === change.table.options.accessLevel) return null;
      return { accountId: null, tableId: change.table.id, passwordChanged: false };
    case 'table_altered':
    case 'table_dropped':
      return { accountId: null, tableId: change.table.id, passwordChanged: false };
    case 'grant_changed':
      return { accountId: change.accountId, tableId: change.tableId, passwordChanged: false };
    case 'user_altered':
      return { accountId: change.user.id, tableId: null, passwordChanged: passwordChanged(change) };
    case 'user_dropped':
      return { accountId: change.previous.id, tableId: null, passwordChanged: false };
    default:
      return assertNever(change, 'catalog change');
  }
}
