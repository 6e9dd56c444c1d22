/**
 * The object interface of a remote storage (S3 today): what the cold tier needs to keep segment files
 * and manifest copies somewhere other than the local disk. Keys are '/'-separated paths relative to
 * the storage's base (bucket and prefix are the implementation's business). Every method rejects
 * with StorageUnreachableError when the service cannot be reached or refuses, naming the operation.
 */
import { ServerError } from '../../util/errors.js';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
}

export interface ObjectStore {
  /**
   * Uploads a local file (multipart when large); resolves once the object is durable in the store.
   * `onProgress` is called as parts complete.
   */
  putFile(key: string, path: string, onProgress?: () => void): Promise<void>;
  putBytes(key: string, bytes: Uint8Array): Promise<void>;
  /** Downloads to `path` (written in place: callers download to a temp name and rename). */
  getFile(key: string, path: string): Promise<void>;
  getBytes(key: string): Promise<Uint8Array>;
  /** Objects whose key starts with `prefix`, up to `limit`. */
  list(prefix: string, limit?: number): Promise<ObjectInfo[]>;
  /** Deletes the objects (missing ones are not an error). */
  delete(keys: readonly string[]): Promise<void>;
  /** Releases connections. */
  close(): void;
}

/** A remote storage could not be reached or refused an operation (HTTP 503 with the cause). */
export class StorageUnreachableError extends ServerError {
  constructor(readonly storageId: string, operation: string, cause: string) {
    super('STORAGE_UNAVAILABLE', `Storage '${storageId}' is unavailable: ${operation} failed: ${cause}`);
  }
}
