/** GRANT/REVOKE SELECT on RESTRICTED shared tables and ALTER TABLE ... SET ACCESS_LEVEL (dba/system). */
import { execError, invalidSql } from '../util/errors.js';
import { qualifiedName, type AccessLevel } from '../catalog/types.js';
import { requireAdmin } from '../auth/access.js';
import type { Statement } from '../sql/statement.js';
import { messageResult, type RunContext, type Services, type StatementResult, underDdlLock } from './context.js';
import { resolveTable } from './ddl-exec.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;
const ACCESS_LEVELS: readonly AccessLevel[] = ['PUBLIC', 'PRIVATE', 'RESTRICTED', 'DBA'];

export async function grantOrRevoke(s: Services, ctx: RunContext, st: Of<'grant' | 'revoke'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, st.kind.toUpperCase());
  const table = resolveTable(s, ctx, st.table);
  if (table.type !== 'SHARED') throw execError(`GRANT applies to SHARED tables: ${qualifiedName(table)} is a ${table.type} table, where every user has their own partition`);
  return underDdlLock(s, ctx, async () => {
    // Grants belong to the account, not the name: a later account of the same name does not inherit them.
    const grantee = s.catalog.user(st.userId);
    if (grantee === undefined) throw execError(`User '${st.userId}' does not exist`);
    await s.catalog.setGrant(table.id, grantee.id, st.kind === 'grant');
    const note = table.options.accessLevel === 'RESTRICTED' ? '' : ` (it takes effect while the table is RESTRICTED; it is ${table.options.accessLevel})`;
    return messageResult(ctx, st.kind === 'grant'
      ? `Granted SELECT on '${qualifiedName(table)}' to '${st.userId}'${note}`
      : `Revoked SELECT on '${qualifiedName(table)}' from '${st.userId}'`);
  });
}

export async function alterTableAccess(s: Services, ctx: RunContext, st: Of<'alter_table_access'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'ALTER TABLE');
  const level = st.accessLevel as AccessLevel;
  if (!ACCESS_LEVELS.includes(level)) throw invalidSql(`Unknown ACCESS_LEVEL '${st.accessLevel}' (${ACCESS_LEVELS.join(', ')})`);
  return underDdlLock(s, ctx, async () => {
    const table = resolveTable(s, ctx, st.table);
    if (table.type !== 'SHARED') throw execError(`ACCESS_LEVEL applies to SHARED tables only: ${qualifiedName(table)} is a ${table.type} table`);
    await s.catalog.replaceTable({ ...table, options: { ...table.options, accessLevel: level } });
    return messageResult(ctx, `Table '${qualifiedName(table)}' access level set to ${level}`);
  });
}
