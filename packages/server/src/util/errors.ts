/**
 * Typed operating errors. Every expected failure (bad input, missing table, denied access) is a
 * ServerError with a stable protocol code; the HTTP layer maps it to a status in one place.
 * Programmer errors are plain `assert` failures and are never caught to continue.
 */

export type ErrorCode =
  | 'MISSING_AUTHORIZATION'
  | 'INVALID_CREDENTIALS'
  | 'TOKEN_EXPIRED'
  | 'EMPTY_SQL'
  | 'PARAMS_WITH_BATCH'
  | 'INVALID_SQL'
  | 'INVALID_INPUT'
  | 'SQL_EXECUTION_ERROR'
  | 'PERMISSION_DENIED'
  | 'PAYLOAD_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'RATE_LIMIT_EXCEEDED'
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'INSUFFICIENT_STORAGE'
  | 'TABLE_UNAVAILABLE'
  | 'STORAGE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

/** HTTP status for each code; the only place the mapping lives. */
export const errorStatus: Readonly<Record<ErrorCode, number>> = Object.freeze({
  MISSING_AUTHORIZATION: 401,
  INVALID_CREDENTIALS: 401,
  // Upstream's code for a well-signed access token past its `exp`: its clients refresh and retry on it.
  TOKEN_EXPIRED: 401,
  EMPTY_SQL: 400,
  PARAMS_WITH_BATCH: 400,
  INVALID_SQL: 400,
  INVALID_INPUT: 400,
  SQL_EXECUTION_ERROR: 400,
  PERMISSION_DENIED: 403,
  PAYLOAD_TOO_LARGE: 413,
  REQUEST_TIMEOUT: 408,
  RATE_LIMIT_EXCEEDED: 429,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  INSUFFICIENT_STORAGE: 507,
  // 409: the request is fine, the table's stored state is not; it stays so until STORAGE REPAIR TABLE.
  TABLE_UNAVAILABLE: 409,
  // 503: a remote storage (S3) cannot be reached; the same request can succeed once it is back.
  STORAGE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
});

export class ServerError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'ServerError';
  }
  get status(): number {
    return errorStatus[this.code];
  }

  /** The same error with another message ("Statement N failed: …" in batches), keeping its class. */
  withMessage(message: string): ServerError {
    return new ServerError(this.code, message);
  }
}

/**
 * A request asked for more than a configured limit allows. `limit` is the config key (snake_case,
 * as in the TOML file and docs/configuration.md), so logs and tests can tell the limits apart.
 */
export class LimitError extends ServerError {
  readonly limit: string;
  constructor(code: ErrorCode, limit: string, message: string) {
    super(code, message);
    this.limit = limit;
    this.name = 'LimitError';
  }

  override withMessage(message: string): LimitError {
    return new LimitError(this.code, this.limit, message);
  }
}

/**
 * A write the disk refused (ENOSPC, quota): the server stays up, reads keep working, and writes
 * resume once space is back (see storage/storage-health.ts). `cause` keeps the low-level error for logs.
 */
export class StorageFullError extends ServerError {
  constructor(cause?: unknown) {
    super('INSUFFICIENT_STORAGE', 'Insufficient storage: the data directory is full; writes are refused until space is freed (reads still work)');
    this.name = 'StorageFullError';
    if (cause !== undefined) this.cause = cause;
  }

  override withMessage(message: string): StorageFullError {
    const e = new StorageFullError(this.cause);
    e.message = message;
    return e;
  }
}

const DISK_FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);
/**
 * The texts the storage layers use for a full disk: libc's strerror (RocksDB's IOError carries it as
 * "While appending to file: …: No space left on device"), RocksDB's own NoSpace status, and DuckDB's
 * "IO Error: … No space left on device" from a Parquet COPY.
 */
const DISK_FULL_TEXT = /no space left on device|disk quota exceeded|\bENOSPC\b|\bEDQUOT\b|IO error: No ?space/i;

