/**
 * STORAGE CHECK and the check CREATE/ALTER STORAGE run before accepting a storage: write a small
 * object, read it back, list it, delete it, timing the round trips. Upstream's result shape
 * (status healthy | degraded | unreachable, the four capabilities, latency, and with EXTENDED the
 * capacity figures).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StorageDef } from '../../catalog/types.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore, s3Settings } from './s3-object-store.js';
import { filesystemBase } from './storage-locations.js';

export interface StorageHealth {
  readonly status: 'healthy' | 'degraded' | 'unreachable';
  readonly readable: boolean;
  readonly writable: boolean;
  readonly listable: boolean;
  readonly deletable: boolean;
  readonly latencyMs: number;
  /** EXTENDED only: the file system's size (filesystem storages; S3 has no total). */
  readonly totalBytes: number | null;
  /** EXTENDED only: bytes in use (the file system's; for S3 the objects under the base prefix). */
  readonly usedBytes: number | null;
  readonly error: string | null;
  readonly testedAt: number;
}

/** Objects counted for an S3 storage's used_bytes (EXTENDED); past it the figure is a lower bound. */
const USED_BYTES_OBJECTS_MAX = 100_000;
const PROBE_DIR = '.kalamdb-health';

/** One probe operation: the step, and what it does on a filesystem or an object store. */
interface ProbeTarget {
  write(name: string, bytes: Buffer): Promise<void>;
  read(name: string): Promise<Buffer>;
  list(): Promise<string[]>;
  remove(name: string): Promise<void>;
  capacity(): Promise<{ total: number | null; used: number }>;
}

/**
 * A probe gives up after this long in all: a peer that accepts connections and never answers held
 * CREATE STORAGE for minutes (each step has its own request timeout and retries), and with it every
 * statement that waited for the DDL lock (an attack review).
 */
export const PROBE_DEADLINE_MS = 10_000;

/**
 * Probes a storage. `deadlineMs` bounds the whole probe (CREATE/ALTER STORAGE pass PROBE_DEADLINE_MS);
 * STORAGE CHECK has none, as EXTENDED may list many objects.
 */
export async function probeStorage(storage: StorageDef, extended: boolean, deadlineMs = Infinity): Promise<StorageHealth> {
  if (storage.storageType === 'filesystem') return withDeadline(probe(filesystemTarget(filesystemBase(storage)), extended), deadlineMs);
  let store: ObjectStore;
  try {
    store = new S3ObjectStore(storage.storageId, s3Settings(storage.baseDirectory, storage.config, storage.credentials), 1);
  } catch (error) {
    return failed((error as Error).message);
  }
  try {
    return await withDeadline(probe(objectTarget(store), extended), deadlineMs);
  } finally {
    // Also ends the requests of a probe that ran out of time.
    store.close();
  }
}

async function withDeadline(probing: Promise<StorageHealth>, deadlineMs: number): Promise<StorageHealth> {
  if (deadlineMs === Infinity) return probing;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<StorageHealth>((resolve) => {
    timer = setTimeout(() => resolve({ ...failed(`no answer within ${deadlineMs} ms`), latencyMs: deadlineMs }), deadlineMs);
  });
  try {
    return await Promise.race([probing, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function probe(target: ProbeTarget, extended: boolean): Promise<StorageHealth> {
  const started = performance.now();
  const name = `probe-${randomBytes(8).toString('hex')}`;
  const payload = randomBytes(64);
  const errors: string[] = [];
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (error) {
      errors.push(`${what}: ${(error as Error).message}`);
      return undefined;
    }
  };
  const writable = (await step('write', async () => { await target.write(name, payload); return true; })) === true;
  const readBack = writable ? await step('read', () => target.read(name)) : undefined;
  const readable = readBack !== undefined && Buffer.compare(readBack, payload) === 0;
  if (readBack !== undefined && !readable) errors.push('read: the probe object came back different');
  const listed = await step('list', () => target.list());
  const listable = listed !== undefined && (!writable || listed.includes(name));
  if (listed !== undefined && !listable) errors.push('list: the probe object was not listed');
  const deletable = writable && (await step('delete', async () => { await target.remove(name); return true; })) === true;
  const capacity = extended ? await step('capacity', () => target.capacity()) : undefined;
  const latencyMs = Math.round(performance.now() - started);
  const ok = [readable, writable, listable, deletable];
  return {
    status: ok.every(Boolean) ? 'healthy' : ok.some(Boolean) ? 'degraded' : 'unreachable',
    readable, writable, listable, deletable, latencyMs,
    totalBytes: capacity?.total ?? null,
    usedBytes: capacity?.used ?? null,
    error: errors.length === 0 ? null : errors.join('; '),
    testedAt: Date.now(),
  };
}

function failed(error: string): StorageHealth {
  return {
    status: 'unreachable', readable: false, writable: false, listable: false, deletable: false, latencyMs: 0,
    totalBytes: null, usedBytes: null, error, testedAt: Date.now(),
  };
}

function filesystemTarget(base: string): ProbeTarget {
  const dir = join(base, PROBE_DIR);
  return {
    write: async (name, bytes) => { await mkdir(dir, { recursive: true }); await writeFile(join(dir, name), bytes); },
    read: (name) => readFile(join(dir, name)),
    list: () => readdir(dir),
    remove: async (name) => { await rm(join(dir, name)); await rm(dir, { recursive: true, force: true }); },
    capacity: async () => {
      const fs = await statfs(base);
      return { total: fs.blocks * fs.bsize, used: (fs.blocks - fs.bfree) * fs.bsize };
    },
  };
}

function objectTarget(store: ObjectStore): ProbeTarget {
  const key = (name: string): string => `${PROBE_DIR}/${name}`;
  return {
    write: (name, bytes) => store.putBytes(key(name), bytes),
    read: async (name) => Buffer.from(await store.getBytes(key(name))),
    list: async () => (await store.list(`${PROBE_DIR}/`)).map((o) => o.key.slice(PROBE_DIR.length + 1)),
    remove: (name) => store.delete([key(name)]),
    capacity: async () => ({ total: null, used: (await store.list('', USED_BYTES_OBJECTS_MAX)).reduce((n, o) => n + o.size, 0) }),
  };
}
