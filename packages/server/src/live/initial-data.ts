/**
 * What a new subscription receives before it goes live: either a snapshot of the matching rows
 * (all of them, or the `last_rows` newest) read at one exact `_seq`, or, with `from`, every change
 * after that `_seq`, in commit order, from the hot version log and the cold segments (resume).
 */
import { ServerError } from '../util/errors.js';
import type { Budgets } from '../util/budget.js';
import { snowflakeAtMs, snowflakeTimeMs } from '../util/snowflake.js';
import { primaryKeyIndex, qualifiedName, type ColumnDef, type StoredValue, type TableDef } from '../catalog/types.js';
import { partitionFor, type Principal } from '../auth/access.js';
import type { Services } from '../exec/context.js';
import type { SelectStmt } from '@pgsql/types';
import { runQuery } from '../exec/query.js';
import { decodeColdRow } from '../exec/sources.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import { manifestMaxSeq, type Segment } from '../storage/cold/manifest.js';
import type { SubscriptionQuery } from './subscription-query.js';
import { cellsUnder } from './row-shape.js';
import { TailTooLarge, approxBytesOf, type HotVersionTail } from './hot-version-tail.js';

export interface InitialRows {
  /** Versions in ascending `_seq` order; deleted ones only in resume mode. */
  readonly rows: RowVersion[];
  /** Changes up to here are covered; the live stream continues after it. */
  readonly handoverSeq: bigint;
}

/** Rows decoded between two yields to the event loop. */
const DECODE_SLICE = 20_000;

/** The matching rows as of one `_seq` (the mirror is held while the query runs). */
export async function snapshotRows(s: Services, principal: Principal, q: SubscriptionQuery, lastRows: number | null, budgets: Budgets | null = null): Promise<InitialRows> {
  const table = q.table;
  if (table.type === 'STREAM') return streamSnapshot(s, principal, q, lastRows);
  const seqRef = { ColumnRef: { fields: [{ String: { sval: '_seq' } }] } };
  const select: SelectStmt = {
    targetList: [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }],
    // Under the subscription's own alias: its WHERE may qualify columns with it (`FROM app.notes n WHERE n.body ...`).
    fromClause: [{ RangeVar: { schemaname: table.namespace, relname: table.name, inh: true, relpersistence: 'p', ...(q.parsed.alias !== table.name ? { alias: { aliasname: q.parsed.alias } } : {}) } }],
    ...(q.where ? { whereClause: q.where } : {}),
    sortClause: [{ SortBy: { node: seqRef, sortby_dir: lastRows !== null ? 'SORTBY_DESC' : 'SORTBY_ASC', sortby_nulls: 'SORTBY_NULLS_DEFAULT' } }],
    ...(lastRows !== null ? { limitCount: { A_Const: { ival: { ival: lastRows } } }, limitOption: 'LIMIT_OPTION_COUNT' as const } : { limitOption: 'LIMIT_OPTION_DEFAULT' as const }),
    op: 'SETOP_NONE',
  };
  const ctx = { caller: principal, principal, namespace: table.namespace, params: [], tx: null, budgets };
  const { result, syncedSeq } = await runQuery(s, ctx, select, { holdMirror: true });
  // Decoded a slice at a time, letting other work run between slices: a million rows took seconds of
  // the one thread every client shares.
  const rows: RowVersion[] = [];
  for (let i = 0; i < result.rows.length; i++) {
    rows.push(decodeColdRow(table, result.rows[i]!));
    if (i % DECODE_SLICE === DECODE_SLICE - 1) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (lastRows !== null) rows.reverse();
  return { rows, handoverSeq: syncedSeq ?? s.committer.committedMaxSeq };
}

/** One change of a key after `from`, as the resuming client must see it. */
export interface ResumeChange {
  readonly kind: 'insert' | 'update' | 'delete';
  /** The version (for a delete: the version that removed the row from the client's view). */
  readonly row: RowVersion;
  /** The version the client held before it (update and delete). */
  readonly old: RowVersion | null;
}

/**
 * Every known version of every key changed after `from`, in `_seq` order, each classified against
 * the key's version before it (the first against the version the client held at `from`: the newest
 * at or before it) and the filter: entered → insert, changed → update with old_values, left or
 * deleted → delete with the old values. Sent in commit order, any prefix of them is itself a state
 * at one `_seq`, so a client that loses the connection part-way can resume from the last `_seq` it
 * saw. (Known versions: all of the hot tier's; a flush keeps only each key's newest, so between two
 * flushed versions the ones in between are not sent, and are not inferred as held either.)
 * Refused when `from` is older than the table's deleted-rows retention (deletes before that may be
 * gone, so only a snapshot is exact), or older than the last DROP of a table of that name (the client
 * may hold its rows); `from` 0 or 1 (every change, for a client that holds nothing) is always served.
 */
