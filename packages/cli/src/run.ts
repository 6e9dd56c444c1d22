/** Running statements for the CLI: connecting, printing results, scripts, and the error → exit code mapping. */
import { createClient, KalamError, type KalamClient, type QueryResult } from '@kalamdb/client';
import { formatResult, type Format } from './format.js';
import { describeStatement, splitStatements } from './split.js';

export interface CliOptions {
  url: string;
  user: string;
  password: string | null;
  token: string | null;
  command: string | null;
  file: string | null;
  format: Format;
  timing: boolean;
}

/** How results are printed. */
export interface OutputOptions {
  readonly format: Format;
  readonly timing: boolean;
  readonly expanded?: boolean;
}

export function connect(opts: CliOptions): KalamClient {
  const auth = opts.token !== null ? { token: opts.token } : { user: opts.user, password: opts.password ?? '' };
  return createClient({ url: opts.url, auth });
}

/** Thrown (internally) when the user interrupts the wait for a result. */
class Interrupted extends Error {}

/**
 * Runs one statement (or one request of several) and prints its result; returns the exit code it
 * implies (0, 1 or 2). `signal` stops waiting for the result (the server cannot cancel a statement
 * once sent); a statement whose signal is already aborted is not sent at all. `where` prefixes an
 * error with its origin, e.g. the script file and line.
 */
export async function runStatement(client: KalamClient, sql: string, opts: OutputOptions, signal?: AbortSignal, where?: string): Promise<number> {
  if (signal?.aborted === true) return 130;
  const started = performance.now();
  const stop = spinner();
  try {
    const res = await untilAborted(client.query(sql), signal);
    stop();
    for (const result of res.results as readonly QueryResult[]) process.stdout.write(formatResult(result, opts.format, { expanded: opts.expanded === true }) + '\n');
    if (opts.timing) process.stderr.write(`Time: ${(performance.now() - started).toFixed(1)} ms\n`);
    return 0;
  } catch (error) {
    stop();
    if (error instanceof Interrupted) {
      process.stderr.write('Interrupted: no longer waiting for the result (the server may still complete the statement).\n');
      return 130;
    }
    const code = reportError(error, where);
    if (where !== undefined) process.stderr.write(`  statement: ${describeStatement(sql, 80)}\n`);
    return code;
  }
}

/**
 * Runs a script's statements in order and stops at the first failure, naming the file, the line
 * the failing statement starts on and the statement. Returns the exit code.
 */
export async function runScript(client: KalamClient, text: string, name: string, opts: OutputOptions, signal?: AbortSignal): Promise<number> {
  for (const statement of splitStatements(text)) {
    const code = await runStatement(client, statement.sql, opts, signal, `${name}:${statement.line}`);
    if (code !== 0) return code;
  }
  return 0;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Interrupted());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}

/** Prints `ERROR CODE: message` (after `where: ` when given) on stderr; returns 2 for connection and authentication failures, else 1. */
export function reportError(error: unknown, where?: string): number {
  const prefix = where !== undefined ? `${where}: ` : '';
  if (error instanceof KalamError) {
    const connection = ['CONNECTION_FAILED', 'INVALID_CREDENTIALS', 'MISSING_AUTHORIZATION', 'AUTH_FAILED', 'RATE_LIMIT_EXCEEDED'].includes(error.code);
    process.stderr.write(`${prefix}ERROR ${error.code}: ${error.message}\n`);
    return connection ? 2 : 1;
  }
  process.stderr.write(`${prefix}ERROR: ${(error as Error).message}\n`);
  return 2;
}

/** A progress line on stderr for anything slower than a second, only on a terminal. */
function spinner(): () => void {
  if (!process.stderr.isTTY) return () => undefined;
  const frames = ['|', '/', '-', '\\'];
  let n = 0;
  let shown = false;
  const timer = setInterval(() => {
    shown = true;
    process.stderr.write(`\r${frames[n++ % frames.length]} running...`);
  }, 1000);
  return () => {
    clearInterval(timer);
    if (shown) process.stderr.write('\r              \r');
  };
}
