/**
 * CREATE TABLE: the dialect's spellings are rewritten into PostgreSQL syntax at token level
 * (table type word, FLOAT/DOUBLE/STRING/BYTES, SERIAL, AUTO_INCREMENT), parsed by libpg-query,
 * and the CreateStmt turned into column definitions and raw WITH options.
 */
import { invalidSql } from '../util/errors.js';
import type { ColumnSpec as ColumnDef, ColumnDefault, ColumnType, DefaultFunction, TableType } from '../catalog/types.js';
import type { TokenRule } from './pg-text.js';
import { identifier } from './names.js';
import type { OptionValue, PgNode, Statement } from './statement.js';
import { coerce, type InputValue } from './values.js';

const TYPE_REWRITES: Record<string, string> = {
  FLOAT: 'REAL', STRING: 'TEXT', BYTES: 'BYTEA', BLOB: 'BYTEA',
  SERIAL: 'BIGINT DEFAULT snowflake_id()', BIGSERIAL: 'BIGINT DEFAULT snowflake_id()',
};

/**
 * CREATE TABLE's own spellings as a token rule for `preparePgText`: drops the table-type word
 * (token `dropTokenIndex`), and maps FLOAT/DOUBLE/STRING/BYTES/BLOB/SERIAL and AUTO_INCREMENT.
 */
export function createTableRule(dropTokenIndex: number): TokenRule {
  return (t, i) => {
    const tok = t[i]!;
    if (i === dropTokenIndex) return { text: '', through: i };
    if (tok.kind !== 'word') return undefined;
    const atTypePosition = i >= 2 && (t[i - 1]!.kind === 'word' || t[i - 1]!.kind === 'qident') && (t[i - 2]!.value === '(' || t[i - 2]!.value === ',');
    if (atTypePosition && TYPE_REWRITES[tok.value] !== undefined) return { text: TYPE_REWRITES[tok.value]!, through: i };
    if (atTypePosition && tok.value === 'DOUBLE' && t[i + 1]?.value !== 'PRECISION') return { text: 'DOUBLE PRECISION', through: i };
    if (tok.value === 'AUTO_INCREMENT' || tok.value === 'AUTOINCREMENT') return { text: 'DEFAULT snowflake_id()', through: i };
    return undefined;
  };
}

export function createTableFromPg(node: PgNode, tableType: TableType | null): Statement {
  const create = node.CreateStmt;
  if (!create) throw invalidSql('Expected CREATE TABLE');
  if (create.relation.relpersistence === 't') throw invalidSql('TEMPORARY tables are not supported');
  if (create.inhRelations || create.partspec || create.ofTypename) throw invalidSql('INHERITS, PARTITION BY and OF are not supported');
  const namespace = create.relation.schemaname !== undefined ? identifier(create.relation.schemaname, 'namespace name') : null;
  const name = identifier(create.relation.relname, 'table name');
  const tablePk: string[] = [];
  const columns: ColumnDef[] = [];
  for (const element of create.tableElts ?? []) {
    if (element.ColumnDef) columns.push(columnFromPg(element.ColumnDef));
    else if (element.Constraint?.contype === 'CONSTR_PRIMARY') {
      for (const key of element.Constraint.keys ?? []) tablePk.push(identifier(key.String.sval, 'column name'));
    } else {
      throw invalidSql('Only column definitions and PRIMARY KEY (col) are supported in CREATE TABLE');
    }
  }
  if (columns.length === 0) throw invalidSql(`Table '${name}' needs at least one column`);
  if (tablePk.length > 1) throw invalidSql('Composite primary keys are not supported: use a single-column PRIMARY KEY');
  const withPk = columns.map((c) => (tablePk.includes(c.name) ? { ...c, primaryKey: true, nullable: false } : c));
  if (tablePk.length === 1 && !withPk.some((c) => c.name === tablePk[0])) {
    throw invalidSql(`PRIMARY KEY names unknown column '${tablePk[0]}'`);
  }
  const seen = new Set<string>();
  for (const c of withPk) {
    if (seen.has(c.name)) throw invalidSql(`Column '${c.name}' is defined twice`);
    if (c.name.startsWith('_')) throw invalidSql(`Column '${c.name}': names starting with '_' are reserved for system columns`);
    seen.add(c.name);
  }
  if (withPk.filter((c) => c.primaryKey).length > 1) throw invalidSql('A table has at most one PRIMARY KEY column');
  const options: Record<string, OptionValue> = {};
  for (const opt of create.options ?? []) {
    const def = opt.DefElem;
    options[String(def.defname).toLowerCase()] = optionValue(def.arg);
  }
  return { kind: 'create_table', table: { namespace, name }, ifNotExists: create.if_not_exists === true, tableType, columns: withPk, options };
}

function optionValue(arg: PgNode): OptionValue {
  if (arg === undefined) return true;
  if (arg.String) return arg.String.sval;
  if (arg.Integer) return arg.Integer.ival ?? 0;
  if (arg.Float) return Number(arg.Float.fval);
  if (arg.Boolean) return arg.Boolean.boolval === true;
  if (arg.TypeName) return arg.TypeName.names.map((n: PgNode) => n.String.sval).join('.');
  throw invalidSql('Unsupported table option value');
}

const PG_TYPES: Record<string, ColumnType> = {
  bool: 'Boolean', boolean: 'Boolean',
  int2: 'SmallInt', smallint: 'SmallInt',
  int4: 'Int', int: 'Int', integer: 'Int',
  int8: 'BigInt', bigint: 'BigInt',
  float4: 'Float', real: 'Float',
  float8: 'Double',
  text: 'Text', varchar: 'Text', bpchar: 'Text', char: 'Text',
  timestamp: 'Timestamp', timestamptz: 'Timestamp',
  date: 'Date', time: 'Time',
  json: 'Json', jsonb: 'Json',
  bytea: 'Bytes',
  uuid: 'Uuid',
  numeric: 'Decimal', decimal: 'Decimal',
};

