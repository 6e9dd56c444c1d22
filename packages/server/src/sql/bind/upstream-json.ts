/**
 * Upstream KalamDB's JSON functions (DataFusion's datafusion-functions-json): `json_get_str(doc, 'a',
 * 0)` and friends take the path as trailing key / index arguments. They are written here as DuckDB
 * JSON-path calls, so code written for upstream runs unchanged. The path must be constants.
 */
import { invalidSql } from '../../util/errors.js';
import type { FuncCall, Node } from '@pgsql/types';

const UPSTREAM_JSON_FUNCTIONS: ReadonlySet<string> = new Set([
  'json_get', 'json_get_json', 'json_get_str', 'json_as_text', 'json_get_int', 'json_get_float', 'json_get_bool',
  'json_length', 'json_object_keys', 'json_contains',
]);

/**
 * Whether a call is one of upstream's JSON functions. `json_contains` is also DuckDB's (containment of one
 * JSON document in another): it is upstream's key test when its second argument is a constant that is not
 * a JSON document (`json_contains(doc, 'customer_id')`) or when it has more than two arguments.
 */
export function isUpstreamJsonCall(name: string, f: FuncCall): boolean {
  if (!UPSTREAM_JSON_FUNCTIONS.has(name)) return false;
  if (name !== 'json_contains') return true;
  const args = f.args ?? [];
  if (args.length > 2) return true;
  const second = args[1];
  if (second === undefined || !('A_Const' in second) || second.A_Const.sval === undefined) return false;
  try {
    JSON.parse(second.A_Const.sval.sval ?? '');
    return false;
  } catch {
    return true;
  }
}

/**
 * How many times `upstreamJsonCall` writes its first argument into the engine SQL: nested calls
 * multiply (the binder counts the copies, ENGINE_COPIES_CHARS_MAX).
 */
export function upstreamJsonCopies(name: string): number {
  switch (name) {
    case 'json_get_str': case 'json_get_int': case 'json_get_float': case 'json_get_bool': case 'json_object_keys': return 2;
    // Twice in its THENs, twice more through the simple CASE over json_type (one copy per WHEN).
    case 'json_length': return 4;
    default: return 1;
  }
}

/** The engine SQL for an upstream JSON call; `json` is the already-bound first argument. */
export function upstreamJsonCall(name: string, json: string, pathArgs: readonly Node[]): string {
  const path = quoteText(jsonPath(name, pathArgs));
  const at = `${json}, ${path}`;
  const type = `json_type(${at})`;
  switch (name) {
    case 'json_get': return `json_extract(${at})`;
    case 'json_get_json': return `CAST(json_extract(${at}) AS VARCHAR)`;
    case 'json_as_text': return `json_extract_string(${at})`;
    case 'json_get_str': return `CASE WHEN ${type} = 'VARCHAR' THEN json_extract_string(${at}) END`;
    case 'json_get_int': return `CASE WHEN ${type} IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(json_extract_string(${at}) AS BIGINT) END`;
    case 'json_get_float': return `CASE WHEN ${type} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN CAST(json_extract_string(${at}) AS DOUBLE) END`;
    case 'json_get_bool': return `CASE WHEN ${type} = 'BOOLEAN' THEN CAST(json_extract_string(${at}) AS BOOLEAN) END`;
    case 'json_length':
      return `CASE ${type} WHEN 'ARRAY' THEN CAST(json_array_length(${at}) AS BIGINT) WHEN 'OBJECT' THEN CAST(len(json_keys(${at})) AS BIGINT) END`;
    case 'json_object_keys': return `CASE WHEN ${type} = 'OBJECT' THEN json_keys(${at}) END`;
    case 'json_contains': return `coalesce(json_exists(${at}), FALSE)`;
    default: throw invalidSql(`Unknown JSON function ${name}`);
  }
}

/** `doc ? 'key'`: whether a JSON object has the top-level key (upstream's existence operator). */
export function jsonHasKey(json: string, key: string): string {
  return `coalesce(list_contains(json_keys(${json}), ${key}), FALSE)`;
}

function jsonPath(name: string, args: readonly Node[]): string {
  let path = '$';
  for (const arg of args) {
    const c = 'A_Const' in arg ? arg.A_Const : null;
    if (c?.sval !== undefined) {
      const key = c.sval.sval ?? '';
      if (/["\\\0]/.test(key)) throw invalidSql(`${name}: a key may not contain " or \\`);
      path += `."${key}"`;
    } else if (c?.ival !== undefined) {
      path += `[${c.ival.ival ?? 0}]`;
    } else {
      throw invalidSql(`${name}: path arguments must be constant keys ('name') or array indexes (0)`);
    }
  }
  return path;
}

function quoteText(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
