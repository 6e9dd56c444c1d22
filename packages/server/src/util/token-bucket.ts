/**
 * A token bucket: `rate` tokens a second are added, up to `capacity`; callers take what they spend.
 * Serves the per-connection message rate, the per-account incoming bytes and the per-user LIKE steps.
 */
export class TokenBucket {
  /** May go below zero when a caller spends more than was there (it then waits longer to refill). */
  tokens: number;
  private at: number;

  constructor(readonly rate: number, readonly capacity: number, private readonly now: () => number = Date.now) {
    this.tokens = capacity;
    this.at = now();
  }

  /** Adds what the time since the last refill earned, up to the capacity; returns the tokens there are now. */
  refill(): number {
    const now = this.now();
    if (now !== this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
    }
    return this.tokens;
  }
}
