/**
 * The backup directory's format (decision 0021): what files a backup holds, the key/value dump of
 * RocksDB (length-prefixed records in chunk files, written and read as streams), the checksum list
 * (`checksums.sha256`, sha256sum's format plus a trailer line checksumming the list itself) and the
 * backup manifest (`backup.json`). Verification lives here too: every listed file is read and
 * hashed, and the first file that is missing or differs is named.
 *
 *   backup.json                 BackupManifest
 *   checksums.sha256            "<sha256>  <path>" per file (backup.json included), then "# list <sha256>"
 *   rocksdb/kv-000001.bin ...   MAGIC, records (u32 key length, u32 value length, key, value), trailer
 *                               (u32 0xFFFFFFFF, u32 0, u64 record count); big-endian
 *   cold/t<table id>/<partition|@shared>/manifest.json, batch-N.parquet
 *   config/jwt-secret           when the server generated its secret (not when configured)
 *   .in-progress                while the backup is being written (never listed)
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import { fsyncPath } from '../cold/manifest.js';

export const BACKUP_FORMAT = 1;
export const BACKUP_MANIFEST_FILE = 'backup.json';
export const CHECKSUMS_FILE = 'checksums.sha256';
export const IN_PROGRESS_FILE = '.in-progress';
export const KV_DIR = 'rocksdb';
export const COLD_DIR = 'cold';
export const JWT_SECRET_FILE = 'config/jwt-secret';
/** The directory name of a SHARED table's one partition (an account id never starts with `@s`). */
export const SHARED_PARTITION_DIR = '@shared';
const KV_MAGIC = Buffer.from('KALAMKV1', 'latin1');
const KV_END = 0xffff_ffff;
/** A chunk file is closed past this many bytes (so a copy of the backup can be moved piecewise). */
export const KV_CHUNK_BYTES = 256 * 1024 * 1024;
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
const LIST_TRAILER = '# list ';
/** Bounds on what a restore reads into memory from a backup (which a dba may have hand-made). */
const LIST_BYTES_MAX = 64 * 1024 * 1024;
const KV_KEY_BYTES_MAX = 1024 * 1024;
const KV_VALUE_BYTES_MAX = 256 * 1024 * 1024;

export interface BackupManifest {
  readonly format: number;
  readonly created_at: string;
  readonly server_version: string;
  readonly node_id: string;
  /** Non-STREAM tables in the backed-up catalog, and accounts. */
  readonly tables: number;
  readonly users: number;
  /** RocksDB keys dumped; row versions still in the hot tier; rows in Parquet segments. */
  readonly kv_records: number;
  readonly hot_row_versions: number;
  readonly cold_rows: number;
  readonly cold_segments: number;
  readonly files: number;
  readonly bytes: number;
  readonly duration_ms: number;
  /** Per table: its id, name and partitions' directories in the backup (restore lays them out again). */
  readonly cold: readonly BackupColdPartition[];
}

export interface BackupColdPartition {
  readonly table_id: number;
  readonly table: string;
  /** The partition id ('' for SHARED tables) and its directory under cold/. */
  readonly partition: string;
  readonly dir: string;
  readonly segments: readonly string[];
  readonly rows: number;
}

export interface ListedFile {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
}

/** A backup that cannot be used; `file` names the damaged or missing file (relative to the backup). */
export class BackupDamagedError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`Backup file '${file}' ${reason}`);
    this.name = 'BackupDamagedError';
  }
}

// Writing ---------------------------------------------------------------------------------------

/** A file being written with its SHA-256 computed on the way (buffered, fsynced at the end). */
export class HashingWriter {
  private readonly hash: Hash = createHash('sha256');
  private buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private used = 0;
  bytes = 0;

  private constructor(private readonly handle: FileHandle, readonly path: string) {}

  static async create(path: string): Promise<HashingWriter> {
    return new HashingWriter(await open(path, 'wx'), path);
  }

  async write(data: Buffer): Promise<void> {
    if (this.used + data.length > this.buffer.length) await this.drain();
    if (data.length >= this.buffer.length) {
      await this.raw(data);
      return;
    }
    data.copy(this.buffer, this.used);
    this.used += data.length;
  }

  private async drain(): Promise<void> {
    if (this.used === 0) return;
    const out = this.buffer.subarray(0, this.used);
    await this.raw(out);
    // The handle's write has finished with `out`: the buffer can be reused.
    this.used = 0;
  }

  private async raw(data: Buffer): Promise<void> {
    this.hash.update(data);
    let offset = 0;
    while (offset < data.length) offset += (await this.handle.write(data, offset, data.length - offset)).bytesWritten;
    this.bytes += data.length;
  }

