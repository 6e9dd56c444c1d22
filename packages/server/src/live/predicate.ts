/**
 * Compiles a subscription's WHERE clause (PostgreSQL parse tree) once into a JavaScript predicate
 * over a row's stored cells. Supports comparisons, AND/OR/NOT, IN, LIKE/ILIKE, IS [NOT] NULL,
 * BETWEEN and CURRENT_USER(); constants are coerced to the compared column's type at compile time,
 * so evaluation is plain comparisons. SQL's three-valued logic: unknown (null) does not match.
 */
import { invalidSql } from '../util/errors.js';
import { TokenBucket } from '../util/token-bucket.js';
import type { ColumnDef, StoredValue } from '../catalog/types.js';
import type { PgNode } from '../sql/statement.js';
import { coerce, type InputValue } from '../sql/values.js';
import { constantValue } from '../sql/create-table.js';

/** A row as the predicate sees it: table columns in order, then `_seq`. */
export type RowCells = readonly StoredValue[];
export type Predicate = (row: RowCells) => boolean;

type Value = (row: RowCells) => StoredValue;
type Truth = (row: RowCells) => boolean | null;

interface Operand {
  readonly eval: Value;
  /** The column it reads, when it is a plain column reference (constants are coerced to its type). */
  readonly column?: Pick<ColumnDef, 'name' | 'type' | 'precision' | 'scale'>;
  /** The raw constant, for coercion against the other side's column. */
  readonly constant?: InputValue;
}

export interface PredicateContext {
  /** Table columns followed by `_seq`. */
  readonly columns: readonly Pick<ColumnDef, 'name' | 'type' | 'precision' | 'scale'>[];
  /** Names the table can be referred to by (its name and alias). */
  readonly qualifiers: ReadonlySet<string>;
  /** What CURRENT_USER() is; null where it has no meaning (a topic source is evaluated for every writer). */
  readonly userId: string | null;
}

/** The predicate of a query without WHERE (one function, so the live fan-out can skip converting cells for it). */
export const matchAll: Predicate = () => true;

/** What compiling needs besides the context: the LIKE budget of the filter's evaluation on one row. */
interface CompileContext extends PredicateContext {
  readonly likeBudget: LikeBudget;
}

/** Steps left to the LIKE matches of one evaluation, and to the user whose filter it is. */
export interface LikeBudget {
  left: number;
  /** The filter's user's steps per second (null for a filter of no user, e.g. a topic route's). */
  readonly user?: TokenBucket | null;
  /** Set while compiling when the filter has a LIKE (only then is the budget reset per row). */
  used?: boolean;
}

/**
 * LIKE steps the subscription filters of one user may take per second, in all. Each filter failing
 * at its own LIKE_STEPS_MAX is not enough: 1,000 subscriptions with distinct filters, each failing on
 * one expensive row, would still hold the commit thread for seconds. Past it that user's filters fail
 * (and their subscriptions end) until the bucket refills; other users' are unaffected.
 */
export const LIKE_STEPS_PER_USER_PER_SECOND = 20_000_000;

/** One bucket of LIKE steps per user (a second's worth at most), for as long as the process runs (one per account at most). */
const userSteps = new Map<string, TokenBucket>();

function stepsOf(userId: string): TokenBucket {
  let steps = userSteps.get(userId);
  if (steps === undefined) userSteps.set(userId, (steps = new TokenBucket(LIKE_STEPS_PER_USER_PER_SECOND, LIKE_STEPS_PER_USER_PER_SECOND)));
  return steps;
}

