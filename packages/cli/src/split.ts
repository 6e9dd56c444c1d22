/**
 * The CLI's small SQL lexer: finds semicolons and backslashes outside 'strings', "quoted names",
 * -- line comments and block comments. It splits scripts into statements (with the line each
 * starts on), tells the REPL when its buffer holds complete statements, and where a backslash
 * command starts on a line.
 */

export interface Lexed {
  /** Offsets of `;` outside strings and comments. */
  readonly semicolons: readonly number[];
  /** Offsets of `\` outside strings and comments. */
  readonly backslashes: readonly number[];
  /** Offset of the first character that is neither whitespace nor part of a comment; -1 if none. */
  readonly codeStart: number;
  /** The text ends inside a string, quoted name or block comment. */
  readonly open: boolean;
}

export function lex(text: string): Lexed {
  const semicolons: number[] = [];
  const backslashes: number[] = [];
  let codeStart = -1;
  let open = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      if (codeStart === -1) codeStart = i;
      i++;
      for (;;) {
        if (i >= text.length) { open = true; break; }
        if (text[i] === ch) {
          if (text[i + 1] === ch) { i += 2; continue; }
          i++;
          break;
        }
        i++;
      }
    } else if (ch === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end === -1) { open = true; i = text.length; } else i = end + 2;
    } else {
      if (ch === ';') semicolons.push(i);
      else if (ch === '\\') backslashes.push(i);
      if (codeStart === -1 && !/\s/.test(ch)) codeStart = i;
      i++;
    }
  }
  return { semicolons, backslashes, codeStart, open };
}

/** One statement of a script: its text (leading comments and whitespace removed) and the 1-based line it starts on. */
export interface Statement {
  readonly sql: string;
  readonly line: number;
}

/** Splits a SQL script into statements at semicolons outside strings, quoted names and comments. */
export function splitStatements(text: string): Statement[] {
  const out: Statement[] = [];
  let start = 0;
  for (const end of [...lex(text).semicolons, text.length]) {
    const piece = text.slice(start, end);
    const code = lex(piece).codeStart;
    if (code !== -1) {
      const sql = piece.slice(code).trim();
      out.push({ sql, line: lineAt(text, start + code) });
    }
    start = end + 1;
  }
  return out;
}

/** Statement texts only (see splitStatements). */
export function splitSql(text: string): string[] {
  return splitStatements(text).map((s) => s.sql);
}

/** True when the text holds at least one complete statement and nothing but comments after the last one. */
export function isComplete(text: string): boolean {
  const cut = completePrefix(text);
  return cut !== -1 && cut === text.length;
}

/**
 * Where the complete statements of a REPL buffer end: the offset just past the last top-level `;`
 * (extended to the end of the text when only whitespace and comments follow), or -1 when there is
 * no complete statement yet.
 */
export function completePrefix(text: string): number {
  const lexed = lex(text);
  const last = lexed.semicolons[lexed.semicolons.length - 1];
  if (last === undefined) return -1;
  const rest = text.slice(last + 1);
  const restLexed = lex(rest);
  return restLexed.codeStart === -1 && !restLexed.open ? text.length : last + 1;
}

/** A statement's first line without leading comments, shortened to `max` characters: for messages. */
export function describeStatement(sql: string, max = 60): string {
  const code = lex(sql).codeStart;
  const text = code === -1 ? sql.trim() : sql.slice(code);
  const lines = text.split('\n');
  const first = lines[0]!.trimEnd();
  if (first.length > max) return first.slice(0, max - 3) + '...';
  return lines.length > 1 && lines.slice(1).some((l) => l.trim() !== '') ? first + ' ...' : first;
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text[i] === '\n') line++;
  return line;
}