/**
 * The one classifier for "the disk is full": true when the error, or anything in its `cause` chain
 * or an AggregateError's members, is ENOSPC/EDQUOT by code or by text. rocksdb-native wraps the
 * RocksDB status as the `cause` of a generic "Batch was not applied" error, so the chain matters.
 */
export function isDiskFullError(error: unknown): boolean {
  const seen = new Set<unknown>();
  const stack: unknown[] = [error];
  while (stack.length > 0) {
    const e = stack.pop();
    if (e === null || e === undefined || seen.has(e)) continue;
    seen.add(e);
    if (e instanceof StorageFullError) return true;
    if (typeof e === 'object') {
      const { code, message, cause } = e as { code?: unknown; message?: unknown; cause?: unknown };
      if (typeof code === 'string' && DISK_FULL_CODES.has(code)) return true;
      if (typeof message === 'string' && DISK_FULL_TEXT.test(message)) return true;
      stack.push(cause);
      if (e instanceof AggregateError) stack.push(...(e.errors as unknown[]));
    } else if (typeof e === 'string' && DISK_FULL_TEXT.test(e)) {
      return true;
    }
  }
  return false;
}

/**
 * What RocksDB and the hot store's decoders say about data that is not what was written (a damaged
 * table file, a garbled value, a lost or cut MANIFEST): fault reviews saw them answered as 500s and
 * start-up stack traces.
 */
const CORRUPTION_TEXT = /\bCorruption: |checksum mismatch|Sst file size mismatch|MANIFEST may be corrupted|MANIFEST-\d+: No such file|corrupt index value|corrupt row state/;

/** The first line of an error's message (DuckDB's and RocksDB's run on with context and stack lines). */
export function errorLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/** Whether `error` (or its cause) reports damaged hot-store data. */
export function isCorruptionError(error: unknown): boolean {
  for (let e = error, depth = 0; e !== null && e !== undefined && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const message = typeof e === 'string' ? e : (e as { message?: unknown }).message;
    if (typeof message === 'string' && CORRUPTION_TEXT.test(message)) return true;
    if (typeof e !== 'object') return false;
  }
  return false;
}

/**
 * A table (or one partition of it) whose cold-tier files failed to parse or verify: its reads fail
 * with this until STORAGE REPAIR TABLE, while every other table is served. `file` is the damaged
 * file's path relative to the storage root, so operators can find it.
 */
export class TableUnavailableError extends ServerError {
  constructor(readonly table: string, readonly file: string, readonly reason: string) {
    super('TABLE_UNAVAILABLE', `Table '${table}' is unavailable: ${file}: ${reason} (run STORAGE CHECK TABLE ${table}, then STORAGE REPAIR TABLE ${table})`);
    this.name = 'TableUnavailableError';
  }

  override withMessage(message: string): ServerError {
    return new ServerError(this.code, message);
  }
}

/**
 * The server cannot start (or an offline command cannot run) because of something the operator can
 * fix: a busy port, a data dir in use or not writable, a bad setting. main.ts prints it as one line,
 * `problem: fix`, and exits 1 without a stack trace; anything else is a bug and keeps its stack.
 */
export class StartupError extends Error {
  readonly problem: string;
  readonly fix: string;
  constructor(problem: string, fix: string, options?: { cause?: unknown }) {
    super(`${problem}. ${fix}`, options);
    this.problem = problem;
    this.fix = fix;
    this.name = 'StartupError';
  }
}

export const invalidSql = (message: string): ServerError => new ServerError('INVALID_SQL', message);
export const execError = (message: string): ServerError => new ServerError('SQL_EXECUTION_ERROR', message);
export const denied = (message: string): ServerError => new ServerError('PERMISSION_DENIED', message);

/** Crash-worthy invariant check: a failure here is a bug, not bad input. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new Error(`Assertion failed: ${message}`);
}

export function assertNever(value: never, what = 'value'): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(value)}`);
}
