/** Splits a SQL script into statements at semicolons outside strings, quoted names and comments. */
export function splitSql(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      i++;
      while (i < text.length && !(text[i] === ch && text[i + 1] !== ch)) i += text[i] === ch ? 2 : 1;
      i++;
    } else if (ch === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
    } else if (ch === ';') {
      push(out, text.slice(start, i));
      start = ++i;
    } else {
      i++;
    }
  }
  push(out, text.slice(start));
  return out;
}

function push(out: string[], statement: string): void {
  const trimmed = statement.trim();
  if (trimmed !== '' && !/^(--[^\n]*\n?\s*)*$/.test(trimmed)) out.push(trimmed);
}

/** True when the text ends a statement (a semicolon outside strings and comments). */
export function isComplete(text: string): boolean {
  const trimmed = text.trimEnd();
  if (!trimmed.endsWith(';')) return false;
  let inString: string | null = null;
  for (let i = 0; i < trimmed.length; i++) {
    const ch = trimmed[i]!;
    if (inString !== null) {
      if (ch === inString) inString = trimmed[i + 1] === ch ? (i++, inString) : null;
    } else if (ch === "'" || ch === '"') inString = ch;
  }
  return inString === null;
}
