/**
 * The claims of one consumer group on one topic partition: which offset ranges its members hold,
 * which they finished, and the group's committed position (the last offset below which everything
 * is acknowledged, the one persisted in system.topic_offsets). In memory only: after a restart every
 * unacknowledged message is delivered again (at least once).
 *
 * Members of a group never get overlapping ranges: a range is reserved before the messages are read
 * (the read is asynchronous, another member may ask meanwhile) and shrunk to what was read. A range
 * not acknowledged within the visibility timeout is handed out again, alone, before new offsets.
 *
 * ACK is cumulative, as upstream's (`UPTO OFFSET n`), but here it speaks only for the member that
 * sends it: ranges other members still hold keep the committed position below them until they are
 * acknowledged or redelivered and acknowledged. Upstream commits past them, so a member that dies
 * while another acknowledges later offsets loses its messages. Members are told apart by an owner
 * string (the WebSocket consumer, the HTTP `member_id`, else the user): members sharing an owner
 * share upstream's semantics.
 */

export interface ClaimRange {
  from: number;
  /** Exclusive. */
  until: number;
  deadline: number;
  owner: string;
  done: boolean;
}

export class PartitionClaims {
  /** Sorted by `from`, never overlapping, all above `committed`. */
  private ranges: ClaimRange[] = [];
  /** The highest offset any member acknowledged: offsets below it that no member holds are done. */
  private ackedHigh: number;

  constructor(public committed: number) {
    this.ackedHigh = committed;
  }

  /** When the next held range expires (its messages become deliverable again); null when none is held. */
  nextDeadline(now: number): number | null {
    let next: number | null = null;
    for (const r of this.ranges) if (!r.done && r.deadline > now && (next === null || r.deadline < next)) next = r.deadline;
    return next;
  }

  /**
   * Reserves the next offsets for `owner`, at most `limit` of them: the oldest expired range first,
   * else the first offsets at or above `floor` (the partition's oldest stored message) that no
   * member holds. The caller reads [from, until) and calls `settle` with where the read ended.
   */
  reserve(owner: string, limit: number, now: number, visibilityMs: number, floor: number): ClaimRange {
    this.dropBelow(Math.max(this.committed + 1, floor));
    const deadline = now + visibilityMs;
    const expired = this.ranges.findIndex((r) => !r.done && r.deadline <= now);
    if (expired >= 0) {
      const r = this.ranges[expired]!;
      if (r.until - r.from > limit) {
        // The rest stays expired and is handed out next.
        this.ranges.splice(expired + 1, 0, { from: r.from + limit, until: r.until, deadline: r.deadline, owner: r.owner, done: false });
        r.until = r.from + limit;
      }
      r.deadline = deadline;
      r.owner = owner;
      return r;
    }
    let cursor = Math.max(this.committed + 1, floor);
    let at = 0;
    for (; at < this.ranges.length; at++) {
      const r = this.ranges[at]!;
      if (r.from > cursor) break;
      cursor = Math.max(cursor, r.until);
    }
    const next = this.ranges[at];
    const until = Math.min(cursor + limit, next === undefined ? Number.MAX_SAFE_INTEGER : next.from);
    const range: ClaimRange = { from: cursor, until, deadline, owner, done: false };
    this.ranges.splice(at, 0, range);
    return range;
  }

  /** The read of a reserved range ended before `end` (exclusive): the rest is free again. */
  settle(range: ClaimRange, end: number): void {
    if (end >= range.until) return;
    const i = this.ranges.indexOf(range);
    if (i < 0) return;
    if (end <= range.from) this.ranges.splice(i, 1);
    else range.until = end;
  }

  /**
   * `owner` acknowledges everything it holds up to `upto` (from `from` on, when given: a member that
   * handles redelivered ranges out of order acknowledges exactly what it handled), and offsets no
   * member holds up to there are done too. Returns the new committed position.
   */
  ack(owner: string, upto: number, from = 0): number {
    if (upto <= this.committed || from > upto) return this.committed;
    this.ackedHigh = Math.max(this.ackedHigh, upto);
    for (let i = 0; i < this.ranges.length; i++) {
      const r = this.ranges[i]!;
      if (r.from > upto) break;
      if (r.owner !== owner || r.done || r.until <= from) continue;
      if (r.from < from) {
        // The part below `from` stays held.
        this.ranges.splice(i, 0, { from: r.from, until: from, deadline: r.deadline, owner: r.owner, done: false });
        r.from = from;
        continue;
      }
      if (r.until - 1 > upto) {
        this.ranges.splice(i + 1, 0, { from: upto + 1, until: r.until, deadline: r.deadline, owner: r.owner, done: false });
        r.until = upto + 1;
      }
      r.done = true;
    }
    // The committed position moves over done ranges and over offsets nobody holds (those are
    // done up to the highest acknowledgement), and stops at the first range still held.
    let cursor = this.committed + 1;
    let held = false;
    for (const r of this.ranges) {
      if (r.until <= cursor) continue;
      if (r.from > cursor) {
        if (this.ackedHigh + 1 < r.from) break;
        cursor = r.from;
      }
      if (!r.done) {
        held = true;
        break;
      }
      cursor = r.until;
    }
    if (!held) cursor = Math.max(cursor, this.ackedHigh + 1);
    this.committed = Math.max(this.committed, cursor - 1);
    this.dropBelow(this.committed + 1);
    return this.committed;
  }

  /** A member left (its socket closed, it stopped): what it holds unacknowledged is handed out next. */
  release(owner: string): void {
    for (const r of this.ranges) if (r.owner === owner && !r.done) r.deadline = 0;
  }

  /** Hands back what `owner` was given in [from, until) and will not handle (its request went away). */
  releaseSpan(owner: string, from: number, until: number): void {
    for (const r of this.ranges) if (r.owner === owner && !r.done && r.from >= from && r.until <= until) r.deadline = 0;
  }

  /** A position set from outside (a new group told where to start, CLEAR TOPIC, ...). */
  reset(committed: number): void {
    this.committed = committed;
    this.ackedHigh = Math.max(this.ackedHigh, committed);
    this.dropBelow(committed + 1);
  }

  /** Ranges wholly below `offset` go; one straddling it starts there. */
  private dropBelow(offset: number): void {
    while (this.ranges.length > 0 && this.ranges[0]!.until <= offset) this.ranges.shift();
    const first = this.ranges[0];
    // Mutated in place: a reservation being read is found again by identity in settle().
    if (first !== undefined && first.from < offset) first.from = offset;
  }

  /** For tests and diagnostics. */
  snapshot(): readonly Readonly<ClaimRange>[] {
    return this.ranges.map((r) => ({ ...r }));
  }
}
