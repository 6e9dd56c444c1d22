/**
 * Structured logging: one JSON object per line on stdout. Never pass secrets (passwords, tokens)
 * in fields; callers log user names and statement kinds, not statement text with literals.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

export function isLogLevel(value: string): value is LogLevel {
  return value in levelRank;
}

/** `json`: one JSON object per line (for log collectors); `pretty`: aligned, coloured text for a terminal. */
export type LogFormat = 'json' | 'pretty';

/** `urgent` (warnings and errors) asks the writer not to hold the line back. */
export function createLogger(level: LogLevel, write: (line: string, urgent: boolean) => void = defaultWrite, format: LogFormat = 'json'): Logger {
  const min = levelRank[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (levelRank[lvl] < min) return;
    const line = format === 'json'
      ? encodeLine({ ts: isoNow(), level: lvl, msg, ...fields })
      : prettyLine(new Date(), lvl, msg, fields);
    write(line + '\n', levelRank[lvl] >= levelRank.warn);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    enabled: (lvl) => levelRank[lvl] >= min,
  };
}

let isoMs = 0;
let isoText = '';

/**
 * The time as ISO 8601 text, made once per millisecond: a busy server logs several lines per
 * millisecond, and formatting a Date costs about as much as the rest of the line.
 */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

/**
 * Lines logged during one event-loop turn go to stdout in one write (a busy server logs a line per
 * request: one write() syscall each cost more than the rest of the logging). Warnings and errors are
 * written at once, with whatever is pending before them; pending lines are written at exit too. A
 * SIGKILL loses at most the info lines of the current turn.
 */
let pending: string[] = [];
let scheduled = false;
let exitHooked = false;

function flushPending(): void {
  scheduled = false;
  if (pending.length === 0) return;
  const text = pending.length === 1 ? pending[0]! : pending.join('');
  pending = [];
  process.stdout.write(text);
}

function defaultWrite(line: string, urgent = false): void {
  pending.push(line);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', flushPending);
  }
  if (urgent) flushPending();
  else if (!scheduled) {
    scheduled = true;
    setImmediate(flushPending);
  }
}

/**
 * The record as JSON, bigints as strings. Without a replacer JSON.stringify takes its fast path (a
 * request line costs about half); it throws on a bigint, and only then is the replacer used.
 */
function encodeLine(record: Record<string, unknown>): string {
  try {
    return JSON.stringify(record);
  } catch {
    return JSON.stringify(record, bigintSafe);
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

const LEVEL_STYLE: Record<LogLevel, string> = { debug: '\x1b[90mDEBUG', info: '\x1b[36mINFO ', warn: '\x1b[33mWARN ', error: '\x1b[31mERROR' };

/** `12:04:05.123 INFO  request method=POST route=/v1/api/sql status=200 ms=1.2`: fields as key=value, strings with spaces quoted. */
export function prettyLine(at: Date, level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  const time = at.toISOString().slice(11, 23);
  let out = `\x1b[90m${time}\x1b[0m ${LEVEL_STYLE[level]}\x1b[0m ${msg}`;
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    const text = typeof value === 'string' ? (/[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value) : JSON.stringify(value, bigintSafe);
    out += ` \x1b[90m${key}=\x1b[0m${text}`;
  }
  return out;
}
