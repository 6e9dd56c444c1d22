/**
 * What a new subscription receives before it goes live: either a snapshot of the matching rows
 * (all of them, or the `last_rows` newest) read at one exact `_seq`, or, with `from`, the net change
 * of every key after that `_seq`, from the hot version log and the cold segments (resume).
 */
import { ServerError } from '../util/errors.js';
import type { Budgets } from '../util/budget.js';
import { snowflakeAtMs } from '../util/snowflake.js';
import { primaryKeyIndex, qualifiedName, type StoredValue } from '../catalog/types.js';
import { partitionFor, type Principal } from '../auth/access.js';
import type { Services } from '../exec/context.js';
import type { SelectStmt } from '@pgsql/types';
import { runQuery } from '../exec/query.js';
import { decodeColdRow } from '../exec/sources.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import { pkString } from '../exec/transaction.js';
import type { SubscriptionQuery } from './subscription-query.js';
import { cellsUnder } from './row-shape.js';

export interface InitialRows {
  /** Versions in ascending `_seq` order; deleted ones only in resume mode. */
  readonly rows: RowVersion[];
  /** Changes up to here are covered; the live stream continues after it. */
  readonly handoverSeq: bigint;
}

/** The matching rows as of one `_seq` (the mirror is held while the query runs). */
export async function snapshotRows(s: Services, principal: Principal, q: SubscriptionQuery, lastRows: number | null, budgets: Budgets | null = null): Promise<InitialRows> {
  const table = q.table;
  if (table.type === 'STREAM') return streamSnapshot(s, principal, q, lastRows);
  const seqRef = { ColumnRef: { fields: [{ String: { sval: '_seq' } }] } };
  const select: SelectStmt = {
    targetList: [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }],
    fromClause: [{ RangeVar: { schemaname: table.namespace, relname: table.name, inh: true, relpersistence: 'p' } }],
    ...(q.where ? { whereClause: q.where } : {}),
    sortClause: [{ SortBy: { node: seqRef, sortby_dir: lastRows !== null ? 'SORTBY_DESC' : 'SORTBY_ASC', sortby_nulls: 'SORTBY_NULLS_DEFAULT' } }],
    ...(lastRows !== null ? { limitCount: { A_Const: { ival: { ival: lastRows } } }, limitOption: 'LIMIT_OPTION_COUNT' as const } : { limitOption: 'LIMIT_OPTION_DEFAULT' as const }),
    op: 'SETOP_NONE',
  };
  const ctx = { caller: principal, principal, namespace: table.namespace, params: [], tx: null, budgets };
  const { result, syncedSeq } = await runQuery(s, ctx, select, { holdMirror: true });
  const rows = result.rows.map((r) => decodeColdRow(table, r));
  if (lastRows !== null) rows.reverse();
  return { rows, handoverSeq: syncedSeq ?? s.committer.committedMaxSeq };
}

/** One key's net change between `from` and the hand-over point, as the resuming client must see it. */
export interface ResumeChange {
  readonly kind: 'insert' | 'update' | 'delete';
  /** The newest version (for a delete: the version that removed the row from the client's view). */
  readonly row: RowVersion;
  /** The version the client held at `from` (update and delete). */
  readonly old: RowVersion | null;
}

/**
 * Per key changed after `from`: its newest version now and the version the client held at `from`
 * (the newest at or before it), classified against the filter: entered → insert, changed → update
 * with old_values, left or deleted → delete with the old values. Refused when `from` is older than
 * the table's deleted-rows retention: deletes before that may be gone, so only a snapshot is exact.
 */
