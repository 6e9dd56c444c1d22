/**
 * The shapes of topics shared by the service, the codec, the publisher and the executors: a topic's
 * definition and routes (as stored in the catalog), a message as consumers see it, and where a new
 * consumer group starts.
 */

/** Messages older than this are removed by the retention sweep, unless the topic says otherwise (as upstream). */
export const DEFAULT_RETENTION_SECONDS = 7 * 86_400;
/** A partition holding more message bytes than this loses its oldest messages, unless the topic says otherwise. */
export const DEFAULT_RETENTION_MAX_BYTES = 1024 * 1024 * 1024;

export type TopicOp = 'insert' | 'update' | 'delete';
/** Upstream's capitalized op names in HTTP and WebSocket messages (SQL CONSUME says insert/update/delete). */
export const WIRE_OP_NAMES: Readonly<Record<TopicOp, string>> = { insert: 'Insert', update: 'Update', delete: 'Delete' };
export type TopicPayloadMode = 'key' | 'full' | 'diff';

export interface TopicRoute {
  readonly tableId: number;
  /** ns.table when the route was added (for system.topics). */
  readonly table: string;
  readonly op: TopicOp;
  readonly where: string | null;
  readonly payload: TopicPayloadMode;
}

export interface TopicDef {
  /** ns.name */
  readonly name: string;
  readonly namespace: string;
  readonly partitions: number;
  readonly routes: readonly TopicRoute[];
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Messages older than this are removed by the retention sweep (default 7 days, as upstream). */
  readonly retentionSeconds?: number;
  /** A partition holding more message bytes than this loses its oldest messages (default 1 GiB). */
  readonly retentionMaxBytes?: number;
  /** Per partition, the next offset when CLEAR TOPIC last ran: offsets never go back after a restart. */
  readonly offsetFloor?: readonly number[];
}

export interface TopicMessage {
  readonly topic_id: string;
  readonly partition_id: number;
  readonly offset: number;
  readonly key: string | null;
  /** JSON text of the payload. */
  readonly payload: string;
  readonly timestamp_ms: number;
  readonly user_id: string | null;
  /** insert, update or delete (upstream's SQL spelling; HTTP capitalizes it). */
  readonly op: TopicOp;
}

export type ConsumeStart = 'earliest' | 'latest' | number;

/**
 * Where a new group starts, as HTTP and WebSocket consumers say it: "earliest" or "latest" (any case),
 * an offset, or upstream's {"Offset": n}; absent means latest. Null when it is none of these.
 */
export function parseConsumeStart(value: unknown): ConsumeStart | null {
  if (value === undefined || value === null) return 'latest';
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    return v === 'earliest' || v === 'latest' ? v : null;
  }
  const offset = typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>).Offset ?? (value as Record<string, unknown>).offset
    : value;
  return typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? offset : null;
}
