/**
 * What a consumer handled and has yet to acknowledge, per partition, as runs of consecutive offsets
 * (`from_offset`..`upto_offset` acks). A group member can receive a lower range after a higher one
 * (another member's expired range is handed to it), so "the highest offset handled" is not a safe
 * acknowledgement: it would also cover the lower range while it is still on its way. A run covers
 * only offsets this member handled, in the order it handled them.
 *
 * It also remembers the offsets it handled (the last `SEEN_MAX` per partition), so a message
 * delivered again (after a reconnect, or an acknowledgement that was lost) is acknowledged without
 * running the handler a second time.
 */

export interface AckRun {
  readonly partition: number;
  readonly from: number;
  upto: number;
}

const SEEN_MAX = 100_000;

export class AckLedger {
  private readonly runs = new Map<number, AckRun[]>();
  private readonly seen = new Map<number, Set<number>>();

  /** The handler finished `offset` (or it was skipped, or it was handled before). */
  handled(partition: number, offset: number): void {
    let seen = this.seen.get(partition);
    if (seen === undefined) this.seen.set(partition, seen = new Set());
    seen.add(offset);
    if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value as number);
    let runs = this.runs.get(partition);
    if (runs === undefined) this.runs.set(partition, runs = []);
    const last = runs[runs.length - 1];
    if (last !== undefined && offset === last.upto + 1) last.upto = offset;
    else if (last === undefined || offset > last.upto || offset < last.from) runs.push({ partition, from: offset, upto: offset });
  }

  /** True when this consumer handled `offset` before. */
  wasHandled(partition: number, offset: number): boolean {
    return this.seen.get(partition)?.has(offset) === true;
  }

  /** Takes the runs waiting to be acknowledged (of one partition, or all). */
  take(partition?: number): AckRun[] {
    if (partition !== undefined) {
      const runs = this.runs.get(partition) ?? [];
      this.runs.delete(partition);
      return runs;
    }
    const all = [...this.runs.values()].flat();
    this.runs.clear();
    return all;
  }

  /** Puts back runs whose acknowledgement could not be sent. */
  restore(runs: readonly AckRun[]): void {
    for (const run of runs) {
      const list = this.runs.get(run.partition) ?? [];
      list.unshift(run);
      this.runs.set(run.partition, list);
    }
  }

  get pending(): boolean {
    return this.runs.size > 0;
  }
}
