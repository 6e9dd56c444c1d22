/**
 * A small SQL lexer: enough to split a request into statements (semicolons inside strings,
 * quoted identifiers and comments do not split) and to read the dialect's own statements.
 * Full SQL (SELECT/INSERT/UPDATE/DELETE/CREATE TABLE) is parsed by PostgreSQL's parser.
 */
import { invalidSql } from '../util/errors.js';

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

const WORD_START = /[A-Za-z_]/;
const DIGIT = /[0-9]/;

/** [A-Za-z0-9_$] by char code: the lexer's inner loop runs once per character of a large INSERT. */
function isWordPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 36;
}

/** [0-9.eE] by char code. */
function isNumberPart(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69;
}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f') { i++; continue; }
    if (ch === '-' && sql[i + 1] === '-') { while (i < sql.length && sql[i] !== '\n') i++; continue; }
    if (ch === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      if (close === -1) throw invalidSql(`Unterminated comment starting at position ${i + 1}`);
      i = close + 2;
      continue;
    }
    const start = i;
    if (ch === "'" || ((ch === 'E' || ch === 'e') && sql[i + 1] === "'")) {
      if (ch !== "'") i++;
      const [value, end] = readQuoted(sql, i, "'");
      tokens.push({ kind: 'string', value, start, end });
      i = end;
    } else if (ch === '"') {
      const [value, end] = readQuoted(sql, i, '"');
      tokens.push({ kind: 'qident', value, start, end });
      i = end;
    } else if (WORD_START.test(ch)) {
      while (i < sql.length && isWordPart(sql.charCodeAt(i))) i++;
      tokens.push({ kind: 'word', value: sql.slice(start, i).toUpperCase(), start, end: i });
    } else if (DIGIT.test(ch) || (ch === '.' && DIGIT.test(sql[i + 1] ?? ''))) {
      while (i < sql.length && isNumberPart(sql.charCodeAt(i))) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '-' || sql[i + 1] === '+')) i++;
        i++;
      }
      tokens.push({ kind: 'number', value: sql.slice(start, i), start, end: i });
    } else if (ch === '$' && DIGIT.test(sql[i + 1] ?? '')) {
      i++;
      while (i < sql.length && DIGIT.test(sql[i]!)) i++;
      tokens.push({ kind: 'param', value: sql.slice(start + 1, i), start, end: i });
    } else if (ch === '$' && (sql[i + 1] === '$' || WORD_START.test(sql[i + 1] ?? ''))) {
      // Dollar-quoted string: $tag$ ... $tag$
      const tagEnd = sql.indexOf('$', i + 1);
      const tag = tagEnd === -1 ? '' : sql.slice(i, tagEnd + 1);
      const close = tag === '' ? -1 : sql.indexOf(tag, tagEnd + 1);
      if (close === -1) throw invalidSql(`Unterminated dollar-quoted string at position ${i + 1}`);
      tokens.push({ kind: 'string', value: sql.slice(tagEnd + 1, close), start, end: close + tag.length });
      i = close + tag.length;
    } else {
      const two = sql.slice(i, i + 2);
      const len = ['<=', '>=', '<>', '!=', '::', '||'].includes(two) ? 2 : 1;
      tokens.push({ kind: 'punct', value: sql.slice(i, i + len), start, end: i + len });
      i += len;
    }
  }
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
export function splitStatements(sql: string): StatementText[] {
  const tokens = tokenize(sql);
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
