#!/usr/bin/env node
/**
 * kalam: the KalamDB command-line client. `kalam -c "SQL"`, `kalam -f script.sql`, or an interactive
 * REPL modelled on psql (repl.ts; docs/cli.md). A missing password is asked for on a terminal and
 * named as missing elsewhere. Exit codes: 0 ok, 1 SQL error (message on stderr), 2 connection or
 * authentication failure (or a missing password).
 */
import { readFileSync } from 'node:fs';
import { connect, runScript, runStatement, type CliOptions } from './run.js';
import { runRepl } from './repl.js';
import { readHidden } from './password.js';

export const VERSION = '0.1.0';

const HELP = `kalam ${VERSION}: KalamDB command-line client

Usage:
  kalam [connection] -c "SQL"        run SQL (several statements separated by ;)
  kalam [connection] -f script.sql   run a script: statements in order, stop at the first error
                                     (named with its line in the file)
  kalam [connection]                 interactive shell: \\? lists its commands; Ctrl-C clears the
                                     statement being typed, Ctrl-D or \\q quits (docs/cli.md)

Connection (flags, or environment):
  --url URL            KALAMDB_URL       default http://localhost:8080
  --user NAME          KALAMDB_USER      default root
  --password PASS      KALAMDB_PASSWORD  asked for (hidden) on a terminal when missing
  --token JWT          KALAMDB_TOKEN     instead of user and password

Output:
  --format table|json|csv   default: table on a terminal, json when piped (tables show
                            TIMESTAMP/DATE/TIME as ISO-8601; json and csv keep the wire values)
  --timing                  print the time of each statement

  -h, --help     this help
  -V, --version  the version

Exit codes: 0 success, 1 SQL error, 2 connection or authentication failure or no password.`;

function parseArgs(argv: readonly string[]): CliOptions | 'help' | 'version' {
  const env = process.env;
  const opts: CliOptions = {
    // An empty variable (`KALAMDB_PASSWORD= kalam ...`, an unset shell variable expanded) counts as not given.
    url: env.KALAMDB_URL || 'http://localhost:8080', user: env.KALAMDB_USER || 'root', password: env.KALAMDB_PASSWORD || null,
    token: env.KALAMDB_TOKEN || null, command: null, file: null, format: process.stdout.isTTY ? 'table' : 'json', timing: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '-h': case '--help': return 'help';
      case '-V': case '--version': return 'version';
      case '--url': opts.url = value(); break;
      case '--user': case '-u': opts.user = value(); break;
      case '--password': case '-p': opts.password = value() || null; break;
      case '--token': opts.token = value() || null; break;
      case '-c': case '--command': opts.command = value(); break;
      case '-f': case '--file': opts.file = value(); break;
      case '--timing': opts.timing = true; break;
      case '--format': {
        const f = value();
        if (f !== 'table' && f !== 'json' && f !== 'csv') throw new UsageError(`--format must be table, json or csv (got ${f})`);
        opts.format = f;
        break;
      }
      default: throw new UsageError(`Unknown argument '${arg}' (see kalam --help)`);
    }
  }
  return opts;
}

class UsageError extends Error {}

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  if (opts === 'help') { process.stdout.write(HELP + '\n'); return 0; }
  if (opts === 'version') { process.stdout.write(`kalam ${VERSION}\n`); return 0; }
  let script: string | null = null;
  if (opts.command === null && opts.file !== null) {
    try {
      script = readFileSync(opts.file, 'utf8');
    } catch (error) {
      process.stderr.write(`Cannot read ${opts.file}: ${(error as Error).message}\n`);
      return 2;
    }
  }
  if (opts.token === null && opts.password === null) {
    // A missing password is asked for on a terminal; elsewhere it is named as missing rather than
    // sent empty (which the server would answer with "invalid credentials").
    if (process.stdin.isTTY !== true) {
      process.stderr.write(`kalam: no password given for user '${opts.user}': use --password, KALAMDB_PASSWORD or --token (on a terminal, kalam asks for it)\n`);
      return 2;
    }
    const password = await readHidden(`Password for user ${opts.user}: `);
    if (password === null) return 2;
    opts.password = password;
  }
  const client = connect(opts);
  try {
    if (opts.command !== null) return await runStatement(client, opts.command, opts);
    if (opts.file !== null) return await runScript(client, script ?? '', opts.file, opts);
    return await runRepl(client, opts);
  } finally {
    await client.disconnect();
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`kalam: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(2);
});
