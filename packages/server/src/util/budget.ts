/**
 * Per-request and per-statement budgets: the statement's deadline and the bytes of results the
 * request holds. The executor makes them per statement and they travel in the RunContext down to
 * DuckDB result reading and write-batch building. (They are passed, not kept in AsyncLocalStorage:
 * on Node 20 that turns on promise hooks for every request, which cost more than the limits.)
 */
import { LimitError, assert } from './errors.js';

/** A statement's time limit; the clock is injectable so tests need not sleep. */
export class Deadline {
  private readonly endMs: number;

  constructor(readonly limitMs: number, private readonly now: () => number = () => performance.now()) {
    assert(Number.isFinite(limitMs) && limitMs > 0, 'deadline limit is a positive number of ms');
    this.endMs = now() + limitMs;
  }

  remainingMs(): number {
    return Math.max(0, this.endMs - this.now());
  }

  expired(): boolean {
    return this.now() >= this.endMs;
  }

  /** Throws the statement's time-limit error once the deadline has passed. */
  check(): void {
    if (this.expired()) throw this.error();
  }

  error(): LimitError {
    return new LimitError('SQL_EXECUTION_ERROR', 'query_timeout_ms',
      `Statement exceeded the time limit of ${this.limitMs} ms (query_timeout_ms); nothing was written`);
  }
}

/** Bytes a request's results may hold; charged as rows are read, released when a statement keeps none. */
export class ByteBudget {
  private usedBytes = 0;

  constructor(readonly maxBytes: number) {
    assert(Number.isSafeInteger(maxBytes) && maxBytes > 0, 'byte budget is a positive integer');
  }

  get used(): number {
    return this.usedBytes;
  }

  remaining(): number {
    return Math.max(0, this.maxBytes - this.usedBytes);
  }

  /** Adds `bytes`; throws (and adds nothing) when the total would pass the maximum. */
  charge(bytes: number): void {
    assert(bytes >= 0, 'charged bytes are not negative');
    if (this.usedBytes + bytes > this.maxBytes) throw resultTooLarge(this.maxBytes);
    this.usedBytes += bytes;
  }

  /** Gives back `bytes` charged earlier (what one holder of a shared budget no longer keeps). */
  release(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.usedBytes, 'released bytes were charged');
    this.usedBytes -= bytes;
  }

  /** Gives back everything charged since `used` was `mark` (a statement whose rows were not kept). */
  releaseTo(mark: number): void {
    assert(mark >= 0 && mark <= this.usedBytes, 'release mark within the charged bytes');
    this.usedBytes = mark;
  }
}

/** The error for a result over `result_bytes_max`, wherever it is detected (reading or encoding). */
export function resultTooLarge(maxBytes: number): LimitError {
  return new LimitError('SQL_EXECUTION_ERROR', 'result_bytes_max',
    `Result is larger than ${maxBytes} bytes (result_bytes_max): add a LIMIT, select fewer columns or split the request`);
}

export interface Budgets {
  /** Null for statements that have no time limit (DDL, admin). */
  readonly deadline: Deadline | null;
  readonly resultBytes: ByteBudget;
}
