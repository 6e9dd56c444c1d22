/**
 * STORAGE CHECK TABLE: a report, one row per file, of every partition's manifest and segments as
 * they are on disk (not as cached): the manifest parses and validates, each listed segment passes
 * checkSegment, segment files the manifest does not list and files in `quarantine/` are shown.
 * A damaged file found here also marks its partition unavailable, so reads stop serving it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { qualifiedName, type TableDef } from '../../catalog/types.js';
import type { ColdStore } from './cold-store.js';
import { MANIFEST_FILE, ManifestError, SEGMENT_NAME, readManifest, type Manifest } from './manifest.js';
import { checkSegment } from './segment-check.js';

export const QUARANTINE_DIR = 'quarantine';

export type CheckStatus = 'ok' | 'damaged' | 'missing' | 'unlisted' | 'quarantined';

export interface CheckRow {
  /** The partition's id ('' for a SHARED table). */
  readonly partition: string;
  readonly file: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

/** `flushed`: whether the hot tier says live rows of this partition are in its segments (asked only without a manifest: it scans the index). */
export async function checkPartition(cold: ColdStore, table: TableDef, partition: string, flushed: () => Promise<boolean>): Promise<CheckRow[]> {
  // The files listed when the manifest is read stay on disk while they are checked (a compaction
  // replacing them meanwhile deletes them afterwards): a check never takes a replaced file for a lost one.
  return cold.pinned(() => checkPinned(cold, table, partition, flushed));
}

async function checkPinned(cold: ColdStore, table: TableDef, partition: string, flushed: () => Promise<boolean>): Promise<CheckRow[]> {
  const dir = cold.dir(table, partition);
  const rows: CheckRow[] = [];
  const row = (file: string, status: CheckStatus, detail: string): void => { rows.push({ partition, file, status, detail }); };
  let manifest: Manifest | null = null;
  let present: string[];
  try {
    present = existsSync(dir) ? readdirSync(dir) : [];
  } catch (error) {
    const reason = `cannot be read: ${(error as Error).message}`;
    row(MANIFEST_FILE, 'damaged', reason);
    cold.markUnavailable(table, partition, MANIFEST_FILE, reason);
    return rows;
  }
  if (!existsSync(join(dir, MANIFEST_FILE))) {
    // Without segments, and unless the hot tier says otherwise, this is a partition whose first flush
    // has not completed (every row is hot).
    if (await flushed()) {
      const reason = 'missing, but the hot tier says rows of this partition were flushed';
      row(MANIFEST_FILE, 'missing', reason);
      cold.markUnavailable(table, partition, MANIFEST_FILE, reason);
    } else if (present.some((f) => SEGMENT_NAME.test(f))) row(MANIFEST_FILE, 'missing', 'no manifest: nothing of this partition is read');
    else row(MANIFEST_FILE, 'ok', 'no flush has completed yet: every row is in the hot tier');
  } else {
    try {
      manifest = readManifest(dir, qualifiedName(table), partition === '' ? null : partition);
      row(MANIFEST_FILE, 'ok', `${manifest.segments.length} segment(s), next batch ${manifest.next_batch}`);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      row(MANIFEST_FILE, 'damaged', error.reason);
      cold.markUnavailable(table, partition, MANIFEST_FILE, error.reason);
    }
  }
  const listed = new Set<string>();
  for (const segment of manifest?.segments ?? []) {
    listed.add(segment.path);
    const check = await checkSegment(cold.fileEngine, join(dir, segment.path), segment);
    row(segment.path, check.status, check.detail);
    if (check.status !== 'ok') cold.markUnavailable(table, partition, segment.path, check.detail);
  }
  for (const file of present.filter((f) => SEGMENT_NAME.test(f) && !listed.has(f)).sort()) {
    row(file, 'unlisted', manifest === null ? 'not listed (the manifest is unusable); STORAGE REPAIR TABLE re-lists it if readable' : 'not listed in the manifest: never read (an orphan from an interrupted flush, removed at the next start)');
  }
  const quarantine = join(dir, QUARANTINE_DIR);
  if (existsSync(quarantine)) {
    for (const file of readdirSync(quarantine).sort()) row(`${QUARANTINE_DIR}/${file}`, 'quarantined', 'moved aside by STORAGE REPAIR TABLE; never read');
  }
  return rows;
}
