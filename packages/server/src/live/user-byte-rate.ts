/**
 * Bytes of WebSocket messages one account may send per second, across all its connections. The
 * per-connection message rate alone let one account send 1 MiB subscribe frames over 40 connections
 * (100 MB/s of SQL to parse on the thread every client shares: another user's query waited 10 s, an
 * attack review). A token bucket per account: `bytesPerSecond` refilled, up to `capacity` saved.
 */
import { TokenBucket } from '../util/token-bucket.js';

/** Accounts tracked at most (one bucket each). */
const BUCKETS_MAX = 10_000;

export class UserByteRate {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly bytesPerSecond: number,
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes `bytes` from the account's bucket; false (nothing taken) when it holds fewer. */
  take(userId: string, bytes: number): boolean {
    const bucket = this.bucketOf(userId);
    if (bucket.refill() < bytes) return false;
    bucket.tokens -= bytes;
    return true;
  }

  /**
   * Takes what the bucket holds, up to `bytes`; false when it is empty. For a message that was read
   * only to be refused (over the size limit): the refusal says why unless the account is over the rate.
   */
  takeUpTo(userId: string, bytes: number): boolean {
    const bucket = this.bucketOf(userId);
    if (bucket.refill() < 1) return false;
    bucket.tokens = Math.max(0, bucket.tokens - bytes);
    return true;
  }

  private bucketOf(userId: string): TokenBucket {
    let bucket = this.buckets.get(userId);
    if (bucket === undefined) {
      // Buckets that are full by now say nothing a new one would not.
      if (this.buckets.size >= BUCKETS_MAX) for (const [user, b] of this.buckets) if (b.refill() >= this.capacity) this.buckets.delete(user);
      // Still full of accounts sending now: start over (each gets a full bucket again, as a new account would).
      if (this.buckets.size >= BUCKETS_MAX) this.buckets.clear();
      bucket = new TokenBucket(this.bytesPerSecond, this.capacity, this.now);
      this.buckets.set(userId, bucket);
    }
    return bucket;
  }
}
