/**
 * Turns request SQL into Statements: splits, recognises the dialect's own statements (parsed by
 * hand from tokens) and hands standard SQL to PostgreSQL's parser (libpg-query). Results are cached
 * by SQL text; cached statements are frozen and never mutated by later stages.
 */
import { loadModule, parseSync } from 'libpg-query';
import { LimitError, ServerError, execError as execErrorOf, invalidSql } from '../util/errors.js';
import { ROLES, type ColumnSpec, type Role, type TableType } from '../catalog/types.js';
import { nestingDepth, splitStatements, type StatementText, type Token } from './lexer.js';
import { identifier, userId } from './names.js';
import type { AlterTableOp, OptionValue, PgNode, Statement, TableName } from './statement.js';
import { createTableFromPg, createTableRule } from './create-table.js';
import { preparePgText, restoreIdentifiers, type TokenRule } from './pg-text.js';
import { parseSimpleInsert } from './insert-fast.js';
import { parseAlterStorage, parseCheckStorage, parseCreateStorage, parseDropStorage } from './storage-statements.js';
import { scanLiteralInsert } from './insert-scan.js';
import { parseExportUserData, parseShowExport } from './export-statements.js';
import { parseBackupStatement } from './backup-parser.js';

/** Statements longer than this are not cached: long texts (generated queries, batches) are rarely repeated and hold big trees. */
const CACHED_SQL_LENGTH_MAX = 8 * 1024;

/** What one request may ask of the parser; every path that parses SQL (HTTP, WebSocket) is held to it. */
export interface ParseLimits {
  /** config.statementsPerRequestMax */
  readonly statementsMax: number;
  /** config.sqlNestingDepthMax: parentheses/brackets, counted on tokens before PostgreSQL's parser runs. */
  readonly nestingDepthMax: number;
  /** config.parseTreeDepthMax: JSON levels of the parse tree, checked before any recursive stage walks it. */
  /** config.sqlTokensMax: tokens of one statement (literal INSERTs are scanned without tokens). */
  readonly tokensMax: number;
  readonly treeDepthMax: number;
  /** config.subqueryDepthMax: subqueries inside subqueries (UNION arms do not nest). */
  readonly subqueryDepthMax: number;
}

let limits: ParseLimits | null = null;

/** Loads the WASM parser and fixes the limits (from the config) for the life of the process. */
export async function initParser(parseLimits: ParseLimits): Promise<void> {
  await loadModule();
  limits = Object.freeze({ ...parseLimits });
}

function parseLimits(): ParseLimits {
  if (limits === null) throw new Error('initParser() must run before SQL is parsed');
  return limits;
}

/** Bounded cache of parsed requests: most clients send the same statements over and over. */
export class ParseCache {
  private readonly entries = new Map<string, readonly Statement[]>();
  constructor(private readonly capacity: number) {}

  parse(sql: string): readonly Statement[] {
    const hit = this.entries.get(sql);
    if (hit) return hit;
    // A literal INSERT is not cached: its text is its data (the same text again is a rare retry), so
    // every entry would be one-off, and each held its rows until 2,048 statements later, long enough to
    // be promoted to the old generation: at 500 STREAM INSERTs of 100 events a second that was ~5 MB/s
    // of promotion, scavenges of 5-20 ms and the tail of workload 8 (decision 0020). The scanner that
    // read it is the cheap path anyway.
    const scanned = literalInsert(sql);
    if (scanned !== null) return Object.freeze([scanned]);
    const { statementsMax } = parseLimits();
    const texts = splitUserSql(sql);
    // Refused before anything is parsed: the cost of a request grows with its statement count.
    if (texts.length > statementsMax) {
      throw new LimitError('PAYLOAD_TOO_LARGE', 'statements_per_request_max',
        `Too many statements: ${texts.length} (limit ${statementsMax}, statements_per_request_max)`);
    }
    return this.remember(sql, texts.map((text, i) => {
      try {
        return parseStatement(text);
      } catch (error) {
        if (texts.length > 1 && error instanceof ServerError) throw error.withMessage(`Statement ${i + 1} failed: ${error.message}`);
        throw error;
      }
    }));
  }

  private remember(sql: string, statements: Statement[]): readonly Statement[] {
    const parsed = Object.freeze(statements);
    if (sql.length > CACHED_SQL_LENGTH_MAX) return parsed;
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    // Cached trees are shared by every later request: freezing them catches any stage that mutates.
    this.entries.set(sql, deepFreeze(parsed));
    return parsed;
  }
}

/** Splits a user's SQL text into statements, refusing one longer than sql_tokens_max as the lexer reaches it. */
export function splitUserSql(sql: string): StatementText[] {
  return splitStatements(sql, parseLimits().tokensMax);
}

/** A literal multi-row INSERT read straight from the text (no tokens, no tree per value), or null. */
function literalInsert(sql: string): Statement | null {
  // Only INSERTs: anything else skips the scanner after one character.
  let i = 0;
  while (i < sql.length && sql.charCodeAt(i) <= 32) i++;
  const c = sql.charCodeAt(i);
  // The scanner's statements nest one level (a VALUES row); a limit below that is left to the token path.
  if ((c !== 73 && c !== 105) || parseLimits().nestingDepthMax < 1) return null;
  const scanned = scanLiteralInsert(sql);
  return scanned === null ? null : { kind: 'insert', ast: scanned.ast, paramCount: 0, rows: scanned.rows };
}

