/**
 * Row versions as stored in RocksDB: a msgpack array [schemaVersion, deleted, ...values in schema
 * order]. Keeping the schema version in the value lets old rows decode after ALTER TABLE.
 */
import { Packr, RESERVE_START_SPACE, addExtension } from 'msgpackr';
import { assert } from '../../util/errors.js';
import type { StoredValue } from '../../catalog/types.js';
import { readU64BE, writeU64BE } from './u64.js';
import { encodeVersion } from './version-encoder.js';

/** DECIMAL(p > 18) values can exceed 64 bits; they travel as a msgpack extension holding the digits. */
class WideInteger {
  constructor(readonly value: bigint) {}
}
const WIDE_INTEGER_EXT = 0x42;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
addExtension({
  Class: WideInteger,
  type: WIDE_INTEGER_EXT,
  pack: (w: WideInteger) => Buffer.from(w.value.toString(), 'utf8'),
  unpack: (bytes: Uint8Array) => BigInt(Buffer.from(bytes).toString('utf8')),
});

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true, ...{ useBigInt64: true } });

/** [schemaVersion, state, ...values] in one array (written once per row version: no intermediate copies). */
function packable(schemaVersion: number, state: number, values: readonly StoredValue[]): unknown[] {
  const out = new Array<unknown>(values.length + 2);
  out[0] = schemaVersion;
  out[1] = state;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i + 2] = typeof v === 'bigint' && (v > INT64_MAX || v < INT64_MIN) ? new WideInteger(v) : v;
  }
  return out;
}

export interface RowVersion {
  readonly seq: bigint;
  readonly deleted: boolean;
  /**
   * A cold marker: this version was flushed to Parquet; the index keeps only its key, `_seq` and
   * deleted flag (values are empty) so uniqueness checks and point reads know where to look.
   * Exception: `decodeIndexValueWithCells` (point reads) keeps the cells a flushed entry still holds.
   */
  readonly cold?: boolean;
  readonly schemaVersion: number;
  /** Cell values in the order of that schema version's columns. */
  readonly values: readonly StoredValue[];
}

// State byte of an encoded version: hot live/deleted, or a cold marker of a live/deleted version.
const HOT_LIVE = 0;
const HOT_DELETED = 1;
const COLD_LIVE = 2;
const COLD_DELETED = 3;

export function encodeRow(schemaVersion: number, deleted: boolean, values: readonly StoredValue[]): Buffer {
  return packr.pack(packable(schemaVersion, deleted ? HOT_DELETED : HOT_LIVE, values));
}

export function encodeColdMarker(schemaVersion: number, deleted: boolean): Buffer {
  return packr.pack([schemaVersion, deleted ? COLD_DELETED : COLD_LIVE]);
}

export function decodeRow(seq: bigint, bytes: Uint8Array): RowVersion {
  const decoded = packr.unpack(bytes) as unknown[];
  assert(Array.isArray(decoded) && decoded.length >= 2, 'corrupt row version');
  const values = decoded.slice(2) as StoredValue[];
  for (let i = 0; i < values.length; i++) {
    // msgpack returns Buffer for binary data; keep a plain view type for callers.
    const v = values[i];
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) throw new Error('corrupt cell');
  }
  const state = decoded[1] as number;
  assert(state >= HOT_LIVE && state <= COLD_DELETED, 'corrupt row state');
  const deleted = state === HOT_DELETED || state === COLD_DELETED;
  if (state >= COLD_LIVE) return { seq, deleted, cold: true, schemaVersion: decoded[0] as number, values: [] };
  return { seq, deleted, schemaVersion: decoded[0] as number, values };
}

/** Bytes before the encoded version in an index value: its `_seq`, u64 BE. */
export const INDEX_VALUE_HEAD = 8;

/**
 * The index value of a new version, encoded in place after its `_seq` (encodeIndexValue of
 * encodeRow without the copy: once per inserted row; by version-encoder.ts, msgpackr's bytes). The version's own encoding is
 * `subarray(INDEX_VALUE_HEAD)`.
 */
