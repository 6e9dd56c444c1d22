/**
 * Where a small commit group's WAL sync runs: on the JS thread (fdatasync called directly, the event
 * loop waits for the disk) or on the libuv pool (the loop goes on; the sync costs a hand-off to a pool
 * thread and a wake-up of the loop when it is done). On this VM the hand-offs and wake-ups cost ~300 µs
 * of CPU per group (16 single-row INSERTs: 15% of their CPU, decision 0031) against a ~0.9 ms wait.
 *
 * Waiting on the JS thread is only cheap while the loop has nothing better to do: with many writers and
 * nothing else, every request is in the group being synced. So the loop is chosen only while
 * - the loop's own work (active time minus the syncs it waited for) took at most LOOP_BUSY_MAX of the
 *   time it had in the last window (100-500 ms; after a longer spell without small syncs the first one
 *   goes to the pool while a new window measures): readers, live fan-out or HTTP parsing would
 *   otherwise queue behind the disk; and
 * - syncs on the loop stay quick: averaging at most LOOP_SYNC_MS_MAX over the last ~8 (a disk's
 *   occasional 4-5 ms sync here does not count against it) and none over LOOP_SYNC_MS_STALL. A slow or
 *   sick disk moves syncs to the pool for a second, then for twice as long at each slow probe (up to a
 *   minute), so it stalls the loop for one sync, not for every one.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** Syncs on the loop averaging more than this (ms, the last ~8) move syncs to the pool for a while. */
export const LOOP_SYNC_MS_MAX = 3;
/** One sync on the loop longer than this (ms) moves syncs to the pool at once. */
export const LOOP_SYNC_MS_STALL = 20;
/** The loop's own busy share of a window above which syncs go to the pool. */
export const LOOP_BUSY_MAX = 0.85;
const WINDOW_MS = 100;
/** A window this old (ms) when the next small sync comes says nothing about the loop now. */
const STALE_WINDOW_MS = 5 * WINDOW_MS;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

export interface SyncClock {
  now(): number;
  /** Event loop utilization since `since` (or since start-up), as perf_hooks reports it. */
  utilization(since?: EventLoopUtilization): EventLoopUtilization;
}

const realClock: SyncClock = {
  now: () => performance.now(),
  utilization: (since) => performance.eventLoopUtilization(since),
};

export class SyncPlacement {
  private windowStart: number;
  private windowUtilization: EventLoopUtilization;
  /** Time this window's syncs held the loop (ms): it counts as active, but it is not work to make room for. */
  private blockedInWindow = 0;
  private loopBusy = false;
  private poolUntil = 0;
  private averageMs = 0;
  private probing = false;
  private backoffMs = BACKOFF_FIRST_MS;

  constructor(private readonly clock: SyncClock = realClock) {
    this.windowStart = clock.now();
    this.windowUtilization = clock.utilization();
  }

  /** True when the next small group's sync should run on the JS thread. */
  onLoop(): boolean {
    const now = this.clock.now();
    const elapsed = now - this.windowStart;
    if (elapsed >= WINDOW_MS) {
      if (elapsed > STALE_WINDOW_MS) {
        // No small sync for a while: a long quiet spell would hide a busy last moment. Unknown
        // counts as busy: this sync goes to the pool, and the window starting now decides the next.
        this.loopBusy = true;
      } else {
        const window = this.clock.utilization(this.windowUtilization);
        // The share of the time the loop had (not waiting for syncs) that it spent working: one that
        // waited 40 ms of a 100 ms window and worked 30 ms was busy half of the time it had.
        const had = window.idle + window.active - this.blockedInWindow;
        this.loopBusy = had > 0 && (window.active - this.blockedInWindow) / had > LOOP_BUSY_MAX;
      }
      this.windowStart = now;
      this.windowUtilization = this.clock.utilization();
      this.blockedInWindow = 0;
    }
    return !this.loopBusy && now >= this.poolUntil;
  }

  /** Records a sync that ran on the JS thread and how long it took (ms). */
  ranOnLoop(ms: number): void {
    this.blockedInWindow += ms;
    // The first sync after a spell on the pool is a probe: it alone says how the disk is doing now.
    this.averageMs = this.probing ? ms : this.averageMs + (ms - this.averageMs) / 8;
    this.probing = false;
    if (ms <= LOOP_SYNC_MS_STALL && this.averageMs <= LOOP_SYNC_MS_MAX) {
      this.backoffMs = BACKOFF_FIRST_MS;
      return;
    }
    this.poolUntil = this.clock.now() + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.probing = true;
  }
}