export function parseStatement(stmt: StatementText): Statement {
  const { nestingDepthMax } = parseLimits();
  const depth = nestingDepth(stmt.tokens);
  if (depth > nestingDepthMax) {
    throw new LimitError('INVALID_SQL', 'sql_nesting_depth_max',
      `Statement is nested too deeply: ${depth} levels of parentheses (limit ${nestingDepthMax}, sql_nesting_depth_max)`);
  }
  const c = new Cursor(stmt);
  const w0 = c.peekWord(0);
  const w1 = c.peekWord(1);
  switch (w0) {
    case 'CREATE':
      if (w1 === 'NAMESPACE' || w1 === 'SCHEMA') return parseCreateNamespace(c);
      if (w1 === 'USER' && c.peekWord(2) !== 'TABLE') return parseCreateUser(c);
      if (w1 === 'TOPIC') return parseCreateTopic(c);
      if (w1 === 'STORAGE') return parseCreateStorage(c);
      return parseCreateTable(stmt, c);
    case 'DROP':
      if (w1 === 'NAMESPACE' || w1 === 'SCHEMA') return parseDropNamespace(c);
      // DROP USER|SHARED|STREAM TABLE ns.t: upstream's typed spelling of DROP TABLE.
      if ((w1 === 'USER' || w1 === 'SHARED' || w1 === 'STREAM') && c.peekWord(2) === 'TABLE') return parseDropTable(c);
      if (w1 === 'USER') return parseDropUser(c);
      if (w1 === 'TOPIC') return parseDropTopic(c);
      if (w1 === 'STORAGE') return parseDropStorage(c);
      if (w1 === 'TABLE') return parseDropTable(c);
      break;
    case 'ALTER':
      if (w1 === 'USER') return parseAlterUser(c);
      if (w1 === 'TABLE') return parseAlterTable(stmt, c);
      if (w1 === 'TOPIC') return parseAlterTopic(stmt, c);
      if (w1 === 'STORAGE') return parseAlterStorage(c);
      break;
    case 'GRANT': case 'REVOKE':
      return parseGrant(c);
    case 'SHOW':
      if (w1 === 'EXPORT') return parseShowExport(stmt);
      if (w1 === 'BACKUP') return parseBackupStatement(stmt);
      return parseShow(c);
    case 'EXPORT':
      return parseExportUserData(stmt);
    case 'BACKUP': case 'RESTORE':
      return parseBackupStatement(stmt);
    case 'DESCRIBE': case 'DESC':
      return parseDescribe(c);
    case 'EXECUTE':
      return parseExecuteAs(stmt, c);
    case 'STORAGE': case 'FLUSH':
      // STORAGE CHECK <storage id> [EXTENDED] (a storage's health) vs STORAGE CHECK TABLE ns.t.
      if (w1 === 'CHECK' && c.peekWord(2) !== 'TABLE') return parseCheckStorage(c);
      return parseStorage(c);
    case 'USE':
      return parseUseNamespace(c);
    case 'SET':
      if (w1 === 'NAMESPACE') return parseUseNamespace(c);
      break;
    case 'KILL':
      if (w1 === 'JOB') return parseKillJob(c);
      if (w1 === 'LIVE') return parseKillLive(c);
      break;
    case 'SUBSCRIBE':
      return parseSubscribe(stmt, c);
    case 'CLEAR':
      if (w1 === 'TOPIC') return parseClearTopic(c);
      break;
    case 'CONSUME':
      return parseConsume(c);
    case 'ACK':
      return parseAck(c);
    case 'BEGIN': case 'START':
      return parseTransactionWord(c, 'begin');
    case 'COMMIT': case 'END':
      return parseTransactionWord(c, 'commit');
    case 'ROLLBACK': case 'ABORT':
      return parseTransactionWord(c, 'rollback');
    case 'SELECT': case 'WITH': case 'VALUES': case 'TABLE':
    case 'INSERT':
      return parseSimpleInsert(stmt) ?? parseSql(stmt);
    case 'UPDATE': case 'DELETE':
      return parseSql(stmt);
    default:
      if (stmt.tokens[0]?.value === '(') return parseSql(stmt);
  }
  const head = stmt.tokens.slice(0, 3).map((t) => t.value).join(' ');
  throw invalidSql(`Unsupported statement: '${head}'`);
}

// Standard SQL through PostgreSQL's parser ------------------------------------------------

const SQL_KINDS: Record<string, 'select' | 'insert' | 'update' | 'delete'> = {
  SelectStmt: 'select', InsertStmt: 'insert', UpdateStmt: 'update', DeleteStmt: 'delete',
};

function parseSql(stmt: StatementText): Statement {
  const ast = pgParseStatement(stmt);
  const [nodeType, node] = Object.entries(ast)[0] as [string, PgNode];
  const kind = SQL_KINDS[nodeType];
  if (kind === undefined) throw invalidSql(`Unsupported statement: ${nodeType.replace(/Stmt$/, '').toUpperCase()}`);
  return { kind, ast: node, paramCount: maxParamNumber(node) };
}

/** A statement through PostgreSQL's parser, identifiers past its length limit kept. */
function pgParseStatement(stmt: StatementText, extra?: TokenRule): PgNode {
  const prepared = preparePgText(stmt, extra);
  return restoreIdentifiers(pgParseOne(prepared.text), prepared.placeholders);
}

/** Parses exactly one statement with libpg-query; syntax errors name the position. */
export function pgParseOne(text: string): PgNode {
  let result: PgNode;
  try {
    result = parseSync(text);
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const where = details?.cursorPosition !== undefined ? ` at position ${details.cursorPosition + 1}` : '';
    throw invalidSql(`Syntax error${where}: ${(error as Error).message}`);
  }
  const stmts = result.stmts ?? [];
  if (stmts.length !== 1) throw invalidSql('Expected exactly one statement');
  checkTreeDepths(stmts[0].stmt, parseLimits());
  return stmts[0].stmt;
}

