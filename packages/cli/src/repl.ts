/**
 * The interactive shell, modelled on psql. Statements may span lines and run at `;` (everything up
 * to the last `;` of the buffer goes as one request); a backslash command may start any line, also
 * in the middle of a statement (`\r` resets it, `\q` quits, `SELECT now() \watch 1` watches it).
 * Keys: Ctrl-C clears the statement being typed and never runs anything (while a command runs, it
 * stops it); Ctrl-D on an empty line exits, discarding an unfinished statement with a note.
 * History is kept in ~/.kalam_history across runs. Reading from a pipe works the same without
 * prompts, except that an unfinished statement at the end of the input is run (as psql does).
 */
import { createInterface, type Interface } from 'node:readline';
import { appendFileSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KalamClient, KalamError } from '@kalamdb/client';
import { connect, reportError, runScript, runStatement, type CliOptions, type OutputOptions } from './run.js';
import { consumeUntilInterrupt, parseConsumeArgs } from './consume.js';
import { completePrefix, describeStatement, lex } from './split.js';
import type { Format } from './format.js';

const HISTORY = join(homedir(), '.kalam_history');

export const REPL_HELP = `Statements end with ';' and may span lines; everything up to the last ';' runs as one request.
Commands (a command may also start a line in the middle of a statement, or end one: SELECT now() \\watch 1):
  \\dt [namespace]          list tables
  \\d table                 describe a table
  \\dn, \\l                  list namespaces
  \\du                      list users (system.users; dba and system only)
  \\x [on|off]              toggle expanded display (one block per row)
  \\timing [on|off]         toggle printing the time of each statement
  \\format table|json|csv   output format
  \\i file                  run the statements in a file (stops at the first error)
  \\watch [seconds]         run the statement being typed (or the last one) every n seconds (default 2) until Ctrl-C
  \\subscribe SELECT ...    print the live changes of a query as JSON lines until Ctrl-C
  \\consume topic [group]   print a topic's new messages (ns.topic) as JSON lines until Ctrl-C (with a group:
                           as a member of it, acknowledging each; service, dba and system roles)
  \\p                       show the statement being typed (or the last one)
  \\r                       reset (clear) the statement being typed
  \\g                       run the statement being typed (or the last one again)
  \\? or \\help              this help
  \\q                       quit (an unfinished statement is discarded)
  help, quit, exit         on an empty line: this help, quit, quit
Keys:
  Ctrl-C   clear the statement being typed (nothing runs); stop a running \\watch, \\subscribe, \\consume or \\i,
           or stop waiting for a statement's result (the server may still complete it)
  Ctrl-D   on an empty line: quit; an unfinished statement is discarded with a note, never run
  Up/Down  history (kept in ~/.kalam_history)`;

type Outcome = 'continue' | 'quit';

