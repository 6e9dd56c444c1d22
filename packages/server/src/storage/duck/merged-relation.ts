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
  // An explicit ANTI JOIN, with the tombstone filter in each branch: DuckDB planned the equivalent
  // `NOT EXISTS (correlated subquery)` under a filter above the UNION ALL 3-5x slower over 1M cold rows,
  // even with no hot row at all (decision 0027).
  const coldLive = liveOnly ? ` WHERE NOT c."_deleted"` : '';
  return `SELECT * FROM ${hotRelation}${live} UNION ALL `
    + `SELECT c.* FROM ${coldRelation} c ANTI JOIN ${hotRelation} h ON h.${sqlIdent(pk)} = c.${sqlIdent(pk)}${coldLive}`;
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
