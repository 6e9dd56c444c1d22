/**
 * Start-up steps that can fail for reasons the operator fixes, not the code: taking the data dir
 * and binding the port. Both run before anything is created (no root account, no catalog entries),
 * and each failure becomes a StartupError whose one line names the problem and the fix.
 */
import { accessSync, constants, existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import type { Config } from './config/config.js';
import { StartupError, isDiskFullError } from './util/errors.js';
import { HotStore } from './storage/hot/hot-store.js';
import type { StorageHealth } from './storage/storage-health.js';

/**
 * Makes sure the data dir exists and is writable, then opens RocksDB in it. RocksDB's LOCK file is
 * the data dir's lock: the kernel holds it for the life of the process (released even on kill -9),
 * so a second server or the offline reset-root-password command on the same dir fails here.
 */
export async function openDataDir(config: Config, health?: StorageHealth, opts: { expectHeldDatabase?: boolean } = {}): Promise<HotStore> {
  const dir = config.dataDir;
  try {
    mkdirSync(join(dir, 'storage'), { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError(`data dir ${dir} is not writable (${code})`,
      'Give the server a directory it can write with --data-dir or KALAMDB_DATA_DIR, or fix its owner and permissions', { cause: error });
  }
  const rocksDir = join(dir, 'rocksdb');
  // Off only for the lock check before a staged restore is applied: a crash in the middle of moving
  // the old database aside leaves jwt-secret or storage/ without rocksdb/, which the restore replaces.
  const held = opts.expectHeldDatabase === false ? null : heldDatabase(dir);
  // With the token secret from the environment and nothing flushed yet, the hot store's own files
  // are all that says a database lived here (a fault review: a lost CURRENT then opened as an empty
  // database, and RocksDB deleted the table files that held every row).
  const heldHere = held ?? (opts.expectHeldDatabase !== false && hotStoreFiles(rocksDir).length > 0 ? 'table and log files under rocksdb/' : null);
  if (heldHere !== null && !existsSync(join(rocksDir, 'CURRENT'))) {
    // RocksDB would create an empty store here, and the server a new root and catalog beside the old
    // tables' files (their ids reused by new tables).
    const manifests = hotStoreFiles(rocksDir).filter((name) => name.startsWith('MANIFEST-')).sort();
    if (manifests.length > 0) {
      throw new StartupError(`data dir ${dir} holds a database (${heldHere}) but its hot store ${rocksDir} lost its CURRENT file (its ${manifests.join(', ')} and table files are there)`,
        `CURRENT names the store's newest MANIFEST: write that name and a newline into it (e.g. \`echo ${manifests.at(-1)} > ${join(rocksDir, 'CURRENT')}\`), or restore the data dir from a backup (docs/operations.md, "Backup and restore")`);
    }
    throw new StartupError(`data dir ${dir} holds a database (${heldHere}) but its hot store ${rocksDir} is missing`,
      'Restore the data dir from a backup (docs/operations.md, "Backup and restore"); to start an empty database instead, use another --data-dir');
  }
  const kept = held !== null ? keepFilesBeforeOpen(rocksDir, join(dir, FILES_BEFORE_OPEN_DIR)) : null;
  let hot: HotStore;
  try {
    hot = await HotStore.open(rocksDir, config.durability, health);
  } catch (error) {
    // The links must not outlive a failed open (a second server refused by the lock would otherwise
    // keep the running one's replaced files on disk).
    if (kept !== null) rmSync(kept, { recursive: true, force: true });
    const message = (error as Error).message ?? '';
    if (/\bLOCK\b/.test(message)) {
      throw new StartupError(`data dir ${dir} is in use by another KalamDB process (its lock ${join(dir, 'rocksdb', 'LOCK')} is held)`,
        'Stop the other server first, or start this one with another --data-dir', { cause: error });
    }
    if (isDiskFullError(error)) {
      throw new StartupError(`data dir ${dir} is full: the hot store cannot recover its WAL (${message.split('\n')[0]})`,
        'Free space on its volume or grow it (at least the size of rocksdb/*.log plus a few MB), then start again; do not delete files inside the data dir', { cause: error });
    }
    if (/permission denied|read-only file system/i.test(message)) {
      throw new StartupError(`data dir ${dir} is not writable (${message.split('\n')[0]})`,
        'Fix the owner and permissions of the data dir, or choose another with --data-dir', { cause: error });
    }
    throw error;
  }
  // Root is created at the first start, before anything else: a catalog without users is no catalog.
  if (held !== null && !(await hot.hasCatalogEntry('user:'))) {
    await hot.close();
    // Under a name of its own, which no later start touches (a retry must not replace the only copy).
    let saved: string | null = null;
    if (kept !== null) {
      saved = `${kept}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(kept, saved);
    }
    throw new StartupError(`data dir ${dir} holds a database (${held}) but its hot store ${rocksDir} opened without its catalog: `
      + 'its MANIFEST is damaged or its files were replaced (rocksdb/LOG says more)',
      `The hot store's files as they were before this start are kept in ${saved ?? 'no copy (hard links failed)'}; restore the data dir from a backup (docs/operations.md, "Backup and restore")`);
  }
  if (kept !== null) rmSync(kept, { recursive: true, force: true });
  return hot;
}

/** Hard links to the hot store's files taken before each open; kept (renamed) only when the open lost the catalog. */
const FILES_BEFORE_OPEN_DIR = 'rocksdb-before-open';

/**
 * What says a database lived in this data dir before (null: nothing, a first start): the token
 * secret written at the first start, or flushed tables under storage/. Checked against the hot
 * store, whose catalog must then be there.
 */
function heldDatabase(dir: string): string | null {
  if (existsSync(join(dir, 'jwt-secret'))) return 'jwt-secret';
  if (holdsColdFiles(join(dir, 'storage'), 3)) return 'tables under storage/';
  return null;
}

/** The hot store's MANIFEST, table (.sst) and WAL (.log) files. */
function hotStoreFiles(rocksDir: string): string[] {
  try {
    return readdirSync(rocksDir).filter((name) => name.startsWith('MANIFEST-') || name.endsWith('.sst') || name.endsWith('.log'));
  } catch {
    return [];
  }
}

/**
 * A manifest or segment within `depth` levels (storage/<namespace>/<table>[/<user>]/): other entries
 * (`lost+found` on a volume of its own, empty folders left by a failed start) do not count.
 */
function holdsColdFiles(dir: string, depth: number): boolean {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) {
    if (e.isFile() && (e.name === 'manifest.json' || e.name.endsWith('.parquet'))) return true;
    if (e.isDirectory() && depth > 0 && e.name !== 'lost+found' && holdsColdFiles(join(dir, e.name), depth - 1)) return true;
  }
  return false;
}

/**
 * RocksDB trusts its MANIFEST: one cut short or damaged opens as an older or empty store, and the
 * files it no longer lists (the catalog's and the rows') are deleted during the open. Hard links
 * taken first keep them (no copy, no space while they are also in use); they are removed as soon as
 * the open is found good. A file system without hard links gets no copy (null).
 */
function keepFilesBeforeOpen(rocksDir: string, keepDir: string): string | null {
  rmSync(keepDir, { recursive: true, force: true });
  if (!existsSync(rocksDir)) return null;
  try {
    mkdirSync(keepDir);
    for (const entry of readdirSync(rocksDir, { withFileTypes: true })) {
      const name = entry.name;
      if (!entry.isFile() || name === 'LOCK' || name === 'LOG' || name.startsWith('LOG.old')) continue;
      linkSync(join(rocksDir, name), join(keepDir, name));
    }
    return keepDir;
  } catch {
    rmSync(keepDir, { recursive: true, force: true });
    return null;
  }
}

/**
 * Fails with the port's StartupError if the port cannot be bound, before anything is created in
 * the data dir (a start that cannot listen used to leave a new data dir's RocksDB files behind).
 * The port is let go at once; `bindPort` takes it for good once the store is open.
 */
export async function checkPort(config: Config): Promise<void> {
  if (config.port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error: NodeJS.ErrnoException) => reject(portError(error, config)));
    probe.listen(config.port, config.host, () => probe.close(() => resolve()));
  });
}

/** Binds the HTTP server's port; returns the port bound (the real one when 0 was asked). */
export async function bindPort(server: Server, config: Config): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => reject(portError(error, config));
    server.once('error', onError);
    server.listen(config.port, config.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function portError(error: NodeJS.ErrnoException, config: Config): Error {
  const where = `${config.host}:${config.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new StartupError(`port ${config.port} on ${config.host} is already in use`,
        'Stop whatever listens there (another KalamDB?) or choose another port with --port or KALAMDB_PORT', { cause: error });
    case 'EACCES':
      return new StartupError(`not allowed to listen on ${where}`,
        'Ports below 1024 need privileges: choose a port of 1024 or more with --port or KALAMDB_PORT', { cause: error });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new StartupError(`cannot listen on ${where}: no such local address`,
        'Set --host or KALAMDB_HOST to an address of this machine (127.0.0.1, 0.0.0.0)', { cause: error });
    default:
      return error;
  }
}