export async function runRepl(client: KalamClient, opts: CliOptions): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  let format: Format = opts.format;
  let timing = opts.timing;
  let expanded = false;
  let buffer = '';
  let lastSql: string | null = null;
  let lastCode = 0;
  let task: AbortController | null = null;
  const output = (): OutputOptions => ({ format, timing, expanded });

  if (interactive) {
    // Say at once when the server cannot be reached or refuses the credentials.
    try {
      await client.query('SELECT 1');
    } catch (error) {
      return reportError(error);
    }
  }

  let history: string[] = [];
  try {
    history = readFileSync(HISTORY, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 1000);
  } catch {
    // no history yet
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive, history, historySize: 1000 });

  // Lines are queued and handled one at a time; Ctrl-C drops the queue (typed-ahead lines too).
  const lines: string[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  const notify = (): void => { const w = wake; wake = null; w?.(); };
  const nextLine = async (): Promise<string | null> => {
    while (lines.length === 0) {
      if (closed) return null;
      await new Promise<void>((resolve) => { wake = resolve; });
    }
    return lines.shift()!;
  };
  rl.on('line', (line) => { lines.push(line); notify(); });
  rl.on('close', () => {
    closed = true;
    if (interactive) task?.abort(); // Ctrl-D (or the terminal went away) also stops a running command
    notify();
  });
  rl.on('SIGINT', () => {
    lines.length = 0;
    const typed = buffer !== '' || rl.line !== '';
    if (task !== null) {
      process.stdout.write('^C\n');
      clearInput(rl);
      task.abort();
      return;
    }
    rl.write(null, { ctrl: true, name: 'e' }); // the cursor to the end of the line, then ^C after it
    process.stdout.write('^C\n');
    clearInput(rl);
    buffer = '';
    if (!typed) process.stdout.write('(\\q or Ctrl-D quits, \\? lists the commands)\n');
    prompt();
  });

  const prompt = (): void => {
    if (!interactive) return;
    rl.setPrompt(buffer === '' ? 'kalam> ' : '   ... ');
    rl.prompt();
  };

  /** Runs fn with an AbortSignal that Ctrl-C (or SIGINT) aborts. */
  const busy = async <T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const controller = new AbortController();
    task = controller;
    const onSignal = (): void => controller.abort();
    process.on('SIGINT', onSignal);
    try {
      return await fn(controller.signal);
    } finally {
      task = null;
      process.off('SIGINT', onSignal);
    }
  };

  const execute = async (sql: string): Promise<void> => {
    lastSql = sql;
    remember(sql.replace(/\n/g, ' '));
    lastCode = await busy((signal) => runStatement(client, sql, output(), signal));
  };

  const meta = async (command: string): Promise<Outcome> => {
    remember(command);
    const name = command.split(/\s+/, 1)[0]!;
    const arg = command.slice(name.length).trim();
    switch (name) {
      case '\\q': case '\\quit':
        return 'quit';
      case '\\r': case '\\reset':
        buffer = '';
        say('Query buffer reset (cleared).');
        break;
      case '\\p': case '\\print':
        say(buffer.trim() !== '' ? buffer : lastSql ?? 'Query buffer is empty.');
        break;
      case '\\g': {
        const sql = hasCode(buffer) ? buffer : lastSql;
        buffer = '';
        if (sql === null) complain('\\g: no statement to run');
        else await execute(sql);
        break;
      }
      case '\\?': case '\\help': case '\\h':
        say(REPL_HELP);
        break;
      case '\\timing': {
        const value = toggle(arg, timing, '\\timing');
        if (value !== null) { timing = value; say(`Timing is ${timing ? 'on' : 'off'}.`); }
        break;
      }
      case '\\x': case '\\expanded': {
        const value = toggle(arg, expanded, '\\x');
        if (value !== null) {
          expanded = value;
          say(`Expanded display is ${expanded ? 'on' : 'off'}.${expanded && format !== 'table' ? ` (It applies to the table format; the format is ${format}.)` : ''}`);
        }
        break;
      }
      case '\\format':
        if (arg === 'table' || arg === 'json' || arg === 'csv') { format = arg; say(`Output format is ${format}.`); }
        else complain(`\\format: table, json or csv (the format is ${format})`);
        break;
      case '\\dt': case '\\d': case '\\dn': case '\\l': case '\\du': {
        const sql = shortcut(name, arg);
        lastCode = await busy((signal) => runStatement(client, sql, output(), signal));
        break;
      }
      case '\\i': case '\\include': {
        const file = unquote(arg);
        if (file === '') { complain('\\i: which file? (\\i path/to/script.sql)'); break; }
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (error) {
          complain(`\\i: cannot read ${file}: ${(error as Error).message}`);
          lastCode = 1;
          break;
        }
        lastCode = await busy((signal) => runScript(client, text, file, output(), signal));
        break;
      }
      case '\\watch': {
        const seconds = arg === '' ? 2 : Number(arg);
        if (!Number.isFinite(seconds) || seconds <= 0) { complain(`\\watch: the interval must be a positive number of seconds (got ${arg})`); break; }
        const sql = hasCode(buffer) ? buffer : lastSql;
        buffer = '';
        if (sql === null) { complain('\\watch: no statement to watch: type one first, or put it before \\watch'); break; }
        lastSql = sql;
        remember(sql.replace(/\n/g, ' '));
        lastCode = await busy((signal) => watch(client, sql, seconds, output, signal));
        break;
      }
      case '\\subscribe': case '\\live': {
        const sql = arg !== '' ? arg : hasCode(buffer) ? buffer : null;
        if (arg === '') buffer = '';
        if (sql === null) { complain('\\subscribe: which query? (\\subscribe SELECT * FROM ns.table WHERE ...)'); break; }
        lastCode = await busy((signal) => subscribeUntilInterrupt(() => connect(opts), sql, signal));
        break;
      }
      case '\\consume': {
        const parsed = parseConsumeArgs(arg);
        if (parsed === null) { complain('\\consume: which topic? (\\consume ns.topic [group])'); break; }
        lastCode = await busy((signal) => consumeUntilInterrupt(client, parsed.topic, parsed.group, signal));
        break;
      }
      default:
        complain(`Unknown command ${name}: \\? lists them`);
    }
    return 'continue';
  };

  const handle = async (line: string): Promise<Outcome> => {
    const full = buffer === '' ? line : `${buffer}\n${line}`;
    const offset = full.length - line.length;
    const backslash = lex(full).backslashes.find((i) => i >= offset);
    const sqlPart = backslash === undefined ? line : line.slice(0, backslash - offset);
    const command = backslash === undefined ? null : line.slice(backslash - offset).trim();
    const word = /^(quit|exit|help)\s*;?$/i.exec(line.trim())?.[1]?.toLowerCase();
    if (command === null && word !== undefined) {
      if (buffer === '') {
        remember(word);
        if (word === 'help') { say(REPL_HELP); return 'continue'; }
        return 'quit';
      }
      if (interactive) complain(`(${word} here is part of the statement; \\q quits, Ctrl-C clears the statement)`);
    }
    if (sqlPart.trim() !== '' || (buffer !== '' && command === null)) buffer = buffer === '' ? sqlPart : `${buffer}\n${sqlPart}`;
    const cut = completePrefix(buffer);
    if (cut !== -1) {
      const sql = buffer.slice(0, cut);
      buffer = buffer.slice(cut).trimStart();
      await execute(sql);
    }
    return command !== null ? meta(command) : 'continue';
  };

  if (interactive) say(`kalam: connected to ${opts.url} as ${opts.token !== null ? 'token' : opts.user}. \\? for help, \\q to quit.`);
  prompt();
  let quit = false;
  for (;;) {
    const line = await nextLine();
    if (line === null) break;
    if (await handle(line) === 'quit') { quit = true; break; }
    prompt();
  }
  if (hasCode(buffer) || lex(buffer).open) {
    if (interactive || quit) {
      if (interactive && !quit) process.stdout.write('\n');
      complain(`discarded unfinished statement: ${describeStatement(buffer)}`);
    } else {
      lastCode = await runStatement(client, buffer, output());
    }
  } else if (interactive && !quit) {
    process.stdout.write('\n');
  }
  rl.close();
  return interactive ? 0 : lastCode;
}

