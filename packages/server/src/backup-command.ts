/**
 * `main.js backup --to <dir> [--data-dir d] [--config f]` (`kalamdb backup`): a backup of a stopped
 * server's data dir, in the same format as BACKUP DATABASE (the data dir's lock refuses it while a
 * server runs; use BACKUP DATABASE then). Nothing is recovered or changed in the data dir: what it
 * holds is copied as found, and a restore's first start completes it like any start after a crash.
 */
import { filesystemStorageDirs } from './storage/storages/storage-locations.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from './config/config.js';
import { StartupError } from './util/errors.js';
import { openDataDir } from './startup.js';
import { Catalog } from './catalog/catalog.js';
import { ColdStore } from './storage/cold/cold-store.js';
import { DuckEngine } from './storage/duck/duck-engine.js';
import { fileEngineConfig } from './engine-config.js';
import { writeBackup } from './storage/backup/backup-writer.js';
import { validateBackupPath } from './sql/backup-parser.js';
import { ServerError } from './util/errors.js';

/** Splits `--to <dir>` from the server flags the rest of the command line holds. */
export function backupTarget(argv: readonly string[]): { to: string; rest: string[] } {
  const rest: string[] = [];
  let to: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--to') to = argv[++i];
    else if (argv[i]!.startsWith('--to=')) to = argv[i]!.slice(5);
    else rest.push(argv[i]!);
  }
  if (to === undefined) throw new StartupError('backup needs --to', 'Usage: kalamdb backup --to <new dir> --data-dir <stopped server\'s data dir>');
  return { to: resolve(to), rest };
}

export async function backupCommand(config: Config, to: string): Promise<string> {
  try {
    validateBackupPath(to);
  } catch (error) {
    if (error instanceof ServerError) throw new StartupError(`bad backup path: ${error.message}`, 'Choose a new directory outside system directories');
    throw error;
  }
  if (!existsSync(join(config.dataDir, 'rocksdb'))) throw new StartupError(`data dir ${config.dataDir} holds no database`, 'Pass the data dir of a stopped server with --data-dir');
  let hot;
  try {
    hot = await openDataDir(config);
  } catch (error) {
    if (error instanceof StartupError && /in use/.test(error.problem)) {
      throw new StartupError(`a KalamDB server is running on data dir ${config.dataDir}`, 'Use BACKUP DATABASE on the running server, or stop it first', { cause: error });
    }
    throw error;
  }
  const catalog = await Catalog.load(hot);
  const duck = await DuckEngine.open(fileEngineConfig(config, filesystemStorageDirs(catalog.listStorages())));
  try {
    const cold = ColdStore.open(config.dataDir, duck, (id) => catalog.storage(id), config.remoteCacheBytesMax);
    cold.schemas = catalog;
    const result = await writeBackup({
      catalog, hot, cold, dataDir: config.dataDir, nodeId: config.nodeId, jwtSecretConfigured: config.jwtSecret !== null,
      freezeCold: (fn) => fn(), withCatalogQuiet: (fn) => fn(),
    }, to, { marker: 'offline', skipCatalogKey: null });
    return JSON.stringify(result);
  } catch (error) {
    if (error instanceof ServerError) throw new StartupError(`backup failed: ${error.message}`, 'Fix the data dir (STORAGE CHECK TABLE on a running server) or choose another target');
    if (error instanceof Error && /^Backup path/.test(error.message)) throw new StartupError(error.message, 'Choose a new or empty directory');
    throw error;
  } finally {
    duck.close();
    await hot.close();
  }
}