  /** Flushes, fsyncs and closes; returns the file's checksum. */
  async finish(): Promise<string> {
    await this.drain();
    await this.handle.sync();
    await this.handle.close();
    return this.hash.digest('hex');
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** Writes RocksDB's key/value pairs into chunk files under `dir` (rocksdb/kv-NNNNNN.bin). */
export class KvDumpWriter {
  private current: HashingWriter | null = null;
  private currentRecords = 0;
  private chunk = 0;
  readonly files: ListedFile[] = [];
  records = 0;
  bytes = 0;

  constructor(private readonly backupDir: string) {}

  async put(key: Buffer, value: Buffer): Promise<void> {
    if (this.current === null || this.current.bytes >= KV_CHUNK_BYTES) await this.rotate();
    const header = Buffer.allocUnsafe(8);
    header.writeUInt32BE(key.length, 0);
    header.writeUInt32BE(value.length, 4);
    await this.current!.write(header);
    await this.current!.write(key);
    await this.current!.write(value);
    this.currentRecords++;
    this.records++;
  }

  private async rotate(): Promise<void> {
    await this.closeChunk();
    this.chunk++;
    const rel = `${KV_DIR}/kv-${String(this.chunk).padStart(6, '0')}.bin`;
    this.current = await HashingWriter.create(join(this.backupDir, rel));
    this.currentRecords = 0;
    await this.current.write(KV_MAGIC);
  }

  private async closeChunk(): Promise<void> {
    if (this.current === null) return;
    const trailer = Buffer.alloc(16);
    trailer.writeUInt32BE(KV_END, 0);
    trailer.writeBigUInt64BE(BigInt(this.currentRecords), 8);
    await this.current.write(trailer);
    const bytes = this.current.bytes;
    const sha256 = await this.current.finish();
    this.files.push({ path: this.current.path.slice(this.backupDir.length + 1), sha256, bytes });
    this.bytes += bytes;
    this.current = null;
  }

  /** Closes the last chunk (an empty database still gets one, so a restore always finds one). */
  async finish(): Promise<void> {
    if (this.current === null && this.chunk === 0) await this.rotate();
    await this.closeChunk();
  }

  async abort(): Promise<void> {
    await this.current?.abort();
  }
}

/** Writes checksums.sha256: every file (sorted), then the trailer checksumming the lines above it. */
export async function writeChecksums(backupDir: string, files: readonly ListedFile[]): Promise<void> {
  const body = [...files].sort((a, b) => (a.path < b.path ? -1 : 1)).map((f) => `${f.sha256}  ${f.path}\n`).join('');
  const listSha = createHash('sha256').update(body).digest('hex');
  const writer = await HashingWriter.create(join(backupDir, CHECKSUMS_FILE));
  await writer.write(Buffer.from(`${body}${LIST_TRAILER}${listSha}\n`, 'utf8'));
  await writer.finish();
  fsyncPath(backupDir);
}

// Reading and verifying --------------------------------------------------------------------------

/** Reads and checks the checksum list (its trailer, and that every path stays inside the backup). */
export function readChecksums(backupDir: string): ListedFile[] {
  const path = join(backupDir, CHECKSUMS_FILE);
  if (!existsSync(path)) throw new BackupDamagedError(CHECKSUMS_FILE, 'is missing (not a KalamDB backup, or an unfinished one)');
  if (statSync(path).size > LIST_BYTES_MAX) throw new BackupDamagedError(CHECKSUMS_FILE, `is larger than ${LIST_BYTES_MAX} bytes`);
  const text = readFileSync(path, 'utf8');
  const at = text.lastIndexOf(LIST_TRAILER);
  if (at < 0 || !text.endsWith('\n')) throw new BackupDamagedError(CHECKSUMS_FILE, 'is damaged: its trailer line is missing');
  const body = text.slice(0, at);
  const claimed = text.slice(at + LIST_TRAILER.length).trim();
  if (createHash('sha256').update(body).digest('hex') !== claimed) throw new BackupDamagedError(CHECKSUMS_FILE, 'is damaged: SHA-256 of the list does not match its trailer');
  const out: ListedFile[] = [];
  for (const line of body.split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m === null) throw new BackupDamagedError(CHECKSUMS_FILE, `is damaged: bad line ${JSON.stringify(line.slice(0, 80))}`);
    const file = m[2]!;
    if (isAbsolute(file) || normalize(file) !== file || file.startsWith('..') || file.includes('\0')) {
      throw new BackupDamagedError(CHECKSUMS_FILE, `lists a path outside the backup: ${JSON.stringify(file)}`);
    }
    out.push({ path: file, sha256: m[1]!, bytes: 0 });
  }
  if (!out.some((f) => f.path === BACKUP_MANIFEST_FILE)) throw new BackupDamagedError(CHECKSUMS_FILE, `does not list ${BACKUP_MANIFEST_FILE}`);
  return out;
}

/** SHA-256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Verifies every file of the backup against the list and returns its manifest. Throws
 * BackupDamagedError naming the first file that is missing, unreadable or differs.
 */
export async function verifyBackup(backupDir: string, onProgress?: (done: number, total: number) => void): Promise<{ manifest: BackupManifest; files: ListedFile[] }> {
  const listed = readChecksums(backupDir);
  const files: ListedFile[] = [];
  let done = 0;
  const total = listed.reduce((n, f) => n + (existsSync(join(backupDir, f.path)) ? statSync(join(backupDir, f.path)).size : 0), 0);
  for (const f of listed) {
    const path = join(backupDir, f.path);
    if (!existsSync(path)) throw new BackupDamagedError(f.path, 'is missing');
    let actual: { sha256: string; bytes: number };
    try {
      actual = await hashFile(path);
    } catch (error) {
      throw new BackupDamagedError(f.path, `cannot be read: ${(error as Error).message}`);
    }
    if (actual.sha256 !== f.sha256) throw new BackupDamagedError(f.path, `is damaged: SHA-256 does not match ${CHECKSUMS_FILE}`);
    files.push({ ...f, bytes: actual.bytes });
    done += actual.bytes;
    onProgress?.(done, total);
  }
  return { manifest: readBackupManifest(backupDir), files };
}

/** backup.json, parsed and checked for the fields a restore relies on (no checksum check). */
export function readBackupManifest(backupDir: string): BackupManifest {
  const path = join(backupDir, BACKUP_MANIFEST_FILE);
  if (!existsSync(path)) throw new BackupDamagedError(BACKUP_MANIFEST_FILE, 'is missing (not a KalamDB backup, or an unfinished one)');
  if (statSync(path).size > LIST_BYTES_MAX) throw new BackupDamagedError(BACKUP_MANIFEST_FILE, `is larger than ${LIST_BYTES_MAX} bytes`);
  let m: BackupManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as BackupManifest;
  } catch (error) {
    throw new BackupDamagedError(BACKUP_MANIFEST_FILE, `is damaged: not valid JSON (${(error as Error).message})`);
  }
  if (m === null || typeof m !== 'object' || m.format !== BACKUP_FORMAT) {
    throw new BackupDamagedError(BACKUP_MANIFEST_FILE, `has an unknown format ${JSON.stringify((m as { format?: unknown } | null)?.format)} (this server reads format ${BACKUP_FORMAT})`);
  }
  if (!Array.isArray(m.cold)) throw new BackupDamagedError(BACKUP_MANIFEST_FILE, 'is damaged: no cold partition list');
  for (const p of m.cold) {
    const ok = Number.isSafeInteger(p.table_id) && typeof p.partition === 'string' && typeof p.dir === 'string'
      && /^cold\/t\d+\/[@a-z0-9_.-]+$/i.test(p.dir) && !p.dir.includes('..') && Array.isArray(p.segments)
      && (p.segments as unknown[]).every((s) => typeof s === 'string' && /^batch-\d+\.parquet$/.test(s));
    if (!ok) throw new BackupDamagedError(BACKUP_MANIFEST_FILE, `is damaged: bad cold partition entry ${JSON.stringify(p).slice(0, 120)}`);
  }
  return m;
}

