/**
 * A token-level parser for the most common write, `INSERT INTO ns.t [(cols)] VALUES (...), ...`
 * whose values are literals, params, NULL or DEFAULT. It builds the same tree shape PostgreSQL's
 * parser would (A_Const, ParamRef, SetToDefault) so the executor has one code path, but skips the
 * WASM parser, which dominates the cost of large multi-row inserts. Anything else returns null and
 * goes to libpg-query.
 */
import type { InsertStmt, RangeVar } from '@pgsql/types';
import type { StatementText, Token } from './lexer.js';
import type { PgNode, Statement } from './statement.js';
import { IDENTIFIER_LENGTH_MAX } from './names.js';

const INT32_MAX = 2147483647;

export function parseSimpleInsert(stmt: StatementText): Statement | null {
  const t = stmt.tokens;
  let i = 0;
  const word = (w: string): boolean => t[i]?.kind === 'word' && t[i]!.value === w && (i++, true);
  const punct = (p: string): boolean => t[i]?.kind === 'punct' && t[i]!.value === p && (i++, true);
  const name = (): string | null => {
    const tok = t[i];
    // Over-long names take the full parser's path, which refuses them with a clear error.
    if (tok?.kind === 'word' && tok.end - tok.start <= IDENTIFIER_LENGTH_MAX) { i++; return stmt.text.slice(tok.start, tok.end).toLowerCase(); }
    if (tok?.kind === 'qident' && tok.value.length <= IDENTIFIER_LENGTH_MAX) { i++; return tok.value; }
    return null;
  };
  if (!word('INSERT') || !word('INTO')) return null;
  const first = name();
  if (first === null) return null;
  const relation: RangeVar = { relname: first, inh: true, relpersistence: 'p' };
  if (punct('.')) {
    const second = name();
    if (second === null) return null;
    relation.schemaname = first;
    relation.relname = second;
  }
  let cols: PgNode[] | undefined;
  if (punct('(')) {
    cols = [];
    do {
      const col = name();
      if (col === null) return null;
      cols.push({ ResTarget: { name: col } });
    } while (punct(','));
    if (!punct(')')) return null;
  }
  if (!word('VALUES')) return null;
  const valuesLists: PgNode[] = [];
  let paramCount = 0;
  do {
    if (!punct('(')) return null;
    const items: PgNode[] = [];
    do {
      const node = value(t, i);
      if (node === null) return null;
      // A negative number is two tokens ('-' and the digits); every other value one.
      i += t[i]!.kind === 'punct' ? 2 : 1;
      if (node.ParamRef) paramCount = Math.max(paramCount, node.ParamRef.number);
      items.push(node);
    } while (punct(','));
    if (!punct(')')) return null;
    valuesLists.push({ List: { items } });
  } while (punct(','));
  if (i !== t.length) return null;
  const ast: InsertStmt = { relation, ...(cols ? { cols } : {}), selectStmt: { SelectStmt: { valuesLists, limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } } };
  return { kind: 'insert', ast, paramCount };
}

/** The value at token `i` (a negative number spans two tokens, '-' then the digits), or null. */
function value(t: readonly Token[], i: number): PgNode | null {
  const tok = t[i];
  if (tok === undefined) return null;
  if (tok.kind === 'string' && !(t[i + 1]?.kind === 'punct' && t[i + 1]!.value === '::')) return { A_Const: { sval: { sval: tok.value } } };
  if (tok.kind === 'param') return { ParamRef: { number: Number(tok.value) } };
  if (tok.kind === 'number') return numberConst(tok.value, false);
  if (tok.kind === 'punct' && tok.value === '-' && t[i + 1]?.kind === 'number') return numberConst(t[i + 1]!.value, true);
  if (tok.kind === 'word') {
    if (tok.value === 'NULL') return { A_Const: { isnull: true } };
    if (tok.value === 'TRUE' || tok.value === 'FALSE') return { A_Const: { boolval: { boolval: tok.value === 'TRUE' } } };
    if (tok.value === 'DEFAULT') return { SetToDefault: {} };
  }
  return null;
}

/** Integers that fit int32 are `ival` and everything else `fval` text, exactly as PostgreSQL's parser does. */
function numberConst(text: string, negative: boolean): PgNode {
  if (allDigits(text)) {
    const n = negative ? -Number(text) : Number(text);
    if (Math.abs(n) <= INT32_MAX) return { A_Const: { ival: { ival: n } } };
  }
  return { A_Const: { fval: { fval: negative ? `-${text}` : text } } };
}

function allDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
