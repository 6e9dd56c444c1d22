/**
 * CREATE/ALTER/DROP USER with argon2id hashes and the role rules from auth/access; DROP USER soft-deletes.
 * Accounts are managed by the account that sent the request (`ctx.caller`), never by the one an
 * EXECUTE AS USER names: impersonating an account must not make its own changes (a password without
 * the old one, as an admin may for itself) available to someone who could not make them directly.
 */
import { denied, execError } from '../util/errors.js';
import { isAdminRole, type Role, type UserDef } from '../catalog/types.js';
import { requireAdmin, requireUserManagement } from '../auth/access.js';
import type { Statement } from '../sql/statement.js';
import { messageResult, type RunContext, type Services, type StatementResult, underDdlLock } from './context.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

export async function createUser(s: Services, ctx: RunContext, st: Of<'create_user'>): Promise<StatementResult> {
  requireUserManagement(ctx.caller, st.role, 'CREATE USER');
  const passwordHash = await s.passwords.hash(st.password);
  return underDdlLock(s, ctx, async () => {
    if (s.catalog.user(st.userId)) throw execError(`User '${st.userId}' already exists`);
    const now = Date.now();
    // A new account id: a dropped account of the same name keeps its partitions until they are
    // purged, and tokens carry the id, so nothing of the old account reaches the new one.
    await s.catalog.createUser(
      { userId: st.userId, role: st.role, passwordHash, email: st.email, createdAt: now, updatedAt: now, tokenGeneration: now },
      s.seqs.next(),
    );
    return messageResult(ctx, `User '${st.userId}' created successfully`);
  });
}

export async function alterUser(s: Services, ctx: RunContext, st: Of<'alter_user'>): Promise<StatementResult> {
  const actor = ctx.caller;
  // Someone who may only change their own account is refused before the name is looked up: the
  // answer must not tell which other user names exist.
  if (st.userId !== actor.userId || st.field === 'role') requireAdmin(actor, `ALTER USER ... SET ${st.field.toUpperCase()}`);
  const target = s.catalog.user(st.userId);
  if (target === undefined) throw execError(`User '${st.userId}' does not exist`);
  const self = actor.id === target.id;
  if (st.field === 'role') {
    requireUserManagement(actor, target.role, 'ALTER USER ... SET ROLE');
    requireUserManagement(actor, st.value as Role, 'ALTER USER ... SET ROLE');
    if (self) throw denied('Permission denied: you cannot change your own role');
  } else if (!self) {
    requireUserManagement(actor, target.role, `ALTER USER ... SET ${st.field.toUpperCase()}`);
  }
  // Users (and services) changing their own password prove they know the current one; admins
  // resetting someone else's do not need it.
  if (st.field === 'password' && self && !isAdminRole(actor.role)) {
    if (st.oldPassword === undefined) throw denied("Permission denied: changing your own password needs OLD PASSWORD '<current password>'");
    // A password guess like a login's, throttled with them (an attack review: a stolen token made
    // unlimited guesses here, then could set a password of its own). The session is the account's
    // own, so its failures are keyed to the account in place of a client address.
    const oldPassword = st.oldPassword;
    const right = await s.loginThrottle.verify(target.userId, `account:${actor.id}`, () => s.passwords.verify(target.passwordHash, target.userId, oldPassword));
    if (!right) throw denied('Permission denied: the old password is not correct');
  }
  const passwordHash = st.field === 'password' ? await s.passwords.hash(st.value) : null;
  return underDdlLock(s, ctx, async () => {
    const current = s.catalog.user(st.userId);
    // Checked by id: the name may have been dropped and given to a new account since the checks above.
    if (current === undefined || current.id !== target.id) throw execError(`User '${st.userId}' does not exist`);
    const updated: UserDef = {
      ...current,
      updatedAt: Date.now(),
      ...(st.field === 'password' ? { passwordHash: passwordHash!, tokenGeneration: current.tokenGeneration + 1 } : {}),
      ...(st.field === 'role' ? { role: st.value as Role, tokenGeneration: current.tokenGeneration + 1 } : {}),
      ...(st.field === 'email' ? { email: st.value } : {}),
    };
    await s.catalog.replaceUser(updated);
    return messageResult(ctx, `User '${st.userId}' updated successfully`);
  });
}

export async function dropUser(s: Services, ctx: RunContext, st: Of<'drop_user'>): Promise<StatementResult> {
  return underDdlLock(s, ctx, async () => {
    const target = s.catalog.user(st.userId);
    if (target === undefined) {
      requireUserManagement(ctx.caller, 'user', 'DROP USER');
      if (st.ifExists) return messageResult(ctx, `User '${st.userId}' does not exist`);
      throw execError(`User '${st.userId}' does not exist`);
    }
    requireUserManagement(ctx.caller, target.role, 'DROP USER');
    if (target.id === ctx.caller.id) throw execError('You cannot drop your own account');
    if (target.userId === 'root') throw execError("The built-in 'root' account cannot be dropped");
    // A soft delete: the record stays (system.users shows deleted_at) until the purge job has removed
    // the account's partitions after the grace period; login and tokens stop working now.
    await s.catalog.softDeleteUser(target.id, Date.now());
    s.userPurge.wake();
    return messageResult(ctx, `User '${st.userId}' dropped successfully`);
  });
}
