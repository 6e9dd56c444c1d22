/**
 * createClient(): SQL over HTTP (`query`, `queryRows`) and live queries over one shared WebSocket
 * (`subscribe` for raw change events, `live` for a row set kept current by primary key).
 */
import { KalamError } from './errors.js';
import { TokenSource, type AuthOptions } from './auth.js';
import { LiveConnection, maxSeq, type ConnectionState, type ConnectionStateListener, type LiveSubscription } from './live-connection.js';
import type { ChangeEvent, QueryResponse, Row, SchemaField, ServerMessage } from './types.js';

export interface ClientOptions {
  /** Server base URL, e.g. http://localhost:8080 */
  readonly url: string;
  readonly auth: AuthOptions;
  /** Namespace for unqualified table names in `query`. */
  readonly namespace?: string;
  /** Convert BIGINT cells (strings on the wire) to bigint. Default false. */
  readonly bigint?: boolean;
  readonly fetch?: typeof fetch;
}

export interface SubscribeHandlers<T = Row> {
  onInsert?(rows: readonly T[]): void;
  onUpdate?(rows: readonly T[], oldValues: readonly T[]): void;
  onDelete?(oldValues: readonly T[]): void;
  onFlush?(flush: NonNullable<ServerMessage['flush']>): void;
  /** Initial data (in batches) before `onReady`, with the subscription's schema. */
  onInitialData?(rows: readonly T[], schema: readonly SchemaField[] | null): void;
  onReady?(): void;
  onError?(error: KalamError): void;
}

export interface SubscribeOptions {
  /** Send the matching rows first (in batches of this size). */
  readonly batchSize?: number;
  /** Only the N newest matching rows as initial data. */
  readonly lastRows?: number;
  /** Resume: every change after this `_seq` instead of initial data. */
  readonly from?: string;
}

export interface Subscription {
  readonly id: string;
  /** The last `_seq` received: pass it as `from` to resume elsewhere. */
  readonly lastSeq: string | null;
  unsubscribe(): Promise<void>;
}

export interface LiveOptions<T> {
  readonly lastRows?: number;
  readonly batchSize?: number;
  /** Column that identifies rows; default: the table's primary key (from the schema's pk flag). */
  readonly key?: string;
  onEvent?(event: ChangeEvent<T>): void;
  onError?(error: KalamError): void;
}

export interface KalamClient {
  query(sql: string, params?: readonly unknown[]): Promise<QueryResponse>;
  queryRows<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  subscribe<T = Row>(sql: string, handlers: SubscribeHandlers<T>, options?: SubscribeOptions): Promise<Subscription>;
  live<T = Row>(sql: string, onRows: (rows: T[]) => void, options?: LiveOptions<T>): Promise<() => Promise<void>>;
  /** Closes the WebSocket (every subscription ends; state `disconnected`). HTTP queries keep working; a later `subscribe`/`live` opens it again. */
  disconnect(): Promise<void>;
  /** The WebSocket's state (see ConnectionState); HTTP queries do not depend on it. */
  readonly connectionState: ConnectionState;
  /**
   * Calls `listener` on every change of `connectionState`, once per change, with the attempt number
   * (`reconnecting`, and `connected` after a drop) and the error (`reconnecting`: the drop;
   * `disconnected`: the failure, none after `disconnect()`). Returns a function that removes the listener.
   */
  onConnectionState(listener: ConnectionStateListener): () => void;
  /** How often the WebSocket reconnected (diagnostics). */
  readonly reconnects: number;
}

let subscriptionCounter = 0;

