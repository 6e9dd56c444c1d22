/**
 * Bounds the process's memory while DuckDB queries run. DuckDB's memory_limit covers its buffer
 * manager only: strings, lists and aggregate states built while evaluating a query are allocated
 * outside it, so one query can take the process far past the limit. While at least one query
 * runs, the guard samples the resident set size every few milliseconds; when it passes the
 * configured bound, every running query is stopped with a memory-limit error (a 400 for the
 * client) and DuckDB frees what they held. The server itself keeps serving.
 *
 * Stopped queries leave their JS rows behind as garbage, which V8 would keep resident until its
 * next major collection; a server refusing queries because RSS is high might never trigger one.
 * So once the stopped queries have unwound, the guard asks V8 for a full collection.
 *
 * What it cannot do: stop work DuckDB does not check for interruption (one huge scalar call such
 * as repeat() finishes before the stop takes effect), or bound memory held outside DuckDB queries.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LimitError, assert } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { RunningQueries } from './running-queries.js';

export interface MemoryGuardOptions {
  /** config.memoryRssBytesMax */
  readonly rssBytesMax: number;
  /** config.memorySampleIntervalMs */
  readonly sampleIntervalMs: number;
  /** The process RSS in bytes; injectable so tests can drive the guard. */
  readonly readRssBytes?: () => number;
  readonly log?: Logger;
}

export class MemoryGuard {
  private timer: NodeJS.Timeout | null = null;
  /** Set when queries were stopped; the collection runs once none is left running. */
  private collectWhenIdle = false;
  private readonly readRssBytes: () => number;
  /** Queries stopped by the guard since it was created (for logs and tests). */
  stoppedQueries = 0;

  constructor(private readonly queries: RunningQueries, private readonly options: MemoryGuardOptions) {
    assert(options.rssBytesMax > 0, 'memory bound is positive');
    assert(options.sampleIntervalMs > 0, 'sample interval is positive');
    this.readRssBytes = options.readRssBytes ?? (() => process.memoryUsage.rss());
    queries.onChange((count) => (count > 0 ? this.watch() : this.idle()));
  }

  /** Stops sampling for good (server shutdown). */
  close(): void {
    this.rest();
  }

  /** One sample: stops every running query when RSS is over the bound. */
  sample(): void {
    const rss = this.readRssBytes();
    if (rss <= this.options.rssBytesMax || this.queries.count === 0) return;
    const stopped = this.queries.stopAll(memoryLimitError(this.options.rssBytesMax));
    this.stoppedQueries += stopped;
    this.collectWhenIdle = true;
    this.options.log?.warn('memory guard stopped queries', { rss_bytes: rss, rss_bytes_max: this.options.rssBytesMax, queries: stopped });
  }

  private watch(): void {
    if (this.timer !== null) return;
    // Sampled at once too: a query that starts while memory is already over the bound is stopped
    // before it can add to it.
    this.sample();
    this.timer = setInterval(() => this.sample(), this.options.sampleIntervalMs);
    this.timer.unref();
  }

  private idle(): void {
    this.rest();
    if (!this.collectWhenIdle) return;
    this.collectWhenIdle = false;
    // After the current turn, so the stopped query's frames (and its rows) are gone.
    setImmediate(() => collectGarbage?.());
  }

  private rest(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
  }
}

export function memoryLimitError(rssBytesMax: number): LimitError {
  return new LimitError('SQL_EXECUTION_ERROR', 'memory_rss_bytes_max',
    `Query exceeded the memory limit: the server's memory use passed ${rssBytesMax} bytes (memory_rss_bytes_max), `
    + 'so running queries were stopped; select less data or retry later');
}

/**
 * A full V8 collection, or null where Node does not allow it. gc() is only exposed with
 * --expose-gc; the flag can be set at run time and the function read from a fresh context, which
 * spares every way of starting the server (npm start, tests, a service unit) a node flag.
 */
const collectGarbage: (() => void) | null = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (): void => { (gc as () => void)(); } : null;
  } catch {
    return null;
  }
})();
