/**
 * The DuckDB connections running user queries right now, so something outside a query (its
 * timer, the memory guard) can stop it with a reason. DuckDB's interrupt only makes the query
 * fail with "INTERRUPT"; the reason recorded here is the error the caller gets instead, which is
 * how a timeout and a memory stop reach the client with different messages.
 */
import { assert, type ServerError } from '../../util/errors.js';

/** What a running query needs of its connection: a way to interrupt it. */
export interface Interruptible {
  interrupt(): void;
}

/** How often a stopped query that still runs is interrupted again (ms). */
const REINTERRUPT_MS = 100;

export class RunningQuery {
  private reason: ServerError | null = null;
  private again: NodeJS.Timeout | null = null;

  constructor(private readonly conn: Interruptible) {}

  /** The error the query was stopped with, or null while it may run on. */
  get stopReason(): ServerError | null {
    return this.reason;
  }

  /**
   * Interrupts the query; the first reason given is the one reported. DuckDB's interrupt reaches
   * only a statement already executing (one that starts later clears it): a stop that lands while
   * the statement is still being prepared, or before it (a deadline that passed while the query
   * waited for a connection), would be lost and the query would run unbounded. So the interrupt
   * is repeated until the query finishes.
   */
  stop(reason: ServerError): void {
    this.reason ??= reason;
    this.conn.interrupt();
    this.again ??= setInterval(() => this.conn.interrupt(), REINTERRUPT_MS);
  }

  /** The query is over: no more interrupts. */
  finished(): void {
    if (this.again !== null) clearInterval(this.again);
    this.again = null;
  }
}

export class RunningQueries {
  private readonly running = new Set<RunningQuery>();
  private readonly listeners: ((count: number) => void)[] = [];

  get count(): number {
    return this.running.size;
  }

  /** Registers a query about to run on `conn`; pair with `finish` in a finally. */
  start(conn: Interruptible): RunningQuery {
    const query = new RunningQuery(conn);
    this.running.add(query);
    this.notify();
    return query;
  }

  finish(query: RunningQuery): void {
    query.finished();
    const removed = this.running.delete(query);
    assert(removed, 'a running query finishes once');
    this.notify();
  }

  /** Stops every running query with `reason`; returns how many there were. */
  stopAll(reason: ServerError): number {
    for (const query of this.running) query.stop(reason);
    return this.running.size;
  }

  /** Calls `listener` with the number of running queries whenever it changes. */
  onChange(listener: (count: number) => void): void {
    this.listeners.push(listener);
  }

  private notify(): void {
    for (const listener of this.listeners) listener(this.running.size);
  }
}