export function createClient(options: ClientOptions): KalamClient {
  const base = options.url.replace(/\/+$/, '');
  // Bound: browsers refuse fetch called as a method of another object ("Illegal invocation").
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const tokens = new TokenSource(base, options.auth, fetchImpl);
  const live = new LiveConnection(`${base.replace(/^http/, 'ws')}/v1/ws`, tokens);
  const convert = options.bigint === true;

  const query = async (sql: string, params?: readonly unknown[], retried = false): Promise<QueryResponse> => {
    const token = await tokens.token();
    let res: Response;
    try {
      res = await fetchImpl(`${base}/v1/api/sql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ sql, ...(params !== undefined ? { params } : {}), ...(options.namespace ? { namespace_id: options.namespace } : {}) }),
      });
    } catch (error) {
      throw new KalamError('CONNECTION_FAILED', `Cannot reach ${base}: ${(error as Error).message}`);
    }
    const body = (await res.json()) as QueryResponse;
    if (res.status === 401 && !retried && !('token' in options.auth)) {
      tokens.invalidate();
      return query(sql, params, true);
    }
    if (body.status !== 'success') throw new KalamError(body.error?.code ?? 'INTERNAL_ERROR', body.error?.message ?? `HTTP ${res.status}`, res.status);
    if (convert) return { ...body, results: body.results.map((r) => ({ ...r, rows: r.rows?.map((row) => row.map((v, i) => convertCell(r.schema?.[i], v))) })) };
    return body;
  };

  const subscribe = async <T = Row>(sql: string, handlers: SubscribeHandlers<T>, opts: SubscribeOptions = {}): Promise<Subscription> => {
    const id = `sub-${++subscriptionCounter}`;
    let settled = false;
    let settleFn: (error: KalamError | null) => void = () => undefined;
    const acked = new Promise<void>((resolve, reject) => {
      settleFn = (error) => {
        // After the ack, errors reach onError through the subscription's `error` message (once).
        if (settled) return;
        settled = true;
        if (error === null) resolve();
        else reject(error);
      };
    });
    const rowsOf = (rows: readonly Row[] | undefined, schema: readonly SchemaField[] | null): T[] =>
      (rows ?? []).map((r) => (convert ? convertRow(r, schema) : r) as T);
    const sub: LiveSubscription = {
      id, sql, options: { batchSize: opts.batchSize, lastRows: opts.lastRows, from: opts.from },
      lastSeq: null, ready: false, schema: null, sentOn: null,
      settle: (error) => settleFn(error),
      onMessage: (msg) => {
        switch (msg.type) {
          case 'subscription_ack':
            if (sub.schema === null) sub.schema = msg.schema ?? null;
            sub.settle(null);
            if (msg.batch_control?.status === 'ready' && !msg.batch_control.has_more && msg.total_rows === 0 && sub.lastSeq === null) {
              sub.lastSeq = msg.batch_control.last_seq_id ?? null;
            }
            if (msg.batch_control?.status === 'ready' && !sub.ready && (opts.batchSize === undefined && opts.lastRows === undefined)) {
              sub.ready = true;
              sub.lastSeq = maxSeq(sub.lastSeq, [{ _seq: msg.batch_control.last_seq_id }]);
              handlers.onReady?.();
            }
            break;
          case 'initial_data_batch':
            handlers.onInitialData?.(rowsOf(msg.rows, sub.schema), sub.schema);
            sub.lastSeq = maxSeq(sub.lastSeq, msg.rows);
            if (msg.batch_control?.has_more) live.nextBatch(id, msg.batch_control.last_seq_id);
            else {
              sub.lastSeq = maxSeq(sub.lastSeq, [{ _seq: msg.batch_control?.last_seq_id }]);
              if (!sub.ready) {
                sub.ready = true;
                handlers.onReady?.();
              }
            }
            break;
          case 'change':
            if (msg.change_type === 'flush') {
              if (msg.flush) handlers.onFlush?.(msg.flush);
              break;
            }
            sub.lastSeq = maxSeq(sub.lastSeq, msg.change_type === 'delete' ? msg.old_values : msg.rows);
            if (msg.change_type === 'insert') handlers.onInsert?.(rowsOf(msg.rows, sub.schema));
            else if (msg.change_type === 'update') handlers.onUpdate?.(rowsOf(msg.rows, sub.schema), rowsOf(msg.old_values, sub.schema));
            else if (msg.change_type === 'delete') handlers.onDelete?.(rowsOf(msg.old_values, sub.schema));
            break;
          case 'error':
            handlers.onError?.(new KalamError(msg.code ?? 'PROTOCOL', msg.message ?? 'Subscription error'));
            break;
        }
      },
    };
    await live.add(sub);
    await acked;
    return {
      id,
      get lastSeq() { return sub.lastSeq; },
      unsubscribe: async () => live.remove(id),
    };
  };

  const liveRows = async <T = Row>(sql: string, onRows: (rows: T[]) => void, opts: LiveOptions<T> = {}): Promise<() => Promise<void>> => {
    const rows = new Map<string, T>();
    let keyName: string | null = opts.key ?? null;
    let ready = false;
    const keyOf = (r: T): string => String((r as Row)[keyName ?? 'id']);
    const emit = (): void => { if (ready) onRows([...rows.values()]); };
    const event = (type: ChangeEvent<T>['type'], changed: readonly T[], old: readonly T[] = []): void => opts.onEvent?.({ type, rows: changed, oldValues: old });
    const subscription = await subscribe<T>(sql, {
      onInitialData: (batch, schema) => {
        if (keyName === null) keyName = pkName(schema) ?? 'id';
        for (const r of batch) rows.set(keyOf(r), r);
      },
      onReady: () => { ready = true; event('ready', []); emit(); },
      onInsert: (changed) => { for (const r of changed) rows.set(keyOf(r), r); event('insert', changed); emit(); },
      onUpdate: (changed, old) => { for (const r of changed) rows.set(keyOf(r), r); event('update', changed, old); emit(); },
      onDelete: (old) => { for (const r of old) rows.delete(keyOf(r)); event('delete', [], old); emit(); },
      onFlush: (flush) => opts.onEvent?.({ type: 'flush', rows: [], oldValues: [], flush }),
      onError: (error) => opts.onError?.(error),
    }, { batchSize: opts.batchSize ?? 1000, ...(opts.lastRows !== undefined ? { lastRows: opts.lastRows } : {}) });
    return () => subscription.unsubscribe();
  };

  return {
    query: (sql, params) => query(sql, params),
    queryRows: async <T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> => {
      const res = await query(sql, params);
      const result = res.results[0];
      const schema = result?.schema ?? [];
      return (result?.rows ?? []).map((row) => Object.fromEntries(schema.map((f, i) => [f.name, row[i]])) as T);
    },
    subscribe,
    live: liveRows,
    disconnect: async () => live.close(),
    get connectionState() { return live.state; },
    onConnectionState: (listener) => live.onState(listener),
    get reconnects() { return live.reconnects; },
  };
}

function pkName(schema: readonly SchemaField[] | null): string | null {
  return schema?.find((f) => f.flags?.includes('pk'))?.name ?? null;
}

function convertCell(field: SchemaField | undefined, v: unknown): unknown {
  return field?.data_type === 'BigInt' && typeof v === 'string' ? BigInt(v) : v;
}

function convertRow(row: Row, schema: readonly SchemaField[] | null): Row {
  if (schema === null) return row;
  const out: Row = { ...row };
  for (const f of schema) if (f.data_type === 'BigInt' && typeof out[f.name] === 'string') out[f.name] = BigInt(out[f.name] as string);
  return out;
}