/**
 * Refuses a parse tree deeper than `treeDepthMax` levels, or with subqueries nested deeper than
 * `subqueryDepthMax`. DuckDB's planner takes about twice as long for every nested EXISTS or
 * scalar subquery past a dozen, without checking for interruption (24 levels: about a minute), so
 * that depth needs its own, much smaller cap. Iterative, so no input depth can overflow it.
 */
function checkTreeDepths(root: PgNode, limits: ParseLimits): void {
  const nodes: PgNode[] = [root];
  const depths: number[] = [1];
  // Queries on the path to a node, the statement's own included. A nested query is always wrapped as
  // {SelectStmt: …}; the arms of UNION/INTERSECT/EXCEPT (larg, rarg) are not, so they do not count.
  const queries: number[] = [0];
  while (nodes.length > 0) {
    const node = nodes.pop();
    const depth = depths.pop()!;
    const outer = queries.pop()!;
    if (depth > limits.treeDepthMax) {
      throw new LimitError('INVALID_SQL', 'parse_tree_depth_max',
        `Statement is nested too deeply: its parse tree is more than ${limits.treeDepthMax} levels deep (parse_tree_depth_max); `
        + 'long chains of UNION or of operators nest without parentheses');
    }
    for (const key in node) {
      const child = node[key];
      if (child === null || typeof child !== 'object') continue;
      const inner = key === 'SelectStmt' ? outer + 1 : outer;
      // The statement's own query is not a subquery.
      if (inner - 1 > limits.subqueryDepthMax) {
        throw new LimitError('INVALID_SQL', 'subquery_depth_max',
          `Statement nests subqueries more than ${limits.subqueryDepthMax} deep (subquery_depth_max)`);
      }
      nodes.push(child);
      depths.push(depth + 1);
      queries.push(inner);
    }
  }
}

function maxParamNumber(node: PgNode): number {
  let max = 0;
  const visit = (n: PgNode): void => {
    if (Array.isArray(n)) { for (const x of n) visit(x); return; }
    if (n === null || typeof n !== 'object') return;
    if (n.ParamRef) max = Math.max(max, n.ParamRef.number ?? 0);
    for (const key in n) visit(n[key]);
  };
  visit(node);
  return max;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key in value) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

// CREATE TABLE -----------------------------------------------------------------------------

function parseCreateTable(stmt: StatementText, c: Cursor): Statement {
  c.expectWord('CREATE');
  let tableType: TableType | null = null;
  const typeWord = c.peekWord(0);
  if (typeWord === 'USER' || typeWord === 'SHARED' || typeWord === 'STREAM') {
    tableType = typeWord;
    c.next();
  }
  if (c.peekWord(0) !== 'TABLE') throw invalidSql(`Unsupported statement: 'CREATE ${stmt.tokens[1]?.value ?? ''}'`);
  return createTableFromPg(pgParseStatement(stmt, createTableRule(tableType !== null ? 1 : -1)), tableType);
}

// Dialect statements ------------------------------------------------------------------------

function parseCreateNamespace(c: Cursor): Statement {
  c.expectWord('CREATE'); c.next();
  const ifNotExists = c.acceptWords('IF', 'NOT', 'EXISTS');
  const name = c.identifier('namespace name');
  c.end();
  return { kind: 'create_namespace', name, ifNotExists };
}

function parseDropNamespace(c: Cursor): Statement {
  c.expectWord('DROP'); c.next();
  const ifExists = c.acceptWords('IF', 'EXISTS');
  const name = c.identifier('namespace name');
  const cascade = c.acceptWords('CASCADE');
  if (!cascade) c.acceptWords('RESTRICT');
  c.end();
  return { kind: 'drop_namespace', name, ifExists, cascade };
}

/** USE <ns> | USE NAMESPACE <ns> | SET NAMESPACE <ns>: the default namespace for the rest of the request. */
function parseUseNamespace(c: Cursor): Statement {
  c.next();
  c.acceptWords('NAMESPACE');
  const name = c.identifier('namespace name');
  c.end();
  return { kind: 'use_namespace', name };
}

function parseDropTable(c: Cursor): Statement {
  c.expectWord('DROP');
  const typeWord = c.peekWord(0);
  const tableType = typeWord === 'USER' || typeWord === 'SHARED' || typeWord === 'STREAM' ? typeWord : undefined;
  if (tableType !== undefined) c.next();
  c.expectWord('TABLE');
  const ifExists = c.acceptWords('IF', 'EXISTS');
  const table = c.tableName();
  c.end();
  return { kind: 'drop_table', table, ifExists, ...(tableType !== undefined ? { tableType } : {}) };
}

function parseShow(c: Cursor): Statement {
  c.expectWord('SHOW');
  if (c.acceptWords('NAMESPACES') || c.acceptWords('SCHEMAS')) { c.end(); return { kind: 'show_namespaces' }; }
  if (c.acceptWords('STORAGES')) { c.end(); return { kind: 'show_storages' }; }
  if (c.acceptWords('TABLES')) {
    let namespace: string | null = null;
    if (c.acceptWords('IN') || c.acceptWords('FROM')) namespace = c.identifier('namespace name');
    c.end();
    return { kind: 'show_tables', namespace };
  }
  if (c.acceptWords('COLUMNS')) {
    // Upstream (DataFusion) spelling of DESCRIBE TABLE.
    if (!c.acceptWords('FROM')) c.expectWord('IN');
    const table = c.tableName();
    c.end();
    return { kind: 'describe_table', table };
  }
  throw invalidSql('Expected SHOW NAMESPACES, SHOW TABLES [IN namespace], SHOW STORAGES or SHOW COLUMNS FROM namespace.table');
}

