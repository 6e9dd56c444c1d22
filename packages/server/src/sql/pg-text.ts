/**
 * Prepares a statement's text for PostgreSQL's parser, token by token (strings and comments are
 * never touched): the dialect's `CURRENT_USER()`, `default.<table>` (a reserved word there), and
 * identifiers of exactly 64 characters, which PostgreSQL would silently cut to 63. Those are swapped
 * for short placeholders and put back in the parse tree afterwards; longer ones are refused.
 */
import { invalidSql } from '../util/errors.js';
import type { StatementText, Token } from './lexer.js';
import { IDENTIFIER_LENGTH_MAX } from './names.js';
import type { PgNode } from './statement.js';

/** Extra per-token rewrite (CREATE TABLE's type spellings); returns replacement text or undefined. */
export type TokenRule = (tokens: readonly Token[], i: number) => { text: string; through: number } | undefined;

export interface PreparedText {
  readonly text: string;
  /** Placeholder → the identifier as PostgreSQL would have stored it. */
  readonly placeholders: ReadonlyMap<string, string>;
}

const PG_IDENTIFIER_MAX = 63;

export function preparePgText(stmt: StatementText, extra?: TokenRule): PreparedText {
  const t = stmt.tokens;
  const parts: string[] = [];
  const placeholders = new Map<string, string>();
  let cursor = 0;
  const replace = (from: number, to: number, text: string): void => {
    parts.push(stmt.text.slice(cursor, from), text);
    cursor = to;
  };
  for (let i = 0; i < t.length; i++) {
    const tok = t[i]!;
    const custom = extra?.(t, i);
    if (custom !== undefined) {
      replace(tok.start, t[custom.through]!.end, custom.text);
      i = custom.through;
      continue;
    }
    if (tok.kind !== 'word' && tok.kind !== 'qident') continue;
    const raw = tok.kind === 'word' ? stmt.text.slice(tok.start, tok.end) : tok.value;
    if (raw.length > IDENTIFIER_LENGTH_MAX) {
      throw invalidSql(`An identifier is longer than ${IDENTIFIER_LENGTH_MAX} characters (it starts '${raw.slice(0, 12)}')`);
    }
    if (raw.length > PG_IDENTIFIER_MAX) {
      const placeholder = `kalam_long_identifier_${placeholders.size}`;
      placeholders.set(placeholder, tok.kind === 'word' ? raw.toLowerCase() : raw);
      replace(tok.start, tok.end, placeholder);
    } else if (tok.kind === 'word' && tok.value === 'DEFAULT' && t[i + 1]?.value === '.') {
      replace(tok.start, tok.end, '"default"');
    } else if (tok.kind === 'word' && tok.value === 'CURRENT_USER' && t[i + 1]?.value === '(' && t[i + 2]?.value === ')') {
      replace(tok.start, t[i + 2]!.end, 'CURRENT_USER');
      i += 2;
    }
  }
  parts.push(stmt.text.slice(cursor));
  return { text: parts.join(''), placeholders };
}

/** Puts the long identifiers back into a parse tree (in place; the tree is fresh from the parser). */
export function restoreIdentifiers(node: PgNode, placeholders: ReadonlyMap<string, string>): PgNode {
  if (placeholders.size === 0) return node;
  const visit = (n: PgNode): void => {
    if (Array.isArray(n)) { for (const x of n) visit(x); return; }
    if (n === null || typeof n !== 'object') return;
    for (const key in n) {
      const v = n[key];
      if (typeof v === 'string' && placeholders.has(v)) n[key] = placeholders.get(v);
      else visit(v);
    }
  };
  visit(node);
  return node;
}
