/**
 * JSON with exact 64-bit integers. Upstream's clients write `_seq` values (`options.from`,
 * `next_batch.last_seq_id`) and i64 params as JSON numbers, which JSON.parse would round to the
 * nearest double (7412345678901234567 reads as 7412345678901234000). `parseJson` reads every integer
 * outside ±(2^53 - 1) as a bigint instead; `stringifyJson` writes bigints back as plain digits.
 */
import { randomBytes } from 'node:crypto';

/**
 * A JSON string (skipped whole, so digits inside strings are never touched) or an integer of 16 or
 * more digits that is not part of a fraction or an exponent.
 */
const STRING_OR_LONG_INTEGER = /"[^"\\]*(?:\\.[^"\\]*)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g;

/** JSON.parse, except that integers beyond Number.MAX_SAFE_INTEGER in magnitude become bigints. */
export function parseJson(text: string): unknown {
  // Parsed first: invalid text is refused in linear time. The rewrite below scans only valid JSON,
  // where every string ends and every digit run is a number (an attack review froze the server for
  // 22 s with one 200 KB frame of unterminated strings, before any authentication).
  const mayHoldLongInteger = scanJsonText(text);
  const plain: unknown = JSON.parse(text);
  if (!mayHoldLongInteger) return plain;
  // Each long integer is rewritten as a string carrying a marker no string in this text can decode to.
  // The marker is drawn only when one is found: most texts with 16 digits have them inside strings
  // (e.g. an INSERT's SQL), and 8 random bytes cost more than the rest of the check.
  let marker: string | null = null;
  const rewritten = text.replace(STRING_OR_LONG_INTEGER, (token) => {
    if (token.startsWith('"') || Number.isSafeInteger(Number(token))) return token;
    marker ??= freshMarker(text);
    return `"\\u0000${marker}${token}"`;
  });
  if (marker === null) return plain;
  const tagged = `\u0000${marker}`;
  return JSON.parse(rewritten, (_key, value: unknown) => (typeof value === 'string' && value.startsWith(tagged) ? BigInt(value.slice(tagged.length)) : value));
}

/** Arrays and objects inside one another: more is refused before JSON.parse sees the text. */
export const JSON_DEPTH_MAX = 256;

/** Digits in a row from which an integer may be beyond Number.MAX_SAFE_INTEGER (2^53 - 1 has 16). */
const LONG_INTEGER_DIGITS = 16;

/**
 * Refuses text nested deeper than JSON_DEPTH_MAX, in one linear pass. JSON.parse takes seconds over a
 * megabyte of `[[[[...` (an attack review: 1.3-2.3 s a request, on the one thread every client
 * shares). Shorter texts cannot nest deep enough to cost anything and are not scanned.
 * Returns false when the text surely holds no long integer: no run of 16 digits outside strings (the
 * same pass; a regex over a 1,000-row INSERT's body, whose digits are all inside its SQL string, cost
 * 4% of the server's CPU in workload 2).
 */
function scanJsonText(text: string): boolean {
  if (text.length <= 4 * JSON_DEPTH_MAX) return /\d{16}/.test(text);
  let depth = 0;
  let inString = false;
  let digits = 0;
  let longInteger = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c >= 0x30 && c <= 0x39) {
      if (++digits >= LONG_INTEGER_DIGITS) longInteger = true;
      continue;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > JSON_DEPTH_MAX) throw new SyntaxError(`JSON nested deeper than ${JSON_DEPTH_MAX} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
    digits = 0;
  }
  return longInteger;
}

function freshMarker(text: string): string {
  let marker: string;
  do marker = `bigint:${randomBytes(8).toString('hex')}:`; while (text.includes(marker));
  return marker;
}

/** JSON.stringify, except that bigints are written as JSON numbers with all their digits. */
export function stringifyJson(value: unknown): string {
  let marker: string | null = null;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    marker ??= `\u0000bigint:${randomBytes(8).toString('hex')}:`;
    return `${marker}${v}`;
  });
  if (marker === null) return text;
  // JSON.stringify escapes the NUL as \u0000, so the marker appears in the text in that form.
  const escaped = JSON.stringify(marker).slice(1, -1);
  return text.split(`"${escaped}`).map((part, i) => (i === 0 ? part : part.replace(/^(-?\d+)"/, '$1'))).join('');
}

/** The value with every bigint (at any depth) replaced by its decimal text, e.g. to show or store it as JSON. */
export function bigintsToText(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(bigintsToText);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bigintsToText(v)]));
  return value;
}