function parseDescribe(c: Cursor): Statement {
  c.next();
  c.acceptWords('TABLE');
  const table = c.tableName();
  const history = c.acceptWords('HISTORY');
  c.end();
  return history ? { kind: 'describe_table', table, history } : { kind: 'describe_table', table };
}

function parseCreateUser(c: Cursor): Statement {
  c.expectWord('CREATE'); c.expectWord('USER');
  const id = userId(c.nameOrString('user name'));
  c.expectWord('WITH');
  c.expectWord('PASSWORD');
  const password = c.string('password');
  let role: Role = 'user';
  let email: string | null = null;
  while (!c.atEnd()) {
    if (c.acceptWords('ROLE')) role = parseRole(c.nameOrString('role'));
    else if (c.acceptWords('EMAIL')) email = c.string('email');
    else throw invalidSql(`Unexpected '${c.peek()?.value}' in CREATE USER: expected ROLE or EMAIL`);
  }
  return { kind: 'create_user', userId: id, password, role, email };
}

function parseAlterUser(c: Cursor): Statement {
  c.expectWord('ALTER'); c.expectWord('USER');
  const id = userId(c.nameOrString('user name'));
  c.expectWord('SET');
  let statement: Statement;
  if (c.acceptWords('PASSWORD')) {
    const value = c.string('password');
    const oldPassword = c.acceptWords('OLD', 'PASSWORD') ? c.string('old password') : undefined;
    statement = { kind: 'alter_user', userId: id, field: 'password', value, ...(oldPassword !== undefined ? { oldPassword } : {}) };
  }
  else if (c.acceptWords('ROLE')) statement = { kind: 'alter_user', userId: id, field: 'role', value: parseRole(c.nameOrString('role')) };
  else if (c.acceptWords('EMAIL')) statement = { kind: 'alter_user', userId: id, field: 'email', value: c.string('email') };
  else throw invalidSql("Expected ALTER USER name SET PASSWORD 'new' [OLD PASSWORD 'old'] | SET ROLE r | SET EMAIL 'e'");
  c.end();
  return statement;
}

function parseDropUser(c: Cursor): Statement {
  c.expectWord('DROP'); c.expectWord('USER');
  const ifExists = c.acceptWords('IF', 'EXISTS');
  const id = userId(c.nameOrString('user name'));
  c.end();
  return { kind: 'drop_user', userId: id, ifExists };
}

function parseExecuteAs(stmt: StatementText, c: Cursor): Statement {
  c.expectWord('EXECUTE'); c.expectWord('AS'); c.expectWord('USER');
  const id = userId(c.nameOrString('user name'));
  const open = c.next();
  const close = stmt.tokens[stmt.tokens.length - 1]!;
  if (open?.value !== '(' || close.value !== ')' || close === open) {
    throw invalidSql("EXECUTE AS USER expects one statement in parentheses: EXECUTE AS USER 'alice' (SELECT ...)");
  }
  const innerText = stmt.text.slice(open.end, close.start);
  const inner = splitStatements(innerText);
  if (inner.length !== 1) throw invalidSql('EXECUTE AS USER takes exactly one statement');
  const parsed = parseStatement(inner[0]!);
  if (parsed.kind === 'execute_as' || parsed.kind === 'use_namespace' || parsed.kind === 'begin' || parsed.kind === 'commit' || parsed.kind === 'rollback') {
    throw invalidSql(`EXECUTE AS USER cannot wrap ${parsed.kind.toUpperCase()}`);
  }
  return { kind: 'execute_as', userId: id, inner: parsed };
}

/** STORAGE <verb> TABLE ns.t statements. */
const STORAGE_TABLE_VERBS: Readonly<Record<string, 'compact_table' | 'check_table' | 'repair_table'>> = {
  COMPACT: 'compact_table', CHECK: 'check_table', REPAIR: 'repair_table',
};

function parseStorage(c: Cursor): Statement {
  const storage = c.acceptWords('STORAGE');
  if (c.acceptWords('FLUSH')) {
    if (c.acceptWords('TABLE')) {
      const table = c.tableName();
      c.end();
      return { kind: 'flush_table', table };
    }
    if (storage && c.acceptWords('ALL')) {
      const namespace = c.acceptWords('IN') ? (c.acceptWords('NAMESPACE'), c.identifier('namespace name')) : null;
      c.end();
      return { kind: 'flush_all', namespace };
    }
  } else if (storage && c.peekWord(0) === 'COMPACT' && c.peekWord(1) === 'ALL') {
    c.next(); c.next();
    const namespace = c.acceptWords('IN') ? (c.acceptWords('NAMESPACE'), c.identifier('namespace name')) : null;
    c.end();
    return { kind: 'compact_all', namespace };
  } else if (storage && STORAGE_TABLE_VERBS[c.peekWord(0) ?? ''] !== undefined) {
    const kind = STORAGE_TABLE_VERBS[c.peekWord(0)!]!;
    c.next();
    c.expectWord('TABLE');
    const table = c.tableName();
    c.end();
    return { kind, table };
  }
  throw invalidSql('Expected STORAGE FLUSH TABLE ns.t, FLUSH TABLE ns.t, STORAGE FLUSH ALL [IN ns], STORAGE COMPACT TABLE ns.t, STORAGE COMPACT ALL [IN ns], STORAGE CHECK TABLE ns.t or STORAGE REPAIR TABLE ns.t');
}

