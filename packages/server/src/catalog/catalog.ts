/**
 * The catalog: namespaces, tables (with every schema version) and users, cached in memory and
 * persisted through a CatalogStore (the hot store's catalog keyspace). Callers serialize changes
 * (the executor's DDL mutex); reads are plain map lookups. Every mutation is persisted first, then
 * applied in memory and announced on `changes` in the same synchronous step, so listeners (live
 * re-authorization) see the new state before any other code can.
 */
import { assert } from '../util/errors.js';
import { CatalogChanges } from './changes.js';
import {
  ACCOUNT_ID_PATTERN, DEFAULT_NAMESPACE, accountIdOf, type NamespaceDef, type TableDef, type TableSchemaVersion, type UserDef, qualifiedName,
} from './types.js';

export interface CatalogStore {
  loadCatalog(): Promise<Map<string, unknown>>;
  writeCatalog(entries: ReadonlyMap<string, unknown>): Promise<void>;
}

const NEXT_TABLE_ID_KEY = 'meta:next_table_id';
/** The largest snowflake ever used for an account id: ids stay unique after a purge and a clock step back. */
const LAST_ACCOUNT_SEQ_KEY = 'meta:last_account_seq';

/** A user record as stored by versions before account ids: no `id`, no `deletedAt`. */
type StoredUser = Omit<UserDef, 'id' | 'deletedAt'> & Partial<Pick<UserDef, 'id' | 'deletedAt'>>;
/** `userId` holds the account id (the field predates ids; a migrated account's id is its name). */
interface StoredGrant {
  readonly tableId: number;
  readonly userId: string;
}

export class Catalog {
  private readonly namespaces = new Map<string, NamespaceDef>();
  private readonly tables = new Map<string, TableDef>();
  private readonly schemas: TableSchemaVersion[] = [];
  /** Every account by id, dropped ones included until they are purged. */
  private readonly accounts = new Map<string, UserDef>();
  /** Live (not dropped) accounts by name: at most one per name. */
  private readonly liveByName = new Map<string, UserDef>();
  /** SELECT grants on RESTRICTED shared tables: table id → account ids. */
  private readonly grants = new Map<number, Set<string>>();
  private nextTableId = 1;
  private lastAccountSeq = 0n;
  /** Raw catalog entries other subsystems keep here (e.g. meta:max_seq). */
  readonly meta = new Map<string, unknown>();
  /** Every change to namespaces, tables, grants and users, emitted by the methods below. */
  readonly changes = new CatalogChanges();

  private constructor(private readonly store: CatalogStore) {}

  static async load(store: CatalogStore): Promise<Catalog> {
    const catalog = new Catalog(store);
    const rewrites = new Map<string, unknown>();
    for (const [key, value] of await store.loadCatalog()) {
      const sep = key.indexOf(':');
      const kind = key.slice(0, sep);
      if (kind === 'ns') catalog.namespaces.set((value as NamespaceDef).name, value as NamespaceDef);
      else if (kind === 'table') catalog.tables.set(qualifiedName(value as TableDef), value as TableDef);
      else if (kind === 'schema') catalog.schemas.push(value as TableSchemaVersion);
      else if (kind === 'user') {
        const user = migrateUser(value as StoredUser);
        assert(key === userKey(user.id), `user record ${key} holds account ${user.id}`);
        if (user !== value) rewrites.set(key, user);
        catalog.addUserInMemory(user);
      } else if (kind === 'grant') catalog.addGrantInMemory(value as StoredGrant);
      else if (key === NEXT_TABLE_ID_KEY) catalog.nextTableId = value as number;
      else if (key === LAST_ACCOUNT_SEQ_KEY) catalog.lastAccountSeq = BigInt(value as string);
      else catalog.meta.set(key, value);
    }
    // Versions before account ids left a dropped user's grants behind, keyed by name: they match no
    // account (new ones have `@` ids), so they go, with the migrated records, in one write.
    for (const [tableId, ids] of catalog.grants) {
      for (const id of ids) {
        if (catalog.accounts.has(id)) continue;
        rewrites.set(grantKey(tableId, id), undefined);
        ids.delete(id);
      }
    }
    if (rewrites.size > 0) await store.writeCatalog(rewrites);
    if (!catalog.namespaces.has(DEFAULT_NAMESPACE)) {
      await catalog.putNamespace({ name: DEFAULT_NAMESPACE, createdAt: Date.now() });
    }
    return catalog;
  }

  // Namespaces ------------------------------------------------------------------------------

  namespace(name: string): NamespaceDef | undefined {
    return this.namespaces.get(name);
  }

