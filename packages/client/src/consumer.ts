/**
 * client.consumer(): a consumer-group member that runs a handler on every message of a topic, one
 * message at a time, and acknowledges what it handled.
 *
 * - Transports: `http` (default) long-polls `/v1/api/topics/consume` per partition; `websocket` asks
 *   the server to push messages on the client's one WebSocket (`consume` frames, with credits).
 * - Acks name exactly what this member handled (runs of offsets, `from_offset`..`upto_offset`, see
 *   ack-ledger.ts): with `autoAck` once per batch; otherwise the handler calls `ctx.ack()` per message.
 * - A failing handler is retried with exponential backoff and jitter up to `retry.maxAttempts`; then
 *   `onFailed` decides: 'stop' (default: run() rejects with a ConsumerHandlerError, the message stays
 *   unacknowledged) or 'skip' (it counts as handled and is acknowledged with the rest).
 * - Network failures, 5xx and 429 are retried with the same backoff for as long as it takes (the
 *   consumer keeps running; `onError` hears of each); other refusals (403, 404, 400, credentials)
 *   end run() with the KalamError.
 * - stop() or the signal: the message being handled finishes, what is done is acknowledged, run() resolves.
 * - Messages delivered again (after a reconnect or a server restart lost the claims, or after an ack
 *   was lost) whose offset is already done are acknowledged without running the handler again.
 */
import { KalamError } from './errors.js';
import type { LiveChannel, LiveConnection } from './live-connection.js';
import type { TopicMessage, TopicsApi } from './client.js';
import { AckLedger, type AckRun } from './ack-ledger.js';

export interface ConsumerRetry {
  /** Attempts per message, the first included (default 3). */
  readonly maxAttempts?: number;
  /** The delay before the second attempt (default 200 ms); also the first delay after a network failure. */
  readonly initialBackoffMs?: number;
  /** The longest delay (default 10 000 ms). */
  readonly maxBackoffMs?: number;
  /** The delay grows by this factor per attempt (default 2). Each delay is drawn between half of it and all of it. */
  readonly multiplier?: number;
}

/** A message whose handler failed on every attempt, as given to `onFailed`. */
export interface ConsumerFailure<P> {
  readonly error: unknown;
  readonly message: TopicMessage<P>;
  readonly attempts: number;
}

export interface ConsumerOptions<P = Record<string, unknown>> {
  readonly topic: string;
  readonly group: string;
  /** Acknowledge each message once its handler returned (batched: one ack per partition per batch). Default true. */
  readonly autoAck?: boolean;
  /** Messages per request (http) or per pushed frame (websocket): 1 to 1000, default 100. */
  readonly batchSize?: number;
  /** Where a group that has no position yet starts: 'latest' (default), 'earliest' or an offset. */
  readonly start?: 'latest' | 'earliest' | number;
  /** Only this partition; default every partition of the topic. */
  readonly partition?: number;
  /** http: how long one request waits for a message (long-poll). Default 20. */
  readonly timeoutSeconds?: number;
  /** Default 'http'. */
  readonly transport?: 'http' | 'websocket';
  /**
   * http: this member's `member_id`, so its acks speak only for the messages it was given (several
   * workers of one account stay apart). Default: random, one per consumer() handle. (Over the
   * WebSocket the server tells consumers apart by itself.)
   */
  readonly memberId?: string;
  /** Backoff for handler retries and for reconnecting. */
  readonly retry?: ConsumerRetry;
  /**
   * After the handler failed `retry.maxAttempts` times: 'stop' (the default without this option)
   * ends run() with a ConsumerHandlerError, leaving the message unacknowledged; 'skip' acknowledges
   * it and goes on. An exception here also stops.
   */
  onFailed?(failure: ConsumerFailure<P>): 'skip' | 'stop' | Promise<'skip' | 'stop'>;
  /**
   * Called once the consumer has its position (http: after the first request to each partition;
   * websocket: when the server started it), with the partitions it reads. Messages published after
   * this are delivered to a new group starting at 'latest'.
   */
  onStarted?(partitions: readonly number[]): void;
  /** Told about each transient failure (server unreachable, 5xx) before the consumer retries. */
  onError?(error: KalamError, attempt: number): void;
  /** Aborting it is stop(). */
  readonly signal?: AbortSignal;
}