/** Visits every record of a key/value chunk file in order (streamed); checks magic and trailer. */
export async function readKvChunk(path: string, rel: string, visit: (key: Buffer, value: Buffer) => Promise<void> | void): Promise<number> {
  let pending: Buffer = Buffer.alloc(0);
  let magicSeen = false;
  let records = 0;
  let ended = false;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
    let at = 0;
    if (!magicSeen) {
      if (pending.length < KV_MAGIC.length) continue;
      if (!pending.subarray(0, KV_MAGIC.length).equals(KV_MAGIC)) throw new BackupDamagedError(rel, 'is not a key/value chunk (bad magic)');
      magicSeen = true;
      at = KV_MAGIC.length;
    }
    while (!ended && pending.length - at >= 8) {
      const keyLength = pending.readUInt32BE(at);
      if (keyLength === KV_END) {
        if (pending.length - at < 16) break;
        const count = Number(pending.readBigUInt64BE(at + 8));
        if (count !== records) throw new BackupDamagedError(rel, `is damaged: trailer says ${count} records, read ${records}`);
        ended = true;
        at += 16;
        break;
      }
      const valueLength = pending.readUInt32BE(at + 4);
      if (keyLength > KV_KEY_BYTES_MAX || valueLength > KV_VALUE_BYTES_MAX) {
        throw new BackupDamagedError(rel, `is damaged: a record of ${keyLength} + ${valueLength} bytes (at most ${KV_KEY_BYTES_MAX} + ${KV_VALUE_BYTES_MAX})`);
      }
      if (pending.length - at < 8 + keyLength + valueLength) break;
      // Views, not copies: the stream's chunks (and the joined buffers) are never written again.
      const key = pending.subarray(at + 8, at + 8 + keyLength);
      const value = pending.subarray(at + 8 + keyLength, at + 8 + keyLength + valueLength);
      at += 8 + keyLength + valueLength;
      await visit(key, value);
      records++;
    }
    pending = pending.subarray(at);
    if (ended && pending.length > 0) throw new BackupDamagedError(rel, 'is damaged: bytes after its trailer');
  }
  if (!ended) throw new BackupDamagedError(rel, 'is truncated: no trailer');
  return records;
}
