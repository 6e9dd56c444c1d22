/**
 * The catalog: namespaces, tables (with every schema version) and users, cached in memory and
 * persisted through a CatalogStore (the hot store's catalog keyspace). Callers serialize changes
 * (the executor's DDL mutex); reads are plain map lookups. Every mutation is persisted first, then
 * applied in memory and announced on `changes` in the same synchronous step, so listeners (live
 * re-authorization) see the new state before any other code can.
 */
import { StartupError, assert } from '../util/errors.js';
import { CatalogChanges } from './changes.js';
import {
  ACCOUNT_ID_PATTERN, DEFAULT_NAMESPACE, accountIdOf, type ColumnDef, type ColumnSpec, type NamespaceDef, type SchemaChange, type TableDef,
  type StorageDef, type TableSchemaVersion, type UserDef, qualifiedName,
} from './types.js';
import type { SchemaLookup } from './schema-map.js';

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

export class Catalog implements SchemaLookup {
  private readonly namespaces = new Map<string, NamespaceDef>();
  private readonly tables = new Map<string, TableDef>();
  /** The same tables by id (the committer checks every write's schema version against it). */
  private readonly byId = new Map<number, TableDef>();
  /** Columns of schema versions by `tableId:version` (columnsAt). Versions never change once written. */
  private readonly columnsCache = new Map<string, readonly ColumnDef[]>();
  private readonly schemas: TableSchemaVersion[] = [];
  /** Every account by id, dropped ones included until they are purged. */
  private readonly accounts = new Map<string, UserDef>();
  /** Live (not dropped) accounts by name: at most one per name. */
  private readonly liveByName = new Map<string, UserDef>();
  /** SELECT grants on RESTRICTED shared tables: table id → account ids. */
  private readonly grants = new Map<number, Set<string>>();
  /** Registered storages other than the built-in 'local' (which is not stored). */
  private readonly storages = new Map<string, StorageDef>();
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
      else if (kind === 'table') {
        checkStoredTable(key, value);
        const table = migrateTable(value as StoredTable);
        if (table !== value) rewrites.set(key, table);
        catalog.tables.set(qualifiedName(table), table);
        catalog.byId.set(table.id, table);
      } else if (kind === 'schema') {
        const schema = migrateSchema(value as StoredSchema);
        if (schema !== value) rewrites.set(key, schema);
        catalog.schemas.push(schema);
      }
      else if (kind === 'user') {
        const user = migrateUser(value as StoredUser);
        assert(key === userKey(user.id), `user record ${key} holds account ${user.id}`);
        if (user !== value) rewrites.set(key, user);
        catalog.addUserInMemory(user);
      } else if (kind === 'grant') catalog.addGrantInMemory(value as StoredGrant);
      else if (kind === 'storage') catalog.storages.set((value as StorageDef).storageId, value as StorageDef);
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
    // A counter below a table id in use would give a new table an id that is taken, and with it the
    // other table's rows and files (a fault review); one that is not a number is as damaged. The ids
    // of dropped tables' schema versions count too (their files may not be purged yet).
    let used = 0;
    for (const id of catalog.byId.keys()) if (id > used) used = id;
    for (const v of catalog.schemas) if (v.tableId > used) used = v.tableId;
    if (!Number.isSafeInteger(catalog.nextTableId) || catalog.nextTableId <= used) {
      catalog.nextTableId = used + 1;
      rewrites.set(NEXT_TABLE_ID_KEY, catalog.nextTableId);
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

  // Storages --------------------------------------------------------------------------------

  storage(id: string): StorageDef | undefined {
    return this.storages.get(id);
  }

  listStorages(): StorageDef[] {
    return [...this.storages.values()].sort((a, b) => a.storageId.localeCompare(b.storageId));
  }

  /** CREATE and ALTER STORAGE (the caller checked the storage is reachable). */
  async putStorage(storage: StorageDef): Promise<void> {
    await this.store.writeCatalog(new Map([[`storage:${storage.storageId}`, storage]]));
    this.storages.set(storage.storageId, storage);
  }

  async dropStorage(id: string): Promise<void> {
    await this.store.writeCatalog(new Map([[`storage:${id}`, undefined]]));
    this.storages.delete(id);
  }

  // Tables ----------------------------------------------------------------------------------

  table(namespace: string, name: string): TableDef | undefined {
    return this.tables.get(`${namespace}.${name}`);
  }

  /** The table with this id (the current definition). */
  tableById(tableId: number): TableDef | undefined {
    return this.byId.get(tableId);
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

  /** Every schema version of a table, oldest first (DESCRIBE TABLE ... HISTORY). */
  tableHistory(tableId: number): TableSchemaVersion[] {
    return this.schemas.filter((s) => s.tableId === tableId).sort((a, b) => a.version - b.version);
  }

  /**
   * The columns of one schema version of a table (SchemaLookup: the storage layers and the live
   * layer map rows of older versions with it, see schema-map.ts).
   */
  columnsAt(tableId: number, version: number): readonly ColumnDef[] | undefined {
    const current = this.byId.get(tableId);
    if (current?.schemaVersion === version) return current.columns;
    // Called for every row of an older version that is read: a map, not a scan of every version.
    const key = `${tableId}:${version}`;
    let columns = this.columnsCache.get(key);
    if (columns === undefined) {
      columns = this.schemaVersion(tableId, version)?.columns;
      if (columns !== undefined) this.columnsCache.set(key, columns);
    }
    return columns;
  }

  /** Creates a table with a fresh id, column ids 1..n and its first schema version. */
  async createTable(def: Omit<TableDef, 'id' | 'schemaVersion' | 'columns' | 'nextColumnId'> & { readonly columns: readonly ColumnSpec[] }): Promise<TableDef> {
    const columns: ColumnDef[] = def.columns.map((c, i) => ({ ...c, id: i + 1 }));
    const table: TableDef = { ...def, columns, nextColumnId: columns.length + 1, id: this.nextTableId, schemaVersion: 1 };
    const schema: TableSchemaVersion = { tableId: table.id, version: 1, columns: table.columns, createdAt: table.createdAt, change: 'CREATE TABLE' };
    await this.store.writeCatalog(new Map<string, unknown>([
      [`table:${qualifiedName(table)}`, table],
      [`schema:${table.id}:1`, schema],
      [NEXT_TABLE_ID_KEY, table.id + 1],
    ]));
    this.nextTableId = table.id + 1;
    this.tables.set(qualifiedName(table), table);
    this.byId.set(table.id, table);
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
    this.byId.set(table.id, table);
    this.changes.emit({ kind: 'table_altered', table, previous });
    return table;
  }

  /**
   * ALTER TABLE that changes the schema (or the table's options through a new version): writes the
   * new definition and its schema version in one atomic catalog write, then applies it and emits
   * `table_schema_changed` (previous and next definition, the change) in the same synchronous step.
   * `next` must be the current definition's successor: same id, schemaVersion + 1, and column ids
   * below `nextColumnId` never handed out again. Callers hold the DDL mutex.
   */
  async alterTable(next: TableDef, change: SchemaChange, createdAt = Date.now()): Promise<TableDef> {
    const previous = this.tables.get(qualifiedName(next));
    assert(previous !== undefined && previous.id === next.id, 'altering an existing table');
    assert(next.schemaVersion === previous.schemaVersion + 1, 'a schema change writes the next version');
    assert(next.nextColumnId >= previous.nextColumnId, 'column ids are never reused');
    const ids = new Set<number>();
    for (const c of next.columns) {
      assert(c.id > 0 && c.id < next.nextColumnId && !ids.has(c.id), `column ${c.name} has a fresh, unique id`);
      ids.add(c.id);
      const before = previous.columns.find((p) => p.id === c.id);
      assert(before !== undefined || c.id >= previous.nextColumnId, `column id ${c.id} of a dropped column is not reused`);
    }
    const schema: TableSchemaVersion = { tableId: next.id, version: next.schemaVersion, columns: next.columns, createdAt, change: change.description };
    await this.store.writeCatalog(new Map<string, unknown>([
      [`table:${qualifiedName(next)}`, next],
      [`schema:${next.id}:${next.schemaVersion}`, schema],
    ]));
    const current = this.tables.get(qualifiedName(next));
    assert(current === previous, 'the table changed while its new definition was written');
    this.tables.set(qualifiedName(next), next);
    this.byId.set(next.id, next);
    this.schemas.push(schema);
    this.changes.emit({ kind: 'table_schema_changed', table: next, previous, change });
    return next;
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
    const droppedAt = Date.now();
    const entries = new Map<string, unknown>([[`table:${qualifiedName(table)}`, undefined], [droppedKey(qualifiedName(table)), droppedAt]]);
    for (const accountId of this.grants.get(table.id) ?? []) entries.set(grantKey(table.id, accountId), undefined);
    this.grants.delete(table.id);
    for (const s of this.schemas) if (s.tableId === table.id) entries.set(`schema:${s.tableId}:${s.version}`, undefined);
    await this.store.writeCatalog(entries);
    this.grants.delete(table.id);
    this.meta.set(droppedKey(qualifiedName(table)), droppedAt);
    this.tables.delete(qualifiedName(table));
    this.byId.delete(table.id);
    for (let i = this.schemas.length - 1; i >= 0; i--) if (this.schemas[i]!.tableId === table.id) this.schemas.splice(i, 1);
    for (const key of [...this.columnsCache.keys()]) if (key.startsWith(`${table.id}:`)) this.columnsCache.delete(key);
    this.changes.emit({ kind: 'table_dropped', table });
  }

  /**
   * When a table of this name was last dropped (ms), if ever: a live-query resume from before that
   * may come from a client holding the dropped table's rows.
   */
  droppedAt(qualified: string): number | undefined {
    const at = this.meta.get(droppedKey(qualified));
    return typeof at === 'number' ? at : undefined;
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

/** A table record as stored before column ids. */
type StoredTable = Omit<TableDef, 'columns' | 'nextColumnId'> & { readonly columns: readonly ColumnSpec[]; readonly nextColumnId?: number };
type StoredSchema = Omit<TableSchemaVersion, 'columns' | 'change'> & { readonly columns: readonly ColumnSpec[]; readonly change?: string };

/** A table record that parsed as JSON but is not a table definition stops the start, naming its key. */
function checkStoredTable(key: string, value: unknown): void {
  const t = value as Partial<Record<keyof StoredTable, unknown>> | null;
  const ok = typeof t === 'object' && t !== null && Number.isSafeInteger(t.id) && (t.id as number) > 0
    && typeof t.namespace === 'string' && typeof t.name === 'string' && typeof t.type === 'string'
    && Array.isArray(t.columns) && t.columns.length > 0 && t.columns.every((c) => typeof c === 'object' && c !== null && typeof (c as { name?: unknown }).name === 'string')
    && Number.isSafeInteger(t.schemaVersion);
  if (!ok) throw damagedCatalogEntry(key, 'not a table definition');
}

/** The start-up error for a catalog entry that cannot be used: names the entry and what to do. */
export function damagedCatalogEntry(key: string, what: string, cause?: unknown): StartupError {
  return new StartupError(`the catalog entry '${key}' in the hot store is damaged (${what})`,
    'Restore the data dir from a backup (docs/operations.md, "Backup and restore")', { cause });
}

function withIds(columns: readonly ColumnSpec[]): ColumnDef[] {
  return columns.map((c, i) => ({ ...c, id: (c as Partial<ColumnDef>).id ?? i + 1 }));
}

/** Tables from before column ids: ids 1..n in schema order (no ALTER existed, so every version is that one). */
function migrateTable(stored: StoredTable): TableDef {
  if (stored.nextColumnId !== undefined && stored.columns.every((c) => (c as Partial<ColumnDef>).id !== undefined)) return stored as TableDef;
  const columns = withIds(stored.columns);
  return { ...stored, columns, nextColumnId: stored.nextColumnId ?? Math.max(0, ...columns.map((c) => c.id)) + 1 };
}

function migrateSchema(stored: StoredSchema): TableSchemaVersion {
  if (stored.change !== undefined && stored.columns.every((c) => (c as Partial<ColumnDef>).id !== undefined)) return stored as TableSchemaVersion;
  return { ...stored, columns: withIds(stored.columns), change: stored.change ?? (stored.version === 1 ? 'CREATE TABLE' : '') };
}

function droppedKey(qualified: string): string {
  return `dropped:${qualified}`;
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
