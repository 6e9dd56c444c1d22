/**
 * `main.js restore --from <backup dir> --data-dir <dir>` (`kalamdb restore`): restores a backup into
 * a data directory that holds no database, offline. Every checksum is verified first; a damaged
 * backup is refused naming the file. The server is then started on the directory as usual.
 */
import { resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { StartupError } from './util/errors.js';
import { BackupDamagedError } from './storage/backup/backup-format.js';
import { dataDirContents, restoreInto } from './storage/backup/restore.js';

function flagValues(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) out.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (arg.startsWith('--') && argv[i + 1] !== undefined) out.set(arg.slice(2), argv[++i]!);
    else throw new StartupError(`unexpected argument '${arg}'`, 'Usage: kalamdb restore --from <backup dir> --data-dir <empty dir>');
  }
  for (const name of out.keys()) {
    if (name !== 'from' && name !== 'data-dir') throw new StartupError(`unknown flag --${name}`, 'Usage: kalamdb restore --from <backup dir> --data-dir <empty dir>');
  }
  return out;
}

/** Runs the restore; returns the line printed on success. */
export async function restoreCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const flags = flagValues(argv);
  const from = flags.get('from');
  const dataDirFlag = flags.get('data-dir') ?? env.KALAMDB_DATA_DIR;
  if (from === undefined || dataDirFlag === undefined) {
    throw new StartupError('restore needs --from and --data-dir', 'Usage: kalamdb restore --from <backup dir> --data-dir <empty dir>');
  }
  const backupDir = resolve(from);
  const dataDir = resolve(dataDirFlag);
  if (!existsSync(backupDir) || !statSync(backupDir).isDirectory()) {
    throw new StartupError(`backup directory ${backupDir} not found`, 'Pass the directory BACKUP DATABASE wrote with --from');
  }
  const present = dataDirContents(dataDir);
  if (present.length > 0) {
    throw new StartupError(`data dir ${dataDir} is not empty (${present.slice(0, 5).join(', ')})`,
      'Restore into a new or empty directory, or use RESTORE DATABASE on the running server');
  }
  try {
    const summary = await restoreInto(dataDir, backupDir);
    return JSON.stringify({
      restored: backupDir, data_dir: dataDir, created_at: summary.manifest.created_at, tables: summary.manifest.tables,
      kv_records: summary.kv_records, cold_files: summary.cold_files, bytes: summary.bytes, verify_ms: summary.verify_ms, load_ms: summary.load_ms,
    });
  } catch (error) {
    if (error instanceof BackupDamagedError) {
      throw new StartupError(`backup ${backupDir} cannot be restored: ${error.message}`, 'Nothing was written; use another backup', { cause: error });
    }
    throw error;
  }
}