export function encodeIndexValueOfRow(seq: bigint, schemaVersion: number, deleted: boolean, values: readonly StoredValue[]): Buffer {
  const state = deleted ? HOT_DELETED : HOT_LIVE;
  const out = encodeVersion(INDEX_VALUE_HEAD, schemaVersion, state, values)
    ?? packr.pack(packable(schemaVersion, state, values), RESERVE_START_SPACE | INDEX_VALUE_HEAD);
  writeU64BE(out, seq, 0);
  return out;
}

/** Index values carry the seq of the newest version followed by its encoding. */
export function encodeIndexValue(seq: bigint, row: Buffer): Buffer {
  const out = Buffer.allocUnsafe(8 + row.length);
  writeU64BE(out, seq, 0);
  row.copy(out, 8);
  return out;
}

/**
 * An index value as a row version. An entry whose `_seq` is at or below `flushedSeq` (the partition's
 * flush watermark) is in a Parquet segment: it reads as a cold marker, like one the hand-over used to
 * write, and its cells are not decoded.
 */
export function decodeIndexValue(bytes: Buffer, flushedSeq = 0n): RowVersion {
  assert(bytes.length > 8, 'corrupt index value');
  const seq = readU64BE(bytes, 0);
  if (seq <= flushedSeq) return decodeAsColdMarker(seq, bytes);
  return decodeRow(seq, bytes.subarray(8));
}

/**
 * An index value for a point read: as decodeIndexValue, except that an entry at or below the
 * watermark that still holds its cells (every entry a flush handed over since decision 0014) keeps
 * them: `cold: true` with the values of exactly the version its segment holds (same `_seq`; versions
 * are immutable). A cold marker (REPAIR's deleted markers, hand-overs from before the watermark) has
 * none: its row is read from the segment.
 */
export function decodeIndexValueWithCells(bytes: Buffer, flushedSeq: bigint): RowVersion {
  assert(bytes.length > 8, 'corrupt index value');
  const seq = readU64BE(bytes, 0);
  const row = decodeRow(seq, bytes.subarray(8));
  return seq <= flushedSeq && row.cold !== true ? { ...row, cold: true } : row;
}

/** Reads only the head [schemaVersion, state] of a flushed entry; anything unusual takes the full decode. */
function decodeAsColdMarker(seq: bigint, bytes: Buffer): RowVersion {
  let at = 8;
  const header = bytes[at++]!;
  if (header === 0xdc) at += 2;
  else if (header === 0xdd) at += 4;
  else if (header < 0x92 || header > 0x9f) return asColdMarker(decodeRow(seq, bytes.subarray(8)));
  const first = bytes[at++];
  let schemaVersion: number;
  if (first === undefined) return asColdMarker(decodeRow(seq, bytes.subarray(8)));
  if (first <= 0x7f) schemaVersion = first;
  else if (first === 0xcc && at + 1 <= bytes.length) schemaVersion = bytes[at++]!;
  else if (first === 0xcd && at + 2 <= bytes.length) { schemaVersion = bytes.readUInt16BE(at); at += 2; }
  else if (first === 0xce && at + 4 <= bytes.length) { schemaVersion = bytes.readUInt32BE(at); at += 4; }
  else return asColdMarker(decodeRow(seq, bytes.subarray(8)));
  const state = bytes[at];
  assert(state !== undefined && state >= HOT_LIVE && state <= COLD_DELETED, 'corrupt row state');
  return { seq, deleted: state === HOT_DELETED || state === COLD_DELETED, cold: true, schemaVersion, values: [] };
}

function asColdMarker(row: RowVersion): RowVersion {
  return row.cold === true ? row : { seq: row.seq, deleted: row.deleted, cold: true, schemaVersion: row.schemaVersion, values: [] };
}

