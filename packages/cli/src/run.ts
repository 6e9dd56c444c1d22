/** Running statements for the CLI: connecting, printing results, and the error → exit code mapping. */
import { createClient, KalamError, type KalamClient, type QueryResult } from '@kalamdb/client';
import { formatResult, type Format } from './format.js';

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

export function connect(opts: CliOptions): KalamClient {
  const auth = opts.token !== null ? { token: opts.token } : { user: opts.user, password: opts.password ?? '' };
  return createClient({ url: opts.url, auth });
}

/** Runs one statement and prints its result; returns the exit code it implies (0, 1 or 2). */
export async function runStatement(client: KalamClient, sql: string, opts: Pick<CliOptions, 'format' | 'timing'>): Promise<number> {
  const started = performance.now();
  const stop = spinner();
  try {
    const res = await client.query(sql);
    stop();
    for (const result of res.results as readonly QueryResult[]) process.stdout.write(formatResult(result, opts.format) + '\n');
    if (opts.timing) process.stderr.write(`Time: ${(performance.now() - started).toFixed(1)} ms\n`);
    return 0;
  } catch (error) {
    stop();
    return reportError(error);
  }
}

export function reportError(error: unknown): number {
  if (error instanceof KalamError) {
    const connection = ['CONNECTION_FAILED', 'INVALID_CREDENTIALS', 'MISSING_AUTHORIZATION', 'AUTH_FAILED', 'RATE_LIMIT_EXCEEDED'].includes(error.code);
    process.stderr.write(`ERROR ${error.code}: ${error.message}\n`);
    return connection ? 2 : 1;
  }
  process.stderr.write(`ERROR: ${(error as Error).message}\n`);
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

