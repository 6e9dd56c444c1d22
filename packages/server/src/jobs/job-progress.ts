/**
 * A running job's progress reports, written to its system.jobs row at a bounded rate: each write is
 * a synced catalog write, so at most one per interval (phase changes may force one), never one per
 * row. Reports made while a write is in flight replace each other; the newest is written next.
 * The job's final update waits for `settled()`, so it is the row's last write.
 */
import type { JobStore } from './job-store.js';

/** Like the backup job: at most two progress writes a second. */
export const PROGRESS_INTERVAL_MS = 500;

export class JobProgress {
  private lastWriteMs = 0;
  private inFlight: Promise<void> | null = null;
  private next: { readonly fraction: number; readonly message: string } | null = null;

  constructor(private readonly jobs: JobStore, private readonly jobId: string, private readonly intervalMs = PROGRESS_INTERVAL_MS) {}

  /**
   * `fraction` (kept below 1: a job is at 1 only when it completed) and a message like
   * "rows 40,000 of 100,000". Dropped when the last write is more recent than the interval, unless `force`.
   */
  report(fraction: number, message: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastWriteMs < this.intervalMs) return;
    this.lastWriteMs = now;
    const report = { fraction: Math.max(0, Math.min(0.99, fraction)), message };
    if (this.inFlight !== null) {
      this.next = report;
      return;
    }
    this.inFlight = this.write(report);
  }

  /** Resolves once no report is being written. */
  async settled(): Promise<void> {
    await this.inFlight;
  }

  private async write(report: { readonly fraction: number; readonly message: string }): Promise<void> {
    for (let r: typeof report | null = report; r !== null; r = this.next, this.next = null) {
      // A failed write (disk full) loses one report; the job itself reports its failure.
      await this.jobs.reportProgress(this.jobId, r.fraction, r.message).catch(() => undefined);
    }
    this.inFlight = null;
  }
}

/** 40000 -> "40,000". */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}