export function compilePredicate(where: PgNode | undefined, ctx: PredicateContext): Predicate {
  if (where === undefined || where === null) return matchAll;
  // One LIKE budget for the whole filter on one row: a filter of thousands of LIKEs, each within its
  // own budget, held the commit thread for minutes per row (an attack review).
  const likeBudget: LikeBudget = { left: LIKE_STEPS_MAX, user: ctx.userId === null ? null : stepsOf(ctx.userId), used: false };
  const truth = compileTruth(where, { ...ctx, likeBudget });
  if (likeBudget.used !== true) return (row) => truth(row) === true;
  return (row) => {
    likeBudget.left = LIKE_STEPS_MAX;
    likeBudget.user?.refill();
    return truth(row) === true;
  };
}

/**
 * Parse-tree nodes a subscription filter may have (`id = 5` is 13, each more IN-list item 4): about
 * 3,000 comparisons or 10,000 IN-list items. The tree and its compiled form live as long as the
 * subscription, at about 80 bytes per node (an attack review held 24 MB per subscription with a
 * 24,000-term OR chain and ran the server out of memory).
 */
export const FILTER_NODES_MAX = 40_000;

/** The number of nodes in a parse tree, counted up to `max + 1` (it stops there). */
export function countNodes(node: unknown, max = FILTER_NODES_MAX): number {
  let n = 0;
  const stack: unknown[] = [node];
  while (stack.length > 0 && n <= max) {
    const next = stack.pop();
    if (next === null || typeof next !== 'object') continue;
    n++;
    for (const value of Object.values(next)) if (value !== null && typeof value === 'object') stack.push(value);
  }
  return n;
}

function compileTruth(node: PgNode, ctx: CompileContext): Truth {
  if (node.BoolExpr) {
    const args: Truth[] = node.BoolExpr.args.map((a: PgNode) => compileTruth(a, ctx));
    switch (node.BoolExpr.boolop) {
      case 'AND_EXPR': return (r) => {
        let unknown = false;
        for (const a of args) { const v = a(r); if (v === false) return false; if (v === null) unknown = true; }
        return unknown ? null : true;
      };
      case 'OR_EXPR': return (r) => {
        let unknown = false;
        for (const a of args) { const v = a(r); if (v === true) return true; if (v === null) unknown = true; }
        return unknown ? null : false;
      };
      case 'NOT_EXPR': return (r) => { const v = args[0]!(r); return v === null ? null : !v; };
    }
  }
  if (node.NullTest) {
    const arg = operand(node.NullTest.arg, ctx).eval;
    return node.NullTest.nulltesttype === 'IS_NULL' ? (r) => arg(r) === null : (r) => arg(r) !== null;
  }
  if (node.BooleanTest) {
    const arg = compileTruth(node.BooleanTest.arg, ctx);
    const test = String(node.BooleanTest.booltesttype);
    const want = test === 'IS_TRUE' || test === 'IS_NOT_TRUE';
    const negate = test.startsWith('IS_NOT');
    return (r) => { const v = arg(r); const is = v === want; return negate ? !is : is; };
  }
  if (node.A_Expr) return compileExpr(node.A_Expr, ctx);
  if (node.ColumnRef) {
    const col = operand(node, ctx);
    if (col.column?.type !== 'Boolean') throw invalidSql('A subscription filter needs a condition, not a value');
    return (r) => { const v = col.eval(r); return v === null ? null : v === true; };
  }
  if (node.A_Const?.boolval !== undefined) { const v = node.A_Const.boolval.boolval === true; return () => v; }
  throw invalidSql(`Unsupported expression in a subscription filter: ${Object.keys(node)[0]}`);
}