function columnFromPg(def: PgNode): ColumnDef {
  const name = identifier(def.colname, 'column name');
  const names: string[] = def.typeName.names.map((n: PgNode) => n.String.sval);
  const typeName = names[names.length - 1]!;
  if (def.typeName.arrayBounds) throw invalidSql(`Column '${name}': array types are not supported`);
  const type = PG_TYPES[typeName];
  if (type === undefined) throw invalidSql(`Column '${name}': unknown type '${typeName.toUpperCase()}'`);
  let precision: number | undefined;
  let scale: number | undefined;
  if (type === 'Decimal') {
    const mods: number[] = (def.typeName.typmods ?? []).map((m: PgNode) => m.A_Const?.ival?.ival ?? 0);
    precision = mods[0] ?? 18;
    scale = mods[1] ?? 0;
    if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
      throw invalidSql(`Column '${name}': DECIMAL(${precision},${scale}) needs 1 <= precision <= 38 and 0 <= scale <= precision`);
    }
  }
  let nullable = true;
  let primaryKey = false;
  let defaultNode: PgNode = undefined;
  for (const wrapped of def.constraints ?? []) {
    const c = wrapped.Constraint;
    switch (c.contype) {
      case 'CONSTR_PRIMARY': primaryKey = true; nullable = false; break;
      case 'CONSTR_NOTNULL': nullable = false; break;
      case 'CONSTR_NULL': break;
      case 'CONSTR_DEFAULT': defaultNode = c.raw_expr; break;
      default: throw invalidSql(`Column '${name}': constraint ${String(c.contype).replace('CONSTR_', '')} is not supported`);
    }
  }
  const column: ColumnDef = { name, type, ...(precision !== undefined ? { precision, scale } : {}), nullable, primaryKey };
  if (defaultNode === undefined) return column;
  return { ...column, default: columnDefault(column, defaultNode) };
}

const DEFAULT_FUNCTIONS: Record<string, DefaultFunction> = {
  snowflake_id: 'snowflake_id', uuid_v7: 'uuid_v7', ulid: 'ulid', now: 'now', current_timestamp: 'now',
};

/** A DEFAULT expression's parse tree as a column default (ALTER COLUMN ... SET DEFAULT uses it too). */
export function columnDefault(column: ColumnDef, node: PgNode): ColumnDefault {
  if (node.FuncCall) {
    const fname = node.FuncCall.funcname.map((n: PgNode) => n.String.sval).join('.').toLowerCase();
    const fn = DEFAULT_FUNCTIONS[fname];
    if (fn === undefined || node.FuncCall.args) throw invalidSql(`Column '${column.name}': unsupported DEFAULT ${fname}(...)`);
    return checkDefaultType(column, fn);
  }
  if (node.SQLValueFunction) {
    const op: string = node.SQLValueFunction.op;
    if (op.startsWith('SVFOP_CURRENT_TIMESTAMP') || op.startsWith('SVFOP_LOCALTIMESTAMP')) return checkDefaultType(column, 'now');
    if (op === 'SVFOP_CURRENT_USER' || op === 'SVFOP_USER' || op === 'SVFOP_SESSION_USER') return checkDefaultType(column, 'current_user');
  }
  return { kind: 'literal', value: coerce({ ...column, nullable: true }, constantValue(node, column.name)) };
}

const DEFAULT_RESULT_TYPES: Record<DefaultFunction, readonly ColumnType[]> = {
  snowflake_id: ['BigInt'], uuid_v7: ['Uuid', 'Text'], ulid: ['Text'], now: ['Timestamp', 'Date', 'BigInt'], current_user: ['Text'],
};

function checkDefaultType(column: ColumnDef, fn: DefaultFunction): ColumnDefault {
  if (!DEFAULT_RESULT_TYPES[fn].includes(column.type)) {
    throw invalidSql(`Column '${column.name}': DEFAULT ${fn.toUpperCase()}() does not fit type ${column.type.toUpperCase()}`);
  }
  return { kind: 'function', name: fn };
}

/** The value of a constant expression: literals, signed numbers and typed strings. */
export function constantValue(node: PgNode, where: string): InputValue {
  if (node.A_Const) {
    const c = node.A_Const;
    if (c.isnull) return null;
    if (c.ival !== undefined) return c.ival.ival ?? 0;
    if (c.fval !== undefined) return numberLiteral(c.fval.fval);
    if (c.sval !== undefined) return c.sval.sval ?? '';
    if (c.boolval !== undefined) return c.boolval.boolval === true;
    if (c.bsval !== undefined) return c.bsval.bsval;
  }
  if (node.TypeCast) return constantValue(node.TypeCast.arg, where);
  if (node.A_Expr?.kind === 'AEXPR_OP' && node.A_Expr.lexpr === undefined && node.A_Expr.name?.[0]?.String?.sval === '-') {
    const inner = constantValue(node.A_Expr.rexpr, where);
    if (typeof inner === 'number') return -inner;
    if (typeof inner === 'bigint') return -inner;
    if (typeof inner === 'string') return inner.startsWith('-') ? inner.slice(1) : `-${inner}`;
  }
  throw invalidSql(`${where}: expected a constant value`);
}

/** Integer literals beyond 2^53 stay exact as text; the column coercion checks their range. */
function numberLiteral(text: string): number | string {
  if (/^[+-]?\d+$/.test(text)) return Number.isSafeInteger(Number(text)) ? Number(text) : text;
  return /[eE]/.test(text) ? Number(text) : text;
}
