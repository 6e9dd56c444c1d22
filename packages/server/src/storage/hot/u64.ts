/**
 * 8-byte big-endian integers for keys and values (`_seq`s, BIGINT primary keys) without Buffer's
 * BigInt arithmetic: `writeBigUInt64BE` splits the value with BigInt shifts and masks (~100 ns a call
 * here) and is called about three times per row written; a DataView over one scratch word does it
 * in ~10 ns. Values are taken modulo 2^64, as the callers' values always fit.
 */
const scratch = new DataView(new ArrayBuffer(8));
const word = new Uint8Array(scratch.buffer);

/** Writes `value` (0 <= value < 2^64) at `offset` of `out`. */
export function writeU64BE(out: Uint8Array, value: bigint, offset: number): void {
  scratch.setBigUint64(0, value);
  copyWord(out, offset, 0);
}

/**
 * Writes a signed 64-bit integer so that byte order is numeric order (the sign bit flipped:
 * -2^63 -> 00.., 0 -> 80.., 2^63-1 -> ff..).
 */
export function writeOrderedI64BE(out: Uint8Array, value: bigint, offset: number): void {
  scratch.setBigInt64(0, value);
  copyWord(out, offset, 0x80);
}

/** Reads the unsigned 8-byte integer at `offset` of `bytes`; a short or damaged value throws, as Buffer's reader does. */
export function readU64BE(bytes: Uint8Array, offset: number): bigint {
  if (!(offset >= 0 && offset + 8 <= bytes.length)) throw new RangeError(`8 bytes at ${offset} of a ${bytes.length}-byte value`);
  word[0] = bytes[offset]!;
  word[1] = bytes[offset + 1]!;
  word[2] = bytes[offset + 2]!;
  word[3] = bytes[offset + 3]!;
  word[4] = bytes[offset + 4]!;
  word[5] = bytes[offset + 5]!;
  word[6] = bytes[offset + 6]!;
  word[7] = bytes[offset + 7]!;
  return scratch.getBigUint64(0);
}

function copyWord(out: Uint8Array, offset: number, flipFirst: number): void {
  // Eight stores beat `out.set(word, offset)` (a call into the runtime) at this size.
  out[offset] = word[0]! ^ flipFirst;
  out[offset + 1] = word[1]!;
  out[offset + 2] = word[2]!;
  out[offset + 3] = word[3]!;
  out[offset + 4] = word[4]!;
  out[offset + 5] = word[5]!;
  out[offset + 6] = word[6]!;
  out[offset + 7] = word[7]!;
}
