/**
 * BACKUP DATABASE TO 'dir', RESTORE DATABASE FROM 'dir' and SHOW BACKUP 'dir': their grammar and
 * the path rules (upstream's: quoted, not empty, no `..`, no NUL byte, not a sensitive system
 * directory; and ours: absolute, so the path does not depend on the server's working directory).
 */
import { posix } from 'node:path';
import { invalidSql } from '../util/errors.js';
import type { StatementText, Token } from './lexer.js';
import type { Statement } from './statement.js';

/** Upstream's list: refused at the start of the path or anywhere inside it. */
const SENSITIVE_DIRS = ['/etc/', '/root/', '/var/log/', 'c:\\windows\\'];
/** Ours: the kernel's and the system's own trees, refused at the start of the path. */
const SYSTEM_TREES = ['/proc/', '/sys/', '/dev/', '/boot/', '/bin/', '/sbin/', '/usr/', '/lib/', '/lib64/'];

/** Parses the three statements; `stmt` starts with BACKUP, RESTORE or SHOW BACKUP. */
export function parseBackupStatement(stmt: StatementText): Statement {
  const words = stmt.tokens.map((t) => (t.kind === 'word' ? t.value : null));
  const [w0, w1, w2] = words;
  if (w0 === 'BACKUP') {
    if (w1 !== 'DATABASE') throw invalidSql('Expected BACKUP DATABASE statement');
    if (w2 !== 'TO') throw invalidSql('Expected TO clause in BACKUP DATABASE');
    return { kind: 'backup_database', path: pathAt(stmt.tokens, 3) };
  }
  if (w0 === 'RESTORE') {
    if (w1 !== 'DATABASE') throw invalidSql('Expected RESTORE DATABASE statement');
    if (w2 !== 'FROM') throw invalidSql('Expected FROM clause in RESTORE DATABASE');
    return { kind: 'restore_database', path: pathAt(stmt.tokens, 3) };
  }
  if (w0 === 'SHOW' && w1 === 'BACKUP') {
    // SHOW BACKUP 'dir' or SHOW BACKUP FROM 'dir'.
    return { kind: 'show_backup', path: pathAt(stmt.tokens, w2 === 'FROM' ? 3 : 2) };
  }
  throw invalidSql('Expected BACKUP DATABASE TO \'dir\', RESTORE DATABASE FROM \'dir\' or SHOW BACKUP \'dir\'');
}

function pathAt(tokens: readonly Token[], i: number): string {
  const t = tokens[i];
  if (t === undefined || (t.kind === 'punct' && t.value === ';')) throw invalidSql("The backup's directory is missing: e.g. SHOW BACKUP '/backups/2026-12-01'");
  if (t.kind !== 'string' && t.kind !== 'qident') throw invalidSql('Backup path must be quoted');
  const extra = tokens[i + 1];
  if (extra !== undefined && !(extra.kind === 'punct' && extra.value === ';')) throw invalidSql(`Unexpected '${extra.value}' at position ${extra.start + 1}`);
  return validateBackupPath(t.value);
}

/**
 * Upstream's checks (and messages), then ours: the path must be absolute. Returns the path as it is
 * checked and used: `//usr/x`, `/./usr/x` and `/var//log` name the directories the rules refuse (an
 * attack review wrote backups under /usr/local that way), so they are read as `/usr/x`, `/var/log`.
 */
export function validateBackupPath(raw: string): string {
  if (raw === '') throw invalidSql('Backup path cannot be empty');
  if (raw.includes('..')) throw invalidSql("Backup path cannot contain '..' (path traversal not allowed)");
  if (raw.includes('\0')) throw invalidSql('Backup path cannot contain null bytes');
  const path = raw.startsWith('/') ? posix.normalize(raw).replace(/^\/+/, '/').replace(/(.)\/$/, '$1') : raw;
  const normalized = `${path.toLowerCase()}/`;
  for (const sensitive of SENSITIVE_DIRS) {
    if (normalized.startsWith(sensitive) || normalized.includes(`/${sensitive.replace(/^\//, '')}`)) {
      throw invalidSql(`Backup path cannot write to sensitive directory: ${sensitive}`);
    }
  }
  for (const tree of SYSTEM_TREES) {
    if (normalized.startsWith(tree)) throw invalidSql(`Backup path cannot write to sensitive directory: ${tree}`);
  }
  if (!path.startsWith('/')) throw invalidSql(`Backup path must be absolute (start with '/'): '${path}'`);
  return path;
}
