/**
 * Where a small commit group's WAL sync runs (sync-placement.ts): on the JS thread while the loop has
 * room and the disk is quick, on the pool when the loop is busy with other work or the disk is slow,
 * back on the loop when that passes. Driven by a fake clock and event loop utilization.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { LOOP_SYNC_MS_MAX, LOOP_SYNC_MS_STALL, SyncPlacement, type SyncClock } from '../src/storage/hot/sync-placement.js';

/** A clock whose loop spends `busyShare` of each passing millisecond active. */
class FakeClock implements SyncClock {
  time = 0;
  active = 0;
  idle = 0;
  busyShare = 0.3;
  now(): number {
    return this.time;
  }
  utilization(since?: EventLoopUtilization): EventLoopUtilization {
    const active = this.active - (since?.active ?? 0);
    const idle = this.idle - (since?.idle ?? 0);
    return { active, idle, utilization: active / (active + idle || 1) };
  }
  /** Lets `ms` pass, the loop active for its busy share of it. */
  pass(ms: number): void {
    this.time += ms;
    this.active += ms * this.busyShare;
    this.idle += ms * (1 - this.busyShare);
  }
  /** A sync on the loop: `ms` pass, all of it active. */
  block(placement: SyncPlacement, ms: number): void {
    this.time += ms;
    this.active += ms;
    placement.ranOnLoop(ms);
  }
}

/** Runs `groups` groups 2 ms apart, each synced where the placement says (1 ms on the loop); returns how many ran on the loop. */
function run(clock: FakeClock, placement: SyncPlacement, groups: number, syncMs = 1): number {
  let onLoop = 0;
  for (let i = 0; i < groups; i++) {
    clock.pass(2);
    if (placement.onLoop()) {
      clock.block(placement, syncMs);
      onLoop++;
    } else {
      clock.pass(syncMs);
    }
  }
  return onLoop;
}

/** Groups every 3 ms, synced where the placement says, until one runs on the loop (taking `syncMs`): ms until then. */
function msUntilLoop(clock: FakeClock, placement: SyncPlacement, syncMs: number): number {
  const start = clock.time;
  for (;;) {
    clock.pass(2);
    if (placement.onLoop()) {
      const at = clock.time - start;
      clock.block(placement, syncMs);
      return at;
    }
    clock.pass(1);
  }
}

describe('WAL sync placement', () => {
  it('syncs on the loop while it has room and syncs are quick, counting the syncs themselves as room', () => {
    const clock = new FakeClock();
    const placement = new SyncPlacement(clock);
    assert.equal(run(clock, placement, 200), 200);
    // Busy 80% of the time it has: 0.87 of the window if the syncs' own time counted as work.
    clock.busyShare = 0.8;
    assert.equal(run(clock, placement, 200), 200);
  });

  it('moves syncs to the pool while the loop is busy with other work, and back when it is not', () => {
    const clock = new FakeClock();
    const placement = new SyncPlacement(clock);
    clock.busyShare = 0.95;
    // The first window still counts as quiet; every window after it is busy.
    const busy = run(clock, placement, 300);
    assert.ok(busy <= 40, `${busy} of 300 syncs on a busy loop`);
    clock.busyShare = 0.2;
    run(clock, placement, 40); // one window to notice
    assert.equal(run(clock, placement, 100), 100);
  });

  it('sends the first sync after a quiet spell to the pool, then judges a fresh window', () => {
    const clock = new FakeClock();
    const placement = new SyncPlacement(clock);
    assert.equal(run(clock, placement, 100), 100);
    // A quiet minute, then the loop fully busy: averaged together they would look quiet.
    clock.busyShare = 0;
    clock.pass(60_000);
    clock.busyShare = 1;
    clock.pass(300);
    assert.equal(placement.onLoop(), false, 'unknown counts as busy');
    assert.equal(run(clock, placement, 100), 0, 'and the fresh windows see the busy loop');
    clock.busyShare = 0.2;
    run(clock, placement, 40);
    assert.equal(run(clock, placement, 100), 100);
  });

  it('puts up with an occasional slow sync, not with a slow disk', () => {
    const clock = new FakeClock();
    const placement = new SyncPlacement(clock);
    for (let i = 0; i < 50; i++) {
      assert.equal(run(clock, placement, 7, 1), 7);
      assert.equal(run(clock, placement, 1, 5), 1, 'one 5 ms sync among quick ones');
    }
    // Every sync 2 ms over the limit: the average crosses it within a few syncs, then the pool.
    const slow = run(clock, placement, 100, LOOP_SYNC_MS_MAX + 2);
    assert.ok(slow < 10, `${slow} slow syncs on the loop`);
  });

  it('leaves the loop at once after a stall, probes after a second, then backs off twice as long', () => {
    const clock = new FakeClock();
    const placement = new SyncPlacement(clock);
    run(clock, placement, 10);
    assert.ok(placement.onLoop());
    clock.block(placement, LOOP_SYNC_MS_STALL + 1);
    // Groups keep coming every 3 ms; the first back on the loop (a probe) stalls too.
    const first = msUntilLoop(clock, placement, LOOP_SYNC_MS_STALL + 1);
    assert.ok(first >= 1_000 && first < 1_010, `a probe after one second (${first} ms)`);
    const second = msUntilLoop(clock, placement, 1);
    assert.ok(second >= 2_000 && second < 2_010, `two seconds this time (${second} ms)`);
    // A quick probe: the disk is judged by it alone (not by the stalls before), and back to one second.
    assert.equal(run(clock, placement, 50), 50);
    clock.block(placement, LOOP_SYNC_MS_STALL + 1);
    const third = msUntilLoop(clock, placement, 1);
    assert.ok(third >= 1_000 && third < 1_010, `one second again (${third} ms)`);
  });
});
