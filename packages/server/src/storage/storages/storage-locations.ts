/**
 * Where each table partition's cold tier lives, by the table's storage (system.storages):
 *   - filesystem storages: `<base>/<rendered template>`, manifest and segments together;
 *   - S3 storages: segments are objects under `s3://bucket/prefix/<rendered template>/`; the manifest
 *     (the commit point, like the RocksDB hot tier it pairs with) and a bounded cache of segment files
 *     live locally under `<data>/remote/<storage id>/<rendered template>/`, and a copy of the
 *     manifest is uploaded next to the segments so other tools can read the table from the bucket.
 * The built-in 'local' storage is `<data>/storage` with the default templates (the layout from
 * before storages existed, so old data directories need no migration).
 */
import { isAbsolute, join, resolve } from 'node:path';
import { assert } from '../../util/errors.js';
import { LOCAL_STORAGE_ID, tableStorageId, type StorageDef, type TableDef } from '../../catalog/types.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore, s3Settings } from './s3-object-store.js';
import { DEFAULT_SHARED_TEMPLATE, DEFAULT_USER_TEMPLATE, renderTablePath, userPathShape, type UserPathShape } from './templates.js';

/** A partition's place: its local directory, and for remote storages the object store and key prefix. */
export interface PartitionLocation {
  readonly dir: string;
  readonly remote: { readonly store: ObjectStore; readonly storageId: string; readonly prefix: string } | null;
}

/** A table's place: the directory above its partitions (USER tables) and how partition dirs are named. */
export interface TableLocation {
  /** SHARED tables: the partition directory. USER tables: the directory holding each user's. */
  readonly dir: string;
  /** The same for the remote store ('' prefix relative to the storage base), null when local. */
  readonly remotePrefix: string | null;
  readonly user: UserPathShape | null;
  readonly remote: ObjectStore | null;
  readonly storageId: string;
}

export class StorageLocations {
  private readonly stores = new Map<string, { updatedAt: number; store: ObjectStore }>();

  /**
   * `localRoot`: the built-in storage's base (`<data>/storage`); `cacheRoot`: where remote storages keep
   * manifests and cached segments (`<data>/remote`).
   */
  constructor(
    readonly localRoot: string,
    readonly cacheRoot: string,
    private readonly lookup: (storageId: string) => StorageDef | undefined,
  ) {}

  /** The storage definition, the built-in 'local' included (its name/description may be ALTERed). */
  storage(storageId: string): StorageDef | undefined {
    const stored = this.lookup(storageId);
    if (storageId !== LOCAL_STORAGE_ID) return stored;
    return {
      storageId: LOCAL_STORAGE_ID,
      storageName: stored?.storageName ?? 'Local Storage',
      description: stored?.description ?? 'Default local filesystem storage',
      storageType: 'filesystem',
      baseDirectory: this.localRoot,
      credentials: null,
      config: null,
      sharedTablesTemplate: DEFAULT_SHARED_TEMPLATE,
      userTablesTemplate: DEFAULT_USER_TEMPLATE,
      createdAt: stored?.createdAt ?? 0,
      updatedAt: stored?.updatedAt ?? 0,
    };
  }

  table(table: TableDef): TableLocation {
    const storage = this.storage(tableStorageId(table));
    assert(storage !== undefined, `table ${table.namespace}.${table.name} names storage ${tableStorageId(table)}, which does not exist`);
    const template = table.type === 'USER' ? storage.userTablesTemplate : storage.sharedTablesTemplate;
    const rendered = renderTablePath(template || (table.type === 'USER' ? DEFAULT_USER_TEMPLATE : DEFAULT_SHARED_TEMPLATE), table.namespace, table.name);
    const user = table.type === 'USER' ? userPathShape(rendered) : null;
    const relative = user === null ? rendered : user.parent;
    if (storage.storageType === 'filesystem') {
      return { dir: join(filesystemBase(storage), relative), remotePrefix: null, user, remote: null, storageId: storage.storageId };
    }
    return { dir: join(this.cacheRoot, storage.storageId, relative), remotePrefix: relative, user, remote: this.objectStore(storage), storageId: storage.storageId };
  }

  /** `partition` is validated by the caller (it becomes a path segment). */
  partition(table: TableDef, partition: string): PartitionLocation {
    const t = this.table(table);
    const leaf = t.user === null ? '' : `${t.user.prefix}${partition}${t.user.suffix}`;
    const dir = leaf === '' ? t.dir : join(t.dir, leaf);
    if (t.remote === null) return { dir, remote: null };
    const prefix = leaf === '' ? t.remotePrefix! : `${t.remotePrefix === '' ? '' : `${t.remotePrefix}/`}${leaf}`;
    return { dir, remote: { store: t.remote, storageId: t.storageId, prefix } };
  }

  /** The object store of a remote storage (one client per storage, replaced when it is ALTERed). */
  objectStore(storage: StorageDef): ObjectStore {
    assert(storage.storageType === 's3', 'object store of a remote storage');
    const cached = this.stores.get(storage.storageId);
    if (cached !== undefined && cached.updatedAt === storage.updatedAt) return cached.store;
    cached?.store.close();
    const store = new S3ObjectStore(storage.storageId, s3Settings(storage.baseDirectory, storage.config, storage.credentials));
    this.stores.set(storage.storageId, { updatedAt: storage.updatedAt, store });
    return store;
  }

  /** DROP STORAGE: closes its client. */
  forget(storageId: string): void {
    this.stores.get(storageId)?.store.close();
    this.stores.delete(storageId);
  }

  close(): void {
    for (const { store } of this.stores.values()) store.close();
    this.stores.clear();
  }
}

/** A filesystem storage's base directory (relative paths were resolved when it was created). */
export function filesystemBase(storage: StorageDef): string {
  return isAbsolute(storage.baseDirectory) ? storage.baseDirectory : resolve(storage.baseDirectory);
}

/** The base directories of the filesystem storages among `storages` (the file engine must reach them). */
export function filesystemStorageDirs(storages: readonly StorageDef[]): string[] {
  return storages.filter((d) => d.storageType === 'filesystem').map(filesystemBase);
}
