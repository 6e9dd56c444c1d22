/**
 * Cell values: coercion of client input (SQL literals, JSON params, query results) to a column's
 * stored form with exact range and format checks, and encoding of stored values into the
 * protocol's JSON cells (64-bit integers and decimals as strings, times as integer microseconds).
 */
import { execError } from '../util/errors.js';
import { stringifyJson } from '../util/json.js';
import type { ColumnDef, ColumnSpec, ColumnType, StoredValue } from '../catalog/types.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_TEXT = /^[+-]?\d+$/;
const DECIMAL_TEXT = /^([+-])?(\d*)(?:\.(\d*))?$/;
const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const TIME_TEXT = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;
const MICROS_PER_DAY = 86_400_000_000;

/** A value on its way into a column, before coercion. */
export type InputValue = StoredValue | readonly number[] | Record<string, unknown> | undefined;

/** Coerces an input value to the column's stored form, or fails naming the column. */
export function coerce(column: ColumnSpec, value: InputValue): StoredValue {
  if (value === null || value === undefined) {
    if (!column.nullable) throw execError(`NULL value in column '${column.name}' violates NOT NULL`);
    return null;
  }
  const out = coerceType(column, value);
  if (out === undefined) {
    throw execError(`Invalid value for column '${column.name}' of type ${typeLabel(column)}: ${preview(value)}`);
  }
  return out;
}

function coerceType(column: ColumnSpec, value: Exclude<InputValue, null | undefined>): StoredValue | undefined {
  switch (column.type) {
    case 'Boolean': return toBoolean(value);
    case 'SmallInt': return toBoundedInt(value, -32768, 32767);
    case 'Int': return toBoundedInt(value, -2147483648, 2147483647);
    case 'BigInt': return toInt64(value);
    case 'Float': return toFloat32(value);
    case 'Double': return toFloat(value);
    case 'Text': return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' ? String(value) : undefined;
    case 'Timestamp': return toTimestamp(value);
    case 'Date': return toDate(value);
    case 'Time': return toTime(value);
    case 'Decimal': return toDecimal(value, column.precision ?? 18, column.scale ?? 0);
    case 'Uuid': return typeof value === 'string' && UUID_TEXT.test(value.toLowerCase()) ? value.toLowerCase() : undefined;
    case 'Json': return toJson(value);
    case 'Bytes': return toBytes(value);
  }
}

function toBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    if (v === 'true' || v === 't') return true;
    if (v === 'false' || v === 'f') return false;
  }
  return undefined;
}

function toBoundedInt(value: unknown, min: number, max: number): number | undefined {
  let n: number | undefined;
  if (typeof value === 'number' && Number.isInteger(value)) n = value;
  else if (typeof value === 'bigint') n = value >= BigInt(min) && value <= BigInt(max) ? Number(value) : undefined;
  else if (typeof value === 'string' && INTEGER_TEXT.test(value.trim())) n = Number(value.trim());
  return n !== undefined && n >= min && n <= max ? n : undefined;
}

function toInt64(value: unknown): bigint | undefined {
  let n: bigint | undefined;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && INTEGER_TEXT.test(value.trim())) n = BigInt(value.trim());
  return n !== undefined && n >= INT64_MIN && n <= INT64_MAX ? n : undefined;
}

function toFloat(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isNaN(n) && value.trim().toLowerCase() !== 'nan' ? undefined : n;
  }
  return undefined;
}

/** FLOAT is 32-bit: values are rounded to float32 when stored, and ones beyond its range refused. */
function toFloat32(value: unknown): number | undefined {
  const n = toFloat(value);
  if (n === undefined) return undefined;
  const f = Math.fround(n);
  return Number.isFinite(n) && !Number.isFinite(f) ? undefined : f;
}

/** The shortest decimal that reads back as the same float32 (1.1, not 1.100000023841858). */
export function float32Shortest(v: number): number {
  if (!Number.isFinite(v)) return v;
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(f.toPrecision(p));
    if (Math.fround(candidate) === f) return candidate;
  }
  return f;
}

/** JSON has no NaN or infinities: those cells travel as strings. */
export function floatCell(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

function toTimestamp(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (INTEGER_TEXT.test(text)) return toTimestamp(BigInt(text));
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    return undefined;
  }
  const micros = ms * 1000 + Number(frac.padEnd(6, '0').slice(0, 6));
  return micros - zoneOffsetMicros(zone);
}

