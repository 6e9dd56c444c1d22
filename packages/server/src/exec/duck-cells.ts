/**
 * DuckDB result values → protocol cells and schema entries, chosen once per column by type id so
 * the per-row loop is a plain function call. Also DuckDB values → coercion input (INSERT ... SELECT,
 * UPDATE ... SET expressions).
 */
import {
  DuckDBBlobValue, DuckDBDateValue, DuckDBDecimalValue, DuckDBTimeValue, DuckDBTimestampTZValue, DuckDBTimestampValue,
  DuckDBTypeId, DuckDBUUIDValue, type DuckDBValue,
} from '@duckdb/node-api';
import { float32Shortest, floatCell, type InputValue } from '../sql/values.js';
import type { DuckResult } from '../storage/duck/duck-engine.js';

export interface SchemaField {
  readonly name: string;
  readonly data_type: string | { Decimal: { precision: number; scale: number } };
  readonly index: number;
}

type CellEncoder = (v: DuckDBValue) => unknown;

const toNumber: CellEncoder = (v) => (typeof v === 'bigint' ? Number(v) : v);
const toText: CellEncoder = (v) => String(v);
const toDouble: CellEncoder = (v) => floatCell(v as number);
const toFloat32: CellEncoder = (v) => floatCell(float32Shortest(v as number));
const micros: CellEncoder = (v) => Number((v as DuckDBTimestampValue | DuckDBTimeValue).micros);

function encoderFor(typeId: number, typeText: string): { dataType: SchemaField['data_type']; encode: CellEncoder } {
  switch (typeId) {
    case DuckDBTypeId.BOOLEAN: return { dataType: 'Boolean', encode: (v) => v };
    case DuckDBTypeId.TINYINT: case DuckDBTypeId.SMALLINT: case DuckDBTypeId.UTINYINT:
      return { dataType: 'SmallInt', encode: toNumber };
    case DuckDBTypeId.INTEGER: case DuckDBTypeId.USMALLINT: return { dataType: 'Int', encode: toNumber };
    case DuckDBTypeId.UINTEGER: case DuckDBTypeId.BIGINT: case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT: case DuckDBTypeId.UHUGEINT: case DuckDBTypeId.BIGNUM:
      return { dataType: 'BigInt', encode: toText };
    case DuckDBTypeId.FLOAT: return { dataType: 'Float', encode: toFloat32 };
    case DuckDBTypeId.DOUBLE: return { dataType: 'Double', encode: toDouble };
    case DuckDBTypeId.DECIMAL: {
      const m = /DECIMAL\((\d+),(\d+)\)/.exec(typeText);
      return { dataType: { Decimal: { precision: Number(m?.[1] ?? 18), scale: Number(m?.[2] ?? 0) } }, encode: toText };
    }
    case DuckDBTypeId.TIMESTAMP: case DuckDBTypeId.TIMESTAMP_TZ: return { dataType: 'Timestamp', encode: micros };
    case DuckDBTypeId.TIMESTAMP_S: case DuckDBTypeId.TIMESTAMP_MS: case DuckDBTypeId.TIMESTAMP_NS:
      return { dataType: 'Timestamp', encode: (v) => Number(timestampMicros(v)) };
    case DuckDBTypeId.DATE: return { dataType: 'Date', encode: (v) => (v as DuckDBDateValue).days };
    case DuckDBTypeId.TIME: return { dataType: 'Time', encode: micros };
    case DuckDBTypeId.UUID: return { dataType: 'Uuid', encode: toText };
    case DuckDBTypeId.BLOB: return { dataType: 'Bytes', encode: (v) => Array.from((v as DuckDBBlobValue).bytes) };
    case DuckDBTypeId.VARCHAR: return { dataType: typeText === 'JSON' ? 'Json' : 'Text', encode: (v) => v };
    case DuckDBTypeId.LIST: case DuckDBTypeId.STRUCT: case DuckDBTypeId.MAP: case DuckDBTypeId.ARRAY:
      return { dataType: 'Json', encode: (v) => JSON.stringify(toJsonish(v)) };
    default: return { dataType: 'Text', encode: toText };
  }
}

const SMALL_INTEGERS: ReadonlySet<number> = new Set([
  DuckDBTypeId.TINYINT, DuckDBTypeId.SMALLINT, DuckDBTypeId.INTEGER, DuckDBTypeId.UTINYINT, DuckDBTypeId.USMALLINT,
]);

/**
 * Turns a DuckDB result into the protocol's schema and positional rows. `widen[i]` marks a computed
 * column: a smaller integer there is a `BigInt` (string cells), as upstream types integer expressions.
 */
export function encodeDuckResult(result: DuckResult, widen?: readonly boolean[]): { schema: SchemaField[]; rows: unknown[][] } {
  const encoders = result.typeIds.map((id, i) => (widen?.[i] === true && SMALL_INTEGERS.has(id)
    ? { dataType: 'BigInt', encode: toText }
    : encoderFor(id, result.columnTypes[i]!)));
  const schema = result.columnNames.map((name, index) => ({ name, data_type: encoders[index]!.dataType, index }));
  const width = encoders.length;
  const rows: unknown[][] = new Array(result.rows.length);
  for (let r = 0; r < result.rows.length; r++) {
    const src = result.rows[r]!;
    const out = new Array(width);
    for (let i = 0; i < width; i++) {
      const v = src[i];
      out[i] = v === null || v === undefined ? null : encoders[i]!.encode(v);
    }
    rows[r] = out;
  }
  return { schema, rows };
}

function timestampMicros(v: DuckDBValue): bigint {
  const anyTs = v as unknown as { micros?: bigint; millis?: bigint; seconds?: bigint; nanos?: bigint };
  if (anyTs.micros !== undefined) return anyTs.micros;
  if (anyTs.millis !== undefined) return anyTs.millis * 1000n;
  if (anyTs.seconds !== undefined) return anyTs.seconds * 1_000_000n;
  if (anyTs.nanos !== undefined) return anyTs.nanos / 1000n;
  return 0n;
}

function toJsonish(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v === null || typeof v !== 'object') return v;
  const items = (v as { items?: unknown[] }).items;
  if (Array.isArray(items)) return items.map(toJsonish);
  const entries = (v as { entries?: Record<string, unknown> }).entries;
  if (entries && typeof entries === 'object' && !Array.isArray(entries)) {
    return Object.fromEntries(Object.entries(entries).map(([k, x]) => [k, toJsonish(x)]));
  }
  return String(v);
}

/** A DuckDB value as input for column coercion. */
export function duckToInput(v: DuckDBValue): InputValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v;
  if (v instanceof DuckDBDecimalValue) return v.toString();
  if (v instanceof DuckDBTimestampValue || v instanceof DuckDBTimestampTZValue) return v.micros;
  if (v instanceof DuckDBTimeValue) return Number(v.micros);
  if (v instanceof DuckDBDateValue) return v.days;
  if (v instanceof DuckDBUUIDValue) return v.toString();
  if (v instanceof DuckDBBlobValue) return v.bytes;
  return JSON.stringify(toJsonish(v));
}