function parseKillJob(c: Cursor): Statement {
  c.expectWord('KILL'); c.expectWord('JOB');
  const jobId = c.nameOrString('job id');
  c.end();
  return { kind: 'kill_job', jobId };
}

/** Reserved system column names: ALTER TABLE refuses them with upstream's words. */
const SYSTEM_COLUMNS: ReadonlySet<string> = new Set(['_seq', '_deleted']);
const TABLE_OPTION_WORDS: ReadonlySet<string> = new Set(['FLUSH_POLICY', 'TTL_SECONDS', 'MAX_BUFFER', 'DELETED_RETENTION_HOURS']);

/**
 * ALTER TABLE ns.t <one operation>:
 * ADD [COLUMN] [IF NOT EXISTS] c TYPE [NOT NULL|NULL] [DEFAULT v] | DROP [COLUMN] [IF EXISTS] c |
 * RENAME COLUMN a TO b | MODIFY [COLUMN] c TYPE [NOT NULL|NULL] | ALTER [COLUMN] c SET NOT NULL |
 * DROP NOT NULL | SET DEFAULT v | DROP DEFAULT | TYPE t | SET ACCESS_LEVEL [=] level |
 * SET TBLPROPERTIES (k = v, ...) | SET FLUSH_POLICY [=] 'rows:N,interval:S' | SET TTL_SECONDS [=] n | SET MAX_BUFFER [=] n
 */
function parseAlterTable(stmt: StatementText, c: Cursor): Statement {
  c.expectWord('ALTER'); c.expectWord('TABLE');
  const table = c.tableName();
  const rest = (): string => {
    const t = c.peek();
    return t === undefined ? '' : stmt.text.slice(t.start).trim();
  };
  // Column position modifiers are MySQL's; upstream refuses them.
  const words = stmt.tokens.filter((t) => t.kind === 'word').map((t) => t.value);
  const tokens = stmt.tokens;
  const positional = (): void => {
    const last = tokens[tokens.length - 1];
    const beforeLast = tokens[tokens.length - 2];
    if ((last?.kind === 'word' && last.value === 'FIRST') || (beforeLast?.kind === 'word' && beforeLast.value === 'AFTER')) {
      throw invalidSql('Column position modifiers (FIRST/AFTER) are not supported');
    }
  };
  const w = c.peekWord(0);
  const column = (what = 'column name'): string => c.identifier(what);
  const op = ((): AlterTableOp => {
    if (w === 'ADD') {
      c.next();
      c.acceptWords('COLUMN');
      const ifNotExists = c.acceptWords('IF', 'NOT', 'EXISTS');
      positional();
      const name = c.peek();
      if (name !== undefined && SYSTEM_COLUMNS.has(name.value.toLowerCase())) {
        throw execErrorOf(`Cannot add column '${name.value.toLowerCase()}': reserved system column name`);
      }
      return { op: 'add', column: columnSpec(rest()), ifNotExists };
    }
    if (w === 'DROP') {
      c.next();
      c.acceptWords('COLUMN');
      const ifExists = c.acceptWords('IF', 'EXISTS');
      const name = column();
      if (SYSTEM_COLUMNS.has(name)) throw execErrorOf(`Cannot drop column '${name}': system column cannot be modified`);
      // RESTRICT: refused while a live subscription names the column; CASCADE (the default) ends those subscriptions.
      const restrict = !c.acceptWords('CASCADE') && c.acceptWords('RESTRICT');
      c.end();
      return { op: 'drop', column: name, ifExists, restrict };
    }
    if (w === 'RENAME') {
      c.next();
      if (!c.acceptWords('COLUMN')) throw invalidSql('Expected ALTER TABLE ns.t RENAME COLUMN a TO b (renaming a table is not supported)');
      const from = column();
      c.expectWord('TO');
      const to = column('new column name');
      const restrict = !c.acceptWords('CASCADE') && c.acceptWords('RESTRICT');
      c.end();
      if (SYSTEM_COLUMNS.has(from)) throw execErrorOf(`Cannot rename column '${from}': system column cannot be modified`);
      if (SYSTEM_COLUMNS.has(to)) throw execErrorOf(`Cannot rename column to '${to}': reserved system column name`);
      return { op: 'rename', column: from, newName: to, restrict };
    }
    if (w === 'MODIFY') {
      c.next();
      c.acceptWords('COLUMN');
      positional();
      const name = c.peek();
      if (name !== undefined && SYSTEM_COLUMNS.has(name.value.toLowerCase())) {
        throw execErrorOf(`Cannot modify column '${name.value.toLowerCase()}': system column cannot be altered`);
      }
      const text = rest();
      const spec = columnSpec(text);
      if (spec.default !== undefined || spec.primaryKey) throw invalidSql('MODIFY COLUMN takes a type and NOT NULL or NULL only (use ALTER COLUMN ... SET DEFAULT)');
      const tail = words.slice(-2).join(' ');
      const nullable = tail === 'NOT NULL' ? false : words[words.length - 1] === 'NULL' ? true : null;
      return { op: 'modify', column: spec, nullable };
    }
    if (w === 'ALTER') {
      c.next();
      c.acceptWords('COLUMN');
      const name = column();
      if (SYSTEM_COLUMNS.has(name)) throw execErrorOf(`Cannot modify column '${name}': system column cannot be altered`);
      let result: AlterTableOp;
      if (c.acceptWords('SET', 'NOT', 'NULL')) result = { op: 'set_not_null', column: name };
      else if (c.acceptWords('DROP', 'NOT', 'NULL')) result = { op: 'drop_not_null', column: name };
      else if (c.acceptWords('DROP', 'DEFAULT')) result = { op: 'drop_default', column: name };
      else if (c.acceptWords('SET', 'DEFAULT')) {
        const text = rest();
        if (text === '') throw invalidSql('Expected a value after SET DEFAULT');
        const select = pgParseOne(`SELECT ${text}`).SelectStmt;
        const targets = select?.targetList ?? [];
        if (targets.length !== 1 || select.fromClause !== undefined) throw invalidSql(`Expected one constant or default function after SET DEFAULT, found '${text}'`);
        return { op: 'set_default', column: name, expr: targets[0].ResTarget.val, text };
      } else if (c.peekWord(0) === 'TYPE' || (c.peekWord(0) === 'SET' && c.peekWord(1) === 'DATA')) {
        c.acceptWords('SET', 'DATA');
        c.expectWord('TYPE');
        const spec = columnSpec(`${sqlQuoted(name)} ${rest()}`);
        return { op: 'modify', column: spec, nullable: null };
      } else throw invalidSql('Expected ALTER COLUMN c SET NOT NULL | DROP NOT NULL | SET DEFAULT v | DROP DEFAULT | TYPE t');
      c.end();
      return result;
    }
    if (w === 'SET') {
      c.next();
      const option = c.peekWord(0);
      if (option === 'ACCESS_LEVEL') return { op: 'options', options: {}, text: '' }; // handled below
      if (option === 'TBLPROPERTIES' || option === 'OPTIONS') {
        c.next();
        const options = optionList(c);
        c.end();
        return { op: 'options', options, text: `SET TBLPROPERTIES (${Object.entries(options).map(([k, v]) => `${k} = ${optionText(v)}`).join(', ')})` };
      }
      if (option !== undefined && TABLE_OPTION_WORDS.has(option)) {
        c.next();
        if (c.peek()?.value === '=') c.next();
        const v = c.next();
        if (v === undefined) throw invalidSql(`Expected a value for ${option}`);
        c.end();
        const value: OptionValue = v.kind === 'number' ? Number(v.value) : v.value;
        return { op: 'options', options: { [option.toLowerCase()]: value }, text: `SET ${option} ${optionText(value)}` };
      }
    }
    throw invalidSql('Unsupported ALTER TABLE: expected ADD [COLUMN], DROP [COLUMN], RENAME COLUMN, MODIFY [COLUMN], ALTER [COLUMN], '
      + 'SET ACCESS_LEVEL, SET TBLPROPERTIES (...), SET FLUSH_POLICY, SET TTL_SECONDS or SET MAX_BUFFER');
  })();
  if (w === 'SET' && c.peekWord(0) === 'ACCESS_LEVEL') {
    c.expectWord('ACCESS_LEVEL');
    if (c.peek()?.value === '=') c.next();
    const accessLevel = c.nameOrString('access level').toUpperCase();
    c.end();
    return { kind: 'alter_table_access', table, accessLevel };
  }
  return { kind: 'alter_table', table, op };
}

