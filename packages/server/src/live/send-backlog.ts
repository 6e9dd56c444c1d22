/**
 * When a live connection is a slow consumer. A connection may keep `live_buffered_bytes_max` unsent
 * bytes for as long as it likes. Past that it is behind, and it may stay behind for
 * `live_slow_consumer_grace_ms` with up to `live_buffered_bytes_burst_max` unsent, while all
 * connections together hold at most `live_burst_bytes_total_max` past their caps. A connection
 * that is still past its cap when the grace ends, or that would go past its burst, is too slow: its
 * owner closes it with SLOW_CONSUMER. When the shared total is full, the connection holding the most
 * of it is closed to make room (or the one asking, if it would hold the most).
 *
 * Why a grace at all: a reader that stalls for a moment (a GC, a busy client thread, a fresh
 * process's first second) is not a slow consumer. A fixed 8 MiB cap cut such readers off at a
 * STREAM table's 50k events/s after ~125 ms (docs/benchmarks.md, run L); the burst rides that out,
 * and the shared total keeps many stalled readers at once from holding the server's memory.
 */
import type { Config } from '../config/config.js';

/** Bytes all connections together hold past their caps (one per server, shared by its sessions). */
export interface BurstAccount {
  burstBytes: number;
  /** Stalls begun (a connection going past its cap), for /metrics. */
  stalls: number;
  /** The connections behind now (what `burstBytes` is the sum of). */
  readonly holders: Set<SendBacklog>;
}

export type BacklogLimits = Pick<Config, 'liveBufferedBytesMax' | 'liveBufferedBytesBurstMax' | 'liveBurstBytesTotalMax' | 'liveSlowConsumerGraceMs'>;

export class SendBacklog {
  /** Past its cap now (and in the account's holders). */
  private behind = false;
  /** What this connection counts in the shared account: its unsent bytes past the cap at the last look. */
  private counted = 0;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly onDrain = (): void => this.caughtUp();

  constructor(
    private readonly limits: BacklogLimits,
    private readonly account: BurstAccount,
    /** The connection's unsent bytes now. */
    private readonly queued: () => number,
    /** The connection's TCP socket, whose 'drain' says it caught up (undefined once it is gone). */
    private readonly socket: () => { once(e: 'drain', f: () => void): unknown; off(e: 'drain', f: () => void): unknown } | undefined,
    /** Called once when the grace ends with the connection still behind. */
    private readonly tooSlow: () => void,
  ) {}

  /**
   * Whether `bytes` more may be queued now. False: the connection is a slow consumer (its owner
   * closes it). With `idleTakesAny`, a frame offered to a connection with nothing unsent always
   * goes, whatever its size (a topic batch the client asked for).
   */
  admit(bytes: number, idleTakesAny = false): boolean {
    const queued = this.queued();
    if (idleTakesAny && queued === 0) {
      // Nothing unsent: whatever stall there was is over (its 'drain' may not have been emitted yet).
      if (this.behind) this.caughtUp();
      return true;
    }
    const after = queued + bytes;
    const cap = this.limits.liveBufferedBytesMax;
    if (after <= cap) {
      if (this.behind) this.caughtUp();
      return true;
    }
    if (after > this.limits.liveBufferedBytesBurstMax) return false;
    const excess = after - cap;
    while (this.account.burstBytes - this.counted + excess > this.limits.liveBurstBytesTotalMax) {
      // The shared limit is full: the connection holding the most of it goes, unless that would be
      // this one (many paused readers must not take the grace away from one that stalls briefly).
      const largest = this.largestOtherHolder();
      if (largest === undefined || largest.counted <= excess) return false;
      largest.evict();
    }
    this.account.burstBytes += excess - this.counted;
    this.counted = excess;
    if (!this.behind) this.fellBehind();
    return true;
  }

  /** The connection is closed: what it counted goes back to the shared account. */
  dispose(): void {
    this.caughtUp();
  }

  private largestOtherHolder(): SendBacklog | undefined {
    let largest: SendBacklog | undefined;
    for (const holder of this.account.holders) {
      if (holder !== this && (largest === undefined || holder.counted > largest.counted)) largest = holder;
    }
    return largest;
  }

  /** Closed to make room in the shared account (its owner closes the connection, which disposes this). */
  private evict(): void {
    this.tooSlow();
    this.caughtUp();
  }

  private fellBehind(): void {
    this.behind = true;
    this.account.holders.add(this);
    this.account.stalls++;
    this.socket()?.once('drain', this.onDrain);
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      if (this.queued() > this.limits.liveBufferedBytesMax) this.tooSlow();
      else this.caughtUp();
    }, this.limits.liveSlowConsumerGraceMs);
    this.graceTimer.unref();
  }

  private caughtUp(): void {
    if (!this.behind) return;
    this.behind = false;
    this.account.holders.delete(this);
    this.account.burstBytes -= this.counted;
    this.counted = 0;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.socket()?.off('drain', this.onDrain);
  }
}
