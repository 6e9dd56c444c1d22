/**
 * The interactive shell: statements may span lines and run at `;`; history is kept in
 * ~/.kalam_history across runs; backslash commands: \dt [ns] \dn \d table \subscribe SELECT...
 * (prints live changes until Ctrl-C) \timing \help \q. Reading from a pipe works the same, without prompts.
 */
import { createInterface } from 'node:readline';
import { appendFileSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KalamClient } from '@kalamdb/client';
import { reportError, runStatement, type CliOptions } from './run.js';
import { isComplete } from './split.js';

const HISTORY = join(homedir(), '.kalam_history');
const HELP = `Statements end with ';'. Commands:
  \\dt [namespace]    list tables            \\dn              list namespaces
  \\d table           describe a table       \\timing          toggle timing
  \\subscribe SELECT ...   print live changes until Ctrl-C
  \\help              this help              \\q               quit`;

export async function runRepl(client: KalamClient, opts: CliOptions): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  let history: string[] = [];
  try {
    history = readFileSync(HISTORY, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 1000);
  } catch {
    // no history yet
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive, history, historySize: 1000 });
  let buffer = '';
  let lastCode = 0;
  let timing = opts.timing;
  const prompt = (): void => { if (interactive) rl.setPrompt(buffer === '' ? 'kalam> ' : '   ... '); if (interactive) rl.prompt(); };
  if (interactive) process.stdout.write(`kalam — connected to ${opts.url} as ${opts.token !== null ? 'token' : opts.user}. \\help for help.\n`);
  prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (buffer === '' && trimmed.startsWith('\\')) {
      remember(trimmed);
      if (trimmed === '\\q') break;
      if (trimmed === '\\timing') { timing = !timing; process.stdout.write(`Timing is ${timing ? 'on' : 'off'}.\n`); }
      else if (trimmed === '\\help' || trimmed === '\\?') process.stdout.write(HELP + '\n');
      else if (trimmed.startsWith('\\subscribe ')) lastCode = await subscribeUntilInterrupt(client, trimmed.slice(11), rl);
      else {
        const sql = shortcut(trimmed);
        if (sql === null) process.stderr.write(`Unknown command ${trimmed}: \\help lists them\n`);
        else lastCode = await runStatement(client, sql, { format: opts.format, timing });
      }
      prompt();
      continue;
    }
    buffer += (buffer === '' ? '' : '\n') + line;
    if (isComplete(buffer)) {
      const sql = buffer;
      buffer = '';
      remember(sql.replace(/\n/g, ' '));
      lastCode = await runStatement(client, sql, { format: opts.format, timing });
    }
    prompt();
  }
  if (buffer.trim() !== '') lastCode = await runStatement(client, buffer, { format: opts.format, timing });
  rl.close();
  return interactive ? 0 : lastCode;
}

function shortcut(command: string): string | null {
  const [name, arg] = command.split(/\s+/, 2);
  switch (name) {
    case '\\dt': return arg ? `SHOW TABLES IN ${arg}` : 'SHOW TABLES';
    case '\\dn': return 'SHOW NAMESPACES';
    case '\\d': return arg ? `DESCRIBE TABLE ${arg}` : 'SHOW TABLES';
    default: return null;
  }
}

function remember(entry: string): void {
  try {
    appendFileSync(HISTORY, entry + '\n');
  } catch {
    // history is best effort
  }
}

/** Prints every change of a live query as a JSON line until Ctrl-C (or end of input). */
async function subscribeUntilInterrupt(client: KalamClient, sql: string, rl: ReturnType<typeof createInterface>): Promise<number> {
  const print = (type: string, rows: readonly unknown[]): void => { process.stdout.write(JSON.stringify({ change: type, rows }) + '\n'); };
  try {
    const sub = await client.subscribe(sql.replace(/;\s*$/, ''), {
      onInitialData: (rows) => print('initial', rows),
      onInsert: (rows) => print('insert', rows),
      onUpdate: (rows, old) => process.stdout.write(JSON.stringify({ change: 'update', rows, old_values: old }) + '\n'),
      onDelete: (old) => print('delete', old),
      onFlush: (flush) => process.stdout.write(JSON.stringify({ change: 'flush', flush }) + '\n'),
      onError: (error) => process.stderr.write(`ERROR ${error.code}: ${error.message}\n`),
    }, { batchSize: 1000 });
    process.stderr.write('Subscribed; Ctrl-C to stop.\n');
    await new Promise<void>((resolve) => {
      const stop = (): void => { rl.off('SIGINT', stop); process.off('SIGINT', stop); resolve(); };
      rl.once('SIGINT', stop);
      process.once('SIGINT', stop);
    });
    await sub.unsubscribe();
    return 0;
  } catch (error) {
    return reportError(error);
  }
}
