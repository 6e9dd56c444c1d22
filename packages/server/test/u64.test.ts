/**
 * The 8-byte big-endian helpers of the hot store write exactly the bytes Buffer's BigInt methods
 * write (keys and values on disk must not change), and the ordered signed form sorts as the numbers do.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readU64BE, writeOrderedI64BE, writeU64BE } from '../src/storage/hot/u64.js';
import { decodePk, encodePk } from '../src/storage/hot/keys.js';

const unsigned = [0n, 1n, 255n, 256n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 7333334444555556666n];
const signed = [-(2n ** 63n), -(2n ** 63n) + 1n, -(2n ** 32n), -1n, 0n, 1n, 2n ** 31n, 2n ** 53n, 2n ** 63n - 1n];

describe('u64 helpers', () => {
  it('write and read the bytes Buffer writes and reads, at any offset', () => {
    for (const value of unsigned) {
      for (const offset of [0, 3, 8]) {
        const expected = Buffer.alloc(20, 0xaa);
        expected.writeBigUInt64BE(value, offset);
        const actual = Buffer.alloc(20, 0xaa);
        writeU64BE(actual, value, offset);
        assert.deepEqual(actual, expected, `${value} at ${offset}`);
        assert.equal(readU64BE(actual, offset), value);
      }
    }
  });

  it('throws on a value too short to hold 8 bytes at the offset', () => {
    assert.throws(() => readU64BE(Buffer.alloc(7), 0), RangeError);
    assert.throws(() => readU64BE(Buffer.alloc(10), 3), RangeError);
    assert.throws(() => readU64BE(Buffer.alloc(10), -1), RangeError);
  });

  it('writes signed integers as the primary-key encoding always did, in numeric byte order', () => {
    const encoded = signed.map((value) => {
      const out = Buffer.alloc(8);
      writeOrderedI64BE(out, value, 0);
      const before = Buffer.alloc(8);
      before.writeBigUInt64BE(BigInt.asUintN(64, value ^ (1n << 63n)));
      assert.deepEqual(out, before, String(value));
      assert.deepEqual(encodePk('BigInt', value), before);
      return out;
    });
    for (let i = 1; i < encoded.length; i++) assert.ok(Buffer.compare(encoded[i - 1]!, encoded[i]!) < 0, `${signed[i - 1]} < ${signed[i]}`);
    assert.deepEqual(encodePk('Int', -5), encodePk('BigInt', -5n));
  });
});

describe('primary-key bytes', () => {
  it('decodePk reads back what encodePk wrote, for every key type', () => {
    const cases: [Parameters<typeof encodePk>[0], Parameters<typeof encodePk>[1]][] = [
      ['BigInt', -9223372036854775808n], ['BigInt', 0n], ['BigInt', 9223372036854775807n], ['Int', -5n], ['SmallInt', 7n],
      ['Timestamp', 1796292709833000n], ['Date', -3n], ['Time', 86_399_999_999n], ['Boolean', true], ['Boolean', false],
      ['Double', -1.5], ['Float', 3.25], ['Decimal', -12345n], ['Text', 'héllo'], ['Uuid', '0190d1c2-7b9a-7c3e-8f00-000000000001'],
      ['Bytes', new Uint8Array([0, 255, 7])],
    ];
    for (const [type, value] of cases) assert.deepEqual(decodePk(type, encodePk(type, value)), value, `${type} ${String(value)}`);
  });
});
