/**
 * A partition's manifest.json: the list of Parquet segments that make up its cold tier, written
 * atomically (temp file, fsync, rename, fsync of the directory). The manifest is the source of truth:
 * a Parquet file it does not list is an orphan from a crashed flush and is never read.
 *
 * A manifest read from disk is untrusted input (a damaged disk, a bad restore, a hand edit): it is
 * validated field by field and a failure is a ManifestError naming the file, which makes that one
 * partition unavailable instead of stopping the server. Manifests this process writes are checked
 * with assertions (a bad one would be a bug).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { assert } from '../../util/errors.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export interface ColumnStats {
  readonly min: string | number | boolean | null;
  readonly max: string | number | boolean | null;
}

export interface Segment {
  /** File name within the partition directory, e.g. batch-3.parquet. */
  readonly path: string;
  readonly row_count: number;
  readonly size_bytes: number;
  /** `_seq` range as decimal strings (64-bit). */
  readonly min_seq: string;
  readonly max_seq: string;
  readonly schema_version: number;
  readonly created_at: number;
  readonly columns: Readonly<Record<string, ColumnStats>>;
  /**
   * SHA-256 of the file, hex (absent in segments written before it was recorded). Parquet has no
   * page checksums as DuckDB writes it, and flipped bytes in a zstd page often decode to other
   * values without an error; this is what detects them.
   */
  readonly sha256?: string;
  /**
   * True when the file carries Parquet field ids (column id, see ColumnDef.id; `_seq` and
   * `_deleted` have SEQ_FIELD_ID and DELETED_FIELD_ID): it is read by id, so renamed columns keep
   * their data and dropped ones are not read. Older segments are read by name in their
   * `schema_version`.
   */
  readonly field_ids?: boolean;
}

/**
 * A segment's `schema_version` when it is not known: a file with field ids that REPAIR found unlisted
 * (it is read by column id, so the version it was written in does not matter).
 */
export const UNKNOWN_SCHEMA_VERSION = 0;

/** Parquet field ids of the system columns (column ids are small positive integers). */
export const SEQ_FIELD_ID = 2_147_483_001;
export const DELETED_FIELD_ID = 2_147_483_002;

export interface Manifest {
  readonly format: number;
  readonly table: string;
  /** The catalog id of the table that wrote it: a re-created table of the same name ignores it. */
  readonly table_id?: number;
  readonly user_id: string | null;
  /** Next batch number: file names are never reused, even after compaction. */
  readonly next_batch: number;
  readonly segments: readonly Segment[];
  readonly updated_at: number;
  /**
   * The highest `_seq` ever flushed into this partition, a decimal string. Kept when compaction,
   * a tombstone purge or REPAIR takes the newest versions out, so that a manifest can be told from an
   * older copy of itself: the hot tier's watermark is never above it (absent in manifests written
   * before it was recorded).
   */
  readonly flushed_seq?: string;
}

export function emptyManifest(table: string, userId: string | null): Manifest {
  return { format: MANIFEST_FORMAT, table, user_id: userId, next_batch: 0, segments: [], updated_at: 0 };
}

/** A manifest on disk that cannot be used; `reason` says why (the path is the caller's to add). */
export class ManifestError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ManifestError';
  }
}

/** Reads and validates a partition's manifest; throws ManifestError when it is damaged. */
export function readManifest(dir: string, table: string, userId: string | null): Manifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return emptyManifest(table, userId);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ManifestError(`not valid JSON (${(error as Error).message})`);
  }
  return validateManifest(parsed);
}

/** A segment file name as flushes write them; anything else could point outside the partition. */
export const SEGMENT_NAME = /^batch-(\d+)\.parquet$/;

