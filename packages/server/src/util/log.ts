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

export function createLogger(level: LogLevel, write: (line: string) => void = defaultWrite): Logger {
  const min = levelRank[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (levelRank[lvl] < min) return;
    write(JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg, ...fields }, bigintSafe) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    enabled: (lvl) => levelRank[lvl] >= min,
  };
}

function defaultWrite(line: string): void {
  process.stdout.write(line);
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
