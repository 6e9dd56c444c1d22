/**
 * Result output: an aligned table (or, expanded, one `-[ RECORD n ]` block per row), JSON lines or
 * CSV. Tables show TIMESTAMP, DATE and TIME cells as ISO-8601 text; JSON and CSV keep the wire
 * values (µs since the epoch, days since the epoch, µs since midnight) as they are.
 */
import type { QueryResult, SchemaField } from '@kalamdb/client';

export type Format = 'table' | 'json' | 'csv';

export interface FormatOptions {
  /** Table format only: one block per row, a `name | value` line per column (psql's \x). */
  readonly expanded?: boolean;
}

export function formatResult(result: QueryResult, format: Format, opts: FormatOptions = {}): string {
  if (result.schema === undefined) {
    if (format === 'json') return JSON.stringify({ message: result.message ?? '', row_count: result.row_count });
    return result.message ?? `${result.row_count} row(s)`;
  }
  const names = result.schema.map((f) => f.name);
  const rows = result.rows ?? [];
  if (format === 'json') return rows.map((r) => JSON.stringify(Object.fromEntries(names.map((n, i) => [n, r[i]])))).join('\n');
  if (format === 'csv') return [names.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n');
  const types = result.schema;
  const cells = rows.map((r) => r.map((v, i) => displayCell(v, types[i])));
  if (opts.expanded === true) return expanded(names, cells);
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]): string => values.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(names), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line), rowCount(rows.length)].join('\n');
}

function rowCount(n: number): string {
  return `(${n} row${n === 1 ? '' : 's'})`;
}

/** psql's expanded layout: `-[ RECORD 1 ]-+----` then `name | value` per column. */
function expanded(names: readonly string[], cells: readonly (readonly string[])[]): string {
  if (cells.length === 0) return rowCount(0);
  const nameWidth = Math.max(...names.map((n) => n.length));
  const valueWidth = Math.max(0, ...cells.flatMap((r) => r.map((v) => v.length)));
  const out: string[] = [];
  cells.forEach((row, n) => {
    let header = `-[ RECORD ${n + 1} ]`;
    if (header.length < nameWidth + 1) header = header.padEnd(nameWidth + 1, '-') + '+' + '-'.repeat(valueWidth + 1);
    else header = header.padEnd(nameWidth + 3 + valueWidth, '-');
    out.push(header);
    names.forEach((name, i) => out.push(`${name.padEnd(nameWidth)} | ${row[i]!}`.trimEnd()));
  });
  return out.join('\n');
}

/** A cell as the table formats show it: NULL, ISO dates and times, JSON for arrays and objects. */
export function displayCell(v: unknown, field?: SchemaField): string {
  if (v === null || v === undefined) return 'NULL';
  const type = field?.data_type;
  if ((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v))) {
    const iso = type === 'Timestamp' ? isoTimestamp(BigInt(v)) : type === 'Date' ? isoDate(BigInt(v)) : type === 'Time' ? isoTime(BigInt(v)) : null;
    if (iso !== null) return iso;
  }
  return text(v);
}

const MAX_MS = 8.64e15; // the Date range

/** µs since the epoch → 2024-05-06T07:08:09.123Z (six fraction digits when there are µs). */
export function isoTimestamp(us: bigint): string | null {
  let ms = us / 1000n;
  let rest = us % 1000n;
  if (rest < 0n) { rest += 1000n; ms -= 1n; }
  if (ms > BigInt(MAX_MS) || ms < -BigInt(MAX_MS)) return null;
  const iso = new Date(Number(ms)).toISOString();
  return rest === 0n ? iso : iso.replace(/Z$/, `${String(rest).padStart(3, '0')}Z`);
}

/** Days since the epoch → 2024-05-06. */
export function isoDate(days: bigint): string | null {
  const ms = days * 86_400_000n;
  if (ms > BigInt(MAX_MS) || ms < -BigInt(MAX_MS)) return null;
  return new Date(Number(ms)).toISOString().split('T')[0]!;
}

/** µs since midnight → 07:08:09 (with .ffffff when there is a fraction). */
export function isoTime(us: bigint): string | null {
  if (us < 0n || us >= 86_400_000_000n) return null;
  const seconds = Number(us / 1_000_000n);
  const fraction = us % 1_000_000n;
  const hms = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return fraction === 0n ? hms : `${hms}.${String(fraction).padStart(6, '0')}`;
}

function text(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = text(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
