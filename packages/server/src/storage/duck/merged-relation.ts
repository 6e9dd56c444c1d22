/**
 * The SQL of a table partition seen as one relation: hot rows (a DuckDB table) plus the cold
 * Parquet segments, newest version per primary key, tombstones dropped unless asked for. A hot
 * version always beats a cold one (it is newer, or the same version during a flush hand-over);
 * between segments the largest `_seq` wins, a window dedupe that is skipped when the segments' key
 * ranges do not overlap (the common case for time-ordered keys, and always after compaction).
 */
import { sqlIdent, sqlString } from './duck-engine.js';

/** `disjoint`: the manifest proves no key is in two segments, so no per-key dedupe between them is needed. */
export function mergedRelationSql(hotRelation: string, coldFiles: readonly string[], pk: string, liveOnly: boolean, disjoint = false): string {
  const live = liveOnly ? ` WHERE NOT "_deleted"` : '';
  if (coldFiles.length === 0) return `SELECT * FROM ${hotRelation}${live}`;
  const files = `read_parquet([${coldFiles.map(sqlString).join(', ')}])`;
  const cold = coldFiles.length === 1 || disjoint
    ? `SELECT * FROM ${files}`
    : `SELECT * FROM ${files} QUALIFY row_number() OVER (PARTITION BY ${sqlIdent(pk)} ORDER BY "_seq" DESC) = 1`;
  const merged = `SELECT * FROM ${hotRelation} UNION ALL SELECT * FROM (${cold}) c WHERE NOT EXISTS (SELECT 1 FROM ${hotRelation} h WHERE h.${sqlIdent(pk)} = c.${sqlIdent(pk)})`;
  return liveOnly ? `SELECT * FROM (${merged}) WHERE NOT "_deleted"` : merged;
}
