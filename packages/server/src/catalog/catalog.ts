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
  DEFAULT_NAMESPACE, type NamespaceDef, type TableDef, type TableSchemaVersion, type UserDef, qualifiedName,
} from './types.js';

export interface CatalogStore {
  loadCatalog(): Promise<Map<string, unknown>>;
  writeCatalog(entries: ReadonlyMap<string, unknown>): Promise<void>;
}

const NEXT_TABLE_ID_KEY = 'meta:next_table_id';

export class Catalog {
  private readonly namespaces = new Map<string, NamespaceDef>();
  private readonly tables = new Map<string, TableDef>();
  private readonly schemas: TableSchemaVersion[] = [];
  private readonly users = new Map<string, UserDef>();
  /** SELECT grants on RESTRICTED shared tables: table id → user ids. */
  private readonly grants = new Map<number, Set<string>>();
  private nextTableId = 1;
  /** Raw catalog entries other subsystems keep here (e.g. meta:max_seq). */
  readonly meta = new Map<string, unknown>();
  /** Every change to namespaces, tables, grants and users, emitted by the methods below. */
  readonly changes = new CatalogChanges();

  private constructor(private readonly store: CatalogStore) {}

  static async load(store: CatalogStore): Promise<Catalog> {
    const catalog = new Catalog(store);
    for (const [key, value] of await store.loadCatalog()) {
      const sep = key.indexOf(':');
      const kind = key.slice(0, sep);
      if (kind === 'ns') catalog.namespaces.set((value as NamespaceDef).name, value as NamespaceDef);
      else if (kind === 'table') catalog.tables.set(qualifiedName(value as TableDef), value as TableDef);
      else if (kind === 'schema') catalog.schemas.push(value as TableSchemaVersion);
      else if (kind === 'user') catalog.users.set((value as UserDef).userId, value as UserDef);
      else if (kind === 'grant') catalog.addGrantInMemory(value as { tableId: number; userId: string });
      else if (key === NEXT_TABLE_ID_KEY) catalog.nextTableId = value as number;
      else catalog.meta.set(key, value);
    }
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

  hasGrant(tableId: number, userId: string): boolean {
    return this.grants.get(tableId)?.has(userId) ?? false;
  }

  grantees(tableId: number): string[] {
    return [...(this.grants.get(tableId) ?? [])].sort();
  }

  async setGrant(tableId: number, userId: string, granted: boolean): Promise<void> {
    const key = `grant:${tableId}:${userId}`;
    await this.store.writeCatalog(new Map([[key, granted ? { tableId, userId } : undefined]]));
    if (granted) this.addGrantInMemory({ tableId, userId });
    else this.grants.get(tableId)?.delete(userId);
    this.changes.emit({ kind: 'grant_changed', tableId, userId, granted });
  }

  private addGrantInMemory(g: { tableId: number; userId: string }): void {
    let set = this.grants.get(g.tableId);
    if (set === undefined) {
      set = new Set();
      this.grants.set(g.tableId, set);
    }
    set.add(g.userId);
  }

  async dropTable(table: TableDef): Promise<void> {
    const entries = new Map<string, unknown>([[`table:${qualifiedName(table)}`, undefined]]);
    for (const userId of this.grants.get(table.id) ?? []) entries.set(`grant:${table.id}:${userId}`, undefined);
    for (const s of this.schemas) if (s.tableId === table.id) entries.set(`schema:${s.tableId}:${s.version}`, undefined);
    await this.store.writeCatalog(entries);
    this.grants.delete(table.id);
    this.tables.delete(qualifiedName(table));
    for (let i = this.schemas.length - 1; i >= 0; i--) if (this.schemas[i]!.tableId === table.id) this.schemas.splice(i, 1);
    this.changes.emit({ kind: 'table_dropped', table });
  }

  // Users -----------------------------------------------------------------------------------

  user(userId: string): UserDef | undefined {
    return this.users.get(userId);
  }

  listUsers(): UserDef[] {
    return [...this.users.values()].sort((a, b) => a.userId.localeCompare(b.userId));
  }

  async putUser(user: UserDef): Promise<void> {
    await this.store.writeCatalog(new Map([[`user:${user.userId}`, user]]));
    const previous = this.users.get(user.userId);
    this.users.set(user.userId, user);
    this.changes.emit(previous === undefined ? { kind: 'user_created', user } : { kind: 'user_altered', user, previous });
  }

  async dropUser(userId: string): Promise<void> {
    await this.store.writeCatalog(new Map([[`user:${userId}`, undefined]]));
    const previous = this.users.get(userId);
    this.users.delete(userId);
    if (previous !== undefined) this.changes.emit({ kind: 'user_dropped', previous });
  }
}
