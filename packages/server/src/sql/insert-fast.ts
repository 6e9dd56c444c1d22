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
      const item = value(t, i);
      if (item === null) return null;
      i = item.next;
      if (item.node.ParamRef) paramCount = Math.max(paramCount, item.node.ParamRef.number);
      items.push(item.node);
    } while (punct(','));
    if (!punct(')')) return null;
    valuesLists.push({ List: { items } });
  } while (punct(','));
  if (i !== t.length) return null;
  const ast: InsertStmt = { relation, ...(cols ? { cols } : {}), selectStmt: { SelectStmt: { valuesLists, limitOption: 'LIMIT_OPTION_DEFAULT', op: 'SETOP_NONE' } } };
  return { kind: 'insert', ast, paramCount };
}

function value(t: readonly Token[], i: number): { node: PgNode; next: number } | null {
  const tok = t[i];
  if (tok === undefined) return null;
  if (tok.kind === 'string' && !(t[i + 1]?.kind === 'punct' && t[i + 1]!.value === '::')) {
    return { node: { A_Const: { sval: { sval: tok.value } } }, next: i + 1 };
  }
  if (tok.kind === 'param') return { node: { ParamRef: { number: Number(tok.value) } }, next: i + 1 };
  if (tok.kind === 'number') return { node: numberConst(tok.value, false), next: i + 1 };
  if (tok.kind === 'punct' && tok.value === '-' && t[i + 1]?.kind === 'number') {
    return { node: numberConst(t[i + 1]!.value, true), next: i + 2 };
  }
  if (tok.kind === 'word') {
    if (tok.value === 'NULL') return { node: { A_Const: { isnull: true } }, next: i + 1 };
    if (tok.value === 'TRUE' || tok.value === 'FALSE') return { node: { A_Const: { boolval: { boolval: tok.value === 'TRUE' } } }, next: i + 1 };
    if (tok.value === 'DEFAULT') return { node: { SetToDefault: {} }, next: i + 1 };
  }
  return null;
}

/** Integers that fit int32 are `ival` and everything else `fval` text, exactly as PostgreSQL's parser does. */
function numberConst(text: string, negative: boolean): PgNode {
  const signed = negative ? `-${text}` : text;
  if (/^\d+$/.test(text)) {
    const n = Number(signed);
    if (Math.abs(n) <= INT32_MAX) return { A_Const: { ival: { ival: n } } };
  }
  return { A_Const: { fval: { fval: signed } } };
}
