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

describe('WAL sync placement', () => {
  it('syncs on the loop while it has room and syncs are quick, counting the syncs themselves as room', () => {
    const clock = new FakeClock();
    const placement = new SyncPlacement(clock);
    assert.equal(run(clock, placement, 200), 200);
    // Busy 70% of the time it has; the syncs' own time (a third of all) does not count as work.
    clock.busyShare = 0.7;
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
    assert.equal(placement.onLoop(), false);
    clock.pass(999);
    assert.equal(placement.onLoop(), false);
    clock.pass(1);
    assert.equal(placement.onLoop(), true, 'a probe after one second');
    clock.block(placement, LOOP_SYNC_MS_STALL + 1); // the probe stalls too
    clock.pass(1_500);
    assert.equal(placement.onLoop(), false, 'two seconds this time');
    clock.pass(500);
    assert.equal(placement.onLoop(), true);
    // A quick probe: the disk is judged by it alone (not by the stalls before), and back to one second.
    clock.block(placement, 1);
    assert.equal(run(clock, placement, 50), 50);
    clock.block(placement, LOOP_SYNC_MS_STALL + 1);
    clock.pass(1_000);
    assert.equal(placement.onLoop(), true);
  });
});
