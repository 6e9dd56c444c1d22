/**
 * Evaluates the expressions INSERT VALUES and UPDATE SET most often carry (literals, params,
 * DEFAULT, NOW(), SNOWFLAKE_ID() ...) in JavaScript, so the common write path never needs DuckDB.
 * Anything else reports `NOT_CONSTANT` and the caller falls back to DuckDB.
 */
import { invalidSql } from '../util/errors.js';
import { uuidV7, ulid } from '../util/ids.js';
import type { ColumnDef, DefaultFunction, StoredValue } from '../catalog/types.js';
import type { PgNode } from '../sql/statement.js';
import { constantValue } from '../sql/create-table.js';
import { coerce, type InputValue } from '../sql/values.js';
import type { SnowflakeGenerator } from '../util/snowflake.js';

export const NOT_CONSTANT = Symbol('not constant');
export const DEFAULT_MARKER = Symbol('default');

export interface EvalEnv {
  readonly params: readonly unknown[];
  readonly userId: string;
  readonly seqs: SnowflakeGenerator;
  readonly nowMicros: number;
}

const FUNCTION_DEFAULTS: Record<string, DefaultFunction> = {
  now: 'now', current_timestamp: 'now', snowflake_id: 'snowflake_id', uuid_v7: 'uuid_v7', ulid: 'ulid',
};

export function evalSimple(node: PgNode, env: EvalEnv): InputValue | typeof NOT_CONSTANT | typeof DEFAULT_MARKER {
  if (node.SetToDefault) return DEFAULT_MARKER;
  if (node.ParamRef) return param(env, node.ParamRef.number);
  if (node.A_Const) return constantValue(node, 'value');
  if (node.TypeCast) {
    const inner = evalSimple(node.TypeCast.arg, env);
    return inner === DEFAULT_MARKER ? NOT_CONSTANT : inner;
  }
  if (node.A_Expr?.kind === 'AEXPR_OP' && node.A_Expr.lexpr === undefined && node.A_Expr.name?.[0]?.String?.sval === '-') {
    if (node.A_Expr.rexpr?.A_Const) return constantValue(node, 'value');
    return NOT_CONSTANT;
  }
  if (node.FuncCall && !node.FuncCall.args && node.FuncCall.funcname.length === 1) {
    const fn = FUNCTION_DEFAULTS[String(node.FuncCall.funcname[0].String.sval).toLowerCase()];
    if (fn !== undefined) return functionValue(fn, env);
  }
  if (node.SQLValueFunction) {
    const op = String(node.SQLValueFunction.op);
    if (op.startsWith('SVFOP_CURRENT_TIMESTAMP') || op.startsWith('SVFOP_LOCALTIMESTAMP')) return env.nowMicros;
    if (op === 'SVFOP_CURRENT_USER' || op === 'SVFOP_USER' || op === 'SVFOP_SESSION_USER') return env.userId;
  }
  return NOT_CONSTANT;
}

export function param(env: Pick<EvalEnv, 'params'>, n: number): InputValue {
  if (n < 1 || n > env.params.length) throw invalidSql(`Missing value for parameter $${n}: ${env.params.length} given`);
  return env.params[n - 1] as InputValue;
}

function functionValue(fn: DefaultFunction, env: EvalEnv): InputValue {
  switch (fn) {
    case 'now': return env.nowMicros;
    case 'snowflake_id': return env.seqs.next();
    case 'uuid_v7': return uuidV7();
    case 'ulid': return ulid();
    case 'current_user': return env.userId;
  }
}

/** The value a column takes when an INSERT does not give one. */
export function defaultValue(column: ColumnDef, env: EvalEnv): StoredValue {
  const d = column.default;
  if (d === undefined) return coerce(column, null);
  if (d.kind === 'literal') return d.value;
  if (d.name === 'now') {
    if (column.type === 'Date') return Math.floor(env.nowMicros / 86_400_000_000);
    if (column.type === 'BigInt') return BigInt(Math.floor(env.nowMicros / 1000));
  }
  return coerce(column, functionValue(d.name, env));
}
