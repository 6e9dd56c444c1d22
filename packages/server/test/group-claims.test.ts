/**
 * Consumer-group claims in isolation (topics/group-claims.ts): no overlap between members, expired
 * ranges handed out again alone, acknowledgements that speak only for their member, release.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionClaims } from '../src/topics/group-claims.js';

const VIS = 1000;
const span = (r: { from: number; until: number }): [number, number] => [r.from, r.until];

describe('group claims', () => {
  it('members get consecutive, disjoint ranges; a short read frees the rest', () => {
    const c = new PartitionClaims(-1);
    const a = c.reserve('a', 10, 0, VIS, 0);
    const b = c.reserve('b', 10, 0, VIS, 0);
    assert.deepEqual([span(a), span(b)], [[0, 10], [10, 20]]);
    // a read only 4 messages (the partition ended there); b read none.
    c.settle(a, 4);
    c.settle(b, 10);
    assert.deepEqual(span(c.reserve('b', 10, 0, VIS, 0)), [4, 14]);
  });

  it('an acknowledgement commits the member\'s own ranges and stops at ranges others hold', () => {
    const c = new PartitionClaims(-1);
    c.reserve('a', 10, 0, VIS, 0);
    c.reserve('b', 10, 0, VIS, 0);
    // b finished 10..19 while a still holds 0..9: nothing below a's range may be committed past it.
    assert.equal(c.ack('b', 19), -1);
    assert.equal(c.ack('a', 9), 19);
    assert.deepEqual(c.snapshot(), []);
  });

  it('an expired range is handed out again alone, before new offsets, and its late ack is not lost', () => {
    const c = new PartitionClaims(-1);
    c.reserve('a', 10, 0, VIS, 0);
    c.reserve('b', 10, 0, VIS, 0);
    assert.equal(c.ack('b', 19), -1);
    // a died: after the visibility timeout its range goes to the next member that asks, split to its limit.
    const again = c.reserve('b', 4, VIS + 1, VIS, 0);
    assert.deepEqual(span(again), [0, 4]);
    assert.deepEqual(span(c.reserve('c', 100, VIS + 1, VIS, 0)), [4, 10]);
    assert.deepEqual(span(c.reserve('c', 5, VIS + 1, VIS, 0)), [20, 25]);
    assert.equal(c.ack('b', 3), 3);
    assert.equal(c.ack('c', 9), 19);
  });

  it('partial acknowledgement splits a range; the unacknowledged part stays claimed', () => {
    const c = new PartitionClaims(-1);
    c.reserve('a', 10, 0, VIS, 0);
    assert.equal(c.ack('a', 5), 5);
    assert.deepEqual(c.snapshot().map(span), [[6, 10]]);
    assert.deepEqual(span(c.reserve('b', 10, 1, VIS, 0)), [10, 20]);
  });

  it('acknowledging offsets nobody holds moves the position (skipping ahead), as upstream', () => {
    const c = new PartitionClaims(-1);
    assert.equal(c.ack('a', 41), 41);
    assert.deepEqual(span(c.reserve('a', 10, 0, VIS, 0)), [42, 52]);
  });

  it('one owner acknowledging past its several ranges commits them all (a single consumer)', () => {
    const c = new PartitionClaims(-1);
    c.reserve('a', 10, 0, VIS, 0);
    c.reserve('a', 10, 0, VIS, 0);
    assert.equal(c.ack('a', 19), 19);
  });

  it('a released member\'s range goes to the next member at once', () => {
    const c = new PartitionClaims(-1);
    c.reserve('a', 10, 0, VIS, 0);
    c.release('a');
    assert.deepEqual(span(c.reserve('b', 10, 1, VIS, 0)), [0, 10]);
  });

  it('the floor (oldest stored message) and a reset position skip what no longer exists', () => {
    const c = new PartitionClaims(-1);
    assert.deepEqual(span(c.reserve('a', 10, 0, VIS, 500)), [500, 510]);
    c.reset(600);
    assert.deepEqual(span(c.reserve('a', 10, 0, VIS, 500)), [601, 611]);
  });

  it('acknowledgements never move the position back', () => {
    const c = new PartitionClaims(10);
    assert.equal(c.ack('a', 5), 10);
    assert.deepEqual(span(c.reserve('a', 1, 0, VIS, 0)), [11, 12]);
  });

  it('an acknowledgement with a lower bound marks only that span: a redelivered range handled later stays held', () => {
    const c = new PartitionClaims(-1);
    c.reserve('a', 10, 0, VIS, 0);
    c.reserve('b', 10, 0, VIS, 0);
    // a died; b gets a's range again, but first acknowledges its own batch, while 0..9 are on their way.
    assert.deepEqual(span(c.reserve('b', 10, VIS + 1, VIS, 0)), [0, 10]);
    assert.equal(c.ack('b', 19, 10), -1);
    assert.deepEqual(c.snapshot().map((r) => [r.from, r.until, r.done]), [[0, 10, false], [10, 20, true]]);
    assert.equal(c.ack('b', 5, 0), 5);
    assert.equal(c.ack('b', 9, 6), 19);
  });
});
