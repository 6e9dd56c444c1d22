/**
 * Start-up steps that can fail for reasons the operator fixes, not the code: taking the data dir
 * and binding the port. Both run before anything is created (no root account, no catalog entries),
 * and each failure becomes a StartupError whose one line names the problem and the fix.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import type { Config } from './config/config.js';
import { StartupError } from './util/errors.js';
import { HotStore } from './storage/hot/hot-store.js';
import type { StorageHealth } from './storage/storage-health.js';

/**
 * Makes sure the data dir exists and is writable, then opens RocksDB in it. RocksDB's LOCK file is
 * the data dir's lock: the kernel holds it for the life of the process (released even on kill -9),
 * so a second server or the offline reset-root-password command on the same dir fails here.
 */
export async function openDataDir(config: Config, health?: StorageHealth): Promise<HotStore> {
  const dir = config.dataDir;
  try {
    mkdirSync(join(dir, 'storage'), { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError(`data dir ${dir} is not writable (${code})`,
      'Give the server a directory it can write with --data-dir or KALAMDB_DATA_DIR, or fix its owner and permissions', { cause: error });
  }
  try {
    return await HotStore.open(join(dir, 'rocksdb'), config.durability, health);
  } catch (error) {
    const message = (error as Error).message ?? '';
    if (/\bLOCK\b/.test(message)) {
      throw new StartupError(`data dir ${dir} is in use by another KalamDB process (its lock ${join(dir, 'rocksdb', 'LOCK')} is held)`,
        'Stop the other server first, or start this one with another --data-dir', { cause: error });
    }
    if (/permission denied|read-only file system/i.test(message)) {
      throw new StartupError(`data dir ${dir} is not writable (${message.split('\n')[0]})`,
        'Fix the owner and permissions of the data dir, or choose another with --data-dir', { cause: error });
    }
    throw error;
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