/** What one resume may read (an attack review: 20 resumes of a 200 MB partition took the server to 5.9 GB and a V8 OOM). */
export interface ResumeLimits {
  /** Bytes of versions, hot and cold each (approxBytes): `result_bytes_max`. */
  readonly bytesMax: number;
  /** False once nobody waits for the answer (the subscription ended): the reads stop. */
  readonly stillWanted: () => boolean;
}

/** What a segment's compressed bytes take once read and decoded, roughly. */
const COLD_EXPANSION = 4;

/** Cold versions one resume may read, whatever their size. */
export const RESUME_COLD_VERSIONS_MAX = 100_000;

/** Thrown by a resume or initial-data read when the subscription it reads for has ended (nothing is read for it). */
export class ReadAbandoned extends Error {}

function resumeTooLarge(table: TableDef, from: bigint, what: string): ServerError {
  return new ServerError('SQL_EXECUTION_ERROR', `Cannot resume ${qualifiedName(table)} from _seq ${from}: ${what}. `
    + `Subscribe again without 'from' to get a fresh snapshot (in batches), or with last_rows.`);
}

export async function resumeChanges(s: Services, tail: HotVersionTail, q: SubscriptionQuery, partition: string, from: bigint, limits: ResumeLimits): Promise<{ changes: ResumeChange[]; handoverSeq: bigint }> {
  const table = q.table;
  if (table.type === 'STREAM') {
    // Every event is an insert; nothing older than the TTL exists any more.
    const events = s.streams.read(table, partition).filter((e) => e.seq > from && q.predicate([...e.values, e.seq]));
    const rows = events.map((e) => ({ seq: e.seq, deleted: false, schemaVersion: table.schemaVersion, values: e.values }));
    return { changes: rows.map((row) => ({ kind: 'insert' as const, row, old: null })), handoverSeq: rows.at(-1)?.seq ?? from };
  }
  const handoverSeq = s.committer.committedMaxSeq;
  const oldestResumable = snowflakeAtMs(Date.now() - table.options.deletedRetentionHours * 3_600_000);
  // `from` 0 or 1 asks for every change, from a client that holds none of the table's rows: no
  // delete the retention purged, and no row of a dropped table of the same name, can concern it.
  const droppedAt = s.catalog.droppedAt(qualifiedName(table));
  if (from > 1n && droppedAt !== undefined && snowflakeTimeMs(from) <= droppedAt) {
    // The client may hold the rows of the table of this name dropped since, which no change of this one removes.
    throw new ServerError('SQL_EXECUTION_ERROR', `Cannot resume ${qualifiedName(table)} from _seq ${from}: a table of this name was dropped after it `
      + `(and created again). Subscribe again without 'from' to get a fresh snapshot.`);
  }
  if (from > 1n && from < oldestResumable) {
    throw new ServerError('SQL_EXECUTION_ERROR', `Cannot resume ${qualifiedName(table)} from _seq ${from}: it is older than the retained history `
      + `(DELETED_RETENTION_HOURS = ${table.options.deletedRetentionHours}). Subscribe again without 'from' to get a fresh snapshot.`);
  }
  if (columnsChangedSince(s, table, from)) {
    throw new ServerError('SQL_EXECUTION_ERROR', `Cannot resume ${qualifiedName(table)} from _seq ${from}: ALTER TABLE changed its columns since then, `
      + `and the rows the client holds are in the old ones. Subscribe again without 'from' to get a fresh snapshot.`);
  }
  const manifestBefore = s.cold.manifest(table, partition);
  // Hot first, then cold: a flush in between can only make a version appear twice, never vanish.
  let hot: Awaited<ReturnType<HotVersionTail['read']>>;
  try {
    hot = await tail.read(table, partition, handoverSeq, limits.bytesMax);
  } catch (error) {
    if (error instanceof TailTooLarge) throw resumeTooLarge(table, from, `its unflushed changes are more than ${limits.bytesMax} bytes (result_bytes_max)`);
    throw error;
  }
  if (!limits.stillWanted()) throw new ReadAbandoned();
  // Judged before reading, from the segments that can hold versions after `from` (a review: 100,000
  // wide rows would be read and decoded before the bytes were compared).
  let segmentBytes = 0;
  for (const segment of manifestBefore.segments) if (BigInt(segment.max_seq) > from) segmentBytes += segment.size_bytes;
  if (segmentBytes * COLD_EXPANSION > limits.bytesMax) {
    throw resumeTooLarge(table, from, `the segments flushed since hold ${segmentBytes} bytes, more than ${limits.bytesMax} (result_bytes_max) once read`);
  }
  const coldAfter = await s.cold.readSeqRange(table, partition, from, handoverSeq, decodeColdRow, undefined, RESUME_COLD_VERSIONS_MAX + 1);
  if (!limits.stillWanted()) throw new ReadAbandoned();
  const coldBytes = approxBytesOf(coldAfter);
  if (coldAfter.length > RESUME_COLD_VERSIONS_MAX || coldBytes > limits.bytesMax) {
    throw resumeTooLarge(table, from, `more than ${RESUME_COLD_VERSIONS_MAX} versions or ${limits.bytesMax} bytes (result_bytes_max) were flushed since`);
  }
  const pkIdx = primaryKeyIndex(table);
  const keyOf = (v: RowVersion): string => hot.keyOf(v); // the key the tail indexes its versions by
  const history = new Map<string, RowVersion[]>();
  for (const v of [...coldAfter, ...hot.between(from, handoverSeq)].sort(bySeq)) {
    const key = keyOf(v);
    const versions = history.get(key);
    if (versions === undefined) history.set(key, [v]);
    else if (versions.at(-1)!.seq !== v.seq) versions.push(v);
  }
  // A hot version at or below what the segments hold may be older than a flushed one the hand-over
  // has since removed from the hot tier (also in the middle of a read): those keys are looked up in
  // the segments too, and the newer version is the one held.
  const manifestNow = s.cold.manifest(table, partition);
  const flushedUpTo = manifestNow === manifestBefore ? manifestMaxSeq(manifestBefore) : MAX_SEQ;
  const held = new Map<string, RowVersion>();
  const lookInCold: StoredValue[] = [];
  for (const [key, versions] of history) {
    const v = hot.newestAtOrBelow(key, from);
    if (v !== null) held.set(key, v);
    if (v === null || v.seq <= flushedUpTo) lookInCold.push(versions[0]!.values[pkIdx]!);
  }
  for (let i = 0; i < lookInCold.length; i += 500) {
    if (!limits.stillWanted()) throw new ReadAbandoned();
    const keys = lookInCold.slice(i, i + 500);
    for (const v of (await s.cold.readSeqRange(table, partition, null, from, decodeColdRow, keys)).sort(bySeq)) {
      const hotHeld = held.get(keyOf(v));
      if (hotHeld === undefined || hotHeld.seq < v.seq) held.set(keyOf(v), v);
    }
  }
  // A flush keeps only the newest version of each key, so the version the client held may be gone,
  // replaced by a newer one flushed with it. For such keys the client may or may not hold the row:
  // one whose first change does not match gets a delete (harmless when it was not held).
  const lostUpTo = s.cold.manifest(table, partition) === manifestBefore ? replacedAtOrBelow(manifestBefore.segments, from) : MAX_SEQ;
  const unsure = new Set(coldAfter.filter((v) => v.seq <= lostUpTo).map(keyOf));
  const changes: ResumeChange[] = [];
  for (const [key, versions] of history) {
    let old = held.get(key) ?? null;
    // Versions written before an ALTER TABLE are matched under the subscription's schema version.
    let before = old !== null && !old.deleted && q.predicate(predicateCells(s, q, old));
    let maybeHeld = unsure.has(key);
    for (const row of versions) {
      const now = !row.deleted && q.predicate(predicateCells(s, q, row));
      if (now) changes.push({ kind: before ? 'update' : 'insert', row, old: before ? old : null });
      else if (before) changes.push({ kind: 'delete', row, old });
      else if (maybeHeld) changes.push({ kind: 'delete', row, old: row });
      old = row;
      before = now;
      maybeHeld = false;
    }
  }
  return { changes: changes.sort((a, b) => bySeq(a.row, b.row)), handoverSeq };
}

