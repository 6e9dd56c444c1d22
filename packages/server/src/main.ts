/**
 * `npm start`: read the configuration, start the server, stop cleanly on SIGTERM/SIGINT.
 * `main.js reset-root-password [flags]`: set root's password on a stopped server's data dir.
 * `main.js restore --from <backup> --data-dir <dir>`: restore a backup into an empty data dir.
 * `main.js backup --to <dir> [--data-dir d]`: back up a stopped server's data dir.
 *
 * A start that fails for a reason the operator can fix (bad setting, busy port, data dir in use or
 * not writable) prints one line, `kalamdb: <problem>. <fix>`, and exits 1; a stack trace there would
 * bury the fix. Anything else is a bug and keeps its stack.
 */
import { loadConfig, type Config } from './config/config.js';
import { createLogger } from './util/log.js';
import { StartupError, errorLine, isCorruptionError, isDiskFullError } from './util/errors.js';
import { startServer } from './app.js';
import { resetRootPassword } from './reset-root-password.js';
import { restoreCommand } from './restore-command.js';
import { backupCommand, backupTarget } from './backup-command.js';

const RESET_COMMANDS: ReadonlySet<string> = new Set(['reset-root-password', '--reset-root-password']);

const USAGE = `Usage: kalamdb [--host ADDR] [--port N] [--data-dir DIR] [--config FILE] [--log-level LEVEL] [--durability fsync|process]
       kalamdb reset-root-password [flags]             set root's password (KALAMDB_ROOT_PASSWORD) on a stopped server's data dir
       kalamdb backup --to NEW_DIR [flags]             back up a stopped server's data dir
       kalamdb restore --from DIR --data-dir DIR       restore a backup into an empty data dir

Serves SQL over HTTP and live queries over WebSocket (default http://127.0.0.1:8080, data in ./data).
Every flag has a KALAMDB_* variable and a config file setting: docs/configuration.md.
`;

function readConfig(argv: readonly string[]): Config {
  try {
    return loadConfig(argv, process.env);
  } catch (error) {
    // Config messages name the setting; the TOML parser's may span lines (a code frame): keep the first.
    throw new StartupError(`bad configuration: ${errorLine(error)}`,
      'Fix the flag, KALAMDB_* variable or config file setting (see docs/configuration.md)', { cause: error });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'help' || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (argv[0] !== undefined && RESET_COMMANDS.has(argv[0])) {
    const config = readConfig(argv.slice(1));
    process.stdout.write(`${await resetRootPassword(config)}\n`);
    return;
  }
  if (argv[0] === 'backup') {
    const { to, rest } = backupTarget(argv.slice(1));
    process.stdout.write(`${await backupCommand(readConfig(rest), to)}\n`);
    return;
  }
  if (argv[0] === 'restore') {
    process.stdout.write(`${await restoreCommand(argv.slice(1), process.env)}\n`);
    return;
  }
  const config = readConfig(argv);
  const format = config.logFormat === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.logFormat;
  const log = createLogger(config.logLevel, undefined, format);
  const server = await startServer(config, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    server.close().then(() => process.exit(0), (error: unknown) => {
      log.error('shutdown failed', { error: String(error) });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof StartupError) process.stderr.write(`kalamdb: ${error.message}\n`);
  else if (isDiskFullError(error)) {
    // E.g. applying a staged restore, or recovering, on a full volume (a fault review saw a stack trace).
    process.stderr.write(`kalamdb: the data dir's volume is full: ${errorLine(error)}. `
      + 'Free space on it or grow it, then start again; do not delete files inside the data dir (a staged restore keeps the old data in pre-restore-*)\n');
  } else if (isCorruptionError(error)) {
    process.stderr.write(`kalamdb: the hot store's files (rocksdb/ in the data dir) are damaged or missing: ${errorLine(error)}. `
      + 'Restore the data dir from a backup (docs/operations.md, "Backup and restore"); rocksdb/LOG says more\n');
  } else process.stderr.write(`kalamdb: failed to start: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
