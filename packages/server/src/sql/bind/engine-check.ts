/**
 * The proof step: the engine's own parser reads the final SQL text (json_serialize_sql) and this
 * module walks what it understood. The statement runs only if it is exactly one SELECT whose every
 * table reference is a relation created for this statement (or one of its generated CTE names),
 * whose every function is allowlisted and whose every table function is a series generator. Our
 * emitter should never produce anything else; this check is what makes "should" a "does", whatever
 * the two parsers disagree on.
 */
import { ServerError } from '../../util/errors.js';
import { ENGINE_FUNCTIONS, TABLE_FUNCTIONS } from './engine-names.js';

export interface EngineAllowlist {
  /** Fully qualified relations (`catalog.schema.name`, unquoted) the statement may read. */
  readonly relations: ReadonlySet<string>;
  /** Generated CTE names, the only unqualified relation names allowed. */
  readonly cteNames: ReadonlyMap<string, string>;
}

/** Refusal of engine SQL that failed the check: a 400 that is also logged as a security event. */
export class EngineCheckError extends ServerError {
  constructor(readonly reason: string) {
    super('INVALID_SQL', 'The statement was refused by the engine check');
  }
}

const QUERY_NODES: ReadonlySet<string> = new Set(['SELECT_NODE', 'SET_OPERATION_NODE', 'RECURSIVE_CTE_NODE', 'CTE_NODE']);
const TABLE_REFS: ReadonlySet<string> = new Set(['BASE_TABLE', 'JOIN', 'SUBQUERY', 'TABLE_FUNCTION', 'EMPTY', 'EXPRESSION_LIST']);

/**
 * Statement templates that passed the check, with relation slots as fixed placeholder names: the
 * same query shape (most requests repeat) skips the engine round trip, which costs ~0.8 ms.
 * Bounded, oldest forgotten first; only successes are remembered.
 */
export class VerifiedTemplates {
  private readonly texts = new Set<string>();
  constructor(private readonly capacity: number) {}

  has(text: string): boolean {
    return this.texts.has(text);
  }

  add(text: string): void {
    if (this.texts.size >= this.capacity) this.texts.delete(this.texts.values().next().value!);
    this.texts.add(text);
  }
}

/** The placeholder a relation slot is checked under (a name no catalog object has). */
export function slotPlaceholder(slot: number): string {
  return `memory.main.kalam_slot_${slot}`;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Throws EngineCheckError unless `serialized` (json_serialize_sql's output) is one allowed SELECT. */
export function checkEngineSql(serialized: string, allow: EngineAllowlist): void {
  let tree: Json;
  try {
    tree = JSON.parse(serialized) as Json;
  } catch {
    throw new EngineCheckError('unparseable serialization');
  }
  if (!isObject(tree) || tree['error'] !== false) throw new EngineCheckError(`not a SELECT: ${isObject(tree) ? String(tree['error_message']) : 'no tree'}`);
  const statements = tree['statements'];
  if (!Array.isArray(statements) || statements.length !== 1) throw new EngineCheckError('not exactly one statement');
  walk(statements[0]!, allow);
}

function walk(node: Json, allow: EngineAllowlist): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, allow);
    return;
  }
  if (!isObject(node)) return;
  const type = node['type'];
  const cls = node['class'];
  if (typeof type === 'string') {
    if (type.endsWith('_NODE') && !QUERY_NODES.has(type)) throw new EngineCheckError(`query node ${type}`);
    if (cls === undefined && isTableRefShape(node) && !TABLE_REFS.has(type)) throw new EngineCheckError(`table reference ${type}`);
    if (type === 'BASE_TABLE') checkTable(node, allow);
    if (type === 'TABLE_FUNCTION') checkTableFunction(node);
  }
  if (cls === 'FUNCTION' || cls === 'WINDOW' || cls === 'AGGREGATE') checkFunction(node);
  for (const key in node) {
    // A table function's call is checked as a table function, not as a scalar one.
    if (type === 'TABLE_FUNCTION' && key === 'function') {
      walk((node['function'] as { [key: string]: Json })['children'] ?? null, allow);
      continue;
    }
    walk(node[key]!, allow);
  }
}

function checkTable(node: { [key: string]: Json }, allow: EngineAllowlist): void {
  const catalog = String(node['catalog_name'] ?? '');
  const schema = String(node['schema_name'] ?? '');
  const name = String(node['table_name'] ?? '');
  if (node['at_clause'] !== null && node['at_clause'] !== undefined) throw new EngineCheckError('time travel clause');
  if (catalog === '' && schema === '') {
    if (!allow.cteNames.has(name)) throw new EngineCheckError(`unbound relation ${name}`);
    return;
  }
  if (!allow.relations.has(`${catalog}.${schema}.${name}`)) throw new EngineCheckError(`relation ${catalog}.${schema}.${name} not in the statement's allowlist`);
}

function checkTableFunction(node: { [key: string]: Json }): void {
  const fn = node['function'];
  if (!isObject(fn) || fn['class'] !== 'FUNCTION') throw new EngineCheckError('table function without a call');
  const name = String(fn['function_name'] ?? '');
  if (!TABLE_FUNCTIONS.has(name) || fn['schema'] !== '' || fn['catalog'] !== '') throw new EngineCheckError(`table function ${name}`);
}

function checkFunction(node: { [key: string]: Json }): void {
  const name = String(node['function_name'] ?? '');
  const schema = String(node['schema'] ?? '');
  const catalog = String(node['catalog'] ?? '');
  // The engine's parser itself qualifies some desugared calls (an array literal is main.list_value).
  if ((schema !== '' && schema !== 'main') || (catalog !== '' && catalog !== 'system')) throw new EngineCheckError(`qualified function ${catalog}.${schema}.${name}`);
  if (!ENGINE_FUNCTIONS.has(name)) throw new EngineCheckError(`function ${name}`);
}

/** Table references carry `alias` and `sample`; expressions carry `class`. */
function isTableRefShape(node: { [key: string]: Json }): boolean {
  return 'sample' in node && 'alias' in node;
}

function isObject(v: Json): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
