/**
 * Typed operating errors. Every expected failure (bad input, missing table, denied access) is a
 * ServerError with a stable protocol code; the HTTP layer maps it to a status in one place.
 * Programmer errors are plain `assert` failures and are never caught to continue.
 */

export type ErrorCode =
  | 'MISSING_AUTHORIZATION'
  | 'INVALID_CREDENTIALS'
  | 'EMPTY_SQL'
  | 'PARAMS_WITH_BATCH'
  | 'INVALID_SQL'
  | 'SQL_EXECUTION_ERROR'
  | 'PERMISSION_DENIED'
  | 'PAYLOAD_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'RATE_LIMIT_EXCEEDED'
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'INTERNAL_ERROR';

/** HTTP status for each code; the only place the mapping lives. */
export const errorStatus: Readonly<Record<ErrorCode, number>> = Object.freeze({
  MISSING_AUTHORIZATION: 401,
  INVALID_CREDENTIALS: 401,
  EMPTY_SQL: 400,
  PARAMS_WITH_BATCH: 400,
  INVALID_SQL: 400,
  SQL_EXECUTION_ERROR: 400,
  PERMISSION_DENIED: 403,
  PAYLOAD_TOO_LARGE: 413,
  REQUEST_TIMEOUT: 408,
  RATE_LIMIT_EXCEEDED: 429,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
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