function compileExpr(e: PgNode, ctx: CompileContext): Truth {
  const op = String(e.name?.[0]?.String?.sval ?? '');
  switch (e.kind) {
    case 'AEXPR_OP': return comparison(op, operand(e.lexpr, ctx), operand(e.rexpr, ctx));
    case 'AEXPR_IN': {
      const left = operand(e.lexpr, ctx);
      const items: Operand[] = e.rexpr.List?.items?.map((i: PgNode) => operand(i, ctx)) ?? e.rexpr.map((i: PgNode) => operand(i, ctx));
      const tests = items.map((item) => comparison('=', left, item));
      const negate = op === '<>';
      return (r) => {
        let unknown = false;
        for (const t of tests) { const v = t(r); if (v === true) return !negate; if (v === null) unknown = true; }
        return unknown ? null : negate;
      };
    }
    case 'AEXPR_LIKE': case 'AEXPR_ILIKE': {
      const left = operand(e.lexpr, ctx).eval;
      const pattern = e.rexpr.A_Const?.sval?.sval;
      if (typeof pattern !== 'string') throw invalidSql('LIKE in a subscription filter needs a constant pattern');
      const caseInsensitive = e.kind === 'AEXPR_ILIKE';
      ctx.likeBudget.used = true;
      const matches = compileLike(caseInsensitive ? pattern.toLowerCase() : pattern, ctx.likeBudget);
      const negate = op.startsWith('!');
      return (r) => {
        const v = left(r);
        if (v === null) return null;
        const m = matches(caseInsensitive ? String(v).toLowerCase() : String(v));
        return negate ? !m : m;
      };
    }
    case 'AEXPR_BETWEEN': case 'AEXPR_NOT_BETWEEN': {
      const value = operand(e.lexpr, ctx);
      const [low, high] = (e.rexpr.List?.items ?? e.rexpr) as PgNode[];
      const ge = comparison('>=', value, operand(low, ctx));
      const le = comparison('<=', value, operand(high, ctx));
      const negate = e.kind === 'AEXPR_NOT_BETWEEN';
      return (r) => { const a = ge(r); const b = le(r); if (a === null || b === null) return null; const v = a && b; return negate ? !v : v; };
    }
    default: throw invalidSql(`Unsupported operator in a subscription filter: ${e.kind}`);
  }
}

function comparison(op: string, leftRaw: Operand, rightRaw: Operand): Truth {
  const [left, right] = [typed(leftRaw, rightRaw), typed(rightRaw, leftRaw)];
  const cmp = (r: RowCells): number | null => {
    const a = left(r);
    const b = right(r);
    if (a === null || b === null) return null;
    return compareValues(a, b);
  };
  switch (op) {
    case '=': return (r) => { const c = cmp(r); return c === null ? null : c === 0; };
    case '<>': case '!=': return (r) => { const c = cmp(r); return c === null ? null : c !== 0; };
    case '<': return (r) => { const c = cmp(r); return c === null ? null : c < 0; };
    case '<=': return (r) => { const c = cmp(r); return c === null ? null : c <= 0; };
    case '>': return (r) => { const c = cmp(r); return c === null ? null : c > 0; };
    case '>=': return (r) => { const c = cmp(r); return c === null ? null : c >= 0; };
    default: throw invalidSql(`Unsupported operator '${op}' in a subscription filter`);
  }
}

/** A side of a comparison; a constant facing a column is coerced to that column's type once. */
function typed(side: Operand, other: Operand): Value {
  if (side.constant !== undefined && other.column !== undefined) {
    let v: StoredValue;
    try {
      v = coerce({ ...other.column, nullable: true, primaryKey: false }, side.constant);
    } catch {
      // `id >= 2.5`: a number that does not fit the column's type still compares as a number.
      const n = typeof side.constant === 'number' ? side.constant : typeof side.constant === 'string' ? Number(side.constant) : NaN;
      if (Number.isNaN(n)) throw invalidSql(`Value ${JSON.stringify(String(side.constant))} cannot be compared with column '${other.column.name}'`);
      v = n;
    }
    return () => v;
  }
  return side.eval;
}