export async function resumeChanges(s: Services, q: SubscriptionQuery, partition: string, from: bigint): Promise<{ changes: ResumeChange[]; handoverSeq: bigint }> {
  const table = q.table;
  if (table.type === 'STREAM') {
    // Every event is an insert; nothing older than the TTL exists any more.
    const events = s.streams.read(table, partition).filter((e) => e.seq > from && q.predicate([...e.values, e.seq]));
    const rows = events.map((e) => ({ seq: e.seq, deleted: false, schemaVersion: table.schemaVersion, values: e.values }));
    return { changes: rows.map((row) => ({ kind: 'insert' as const, row, old: null })), handoverSeq: rows.at(-1)?.seq ?? from };
  }
  const handoverSeq = s.committer.committedMaxSeq;
  const oldestResumable = snowflakeAtMs(Date.now() - table.options.deletedRetentionHours * 3_600_000);
  if (from < oldestResumable) {
    throw new ServerError('SQL_EXECUTION_ERROR', `Cannot resume ${qualifiedName(table)} from _seq ${from}: it is older than the retained history `
      + `(DELETED_RETENTION_HOURS = ${table.options.deletedRetentionHours}). Subscribe again without 'from' to get a fresh snapshot.`);
  }
  // Hot first, then cold: a flush in between can only make a version appear twice, never vanish.
  const hot = (await s.hot.scanVersionsAfter(table, partition, 0n)).filter((v) => v.seq <= handoverSeq);
  const coldAfter = await s.cold.readSeqRange(table, partition, from, handoverSeq, decodeColdRow);
  const pkIdx = primaryKeyIndex(table);
  const keyOf = (v: RowVersion): string => pkString(table, v.values[pkIdx]!);
  const finals = new Map<string, RowVersion>();
  const held = new Map<string, RowVersion>();
  for (const v of [...coldAfter, ...hot].sort(bySeq)) {
    if (v.seq > from) finals.set(keyOf(v), v);
  }
  for (const v of hot) if (v.seq <= from && finals.has(keyOf(v))) held.set(keyOf(v), v);
  const missing = [...finals.keys()].filter((k) => !held.has(k)).map((k) => finals.get(k)!.values[pkIdx]!);
  for (let i = 0; i < missing.length; i += 500) {
    const keys = missing.slice(i, i + 500);
    for (const v of (await s.cold.readSeqRange(table, partition, null, from, decodeColdRow, keys)).sort(bySeq)) held.set(keyOf(v), v);
  }
  // A flush keeps only the newest version of each key, so when both the held and a newer version
  // were flushed together the held one is gone. For such keys the client may or may not hold the
  // row: a row that no longer matches gets a delete (harmless if it was not held).
  const flushedTogether = new Set(coldAfter.map(keyOf));
  const changes: ResumeChange[] = [];
  for (const [key, row] of finals) {
    const old = held.get(key) ?? null;
    // Versions written before an ALTER TABLE are matched under the subscription's schema version.
    const before = old !== null && !old.deleted && q.predicate(predicateCells(s, q, old));
    const now = !row.deleted && q.predicate(predicateCells(s, q, row));
    if (now) changes.push({ kind: before ? 'update' : 'insert', row, old: before ? old : null });
    else if (before) changes.push({ kind: 'delete', row, old });
    else if (old === null && flushedTogether.has(key)) changes.push({ kind: 'delete', row, old: row });
  }
  return { changes: changes.sort((a, b) => bySeq(a.row, b.row)), handoverSeq };
}

/** The buffered events of a stream partition, read synchronously: the hand-over is exact. */
function streamSnapshot(s: Services, principal: Principal, q: SubscriptionQuery, lastRows: number | null): InitialRows {
  const table = q.table;
  const partition = partitionFor(principal, table);
  const all = s.streams.read(table, partition);
  const handoverSeq = all.at(-1)?.seq ?? 0n;
  let rows = all.filter((e) => q.predicate([...e.values, e.seq]))
    .map((e) => ({ seq: e.seq, deleted: false, schemaVersion: table.schemaVersion, values: e.values }));
  if (lastRows !== null) rows = rows.slice(Math.max(0, rows.length - lastRows));
  return { rows, handoverSeq };
}

function bySeq(a: RowVersion, b: RowVersion): number {
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

/** A stored version's cells under the query's schema version, with `_seq`, as the predicate sees them. */
export function predicateCells(s: Services, q: SubscriptionQuery, v: RowVersion): StoredValue[] {
  return [...cellsUnder(s.catalog, q.table, v), v.seq];
}
