/**
 * A partition's manifest.json: the list of Parquet segments that make up its cold tier, written
 * atomically (temp file, fsync, rename, fsync of the directory). The manifest is the source of truth:
 * a Parquet file it does not list is an orphan from a crashed flush and is never read.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
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
}

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
}

export function emptyManifest(table: string, userId: string | null): Manifest {
  return { format: MANIFEST_FORMAT, table, user_id: userId, next_batch: 0, segments: [], updated_at: 0 };
}

export function readManifest(dir: string, table: string, userId: string | null): Manifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return emptyManifest(table, userId);
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  checkManifest(manifest);
  return manifest;
}

export function writeManifest(dir: string, manifest: Manifest): void {
  checkManifest(manifest);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `${MANIFEST_FILE}.tmp`);
  writeFileSync(tmp, JSON.stringify(manifest, null, 2));
  fsyncPath(tmp);
  renameSync(tmp, join(dir, MANIFEST_FILE));
  fsyncPath(dir);
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

/** The highest `_seq` any segment holds (0 for none). */
export function manifestMaxSeq(m: Manifest): bigint {
  let max = 0n;
  for (const s of m.segments) if (BigInt(s.max_seq) > max) max = BigInt(s.max_seq);
  return max;
}
