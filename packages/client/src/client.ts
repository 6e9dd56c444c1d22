/**
 * createClient(): SQL over HTTP (`query`, `queryRows`) and live queries over one shared WebSocket
 * (`subscribe` for raw change events, `live` for a row set kept current by primary key).
 */
import { KalamError } from './errors.js';
import { TokenSource, type AuthOptions } from './auth.js';
import { defaultPost, fetchPost, type HttpAnswer, type HttpPost } from './http-post.js';
import { LiveConnection, maxSeq, type ConnectionState, type ConnectionStateListener, type LiveSubscription } from './live-connection.js';
import { createConsumer, type Consumer, type ConsumerOptions } from './consumer.js';
import type { SchemaChange, ChangeEvent, DataType, QueryResponse, QueryResult, Row, SchemaField, ServerMessage } from './types.js';

export interface ClientOptions {
  /** Server base URL, e.g. http://localhost:8080 */
  readonly url: string;
  readonly auth: AuthOptions;
  /** Namespace for unqualified table names in `query`. */
  readonly namespace?: string;
  /** Convert BIGINT cells (strings on the wire) to bigint. Default false. */
  readonly bigint?: boolean;
  /**
   * TIMESTAMP and DATE cells: `'micros'` (default) keeps the wire form (TIMESTAMP: integer µs since the
   * epoch; DATE: integer days since the epoch); `'date'` turns both into JS `Date` objects (TIMESTAMP
   * truncated to the millisecond, DATE at UTC midnight) in `query`, `queryRows`, `subscribe` and `live`.
   * TIME stays integer µs since midnight.
   */
  readonly timestamps?: 'micros' | 'date';
  /**
   * Used for every request when given. By default, SQL and topic requests go over node:http(s) with a
   * keep-alive agent where `node:http` exists (Node), and over the global `fetch` elsewhere.
   */
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
  /**
   * The subscribed table's columns changed (ALTER TABLE on a `SELECT *` subscription, or a selected
   * column's type): rows after this call have the new `schema`. `changes` says how the columns changed
   * (renames included), so rows held from before can be re-keyed. A subscription whose SQL names a
   * dropped or renamed column ends instead, through onError with code `SCHEMA_CHANGED`.
   */
  onSchemaChanged?(schema: readonly SchemaField[], changes: readonly SchemaChange[]): void;
  /**
   * After a reconnect the server could not resume the subscription exactly (its `from` is past the
   * table's retained history, or an ALTER TABLE changed the columns since): everything received so far
   * is void; a fresh snapshot follows (`onInitialData`, then `onReady` again), then live changes.
   */
  onReset?(): void;
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
  /**
   * Column that identifies rows; default: the table's primary key (from the schema's pk flag). It must
   * be among the selected columns (or be `'_seq'`: every row version on its own, e.g. for events of a
   * STREAM table without a key), else `live()` rejects with `LIVE_KEY_MISSING`.
   */
  readonly key?: string;
  /** Every change; after an ALTER TABLE a `schema_changed` event (with `schema` and `changes`) once the held rows were re-keyed. */
  onEvent?(event: ChangeEvent<T>): void;
  onError?(error: KalamError): void;
}

export interface KalamClient {
  /**
   * Runs SQL over HTTP. `params` bind `$1 … $n`: strings, numbers, booleans, null, `bigint` (sent as a
   * decimal string, exact for BIGINT), `Date` (sent as an ISO 8601 string in UTC; one at UTC midnight as
   * `YYYY-MM-DD`, so it also fits DATE columns), `Uint8Array` (BYTES), arrays and plain objects (JSON).
   * Anything else (undefined, functions, symbols, invalid dates) rejects with `INVALID_PARAMS`
   * before anything is sent.
   */
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
  /** Topic consumer groups over HTTP (`/v1/api/topics/consume` and `/ack`; roles service, dba, system). */
  readonly topics: TopicsApi;
  /**
   * A consumer-group member that runs a handler on each message of a topic (over HTTP long-polling,
   * or pushed over the WebSocket with `transport: 'websocket'`), with retries, batched acks and stop().
   * See ConsumerOptions and docs/sdk.md, Consuming topics.
   */
  consumer<P = Record<string, unknown>>(options: ConsumerOptions<P>): Consumer<P>;
}