function operand(node: PgNode, ctx: PredicateContext): Operand {
  if (node.ColumnRef) {
    const fields: PgNode[] = node.ColumnRef.fields;
    if (fields.length > 3 || fields.some((f) => f.A_Star)) throw invalidSql('Unsupported column reference in a subscription filter');
    if (fields.length > 1 && !ctx.qualifiers.has(String(fields[fields.length - 2].String?.sval))) {
      throw invalidSql(`Unknown table qualifier in '${fields.map((f) => f.String?.sval).join('.')}'`);
    }
    const name = String(fields[fields.length - 1].String?.sval);
    const idx = ctx.columns.findIndex((c) => c.name === name.toLowerCase());
    if (idx === -1) throw invalidSql(`Column '${name}' does not exist`);
    return { eval: (r) => r[idx] ?? null, column: ctx.columns[idx]! };
  }
  if (node.SQLValueFunction && ['SVFOP_CURRENT_USER', 'SVFOP_USER', 'SVFOP_SESSION_USER'].includes(node.SQLValueFunction.op)) {
    const user = ctx.userId;
    if (user === null) throw invalidSql('CURRENT_USER() cannot be used here: the condition is evaluated for every writer (filter on a column instead)');
    return { eval: () => user, constant: user };
  }
  if (node.A_Const || node.TypeCast || node.A_Expr) {
    const v = constantValue(node, 'subscription filter');
    const stored: StoredValue = v === undefined || (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) ? null : (v as StoredValue);
    return { eval: () => stored, constant: v };
  }
  throw invalidSql(`Unsupported expression in a subscription filter: ${Object.keys(node)[0]}`);
}