  listNamespaces(): NamespaceDef[] {
    return [...this.namespaces.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async putNamespace(ns: NamespaceDef): Promise<void> {
    await this.store.writeCatalog(new Map([[`ns:${ns.name}`, ns]]));
    this.namespaces.set(ns.name, ns);
    this.changes.emit({ kind: 'namespace_created', namespace: ns.name });
  }

  async dropNamespace(name: string): Promise<void> {
    assert(this.tablesIn(name).length === 0, 'namespace still holds tables');
    await this.store.writeCatalog(new Map([[`ns:${name}`, undefined]]));
    this.namespaces.delete(name);
    this.changes.emit({ kind: 'namespace_dropped', namespace: name });
  }

  // Tables ----------------------------------------------------------------------------------

  table(namespace: string, name: string): TableDef | undefined {
    return this.tables.get(`${namespace}.${name}`);
  }

  tablesIn(namespace: string | null): TableDef[] {
    const all = [...this.tables.values()].filter((t) => namespace === null || t.namespace === namespace);
    return all.sort((a, b) => qualifiedName(a).localeCompare(qualifiedName(b)));
  }

  schemaVersions(): readonly TableSchemaVersion[] {
    return this.schemas;
  }

  schemaVersion(tableId: number, version: number): TableSchemaVersion | undefined {
    return this.schemas.find((s) => s.tableId === tableId && s.version === version);
  }

  /** Creates a table with a fresh id and its first schema version. */
  async createTable(def: Omit<TableDef, 'id' | 'schemaVersion'>): Promise<TableDef> {
    const table: TableDef = { ...def, id: this.nextTableId, schemaVersion: 1 };
    const schema: TableSchemaVersion = { tableId: table.id, version: 1, columns: table.columns, createdAt: table.createdAt };
    await this.store.writeCatalog(new Map<string, unknown>([
      [`table:${qualifiedName(table)}`, table],
      [`schema:${table.id}:1`, schema],
      [NEXT_TABLE_ID_KEY, table.id + 1],
    ]));
    this.nextTableId = table.id + 1;
    this.tables.set(qualifiedName(table), table);
    this.schemas.push(schema);
    this.changes.emit({ kind: 'table_created', table });
    return table;
  }

  /** Replaces a table's definition (ALTER TABLE); the id and schema version stay. */
  async replaceTable(table: TableDef): Promise<TableDef> {
    assert(this.tables.get(qualifiedName(table))?.id === table.id, 'replacing an existing table');
    await this.store.writeCatalog(new Map([[`table:${qualifiedName(table)}`, table]]));
    const previous = this.tables.get(qualifiedName(table));
    assert(previous?.id === table.id, 'the table was replaced or dropped while its new definition was written');
    this.tables.set(qualifiedName(table), table);
    this.changes.emit({ kind: 'table_altered', table, previous });
    return table;
  }

  /** Whether an account (a principal: the type keeps a name from being passed by mistake) holds a grant. */
  hasGrant(tableId: number, account: { readonly id: string }): boolean {
    return this.grants.get(tableId)?.has(account.id) ?? false;
  }

  /** Account ids granted SELECT on a table. */
  grantees(tableId: number): string[] {
    return [...(this.grants.get(tableId) ?? [])].sort();
  }

  async setGrant(tableId: number, accountId: string, granted: boolean): Promise<void> {
    assert(this.accounts.get(accountId)?.deletedAt === null, 'grants go to live accounts');
    const grant: StoredGrant = { tableId, userId: accountId };
    await this.store.writeCatalog(new Map([[grantKey(tableId, accountId), granted ? grant : undefined]]));
    if (granted) this.addGrantInMemory(grant);
    else this.grants.get(tableId)?.delete(accountId);
    this.changes.emit({ kind: 'grant_changed', tableId, accountId, granted });
  }

  private addGrantInMemory(g: StoredGrant): void {
    let set = this.grants.get(g.tableId);
    if (set === undefined) {
      set = new Set();
      this.grants.set(g.tableId, set);
    }
    set.add(g.userId);
  }

  async dropTable(table: TableDef): Promise<void> {
    const entries = new Map<string, unknown>([[`table:${qualifiedName(table)}`, undefined]]);
    for (const accountId of this.grants.get(table.id) ?? []) entries.set(grantKey(table.id, accountId), undefined);
    this.grants.delete(table.id);
    for (const s of this.schemas) if (s.tableId === table.id) entries.set(`schema:${s.tableId}:${s.version}`, undefined);
    await this.store.writeCatalog(entries);
    this.grants.delete(table.id);
    this.tables.delete(qualifiedName(table));
    for (let i = this.schemas.length - 1; i >= 0; i--) if (this.schemas[i]!.tableId === table.id) this.schemas.splice(i, 1);
    this.changes.emit({ kind: 'table_dropped', table });
  }

  // Users -----------------------------------------------------------------------------------

  /** The live account with this name (what logins, EXECUTE AS, ALTER/DROP USER and GRANT resolve). */
  user(name: string): UserDef | undefined {
    return this.liveByName.get(name);
  }

  /** Any account by id, dropped ones included until they are purged. */
  account(id: string): UserDef | undefined {
    return this.accounts.get(id);
  }

  /** Every account, dropped ones included: by name, then oldest first. */
  listUsers(): UserDef[] {
    return [...this.accounts.values()].sort((a, b) => a.userId.localeCompare(b.userId) || a.createdAt - b.createdAt);
  }

  /** Dropped accounts waiting for their purge. */
  deletedUsers(): UserDef[] {
    return [...this.accounts.values()].filter((u) => u.deletedAt !== null);
  }

  /**
   * Creates an account under a free name. Its id comes from `snowflake` unless that is not above every
   * id handed out before (the clock went back), so an id is never reused, not even after a purge.
   */
  async createUser(fields: Omit<UserDef, 'id' | 'deletedAt'>, snowflake: bigint): Promise<UserDef> {
    assert(!this.liveByName.has(fields.userId), 'creating a user under a free name');
    const seq = snowflake > this.lastAccountSeq ? snowflake : this.lastAccountSeq + 1n;
    const user: UserDef = { ...fields, id: accountIdOf(seq), deletedAt: null };
    assert(ACCOUNT_ID_PATTERN.test(user.id) && !this.accounts.has(user.id), 'account ids are never reused');
    await this.store.writeCatalog(new Map<string, unknown>([[userKey(user.id), user], [LAST_ACCOUNT_SEQ_KEY, seq.toString()]]));
    this.lastAccountSeq = seq;
    this.addUserInMemory(user);
    this.changes.emit({ kind: 'user_created', user });
    return user;
  }

  /** Replaces a live account's record (ALTER USER); its id and name stay. */
  async replaceUser(user: UserDef): Promise<void> {
    const current = this.accounts.get(user.id);
    assert(current !== undefined && current.deletedAt === null && user.deletedAt === null, 'replacing a live account');
    assert(current.userId === user.userId, 'an account keeps its name');
    await this.store.writeCatalog(new Map([[userKey(user.id), user]]));
    this.addUserInMemory(user);
    this.changes.emit({ kind: 'user_altered', user, previous: current });
  }

  /**
   * DROP USER: marks the account deleted and removes its grants in one write. From then on it cannot
   * log in, its name is free for a new account, and its partitions wait for the purge.
   */
  async softDeleteUser(id: string, deletedAt: number): Promise<UserDef> {
    const current = this.accounts.get(id);
    assert(current !== undefined && current.deletedAt === null, 'dropping a live account');
    const dropped: UserDef = { ...current, deletedAt, updatedAt: deletedAt };
    const entries = new Map<string, unknown>([[userKey(id), dropped]]);
    for (const tableId of this.grantsOf(id)) entries.set(grantKey(tableId, id), undefined);
    await this.store.writeCatalog(entries);
    for (const tableId of this.grantsOf(id)) this.grants.get(tableId)!.delete(id);
    this.liveByName.delete(current.userId);
    this.accounts.set(id, dropped);
    this.changes.emit({ kind: 'user_dropped', previous: current });
    return dropped;
  }

  /** The last step of a purge: the dropped account's record (and any grant left) goes. Idempotent. */
  async removeUser(id: string): Promise<void> {
    const current = this.accounts.get(id);
    if (current === undefined) return;
    assert(current.deletedAt !== null, 'only dropped accounts are removed');
    const entries = new Map<string, unknown>([[userKey(id), undefined]]);
    for (const tableId of this.grantsOf(id)) entries.set(grantKey(tableId, id), undefined);
    await this.store.writeCatalog(entries);
    for (const tableId of this.grantsOf(id)) this.grants.get(tableId)!.delete(id);
    this.accounts.delete(id);
  }

  private grantsOf(accountId: string): number[] {
    return [...this.grants].filter(([, ids]) => ids.has(accountId)).map(([tableId]) => tableId);
  }

  private addUserInMemory(user: UserDef): void {
    this.accounts.set(user.id, user);
    if (user.deletedAt !== null) return;
    const other = this.liveByName.get(user.userId);
    assert(other === undefined || other.id === user.id, `two live accounts named ${user.userId}`);
    this.liveByName.set(user.userId, user);
  }
}

function userKey(accountId: string): string {
  return `user:${accountId}`;
}

function grantKey(tableId: number, accountId: string): string {
  return `grant:${tableId}:${accountId}`;
}

/**
 * Records from before account ids keyed every partition by the user name, so the name becomes the id:
 * their rows, files and grants stay theirs after the upgrade. Returns the record itself when current.
 */
function migrateUser(stored: StoredUser): UserDef {
  if (stored.id !== undefined && stored.deletedAt !== undefined) return stored as UserDef;
  return { ...stored, id: stored.id ?? stored.userId, deletedAt: stored.deletedAt ?? null };
}
