/**
 * send-backlog.ts on its own: when a connection's unsent bytes make it a slow consumer. A fake
 * socket stands in for the connection (its queued bytes set by the test, its 'drain' fired by it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { SendBacklog, type BacklogLimits, type BurstAccount } from '../src/live/send-backlog.js';
import { sleep } from './ws-client.js';

const newAccount = (): BurstAccount => ({ burstBytes: 0, stalls: 0, holders: new Set() });
const LIMITS: BacklogLimits = { liveBufferedBytesMax: 1000, liveBufferedBytesBurstMax: 4000, liveBurstBytesTotalMax: 5000, liveSlowConsumerGraceMs: 40 };

class FakeConnection {
  queued = 0;
  slowCalls = 0;
  readonly socket = new EventEmitter();
  constructor(readonly account: BurstAccount, limits = LIMITS) {
    // As the session does: a slow consumer is closed, which disposes its backlog.
    this.backlog = new SendBacklog(limits, account, () => this.queued, () => this.socket as never, () => { this.slowCalls++; this.backlog.dispose(); });
  }
  readonly backlog: SendBacklog;
  /** Offers `bytes`; when admitted they are queued, as a socket write would. */
  send(bytes: number, idleTakesAny = false): boolean {
    const ok = this.backlog.admit(bytes, idleTakesAny);
    if (ok) this.queued += bytes;
    return ok;
  }
  drain(): void {
    this.queued = 0;
    this.socket.emit('drain');
  }
}

describe('send backlog (slow-consumer rule)', () => {
  it('admits up to the cap with nothing counted; past it the bytes past the cap are counted until the socket drains', () => {
    const account = newAccount();
    const c = new FakeConnection(account);
    assert.ok(c.send(600));
    assert.ok(c.send(400));
    assert.equal(account.burstBytes, 0, 'at the cap exactly: not behind');
    assert.ok(c.send(500));
    assert.equal(account.burstBytes, 500);
    assert.ok(c.send(500));
    assert.equal(account.burstBytes, 1000, 'the count follows the connection, not each frame');
    c.drain();
    assert.equal(account.burstBytes, 0);
    assert.equal(account.stalls, 1);
    assert.equal(c.socket.listenerCount('drain'), 0);
    c.backlog.dispose();
  });

  it('refuses a frame that would take the connection past its burst limit', () => {
    const account = newAccount();
    const c = new FakeConnection(account);
    assert.ok(c.send(3900));
    assert.equal(c.send(101), false);
    assert.ok(c.send(100), 'exactly the burst limit is allowed');
    c.backlog.dispose();
    assert.equal(account.burstBytes, 0, 'a closed connection gives its bytes back');
  });

  it('refuses a frame that would take all connections together past the shared limit', () => {
    const account = newAccount();
    const a = new FakeConnection(account);
    const b = new FakeConnection(account);
    assert.ok(a.send(3500)); // 2500 past the cap
    assert.ok(b.send(3000)); // 2000 past: 4500 together
    assert.equal(b.send(501), false, '5001 together');
    assert.ok(b.send(500), '5000 together');
    assert.equal(account.burstBytes, 5000);
    a.drain();
    assert.equal(account.burstBytes, 2500);
    assert.ok(b.send(500));
    a.backlog.dispose();
    b.backlog.dispose();
    assert.equal(account.burstBytes, 0);
  });

  it('a full shared limit closes the connection holding the most of it, not a smaller one that asks for room', () => {
    const account = newAccount();
    const hog = new FakeConnection(account);
    const brief = new FakeConnection(account);
    assert.ok(hog.send(4000)); // 3000 past the cap
    assert.ok(brief.send(2500)); // 1500 past: 4500 together
    assert.ok(brief.send(700), 'room made by closing the hog');
    assert.equal(hog.slowCalls, 1);
    assert.equal(brief.slowCalls, 0);
    assert.equal(account.burstBytes, 2200);
    assert.deepEqual([...account.holders], [brief.backlog]);
    brief.backlog.dispose();
    assert.equal(account.burstBytes, 0);
  });

  it('the connection asking is refused when it would hold the most of the shared limit', () => {
    const account = newAccount();
    const a = new FakeConnection(account);
    const b = new FakeConnection(account);
    assert.ok(a.send(2500)); // 1500 past
    assert.ok(b.send(4000)); // 3000 past: 4500 together
    assert.equal(b.send(600), false, 'b would hold 3600, more than a');
    assert.equal(a.slowCalls, 0);
    a.backlog.dispose();
    b.backlog.dispose();
  });

  it('calls the connection too slow when the grace ends with it still behind, with no further frame offered', async () => {
    const c = new FakeConnection(newAccount());
    assert.ok(c.send(1500));
    await sleep(LIMITS.liveSlowConsumerGraceMs + 60);
    assert.equal(c.slowCalls, 1);
    c.backlog.dispose();
  });

  it('a connection back under its cap before the grace ends is not too slow, and its next stall gets a whole grace', async () => {
    const account = newAccount();
    const c = new FakeConnection(account);
    assert.ok(c.send(1500));
    c.queued = 800; // partly read: under the cap, the socket not yet drained
    assert.ok(c.send(100), 'a frame offered under the cap ends the stall');
    assert.equal(account.burstBytes, 0);
    await sleep(LIMITS.liveSlowConsumerGraceMs + 60);
    assert.equal(c.slowCalls, 0);
    assert.ok(c.send(800));
    await sleep(LIMITS.liveSlowConsumerGraceMs / 2);
    assert.equal(c.slowCalls, 0, 'half a grace into the second stall');
    c.drain();
    await sleep(LIMITS.liveSlowConsumerGraceMs + 20);
    assert.equal(c.slowCalls, 0, 'drained in time');
  });

  it('a grace that ends with the connection under its cap (read, but not drained) is not a slow consumer', async () => {
    const c = new FakeConnection(newAccount());
    assert.ok(c.send(1500));
    c.queued = 200;
    await sleep(LIMITS.liveSlowConsumerGraceMs + 60);
    assert.equal(c.slowCalls, 0);
    c.backlog.dispose();
  });

  it('a frame offered to an idle connection goes whatever its size when asked (a topic batch); otherwise limits hold', () => {
    const account = newAccount();
    const c = new FakeConnection(account);
    assert.ok(c.send(10_000, true));
    assert.equal(c.send(1, true), false, 'not idle any more: past the burst limit');
    c.drain();
    assert.equal(c.send(10_000), false);
    c.backlog.dispose();
  });

  it('a zero grace ends the stall on the next turn of the loop', async () => {
    const c = new FakeConnection(newAccount(), { ...LIMITS, liveSlowConsumerGraceMs: 0 });
    assert.ok(c.send(1500));
    assert.equal(c.slowCalls, 0);
    await sleep(20);
    assert.equal(c.slowCalls, 1);
    c.backlog.dispose();
  });
});
