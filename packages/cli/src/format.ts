/** Result output: aligned table, JSON lines or CSV, with a row count and timing footer for tables. */
import type { QueryResult } from '@kalamdb/client';

export type Format = 'table' | 'json' | 'csv';

export function formatResult(result: QueryResult, format: Format): string {
  if (result.schema === undefined) {
    if (format === 'json') return JSON.stringify({ message: result.message ?? '', row_count: result.row_count });
    return result.message ?? `${result.row_count} row(s)`;
  }
  const names = result.schema.map((f) => f.name);
  const rows = result.rows ?? [];
  if (format === 'json') return rows.map((r) => JSON.stringify(Object.fromEntries(names.map((n, i) => [n, r[i]])))).join('\n');
  if (format === 'csv') return [names.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n');
  const cells = rows.map((r) => r.map(text));
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]): string => values.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(names), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line), `(${rows.length} row${rows.length === 1 ? '' : 's'})`].join('\n');
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