function sqlQuoted(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function optionText(v: OptionValue): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

/** `( name = value, ... )` */
function optionList(c: Cursor): Record<string, OptionValue> {
  if (c.next()?.value !== '(') throw invalidSql('Expected ( after TBLPROPERTIES');
  const options: Record<string, OptionValue> = {};
  while (c.peek()?.value !== ')') {
    const name = c.nameOrString('property name').toLowerCase();
    if (c.next()?.value !== '=') throw invalidSql(`Expected = after property ${name}`);
    const v = c.next();
    if (v === undefined) throw invalidSql('Expected a property value');
    options[name] = v.kind === 'number' ? Number(v.value) : v.kind === 'word' && (v.value === 'TRUE' || v.value === 'FALSE') ? v.value === 'TRUE' : v.value;
    if (c.peek()?.value === ',') c.next();
    else if (c.peek()?.value !== ')') throw invalidSql(`Unexpected '${c.peek()?.value ?? 'end of statement'}' in TBLPROPERTIES`);
  }
  c.next();
  return options;
}

/** One column definition (`c TYPE [NOT NULL|NULL] [DEFAULT v]`) parsed as CREATE TABLE parses it. */
function columnSpec(text: string): ColumnSpec {
  if (text === '') throw invalidSql('Expected a column definition: name TYPE [NOT NULL | NULL] [DEFAULT value]');
  const [stmt] = splitStatements(`CREATE TABLE alter_column_t (${text})`);
  const created = createTableFromPg(pgParseStatement(stmt!, createTableRule(-1)), null);
  if (created.kind !== 'create_table' || created.columns.length !== 1) throw invalidSql('Expected exactly one column definition');
  return created.columns[0]!;
}

/** GRANT SELECT ON ns.t TO 'alice' | REVOKE SELECT ON ns.t FROM 'alice' */
function parseGrant(c: Cursor): Statement {
  const kind = c.next()!.value === 'GRANT' ? 'grant' : 'revoke';
  if (c.peekWord(0) !== 'SELECT') {
    throw invalidSql(`Unsupported ${kind.toUpperCase()}: only ${kind === 'grant' ? "GRANT SELECT ON ns.t TO 'user'" : "REVOKE SELECT ON ns.t FROM 'user'"} (RESTRICTED shared tables)`);
  }
  c.expectWord('SELECT');
  c.expectWord('ON');
  c.acceptWords('TABLE');
  const table = c.tableName();
  c.expectWord(kind === 'grant' ? 'TO' : 'FROM');
  const id = userId(c.nameOrString('user name'));
  c.end();
  return { kind, table, userId: id };
}

function parseKillLive(c: Cursor): Statement {
  c.expectWord('KILL'); c.expectWord('LIVE'); c.expectWord('QUERY');
  const liveId = c.nameOrString('live query id');
  c.end();
  return { kind: 'kill_live', liveId };
}

/**
 * The text of a WHERE clause (the cursor on WHERE), kept verbatim up to `<stop> (` or the end of the
 * statement; the cursor is left on `stop`.
 */
function whereText(stmt: StatementText, c: Cursor, stop: string, statement: string): string {
  const start = c.next()!.end;
  let end = stmt.text.length;
  for (let t = c.next(); t !== undefined; t = c.next()) {
    if (t.kind === 'word' && t.value === stop && c.peek()?.value === '(') {
      end = t.start;
      c.back();
      break;
    }
  }
  const where = stmt.text.slice(start, end).trim();
  if (where === '') throw invalidSql(`${statement} ... WHERE needs a condition`);
  return where;
}

/** SUBSCRIBE TO ns.t [WHERE ...] [OPTIONS (name = value, ...)]; the WHERE text is kept verbatim. */
function parseSubscribe(stmt: StatementText, c: Cursor): Statement {
  c.expectWord('SUBSCRIBE'); c.expectWord('TO');
  const table = c.tableName();
  let where: string | null = null;
  const options: Record<string, string | number | boolean> = {};
  if (c.peekWord(0) === 'WHERE') where = whereText(stmt, c, 'OPTIONS', 'SUBSCRIBE TO');
  if (c.acceptWords('OPTIONS')) {
    if (c.next()?.value !== '(') throw invalidSql('Expected ( after OPTIONS');
    while (c.peek()?.value !== ')') {
      const name = c.identifier('option name');
      if (c.next()?.value !== '=') throw invalidSql(`Expected = after option ${name}`);
      const v = c.next();
      if (v === undefined) throw invalidSql('Expected an option value');
      options[name] = v.kind === 'number' ? Number(v.value) : v.value;
      if (c.peek()?.value === ',') c.next();
    }
    c.next();
  }
  c.end();
  return { kind: 'subscribe', table, where, options };
}

// Topics ------------------------------------------------------------------------------------

function nonNegativeInt(c: Cursor, what: string): number {
  const t = c.next();
  const n = t?.kind === 'number' ? Number(t.value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw invalidSql(`Expected ${what} as a non-negative integer`);
  return n;
}

/** CREATE TOPIC [IF NOT EXISTS] ns.t [PARTITIONS n] [WITH (retention_seconds = n, retention_max_bytes = n)] */
function parseCreateTopic(c: Cursor): Statement {
  c.expectWord('CREATE'); c.expectWord('TOPIC');
  const ifNotExists = c.acceptWords('IF', 'NOT', 'EXISTS');
  const topic = c.tableName();
  let partitions: number | null = null;
  if (c.acceptWords('PARTITIONS')) {
    partitions = nonNegativeInt(c, 'PARTITIONS');
    if (partitions < 1 || partitions > 1024) throw invalidSql('PARTITIONS must be between 1 and 1024');
  }
  let retentionSeconds: number | null = null;
  let retentionMaxBytes: number | null = null;
  if (c.acceptWords('WITH')) {
    if (c.next()?.value !== '(') throw invalidSql('Expected ( after WITH');
    while (c.peek() !== undefined && c.peek()?.value !== ')') {
      const name = c.identifier('option name').toLowerCase();
      if (c.next()?.value !== '=') throw invalidSql(`Expected = after option ${name}`);
      const value = nonNegativeInt(c, name);
      if (value < 1) throw invalidSql(`${name} must be at least 1`);
      if (name === 'retention_seconds') retentionSeconds = value;
      else if (name === 'retention_max_bytes') retentionMaxBytes = value;
      else throw invalidSql(`Unknown topic option '${name}' (retention_seconds, retention_max_bytes)`);
      if (c.peek()?.value === ',') c.next();
    }
    if (c.next()?.value !== ')') throw invalidSql('Expected ) after the WITH options');
  }
  c.end();
  return { kind: 'create_topic', topic, partitions, ifNotExists, retentionSeconds, retentionMaxBytes };
}

function parseDropTopic(c: Cursor): Statement {
  c.expectWord('DROP'); c.expectWord('TOPIC');
  const ifExists = c.acceptWords('IF', 'EXISTS');
  const topic = c.tableName();
  c.end();
  return { kind: 'drop_topic', topic, ifExists };
}

function parseClearTopic(c: Cursor): Statement {
  c.expectWord('CLEAR'); c.expectWord('TOPIC');
  const topic = c.tableName();
  c.end();
  return { kind: 'clear_topic', topic };
}

/** ALTER TOPIC ns.t ADD SOURCE ns.table ON INSERT|UPDATE|DELETE [WHERE expr] [WITH (payload = 'key'|'full'|'diff')] */
function parseAlterTopic(stmt: StatementText, c: Cursor): Statement {
  c.expectWord('ALTER'); c.expectWord('TOPIC');
  const topic = c.tableName();
  c.expectWord('ADD'); c.expectWord('SOURCE');
  const table = c.tableName();
  c.expectWord('ON');
  const opWord = c.next();
  const op = opWord?.kind === 'word' ? ({ INSERT: 'insert', UPDATE: 'update', DELETE: 'delete' } as const)[opWord.value as 'INSERT'] : undefined;
  if (op === undefined) throw invalidSql('Expected INSERT, UPDATE or DELETE after ON');
  let where: string | null = null;
  let payload: 'key' | 'full' | 'diff' = 'full';
  if (c.peekWord(0) === 'WHERE') where = whereText(stmt, c, 'WITH', 'ADD SOURCE');
  if (c.acceptWords('WITH')) {
    if (c.next()?.value !== '(') throw invalidSql('Expected ( after WITH');
    while (c.peek() !== undefined && c.peek()?.value !== ')') {
      const name = c.identifier('option name').toLowerCase();
      if (c.next()?.value !== '=') throw invalidSql(`Expected = after option ${name}`);
      const value = c.nameOrString('option value').toLowerCase();
      if (name !== 'payload') throw invalidSql(`Unknown topic source option '${name}' (payload)`);
      if (value !== 'key' && value !== 'full' && value !== 'diff') throw invalidSql(`Unknown payload '${value}' (key, full, diff)`);
      payload = value;
      if (c.peek()?.value === ',') c.next();
    }
    if (c.next()?.value !== ')') throw invalidSql('Expected ) after the WITH options');
  }
  c.end();
  return { kind: 'alter_topic_add_source', topic, table, op, where, payload };
}

/** CONSUME FROM ns.t [GROUP 'g'] [FROM|START EARLIEST|LATEST|n] [LIMIT n] */
function parseConsume(c: Cursor): Statement {
  c.expectWord('CONSUME'); c.expectWord('FROM');
  const topic = c.tableName();
  let group: string | null = null;
  let from: 'earliest' | 'latest' | number | null = null;
  let limit: number | null = null;
  for (;;) {
    if (c.acceptWords('GROUP')) group = c.nameOrString('group id');
    else if (c.acceptWords('FROM') || c.acceptWords('START')) {
      // START is accepted as a synonym of FROM: upstream's own tests write `START EARLIEST`.
      if (c.acceptWords('EARLIEST')) from = 'earliest';
      else if (c.acceptWords('LATEST')) from = 'latest';
      else from = nonNegativeInt(c, 'FROM offset');
    } else if (c.acceptWords('LIMIT')) {
      limit = nonNegativeInt(c, 'LIMIT');
      if (limit < 1) throw invalidSql('LIMIT must be at least 1');
    } else break;
  }
  c.end();
  return { kind: 'consume', topic, group, from, limit };
}

/** ACK ns.t GROUP 'g' [PARTITION n] UPTO OFFSET n */
function parseAck(c: Cursor): Statement {
  c.expectWord('ACK');
  const topic = c.tableName();
  c.expectWord('GROUP');
  const group = c.nameOrString('group id');
  let partition = 0;
  if (c.acceptWords('PARTITION')) partition = nonNegativeInt(c, 'PARTITION');
  c.expectWord('UPTO'); c.expectWord('OFFSET');
  const uptoOffset = nonNegativeInt(c, 'UPTO OFFSET');
  c.end();
  return { kind: 'ack', topic, group, partition, uptoOffset };
}

function parseTransactionWord(c: Cursor, kind: 'begin' | 'commit' | 'rollback'): Statement {
  const first = c.next()!.value;
  if (first === 'START') c.expectWord('TRANSACTION');
  else c.acceptWords('TRANSACTION') || c.acceptWords('WORK');
  c.end();
  return { kind };
}

function parseRole(raw: string): Role {
  const role = raw.toLowerCase();
  if (!(ROLES as readonly string[]).includes(role)) throw invalidSql(`Unknown role '${raw}' (user, service, dba, system)`);
  return role as Role;
}

/** Reads tokens of one statement for the hand-written parsers. */
/** Reads a dialect statement's tokens (exported for the statement parsers in sibling files). */
export class Cursor {
  private pos = 0;
  constructor(private readonly stmt: StatementText) {}

  peek(offset = 0): Token | undefined {
    return this.stmt.tokens[this.pos + offset];
  }
  peekWord(offset: number): string | undefined {
    const t = this.peek(offset);
    return t?.kind === 'word' ? t.value : undefined;
  }
  next(): Token | undefined {
    return this.stmt.tokens[this.pos++];
  }
  back(): void {
    this.pos--;
  }
  atEnd(): boolean {
    return this.pos >= this.stmt.tokens.length;
  }
  expectWord(word: string): void {
    const t = this.next();
    if (t?.kind !== 'word' || t.value !== word) throw invalidSql(`Expected ${word}${this.near(t)}`);
  }
  acceptWords(...words: string[]): boolean {
    for (let i = 0; i < words.length; i++) if (this.peekWord(i) !== words[i]) return false;
    this.pos += words.length;
    return true;
  }
  identifier(what: string): string {
    const t = this.next();
    if (t?.kind === 'word' || t?.kind === 'qident') return identifier(t.kind === 'word' ? this.raw(t) : t.value, what);
    throw invalidSql(`Expected ${what}${this.near(t)}`);
  }
  tableName(): TableName {
    const first = this.identifier('table name');
    if (this.peek()?.value === '.') {
      this.next();
      return { namespace: first, name: this.identifier('table name') };
    }
    return { namespace: null, name: first };
  }
  string(what: string): string {
    const t = this.next();
    if (t?.kind !== 'string') throw invalidSql(`Expected ${what} as a quoted string${this.near(t)}`);
    return t.value;
  }
  nameOrString(what: string): string {
    const t = this.next();
    if (t?.kind === 'string' || t?.kind === 'qident') return t.value;
    if (t?.kind === 'word') return this.raw(t);
    throw invalidSql(`Expected ${what}${this.near(t)}`);
  }
  end(): void {
    const t = this.peek();
    if (t !== undefined) throw invalidSql(`Unexpected '${t.value}' at position ${t.start + 1}`);
  }
  private raw(t: Token): string {
    return this.stmt.text.slice(t.start, t.end);
  }
  private near(t: Token | undefined): string {
    return t === undefined ? ' at end of statement' : ` at position ${t.start + 1}, found '${t.value}'`;
  }
}