const MAX_SEQ = (1n << 64n) - 1n;

/**
 * Whether the table's columns now differ from those of the schema version in effect at `from` (a
 * version written in the same millisecond counts as after it). A resume sends only the rows that
 * changed, so a client holding rows in the old columns would keep an added column's default, a
 * dropped and re-added column's old values, or a renamed column under its old name.
 */
function columnsChangedSince(s: Services, table: TableDef, from: bigint): boolean {
  const fromMs = snowflakeTimeMs(from);
  for (let version = table.schemaVersion; version >= 1; version--) {
    const schema = s.catalog.schemaVersion(table.id, version);
    if (schema === undefined || schema.createdAt >= fromMs) continue;
    return columnsKey(schema.columns) !== columnsKey(table.columns);
  }
  return false;
}

/** What a held row's cells depend on: each column's id, name and type (defaults and NOT NULL do not change them). */
function columnsKey(columns: readonly ColumnDef[]): string {
  return columns.map((c) => `${c.id}\u0000${c.name}\u0000${c.type}\u0000${c.precision ?? ''}\u0000${c.scale ?? ''}`).join('\u0001');
}

/**
 * The highest cold `_seq` whose flush may have dropped a version at or below `from`: the newest of
 * the first segment reaching past `from`. A later segment's flush began above that one's versions,
 * so every version it dropped is newer than `from`. Segments listed out of `_seq` order (REPAIR
 * re-lists files) make every cold version suspect.
 */
function replacedAtOrBelow(segments: readonly Segment[], from: bigint): bigint {
  let previousMax = -1n;
  let bound = -1n;
  for (const segment of segments) {
    const min = BigInt(segment.min_seq);
    const max = BigInt(segment.max_seq);
    if (min <= previousMax) return MAX_SEQ;
    previousMax = max;
    if (bound === -1n && max > from) bound = max;
  }
  return bound;
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
