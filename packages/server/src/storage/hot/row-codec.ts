/**
 * Row versions as stored in RocksDB: a msgpack array [schemaVersion, deleted, ...values in schema
 * order]. Keeping the schema version in the value lets old rows decode after ALTER TABLE.
 */
import { Packr, addExtension } from 'msgpackr';
import { assert } from '../../util/errors.js';
import type { StoredValue } from '../../catalog/types.js';

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

/** Index values carry the seq of the newest version followed by its encoding. */
export function encodeIndexValue(seq: bigint, row: Buffer): Buffer {
  const out = Buffer.allocUnsafe(8 + row.length);
  out.writeBigUInt64BE(seq, 0);
  row.copy(out, 8);
  return out;
}

export function decodeIndexValue(bytes: Buffer): RowVersion {
  assert(bytes.length > 8, 'corrupt index value');
  return decodeRow(bytes.readBigUInt64BE(0), bytes.subarray(8));
}

