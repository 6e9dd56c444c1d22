/**
 * Snowflake ids: milliseconds since 2024-01-01 in the high bits, then 10 bits of node id and a
 * 12-bit sequence. Used for `_seq` (so it orders by commit time) and for SNOWFLAKE_ID() defaults.
 * The generator never goes backwards, even when the wall clock does or the process restarts
 * (callers seed it with the largest id persisted).
 */

export const SNOWFLAKE_EPOCH_MS = 1704067200000n; // 2024-01-01T00:00:00Z
const SEQUENCE_BITS = 12n;
const NODE_BITS = 10n;
const SEQUENCE_MAX = (1n << SEQUENCE_BITS) - 1n;

export class SnowflakeGenerator {
  private last = 0n;
  /** Date.now() at the previous next(). */
  private lastCallMs = -1;
  private readonly nodeBits: bigint;

  constructor(nodeId = 0) {
    this.nodeBits = (BigInt(nodeId) & ((1n << NODE_BITS) - 1n)) << SEQUENCE_BITS;
  }

  /** Makes every later id larger than `id`. */
  observe(id: bigint): void {
    if (id > this.last) this.last = id;
  }

  next(): bigint {
    const now = Date.now();
    // In the millisecond of the previous call the time-based id is never above the last one: skip
    // building it (a STREAM INSERT of 100 events takes 100 ids in the same millisecond).
    let candidate = now === this.lastCallMs ? this.last : ((BigInt(now) - SNOWFLAKE_EPOCH_MS) << (NODE_BITS + SEQUENCE_BITS)) | this.nodeBits;
    this.lastCallMs = now;
    if (candidate <= this.last) {
      // Same millisecond (or the clock went back): take the next id after the last one.
      candidate = this.last + 1n;
      if ((candidate & SEQUENCE_MAX) === 0n) candidate |= this.nodeBits;
    }
    this.last = candidate;
    return candidate;
  }
}

/** The smallest snowflake made at or after `ms` (Unix milliseconds): `_seq < this` means older. */
export function snowflakeAtMs(ms: number): bigint {
  const since = BigInt(ms) - SNOWFLAKE_EPOCH_MS;
  return since <= 0n ? 0n : since << (NODE_BITS + SEQUENCE_BITS);
}

/** Milliseconds since the Unix epoch at which a snowflake was made. */
export function snowflakeTimeMs(id: bigint): number {
  return Number((id >> (NODE_BITS + SEQUENCE_BITS)) + SNOWFLAKE_EPOCH_MS);
}
