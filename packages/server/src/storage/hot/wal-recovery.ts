/**
 * What RocksDB's WAL recovery dropped at the last open. In point-in-time recovery (rocksdb-native's
 * default) a damaged record ends the replay: it and every record after it are skipped, and the store
 * opens as of the commit before. RocksDB says so only in its own `LOG`; the server must say it in its
 * log, where an operator looks (a fault review found acknowledged rows gone without a word).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface WalDrop {
  /** The WAL file, as RocksDB names it. */
  readonly file: string;
  readonly bytes: number;
  /** RocksDB's reason: `Corruption: checksum mismatch`, `Corruption: truncated record body`, ... */
  readonly reason: string;
}

const DROPPING = /\] (\S+): dropping (\d+) bytes; (.*)$/;

/** The drops RocksDB's `LOG` (started afresh by each open) reports for the open that just ran. */
export function walRecoveryDrops(rocksDir: string): WalDrop[] {
  let text: string;
  try {
    text = readFileSync(join(rocksDir, 'LOG'), 'utf8');
  } catch {
    return [];
  }
  const drops: WalDrop[] = [];
  for (const line of text.split('\n')) {
    const m = DROPPING.exec(line);
    if (m !== null) drops.push({ file: m[1]!, bytes: Number(m[2]), reason: m[3]!.trim() });
  }
  return drops;
}
