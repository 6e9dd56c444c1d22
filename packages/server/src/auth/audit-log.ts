/**
 * system.audit_log: who did what to the schema, the users and the rights — DDL, user and role
 * changes, grants, impersonation and failed logins — with the real caller (actor), the effective
 * user, the action, its target, the outcome and the client address. Persisted in the catalog
 * keyspace; entries older than the retention are pruned.
 */
import type { CatalogStore } from '../catalog/catalog.js';
import type { SnowflakeGenerator } from '../util/snowflake.js';

export interface AuditEntry {
  readonly audit_id: string;
  readonly timestamp: number;
  readonly actor: string;
  readonly effective_user: string;
  readonly action: string;
  readonly target: string | null;
  readonly status: 'ok' | 'denied' | 'failed';
  readonly client_address: string | null;
  readonly details: string | null;
}

const PREFIX = 'audit:';
const ENTRIES_MAX = 100_000;

export class AuditLog {
  private readonly entries: AuditEntry[] = [];

  constructor(private readonly store: CatalogStore, private readonly seqs: SnowflakeGenerator) {}

  load(meta: ReadonlyMap<string, unknown>): void {
    for (const [key, value] of meta) if (key.startsWith(PREFIX)) this.entries.push(value as AuditEntry);
    this.entries.sort((a, b) => a.timestamp - b.timestamp);
  }

  async record(entry: Omit<AuditEntry, 'audit_id' | 'timestamp'>): Promise<void> {
    const full: AuditEntry = { audit_id: `AU-${this.seqs.next()}`, timestamp: Date.now(), ...entry };
    this.entries.push(full);
    const writes = new Map<string, unknown>([[`${PREFIX}${full.audit_id}`, full]]);
    while (this.entries.length > ENTRIES_MAX) writes.set(`${PREFIX}${this.entries.shift()!.audit_id}`, undefined);
    await this.store.writeCatalog(writes);
  }

  list(): readonly AuditEntry[] {
    return this.entries;
  }

  async prune(olderThanMs: number): Promise<void> {
    const cutoff = Date.now() - olderThanMs;
    const old: AuditEntry[] = [];
    while (this.entries.length > 0 && this.entries[0]!.timestamp < cutoff) old.push(this.entries.shift()!);
    if (old.length > 0) await this.store.writeCatalog(new Map(old.map((e) => [`${PREFIX}${e.audit_id}`, undefined])));
  }
}
