/**
 * RocksDB key layout. One keyspace, first byte says what a key is:
 *   0x00 catalog   0x00 | utf8 name                                   → JSON
 *   0x01 version   0x01 | table u32 | partition (u8 len + utf8) | seq u64   → encoded row version, or a pack of a
 *                  commit group's versions keyed by its highest seq (version-pack.ts, decision 0018)
 *   0x02 pk index  0x02 | table u32 | partition (u8 len + utf8) | pk bytes  → seq u64 + encoded row version
 *   (0x03 topic messages, see topics/message-codec.ts)
 *   0x04 flushed   0x04 | table u32 | partition (u8 len + utf8)            → seq u64: every index entry of the
 *                  partition at or below it is in a Parquet segment (read as a cold marker, decision 0014)
 * Integers are big-endian so that keys sort by table, partition, then seq (or primary key).
 * The partition is the owner's user id for USER tables and empty for SHARED tables.
 */
import { assert } from '../../util/errors.js';
import type { ColumnType, StoredValue } from '../../catalog/types.js';
import { readU64BE, writeOrderedI64BE, writeU64BE } from './u64.js';

export const KEY_CATALOG = 0x00;
export const KEY_VERSION = 0x01;
export const KEY_PK = 0x02;
export const KEY_FLUSHED = 0x04;
export const PARTITION_BYTES_MAX = 255;

export function catalogKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(KEY_CATALOG), Buffer.from(name, 'utf8')]);
}

/** The common prefix of every version (kind = KEY_VERSION) or index (KEY_PK) key of a partition. */
export function partitionPrefix(kind: number, tableId: number, partition: string): Buffer {
  const part = Buffer.from(partition, 'utf8');
  assert(part.length <= PARTITION_BYTES_MAX, 'partition id too long');
  const out = Buffer.allocUnsafe(6 + part.length);
  out[0] = kind;
  out.writeUInt32BE(tableId, 1);
  out[5] = part.length;
  part.copy(out, 6);
  return out;
}

/** The prefix of every key of one table, of either kind. */
/** The partition id a partitionPrefix was made of. */
export function partitionOfPrefix(prefix: Buffer): string {
  return prefix.toString('utf8', 6, 6 + prefix[5]!);
}

export function tablePrefix(kind: number, tableId: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = kind;
  out.writeUInt32BE(tableId, 1);
  return out;
}

export function versionKey(prefix: Buffer, seq: bigint): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  writeU64BE(out, seq, prefix.length);
  return out;
}

export function pkKey(prefix: Buffer, pk: Buffer): Buffer {
  return Buffer.concat([prefix, pk]);
}

/**
 * pkKey(prefix, encodePk(type, value)) in one allocation for integer keys (once per row a bulk
 * INSERT writes: the separate encoding and the concatenation were two more buffers per row).
 */
export function pkKeyOf(prefix: Buffer, type: ColumnType, value: StoredValue): Buffer {
  if (!isIntegerPk(type)) return pkKey(prefix, encodePk(type, value));
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  writeIntegerPk(out, value, prefix.length);
  return out;
}

/** Key types encoded as 8 ordered bytes (encodePk and pkKeyOf must agree: the same value, the same key). */
const INTEGER_PK_TYPES = ['SmallInt', 'Int', 'BigInt', 'Timestamp', 'Date', 'Time'] as const;

function isIntegerPk(type: ColumnType): type is (typeof INTEGER_PK_TYPES)[number] {
  return (INTEGER_PK_TYPES as readonly ColumnType[]).includes(type);
}

function writeIntegerPk(out: Buffer, value: StoredValue, offset: number): void {
  assert(value !== null, 'primary key is never null');
  writeOrderedI64BE(out, BigInt(value as number | bigint), offset);
}

/** The smallest key greater than every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]!++;
      return out.subarray(0, i + 1);
    }
  }
  return Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
}

/**
 * Encodes a primary-key value so that equal values give equal bytes (and integers sort in order).
 * The caller has already coerced the value to the column type.
 */
export function encodePk(type: ColumnType, value: StoredValue): Buffer {
  assert(value !== null, 'primary key is never null');
  if (isIntegerPk(type)) {
    const out = Buffer.allocUnsafe(8);
    writeIntegerPk(out, value, 0);
    return out;
  }
  switch (type) {
    case 'Boolean':
      return Buffer.of(value ? 1 : 0);
    case 'Float': case 'Double': {
      const out = Buffer.allocUnsafe(8);
      out.writeDoubleBE(value as number);
      return out;
    }
    case 'Bytes':
      return Buffer.from(value as Uint8Array);
    case 'Decimal':
      return Buffer.from((value as bigint).toString(), 'utf8');
    case 'Text': case 'Json': case 'Uuid':
      return Buffer.from(value as string, 'utf8');
  }
}

/**
 * The primary-key value `encodePk` wrote (integers of every width, timestamps, dates and times as
 * bigints; decimals as their scaled bigint), for reading keys back out of the index (REPAIR).
 */
export function decodePk(type: ColumnType, bytes: Uint8Array): StoredValue {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'SmallInt': case 'Int': case 'BigInt': case 'Timestamp': case 'Date': case 'Time':
      return BigInt.asIntN(64, readU64BE(buffer, 0) ^ (1n << 63n));
    case 'Boolean':
      return buffer[0] === 1;
    case 'Float': case 'Double':
      return buffer.readDoubleBE(0);
    case 'Bytes':
      return new Uint8Array(buffer);
    case 'Decimal':
      return BigInt(buffer.toString('utf8'));
    case 'Text': case 'Json': case 'Uuid':
      return buffer.toString('utf8');
  }
}
