/**
 * The SQL of a table partition seen as one relation: hot rows (a DuckDB table) plus the cold rows
 * (a DuckDB table loaded from the partition's Parquet segments, newest version per key), newest
 * version per primary key, tombstones dropped unless asked for. A hot version always beats a cold
 * one (it is newer, or the same version during a flush hand-over).
 */
import { sqlIdent } from './duck-engine.js';

export function mergedRelationSql(hotRelation: string, coldRelation: string | null, pk: string, liveOnly: boolean): string {
  const live = liveOnly ? ` WHERE NOT "_deleted"` : '';
  if (coldRelation === null) return `SELECT * FROM ${hotRelation}${live}`;
  const merged = `SELECT * FROM ${hotRelation} UNION ALL SELECT * FROM ${coldRelation} c WHERE NOT EXISTS (SELECT 1 FROM ${hotRelation} h WHERE h.${sqlIdent(pk)} = c.${sqlIdent(pk)})`;
  return liveOnly ? `SELECT * FROM (${merged}) WHERE NOT "_deleted"` : merged;
}

/**
 * The file engine's query for a partition's cold rows: every segment, newest version per key (the
 * per-key dedupe is skipped when the manifest proves the segments' key ranges disjoint), cast to
 * the exact column types of the query engine's table.
 */
export function coldRowsSql(coldRelation: string, segmentCount: number, columns: readonly { name: string; sqlType: string }[], pk: string, disjoint: boolean): string {
  const select = columns.map((c) => `CAST(${sqlIdent(c.name)} AS ${c.sqlType}) AS ${sqlIdent(c.name)}`).join(', ');
  const dedupe = segmentCount === 1 || disjoint ? '' : ` QUALIFY row_number() OVER (PARTITION BY ${sqlIdent(pk)} ORDER BY "_seq" DESC) = 1`;
  return `SELECT ${select} FROM ${coldRelation}${dedupe}`;
}