/** Runs sql every `seconds` until the signal aborts or the statement fails. */
async function watch(client: KalamClient, sql: string, seconds: number, output: () => OutputOptions, signal: AbortSignal): Promise<number> {
  while (!signal.aborted) {
    process.stdout.write(`${new Date().toISOString()} (every ${seconds}s): ${describeStatement(sql)}\n`);
    const code = await runStatement(client, sql, output(), signal);
    if (code === 130) return 0;
    if (code !== 0) return code;
    process.stdout.write('\n');
    await sleep(seconds * 1000, signal);
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Prints every change of a live query as a JSON line until the signal aborts or the subscription
 * fails. Each \subscribe gets its own connection, closed at the end, so nothing of it outlives the
 * command, and an error is printed once (the SDK reports a refused subscription both to onError
 * and by rejecting subscribe()).
 */
async function subscribeUntilInterrupt(open: () => KalamClient, sql: string, signal: AbortSignal): Promise<number> {
  const client = open();
  let active = true;
  let code = 0;
  let end: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => { end = resolve; });
  signal.addEventListener('abort', () => end(), { once: true });
  const fail = (error: unknown): void => {
    if (!active) return;
    active = false;
    code = reportError(error);
    end();
  };
  const print = (change: Record<string, unknown>): void => { if (active) process.stdout.write(JSON.stringify(change) + '\n'); };
  try {
    const subscribed = client.subscribe(sql.trim().replace(/;\s*$/, ''), {
      onInitialData: (rows) => print({ change: 'initial', rows }),
      onInsert: (rows) => print({ change: 'insert', rows }),
      onUpdate: (rows, old) => print({ change: 'update', rows, old_values: old }),
      onDelete: (old) => print({ change: 'delete', rows: old }),
      onFlush: (flush) => print({ change: 'flush', flush }),
      onError: (error: KalamError) => fail(error),
    }, { batchSize: 1000 });
    subscribed.then(() => { if (active) process.stderr.write('Subscribed; Ctrl-C to stop.\n'); }, fail);
    await ended;
    return code;
  } finally {
    active = false;
    await client.disconnect();
  }
}

function shortcut(name: string, arg: string): string {
  switch (name) {
    case '\\dt': return arg ? `SHOW TABLES IN ${arg}` : 'SHOW TABLES';
    case '\\d': return arg ? `DESCRIBE TABLE ${arg}` : 'SHOW TABLES';
    case '\\du': return 'SELECT username, role, email, created_at, updated_at FROM system.users WHERE deleted_at IS NULL ORDER BY username';
    default: return 'SHOW NAMESPACES';
  }
}

/** on/off/true/false/1/0, or flip the current value when empty; null (after a message) otherwise. */
function toggle(arg: string, current: boolean, command: string): boolean | null {
  const a = arg.toLowerCase();
  if (a === '') return !current;
  if (a === 'on' || a === 'true' || a === '1') return true;
  if (a === 'off' || a === 'false' || a === '0') return false;
  complain(`${command}: on or off (got ${arg})`);
  return null;
}

function hasCode(text: string): boolean {
  return lex(text).codeStart !== -1;
}

function unquote(text: string): string {
  const m = /^'(.*)'$|^"(.*)"$/.exec(text);
  return m ? (m[1] ?? m[2]!) : text;
}

/** Empties readline's current input line (what was typed after the prompt). */
function clearInput(rl: Interface): void {
  const state = rl as unknown as { line: string; cursor: number };
  state.line = '';
  state.cursor = 0;
}

function say(text: string): void {
  process.stdout.write(text + '\n');
}

function complain(text: string): void {
  process.stderr.write(text + '\n');
}

function remember(entry: string): void {
  try {
    appendFileSync(HISTORY, entry + '\n');
  } catch {
    // history is best effort
  }
}
