/**
 * A small SQL lexer: enough to split a request into statements (semicolons inside strings,
 * quoted identifiers and comments do not split) and to read the dialect's own statements.
 * Full SQL (SELECT/INSERT/UPDATE/DELETE/CREATE TABLE) is parsed by PostgreSQL's parser.
 */
import { LimitError, invalidSql } from '../util/errors.js';

export type TokenKind = 'word' | 'string' | 'number' | 'qident' | 'param' | 'punct';

export interface Token {
  readonly kind: TokenKind;
  /** Words upper-cased; strings and quoted identifiers unescaped; punctuation as written. */
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

export interface StatementText {
  readonly text: string;
  readonly tokens: readonly Token[];
}

/** [A-Za-z_] by char code. */
function isWordStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

/** [A-Za-z0-9_$] by char code: the lexer's inner loop runs once per character of a large INSERT. */
function isWordPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 36;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** [0-9.eE] by char code. */
function isNumberPart(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69;
}

/** Two-character operators, as `first * 65536 + second`: <= >= <> != :: || */
const TWO_CHAR_PUNCT = new Set(['<=', '>=', '<>', '!=', '::', '||'].map((p) => p.charCodeAt(0) * 65536 + p.charCodeAt(1)));

// Char codes the loop below compares against.
const SPACE = 32, TAB = 9, LF = 10, CR = 13, FF = 12, MINUS = 45, SLASH = 47, STAR = 42, QUOTE = 39;
const DOUBLE_QUOTE = 34, UPPER_E = 69, LOWER_E = 101, DOT = 46, DOLLAR = 36, PLUS = 43, SEMICOLON = 59;

/**
 * Tokens of a whole request. It runs on the thread every request shares, at ~0.4 µs a token (most of
 * it the token objects), and what follows (PostgreSQL's parser, the binder) costs ~2 µs a token: a
 * statement of more than `statementTokensMax` tokens is refused as soon as the lexer gets there (a 1 MB
 * IN list of 499,000 items held the thread for 2 s). Literal multi-row INSERTs never come here
 * (insert-scan.ts reads them).
 */
export function tokenize(sql: string, statementTokensMax = Infinity): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  let statementStart = 0;
  const tooLong = (): LimitError => new LimitError('INVALID_SQL', 'sql_tokens_max',
    `Statement is too long: more than ${statementTokensMax} tokens (sql_tokens_max); send long lists in several statements or load them into a table`);
  while (i < n) {
    if (tokens.length - statementStart > statementTokensMax) throw tooLong();
    const c = sql.charCodeAt(i);
    if (c === SPACE || c === TAB || c === LF || c === CR || c === FF) { i++; continue; }
    if (c === MINUS && sql.charCodeAt(i + 1) === MINUS) { while (i < n && sql.charCodeAt(i) !== LF) i++; continue; }
    if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      const close = sql.indexOf('*/', i + 2);
      if (close === -1) throw invalidSql(`Unterminated comment starting at position ${i + 1}`);
      i = close + 2;
      continue;
    }
    const start = i;
    if (c === QUOTE || ((c === UPPER_E || c === LOWER_E) && sql.charCodeAt(i + 1) === QUOTE)) {
      if (c !== QUOTE) i++;
      const [value, end] = readQuoted(sql, i, "'");
      tokens.push({ kind: 'string', value, start, end });
      i = end;
    } else if (c === DOUBLE_QUOTE) {
      const [value, end] = readQuoted(sql, i, '"');
      tokens.push({ kind: 'qident', value, start, end });
      i = end;
    } else if (isWordStart(c)) {
      while (i < n && isWordPart(sql.charCodeAt(i))) i++;
      tokens.push({ kind: 'word', value: sql.slice(start, i).toUpperCase(), start, end: i });
    } else if (isDigit(c) || (c === DOT && isDigit(sql.charCodeAt(i + 1)))) {
      while (i < n && isNumberPart(sql.charCodeAt(i))) {
        const d = sql.charCodeAt(i);
        if ((d === LOWER_E || d === UPPER_E) && (sql.charCodeAt(i + 1) === MINUS || sql.charCodeAt(i + 1) === PLUS)) i++;
        i++;
      }
      tokens.push({ kind: 'number', value: sql.slice(start, i), start, end: i });
    } else if (c === DOLLAR && isDigit(sql.charCodeAt(i + 1))) {
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      tokens.push({ kind: 'param', value: sql.slice(start + 1, i), start, end: i });
    } else if (c === DOLLAR && (sql.charCodeAt(i + 1) === DOLLAR || isWordStart(sql.charCodeAt(i + 1)))) {
      // Dollar-quoted string: $tag$ ... $tag$
      const tagEnd = sql.indexOf('$', i + 1);
      const tag = tagEnd === -1 ? '' : sql.slice(i, tagEnd + 1);
      const close = tag === '' ? -1 : sql.indexOf(tag, tagEnd + 1);
      if (close === -1) throw invalidSql(`Unterminated dollar-quoted string at position ${i + 1}`);
      tokens.push({ kind: 'string', value: sql.slice(tagEnd + 1, close), start, end: close + tag.length });
      i = close + tag.length;
    } else {
      const len = i + 1 < n && TWO_CHAR_PUNCT.has(c * 65536 + sql.charCodeAt(i + 1)) ? 2 : 1;
      tokens.push({ kind: 'punct', value: len === 1 ? sql[i]! : sql.slice(i, i + 2), start, end: i + len });
      // A statement boundary for the count (a ';' in a string or comment is part of that token).
      if (c === SEMICOLON) statementStart = tokens.length;
      i += len;
    }
  }
  // The last statement's last token (checked above only when another one follows).
  if (tokens.length - statementStart > statementTokensMax) throw tooLong();
  return tokens;
}