function zoneOffsetMicros(zone: string | undefined): number {
  if (zone === undefined || zone === 'Z' || zone === 'z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0');
  return sign * minutes * 60_000_000;
}

function toDate(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (INTEGER_TEXT.test(value.trim())) return Number(value.trim());
  const micros = toTimestamp(value);
  if (micros === undefined) return undefined;
  // `2024-05-06`, or a timestamp at exactly midnight UTC (what a JS Date of that day serializes to);
  // any other time of day would be silently cut off, so it is refused.
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value.trim()) && micros % MICROS_PER_DAY !== 0) return undefined;
  return Math.floor(micros / MICROS_PER_DAY);
}

function toTime(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value < MICROS_PER_DAY ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = TIME_TEXT.exec(value.trim());
  if (!m) return undefined;
  const [, h, mi, s = '0', frac = ''] = m;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  return ((Number(h) * 60 + Number(mi)) * 60 + Number(s)) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

/** Exact decimal parsing: the unscaled integer at the column's scale, rounded half away from zero. */
function toDecimal(value: unknown, precision: number, scale: number): bigint | undefined {
  let text: string;
  if (typeof value === 'string') text = value.trim();
  else if (typeof value === 'number' && Number.isFinite(value)) text = Math.abs(value) < 1e21 ? value.toFixed(Math.min(scale + 1, 100)) : '';
  else if (typeof value === 'bigint') text = value.toString();
  else return undefined;
  const m = DECIMAL_TEXT.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const [, sign = '+', whole = '', frac = ''] = m;
  let unscaled = BigInt((whole || '0') + frac.padEnd(scale, '0').slice(0, scale));
  if (frac.length > scale && Number(frac[scale]) >= 5) unscaled += 1n;
  if (unscaled.toString().length > precision) return undefined;
  return sign === '-' ? -unscaled : unscaled;
}

function toJson(value: unknown): string | undefined {
  if (typeof value === 'string') {
    try {
      JSON.parse(value);
      return value;
    } catch {
      return undefined;
    }
  }
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  // stringifyJson: a param's integers past 2^53 arrive as bigints and are kept digit for digit.
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) return stringifyJson(value);
  return undefined;
}

function toBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    return value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255) ? Uint8Array.from(value as number[]) : undefined;
  }
  if (typeof value === 'string') {
    if (/^\\x([0-9a-fA-F]{2})*$/.test(value)) return Uint8Array.from(Buffer.from(value.slice(2), 'hex'));
    return Uint8Array.from(Buffer.from(value, 'utf8'));
  }
  return undefined;
}

/** Encodes a stored value as the protocol's JSON cell. */
export function encodeCell(column: Pick<ColumnDef, 'type' | 'scale'>, value: StoredValue): unknown {
  if (value === null) return null;
  switch (column.type) {
    case 'BigInt': return (value as bigint).toString();
    case 'Decimal': return formatDecimal(value as bigint, column.scale ?? 0);
    case 'Bytes': return Array.from(value as Uint8Array);
    case 'Float': return floatCell(float32Shortest(value as number));
    case 'Double': return floatCell(value as number);
    default: return value;
  }
}

export function formatDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

/** The protocol's data_type for a column. */
export function protocolType(column: Pick<ColumnDef, 'type' | 'precision' | 'scale'>): string | { Decimal: { precision: number; scale: number } } {
  if (column.type === 'Decimal') return { Decimal: { precision: column.precision ?? 18, scale: column.scale ?? 0 } };
  return column.type;
}

export function typeLabel(column: Pick<ColumnDef, 'type' | 'precision' | 'scale'>): string {
  return column.type === 'Decimal' ? `DECIMAL(${column.precision},${column.scale})` : sqlTypeName(column.type);
}

export function sqlTypeName(type: ColumnType): string {
  return type === 'SmallInt' ? 'SMALLINT' : type === 'BigInt' ? 'BIGINT' : type.toUpperCase();
}

function preview(value: unknown): string {
  const text = typeof value === 'string' ? `'${value}'` : typeof value === 'bigint' ? value.toString() : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
