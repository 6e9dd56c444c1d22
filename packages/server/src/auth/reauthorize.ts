/**
 * Re-checks of access that was granted earlier and is still in use (an open WebSocket connection
 * and its subscriptions), against the catalog as it is now. Pure functions over the catalog: the
 * live layer calls them on every catalog change, and when an authentication completes.
 */
import { ServerError } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import { qualifiedName, type TableDef, type UserDef } from '../catalog/types.js';
import { requireRead, type Principal } from './access.js';

/**
 * The account a principal acts as, if it may still act, else undefined: the one place that decides
 * "this user still exists" for open connections. A dropped (soft-deleted) account, or a new account
 * that took a dropped one's name, is not the principal's account.
 */
export function activeUser(catalog: Catalog, principal: Pick<Principal, 'id'>): UserDef | undefined {
  const user = catalog.account(principal.id);
  return user !== undefined && user.deletedAt === null ? user : undefined;
}

/**
 * Why `principal` may no longer read `table` (the definition a subscription was made on), or null
 * when it still may. The table must still exist under its name with the same id (a dropped and
 * re-created table is another table), and pass requireRead with its current access level and grants.
 */
export function readRevoked(catalog: Catalog, principal: Principal, table: TableDef): ServerError | null {
  const current = catalog.table(table.namespace, table.name);
  if (current === undefined || current.id !== table.id) {
    return new ServerError('NOT_FOUND', `Table ${qualifiedName(table)} was dropped`);
  }
  try {
    requireRead(principal, current, catalog.hasGrant(current.id, principal));
    return null;
  } catch (error) {
    if (error instanceof ServerError) return error;
    throw error;
  }
}