/** Checks an untrusted manifest; the problems are reported, never asserted. */
export function validateManifest(value: unknown): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ManifestError('not a JSON object');
  const m = value as Record<string, unknown>;
  if (m.format !== MANIFEST_FORMAT) throw new ManifestError(`unknown manifest format ${JSON.stringify(m.format)}`);
  if (!Number.isSafeInteger(m.next_batch) || (m.next_batch as number) < 0) throw new ManifestError('next_batch is not a non-negative integer');
  if (!Array.isArray(m.segments)) throw new ManifestError('segments is not an array');
  const names = new Set<string>();
  for (const [i, raw] of (m.segments as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null) throw new ManifestError(`segment ${i} is not an object`);
    const s = raw as Record<string, unknown>;
    const path = s.path;
    if (typeof path !== 'string') throw new ManifestError(`segment ${i} has no path`);
    // Paths are joined to the partition's directory: only a bare batch file name stays inside it.
    if (path.includes('/') || path.includes('\\') || path.includes('..') || isAbsolute(path)) {
      throw new ManifestError(`segment path ${JSON.stringify(path)} points outside the partition directory`);
    }
    if (!SEGMENT_NAME.test(path)) throw new ManifestError(`segment path ${JSON.stringify(path)} is not a segment file name`);
    if (names.has(path)) throw new ManifestError(`segment ${path} is listed twice`);
    names.add(path);
    // The next flush writes batch-<next_batch>: a listed file at or past it would be written over (a
    // fault review: an old manifest copied back made the next flush replace a healthy segment).
    if (Number(SEGMENT_NAME.exec(path)![1]) >= (m.next_batch as number)) throw new ManifestError(`segment ${path} is not below next_batch ${String(m.next_batch)}`);
    if (!Number.isSafeInteger(s.row_count) || !Number.isSafeInteger(s.size_bytes)) throw new ManifestError(`segment ${path}: row_count or size_bytes is not an integer`);
    if (!isSeq(s.min_seq) || !isSeq(s.max_seq) || BigInt(s.min_seq) > BigInt(s.max_seq)) throw new ManifestError(`segment ${path}: bad _seq range`);
    if (typeof s.columns !== 'object' || s.columns === null) throw new ManifestError(`segment ${path}: no column statistics`);
    if (s.sha256 !== undefined && (typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256))) throw new ManifestError(`segment ${path}: bad sha256`);
  }
  if (m.flushed_seq !== undefined && !isSeq(m.flushed_seq)) throw new ManifestError('flushed_seq is not a _seq');
  return value as Manifest;
}

function isSeq(v: unknown): v is string {
  return typeof v === 'string' && /^\d{1,20}$/.test(v);
}

export function writeManifest(dir: string, manifest: Manifest): void {
  checkManifest(manifest);
  mkdirSync(dir, { recursive: true });
  writeFileDurably(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
}

/**
 * Replaces a file whole or not at all, durably: written to `<path>.tmp`, synced, renamed over the
 * old one, and the directory synced. A crash or a full disk never leaves it empty or cut.
 */
export function writeFileDurably(path: string, data: string, mode?: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
  fsyncPath(tmp);
  renameSync(tmp, path);
  fsyncPath(dirname(path));
}

function checkManifest(m: Manifest): void {
  assert(m.format === MANIFEST_FORMAT, `unknown manifest format ${m.format}`);
  assert(Array.isArray(m.segments), 'manifest segments');
  const names = new Set<string>();
  for (const s of m.segments) {
    assert(/^batch-\d+\.parquet$/.test(s.path), `segment file name ${s.path}`);
    assert(!names.has(s.path), 'segment listed twice');
    names.add(s.path);
    assert(BigInt(s.min_seq) <= BigInt(s.max_seq), 'segment seq range');
  }
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The highest `_seq` ever flushed into the partition: flushed_seq, or where it is not recorded the segments' highest. */
export function manifestFlushedSeq(m: Manifest): bigint {
  return highestSeq(m.flushed_seq === undefined ? 0n : BigInt(m.flushed_seq), manifestMaxSeq(m));
}

/** The highest of some `_seq`s (0 for none). */
export function highestSeq(...seqs: bigint[]): bigint {
  let max = 0n;
  for (const seq of seqs) if (seq > max) max = seq;
  return max;
}

/** The highest `_seq` any segment holds (0 for none). */
export function manifestMaxSeq(m: Manifest): bigint {
  let max = 0n;
  for (const s of m.segments) if (BigInt(s.max_seq) > max) max = BigInt(s.max_seq);
  return max;
}
