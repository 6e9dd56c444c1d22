/**
 * The bind layer's read path: turns a SELECT parse tree (PostgreSQL's, typed) into a BoundQuery,
 * in one pass that resolves every relation against the catalog, checks access, and writes the
 * engine's SQL text itself. Nothing of the input is copied through as text: identifiers are always
 * quoted by `quoteIdent`, literals re-escaped, functions, types and operators taken from allowlists,
 * CTEs renamed to generated names and every table reference replaced by a relation slot that the
 * executor fills with the one relation holding exactly the rows the caller may see. Anything this
 * emitter does not know is refused, so the engine never sees syntax we did not write.
 */
import type {
  A_Const, A_Expr, A_Indirection, Alias, CaseExpr, ColumnRef, CommonTableExpr, FuncCall, JoinExpr, Node, RangeFunction,
  RangeSubselect, RangeVar, ResTarget, SelectStmt, SortBy, SubLink, TypeCast, TypeName, WindowDef,
} from '@pgsql/types';
import { denied, execError, invalidSql } from '../../util/errors.js';
import type { Catalog } from '../../catalog/catalog.js';
import { DELETED_COLUMN, SYSTEM_NAMESPACE, type TableDef } from '../../catalog/types.js';
import { requireRead, requireSystemTableAccess, type Principal } from '../../auth/access.js';
import { identifier } from '../names.js';
import {
  AGGREGATE_FUNCTIONS, AMPLIFYING_FUNCTIONS, AMPLIFYING_MACROS, CAST_TYPES, FUNCTION_RENAMES, LIKE_MACROS, STRFTIME_FORMAT_CHARS_MAX, TABLE_FUNCTIONS, VOLATILE_FUNCTIONS, isAllowedFunction, COPY_FACTOR_MAX, ENGINE_COPIES_CHARS_MAX, ENGINE_MACRO_COPIES,
  PATTERN_FREE_BYTES, PATTERN_FUNCTIONS, REGEX_REPEAT_MAX, patternPairsMax, patternRefusal, regexCostBytes, type PatternKind,
} from './engine-names.js';
import { isUpstreamJsonCall, jsonHasKey, upstreamJsonCall, upstreamJsonCopies } from './upstream-json.js';

export type BoundSource =
  | { readonly kind: 'table'; readonly table: TableDef }
  | { readonly kind: 'system'; readonly name: string };

export interface BoundQuery {
  /** Engine SQL with `\0<slot>\0` where relation `sources[slot]` goes (see `engineSql`). */
  readonly template: string;
  /** Every relation the statement reads, one per table reference, in slot order. */
  readonly sources: readonly BoundSource[];
  /** Generated CTE names (→ the user's name for messages): the only unqualified relation names the engine SQL may contain. */
  readonly cteNames: ReadonlyMap<string, string>;
  /** The query filters on `_deleted` (WHERE, JOIN ... ON, HAVING), so tombstones stay visible to it. */
  readonly includeDeleted: boolean;
  /** What each top-level select-list entry is, in order (see `computedColumns`). */
  readonly outputs: readonly OutputKind[];
}

/**
 * `column`: a column reference or an explicit cast, typed as written; `star`: `*` or `t.*`, any
 * number of columns; `computed`: any other expression.
 */
export type OutputKind = 'column' | 'star' | 'computed';

/**
 * Which of a result's `width` columns are computed expressions. Upstream KalamDB types integer
 * literals and arithmetic on them as 64-bit (`SELECT 1` is a BigInt), where DuckDB makes them 32-bit;
 * the result encoder widens those columns. A `*` between two others hides how many columns it
 * stands for, so only the entries before the first `*` and after the last are placed.
 */
export function computedColumns(outputs: readonly OutputKind[], width: number): boolean[] {
  const computed = new Array<boolean>(width).fill(false);
  const first = outputs.indexOf('star');
  const last = outputs.lastIndexOf('star');
  const head = first === -1 ? outputs.length : first;
  for (let i = 0; i < head && i < width; i++) computed[i] = outputs[i] === 'computed';
  if (first === -1) return computed;
  const tail = outputs.length - 1 - last;
  for (let j = 1; j <= tail && width - j >= head; j++) computed[width - j] = outputs[outputs.length - j] === 'computed';
  return computed;
}

export interface BindContext {
  readonly catalog: Catalog;
  readonly principal: Principal;
  readonly namespace: string;
  /** Largest row count a `range`/`generate_series` table function may produce. */
  readonly tableFunctionRowsMax: number;
  /** `generated_values_max`: what the pattern search budgets are measured in (patternPairsMax). */
  readonly generatedValuesMax: number;
}

/** The final engine SQL: each slot replaced by its (already quoted) relation name. */
export function engineSql(bound: BoundQuery, relations: readonly string[]): string {
  return bound.template.replace(/\0(\d+)\0/g, (_, slot: string) => relations[Number(slot)]!);
}