export interface TopicMessage<P = Record<string, unknown>> {
  readonly topic_id: string;
  readonly partition_id: number;
  readonly offset: number;
  /**
   * The payload, decoded (the server sends its bytes in base64, as upstream): the row (`full`),
   * its primary key (`key`), or the key, changed columns and `old_values` (`diff`); full and diff
   * payloads name their source table in `_table`, deletes carry `_deleted: true`.
   */
  readonly payload: P;
  readonly key: string | null;
  readonly timestamp_ms: number;
  /** The writer, for USER-table sources. */
  readonly user?: string;
  /** Insert, Update or Delete. */
  readonly op: string;
}

export interface ConsumeOptions {
  readonly topic: string;
  readonly group: string;
  /** A new group's first position: 'latest' (default), 'earliest' or an offset. */
  readonly start?: 'latest' | 'earliest' | number;
  readonly limit?: number;
  readonly partition?: number;
  /** Long-poll: wait up to this long for a message when none is available. */
  readonly timeoutSeconds?: number;
  /**
   * Names the group member (`member_id`): members never get overlapping offsets and an ack speaks
   * only for its member's messages. Default: the user (workers sharing an account ack for each other).
   */
  readonly memberId?: string;
  /** Aborts the request (it rejects with code `ABORTED`; messages the server claimed meanwhile come again after the visibility timeout). */
  readonly signal?: AbortSignal;
}

export interface TopicsApi {
  consume<P = Record<string, unknown>>(options: ConsumeOptions): Promise<{ messages: TopicMessage<P>[]; next_offset: number; has_more: boolean }>;
  /**
   * Acknowledges, for this member, the messages up to `uptoOffset` (from `fromOffset` on, when given:
   * a member handling a redelivered lower range after a higher one acknowledges exactly what it handled).
   */
  ack(options: { topic: string; group: string; partition?: number; uptoOffset: number; fromOffset?: number; memberId?: string }): Promise<{ success: boolean; acknowledged_offset: number }>;
}

let subscriptionCounter = 0;

interface RawConsumed {
  readonly messages: (Omit<TopicMessage, 'payload'> & { readonly payload: string })[];
  readonly next_offset: number;
  readonly has_more: boolean;
}

function decodeConsumed<P>(raw: RawConsumed): { messages: TopicMessage<P>[]; next_offset: number; has_more: boolean } {
  const decoder = new TextDecoder();
  const messages = raw.messages.map((m) => {
    const bytes = Uint8Array.from(atob(m.payload), (c) => c.charCodeAt(0));
    return { ...m, payload: JSON.parse(decoder.decode(bytes)) as P };
  });
  return { messages, next_offset: raw.next_offset, has_more: raw.has_more };
}

/** Handlers the client uses internally: also told the schema when the subscription is acknowledged. */
interface InternalHandlers<T> extends SubscribeHandlers<T> {
  onSchema?(schema: readonly SchemaField[] | null): void;
}

/** A schema's change to another by column names (an ack after a reconnect: renames show as drop and add). */
function schemaDiff(before: readonly SchemaField[], after: readonly SchemaField[]): SchemaChange[] {
  const was = new Map(before.map((f) => [f.name, f]));
  const now = new Set(after.map((f) => f.name));
  const out: SchemaChange[] = [];
  for (const f of after) {
    const old = was.get(f.name);
    if (old === undefined) out.push({ kind: 'add', column: f.name, default: null });
    else if (JSON.stringify(old.data_type) !== JSON.stringify(f.data_type)) out.push({ kind: 'modify', column: f.name, data_type: f.data_type });
  }
  for (const f of before) if (!now.has(f.name)) out.push({ kind: 'drop', column: f.name });
  return out;
}

