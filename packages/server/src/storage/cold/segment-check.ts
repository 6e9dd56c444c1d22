/**
 * Verification of one Parquet segment against its manifest entry: the file exists with the size
 * and SHA-256 recorded at flush, DuckDB can read its footer and decode every value of every row,
 * and the row count and `_seq` range match. Used by STORAGE CHECK/REPAIR TABLE, by compaction
 * before it rewrites a partition, and to name the culprit when a read of the partition fails.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { DuckEngine } from '../duck/duck-engine.js';
import { sqlString } from '../duck/duck-engine.js';
import { errorLine } from '../../util/errors.js';
import type { Segment } from './manifest.js';

export type SegmentStatus = 'ok' | 'damaged' | 'missing';

export interface SegmentCheck {
  readonly status: SegmentStatus;
  /** Why it is not ok, or a summary of what was read when it is. */
  readonly detail: string;
}

/** What a full read of a segment file found (also how REPAIR rebuilds a manifest entry). */
export interface SegmentContent {
  readonly rowCount: number;
  readonly minSeq: string;
  readonly maxSeq: string;
  readonly columnNames: readonly string[];
}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Reads the whole file: `hash(t)` over each row makes DuckDB decompress and decode every column,
 * so a damaged page fails here rather than in a user's query. Throws DuckDB's error when unreadable.
 */
export async function readSegmentContent(duck: DuckEngine, path: string): Promise<SegmentContent> {
  return duck.withConnection(async (conn) => {
    const relation = `read_parquet(${sqlString(path)})`;
    const names = (await (await conn.run(`SELECT * FROM ${relation} LIMIT 0`)).columnNames());
    if (!names.includes('_seq')) throw new Error('no _seq column');
    const [row] = await (await conn.run(
      `SELECT count(*)::BIGINT, min("_seq")::VARCHAR, max("_seq")::VARCHAR, bit_xor(hash(t)) FROM ${relation} t`,
    )).getRows();
    return { rowCount: Number(row![0] as bigint), minSeq: String(row![1] ?? '0'), maxSeq: String(row![2] ?? '0'), columnNames: names };
  });
}

/** Checks one listed segment; never throws for a damaged file (that is a result). */
export async function checkSegment(duck: DuckEngine, path: string, segment: Segment): Promise<SegmentCheck> {
  if (!existsSync(path)) return { status: 'missing', detail: 'listed in the manifest but the file does not exist' };
  const size = statSync(path).size;
  if (size !== segment.size_bytes) return { status: 'damaged', detail: `size ${size} bytes, the manifest says ${segment.size_bytes} (truncated or overwritten)` };
  if (segment.sha256 !== undefined) {
    const sha = await fileSha256(path);
    if (sha !== segment.sha256) return { status: 'damaged', detail: `SHA-256 ${sha.slice(0, 12)}… does not match the manifest's ${segment.sha256.slice(0, 12)}… (bytes overwritten)` };
  }
  let content: SegmentContent;
  try {
    content = await readSegmentContent(duck, path);
  } catch (error) {
    return { status: 'damaged', detail: `unreadable: ${errorLine(error)}` };
  }
  if (content.rowCount !== segment.row_count) return { status: 'damaged', detail: `${content.rowCount} rows, the manifest says ${segment.row_count}` };
  if (content.minSeq !== segment.min_seq || content.maxSeq !== segment.max_seq) {
    return { status: 'damaged', detail: `_seq range ${content.minSeq}..${content.maxSeq}, the manifest says ${segment.min_seq}..${segment.max_seq}` };
  }
  return { status: 'ok', detail: `${content.rowCount} rows, _seq ${content.minSeq}..${content.maxSeq}${segment.sha256 === undefined ? ' (no checksum recorded)' : ', checksum ok'}` };
}
