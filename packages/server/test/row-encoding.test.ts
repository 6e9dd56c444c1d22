/**
 * storage/hot/version-encoder.ts writes row versions by hand; every version written before it (and
 * every one it leaves to msgpackr) is msgpackr's. Its bytes must be msgpackr's exactly, for every value
 * type a row holds and every size boundary of the msgpack forms, and decode to the same row.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredValue } from '../src/catalog/types.js';
import { INDEX_VALUE_HEAD, decodeIndexValue, encodeIndexValueOfRow, encodeRow } from '../src/storage/hot/row-codec.js';
import { encodeVersion } from '../src/storage/hot/version-encoder.js';

/** The version encodeRow (msgpackr) writes, and the hand-written one. */
function both(schemaVersion: number, deleted: boolean, values: StoredValue[]): [Buffer, Buffer | null] {
  return [encodeRow(schemaVersion, deleted, values), encodeVersion(0, schemaVersion, deleted ? 1 : 0, values)];
}

function assertSame(values: StoredValue[], schemaVersion = 1, deleted = false): void {
  const [expected, actual] = both(schemaVersion, deleted, values);
  assert.ok(actual !== null, 'encoded by hand');
  assert.ok(expected.equals(actual), `bytes differ for ${describeValues(values)}: ${expected.toString('hex').slice(0, 200)} vs ${actual.toString('hex').slice(0, 200)}`);
}

function describeValues(values: StoredValue[]): string {
  return values.map((v) => (typeof v === 'string' ? `string(${v.length})` : v instanceof Uint8Array ? `bytes(${v.length})` : String(v))).join(', ').slice(0, 300);
}

// A small deterministic generator: failures reproduce.
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

const BOUNDARY_NUMBERS = [
  0, -0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -31, -32, -33, -127, -128, -129,
  -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53), 1.5, -0.25, 1e300, Number.NaN, Infinity, -Infinity,
  Number.MIN_VALUE, 2 ** 31, 2 ** 31 - 1,
];
const BOUNDARY_BIGINTS = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 32n, -(2n ** 32n) - 7n];
const LENGTHS = [0, 1, 31, 32, 63, 64, 65, 255, 256, 257, 65535, 65536, 70000];

describe('row versions encoded by hand are msgpackr\'s bytes', () => {
  it('numbers, bigints, booleans and nulls at every boundary of their forms', () => {
    for (const n of BOUNDARY_NUMBERS) assertSame([n]);
    for (const b of BOUNDARY_BIGINTS) assertSame([b]);
    assertSame([true, false, null, 0, null]);
    for (const schemaVersion of [0, 1, 127, 128, 300, 70000]) assertSame(['x'], schemaVersion, true);
  });

  it('strings of every header size, in ASCII, 2-, 3- and 4-byte characters and lone surrogates', () => {
    for (const length of LENGTHS) {
      for (const unit of ['a', '\u00e9', '\u20ac', '\u{1F600}', '\ud800', '\udc00x', 'a\ud83d']) {
        const s = unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
        assertSame([s]);
        assertSame(['pre', s, 1]);
      }
    }
    // UTF-16 lengths just under a header boundary whose UTF-8 lengths are past it.
    for (const units of [31, 255, 65535]) assertSame(['\u20ac'.repeat(units)]);
  });

  it('bytes of every header size, Buffers and plain Uint8Arrays', () => {
    for (const length of LENGTHS) {
      assertSame([Buffer.alloc(length, 7)]);
      assertSame([new Uint8Array(length).fill(9)]);
      // A view into a larger buffer.
      assertSame([Buffer.alloc(length + 10, 3).subarray(5, 5 + length)]);
    }
  });

  it('rows of every array header size', () => {
    for (const columns of [0, 1, 13, 14, 15, 16, 100, 65533, 65534, 65535]) {
      assertSame(Array.from({ length: columns }, (_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? `c${i}` : null)));
    }
  });

  it('random rows, many per chunk and rows larger than a chunk', () => {
    const next = random(20261203);
    const value = (): StoredValue => {
      const kind = Math.floor(next() * 7);
      const length = Math.floor(next() ** 3 * 300);
      switch (kind) {
        case 0: return null;
        case 1: return next() < 0.5;
        case 2: return BOUNDARY_NUMBERS[Math.floor(next() * BOUNDARY_NUMBERS.length)]! * (next() < 0.5 ? 1 : 3);
        case 3: return BigInt(Math.floor((next() - 0.5) * 2 ** 53)) * BigInt(1 + Math.floor(next() * 1000));
        case 4: return Array.from({ length }, () => String.fromCharCode(Math.floor(next() ** 4 * 0xffff))).join('');
        case 5: return Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
        default: return Math.floor((next() - 0.5) * 2 ** 40);
      }
    };
    for (let r = 0; r < 5_000; r++) assertSame(Array.from({ length: 1 + Math.floor(next() * 12) }, value), 1 + (r % 5), r % 7 === 0);
    assertSame(['y'.repeat(200_000), Buffer.alloc(100_000, 1), 'after']);
  });

  it('leaves values it does not cover to msgpackr, and index values decode to the row either way', () => {
    assert.equal(encodeVersion(0, 1, 0, [2n ** 63n]), null);
    assert.equal(encodeVersion(0, 1, 0, [-(2n ** 70n)]), null);
    for (const values of [[1, 'a', 2n ** 80n] as StoredValue[], [1, 'a', 5n, null, Buffer.from('b')] as StoredValue[]]) {
      const indexValue = encodeIndexValueOfRow(42n, 3, false, values);
      assert.ok(indexValue.subarray(INDEX_VALUE_HEAD).equals(encodeRow(3, false, values)));
      const row = decodeIndexValue(indexValue);
      assert.equal(row.seq, 42n);
      assert.equal(row.schemaVersion, 3);
      assert.deepEqual(row.values.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v)), values.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v)));
    }
  });

  it('a view stays valid after later versions fill its chunk', () => {
    const first = encodeVersion(8, 1, 0, ['keep me', 12345])!;
    const copy = Buffer.from(first);
    for (let i = 0; i < 2_000; i++) encodeVersion(8, 1, 0, ['z'.repeat(100), i]);
    assert.ok(first.equals(copy));
  });
});