export function compareValues(a: StoredValue, b: StoredValue): number {
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    // Exact when both are integers; a fraction against a 64-bit integer compares as doubles.
    const exact = (v: StoredValue): v is bigint | number => typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
    if (exact(a) && exact(b)) {
      const x = BigInt(a);
      const y = BigInt(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const x = Number(a);
    const y = Number(b);
    if (Number.isNaN(x) || Number.isNaN(y)) return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Longest LIKE pattern a subscription filter may hold. */
export const LIKE_PATTERN_CHARS_MAX = 256;
/**
 * Steps the LIKE patterns of one filter may take on one row, in all (a few milliseconds): past it the
 * subscription's filter fails and its subscriptions end with an error. (An attack review: a
 * 2,000-character pattern against a 500,000-character row held the commit thread for 9 s.) A step is
 * one step of likeMatch, or eight characters of the value read by a linear match.
 */
export const LIKE_STEPS_MAX = 2_000_000;


/** Characters of a linear (KMP) search charged as one LIKE step. */
const LINEAR_CHARS_PER_STEP = 8;

/**
 * A LIKE pattern as a matcher, for values met one at a time on the thread that commits every write.
 * Patterns of literal text and `%` only (the usual 'abc%', '%abc', '%abc%') match in time linear in
 * the value: the text between `%`s is found leftmost in order (greedy, which is exact for `%`) with
 * Knuth-Morris-Pratt, never re-reading a character. Patterns with `_` (or a surrogate code unit, where
 * `%` must not split a pair) use likeMatch, whose work is at most pattern × value, within LIKE_STEPS_MAX.
 */
export function compileLike(pattern: string, budget: LikeBudget | null = null): (value: string) => boolean {
  if (pattern.length > LIKE_PATTERN_CHARS_MAX) {
    throw invalidSql(`A LIKE pattern in a subscription filter may be at most ${LIKE_PATTERN_CHARS_MAX} characters long`);
  }
  // Without a filter's budget, each value gets LIKE_STEPS_MAX of its own.
  if (/[_\ud800-\udfff]/.test(pattern)) return (value) => likeMatch(pattern, value, budget ?? { left: LIKE_STEPS_MAX });
  const parts = pattern.split('%');
  if (parts.length === 1) return (value) => value === pattern;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  const middles = parts.slice(1, -1).filter((m) => m !== '').map((m) => ({ text: m, failure: kmpFailure(m) }));
  return (value) => {
    if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
    const end = value.length - last.length;
    let at = first.length;
    for (const m of middles) {
      const found = kmpFind(value, m.text, m.failure, at, end);
      // What was read, at a step per LINEAR_CHARS_PER_STEP characters (a character of a linear search
      // costs a fraction of a likeMatch step): a 2 MB value is searched many times within one row's budget.
      if (budget !== null) spend(budget, Math.ceil(((found === -1 ? end : found + m.text.length) - at) / LINEAR_CHARS_PER_STEP), pattern, value.length);
      if (found === -1) return false;
      at = found + m.text.length;
    }
    return true;
  };
}

/** KMP's failure function: for each prefix of `p`, the length of its longest proper border. */
function kmpFailure(p: string): Int32Array {
  const f = new Int32Array(p.length);
  for (let i = 1, k = 0; i < p.length; i++) {
    while (k > 0 && p.charCodeAt(i) !== p.charCodeAt(k)) k = f[k - 1]!;
    if (p.charCodeAt(i) === p.charCodeAt(k)) k++;
    f[i] = k;
  }
  return f;
}

/** Where `p` first occurs in `s` wholly inside [from, end), or -1; each character of `s` is read about once. */
function kmpFind(s: string, p: string, f: Int32Array, from: number, end: number): number {
  for (let i = from, k = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    while (k > 0 && c !== p.charCodeAt(k)) k = f[k - 1]!;
    if (c === p.charCodeAt(k)) k++;
    if (k === p.length) return i - p.length + 1;
  }
  return -1;
}

/**
 * SQL LIKE (`%` any run, `_` one character, everything else literal), without a regular expression:
 * a pattern such as '%a%a%a%a%a%a%a%b' made the backtracking regex it used to compile to take
 * exponential time in the value's length, on the thread that commits every write (one user's
 * subscription and row froze the server for 28 s). This is the greedy wildcard match: on a mismatch
 * only the last `%` is retried one character further, so the work is at most pattern × value
 * length. `_` takes a whole code point (a surrogate pair), as DuckDB's LIKE does.
 */
export function likeMatch(pattern: string, value: string, budget: LikeBudget = { left: Infinity }): boolean {
  let p = 0;
  let v = 0;
  let starP = -1;
  let starV = 0;
  let steps = 0;
  while (v < value.length) {
    // Charged to the budget in runs of 4,096 steps (and at the end), not one call per step.
    if ((++steps & 4095) === 0) spend(budget, 4096, pattern, value.length);
    const c = p < pattern.length ? pattern.charCodeAt(p) : -1;
    if (c === 0x25 /* % */) {
      starP = p++;
      starV = v;
    } else if (c === 0x5f /* _ */) {
      p++;
      v += isPair(value, v) ? 2 : 1;
    } else if (c !== -1 && c === value.charCodeAt(v)) {
      p++;
      v++;
    } else if (starP !== -1) {
      // The last % takes one more character (never half of a surrogate pair), and the rest is retried.
      starV += isPair(value, starV) ? 2 : 1;
      v = starV;
      p = starP + 1;
    } else {
      spend(budget, steps & 4095, pattern, value.length);
      return false;
    }
  }
  spend(budget, steps & 4095, pattern, value.length);
  while (p < pattern.length && pattern.charCodeAt(p) === 0x25) p++;
  return p === pattern.length;
}

function spend(budget: LikeBudget, steps: number, pattern: string, valueLength: number): void {
  budget.left -= steps;
  const user = budget.user;
  if (user != null) user.tokens -= steps;
  if (budget.left >= 0 && (user == null || user.tokens >= 0)) return;
  const what = budget.left < 0
    ? `the filter's LIKE patterns need more than ${LIKE_STEPS_MAX} steps on one row`
    : `this user's subscription filters need more than ${LIKE_STEPS_PER_USER_PER_SECOND} LIKE steps a second`;
  throw new Error(`LIKE '${pattern.slice(0, 40)}${pattern.length > 40 ? '...' : ''}' on a value of ${valueLength} characters: ${what}`);
}

function isPair(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
}
