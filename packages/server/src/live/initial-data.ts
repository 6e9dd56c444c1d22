/**
 * What a new subscription receives before it goes live: either a snapshot of the matching rows
 * (all of them, or the `last_rows` newest) read at one exact `_seq`, or, with `from`, every change
 * after that `_seq` from the hot version log and the cold segments (resume after a disconnect).
 */
import { ServerError } from '../util/errors.js';
import { SNOWFLAKE_EPOCH_MS } from '../util/snowflake.js';
import { primaryKeyIndex, qualifiedName, type StoredValue, type TableDef } from '../catalog/types.js';
import type { Principal } from '../auth/access.js';
import type { Services } from '../exec/context.js';
import { runQuery } from '../exec/query.js';
import { decodeColdRow } from '../exec/sources.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import { sqlString } from '../storage/duck/duck-engine.js';
import type { SubscriptionQuery } from './subscription-query.js';

export interface InitialRows {
  /** Versions in ascending `_seq` order; deleted ones only in resume mode. */
  readonly rows: RowVersion[];
  /** Changes up to here are covered; the live stream continues after it. */
  readonly handoverSeq: bigint;
}

/** The matching rows as of one `_seq` (the mirror is held while the query runs). */
export async function snapshotRows(s: Services, principal: Principal, q: SubscriptionQuery, lastRows: number | null): Promise<InitialRows> {
  const table = q.table;
  if (table.type === 'STREAM') return { rows: [], handoverSeq: s.committer.committedMaxSeq };
  const seqRef = { ColumnRef: { fields: [{ String: { sval: '_seq' } }] } };
  const select = {
    SelectStmt: {
      targetList: [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }],
      fromClause: [{ RangeVar: { schemaname: table.namespace, relname: table.name, inh: true, relpersistence: 'p' } }],
      ...(q.where ? { whereClause: q.where } : {}),
      sortClause: [{ SortBy: { node: seqRef, sortby_dir: lastRows !== null ? 'SORTBY_DESC' : 'SORTBY_ASC', sortby_nulls: 'SORTBY_NULLS_DEFAULT' } }],
      ...(lastRows !== null ? { limitCount: { A_Const: { ival: { ival: lastRows } } }, limitOption: 'LIMIT_OPTION_COUNT' } : { limitOption: 'LIMIT_OPTION_DEFAULT' }),
      op: 'SETOP_NONE',
    },
  };
  const ctx = { caller: principal, principal, namespace: table.namespace, params: [], tx: null };
  const { result, syncedSeq } = await runQuery(s, ctx, select, { holdMirror: true });
  const rows = result.rows.map((r) => decodeColdRow(table, r));
  if (lastRows !== null) rows.reverse();
  return { rows, handoverSeq: syncedSeq ?? s.committer.committedMaxSeq };
}

/**
 * Every version after `from`, newest per key from the cold tier and every hot version, in `_seq`
 * order. Refused when `from` is older than the table's deleted-rows retention: deletes before that
 * may be gone, so only a fresh snapshot is exact.
 */
export async function resumeRows(s: Services, q: SubscriptionQuery, partition: string, from: bigint): Promise<InitialRows> {
  const table = q.table;
  const handoverSeq = s.committer.committedMaxSeq;
  if (table.type === 'STREAM') return { rows: [], handoverSeq };
  const retentionMs = BigInt(table.options.deletedRetentionHours) * 3_600_000n;
  const oldestResumable = (BigInt(Date.now()) - retentionMs - SNOWFLAKE_EPOCH_MS) << 22n;
  if (from < oldestResumable) {
    throw new ServerError('SQL_EXECUTION_ERROR', `Cannot resume ${qualifiedName(table)} from _seq ${from}: it is older than the retained history `
      + `(DELETED_RETENTION_HOURS = ${table.options.deletedRetentionHours}). Subscribe again without 'from' to get a fresh snapshot.`);
  }
  // Hot first, then cold: a flush in between can only make a version appear twice, never vanish.
  const hot = (await s.hot.scanVersionsAfter(table, partition, from)).filter((v) => v.seq <= handoverSeq);
  const cold = await coldVersionsAfter(s, table, partition, from);
  const seen = new Set<string>();
  const pkIdx = primaryKeyIndex(table);
  const all: RowVersion[] = [];
  for (const v of [...cold, ...hot].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))) {
    if (v.seq > handoverSeq) continue;
    const key = `${String(v.values[pkIdx])}\u0000${v.seq}`;
    if (seen.has(key)) continue;
    seen.add(key);
    all.push(v);
  }
  return { rows: all, handoverSeq };
}

async function coldVersionsAfter(s: Services, table: TableDef, partition: string, from: bigint): Promise<RowVersion[]> {
  const manifest = s.cold.manifest(table, partition);
  const dir = s.cold.dir(table, partition);
  const files = manifest.segments.filter((seg) => BigInt(seg.max_seq) > from).map((seg) => `${dir}/${seg.path}`);
  if (files.length === 0) return [];
  const sql = `SELECT * FROM read_parquet([${files.map(sqlString).join(', ')}]) WHERE "_seq" > ${from} ORDER BY "_seq"`;
  const rows = await s.duck.withConnection(async (conn) => (await conn.run(sql)).getRows());
  return rows.map((r) => decodeColdRow(table, r));
}

/** A stored version's cells with `_seq`, as the predicate sees them. */
export function predicateCells(v: RowVersion): StoredValue[] {
  return [...v.values, v.seq];
}