export interface ConsumerContext<P = Record<string, unknown>> {
  readonly message: TopicMessage<P>;
  /** The writer, for messages from USER tables. */
  readonly user: string | undefined;
  /** 1 on the first attempt, 2 on the first retry, … */
  readonly attempt: number;
  /**
   * Acknowledges this message and, the ack being cumulative, every earlier one of its partition.
   * Resolves once the server has it. With autoAck there is no need to call it (it acks at once).
   */
  ack(): Promise<void>;
}

export type ConsumerHandler<P = Record<string, unknown>> = (ctx: ConsumerContext<P>) => void | Promise<void>;

export interface Consumer<P = Record<string, unknown>> {
  /** Consumes until stop(), the signal, or a failure (rejects with KalamError). One run at a time. */
  run(handler: ConsumerHandler<P>): Promise<void>;
  /** Finishes the message being handled, acknowledges what is done, and lets run() resolve. */
  stop(): void;
}

/** run() rejected because a message's handler failed on every attempt (and onFailed did not say 'skip'). */
export class ConsumerHandlerError<P = Record<string, unknown>> extends KalamError {
  readonly topicMessage: TopicMessage<P>;
  readonly attempts: number;
  override readonly cause: unknown;

  constructor(message: TopicMessage<P>, attempts: number, cause: unknown) {
    super('HANDLER_FAILED', `The handler failed ${attempts} time(s) on ${message.topic_id} partition ${message.partition_id} offset ${message.offset}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'ConsumerHandlerError';
    this.topicMessage = message;
    this.attempts = attempts;
    this.cause = cause;
  }
}

/** Failures worth retrying: the network, 5xx, 429 and 408. Anything else is the server saying no. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof KalamError)) return false;
  if (error.status === null) return error.code === 'CONNECTION_FAILED' || error.code === 'CONNECTION_LOST';
  return error.status >= 500 || error.status === 429 || error.status === 408;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

let consumerCounter = 0;

interface Deps {
  readonly topics: TopicsApi;
  readonly live: LiveConnection;
}

/** Frames the server sends a consumer on the WebSocket (see docs/sdk.md, Consuming topics). */
interface ConsumeFrame {
  readonly type: string;
  readonly messages?: TopicMessage<unknown>[];
  readonly partition_id?: number;
  readonly partitions?: number[];
  readonly acknowledged_offset?: number;
  readonly reason?: string;
  readonly code?: string;
  readonly message?: string;
}

export function createConsumer<P>(deps: Deps, options: ConsumerOptions<P>): Consumer<P> {
  const autoAck = options.autoAck !== false;
  const batchSize = Math.max(1, Math.min(options.batchSize ?? 100, 1000));
  const timeoutSeconds = options.timeoutSeconds ?? 20;
  const maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 3);
  const initialBackoff = options.retry?.initialBackoffMs ?? 200;
  const maxBackoff = options.retry?.maxBackoffMs ?? 10_000;
  const multiplier = options.retry?.multiplier ?? 2;
  const backoff = (attempt: number): number => {
    const full = Math.min(maxBackoff, initialBackoff * multiplier ** Math.max(0, attempt - 1));
    return full / 2 + Math.random() * (full / 2);
  };

  const memberId = options.memberId ?? `m-${Math.random().toString(36).slice(2, 10)}${Math.random().toString(36).slice(2, 10)}`;
  let running = false;
  let stopper = new AbortController();
  let failure: unknown = null;
  /** What is handled and not yet acknowledged, and what was handled (to recognize a redelivery). */
  let ledger = new AckLedger();
  /** Per partition: the highest offset the server confirmed acknowledging (WebSocket). */
  let acked = new Map<number, number>();

  const stop = (): void => stopper.abort();
  const fail = (error: unknown): void => {
    if (failure === null) failure = error;
    stop();
  };

  /** Runs op until it succeeds, retrying transient failures with backoff; `attempts` bounds it (default: until stopped). */
  const withRetry = async <R>(op: () => Promise<R>, attempts = Infinity): Promise<R> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        if (!isTransient(error) || attempt >= attempts || (stopper.signal.aborted && attempts === Infinity)) throw error;
        options.onError?.(error as KalamError, attempt);
        await sleep(backoff(attempt), stopper.signal);
      }
    }
  };

  /**
   * Handles one message with retries. False: stop consuming (stopped during retries, or a failure
   * that is not skipped, recorded through fail()).
   */
  const handle = async (handler: ConsumerHandler<P>, message: TopicMessage<P>, ackOne: (m: TopicMessage<P>) => Promise<void>): Promise<boolean> => {
    const partition = message.partition_id;
    if (ledger.wasHandled(partition, message.offset)) {
      // Delivered again (a reconnect, a lost acknowledgement): acknowledged, not handled twice.
      ledger.handled(partition, message.offset);
      return true;
    }
    for (let attempt = 1; ; attempt++) {
      let ackCalled = false;
      const ctx: ConsumerContext<P> = {
        message, user: message.user, attempt,
        ack: async () => {
          if (ackCalled) return;
          ackCalled = true;
          await ackOne(message);
        },
      };
      try {
        await handler(ctx);
        if (autoAck) ledger.handled(partition, message.offset);
        return true;
      } catch (error) {
        if (attempt >= maxAttempts) {
          let decision: 'skip' | 'stop' = 'stop';
          try {
            if (options.onFailed !== undefined) decision = await options.onFailed({ error, message, attempts: attempt });
          } catch (thrown) {
            fail(thrown);
            return false;
          }
          if (decision === 'skip') {
            if (autoAck) ledger.handled(partition, message.offset);
            else await ackOne(message).catch(fail);
            return failure === null;
          }
          fail(new ConsumerHandlerError(message, attempt, error));
          return false;
        }
        if (stopper.signal.aborted) return false;
        await sleep(backoff(attempt), stopper.signal);
        if (stopper.signal.aborted) return false;
      }
    }
  };

  // ---- HTTP: a loop per partition (each long-polls its own partition), the handler serialized ----

  const runHttp = async (handler: ConsumerHandler<P>): Promise<void> => {
    type Batch = Awaited<ReturnType<TopicsApi['consume']>>;
    /** Per partition, once known: the position the group starts at, sent as `start` from then on (see below). */
    const pinned = new Map<number, number>();
    let chain: Promise<unknown> = Promise.resolve();
    const serial = <R>(fn: () => Promise<R>): Promise<R> => {
      const result = chain.then(fn);
      chain = result.catch(() => undefined);
      return result;
    };
    const fetchBatch = async (partition: number, timeout: number): Promise<Batch> => {
      const start = pinned.get(partition) ?? options.start;
      const batch = await deps.topics.consume<P>({
        topic: options.topic, group: options.group, memberId, limit: batchSize, partition, timeoutSeconds: timeout, signal: stopper.signal,
        ...(start !== undefined ? { start } : {}),
      });
      // The server applies `start` to a group without a position on every request: 'latest' on an empty
      // partition would skip the first message published between two polls. Pinning the position the
      // group started at (a no-op once the group has acknowledged something) keeps it. Only 'latest'
      // moves: 'earliest' and offsets are sent as given (an empty answer's next_offset may already
      // count a message published while it was made, which pinning would skip).
      if ((options.start ?? 'latest') === 'latest' && !pinned.has(partition)) pinned.set(partition, batch.messages[0]?.offset ?? batch.next_offset);
      return batch as Batch;
    };
    const ackRuns = async (partition: number, attempts = Infinity): Promise<void> => {
      const runs = ledger.take(partition);
      for (let i = 0; i < runs.length; i++) {
        const run = runs[i]!;
        try {
          await withRetry(() => deps.topics.ack({ topic: options.topic, group: options.group, memberId, partition, fromOffset: run.from, uptoOffset: run.upto }), attempts);
        } catch (error) {
          ledger.restore(runs.slice(i));
          throw error;
        }
      }
    };
    const ackOne = async (m: TopicMessage<P>): Promise<void> => {
      ledger.handled(m.partition_id, m.offset);
      await ackRuns(m.partition_id);
    };
    const flush = async (partition: number): Promise<void> => {
      try {
        // Once stopping, a few attempts only: what is not acknowledged is delivered again later.
        await ackRuns(partition, stopper.signal.aborted ? 3 : Infinity);
      } catch (error) {
        if (!stopper.signal.aborted || !isTransient(error)) fail(error);
      }
    };
    const processBatch = (partition: number, batch: Batch): Promise<void> => serial(async () => {
      for (const message of batch.messages as TopicMessage<P>[]) {
        if (stopper.signal.aborted) break;
        if (!await handle(handler, message, ackOne)) break;
      }
      await flush(partition);
    });
    const loop = async (partition: number, first: Batch | undefined): Promise<void> => {
      let batch = first;
      while (!stopper.signal.aborted) {
        if (batch === undefined) {
          try {
            batch = await withRetry(() => fetchBatch(partition, timeoutSeconds));
          } catch (error) {
            if (!stopper.signal.aborted) fail(error);
            break;
          }
        }
        if (batch.messages.length > 0) await processBatch(partition, batch);
        batch = undefined;
      }
    };

    // The partitions: the one asked for, or 0, 1, … until the server says there is no such partition.
    // Each probe is a real first fetch (short, no long-poll), so nothing is read twice; this works for
    // the service role too, which may not read system.topics.
    const firsts = new Map<number, Batch | undefined>();
    if (options.partition === undefined) {
      for (let partition = 0; !stopper.signal.aborted; partition++) {
        try {
          firsts.set(partition, await withRetry(() => fetchBatch(partition, 0)));
        } catch (error) {
          if (stopper.signal.aborted) break;
          if (partition > 0 && error instanceof KalamError && error.status === 400 && /no partition/i.test(error.message)) break;
          throw error;
        }
      }
    }
    if (options.partition !== undefined && !stopper.signal.aborted) {
      // Positioned by a first short request too, so onStarted means the same with and without `partition`.
      try {
        firsts.set(options.partition, await withRetry(() => fetchBatch(options.partition!, 0)));
      } catch (error) {
        if (!stopper.signal.aborted) throw error;
      }
    }
    if (!stopper.signal.aborted) options.onStarted?.([...firsts.keys()]);
    await Promise.all([...firsts].map(([partition, first]) => loop(partition, first)));
    await chain;
  };

  // ---- WebSocket: the server pushes messages against credits; acks are frames ----

  const runWebSocket = async (handler: ConsumerHandler<P>): Promise<void> => {
    const id = `consumer-${++consumerCounter}`;
    const queue: TopicMessage<P>[] = [];
    /** Credits granted on the current socket and not yet used by a message. */
    let outstanding = 0;
    /** Acks sent on the current socket and not yet confirmed. */
    let unconfirmed = 0;
    let wake: (() => void) | null = null;
    const notify = (): void => { const w = wake; wake = null; w?.(); };
    let stoppedByServer: (() => void) | null = null;
    let started = false;
    let drops = 0;
    const ackWaiters = new Set<{ partition: number; offset: number; resolve: () => void; reject: (e: unknown) => void }>();

    const sendAcks = (): void => {
      const runs: AckRun[] = ledger.take();
      for (let i = 0; i < runs.length; i++) {
        const run = runs[i]!;
        if (!deps.live.send({ type: 'consume_ack', id, partition_id: run.partition, from_offset: run.from, upto_offset: run.upto })) {
          // No socket now: sent after the reconnect (opened), or delivered again and acknowledged then.
          ledger.restore(runs.slice(i));
          return;
        }
        unconfirmed++;
      }
    };
    // Credits: a window of twice the batch size (at least 100) held or on the way; topped up once half
    // of it is used, so grants are frames per batch, not per message (frames count against a rate limit).
    const window = Math.max(2 * batchSize, 100);
    const grant = (): void => {
      const want = window - outstanding - queue.length;
      if (want >= window / 2 && deps.live.send({ type: 'consume_credit', id, credits: want })) outstanding += want;
    };
    const settleWaiters = (error: unknown): void => {
      for (const w of ackWaiters) {
        if (error === null && w.offset <= (acked.get(w.partition) ?? -1)) { ackWaiters.delete(w); w.resolve(); }
        else if (error !== null) { ackWaiters.delete(w); w.reject(error); }
      }
    };
    const channel: LiveChannel = {
      id,
      opened: (send) => {
        queue.length = 0;
        // Acks sent on the lost socket may not have arrived; their messages come again and are acknowledged then.
        unconfirmed = 0;
        outstanding = window;
        // 'latest' is resolved by the server when it handles `consume`, and a partition that was empty
        // then has no group position until something is acknowledged: everything in it came after the
        // start. So once started, a new socket asks for 'earliest', which skips nothing published while
        // the connection was down (partitions with a position ignore `start`; what this consumer already
        // handled is not handled again).
        const start = started && (options.start ?? 'latest') === 'latest' ? 'earliest' : options.start;
        send({
          type: 'consume', id, topic: options.topic, group: options.group, credits: outstanding, batch_size: batchSize,
          ...(start !== undefined ? { start } : {}),
          ...(options.partition !== undefined ? { partition_id: options.partition } : {}),
        });
        sendAcks();
      },
      frame: (raw) => {
        const msg = raw as unknown as ConsumeFrame;
        switch (msg.type) {
          case 'consume_started':
            if (!started) options.onStarted?.(msg.partitions ?? []);
            started = true;
            break;
          case 'topic_messages':
            for (const m of msg.messages ?? []) queue.push(m as TopicMessage<P>);
            outstanding = Math.max(0, outstanding - (msg.messages?.length ?? 0));
            notify();
            break;
          case 'consume_acked':
            unconfirmed = Math.max(0, unconfirmed - 1);
            if (msg.partition_id !== undefined && msg.acknowledged_offset !== undefined && msg.acknowledged_offset > (acked.get(msg.partition_id) ?? -1)) {
              acked.set(msg.partition_id, msg.acknowledged_offset);
            }
            settleWaiters(null);
            notify();
            break;
          case 'consume_stopped':
            if (stoppedByServer !== null) stoppedByServer();
            else fail(new KalamError('CONSUMER_STOPPED', `The server ended the consumer: ${msg.reason ?? 'no reason given'}`));
            notify();
            break;
          case 'error': {
            const status = msg.code === 'UNAUTHORIZED' ? 403 : msg.code === 'NOT_FOUND' ? 404 : null;
            fail(new KalamError(msg.code ?? 'PROTOCOL', msg.message ?? 'The consumer was refused', status));
            notify();
            break;
          }
        }
      },
      dropped: () => {
        // The server released this socket's claims: what is queued comes again after the reconnect.
        queue.length = 0;
        outstanding = 0;
        options.onError?.(new KalamError('CONNECTION_LOST', 'The WebSocket connection was lost; reconnecting'), ++drops);
      },
      ended: (error) => { fail(error); notify(); },
    };
    const ackOne = (m: TopicMessage<P>): Promise<void> => {
      ledger.handled(m.partition_id, m.offset);
      const wait = new Promise<void>((resolve, reject) => ackWaiters.add({ partition: m.partition_id, offset: m.offset, resolve, reject }));
      sendAcks();
      return wait;
    };

    try {
      await withRetry(() => deps.live.addChannel(channel));
    } catch (error) {
      if (stopper.signal.aborted && failure === null) return; // stopped while (re)trying to connect
      throw error;
    }
    stopper.signal.addEventListener('abort', notify, { once: true });
    try {
      let sinceAck = 0;
      while (!stopper.signal.aborted) {
        const message = queue.shift();
        if (message === undefined) {
          sendAcks();
          sinceAck = 0;
          await new Promise<void>((resolve) => { wake = resolve; });
          continue;
        }
        if (!await handle(handler, message, ackOne)) break;
        if (++sinceAck >= batchSize) { sendAcks(); sinceAck = 0; }
        grant();
      }
      // Stopping: acknowledge what is done, wait (briefly) for the server to confirm, then end the consumer.
      if (failure === null || failure instanceof ConsumerHandlerError) {
        sendAcks();
        const deadline = Date.now() + 3000;
        const pending = (): boolean => ledger.pending || unconfirmed > 0;
        while (pending() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        if (deps.live.send({ type: 'consume_stop', id })) {
          // consume_stopped, or 2 s (the timer is cleared: a finished run() keeps no process alive).
          let timer: ReturnType<typeof setTimeout> | undefined;
          await new Promise<void>((resolve) => { stoppedByServer = resolve; timer = setTimeout(resolve, 2000); });
          clearTimeout(timer);
        }
      }
    } finally {
      deps.live.removeChannel(id);
      settleWaiters(failure ?? new KalamError('CONSUMER_STOPPED', 'The consumer stopped before the server confirmed the ack'));
    }
  };

  return {
    run: async (handler) => {
      if (running) throw new KalamError('CONSUMER_RUNNING', 'This consumer is already running: one run() at a time');
      running = true;
      stopper = new AbortController();
      failure = null;
      ledger = new AckLedger();
      acked = new Map();
      const onAbort = (): void => stop();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted === true) stop();
      try {
        await (options.transport === 'websocket' ? runWebSocket(handler) : runHttp(handler));
      } catch (error) {
        fail(error);
      } finally {
        running = false;
        options.signal?.removeEventListener('abort', onAbort);
      }
      if (failure !== null) throw failure;
    },
    stop,
  };
}
