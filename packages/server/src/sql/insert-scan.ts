/**
 * A scanner for the bulk write, `INSERT INTO ns.t [(cols)] VALUES (...), ... [;]` whose values are
 * all literals (strings, numbers, NULL, TRUE, FALSE), straight from the SQL text to the row values.
 * The token-level parser (insert-fast.ts) builds ten token objects and a parse-tree node of three or
 * four objects per value of a 1,000-row statement, then evaluates each node; this reads each value
 * once and keeps only the value. It accepts a subset of what the lexer and insert-fast.ts accept and
 * gives exactly the values they would (A_Const evaluated as `constantValue` does); anything else
 * (params, DEFAULT, casts, comments, E'' strings, quoted names, a second statement) returns null and
 * takes the token path, so errors and edge cases have one implementation.
 */
import type { InsertStmt, RangeVar } from '@pgsql/types';
import type { PgNode } from './statement.js';
import type { InputValue } from './values.js';
import { IDENTIFIER_LENGTH_MAX } from './names.js';

const INT32_MAX = 2147483647;

export interface ScannedInsert {
  readonly ast: InsertStmt;
  /** The VALUES rows, each value as the executor's evaluation of its A_Const gives it. */
  readonly rows: InputValue[][];
}

const enum Ch {
  Tab = 9, Newline = 10, FormFeed = 12, Return = 13, Space = 32, Quote = 39, LParen = 40, RParen = 41,
  Comma = 44, Minus = 45, Dot = 46, Slash = 47, Zero = 48, Nine = 57, Colon = 58, Semicolon = 59,
  Upper_E = 69, Under = 95, Lower_e = 101,
}

function isSpace(c: number): boolean {
  return c === Ch.Space || c === Ch.Tab || c === Ch.Newline || c === Ch.Return || c === Ch.FormFeed;
}

function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

function isWordStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === Ch.Under;
}

/** [A-Za-z0-9_$], as the lexer's words. */
function isWordPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === Ch.Under || c === 36;
}

/** [0-9.eE], as the lexer's numbers. */
function isNumberPart(c: number): boolean {
  return (c >= 48 && c <= 57) || c === Ch.Dot || c === Ch.Lower_e || c === Ch.Upper_E;
}

class Scanner {
  i = 0;
  constructor(readonly sql: string) {}

  /** Skips whitespace; false at a comment (not handled here). */
  space(): boolean {
    const s = this.sql;
    for (;;) {
      const c = s.charCodeAt(this.i);
      if (isSpace(c)) { this.i++; continue; }
      if ((c === Ch.Minus && s.charCodeAt(this.i + 1) === Ch.Minus) || (c === Ch.Slash && s.charCodeAt(this.i + 1) === 42)) return false;
      return true;
    }
  }

  /** The next word, as the lexer reads it (not upper-cased), or null. */
  word(): string | null {
    if (!this.space()) return null;
    const s = this.sql;
    const start = this.i;
    if (!isWordStart(s.charCodeAt(start))) return null;
    let i = start + 1;
    while (i < s.length && isWordPart(s.charCodeAt(i))) i++;
    this.i = i;
    return s.slice(start, i);
  }

  keyword(upper: string): boolean {
    const at = this.i;
    const w = this.word();
    if (w !== null && w.length === upper.length && w.toUpperCase() === upper) return true;
    this.i = at;
    return false;
  }

  /** An unquoted name, lower-cased as insert-fast.ts does, or null. */
  name(): string | null {
    const w = this.word();
    return w === null || w.length > IDENTIFIER_LENGTH_MAX ? null : w.toLowerCase();
  }

  /** Skips whitespace and one punctuation character `c` (not the start of a two-character one). */
  punct(c: number): boolean {
    if (!this.space() || this.sql.charCodeAt(this.i) !== c) return false;
    // '::' is one token (a cast), never two colons; the other characters here have no pairs.
    this.i++;
    return true;
  }

  /** A literal value, or undefined when the value is anything else. */
  value(): InputValue | undefined {
    if (!this.space()) return undefined;
    const s = this.sql;
    const c = s.charCodeAt(this.i);
    if (c === Ch.Quote) return this.string();
    if (isDigit(c) || (c === Ch.Dot && isDigit(s.charCodeAt(this.i + 1)))) return numberValue(this.number(), false);
    if (c === Ch.Minus) {
      this.i++;
      if (!this.space()) return undefined;
      const d = s.charCodeAt(this.i);
      if (!(isDigit(d) || (d === Ch.Dot && isDigit(s.charCodeAt(this.i + 1))))) return undefined;
      return numberValue(this.number(), true);
    }
    if (isWordStart(c)) {
      // E'...' is a string to the lexer; any word followed by a quote is left to it.
      const w = this.word()!.toUpperCase();
      if (s.charCodeAt(this.i) === Ch.Quote) return undefined;
      if (w === 'NULL') return null;
      if (w === 'TRUE') return true;
      if (w === 'FALSE') return false;
    }
    return undefined;
  }

