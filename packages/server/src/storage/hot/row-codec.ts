/**
 * Row versions as stored in RocksDB: a msgpack array [schemaVersion, deleted, ...values in schema
 * order]. Keeping the schema version in the value lets old rows decode after ALTER TABLE.
 */
import { Packr } from 'msgpackr';
import { assert } from '../../util/errors.js';
import type { StoredValue } from '../../catalog/types.js';

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true, ...{ useBigInt64: true } });

export interface RowVersion {
  readonly seq: bigint;
  readonly deleted: boolean;
  readonly schemaVersion: number;
  /** Cell values in the order of that schema version's columns. */
  readonly values: readonly StoredValue[];
}

export function encodeRow(schemaVersion: number, deleted: boolean, values: readonly StoredValue[]): Buffer {
  return packr.pack([schemaVersion, deleted ? 1 : 0, ...values]);
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
  return { seq, deleted: decoded[1] === 1, schemaVersion: decoded[0] as number, values };
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