/** Always quoted: keywords of either dialect (`at`, `pivot`) and odd names are plain identifiers. */
export function quoteIdent(name: string): string {
  noNul(name);
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteString(text: string): string {
  noNul(text);
  return `'${text.replace(/'/g, "''")}'`;
}

function noNul(text: string): void {
  // NUL delimits relation slots in the template; PostgreSQL's parser never yields it, so refuse rather than trust.
  if (text.includes('\0')) throw invalidSql('NUL characters are not allowed in SQL text');
}

const USER_FUNCTIONS = new Set(['SVFOP_CURRENT_USER', 'SVFOP_USER', 'SVFOP_SESSION_USER', 'SVFOP_CURRENT_ROLE']);
const OPERATOR = /^[+\-*/<>=~!@#%^&|`?]{1,3}$/;

interface Scope {
  /** CTE names visible here (user name → generated name), innermost first. */
  readonly ctes: ReadonlyMap<string, string>;
}

export function bindSelect(select: SelectStmt, ctx: BindContext): BoundQuery {
  return new Binder(ctx).bind(select);
}

class Binder {
  private readonly sources: BoundSource[] = [];
  private readonly cteNames = new Map<string, string>();
  /** `namespace.table` → the alias it is visible under, for three-part column references. */
  private readonly qualified = new Map<string, string>();
  private includeDeleted = false;
  private inFilter = false;
  /** Inside a lambda's body (`x -> ...`): the body runs once per list element. */
  private lambdaDepth = 0;
  /** Guarded calls (AMPLIFYING_MACROS) in the statement so far. */
  private amplifyingCalls = 0;
  /** Inside an expression the engine computes per row (not folded to one value). */
  private perRowDepth = 0;
  /** Characters of argument copies the engine will make expanding this statement (copiedArg). */
  private copiedChars = 0;
  /** Inside arguments that are copied: the product of their copies (copiedArg). */
  private copyFactor = 1;
  /**
   * The current SELECT's output aliases so far (lower-cased) and what each costs to copy: the engine
   * resolves an alias used later in the select list, WHERE, GROUP BY or HAVING by copying its
   * expression (`SELECT 1 AS a0, a0 + a0 AS a1, ...` doubles per alias).
   */
  private selectAliases = new Map<string, number>();

  constructor(private readonly ctx: BindContext) {}

  bind(select: SelectStmt): BoundQuery {
    const template = this.select(select, { ctes: new Map() });
    return { template, sources: this.sources, cteNames: this.cteNames, includeDeleted: this.includeDeleted, outputs: outputKinds(select) };
  }

  // Statements --------------------------------------------------------------------------------

  private select(s: SelectStmt, outer: Scope): string {
    if (s.intoClause) throw invalidSql('SELECT ... INTO is not supported: use INSERT INTO ... SELECT');
    if (s.lockingClause) throw invalidSql('SELECT ... FOR UPDATE/SHARE is not supported: use BEGIN ... COMMIT, which is atomic');
    const [withSql, scope] = this.withClause(s, outer);
    let body: string;
    if (s.op !== undefined && s.op !== 'SETOP_NONE') {
      const op = s.op === 'SETOP_UNION' ? 'UNION' : s.op === 'SETOP_INTERSECT' ? 'INTERSECT' : 'EXCEPT';
      body = `(${this.select(s.larg!, scope)}) ${op}${s.all ? ' ALL' : ''} (${this.select(s.rarg!, scope)})`;
    } else if (s.valuesLists) {
      body = `VALUES ${s.valuesLists.map((row) => `(${this.list(row, scope)})`).join(', ')}`;
    } else {
      body = this.simpleSelect(s, scope);
    }
    return `${withSql}${body}${this.modifiers(s, scope)}`;
  }

  private withClause(s: SelectStmt, outer: Scope): [string, Scope] {
    const w = s.withClause;
    if (!w) return ['', outer];
    const ctes = (w.ctes ?? []).map((n) => expect(n, 'CommonTableExpr'));
    const generated = ctes.map((c) => {
      const name = `kalam_cte_${this.cteNames.size + 1}`;
      this.cteNames.set(name, requireName(c.ctename));
      return name;
    });
    const all = new Map(outer.ctes);
    ctes.forEach((c, i) => all.set(requireName(c.ctename), generated[i]!));
    const parts: string[] = [];
    let visible = new Map(outer.ctes);
    ctes.forEach((c, i) => {
      // PostgreSQL's scoping: a CTE body sees the CTEs before it, or all of them under RECURSIVE.
      const bodyScope: Scope = { ctes: w.recursive ? all : visible };
      parts.push(this.cte(c, generated[i]!, bodyScope));
      visible = new Map(visible).set(requireName(c.ctename), generated[i]!);
    });
    return [`WITH ${w.recursive ? 'RECURSIVE ' : ''}${parts.join(', ')} `, { ctes: w.recursive ? all : visible }];
  }

  private cte(c: CommonTableExpr, name: string, scope: Scope): string {
    if (c.search_clause || c.cycle_clause) throw invalidSql('SEARCH and CYCLE clauses are not supported');
    const columns = c.aliascolnames?.length ? `(${c.aliascolnames.map((n) => quoteIdent(stringOf(n))).join(', ')})` : '';
    const materialized = c.ctematerialized === 'CTEMaterializeAlways' ? 'MATERIALIZED ' : c.ctematerialized === 'CTEMaterializeNever' ? 'NOT MATERIALIZED ' : '';
    return `${name}${columns} AS ${materialized}(${this.select(expect(c.ctequery, 'SelectStmt'), scope)})`;
  }

  private simpleSelect(s: SelectStmt, scope: Scope): string {
    // FROM first: three-part column references anywhere below resolve against its aliases.
    const from = s.fromClause?.length ? ` FROM ${s.fromClause.map((f) => this.fromItem(f, scope)).join(', ')}` : '';
    let distinct = '';
    if (s.distinctClause) {
      const on = s.distinctClause.filter((n) => Object.keys(n).length > 0);
      distinct = on.length > 0 ? `DISTINCT ON (${on.map((n) => this.expr(n, scope)).join(', ')}) ` : 'DISTINCT ';
    }
    const outerAliases = this.selectAliases;
    this.selectAliases = new Map();
    try {
      const targets = (s.targetList ?? []).map((t) => this.target(expect(t, 'ResTarget'), scope));
      if (targets.length === 0) throw invalidSql('SELECT needs at least one column');
      const where = s.whereClause ? ` WHERE ${this.filter(s.whereClause, scope)}` : '';
      const group = s.groupClause?.length ? ` GROUP BY ${s.groupDistinct ? 'DISTINCT ' : ''}${this.list(s.groupClause, scope)}` : '';
      const having = s.havingClause ? ` HAVING ${this.filter(s.havingClause, scope)}` : '';
      const windows = s.windowClause?.length
        ? ` WINDOW ${s.windowClause.map((n) => { const w = expect(n, 'WindowDef'); return `${quoteIdent(requireName(w.name))} AS (${this.windowSpec(w, scope)})`; }).join(', ')}`
        : '';
      return `SELECT ${distinct}${targets.join(', ')}${from}${where}${group}${having}${windows}`;
    } finally {
      this.selectAliases = outerAliases;
    }
  }

  private modifiers(s: SelectStmt, scope: Scope): string {
    let out = '';
    if (s.sortClause?.length) out += ` ORDER BY ${s.sortClause.map((n) => this.sortBy(expect(n, 'SortBy'), scope)).join(', ')}`;
    if (s.limitOption === 'LIMIT_OPTION_WITH_TIES') throw invalidSql('FETCH ... WITH TIES is not supported');
    if (s.limitCount) out += ` LIMIT ${this.expr(s.limitCount, scope)}`;
    if (s.limitOffset) out += ` OFFSET ${this.expr(s.limitOffset, scope)}`;
    return out;
  }

  private target(t: ResTarget, scope: Scope): string {
    if (t.indirection?.length) throw invalidSql('Indirection in a select-list target is not supported');
    const val = t.val!;
    const before = this.copiedChars;
    const sql = this.expr(val, scope);
    const name = t.name ?? impliedName(val);
    if (name !== undefined) this.selectAliases.set(name.toLowerCase(), (isLeaf(val) ? 0 : sql.length) + (this.copiedChars - before));
    return name === undefined ? sql : `${sql} AS ${quoteIdent(name)}`;
  }

  private filter(node: Node, scope: Scope): string {
    const outer = this.inFilter;
    this.inFilter = true;
    try {
      return this.expr(node, scope);
    } finally {
      this.inFilter = outer;
    }
  }

  // FROM ----------------------------------------------------------------------------------------

  private fromItem(node: Node, scope: Scope): string {
    if ('RangeVar' in node) return this.rangeVar(node.RangeVar, scope);
    if ('JoinExpr' in node) return this.join(node.JoinExpr, scope);
    if ('RangeSubselect' in node) return this.subselect(node.RangeSubselect, scope);
    if ('RangeFunction' in node) return this.rangeFunction(node.RangeFunction, scope);
    throw unsupported(node, 'in FROM');
  }

  private rangeVar(rv: RangeVar, scope: Scope): string {
    if (rv.catalogname !== undefined) throw invalidSql('Catalog-qualified table names are not supported');
    const rawName = requireName(rv.relname);
    const cte = rv.schemaname === undefined ? scope.ctes.get(rawName) : undefined;
    const alias = rv.alias?.aliasname ?? rawName;
    if (cte !== undefined) return `${cte} AS ${quoteIdent(alias)}${columnAliases(rv.alias)}`;
    const namespace = rv.schemaname !== undefined ? identifier(rv.schemaname, 'namespace name') : this.ctx.namespace;
    const name = identifier(rawName, 'table name');
    if (namespace === SYSTEM_NAMESPACE || namespace === 'information_schema') {
      // information_schema.tables / .columns are catalog views like the system tables (upstream's names).
      const systemName = namespace === SYSTEM_NAMESPACE ? name : `information_schema.${name}`;
      requireSystemTableAccess(this.ctx.principal, systemName);
      this.sources.push({ kind: 'system', name: systemName });
    } else {
      const table = this.ctx.catalog.table(namespace, name);
      if (table === undefined) throw execError(`Table '${namespace}.${name}' does not exist`);
      requireRead(this.ctx.principal, table, this.ctx.catalog.hasGrant(table.id, this.ctx.principal));
      this.sources.push({ kind: 'table', table });
    }
    const shownAs = rv.alias?.aliasname ?? name;
    this.qualified.set(`${namespace}.${name}`, shownAs);
    return `\0${this.sources.length - 1}\0 AS ${quoteIdent(shownAs)}${columnAliases(rv.alias)}`;
  }

  private join(j: JoinExpr, scope: Scope): string {
    if (j.alias || j.join_using_alias) throw invalidSql('Aliases on a JOIN are not supported: alias the joined tables instead');
    const left = this.fromItem(j.larg!, scope);
    const right = this.fromItem(j.rarg!, scope);
    const kind = j.jointype === 'JOIN_LEFT' ? 'LEFT' : j.jointype === 'JOIN_RIGHT' ? 'RIGHT' : j.jointype === 'JOIN_FULL' ? 'FULL' : j.jointype === 'JOIN_INNER' ? 'INNER' : null;
    if (kind === null) throw invalidSql(`Join type ${j.jointype} is not supported`);
    if (j.isNatural) return `(${left} NATURAL ${kind} JOIN ${right})`;
    if (j.usingClause?.length) return `(${left} ${kind} JOIN ${right} USING (${j.usingClause.map((n) => quoteIdent(stringOf(n))).join(', ')}))`;
    if (j.quals) return `(${left} ${kind} JOIN ${right} ON ${this.filter(j.quals, scope)})`;
    if (kind !== 'INNER') throw invalidSql(`${kind} JOIN needs ON or USING`);
    return `(${left} CROSS JOIN ${right})`;
  }

  private subselect(r: RangeSubselect, scope: Scope): string {
    const lateral = r.lateral ? 'LATERAL ' : '';
    const alias = r.alias ? ` AS ${quoteIdent(requireName(r.alias.aliasname))}${columnAliases(r.alias)}` : '';
    return `${lateral}(${this.select(expect(r.subquery, 'SelectStmt'), scope)})${alias}`;
  }

  private rangeFunction(r: RangeFunction, scope: Scope): string {
    if (r.is_rowsfrom || r.coldeflist?.length || (r.functions?.length ?? 0) !== 1) throw invalidSql('ROWS FROM and column definition lists are not supported');
    const items = expect(r.functions![0], 'List').items ?? [];
    const call = expect(items[0], 'FuncCall');
    const name = functionName(call);
    if (!TABLE_FUNCTIONS.has(name)) {
      throw denied(`Permission denied: table function '${name}' is not available (allowed: ${[...TABLE_FUNCTIONS].join(', ')})`);
    }
    if (name !== 'unnest') this.checkSeriesSize(name, call.args ?? []);
    const args = (call.args ?? []).map((a) => this.expr(a, scope)).join(', ');
    const ordinality = r.ordinality ? ' WITH ORDINALITY' : '';
    const alias = r.alias ? ` AS ${quoteIdent(requireName(r.alias.aliasname))}${columnAliases(r.alias)}` : ` AS ${quoteIdent(name)}`;
    return `${r.lateral ? 'LATERAL ' : ''}${name}(${args})${ordinality}${alias}`;
  }

  /** `range`/`generate_series` in FROM: constant integer bounds, at most the configured row count. */
  private checkSeriesSize(name: string, args: readonly Node[]): void {
    const values = args.map((a) => integerConstant(a));
    const limit = this.ctx.tableFunctionRowsMax;
    if (values.some((v) => v === null)) {
      // Timestamps and expressions: the engine's statement timeout and memory guard bound them.
      return;
    }
    const [a, b, c] = values as bigint[];
    const count = args.length === 1 ? a! : args.length === 2 ? b! - a! + (name === 'generate_series' ? 1n : 0n) : c! === 0n ? 0n : (b! - a!) / c! + 1n;
    if (count > BigInt(limit)) {
      throw execError(`${name}(...) would produce ${count} rows; the limit is ${limit} (result_rows_max)`);
    }
  }

  // Expressions ---------------------------------------------------------------------------------

  private list(nodes: readonly Node[] | Node, scope: Scope): string {
    const items = Array.isArray(nodes) ? nodes : 'List' in (nodes as Node) ? ((nodes as { List: { items?: Node[] } }).List.items ?? []) : [nodes as Node];
    return items.map((n) => this.expr(n, scope)).join(', ');
  }

  private expr(node: Node, scope: Scope): string {
    // Below an expression computed per row, a guarded call's one value may be copied into every row.
    if (!isFoldable(node)) {
      this.perRowDepth++;
      try {
        return this.exprOf(node, scope);
      } finally {
        this.perRowDepth--;
      }
    }
    return this.exprOf(node, scope);
  }

  private exprOf(node: Node, scope: Scope): string {
    if ('ColumnRef' in node) return this.columnRef(node.ColumnRef);
    if ('A_Const' in node) return constant(node.A_Const);
    if ('ParamRef' in node) {
      const n = node.ParamRef.number ?? 0;
      if (!Number.isInteger(n) || n < 1) throw invalidSql('Invalid parameter reference');
      return `$${n}`;
    }
    if ('A_Expr' in node) return this.aExpr(node.A_Expr, scope);
    if ('BoolExpr' in node) {
      const args = (node.BoolExpr.args ?? []).map((a) => `(${this.expr(a, scope)})`);
      if (node.BoolExpr.boolop === 'NOT_EXPR') return `(NOT ${args[0]})`;
      return `(${args.join(node.BoolExpr.boolop === 'AND_EXPR' ? ' AND ' : ' OR ')})`;
    }
    if ('NullTest' in node) return `((${this.expr(node.NullTest.arg!, scope)}) IS ${node.NullTest.nulltesttype === 'IS_NOT_NULL' ? 'NOT ' : ''}NULL)`;
    if ('BooleanTest' in node) {
      const test = { IS_TRUE: 'TRUE', IS_NOT_TRUE: 'NOT TRUE', IS_FALSE: 'FALSE', IS_NOT_FALSE: 'NOT FALSE', IS_UNKNOWN: 'NULL', IS_NOT_UNKNOWN: 'NOT NULL' }[node.BooleanTest.booltesttype ?? 'IS_TRUE'];
      return `((${this.expr(node.BooleanTest.arg!, scope)}) IS ${test})`;
    }
    if ('FuncCall' in node) return this.funcCall(node.FuncCall, scope);
    if ('TypeCast' in node) return this.typeCast(node.TypeCast, scope);
    if ('CaseExpr' in node) return this.caseExpr(node.CaseExpr, scope);
    if ('CoalesceExpr' in node) return `coalesce(${this.list(node.CoalesceExpr.args ?? [], scope)})`;
    if ('MinMaxExpr' in node) return `${node.MinMaxExpr.op === 'IS_LEAST' ? 'least' : 'greatest'}(${this.list(node.MinMaxExpr.args ?? [], scope)})`;
    if ('NullIfExpr' in node) {
      const [a, b] = node.NullIfExpr.args ?? [];
      if (a === undefined || b === undefined) throw invalidSql('NULLIF takes two arguments');
      return this.nullIf(a, b, scope);
    }
    if ('SubLink' in node) return this.subLink(node.SubLink, scope);
    if ('A_ArrayExpr' in node) return `[${this.list(node.A_ArrayExpr.elements ?? [], scope)}]`;
    if ('A_Indirection' in node) return this.indirection(node.A_Indirection, scope);
    if ('RowExpr' in node) return `row(${this.list(node.RowExpr.args ?? [], scope)})`;
    if ('SQLValueFunction' in node) return this.valueFunction(node.SQLValueFunction.op!);
    if ('GroupingSet' in node) return this.groupingSet(node.GroupingSet.kind!, node.GroupingSet.content ?? [], scope);
    if ('GroupingFunc' in node) return `grouping(${this.list(node.GroupingFunc.args ?? [], scope)})`;
    if ('List' in node) return `(${this.list(node.List.items ?? [], scope)})`;
    throw unsupported(node, 'in an expression');
  }

  private columnRef(ref: ColumnRef): string {
    let fields = ref.fields ?? [];
    if (fields.length === 3 && !('A_Star' in fields[2]!)) {
      // `ns.table.col` names a table by its catalog name; the engine knows it by its alias.
      const alias = this.qualified.get(`${stringOf(fields[0]!)}.${stringOf(fields[1]!)}`);
      if (alias === undefined) throw execError(`Table '${stringOf(fields[0]!)}.${stringOf(fields[1]!)}' is not in the FROM clause`);
      fields = [{ String: { sval: alias } }, fields[2]!];
    }
    if (fields.length === 0 || fields.length > 3) throw invalidSql('Invalid column reference');
    const last = fields[fields.length - 1]!;
    if (fields.length === 1 && 'String' in last) {
      // Possibly an earlier output alias, which the engine replaces with a copy of its expression.
      const aliased = this.selectAliases.get(stringOf(last).toLowerCase());
      if (aliased !== undefined && aliased > 0) this.addCopiedChars(`the alias ${stringOf(last)}`, aliased);
    }
    if (this.inFilter && 'String' in last && last.String.sval === DELETED_COLUMN) this.includeDeleted = true;
    return fields.map((f) => ('A_Star' in f ? '*' : quoteIdent(stringOf(f)))).join('.');
  }

  private aExpr(e: A_Expr, scope: Scope): string {
    const l = (): string => `(${this.expr(e.lexpr!, scope)})`;
    const r = (): string => `(${this.expr(e.rexpr!, scope)})`;
    const op = (): string => operatorName(e.name);
    switch (e.kind) {
      case 'AEXPR_OP':
        if (e.lexpr === undefined) return `(${op()} ${r()})`;
        if (e.rexpr === undefined) throw invalidSql('Postfix operators are not supported');
        if (op() === '?') return jsonHasKey(l(), r());
        // LIKE's operator spellings take the same linear-time matcher; GLOB's backtracks and is not offered.
        if (LIKE_OPERATORS.has(op())) return likeCall(l(), r(), op().endsWith('*'), op().startsWith('!'));
        if (op() === '~~~' || op() === '!~~~') throw invalidSql('GLOB (~~~) is not supported: use LIKE or a regular expression');
        if (op() === '~' || op() === '!~') {
          const operator = op();
          return this.patternCall('regex', operator, e.lexpr, e.rexpr, scope, (t, p) => `(${t} ${operator} ${p})`);
        }
        if (op() === '->') {
          // A lambda (or JSON's ->, whose right side is a key): a body evaluated per list element.
          const left = l();
          this.lambdaDepth++;
          try {
            return `(${left} -> ${r()})`;
          } finally {
            this.lambdaDepth--;
          }
        }
        return `(${l()} ${op()} ${r()})`;
      case 'AEXPR_OP_ANY': return `(${l()} ${op()} ANY(${this.expr(e.rexpr!, scope)}))`;
      case 'AEXPR_OP_ALL': return `(${l()} ${op()} ALL(${this.expr(e.rexpr!, scope)}))`;
      case 'AEXPR_DISTINCT': return `(${l()} IS DISTINCT FROM ${r()})`;
      case 'AEXPR_NOT_DISTINCT': return `(${l()} IS NOT DISTINCT FROM ${r()})`;
      case 'AEXPR_NULLIF': return this.nullIf(e.lexpr!, e.rexpr!, scope);
      case 'AEXPR_IN': return `(${l()} ${op() === '<>' ? 'NOT IN' : 'IN'} (${this.list(e.rexpr!, scope)}))`;
      case 'AEXPR_LIKE': case 'AEXPR_ILIKE': return this.like(e, scope);
      case 'AEXPR_SIMILAR': {
        const call = 'FuncCall' in e.rexpr! ? e.rexpr.FuncCall : null;
        if (call === null || (call.args?.length ?? 0) !== 1) throw invalidSql('SIMILAR TO ... ESCAPE is not supported');
        const not = op().startsWith('!') ? 'NOT ' : '';
        return this.patternCall('regex', 'SIMILAR TO', e.lexpr!, call.args![0]!, scope, (t, p) => `(${t} ${not}SIMILAR TO (${p}))`);
      }
      case 'AEXPR_BETWEEN': case 'AEXPR_NOT_BETWEEN': case 'AEXPR_BETWEEN_SYM': case 'AEXPR_NOT_BETWEEN_SYM': {
        const [lo, hi] = expect(e.rexpr, 'List').items ?? [];
        const not = e.kind.includes('NOT') ? 'NOT ' : '';
        const sym = e.kind.endsWith('_SYM') ? 'SYMMETRIC ' : '';
        if (sym !== '') throw invalidSql('BETWEEN SYMMETRIC is not supported');
        // The engine's parser turns `x BETWEEN a AND b` into two comparisons of x.
        return `((${this.copiedArg('BETWEEN', e.lexpr!, 2, scope)}) ${not}BETWEEN (${this.expr(lo!, scope)}) AND (${this.expr(hi!, scope)}))`;
      }
      default: throw invalidSql(`Operator kind ${e.kind} is not supported`);
    }
  }

  /**
   * `x LIKE p ESCAPE e` parses as LIKE over pg_catalog.like_escape(p, e). The engine's like_escape
   * backtracks like its LIKE (see likeCall), so a literal pattern and escape character become one
   * RE2 expression here; anything else is refused.
   */
  private like(e: A_Expr, scope: Scope): string {
    const negated = operatorName(e.name).startsWith('!');
    const ilike = e.kind === 'AEXPR_ILIKE';
    const escape = e.rexpr && 'FuncCall' in e.rexpr && functionName(e.rexpr.FuncCall) === 'like_escape' ? e.rexpr.FuncCall : null;
    if (escape !== null) {
      const [pattern, esc] = escape.args ?? [];
      const text = pattern === undefined ? undefined : stringLiteral(pattern);
      const escapeChar = esc === undefined ? undefined : stringLiteral(esc);
      if (text === undefined || escapeChar === undefined || [...escapeChar].length > 1) {
        throw invalidSql('LIKE ... ESCAPE needs a string literal pattern and a one-character escape string');
      }
      return this.likeLiteral(e.lexpr!, text, escapeChar, ilike, negated, scope);
    }
    const literal = stringLiteral(e.rexpr!);
    if (literal !== undefined) return this.likeLiteral(e.lexpr!, literal, '', ilike, negated, scope);
    // A pattern computed or passed in: checked around the engine macro, which keeps its RE2 expression
    // a constant when the pattern is one (a parameter: compiled once, not per row).
    const call = this.patternCall('regex', ilike ? 'ILIKE' : 'LIKE', e.lexpr!, e.rexpr!, scope, (t, p) => likeCall(t, p, ilike, false), [], false, [], false);
    return negated ? `(NOT ${call})` : call;
  }

  /**
   * LIKE with a literal pattern, matched the cheapest way that gives the same answer: `'%text%'`
   * as a substring search, `'text%'` and `'%text'` as prefix and suffix tests, anything else as one
   * RE2 expression built here. Long patterns are checked like any other (patternCall).
   */
  private likeLiteral(value: Node, pattern: string, escapeChar: string, ilike: boolean, negated: boolean, scope: Scope): string {
    const not = (sql: string): string => (negated ? `(NOT ${sql})` : sql);
    const inner = /^(%*)([^%_]*)(%*)$/.exec(pattern);
    if (!ilike && inner !== null && (escapeChar === '' || !pattern.includes(escapeChar)) && inner[2] !== '') {
      const [, lead, text, trail] = inner as unknown as [string, string, string, string];
      const needle = constNode(text);
      if (lead !== '' && trail !== '') {
        return not(this.patternCall('search', 'LIKE', value, needle, scope, (t, p) => `contains(CAST((${t}) AS VARCHAR), ${p})`));
      }
      const v = `CAST((${this.expr(value, scope)}) AS VARCHAR)`;
      if (lead === '' && trail === '') return not(`(${v} = ${quoteString(text)})`);
      return not(`${lead === '' ? 'starts_with' : 'ends_with'}(${v}, ${quoteString(text)})`);
    }
    const regex = constNode(likeRegex(pattern, escapeChar, ilike));
    return not(this.patternCall('regex', ilike ? 'ILIKE' : 'LIKE', value, regex, scope, (t, p) => `regexp_full_match(CAST((${t}) AS VARCHAR), ${p})`));
  }

  /**
   * A call that looks for a pattern in a text (PATTERN_FUNCTIONS, LIKE, `~`, SIMILAR TO). One value
   * costs up to text bytes × pattern bytes inside one vector, where no stop reaches, so a pattern
   * longer than PATTERN_FREE_BYTES is checked against that product (patternPairsMax, per row) before
   * the engine searches. A literal pattern's cost is known here (an expression's with its counted
   * repetitions written out: regexCostBytes); a column or parameter is cheap to name twice (check and
   * call); anything else goes through a one-element list so that each argument is named once.
   * `build` writes the call; `rest` are its arguments after the pattern. `anyType`: the function also
   * takes lists, maps and structs (contains), which are never checked. `copies`: what an engine macro
   * among them copies (split_part). `countedRepeats`: false for LIKE, whose braces are literal.
   */
  private patternCall(
    kind: PatternKind, name: string, textNode: Node, patternNode: Node, scope: Scope,
    build: (text: string, pattern: string, rest: readonly string[]) => string, rest: readonly Node[] = [], anyType = false,
    copies: readonly number[] = [], countedRepeats = kind === 'regex',
  ): string {
    const literal = stringLiteral(patternNode);
    const free = PATTERN_FREE_BYTES[kind];
    // An engine macro among them (split_part) copies its arguments: counted as for any call.
    const t = this.copiedArg(name, textNode, copies[0] ?? 1, scope);
    const p = this.copiedArg(name, patternNode, copies[1] ?? 1, scope);
    const restSql = rest.map((r, i) => this.copiedArg(name, r, copies[i + 2] ?? 1, scope));
    // An expression's cost counts its repetitions written out; a LIKE pattern has none (its braces are literal).
    const literalBytes = literal === undefined ? null : countedRepeats ? regexCostBytes(literal) : Buffer.byteLength(literal, 'utf8');
    if (literalBytes !== null && literalBytes <= free) return build(t, p, restSql);
    if (this.lambdaDepth > 0) {
      throw invalidSql(`${name} inside a lambda (x -> ...) needs its pattern as a string literal of at most ${free} bytes: it runs once per list element`);
    }
    // Per row always: the check keeps the engine from folding even a call over constants to one value.
    const max = patternPairsMax(kind, this.ctx.generatedValuesMax);
    const bytes = (x: string): string => `strlen(CAST((${x}) AS VARCHAR))`;
    // A pattern the binder cannot read: any counted repetition may write a part out REGEX_REPEAT_MAX times.
    const cost = (x: string): string => (countedRepeats ? `(${bytes(x)} * CASE WHEN contains(CAST((${x}) AS VARCHAR), '{') THEN ${REGEX_REPEAT_MAX} ELSE 1 END)` : bytes(x));
    const body = (tx: string, px: string, rx: readonly string[]): string => {
      const check = literalBytes !== null
        ? `${bytes(tx)} > ${Math.floor(max / literalBytes)}`
        : `${cost(px)} > ${free} AND ${bytes(tx)} * ${cost(px)} > ${max}`;
      const call = build(tx, px, rx);
      const guarded = `CASE WHEN ${check} THEN error(${quoteString(patternRefusal(kind, max))}) ELSE ${call} END`;
      // contains() also takes lists, maps and structs (linear): only texts are checked (JSON included).
      if (!anyType) return `(${guarded})`;
      const type = `typeof(${tx})`;
      return `(CASE WHEN ends_with(${type}, ']') OR starts_with(${type}, 'MAP(') OR starts_with(${type}, 'STRUCT(') THEN ${call} ELSE ${guarded} END)`;
    };
    if (isLeaf(textNode) && isLeaf(patternNode)) return body(t, p, restSql);
    const fields = [`'s': ${t}`];
    if (literal === undefined) fields.push(`'p': ${p}`);
    const restRefs = rest.map((r, i) => {
      if (isConstantNode(r)) return restSql[i]!;
      fields.push(`'a${i}': ${restSql[i]}`);
      return `kalam_g.a${i}`;
    });
    return `list_transform([{${fields.join(', ')}}], kalam_g -> ${body('kalam_g.s', literal === undefined ? 'kalam_g.p' : p, restRefs)})[1]`;
  }

  private funcCall(f: FuncCall, scope: Scope): string {
    if (f.func_variadic) throw invalidSql('VARIADIC arguments are not supported');
    const name = functionName(f);
    if (isUpstreamJsonCall(name, f) && f.args?.length && !f.agg_star && !f.over) {
      const json = this.copiedArg(name, f.args[0]!, upstreamJsonCopies(name), scope);
      return upstreamJsonCall(name, `(${json})`, f.args.slice(1));
    }
    if (!isAllowedFunction(name)) throw denied(`Permission denied: function '${name}' is not available`);
    let engineName = FUNCTION_RENAMES.get(name) ?? name;
    if (AMPLIFYING_MACROS.has(engineName)) engineName = this.amplifying(name, engineName, f.args ?? []);
    if (engineName === 'strftime') checkStrftimeFormat(f.args ?? []);
    const patternKind = PATTERN_FUNCTIONS.get(engineName);
    if (patternKind !== undefined && f.args !== undefined && f.args.length >= 2 && !f.over && !f.agg_filter) {
      const [text, pattern, ...rest] = f.args as [Node, Node, ...Node[]];
      const call = (t: string, p: string, r: readonly string[]): string => `${engineName}(${[t, p, ...r].join(', ')})`;
      return this.patternCall(patternKind, name, text, pattern, scope, call, rest, engineName === 'contains', ENGINE_MACRO_COPIES.get(engineName));
    }
    let args: string;
    if (f.agg_star) args = '*';
    else {
      const copies = ENGINE_MACRO_COPIES.get(engineName);
      const list = (f.args ?? []).map((a, i) => this.copiedArg(name, a, copies?.[i] ?? 1, scope));
      // extract(field FROM x) arrives as extract('field', x): the field is a literal either way.
      args = `${f.agg_distinct ? 'DISTINCT ' : ''}${list.join(', ')}`;
    }
    const order = f.agg_order?.length ? ` ORDER BY ${f.agg_order.map((n) => this.sortBy(expect(n, 'SortBy'), scope)).join(', ')}` : '';
    let sql: string;
    if (f.agg_within_group) sql = `${engineName}(${args}) WITHIN GROUP (${order.trim()})`;
    else sql = `${engineName}(${args}${order})`;
    if (f.agg_filter) sql += ` FILTER (WHERE ${this.filter(f.agg_filter, scope)})`;
    if (f.over) sql += ` OVER ${f.over.name !== undefined && !hasWindowSpec(f.over) ? quoteIdent(f.over.name) : `(${this.windowSpec(f.over, scope)})`}`;
    return sql;
  }

  /** NULLIF(a, b): the engine's macro, which names `a` twice. */
  private nullIf(a: Node, b: Node, scope: Scope): string {
    const copies = ENGINE_MACRO_COPIES.get('nullif')!;
    return `nullif(${this.copiedArg('nullif', a, copies[0]!, scope)}, ${this.copiedArg('nullif', b, copies[1]!, scope)})`;
  }

  /**
   * An argument bound for a construct that puts it `copies` times into the engine's expression tree:
   * a macro of the engine's that names the parameter more than once, an upstream JSON function as
   * written here, a simple CASE's operand (once per WHEN), BETWEEN's operand. The engine makes those
   * copies while parsing and binding, where no stop reaches, so nesting such constructs grows the
   * work exponentially. Two bounds, both checked here before anything reaches the engine:
   * - inside an argument that is already copied, the copies multiply: their product may not pass
   *   COPY_FACTOR_MAX (a construct alone may copy a plain operand any number of times: a CASE with
   *   a thousand WHENs over a column is linear);
   * - the text the copies add (an argument's length with the copies inside it; a column, constant or
   *   parameter costs nothing to copy) may not pass ENGINE_COPIES_CHARS_MAX per statement.
   */
  private copiedArg(name: string, arg: Node, copies: number, scope: Scope): string {
    if (copies <= 1) return this.expr(arg, scope);
    const outerFactor = this.copyFactor;
    if (outerFactor > 1 && outerFactor * copies > COPY_FACTOR_MAX) {
      throw invalidSql(`${name} copies its argument, inside another call that copies it: the engine would make more than ${COPY_FACTOR_MAX} copies; do not nest such calls deeply`);
    }
    const before = this.copiedChars;
    this.copyFactor = outerFactor * copies;
    let sql: string;
    try {
      sql = this.expr(arg, scope);
    } finally {
      this.copyFactor = outerFactor;
    }
    const weight = (isLeaf(arg) ? 0 : sql.length) + (this.copiedChars - before);
    this.addCopiedChars(name, (copies - 1) * weight);
    return sql;
  }

  private addCopiedChars(name: string, chars: number): void {
    this.copiedChars += chars;
    if (this.copiedChars > ENGINE_COPIES_CHARS_MAX) {
      throw invalidSql(`The statement grows past ${ENGINE_COPIES_CHARS_MAX} characters once ${name} copies its arguments (it names one more than once): do not nest such calls deeply`);
    }
  }

  /**
   * A guarded call (a size-amplifying one: repeat, lpad, range, replace, ...; or a quadratic string
   * distance: levenshtein, ...): the macro variant for it. Every value the engine computes for a
   * 2,048-row vector exists at once (and all its time is spent) before a query can be stopped, so the
   * per-call cap (`generated_values_max`) is only for a call the engine evaluates once and uses as it
   * is (literal arguments, nothing computed per row around it); the rest get the per-row cap. A
   * lambda's body multiplies a call by the list's length, and each call adds its cap to what one row
   * may hold: neither is left open.
   */
  private amplifying(name: string, engineName: string, args: readonly Node[]): string {
    if (this.lambdaDepth > 0) throw invalidSql(`${name}() is not allowed inside a lambda (x -> ...): it would run once per list element`);
    if (++this.amplifyingCalls > AMPLIFYING_CALLS_MAX) {
      throw invalidSql(`A statement may call size-amplifying and quadratic functions (${AMPLIFYING_FUNCTIONS.join(', ')}) at most ${AMPLIFYING_CALLS_MAX} times`);
    }
    if (engineName === 'kalam_regexp_replace' && args.length === 4 && stringLiteral(args[3]!) === undefined) {
      throw invalidSql('regexp_replace options must be a string literal');
    }
    // The per-call cap only for a value computed once and used as it is: `repeat('a', 10000000) || x`
    // would copy it into every row of a 2,048-row vector (an attack review reached 3.1 GB with 300 rows).
    return this.perRowDepth === 0 && args.every((a) => isConstantNode(a)) ? engineName : `${engineName}_row`;
  }

  private windowSpec(w: WindowDef, scope: Scope): string {
    const parts: string[] = [];
    if (w.refname !== undefined) parts.push(quoteIdent(w.refname));
    if (w.partitionClause?.length) parts.push(`PARTITION BY ${this.list(w.partitionClause, scope)}`);
    if (w.orderClause?.length) parts.push(`ORDER BY ${w.orderClause.map((n) => this.sortBy(expect(n, 'SortBy'), scope)).join(', ')}`);
    const frame = this.frame(w, scope);
    if (frame !== '') parts.push(frame);
    return parts.join(' ');
  }

  /** The frame clause from PostgreSQL's FRAMEOPTION_* bits (parsenodes.h). */
  private frame(w: WindowDef, scope: Scope): string {
    const o = w.frameOptions ?? 0;
    if ((o & 0x1) === 0) return '';
    const mode = o & 0x2 ? 'RANGE' : o & 0x4 ? 'ROWS' : o & 0x8 ? 'GROUPS' : null;
    if (mode === null) throw invalidSql('Unsupported window frame');
    const bound = (unboundedPreceding: number, unboundedFollowing: number, current: number, offsetPreceding: number, offsetFollowing: number, offset: Node | undefined): string => {
      if (o & unboundedPreceding) return 'UNBOUNDED PRECEDING';
      if (o & unboundedFollowing) return 'UNBOUNDED FOLLOWING';
      if (o & current) return 'CURRENT ROW';
      if (o & offsetPreceding) return `${this.expr(offset!, scope)} PRECEDING`;
      if (o & offsetFollowing) return `${this.expr(offset!, scope)} FOLLOWING`;
      throw invalidSql('Unsupported window frame bound');
    };
    const start = bound(0x20, 0x80, 0x200, 0x800, 0x2000, w.startOffset);
    let sql = o & 0x10 ? `${mode} BETWEEN ${start} AND ${bound(0x40, 0x100, 0x400, 0x1000, 0x4000, w.endOffset)}` : `${mode} ${start}`;
    if (o & 0x8000) sql += ' EXCLUDE CURRENT ROW';
    else if (o & 0x10000) sql += ' EXCLUDE GROUP';
    else if (o & 0x20000) sql += ' EXCLUDE TIES';
    return sql;
  }

  private sortBy(s: SortBy, scope: Scope): string {
    if (s.sortby_dir === 'SORTBY_USING') throw invalidSql('ORDER BY ... USING is not supported');
    const dir = s.sortby_dir === 'SORTBY_DESC' ? ' DESC' : s.sortby_dir === 'SORTBY_ASC' ? ' ASC' : '';
    // PostgreSQL's default: NULLS LAST ascending, NULLS FIRST descending; the engine agrees when told.
    const nulls = s.sortby_nulls === 'SORTBY_NULLS_FIRST' ? ' NULLS FIRST' : s.sortby_nulls === 'SORTBY_NULLS_LAST' ? ' NULLS LAST'
      : s.sortby_dir === 'SORTBY_DESC' ? ' NULLS FIRST' : ' NULLS LAST';
    return `${this.expr(s.node!, scope)}${dir}${nulls}`;
  }

  private typeCast(c: TypeCast, scope: Scope): string {
    return `CAST((${this.expr(c.arg!, scope)}) AS ${castType(c.typeName!)})`;
  }

  private caseExpr(c: CaseExpr, scope: Scope): string {
    // A simple CASE's operand: the engine's parser copies it into each WHEN's comparison.
    const arg = c.arg ? ` ${this.copiedArg('CASE', c.arg, (c.args ?? []).length, scope)}` : '';
    const whens = (c.args ?? []).map((n) => {
      const w = expect(n, 'CaseWhen');
      return ` WHEN ${this.expr(w.expr!, scope)} THEN ${this.expr(w.result!, scope)}`;
    }).join('');
    const otherwise = c.defresult ? ` ELSE ${this.expr(c.defresult, scope)}` : '';
    return `(CASE${arg}${whens}${otherwise} END)`;
  }

  private subLink(s: SubLink, scope: Scope): string {
    const query = `(${this.select(expect(s.subselect, 'SelectStmt'), scope)})`;
    switch (s.subLinkType) {
      case 'EXISTS_SUBLINK': return `(EXISTS ${query})`;
      case 'EXPR_SUBLINK': return query;
      case 'ARRAY_SUBLINK': return `ARRAY${query}`;
      case 'ANY_SUBLINK': case 'ALL_SUBLINK': {
        const test = `(${this.expr(s.testexpr!, scope)})`;
        if (!s.operName?.length) return `(${test} ${s.subLinkType === 'ANY_SUBLINK' ? 'IN' : 'NOT IN'} ${query})`;
        return `(${test} ${operatorName(s.operName)} ${s.subLinkType === 'ANY_SUBLINK' ? 'ANY' : 'ALL'} ${query})`;
      }
      default: throw invalidSql(`Subquery form ${s.subLinkType} is not supported`);
    }
  }

  private indirection(i: A_Indirection, scope: Scope): string {
    let sql = `(${this.expr(i.arg!, scope)})`;
    for (const step of i.indirection ?? []) {
      if ('A_Indices' in step) {
        const idx = step.A_Indices;
        if (idx.is_slice) sql += `[${idx.lidx ? this.expr(idx.lidx, scope) : ''}:${idx.uidx ? this.expr(idx.uidx, scope) : ''}]`;
        else sql += `[${this.expr(idx.uidx!, scope)}]`;
      } else if ('String' in step) sql += `.${quoteIdent(stringOf(step))}`;
      else throw unsupported(step, 'in an indirection');
    }
    return sql;
  }

  private valueFunction(op: string): string {
    // CURRENT_USER and friends are the statement's principal, as a literal (the engine has no users).
    if (USER_FUNCTIONS.has(op)) return quoteString(this.ctx.principal.userId);
    switch (op) {
      case 'SVFOP_CURRENT_DATE': return 'current_date';
      case 'SVFOP_CURRENT_TIMESTAMP': case 'SVFOP_CURRENT_TIMESTAMP_N': return 'current_timestamp';
      case 'SVFOP_LOCALTIMESTAMP': case 'SVFOP_LOCALTIMESTAMP_N': return 'current_localtimestamp()';
      case 'SVFOP_CURRENT_TIME': case 'SVFOP_CURRENT_TIME_N': case 'SVFOP_LOCALTIME': case 'SVFOP_LOCALTIME_N': return 'current_localtime()';
      default: throw invalidSql(`${op.replace('SVFOP_', '')} is not supported`);
    }
  }

  private groupingSet(kind: string, content: readonly Node[], scope: Scope): string {
    switch (kind) {
      case 'GROUPING_SET_EMPTY': return '()';
      case 'GROUPING_SET_ROLLUP': return `ROLLUP (${this.list(content, scope)})`;
      case 'GROUPING_SET_CUBE': return `CUBE (${this.list(content, scope)})`;
      case 'GROUPING_SET_SETS': return `GROUPING SETS (${this.list(content, scope)})`;
      default: return `(${this.list(content, scope)})`;
    }
  }
}

// Helpers ---------------------------------------------------------------------------------------

type NodeOf<K extends string> = Extract<Node, Record<K, unknown>> extends infer N ? N extends Record<K, infer V> ? V : never : never;

/** The payload of a node of the given kind, or a refusal naming what was found instead. */
function expect<K extends string>(node: Node | undefined, kind: K): NodeOf<K> {
  if (node !== undefined && node !== null && kind in node) return (node as Record<K, NodeOf<K>>)[kind];
  throw invalidSql(`Expected ${kind}, found ${node ? Object.keys(node)[0] : 'nothing'}`);
}

function unsupported(node: Node, where: string): Error {
  return invalidSql(`${Object.keys(node)[0]} is not supported ${where}`);
}

function requireName(name: string | undefined): string {
  if (name === undefined || name.length === 0) throw invalidSql('Missing name');
  return name;
}

function stringOf(node: Node): string {
  if ('String' in node && typeof node.String.sval === 'string') return node.String.sval;
  throw invalidSql(`Expected a name, found ${Object.keys(node)[0]}`);
}

function columnAliases(alias: Alias | undefined): string {
  if (!alias?.colnames?.length) return '';
  return `(${alias.colnames.map((n) => quoteIdent(stringOf(n))).join(', ')})`;
}

/** A function's name, lower case, without PostgreSQL's `pg_catalog.` (other schemas are refused). */
export function functionName(f: FuncCall): string {
  const parts = (f.funcname ?? []).map(stringOf);
  if (parts.length === 2 && parts[0] === 'pg_catalog') parts.shift();
  if (parts.length !== 1) throw denied(`Permission denied: schema-qualified function '${parts.join('.')}' is not available`);
  const name = parts[0]!.toLowerCase();
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw denied(`Permission denied: function '${name}' is not available`);
  return name;
}

function operatorName(name: Node[] | undefined): string {
  const parts = (name ?? []).map(stringOf);
  if (parts.length === 2 && parts[0] === 'pg_catalog') parts.shift();
  const op = parts.length === 1 ? parts[0]! : '';
  // Operator characters only, and nothing that could open a comment in the emitted text.
  if (!OPERATOR.test(op) || /--|\/\*|\*\//.test(op)) throw invalidSql(`Operator '${parts.join('.')}' is not supported`);
  return op;
}

function constant(c: A_Const): string {
  if (c.isnull) return 'NULL';
  if (c.sval !== undefined) return quoteString(c.sval.sval ?? '');
  if (c.ival !== undefined) return String(c.ival.ival ?? 0);
  if (c.fval !== undefined) {
    const text = c.fval.fval ?? '0';
    if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw invalidSql(`Invalid numeric literal '${text}'`);
    return text;
  }
  if (c.boolval !== undefined) return c.boolval.boolval ? 'TRUE' : 'FALSE';
  if (c.bsval !== undefined) throw invalidSql('Bit-string literals are not supported');
  throw invalidSql('Unsupported constant');
}

const LIKE_OPERATORS: ReadonlySet<string> = new Set(['~~', '~~*', '!~~', '!~~*']);

/** A LIKE pattern with an escape character ('' for none) as an RE2 expression matching the whole value. */
function likeRegex(pattern: string, escapeChar: string, ilike: boolean): string {
  let out = ilike ? '(?si)' : '(?s)';
  let escaped = false;
  for (const ch of pattern) {
    if (!escaped && escapeChar !== '' && ch === escapeChar) escaped = true;
    else if (!escaped && ch === '%') out += '.*';
    else if (!escaped && ch === '_') out += '.';
    else {
      out += ch.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
      escaped = false;
    }
  }
  if (escaped) throw invalidSql('LIKE pattern must not end with the escape character');
  return out;
}

/** `value [NOT] LIKE/ILIKE pattern` through the engine macros that match with RE2 (engine-names.ts, likeMacros). */
function likeCall(value: string, pattern: string, ilike: boolean, negated: boolean): string {
  const call = `${ilike ? LIKE_MACROS.ilike : LIKE_MACROS.like}(${value}, ${pattern})`;
  return negated ? `(NOT ${call})` : call;
}

/**
 * strftime takes its arguments in either order, and the engine needs the format to be a constant: it
 * must be a string literal here (not a parameter or an expression), of at most STRFTIME_FORMAT_CHARS_MAX
 * characters, so what a row's output may grow to is known.
 */
function checkStrftimeFormat(args: readonly Node[]): void {
  const formats = args.map(stringLiteral).filter((f): f is string => f !== undefined);
  if (formats.length === 0) throw invalidSql('strftime needs its format as a string literal');
  if (formats.some((f) => f.length > STRFTIME_FORMAT_CHARS_MAX)) {
    throw invalidSql(`A strftime format may be at most ${STRFTIME_FORMAT_CHARS_MAX} characters long`);
  }
}

/** Guarded calls one statement may make (each may add its cap to a row). */
const AMPLIFYING_CALLS_MAX = 16;

/**
 * An expression the engine computes once for the whole statement: literals, casts, operators, and
 * calls of row-independent, non-aggregate functions over such expressions.
 */
function isFoldable(node: Node): boolean {
  return isConstantNode(node, true);
}

/**
 * A literal, or casts and operators over literals only: the engine folds it to one value. With
 * `calls`, also calls of row-independent, non-aggregate functions over such expressions.
 */
/** The text of a string literal, or undefined. */
function stringLiteral(node: Node): string | undefined {
  return 'A_Const' in node ? node.A_Const.sval?.sval ?? (node.A_Const.sval !== undefined ? '' : undefined) : undefined;
}

/** A string literal node, for patterns built here. */
function constNode(text: string): Node {
  return { A_Const: { sval: { sval: text } } } as Node;
}

/** A column, constant or parameter: copying it costs the engine next to nothing. */
function isLeaf(node: Node): boolean {
  if ('TypeCast' in node) return node.TypeCast.arg !== undefined && 'A_Const' in node.TypeCast.arg;
  return 'A_Const' in node || 'ColumnRef' in node || 'ParamRef' in node;
}

function isConstantNode(node: Node, calls = false): boolean {
  const constant = (n: Node): boolean => isConstantNode(n, calls);
  if ('A_Const' in node) return true;
  if ('TypeCast' in node) return node.TypeCast.arg !== undefined && constant(node.TypeCast.arg);
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_OP') {
    const e = node.A_Expr;
    return e.rexpr !== undefined && constant(e.rexpr) && (e.lexpr === undefined || constant(e.lexpr));
  }
  if (calls && 'FuncCall' in node) {
    const f = node.FuncCall;
    if (f.agg_star || f.agg_distinct || f.over || f.agg_filter || f.agg_order?.length) return false;
    const name = functionName(f);
    const engineName = FUNCTION_RENAMES.get(name) ?? name;
    if (AGGREGATE_FUNCTIONS.has(engineName) || VOLATILE_FUNCTIONS.has(engineName)) return false;
    return (f.args ?? []).every(constant);
  }
  return false;
}

function integerConstant(node: Node): bigint | null {
  if ('A_Const' in node) {
    if (node.A_Const.ival !== undefined) return BigInt(node.A_Const.ival.ival ?? 0);
    if (node.A_Const.fval !== undefined && /^-?\d+$/.test(node.A_Const.fval.fval ?? '')) return BigInt(node.A_Const.fval.fval!);
    return null;
  }
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_OP' && node.A_Expr.lexpr === undefined && node.A_Expr.rexpr) {
    const v = integerConstant(node.A_Expr.rexpr);
    const op = operatorName(node.A_Expr.name);
    return v === null ? null : op === '-' ? -v : op === '+' ? v : null;
  }
  return null;
}

function castType(t: TypeName): string {
  if (t.setof || t.pct_type) throw invalidSql('Unsupported type form');
  const parts = (t.names ?? []).map(stringOf);
  if (parts.length === 2 && parts[0] === 'pg_catalog') parts.shift();
  const name = parts.length === 1 ? parts[0]!.toLowerCase() : '';
  const base = CAST_TYPES.get(name);
  if (base === undefined) throw invalidSql(`Type '${parts.join('.')}' is not supported`);
  let sql = base;
  const mods = (t.typmods ?? []).map((m) => integerConstant(m));
  if (base === 'DECIMAL' && mods.length > 0) {
    if (mods.some((m) => m === null) || mods.length > 2) throw invalidSql('DECIMAL takes (precision[, scale])');
    sql = `DECIMAL(${mods.join(', ')})`;
  } else if (mods.length > 0 && base !== 'VARCHAR' && base !== 'TIMESTAMP' && base !== 'TIMESTAMPTZ' && base !== 'TIME') {
    throw invalidSql(`Type modifiers are not supported for ${name}`);
  }
  for (let i = 0; i < (t.arrayBounds?.length ?? 0); i++) sql += '[]';
  return sql;
}

function hasWindowSpec(w: WindowDef): boolean {
  return (w.partitionClause?.length ?? 0) > 0 || (w.orderClause?.length ?? 0) > 0 || ((w.frameOptions ?? 0) & 0x1) !== 0 || w.refname !== undefined;
}

/**
 * The column name PostgreSQL gives an unnamed select-list expression, where the engine would name
 * it differently (its SQL text): functions by their name, casts by what they cast.
 */
/** The kinds of a statement's output columns: of its leftmost SELECT (a set operation takes its first arm's). */
function outputKinds(s: SelectStmt): OutputKind[] {
  let arm = s;
  while (arm.op !== undefined && arm.op !== 'SETOP_NONE' && arm.larg !== undefined) arm = arm.larg;
  if (arm.valuesLists) {
    const first = arm.valuesLists[0];
    const width = first !== undefined && 'List' in first ? (first.List.items ?? []).length : 0;
    return new Array<OutputKind>(width).fill('computed');
  }
  return (arm.targetList ?? []).map((t) => outputKind('ResTarget' in t ? t.ResTarget.val : undefined));
}

function outputKind(val: Node | undefined): OutputKind {
  if (val === undefined) return 'computed';
  if ('ColumnRef' in val) return (val.ColumnRef.fields ?? []).some((f) => 'A_Star' in f) ? 'star' : 'column';
  if ('TypeCast' in val) return 'column';
  if ('FuncCall' in val) return typePreserving(val.FuncCall) ? 'column' : 'computed';
  // A scalar subquery has its one column's type: `(SELECT max(id) FROM t)` is as typed as `max(id)`.
  if ('SubLink' in val && val.SubLink.subLinkType === 'EXPR_SUBLINK' && val.SubLink.subselect && 'SelectStmt' in val.SubLink.subselect) {
    const [kind] = outputKinds(val.SubLink.subselect.SelectStmt);
    return kind === 'column' ? 'column' : 'computed';
  }
  return 'computed';
}

/** Aggregates that return their argument's type (`max(int_col)` stays an Int upstream too), over a plain column. */
const TYPE_PRESERVING = new Set(['min', 'max', 'any_value', 'first', 'last', 'mode', 'arg_min', 'arg_max']);

function typePreserving(call: FuncCall): boolean {
  const name = call.funcname?.[call.funcname.length - 1];
  const arg = call.args?.[0];
  return name !== undefined && 'String' in name && TYPE_PRESERVING.has(name.String.sval!.toLowerCase())
    && arg !== undefined && 'ColumnRef' in arg;
}

function impliedName(node: Node): string | undefined {
  if ('FuncCall' in node) {
    const parts = node.FuncCall.funcname ?? [];
    const last = parts[parts.length - 1];
    return last !== undefined && 'String' in last ? last.String.sval : undefined;
  }
  if ('TypeCast' in node && node.TypeCast.arg) {
    const inner = node.TypeCast.arg;
    if ('ColumnRef' in inner) {
      const f = inner.ColumnRef.fields ?? [];
      const last = f[f.length - 1];
      return last !== undefined && 'String' in last ? last.String.sval : undefined;
    }
    return impliedName(inner);
  }
  if ('CoalesceExpr' in node) return 'coalesce';
  if ('CaseExpr' in node) return 'case';
  if ('SubLink' in node && node.SubLink.subLinkType === 'EXISTS_SUBLINK') return 'exists';
  return undefined;
}
