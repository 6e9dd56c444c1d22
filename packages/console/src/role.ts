/**
 * The logged-in user's role, as far as the console needs it: which actions to offer. It is read
 * after login and again on every page switch (an admin may change it meanwhile) from system.users, which only dba and system may read, so a refusal means neither. The
 * console only hides what the role cannot do; the server checks every statement anyway.
 */
import type { KalamClient } from '@kalamdb/client';
import { sqlString } from './sql-text.js';

export type ConsoleRole = 'system' | 'dba' | 'other';

export const isAdmin = (role: ConsoleRole): boolean => role !== 'other';

export async function detectRole(client: KalamClient, user: string): Promise<ConsoleRole> {
  try {
    const res = await client.query(`SELECT role FROM system.users WHERE user_id = ${sqlString(user.toLowerCase())} AND deleted_at IS NULL`);
    const role = res.results[0]?.rows?.[0]?.[0];
    return role === 'system' || role === 'dba' ? role : 'other';
  } catch {
    return 'other';
  }
}

/** The props every page gets. */
export interface PageProps {
  readonly client: KalamClient;
  readonly role: ConsoleRole;
}

/** Rows of a result as objects by column name. */
export function records(result: { schema?: readonly { name: string }[]; rows?: readonly (readonly unknown[])[] } | undefined): Record<string, unknown>[] {
  const names = (result?.schema ?? []).map((f) => f.name);
  return (result?.rows ?? []).map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])));
}
