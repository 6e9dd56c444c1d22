/**
 * util/json.ts: exact 64-bit integers in and out, and text a client controls that must not cost
 * more than its length (an attack review froze the server for 22 s with one 200 KB WebSocket frame
 * of unterminated strings, before authentication).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JSON_DEPTH_MAX, parseJson, stringifyJson } from '../src/util/json.js';

describe('JSON with exact 64-bit integers', () => {
  it('reads integers past 2^53 as bigints, everything else as JSON.parse does', () => {
    assert.deepEqual(parseJson('{"from": 7412345678901234567, "n": 12, "f": 1.5, "s": "7412345678901234567"}'),
      { from: 7412345678901234567n, n: 12, f: 1.5, s: '7412345678901234567' });
    assert.deepEqual(parseJson('[-9223372036854775808, 9007199254740991, 1e300, 12345678901234567.5]'),
      [-9223372036854775808n, 9007199254740991, 1e300, 12345678901234567.5]);
    assert.equal(stringifyJson({ a: 7412345678901234567n }), '{"a":7412345678901234567}');
  });

  it('finds long integers in long texts too, and leaves 16-digit runs inside strings alone', () => {
    // Texts past 1,024 characters are scanned by hand for 16-digit runs outside strings, not by a regex.
    const sql = `INSERT INTO t VALUES ${Array.from({ length: 200 }, (_, i) => `(${7412345678901234000 + i}, 'a\\"b')`).join(',')}`;
    const params = [7412345678901234567n, -9223372036854775808n, 9007199254740991, 1.5, 12345678901234567.5, 1e300];
    const text = `{"sql": ${JSON.stringify(sql)}, "params": [7412345678901234567, -9223372036854775808, 9007199254740991, 1.5, 12345678901234567.5, 1e300]}`;
    assert.ok(text.length > 4_096);
    assert.deepEqual(parseJson(text), { sql, params });
    const plain = { sql, params: [1, 'x'.repeat(2_000)] };
    assert.deepEqual(parseJson(JSON.stringify(plain)), plain);
    // The last token of the text.
    assert.deepEqual(parseJson(`${' '.repeat(2_000)}[1, 7412345678901234567]`), [1, 7412345678901234567n]);
  });

  it('refuses invalid text in time linear in its length, whatever it holds', () => {
    for (const text of [
      // The review's frame: 16 digits, then escaped quotes, each opening a string that never ends.
      '1234567890123456' + '\\"'.repeat(100_000),
      '"'.repeat(400_000),
      `{"a": "${'1234567890123456'.repeat(25_000)}`,
      '1'.repeat(400_000) + 'x',
      `[${'"\\\\'.repeat(100_000)}`,
      `{"a":1, ${'"b":"7412345678901234567' .repeat(20_000)}`,
    ]) {
      const started = performance.now();
      assert.throws(() => parseJson(text), SyntaxError);
      const ms = performance.now() - started;
      assert.ok(ms < 500, `${text.length} characters took ${ms.toFixed(0)} ms to refuse`);
    }
  });

  it('refuses nesting deeper than JSON_DEPTH_MAX at once; brackets inside strings and the depth limit itself are fine', () => {
    // An attack review: 900,000 levels in a 1.8 MB body took JSON.parse 1.3-2.3 s on the shared thread.
    for (const text of [`{"sql":"SELECT 1","params":[${'['.repeat(900_000)}${']'.repeat(900_000)}]}`, '{"a":'.repeat(300_000) + '1' + '}'.repeat(300_000)]) {
      const started = performance.now();
      assert.throws(() => parseJson(text), /JSON nested deeper than 256 levels/);
      assert.ok(performance.now() - started < 200, `${text.length} characters`);
    }
    const deepest = `${'['.repeat(JSON_DEPTH_MAX)}${']'.repeat(JSON_DEPTH_MAX)}`;
    assert.deepEqual(parseJson(deepest + ' '.repeat(2_000)), JSON.parse(deepest));
    const brackets = { s: `${'['.repeat(5_000)}\\"{{{`, t: 'x' };
    assert.deepEqual(parseJson(JSON.stringify(brackets)), brackets);
  });

  it('valid text with long digit runs is read in linear time too', () => {
    const text = `{"n": ${'9'.repeat(300_000)}, "s": "${'8'.repeat(300_000)}"}`;
    const started = performance.now();
    const value = parseJson(text) as { n: bigint; s: string };
    const ms = performance.now() - started;
    assert.equal(value.s.length, 300_000);
    assert.equal(typeof value.n, 'bigint');
    assert.ok(ms < 1_000, `took ${ms.toFixed(0)} ms`);
  });
});
