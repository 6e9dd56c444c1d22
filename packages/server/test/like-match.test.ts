/**
 * LIKE in subscription and topic filters is evaluated in JavaScript on the thread that commits every
 * write, so it must never backtrack exponentially (a '%a%a%a%a%a%a%a%b' pattern against a row of 60
 * a's froze the server for 28 s when it compiled to a regular expression). Checked against a
 * reference on every short pattern and value over a small alphabet, then on the attack itself.
 * (live.test.ts compares whole filters, LIKE included, with DuckDB's answers over HTTP.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LIKE_PATTERN_CHARS_MAX, LIKE_STEPS_MAX, compileLike, likeMatch } from '../src/live/predicate.js';

/** The plain recursive definition: fine for the short strings it is used on here. */
function reference(pattern: string[], value: string[]): boolean {
  if (pattern.length === 0) return value.length === 0;
  const [head, ...rest] = pattern;
  if (head === '%') return Array.from({ length: value.length + 1 }, (_, i) => i).some((i) => reference(rest, value.slice(i)));
  if (value.length === 0) return false;
  return (head === '_' || head === value[0]) && reference(rest, value.slice(1));
}

function* strings(alphabet: string[], maxLength: number): Generator<string> {
  yield '';
  let level = [''];
  for (let n = 1; n <= maxLength; n++) {
    const next: string[] = [];
    for (const s of level) for (const a of alphabet) next.push(s + a);
    yield* next;
    level = next;
  }
}

describe('likeMatch', () => {
  it('agrees with the definition of LIKE on every short pattern and value', () => {
    const values = [...strings(['a', 'b'], 5), '😀', 'a😀b', '😀😀', 'x\ny'];
    let checked = 0;
    for (const pattern of strings(['a', 'b', '%', '_'], 5)) {
      for (const value of values) {
        assert.equal(likeMatch(pattern, value), reference([...pattern], [...value]), `'${value}' LIKE '${pattern}'`);
        checked++;
      }
    }
    assert.ok(checked > 50_000);
  });

  it('takes a whole surrogate pair for _', () => {
    assert.equal(likeMatch('_', '😀'), true);
    assert.equal(likeMatch('__', '😀'), false);
    assert.equal(likeMatch('%_b', '😀b'), true);
    assert.equal(likeMatch('%__', 'x😀'), true);
  });

  it('matches the attack pattern in time linear in the pattern times the value', () => {
    const pattern = `${'%a'.repeat(20)}%b`;
    const started = performance.now();
    assert.equal(likeMatch(pattern, 'a'.repeat(20_000)), false);
    assert.equal(likeMatch(pattern, `${'a'.repeat(20_000)}b`), true);
    // 20,000 × 41 steps: milliseconds; the regex it replaces did not finish 7 '%a' on 60 characters in 29 s.
    assert.ok(performance.now() - started < 2_000, `${performance.now() - started} ms`);
  });

  it('compiled matchers (linear search for % patterns, budgeted for _) agree with the definition', () => {
    const values = [...strings(['a', 'b'], 6), '😀', 'a😀b', '😀😀', 'x\ny', 'abab', 'aabaab'];
    let checked = 0;
    for (const pattern of strings(['a', 'b', '%', '_'], 5)) {
      const matches = compileLike(pattern);
      for (const value of values) {
        assert.equal(matches(value), reference([...pattern], [...value]), `'${value}' LIKE '${pattern}' (compiled)`);
        checked++;
      }
    }
    assert.ok(checked > 100_000);
    assert.equal(compileLike('%😀%')('a😀b'), true);
  });

  it('bounds the work of one value: linear for % patterns, a step budget for _ patterns, a pattern length cap', () => {
    // The attack review's case: a long pattern against a 500,000-character row held the commit thread 9 s.
    const value = 'a'.repeat(500_000);
    const long = `%${'a'.repeat(LIKE_PATTERN_CHARS_MAX - 2)}b`;
    const started = performance.now();
    assert.equal(compileLike(long)(value), false);
    assert.equal(compileLike(`%${'a'.repeat(100)}%${'a'.repeat(100)}%b`)(value), false);
    assert.ok(performance.now() - started < 500, `${performance.now() - started} ms`);
    const underscores = `%${'a'.repeat(100)}_b`;
    assert.throws(() => compileLike(underscores)(value), new RegExp(`more than ${LIKE_STEPS_MAX} steps`));
    assert.equal(compileLike(underscores)(`${'a'.repeat(200)}xb`), true, 'a short value is matched as before');
    assert.throws(() => compileLike(`%${'a'.repeat(LIKE_PATTERN_CHARS_MAX)}`), /at most 256 characters/);
  });
});
