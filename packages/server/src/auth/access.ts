/**
 * Who may do what: the role rules for DDL, user management, system tables, SHARED table access
 * levels and impersonation, as pure functions over a principal. Every check in the server calls
 * one of these; nothing else decides access.
 */
import { denied } from '../util/errors.js';
import { isAdminRole, qualifiedName, type Role, type TableDef, type UserDef } from '../catalog/types.js';

export interface Principal {
  /** The account's immutable id: partitions and grants are keyed by it, never by the name. */
  readonly id: string;
  /** The user name, which SQL and the protocol show (`as_user`, `CURRENT_USER()`, system tables). */
  readonly userId: string;
  readonly role: Role;
}

export function principalOf(user: UserDef): Principal {
  return { id: user.id, userId: user.userId, role: user.role };
}

/**
 * The partition a principal's statements touch in a table: their own account's for USER/STREAM tables.
 * Keyed by the account id, so a new account under a dropped name never sees the old one's rows.
 */
export function partitionFor(principal: Principal, table: TableDef): string {
  return table.type === 'SHARED' ? '' : principal.id;
}

export function requireAdmin(principal: Principal, action: string): void {
  if (!isAdminRole(principal.role)) throw denied(`Permission denied: ${action} requires role dba or system`);
}

export function requireSystemTableAccess(principal: Principal, name: string): void {
  if (!isAdminRole(principal.role)) throw denied(`Permission denied: ${name.includes('.') ? name : `system.${name}`} is readable by roles dba and system only`);
}

const PRIVILEGED: ReadonlySet<Role> = new Set(['service', 'dba', 'system']);

/**
 * The role matrix for reading a table. USER and STREAM tables: everyone, in their own partition.
 * SHARED: PUBLIC everyone; PRIVATE service/dba/system; RESTRICTED service/dba/system and users with
 * a GRANT SELECT; DBA dba/system.
 */
export function requireRead(principal: Principal, table: TableDef, granted = false): void {
  if (table.type !== 'SHARED') return;
  const level = table.options.accessLevel ?? 'PRIVATE';
  const ok = level === 'PUBLIC' ? true
    : level === 'DBA' ? isAdminRole(principal.role)
    : level === 'RESTRICTED' ? PRIVILEGED.has(principal.role) || granted
    : PRIVILEGED.has(principal.role);
  if (!ok) throw denied(`Permission denied: shared table ${qualifiedName(table)} (${level}) is not readable by role ${principal.role}`);
}

export function requireWrite(principal: Principal, table: TableDef): void {
  if (table.type !== 'SHARED') return;
  const level = table.options.accessLevel ?? 'PRIVATE';
  const ok = level === 'DBA' ? isAdminRole(principal.role) : PRIVILEGED.has(principal.role);
  if (!ok) throw denied(`Permission denied: shared table ${qualifiedName(table)} (${level}) is not writable by role ${principal.role}`);
}

const IMPERSONATION: Readonly<Record<Role, readonly Role[]>> = {
  system: ['system', 'dba', 'service', 'user'],
  dba: ['dba', 'service', 'user'],
  service: ['service', 'user'],
  user: [],
};

export function requireImpersonation(actor: Principal, target: Principal): void {
  if (actor.id === target.id) return;
  if (!IMPERSONATION[actor.role].includes(target.role)) {
    throw denied(`Permission denied: role ${actor.role} cannot execute as user '${target.userId}' (role ${target.role})`);
  }
}

/** Creating, altering or dropping a user with `targetRole` (or changing a user to it): dba and system
 * manage user and service accounts; only system manages dba and system accounts. */
export function requireUserManagement(actor: Principal, targetRole: Role, action: string): void {
  requireAdmin(actor, action);
  if (isAdminRole(targetRole) && actor.role !== 'system') {
    throw denied(`Permission denied: only role system can ${action} for a ${targetRole} account`);
  }
}
