/**
 * STORAGE REPAIR TABLE, one partition: rebuilds the manifest from the segment files present. Each
 * `batch-N.parquet` is read in full; one that is unreadable, fails the checksum its old manifest
 * entry recorded, or lacks the key/_seq/_deleted columns is moved into `quarantine/` (never deleted:
 * an operator may still recover rows from it). The readable ones are listed again with fresh
 * statistics and checksums, and the partition is marked available. The caller holds the
 * partition's flush lock, so no flush or compaction changes the files meanwhile.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { primaryKeyIndex, qualifiedName, type TableDef } from '../../catalog/types.js';
import type { SourceColumn } from '../duck/duck-engine.js';
import type { ColdStore } from './cold-store.js';
import {
  MANIFEST_FORMAT, ManifestError, SEGMENT_NAME, UNKNOWN_SCHEMA_VERSION, fsyncPath, highestSeq, manifestFlushedSeq, readManifest, writeFileDurably,
  type Manifest, type Segment,
} from './manifest.js';
import { fileSha256, readSegmentContent, type SegmentContent } from './segment-check.js';
import { errorLine } from '../../util/errors.js';
import { QUARANTINE_DIR } from './table-check.js';

/**
 * Present in a partition's directory from before a repair commits its manifest until the keys it
 * lost are forgotten (FlushService.forgetLostKeys). A crash in between leaves a manifest without the
 * quarantined files but keys still pointing at them: older versions of those keys would read as
 * current (a fault review: a deleted row back, an update undone). So a partition that has the file
 * at start-up is unavailable until STORAGE REPAIR TABLE runs again.
 */
export const REPAIR_PENDING_FILE = 'repair.pending';

export function markRepairPending(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileDurably(join(dir, REPAIR_PENDING_FILE), `${new Date().toISOString()}\n`);
}

export function clearRepairPending(dir: string): void {
  const path = join(dir, REPAIR_PENDING_FILE);
  if (!existsSync(path)) return;
  unlinkSync(path);
  fsyncPath(dir);
}

export function isRepairPending(dir: string): boolean {
  return existsSync(join(dir, REPAIR_PENDING_FILE));
}

export interface RepairResult {
  readonly partition: string;
  /** Segments listed in the rebuilt manifest. */
  readonly kept: string[];
  readonly rows: number;
  /** Files moved into quarantine/, with why. */
  readonly quarantined: { file: string; moved_to: string; reason: string }[];
  /** Segments the old manifest listed that no longer exist. */
  readonly missing: string[];
  /** Why the old manifest was not usable, when it was not. */
  readonly manifest_error: string | null;
}

export async function repairPartition(
  cold: ColdStore, table: TableDef, partition: string, columns: readonly SourceColumn[], watermark: bigint,
): Promise<RepairResult> {
  const dir = cold.dir(table, partition);
  let old: Manifest | null = null;
  let manifestError: string | null = null;
  try {
    old = readManifest(dir, qualifiedName(table), partition === '' ? null : partition);
    if (old.table_id !== undefined && old.table_id !== table.id) old = null;
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    manifestError = error.reason;
  }
  const previous = new Map((old?.segments ?? []).map((s) => [s.path, s]));
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => SEGMENT_NAME.test(f)).sort((a, b) => batchOf(a) - batchOf(b)) : [];
  const pk = table.columns[primaryKeyIndex(table)]!.name;
  const kept: Segment[] = [];
  const quarantined: RepairResult['quarantined'] = [];
  for (const file of files) {
    const path = join(dir, file);
    const prev = previous.get(file);
    const sha256 = await fileSha256(path);
    let content: SegmentContent | null = null;
    let reason: string | null = null;
    if (prev?.sha256 !== undefined && prev.sha256 !== sha256) reason = 'SHA-256 does not match the manifest (bytes overwritten)';
    if (reason === null) {
      try {
        content = await readSegmentContent(cold.fileEngine, path);
      } catch (error) {
        reason = `unreadable: ${errorLine(error)}`;
      }
    }
    if (content !== null && reason === null) {
      const missingColumn = [pk, '_seq', '_deleted'].find((c) => !content!.columnNames.includes(c));
      if (missingColumn !== undefined) reason = `no ${missingColumn} column`;
      else if (prev !== undefined && prev.row_count !== content.rowCount) reason = `${content.rowCount} rows, the manifest said ${prev.row_count}`;
    }
    if (reason !== null || content === null) {
      quarantined.push({ file, moved_to: quarantine(dir, file), reason: reason ?? 'unreadable' });
      continue;
    }
    const present = new Set(content.columnNames);
    const fieldIds = prev?.field_ids ?? await cold.hasFieldIds(path);
    const stats = await cold.segmentColumnStats(path, columns.filter((c) => present.has(c.name)));
    kept.push({
      path: file, row_count: content.rowCount, size_bytes: statSync(path).size, min_seq: content.minSeq, max_seq: content.maxSeq,
      // A file the old manifest did not list was written by this table's current schema or an older
      // one. Without field ids the current version is the best claim (reads cast by column name);
      // with them, UNKNOWN_SCHEMA_VERSION keeps it read by column id (a current-version segment is
      // read by name: ColdStore.relation).
      schema_version: prev?.schema_version ?? (fieldIds ? UNKNOWN_SCHEMA_VERSION : table.schemaVersion),
      created_at: prev?.created_at ?? Math.round(statSync(path).mtimeMs), columns: stats, sha256,
      ...(fieldIds ? { field_ids: true } : {}),
    });
  }
  if (quarantined.length > 0) fsyncPath(dir);
  // Batch numbers are never reused: past every file seen, quarantined ones included.
  const seen = [...files, ...(existsSync(join(dir, QUARANTINE_DIR)) ? readdirSync(join(dir, QUARANTINE_DIR)) : [])]
    .map((f) => /^batch-(\d+)\.parquet/.exec(f)?.[1]).filter((n): n is string => n !== undefined).map(Number);
  const nextBatch = Math.max(old?.next_batch ?? 0, ...seen.map((n) => n + 1));
  // How far flushes went: what the old manifest said, what the kept files hold, and the hot tier's
  // watermark (`watermark`: segments taken out here held versions the hot tier handed over).
  const flushedSeq = highestSeq(watermark, old === null ? 0n : manifestFlushedSeq(old), ...kept.map((s) => BigInt(s.max_seq)));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT, table: qualifiedName(table), table_id: table.id, user_id: partition === '' ? null : partition,
    next_batch: nextBatch, segments: kept, updated_at: Date.now(), flushed_seq: flushedSeq.toString(),
  };
  cold.clearUnavailable(table, partition);
  cold.commitManifest(table, partition, manifest);
  return {
    partition, kept: kept.map((s) => s.path), rows: kept.reduce((n, s) => n + s.row_count, 0), quarantined,
    missing: [...previous.keys()].filter((p) => !files.includes(p)), manifest_error: manifestError,
  };
}

function batchOf(name: string): number {
  return Number(SEGMENT_NAME.exec(name)![1]);
}

/** Moves a file into the partition's quarantine/ folder (a new name if one is there); returns where. */
function quarantine(dir: string, file: string): string {
  const target = join(dir, QUARANTINE_DIR);
  mkdirSync(target, { recursive: true });
  let name = file;
  if (existsSync(join(target, name))) name = `${file}.${Date.now()}`;
  renameSync(join(dir, file), join(target, name));
  fsyncPath(target);
  return `${QUARANTINE_DIR}/${name}`;
}