function readQuoted(sql: string, openAt: number, quote: string): [string, number] {
  let out = '';
  let i = openAt + 1;
  for (;;) {
    const next = sql.indexOf(quote, i);
    if (next === -1) {
      const what = quote === "'" ? 'string literal' : 'quoted identifier';
      throw invalidSql(`Unterminated ${what} starting at position ${openAt + 1}`);
    }
    out += sql.slice(i, next);
    if (sql[next + 1] === quote) { out += quote; i = next + 2; continue; }
    return [out, next + 1];
  }
}

/** Splits SQL text into statements at top-level semicolons; empty statements are dropped. */
export function splitStatements(sql: string, statementTokensMax = Infinity): StatementText[] {
  const tokens = tokenize(sql, statementTokensMax);
  const out: StatementText[] = [];
  let first = 0;
  for (let i = 0; i <= tokens.length; i++) {
    if (i < tokens.length && !(tokens[i]!.kind === 'punct' && tokens[i]!.value === ';')) continue;
    if (i > first) {
      const stmtTokens = tokens.slice(first, i);
      const text = sql.slice(stmtTokens[0]!.start, stmtTokens[stmtTokens.length - 1]!.end);
      const base = stmtTokens[0]!.start;
      // Offsets are relative to the statement's text; a statement at the start of the request (the
      // common single statement) keeps its tokens, saving a copy of each (10k for a 1,000-row INSERT).
      out.push({ text, tokens: base === 0 ? stmtTokens : stmtTokens.map((t) => ({ ...t, start: t.start - base, end: t.end - base })) });
    }
    first = i + 1;
  }
  return out;
}

/**
 * The deepest parenthesis/bracket nesting in a token list. Counted on tokens so a deeply nested
 * statement is refused before PostgreSQL's parser and the recursive stages after it see it.
 */
export function nestingDepth(tokens: readonly Token[]): number {
  let depth = 0;
  let max = 0;
  for (const t of tokens) {
    if (t.kind !== 'punct') continue;
    if (t.value === '(' || t.value === '[') {
      depth++;
      if (depth > max) max = depth;
    } else if (t.value === ')' || t.value === ']') {
      depth--;
    }
  }
  return max;
}
