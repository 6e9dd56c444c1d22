// Markdown for the benchmark report scripts (pg-report.mjs, pg-realtime-report.mjs): a cell as
// docs/benchmarks.md writes numbers, and a table appended to a list of lines.

/** A number with thousands separators, text as is, nothing for a missing value. */
export const n = (x) => (x === undefined || x === null ? '' : typeof x === 'number' ? x.toLocaleString('en-US') : String(x));

/** Appends a Markdown table (and a blank line) to `lines`. */
export function table(lines, head, rows) {
  lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const row of rows) lines.push(`| ${row.map(n).join(' | ')} |`);
  lines.push('');
}
