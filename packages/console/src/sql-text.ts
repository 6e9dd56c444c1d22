/**
 * SQL for display: a tokenizer good enough to colour keywords, strings, numbers and comments in the
 * editor (it never decides what runs: the server parses), and the cells of results as text.
 */
const KEYWORDS = new Set(`select from where and or not insert into values update set delete create drop alter table namespace
user users shared stream storage flush compact check repair kill job live subscribe to as on join left right inner outer full
group by order having limit offset distinct union all with recursive case when then else end null is in like between exists
primary key default true false asc desc show describe execute grant revoke begin commit rollback if count sum avg min max
backup restore database export data topic consume ack`.split(/\s+/));

export interface Token {
  readonly kind: 'kw' | 'str' | 'num' | 'cmt' | 'text';
  readonly text: string;
}

export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const re = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|([\s\S])/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(sql)) !== null) {
    if (m[1] !== undefined) out.push({ kind: 'cmt', text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: 'str', text: m[2] });
    else if (m[3] !== undefined) out.push({ kind: 'num', text: m[3] });
    else if (m[4] !== undefined) out.push({ kind: KEYWORDS.has(m[4].toLowerCase()) ? 'kw' : 'text', text: m[4] });
    else out.push({ kind: 'text', text: m[5]! });
  }
  return out;
}

/** A SQL string literal and a quoted identifier, for the statements the pages build from cell values. */
export const sqlString = (v: string): string => `'${v.replace(/'/g, "''")}'`;
export const sqlIdent = (v: string): string => `"${v.replace(/"/g, '""')}"`;

/** A result cell as text: BIGINT and DECIMAL arrive as strings (exact), timestamps as µs since the epoch. */
export function cellText(value: unknown, dataType: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const type = typeof dataType === 'string' ? dataType : 'Decimal';
  if (type === 'Timestamp' && (typeof value === 'number' || typeof value === 'string')) {
    const micros = BigInt(value);
    const ms = Number(micros / 1000n);
    const iso = new Date(ms).toISOString();
    const rest = (micros % 1000n).toString().padStart(3, '0');
    return `${iso.slice(0, 23)}${rest === '000' ? '' : rest}Z`;
  }
  if (type === 'Date' && typeof value === 'number') return new Date(value * 86_400_000).toISOString().slice(0, 10);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Rows as CSV (RFC 4180: fields with comma, quote or newline quoted, quotes doubled). A text that a
 * spreadsheet would take for a formula (starting with = + - @, a tab or a carriage return) gets a
 * leading `'`, unless it is a plain number: any user who can write a cell could otherwise plant a
 * formula that runs when an admin opens the download (OWASP's CSV injection).
 */
export function toCsv(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const defused = (s: string): string => (/^[=+\-@\t\r]/.test(s) && !/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(s) ? `'${s}` : s);
  const field = (raw: string): string => {
    const s = defused(raw);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns, ...rows].map((r) => r.map(field).join(',')).join('\r\n') + '\r\n';
}

export function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