/** A row held from before a schema change, re-keyed to the new columns (a new object; `plan` converts what changed). */
function reshapeRow(row: Row, changes: readonly SchemaChange[], plan: ObjectPlan | null): Row {
  const out: Row = { ...row };
  const touched = new Set<string>();
  for (const c of changes) {
    if (c.kind === 'drop') delete out[c.column];
    else if (c.kind === 'rename' && c.new_name !== undefined) {
      out[c.new_name] = row[c.column];
      if (!changes.some((o) => o.kind === 'rename' && o.new_name === c.column)) delete out[c.column];
    } else if (c.kind === 'add') {
      out[c.column] = c.default ?? null;
      touched.add(c.column);
    } else if (c.kind === 'modify') {
      const v = out[c.column];
      // Back to its wire form so the new type's conversion applies (e.g. INT to BIGINT with `bigint: true`).
      out[c.column] = typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)) ? String(v) : v instanceof Date ? v.getTime() * 1000 : v;
      touched.add(c.column);
    }
  }
  for (const [name, fn] of plan ?? []) if (touched.has(name) && name in out) out[name] = fn(out[name]);
  return out;
}

export function createClient(options: ClientOptions): KalamClient {
  const base = options.url.replace(/\/+$/, '');
  // Bound: browsers refuse fetch called as a method of another object ("Illegal invocation").
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const tokens = new TokenSource(base, options.auth, fetchImpl);
  // SQL and topic requests: the caller's fetch when given, else node:http where there is one (http-post.ts).
  const post: HttpPost = options.fetch !== undefined ? fetchPost(options.fetch) : defaultPost();
  const live = new LiveConnection(`${base.replace(/^http/, 'ws')}/v1/ws`, tokens);
  const cells: CellOptions = { bigint: options.bigint === true, dates: options.timestamps === 'date' };

  /**
   * POSTs a JSON body with the current access token and parses the JSON answer. A 401 gets one retry
   * with a fresh token (unless the client was given a fixed token).
   */
  const postJson = async (path: string, body: string, signal?: AbortSignal): Promise<{ status: number; json: unknown }> => {
    for (let retried = false; ; retried = true) {
      const token = await tokens.token();
      let res: HttpAnswer;
      try {
        res = await post(`${base}${path}`, { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body, signal);
      } catch (error) {
        if (signal?.aborted === true) throw new KalamError('ABORTED', `${path}: aborted`);
        throw new KalamError('CONNECTION_FAILED', `Cannot reach ${base}: ${(error as Error).message}`);
      }
      if (res.status === 401 && !retried && !('token' in options.auth)) {
        tokens.invalidate();
        continue;
      }
      try {
        return { status: res.status, json: JSON.parse(res.text) as unknown };
      } catch {
        throw new KalamError('INVALID_RESPONSE', `HTTP ${res.status} from ${base}${path} is not JSON: ${res.text.slice(0, 200)}`, res.status);
      }
    }
  };

  const query = async (sql: string, params?: readonly unknown[]): Promise<QueryResponse> => {
    const { status, json } = await postJson('/v1/api/sql', requestBody(sql, params, options.namespace));
    const body = json as QueryResponse;
    if (body.status !== 'success') throw new KalamError(body.error?.code ?? 'INTERNAL_ERROR', body.error?.message ?? `HTTP ${status}`, status);
    if (cells.bigint || cells.dates) for (const result of body.results) convertResult(result, cells);
    return body;
  };

  const postTopics = async <R>(path: string, payload: unknown, signal?: AbortSignal): Promise<R> => {
    const { status, json } = await postJson(path, JSON.stringify(payload), signal);
    const body = json as Record<string, unknown>;
    if (status !== 200) {
      throw new KalamError(String(body.error ?? 'INTERNAL_ERROR').toUpperCase(), String(body.message ?? `HTTP ${status}`), status);
    }
    return body as R;
  };

  const topics: TopicsApi = {
    consume: async <P>(o: ConsumeOptions) => decodeConsumed<P>(await postTopics<RawConsumed>('/v1/api/topics/consume', {
      topic_id: o.topic, group_id: o.group,
      start: o.start === undefined ? 'Latest' : typeof o.start === 'number' ? { Offset: o.start } : o.start === 'earliest' ? 'Earliest' : 'Latest',
      ...(o.limit !== undefined ? { limit: o.limit } : {}),
      ...(o.partition !== undefined ? { partition_id: o.partition } : {}),
      ...(o.timeoutSeconds !== undefined ? { timeout_seconds: o.timeoutSeconds } : {}),
      ...(o.memberId !== undefined ? { member_id: o.memberId } : {}),
    }, o.signal)),
    ack: (o) => postTopics('/v1/api/topics/ack', {
      topic_id: o.topic, group_id: o.group, partition_id: o.partition ?? 0, upto_offset: o.uptoOffset,
      ...(o.fromOffset !== undefined ? { from_offset: o.fromOffset } : {}),
      ...(o.memberId !== undefined ? { member_id: o.memberId } : {}),
    }),
  };

  const subscribeWith = async <T>(sql: string, handlers: InternalHandlers<T>, opts: SubscribeOptions, convert: boolean): Promise<Subscription> => {
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
    let plan: ObjectPlan | null = null;
    // A refusal before the ack rejects subscribe(); only errors after it reach onError (each once).
    let acknowledged = false;
    const rowsOf = (rows: readonly Row[] | undefined): T[] => {
      const out = (rows ?? []) as Row[];
      if (plan !== null) for (const row of out) convertObject(row, plan);
      return out as T[];
    };
    const schemaChanged = (schema: readonly SchemaField[], changes: readonly SchemaChange[]): void => {
      sub.schema = schema;
      if (convert) plan = objectPlan(schema, cells);
      handlers.onSchemaChanged?.(schema, changes);
    };
    const sub: LiveSubscription = {
      id, sql, options: { batchSize: opts.batchSize, lastRows: opts.lastRows, from: opts.from },
      lastSeq: null, ready: false, schema: null, sentOn: null, resumingOn: null,
      settle: (error) => settleFn(error),
      reset: () => {
        sub.ready = false;
        handlers.onReset?.();
      },
      onMessage: (msg) => {
        switch (msg.type) {
          case 'subscription_ack':
            if (sub.schema === null) {
              sub.schema = msg.schema ?? null;
              if (convert) plan = objectPlan(sub.schema, cells);
              handlers.onSchema?.(sub.schema);
            } else if (msg.schema !== undefined && JSON.stringify(msg.schema) !== JSON.stringify(sub.schema)) {
              // Resumed after a reconnect across an ALTER TABLE: the ack carries the new schema.
              schemaChanged(msg.schema, schemaDiff(sub.schema, msg.schema));
            }
            acknowledged = true;
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
            sub.lastSeq = maxSeq(sub.lastSeq, msg.rows);
            handlers.onInitialData?.(rowsOf(msg.rows), sub.schema);
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
            if (msg.change_type === 'insert') handlers.onInsert?.(rowsOf(msg.rows));
            else if (msg.change_type === 'update') handlers.onUpdate?.(rowsOf(msg.rows), rowsOf(msg.old_values));
            else if (msg.change_type === 'delete') handlers.onDelete?.(rowsOf(msg.old_values));
            break;
          case 'schema_changed':
            if (msg.schema !== undefined) schemaChanged(msg.schema, msg.changes ?? schemaDiff(sub.schema ?? [], msg.schema));
            break;
          case 'error':
            if (acknowledged) handlers.onError?.(new KalamError(msg.code ?? 'PROTOCOL', msg.message ?? 'Subscription error'));
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
    // Rows are keyed on their wire values (exact: no Date or bigint round trip), then converted.
    const rows = new Map<string, T>();
    let keyName = '';
    let missing: string | null = null; // why the rows cannot be keyed (refused below)
    let plan: ObjectPlan | null = null;
    let ready = false;
    const keyOf = (r: Row): string => String(r[keyName]);
    const converted = (raw: readonly Row[]): T[] => {
      if (plan !== null) for (const row of raw) convertObject(row as Row, plan);
      return raw as T[];
    };
    const emit = (): void => { if (ready) onRows([...rows.values()]); };
    const event = (type: ChangeEvent<T>['type'], changed: readonly T[], old: readonly T[] = []): void => opts.onEvent?.({ type, rows: changed, oldValues: old });
    const put = (raw: readonly Row[]): T[] => {
      const keys = raw.map(keyOf);
      const out = converted(raw);
      out.forEach((r, i) => rows.set(keys[i]!, r));
      return out;
    };
    const subscription = await subscribeWith<Row>(sql, {
      onSchema: (schema) => {
        const names = schema?.map((f) => f.name) ?? [];
        if (opts.key !== undefined) {
          if (opts.key === '_seq' || schema === null || names.includes(opts.key)) keyName = opts.key;
          else missing = opts.key;
        } else {
          const pk = schema?.find((f) => f.flags?.includes('pk'))?.name;
          if (pk !== undefined) keyName = pk;
          else missing = '';
        }
        plan = objectPlan(schema, cells);
      },
      onInitialData: (batch) => { if (missing === null) put(batch); },
      onReady: () => { if (missing !== null) return; ready = true; event('ready', []); emit(); },
      onInsert: (changed) => { if (missing === null) { event('insert', put(changed)); emit(); } },
      onUpdate: (changed, old) => {
        if (missing !== null) return;
        const oldValues = converted(old);
        event('update', put(changed), oldValues);
        emit();
      },
      onDelete: (old) => {
        if (missing !== null) return;
        for (const r of old) rows.delete(keyOf(r));
        event('delete', [], converted(old));
        emit();
      },
      onFlush: (flush) => { if (missing === null) opts.onEvent?.({ type: 'flush', rows: [], oldValues: [], flush }); },
      // The rows are sent again from scratch; `onRows` is next called once they all arrived.
      onReset: () => {
        rows.clear();
        ready = false;
        if (missing === null) event('reset', []);
      },
      onSchemaChanged: (schema, changes) => {
        if (missing !== null) return;
        plan = objectPlan(schema, cells);
        const renamedKey = changes.find((c) => c.kind === 'rename' && c.column === keyName)?.new_name;
        if (renamedKey !== undefined) keyName = renamedKey;
        for (const [key, row] of rows) rows.set(key, reshapeRow(row as Row, changes, plan) as T);
        opts.onEvent?.({ type: 'schema_changed', rows: [], oldValues: [], schema, changes });
        emit();
      },
      onError: (error) => { if (missing === null) opts.onError?.(error); },
    }, { batchSize: opts.batchSize ?? 1000, ...(opts.lastRows !== undefined ? { lastRows: opts.lastRows } : {}) }, false);
    if (missing !== null) {
      await subscription.unsubscribe();
      throw await liveKeyError(sql, missing, (s) => query(s));
    }
    return () => subscription.unsubscribe();
  };

  return {
    query: (sql, params) => query(sql, params),
    queryRows: async <T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> => {
      const res = await query(sql, params);
      const result = res.results[0];
      const names = (result?.schema ?? []).map((f) => f.name);
      return (result?.rows ?? []).map((row) => {
        const out: Row = {};
        for (let i = 0; i < names.length; i++) out[names[i]!] = row[i];
        return out as T;
      });
    },
    subscribe: (sql, handlers, opts = {}) => subscribeWith(sql, handlers, opts, true),
    live: liveRows,
    disconnect: async () => live.close(),
    get connectionState() { return live.state; },
    onConnectionState: (listener) => live.onState(listener),
    get reconnects() { return live.reconnects; },
    topics,
    consumer: (opts) => createConsumer({ topics, live }, opts),
  };
}

/**
 * The LIVE_KEY_MISSING error: names the key column the query left out (asking the server for the
 * table's primary key when the selected columns do not show it) and what to do.
 */
async function liveKeyError(sql: string, missing: string, run: (sql: string) => Promise<QueryResponse>): Promise<KalamError> {
  if (missing !== '') {
    return new KalamError('LIVE_KEY_MISSING', `live(): the key column '${missing}' (options.key) is not among the selected columns: select it, or pass a key that is selected`);
  }
  const table = /\bFROM\s+((?:"[^"]+"|[\w$]+)\s*\.\s*(?:"[^"]+"|[\w$]+))/i.exec(sql)?.[1]?.replace(/\s+/g, '');
  let pk: string | null | undefined;
  if (table !== undefined) {
    try {
      const rows = (await run(`DESCRIBE TABLE ${table}`)).results[0]?.rows ?? [];
      pk = (rows.find((r) => r[3] === true)?.[0] as string | undefined) ?? null;
    } catch {
      pk = undefined; // not known: the message says so generally
    }
  }
  if (pk === null) {
    return new KalamError('LIVE_KEY_MISSING', `live(): table ${table} has no primary key, so rows cannot be kept by key: pass options.key (a selected column that identifies rows, or '_seq' to keep every row as its own entry)`);
  }
  const column = pk !== undefined ? `the primary key '${pk}'` : 'the primary key';
  return new KalamError('LIVE_KEY_MISSING', `live() keeps rows by the table's primary key, but the query does not select ${column}: add ${pk ?? 'it'} to the selected columns, or pass options.key naming a selected column that identifies rows`);
}

/** The JSON request body; params encoded as the protocol takes them (see KalamClient.query). */
function requestBody(sql: string, params: readonly unknown[] | undefined, namespace: string | undefined): string {
  const encoded = params?.map(encodeParam);
  try {
    return JSON.stringify({ sql, ...(encoded !== undefined ? { params: encoded } : {}), ...(namespace ? { namespace_id: namespace } : {}) },
      (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  } catch (error) {
    throw new KalamError('INVALID_PARAMS', `The parameters cannot be sent as JSON: ${(error as Error).message}`);
  }
}

function encodeParam(value: unknown, index: number): unknown {
  const refuse = (what: string): never => {
    throw new KalamError('INVALID_PARAMS', `Parameter $${index + 1} is ${what}: pass a string, number, bigint, boolean, null, Date, Uint8Array, array or plain object`);
  };
  switch (typeof value) {
    case 'string': case 'boolean': return value;
    case 'number': return Number.isFinite(value) ? value : String(value); // NaN, Infinity: as the protocol writes them
    case 'bigint': return value.toString();
    case 'undefined': return refuse('undefined (use null for SQL NULL)');
    case 'object':
      if (value === null) return null;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? refuse('an invalid Date') : dateParam(value);
      if (value instanceof Uint8Array) return Array.from(value);
      return value;
    default: return refuse(`a ${typeof value}`);
  }
}

/** ISO 8601 in UTC; a Date at UTC midnight as `YYYY-MM-DD` (a DATE column takes only that form, a TIMESTAMP column both). */
function dateParam(date: Date): string {
  const iso = date.toISOString();
  return iso.endsWith('T00:00:00.000Z') && date.getUTCFullYear() >= 0 && date.getUTCFullYear() <= 9999 ? iso.slice(0, 10) : iso;
}

interface CellOptions {
  readonly bigint: boolean;
  readonly dates: boolean;
}

type CellConverter = (value: unknown) => unknown;

const MS_PER_DAY = 86_400_000;
const toBigInt: CellConverter = (v) => (typeof v === 'string' ? BigInt(v) : v);
const timestampToDate: CellConverter = (v) => (typeof v === 'number' || typeof v === 'string' ? new Date(Math.floor(Number(v) / 1000)) : v);
const dateToDate: CellConverter = (v) => (typeof v === 'number' || typeof v === 'string' ? new Date(Number(v) * MS_PER_DAY) : v);

function cellConverter(type: DataType, cells: CellOptions): CellConverter | null {
  if (type === 'BigInt') return cells.bigint ? toBigInt : null;
  if (type === 'Timestamp') return cells.dates ? timestampToDate : null;
  if (type === 'Date') return cells.dates ? dateToDate : null;
  return null;
}

/** Which cells of an array row (HTTP) or object row (WebSocket) to convert, computed once per schema. */
type ArrayPlan = ReadonlyArray<readonly [number, CellConverter]>;
type ObjectPlan = ReadonlyArray<readonly [string, CellConverter]>;

function objectPlan(schema: readonly SchemaField[] | null, cells: CellOptions): ObjectPlan | null {
  const plan: Array<readonly [string, CellConverter]> = [];
  for (const f of schema ?? []) {
    const fn = cellConverter(f.data_type, cells);
    if (fn !== null) plan.push([f.name, fn]);
  }
  return plan.length > 0 ? plan : null;
}

function convertObject(row: Row, plan: ObjectPlan): void {
  for (const [name, fn] of plan) if (name in row) row[name] = fn(row[name]);
}

/** Converts a result's cells in place (the rows were just parsed from the response). */
function convertResult(result: QueryResult, cells: CellOptions): void {
  const plan: Array<readonly [number, CellConverter]> = [];
  (result.schema ?? []).forEach((f, i) => {
    const fn = cellConverter(f.data_type, cells);
    if (fn !== null) plan.push([i, fn]);
  });
  if (plan.length === 0) return;
  for (const row of (result.rows ?? []) as unknown[][]) for (const [i, fn] of plan as ArrayPlan) row[i] = fn(row[i]);
}