  /** A '...' string ('' is a quote), not followed by a cast; undefined otherwise. */
  private string(): string | undefined {
    const s = this.sql;
    let out = '';
    let i = this.i + 1;
    for (;;) {
      const next = s.indexOf("'", i);
      if (next === -1) return undefined;
      out += s.slice(i, next);
      if (s.charCodeAt(next + 1) === Ch.Quote) { out += "'"; i = next + 2; continue; }
      this.i = next + 1;
      break;
    }
    // insert-fast.ts leaves 'text'::type to the full parser.
    if (!this.space()) return undefined;
    if (s.charCodeAt(this.i) === Ch.Colon && s.charCodeAt(this.i + 1) === Ch.Colon) return undefined;
    return out;
  }

  /** The number token's text, as the lexer reads it. */
  private number(): string {
    const s = this.sql;
    const start = this.i;
    let i = start;
    while (i < s.length && isNumberPart(s.charCodeAt(i))) {
      const c = s.charCodeAt(i);
      if ((c === Ch.Lower_e || c === Ch.Upper_E) && (s.charCodeAt(i + 1) === Ch.Minus || s.charCodeAt(i + 1) === 43)) i++;
      i++;
    }
    this.i = i;
    return s.slice(start, i);
  }
}

/**
 * The value insert-fast.ts's numberConst node evaluates to: int32 integers as `ival`, everything
 * else as `fval` text, which `constantValue` turns into a number (safe integers, exponents) or keeps
 * as text (larger integers, decimals) for the column's coercion.
 */
function numberValue(text: string, negative: boolean): InputValue {
  if (allDigits(text)) {
    const n = negative ? -Number(text) : Number(text);
    if (Math.abs(n) <= INT32_MAX) return n;
    const signed = negative ? `-${text}` : text;
    return Number.isSafeInteger(Number(signed)) ? Number(signed) : signed;
  }
  const signed = negative ? `-${text}` : text;
  if (/^[+-]?\d+$/.test(signed)) return Number.isSafeInteger(Number(signed)) ? Number(signed) : signed;
  return /[eE]/.test(signed) ? Number(signed) : signed;
}

function allDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c < Ch.Zero || c > Ch.Nine) return false;
  }
  return true;
}

/** The statement's table, columns and literal rows, or null when it is not such an INSERT. */
export function scanLiteralInsert(sql: string): ScannedInsert | null {
  const s = new Scanner(sql);
  if (!s.keyword('INSERT') || !s.keyword('INTO')) return null;
  const first = s.name();
  if (first === null) return null;
  const relation: RangeVar = { relname: first, inh: true, relpersistence: 'p' };
  if (s.punct(Ch.Dot)) {
    const second = s.name();
    if (second === null) return null;
    relation.schemaname = first;
    relation.relname = second;
  }
  let cols: PgNode[] | undefined;
  if (s.punct(Ch.LParen)) {
    cols = [];
    do {
      const col = s.name();
      if (col === null) return null;
      cols.push({ ResTarget: { name: col } });
    } while (s.punct(Ch.Comma));
    if (!s.punct(Ch.RParen)) return null;
  }
  if (!s.keyword('VALUES')) return null;
  const rows: InputValue[][] = [];
  let width = 0;
  do {
    if (!s.punct(Ch.LParen)) return null;
    const row: InputValue[] = new Array(width);
    let n = 0;
    do {
      const v = s.value();
      if (v === undefined) return null;
      if (n < width) row[n] = v;
      else row.push(v);
      n++;
    } while (s.punct(Ch.Comma));
    if (!s.punct(Ch.RParen)) return null;
    if (n < width) row.length = n;
    if (rows.length === 0) width = n;
    rows.push(row);
  } while (s.punct(Ch.Comma));
  // One statement: an optional semicolon, then only whitespace.
  s.punct(Ch.Semicolon);
  if (!s.space() || s.i < sql.length) return null;
  const ast: InsertStmt = {
    relation, ...(cols ? { cols } : {}),
    selectStmt: { SelectStmt: { valuesLists: [], limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } },
  };
  return { ast, rows };
}
