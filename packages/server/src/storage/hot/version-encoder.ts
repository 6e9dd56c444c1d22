/**
 * The msgpack encoding of a row version ([schemaVersion, state, ...values], row-codec.ts), written by
 * hand: byte for byte what row-codec's msgpackr Packr writes for the value types a row holds (null,
 * boolean, number, 64-bit bigint, string, bytes), without msgpackr's generic dispatch and without the
 * array of [schemaVersion, state, ...values] it needs as input. Every inserted row is encoded once;
 * msgpackr took ~10% of the main thread in a bulk INSERT. Values it does not cover (a bigint past 64
 * bits, stored as an extension) return null: the caller uses msgpackr. row-encoding.test compares the
 * bytes with msgpackr's over edge cases and random rows.
 *
 * Versions are written one after another into a shared chunk and returned as views of it (as msgpackr
 * does with its own buffer): a view stays valid, a chunk is left to the views when it is full.
 */
import type { StoredValue } from '../../catalog/types.js';

const CHUNK_BYTES = 64 * 1024;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

let chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
let view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
let used = 0;

/**
 * `head` bytes (left for the caller to fill), then the encoding of [schemaVersion, state, ...values];
 * null when a value needs msgpackr.
 */
export function encodeVersion(head: number, schemaVersion: number, state: number, values: readonly StoredValue[]): Buffer | null {
  // An upper bound of the bytes: a header of at most 5 bytes per item, 3 bytes per UTF-16 unit.
  let bound = head + 5 + 2 * 9;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'string') bound += 5 + 3 * v.length;
    else if (v instanceof Uint8Array) bound += 5 + v.byteLength;
    else if (typeof v === 'bigint') {
      if (v < INT64_MIN || v > INT64_MAX) return null;
      bound += 9;
    } else if (v === null || typeof v === 'number' || typeof v === 'boolean') bound += 9;
    else return null;
  }
  if (used + bound > chunk.length) {
    chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, bound));
    view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    used = 0;
  }
  const start = used;
  let at = start + head;
  const items = values.length + 2;
  if (items < 0x10) chunk[at++] = 0x90 | items;
  else if (items < 0x10000) {
    chunk[at++] = 0xdc;
    chunk[at++] = items >> 8;
    chunk[at++] = items & 0xff;
  } else {
    chunk[at++] = 0xdd;
    view.setUint32(at, items);
    at += 4;
  }
  at = writeNumber(at, schemaVersion);
  at = writeNumber(at, state);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v === 'string') at = writeString(at, v);
    else if (typeof v === 'number') at = writeNumber(at, v);
    else if (v === null) chunk[at++] = 0xc0;
    else if (typeof v === 'boolean') chunk[at++] = v ? 0xc3 : 0xc2;
    else if (typeof v === 'bigint') {
      chunk[at++] = 0xd3;
      view.setBigInt64(at, v);
      at += 8;
    } else at = writeBytes(at, v);
  }
  used = at;
  return chunk.subarray(start, at);
}

/** As msgpackr: the smallest integer form of a 32-bit integer, else a float64. */
function writeNumber(at: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) chunk[at++] = v;
    else if (v < 0x100) {
      chunk[at++] = 0xcc;
      chunk[at++] = v;
    } else if (v < 0x10000) {
      chunk[at++] = 0xcd;
      chunk[at++] = v >> 8;
      chunk[at++] = v & 0xff;
    } else {
      chunk[at++] = 0xce;
      view.setUint32(at, v);
      at += 4;
    }
  } else if (v >> 0 === v) {
    if (v >= -0x20) chunk[at++] = 0x100 + v;
    else if (v >= -0x80) {
      chunk[at++] = 0xd0;
      chunk[at++] = v + 0x100;
    } else if (v >= -0x8000) {
      chunk[at++] = 0xd1;
      view.setInt16(at, v);
      at += 2;
    } else {
      chunk[at++] = 0xd2;
      view.setInt32(at, v);
      at += 4;
    }
  } else {
    chunk[at++] = 0xcb;
    view.setFloat64(at, v);
    at += 8;
  }
  return at;
}

/**
 * UTF-8 (a lone surrogate as U+FFFD, as Buffer and msgpackr write it) after the smallest header for
 * its byte length. The bytes are written after a header sized for the UTF-16 length, which the
 * UTF-8 length is never below, and moved when the header must be longer.
 */
function writeString(at: number, s: string): number {
  const units = s.length;
  const guess = units < 0x20 ? 1 : units < 0x100 ? 2 : units < 0x10000 ? 3 : 5;
  const from = at + guess;
  let length: number;
  if (units < 0x40) {
    let p = from;
    for (let i = 0; i < units; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) chunk[p++] = c;
      else if (c < 0x800) {
        chunk[p++] = (c >> 6) | 0xc0;
        chunk[p++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xfc00) === 0xd800 && i + 1 < units && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x03ff) << 10) + (s.charCodeAt(++i) & 0x03ff);
        chunk[p++] = (c >> 18) | 0xf0;
        chunk[p++] = ((c >> 12) & 0x3f) | 0x80;
        chunk[p++] = ((c >> 6) & 0x3f) | 0x80;
        chunk[p++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xf800) === 0xd800) {
        chunk[p++] = 0xef;
        chunk[p++] = 0xbf;
        chunk[p++] = 0xbd;
      } else {
        chunk[p++] = (c >> 12) | 0xe0;
        chunk[p++] = ((c >> 6) & 0x3f) | 0x80;
        chunk[p++] = (c & 0x3f) | 0x80;
      }
    }
    length = p - from;
  } else {
    length = chunk.write(s, from, 'utf8');
  }
  const header = length < 0x20 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
  if (header > guess) chunk.copyWithin(at + header, from, from + length);
  if (header === 1) chunk[at] = 0xa0 | length;
  else if (header === 2) {
    chunk[at] = 0xd9;
    chunk[at + 1] = length;
  } else if (header === 3) {
    chunk[at] = 0xda;
    chunk[at + 1] = length >> 8;
    chunk[at + 2] = length & 0xff;
  } else {
    chunk[at] = 0xdb;
    view.setUint32(at + 1, length);
  }
  return at + header + length;
}

function writeBytes(at: number, bytes: Uint8Array): number {
  const length = bytes.byteLength;
  if (length < 0x100) {
    chunk[at++] = 0xc4;
    chunk[at++] = length;
  } else if (length < 0x10000) {
    chunk[at++] = 0xc5;
    chunk[at++] = length >> 8;
    chunk[at++] = length & 0xff;
  } else {
    chunk[at++] = 0xc6;
    view.setUint32(at, length);
    at += 4;
  }
  chunk.set(bytes, at);
  return at + length;
}
