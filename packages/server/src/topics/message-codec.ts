/**
 * The stored layout of topic messages: message keys and chunk values, written by `stage` and read
 * back by reads and the retention sweep. Nothing here touches the store.
 *
 * Key layout (first byte 0x03, next to the catalog/version/index kinds of keys.ts):
 *   0x03 | u8 len | utf8 topic | u32 partition | u64 offset of the chunk's LAST message  → chunk
 *
 * A chunk holds the consecutive messages one commit group (the committer's batch of concurrent
 * statements) published to one partition: a 1,000-row INSERT makes a chunk of 1,000 messages, single-
 * row INSERTs committed together share one. Keying it by its last offset lets one forward seek (`gte`
 * the wanted offset) land on the chunk holding that offset. Per RocksDB entry a read costs ~3 µs of
 * CPU in rocksdb-native (entry copies, iterator bookkeeping), the drain's largest cost when each
 * message was an entry; chunks pay it once per commit group and partition instead.
 * Value layout (integers big-endian), binary so a consume base64-encodes payload bytes unparsed:
 *   u8 layout version (2) | u8 0 | f64 timestamp ms (of the whole chunk: one commit) | u32 count
 *   then `count` records: u8 op (1 insert, 2 update, 3 delete) | u32 key bytes (0xFFFFFFFF: null)
 *   | u32 user bytes (0xFFFFFFFF: none) | u32 payload bytes | utf8 key | utf8 user | utf8 payload JSON
 * The first offset of a chunk is its key's offset - count + 1. Retention drops whole chunks by age
 * (one timestamp per chunk) and, by size, may rewrite the oldest chunk without its first records
 * (same key); TopicService's `maintenance` orders those rewrites with CLEAR/DROP TOPIC's deletes.
 * (Until the topics benchmark of issue 14 each message was its own entry holding JSON {k, p, t, u, o};
 * there was no deployed data to convert.)
 */
import type { TopicMessage, TopicOp } from './types.js';

const KEY_TOPIC_MESSAGE = 0x03;

/** A message as stored: its offset, and where its record lies in its chunk (layout above). */
export interface StoredMessage {
  readonly offset: number;
  readonly timestamp: number;
  /** The chunk's value. */
  readonly value: Buffer;
  /** Where the message's record starts in `value`. */
  readonly at: number;
}

const LAYOUT_VERSION = 2;
/** Bytes before a chunk's first record: version, reserved byte, timestamp, count. */
export const CHUNK_HEADER = 14;
const RECORD_HEADER = 13;
const NO_STRING = 0xffffffff;
const OP_CODES: Readonly<Record<TopicOp, number>> = { insert: 1, update: 2, delete: 3 };
const OPS: readonly TopicOp[] = ['insert', 'insert', 'update', 'delete'];

export function encodeRecord(op: TopicOp, key: string | null, user: string | null, payload: string): Buffer {
  const keyBytes = key === null ? 0 : Buffer.byteLength(key, 'utf8');
  const userBytes = user === null ? 0 : Buffer.byteLength(user, 'utf8');
  const payloadBytes = Buffer.byteLength(payload, 'utf8');
  const out = Buffer.allocUnsafe(RECORD_HEADER + keyBytes + userBytes + payloadBytes);
  out[0] = OP_CODES[op];
  out.writeUInt32BE(key === null ? NO_STRING : keyBytes, 1);
  out.writeUInt32BE(user === null ? NO_STRING : userBytes, 5);
  out.writeUInt32BE(payloadBytes, 9);
  let at = RECORD_HEADER;
  if (key !== null) at += out.write(key, at, 'utf8');
  if (user !== null) at += out.write(user, at, 'utf8');
  out.write(payload, at, 'utf8');
  return out;
}

export function encodeChunk(timestamp: number, records: readonly Buffer[], recordBytes: number): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_HEADER + recordBytes);
  out[0] = LAYOUT_VERSION;
  out[1] = 0;
  out.writeDoubleBE(timestamp, 2);
  out.writeUInt32BE(records.length, 10);
  let at = CHUNK_HEADER;
  for (const record of records) at += record.copy(out, at);
  return out;
}

export function chunkCount(value: Buffer): number {
  if (value[0] !== LAYOUT_VERSION) throw new Error(`Unknown topic message layout ${value[0]}`);
  return value.readUInt32BE(10);
}

export function chunkTimestamp(value: Buffer): number {
  return value.readDoubleBE(2);
}

/** The size of the record at `at` (header included). */
export function recordSize(value: Buffer, at: number): number {
  const keyBytes = value.readUInt32BE(at + 1);
  const userBytes = value.readUInt32BE(at + 5);
  return RECORD_HEADER + (keyBytes === NO_STRING ? 0 : keyBytes) + (userBytes === NO_STRING ? 0 : userBytes) + value.readUInt32BE(at + 9);
}

/**
 * The chunk `value` without its records before `at` (the first record kept), `count` records left:
 * same header and timestamp, so it can be written back under the same key (size retention).
 */
export function chunkTail(value: Buffer, at: number, count: number): Buffer {
  const rest = Buffer.allocUnsafe(CHUNK_HEADER + value.length - at);
  value.copy(rest, 0, 0, CHUNK_HEADER);
  rest.writeUInt32BE(count, 10);
  value.copy(rest, CHUNK_HEADER, at);
  return rest;
}

/** The parts of a stored message: strings decoded, the payload left as a byte range of `value`. */
export interface MessageParts {
  readonly op: TopicOp;
  readonly timestamp: number;
  readonly key: string | null;
  readonly user: string | null;
  /** The payload JSON is value[payloadStart, payloadEnd). */
  readonly payloadStart: number;
  readonly payloadEnd: number;
}

export function messageParts(m: StoredMessage): MessageParts {
  const { value } = m;
  const keyBytes = value.readUInt32BE(m.at + 1);
  const userBytes = value.readUInt32BE(m.at + 5);
  const payloadBytes = value.readUInt32BE(m.at + 9);
  let at = m.at + RECORD_HEADER;
  const key = keyBytes === NO_STRING ? null : value.toString('utf8', at, at += keyBytes);
  const user = userBytes === NO_STRING ? null : value.toString('utf8', at, at += userBytes);
  return { op: OPS[value[m.at]!] ?? 'insert', timestamp: m.timestamp, key, user, payloadStart: at, payloadEnd: at + payloadBytes };
}

/** A stored message as consumers see it (payload decoded to text). */
export function decodeMessage(topic: string, partition: number, m: StoredMessage): TopicMessage {
  const parts = messageParts(m);
  return {
    topic_id: topic, partition_id: partition, offset: m.offset, key: parts.key,
    payload: m.value.toString('utf8', parts.payloadStart, parts.payloadEnd), timestamp_ms: parts.timestamp, user_id: parts.user, op: parts.op,
  };
}

/** The offset in a message key (its last 8 bytes), read without a bigint. */
export function keyOffset(key: Buffer): number {
  return key.readUInt32BE(key.length - 8) * 0x1_0000_0000 + key.readUInt32BE(key.length - 4);
}

/** The key prefix of a topic's messages, or of one partition's. */
export function messagePrefix(topic: string, partition?: number): Buffer {
  const name = Buffer.from(topic, 'utf8');
  const head = Buffer.allocUnsafe(2 + name.length);
  head[0] = KEY_TOPIC_MESSAGE;
  head[1] = name.length;
  name.copy(head, 2);
  if (partition === undefined) return head;
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(partition);
  return Buffer.concat([head, p]);
}

/** Offsets are below 2^53: two u32 writes, no bigint per message. */
function writeOffset(out: Buffer, offset: number, at: number): void {
  out.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), at);
  out.writeUInt32BE(offset >>> 0, at + 4);
}

/** The key of the chunk whose last message has `offset`. */
export function messageKey(topic: string, partition: number, offset: number): Buffer {
  const prefix = messagePrefix(topic, partition);
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  writeOffset(out, offset, prefix.length);
  return out;
}
