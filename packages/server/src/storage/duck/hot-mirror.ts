/**
 * The hot mirror: for each (table, partition) that queries read, a query-engine table holding the
 * newest hot version of every key (tombstones included), a table of the partition's cold rows
 * (loaded from its Parquet segments by the file engine, since the query engine cannot open files),
 * and two views merging them (newest per key, and live rows only). It is kept up to date
 * from the committer's changes, applied lazily before the next query that reads it, so a query
 * costs the SQL itself instead of copying the partition into DuckDB every time. Mirrors are
 * dropped least-recently-used past a row budget.
 *
 * Consistency: an entry exists before its first load starts and collects every change committed
 * from then on, and the load keeps the newer `_seq` per key, so no commit is missed or applied
 * twice. Syncs run in one DuckDB transaction, so concurrent readers see before or after, never half.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { assert } from '../../util/errors.js';
import { Mutex } from '../../util/mutex.js';
import { partitionId, primaryKeyIndex, type TableDef } from '../../catalog/types.js';
import type { CommittedChange } from '../hot/committer.js';
import type { HotStore } from '../hot/hot-store.js';
import { encodePk } from '../hot/keys.js';
import type { RowVersion } from '../hot/row-codec.js';
import { columnList, duckType, RowAppender, type DuckEngine, type SourceColumn } from './duck-engine.js';
import { coldRowsSql, mergedRelationSql } from './merged-relation.js';
import { columnProjectionSql } from '../cold/cold-store.js';
import { pausepoint, pausesArmed } from '../../util/failpoints.js';

export interface MirrorLease {
  /** Every change with a `_seq` up to this one is reflected (exactly, while the lease holds the mirror). */
  readonly syncedSeq: bigint;
  /** Relation with live rows only. */
  readonly liveName: string;
  /** Relation with tombstones too (for queries that filter on _deleted). */
  readonly allName: string;
  /** The partition's cold rows (newest per key), or null when nothing is flushed. */
  readonly coldName: string | null;
  release(): void;
}

interface Entry {
  readonly key: string;
  /** The definition the mirror's tables are in; ALTER TABLE moves it forward (see migrate). */
  table: TableDef;
  /** A newer definition of the same table (ALTER TABLE) the next sync migrates the tables to. */
  target: TableDef | null;
  readonly partition: string;
  readonly name: string;
  readonly lock: Mutex;
  pending: RowVersion[];
  loaded: boolean;
  /** The cold manifest the views were built for; a flush or compaction replaces it. */
  coldVersion: unknown;
  hasCold: boolean;
  rows: number;
  /** Rows in the hot table (tombstones included), exact after each load or sync (under `lock`). */
  hotRows: number;
  refs: number;
  lastUsed: number;
  dropped: boolean;
  /** A sync of the pending versions is queued or running (see drain). */
  draining: boolean;
}

/** Above every `_seq` (unsigned 64-bit): a version scan with no upper bound. */
const MAX_SEQ = (1n << 64n) - 1n;

/** Columns of a mirror: the table's columns, then _seq and _deleted. */
export type MirrorColumns = (table: TableDef) => SourceColumn[];

/** What the mirror needs of the cold tier: the current manifest (by identity) and its files. */
export interface ColdView {
  manifest(table: TableDef, partition: string): unknown;
  files(table: TableDef, partition: string): string[];
  /** The segments as one relation in the table's schema (mapped by column id), or null when there are none. */
  relation(table: TableDef, partition: string): string | null;
  /** True when no key can be in two segments (their key ranges do not overlap). */
  disjoint(table: TableDef, partition: string): boolean;
  /** Throws TableUnavailableError when a segment's bytes differ from what was flushed. */
  verifyChecksums(table: TableDef, partition: string): Promise<void>;
  /** Turns a failed segment read into TableUnavailableError naming the damaged file (when one is). */
  readFailed(table: TableDef, partition: string, error: unknown): Promise<unknown>;
  /** Runs `read` with the segment files listed meanwhile kept on disk (a compaction may replace them). */
  pinned<T>(read: () => Promise<T>): Promise<T>;
}

/** Pending versions per mirror past which they are applied without waiting for a query (see drain). */
const PENDING_MAX = 65_536;

export class HotMirror {
  private readonly entries = new Map<string, Entry>();
  private counter = 0;
  private totalRows = 0;

  constructor(
    private readonly duck: DuckEngine,
    /** Reads the cold segments (the query engine has no file access). */
    private readonly files: DuckEngine,
    private readonly hot: HotStore,
    private readonly columnsOf: MirrorColumns,
    private readonly cold: ColdView,
    private readonly rowsMax: number,
    private readonly committedSeq: () => bigint,
  ) {}

  /** Committer listener: remembers each change for the mirrors that exist. */
  onCommit(changes: readonly CommittedChange[]): void {
    // A bulk INSERT's changes are one run of one table and partition: looked up once per run.
    let last: CommittedChange | null = null;
    let entry: Entry | undefined;
    for (const change of changes) {
      if (last === null || change.table !== last.table || change.partition !== last.partition) {
        entry = this.entries.get(partitionId(change.table.id, change.partition));
        last = change;
      }
      if (entry === undefined) continue;
      // Kept as committed: a sync maps it (by column id) to the definition the mirror is in then.
      entry.pending.push(change.row);
      if (entry.pending.length >= PENDING_MAX && !entry.draining) this.drain(entry);
    }
  }

  /**
   * Applies a mirror's pending versions without waiting for a query, once there are PENDING_MAX of
   * them: a million inserts into a queried partition held a million row objects in the JS heap until
   * its next query, and that query's sync as much again in garbage (decision 0016). The sync is the
   * one the next query would run, in the same lock, so what a query sees does not change.
   */
  private drain(entry: Entry): void {
    entry.draining = true;
    void entry.lock.run(async () => {
      if (entry.dropped) return;
      // Not loaded (a sync failed): the next query loads from RocksDB, which holds all of these.
      if (!entry.loaded) entry.pending = [];
      else await this.sync(entry);
    }).catch(() => undefined) // a failed sync leaves the mirror to be reloaded by the next query
      .finally(() => {
        entry.draining = false;
        this.evict();
        if (entry.pending.length >= PENDING_MAX && !entry.dropped) this.drain(entry);
      });
  }

  /**
   * Syncs the mirror and leases it for a query. With `hold`, no other sync runs until release, so the
   * query sees exactly the commits up to `syncedSeq` (live-query snapshots need that).
   */
  async acquire(table: TableDef, partition: string, hold = false): Promise<MirrorLease> {
    const key = partitionId(table.id, partition);
    let entry = this.entries.get(key);
    if (entry !== undefined && entry.table !== table && entry.table.id === table.id && table.schemaVersion > (entry.target ?? entry.table).schemaVersion) {
      // ALTER TABLE: the loaded tables are migrated in the query engine (metadata and a copy in
      // memory) instead of being reloaded from every segment.
      entry.target = table;
    } else if (entry === undefined || (entry.table !== table && entry.target !== table)) {
      if (entry !== undefined) this.retire(entry);
      entry = {
        key, table, target: null, partition, name: `m_${++this.counter}`, lock: new Mutex(), pending: [],
        loaded: false, coldVersion: undefined, hasCold: false, rows: 0, hotRows: 0, refs: 0, lastUsed: 0, dropped: false, draining: false,
      };
      this.entries.set(key, entry);
    }
    entry.refs++;
    entry.lastUsed = performance.now();
    const e = entry;
    const unlock = await e.lock.lock();
    let syncedSeq: bigint;
    try {
      syncedSeq = await this.sync(e);
    } catch (error) {
      unlock();
      e.refs--;
      this.retire(e);
      throw error;
    }
    // No hot row at `syncedSeq` (a partition not written since its flush): the cold table alone is the
    // partition as of then, and DuckDB runs Top-N and filters over one table scan at about half the
    // CPU of the merge (decision 0027). A sync after this lease adds later versions only, and a reload
    // swaps in the cold rows of a later flush point: either way the query reads one consistent state
    // at or after `syncedSeq`, as with the merged view.
    const coldOnly = e.hasCold && e.hotRows === 0;
    if (!hold) unlock();
    this.evict();
    let released = false;
    return {
      syncedSeq,
      liveName: coldOnly ? `memory.main.${e.name}_cold_live` : `memory.main.${e.name}_live`,
      allName: `memory.main.${e.name}`,
      coldName: e.hasCold ? `memory.main.${e.name}_cold` : null,
      release: () => {
        assert(!released, 'mirror lease released twice');
        released = true;
        if (hold) unlock();
        e.refs--;
        if (e.dropped && e.refs === 0) void this.dropTables(e);
      },
    };
  }

  /** Forgets every mirror of a table (DROP TABLE). */
  dropTable(tableId: number): void {
    for (const entry of [...this.entries.values()]) if (entry.table.id === tableId) this.retire(entry);
  }

  /** Applies what is pending; returns the `_seq` up to which the mirror is now exact. */
  private async sync(entry: Entry): Promise<bigint> {
    if (entry.dropped) throw new Error('mirror retired while syncing');
    if (entry.target !== null) await this.migrate(entry, entry.target);
    // A flush moved rows to a new segment (and out of the hot tier): rebuild from both tiers.
    if (entry.loaded && this.cold.manifest(entry.table, entry.partition) !== entry.coldVersion) entry.loaded = false;
    if (!entry.loaded) return this.load(entry);
    // Taken in the same tick as the pending list: every commit up to here is in one or the other.
    const syncedSeq = this.committedSeq();
    if (entry.pending.length === 0) return syncedSeq;
    const pending = entry.pending.map((r) => this.hot.inSchema(entry.table, r));
    entry.pending = [];
    const newest = newestByKey(entry.table, pending);
    const pkIdx = primaryKeyIndex(entry.table);
    const pkColumn = this.columnsOf(entry.table)[pkIdx]!;
    const columns = this.columnsOf(entry.table);
    let replaced = 0;
    await this.duck.withConnection(async (conn) => {
      const keys = `${entry.name}_keys`;
      await conn.run('BEGIN TRANSACTION');
      try {
        await conn.run(`CREATE TEMP TABLE ${keys} (k ${duckType(pkColumn)})`);
        const keyAppender = await RowAppender.open(conn, keys, 'temp', [pkColumn]);
        try {
          for (const r of newest.values()) {
            keyAppender.cell(0, r.values[pkIdx]);
            keyAppender.endRow();
          }
          keyAppender.flush();
        } finally {
          keyAppender.close();
        }
        const deleted = await conn.run(`DELETE FROM memory.main.${entry.name}_hot WHERE "${pkColumn.name}" IN (SELECT k FROM temp.main.${keys})`);
        replaced = deleted.rowsChanged;
        await appendVersions(conn, `${entry.name}_hot`, 'memory', columns, newest.values());
        await conn.run(`DROP TABLE temp.main.${keys}`);
        await conn.run('COMMIT');
      } catch (error) {
        await conn.run('ROLLBACK').catch(() => undefined);
        entry.loaded = false; // reload from RocksDB next time rather than guess what applied
        await conn.run(`DROP TABLE IF EXISTS temp.main.${keys}`).catch(() => undefined);
        throw error;
      }
    });
    const added = newest.size - replaced;
    entry.rows += added;
    entry.hotRows += added;
    this.totalRows += added;
    return syncedSeq;
  }

  /**
   * Moves a mirror to a newer definition of its table (ALTER TABLE) inside the query engine: its
   * hot and cold tables are rewritten by column id (renamed, widened, added with their missing
   * value, dropped) and the views re-created (pending changes are mapped when applied). Not loaded yet: it just loads
   * in the new definition.
   */
  private async migrate(entry: Entry, next: TableDef): Promise<void> {
    const previous = entry.table;
    entry.target = null;
    entry.table = next;
    if (!entry.loaded) return;
    const base = `memory.main.${entry.name}`;
    const select = columnProjectionSql(previous.columns, next.columns);
    const pk = this.columnsOf(next)[primaryKeyIndex(next)]!.name;
    try {
      await this.duck.withConnection(async (conn) => {
        await conn.run('BEGIN TRANSACTION');
        try {
          await this.dropViews(conn, base);
          for (const suffix of entry.hasCold ? ['_hot', '_cold'] : ['_hot']) {
            await conn.run(`CREATE TABLE ${base}${suffix}_next AS SELECT ${select} FROM ${base}${suffix}`);
            await conn.run(`DROP TABLE ${base}${suffix}`);
            await conn.run(`ALTER TABLE ${base}${suffix}_next RENAME TO ${entry.name}${suffix}`);
          }
          const coldName = entry.hasCold ? `${base}_cold` : null;
          await this.createViews(conn, base, coldName, pk);
          await conn.run('COMMIT');
        } catch (error) {
          await conn.run('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
    } catch (error) {
      // Rather than guess what applied: the next sync loads from both tiers in the new definition.
      entry.loaded = false;
      throw error;
    }
  }

  /**
   * (Re)builds the mirror's tables from both tiers. They are built under `_next` names and swapped in
   * with the views in one transaction: a query that leased the mirror before a reload (after a flush)
   * keeps finding its relations while the scan runs.
   */
  private async load(entry: Entry): Promise<bigint> {
    return this.cold.pinned(() => this.loadPinned(entry));
  }

  private async loadPinned(entry: Entry): Promise<bigint> {
    // Before the scan, so the scan-then-manifest order below stays free of other awaits.
    await this.cold.verifyChecksums(entry.table, entry.partition);
    const columns = this.columnsOf(entry.table);
    const base = `memory.main.${entry.name}`;
    const pk = columns[primaryKeyIndex(entry.table)]!.name;
    let hotRows = 0;
    let coldRows = 0;
    let hasCold = false;
    let coldVersion: unknown;
    let syncedSeq = 0n;
    await this.duck.withConnection(async (conn) => {
      try {
        await conn.run(`DROP TABLE IF EXISTS ${base}_hot_next`);
        await conn.run(`DROP TABLE IF EXISTS ${base}_cold_next`);
        await conn.run(`CREATE TABLE ${base}_hot_next (${columnList(columns)})`);
        const watermark = this.hot.flushedSeq(entry.table.id, entry.partition);
        if (watermark > 0n) {
          // A flushed partition: its hot rows are the newest version per key of the versions above the
          // watermark (exactly the unflushed history, decision 0014), read from the version packs,
          // instead of an iteration over every index entry, most of them cold (decision 0027).
          hotRows = await this.loadUnflushed(conn, entry, `${base}_hot_next`, columns, pk, watermark);
        } else {
          // The newest hot version of every key, streamed from RocksDB into the table a chunk at a time:
          // the JS heap holds one chunk, not the partition (decision 0016).
          const appender = await RowAppender.open(conn, `${entry.name}_hot_next`, 'memory', columns);
          try {
            for await (const chunk of this.hot.scanPartitionChunks(entry.table, entry.partition)) {
              for (const row of chunk) appendVersion(appender, row);
              hotRows += chunk.length;
            }
            appender.flush();
          } finally {
            appender.close();
          }
        }
        // The manifest is read after the hot scan: a row the scan missed because a flush handed it over
        // to a cold marker was committed to a segment before that hand-over, so it is listed now.
        coldVersion = this.cold.manifest(entry.table, entry.partition);
        const coldFiles = this.cold.files(entry.table, entry.partition);
        const disjoint = this.cold.disjoint(entry.table, entry.partition);
        // Taken in the same tick as the pending list: every commit up to here is in one or the other.
        syncedSeq = this.committedSeq();
        const pending = entry.pending.map((r) => this.hot.inSchema(entry.table, r));
        entry.pending = [];
        if (pending.length > 0) hotRows += await this.mergeNewer(conn, `${base}_hot_next`, entry.table, columns, pending);
        hasCold = coldFiles.length > 0;
        if (hasCold) {
          await conn.run(`CREATE TABLE ${base}_cold_next (${columnList(columns)})`);
          const typed = columns.map((c) => ({ name: c.name, sqlType: duckType(c) }));
          try {
            const relation = this.cold.relation(entry.table, entry.partition)!;
            if (pausesArmed) await pausepoint('cold:read');
            coldRows = await this.files.copyInto(coldRowsSql(relation, coldFiles.length, typed, pk, disjoint), conn, `${entry.name}_cold_next`, 'memory');
          } catch (error) {
            // A damaged segment makes this partition unavailable with a reason, not a 500.
            throw await this.cold.readFailed(entry.table, entry.partition, error);
          }
        }
        await conn.run('BEGIN TRANSACTION');
        try {
          await this.dropViews(conn, base);
          await conn.run(`DROP TABLE IF EXISTS ${base}_hot`);
          await conn.run(`DROP TABLE IF EXISTS ${base}_cold`);
          await conn.run(`ALTER TABLE ${base}_hot_next RENAME TO ${entry.name}_hot`);
          if (hasCold) await conn.run(`ALTER TABLE ${base}_cold_next RENAME TO ${entry.name}_cold`);
          const coldName = hasCold ? `${base}_cold` : null;
          await this.createViews(conn, base, coldName, pk);
          await conn.run('COMMIT');
        } catch (error) {
          await conn.run('ROLLBACK').catch(() => undefined);
          throw error;
        }
      } catch (error) {
        await conn.run(`DROP TABLE IF EXISTS ${base}_hot_next`).catch(() => undefined);
        await conn.run(`DROP TABLE IF EXISTS ${base}_cold_next`).catch(() => undefined);
        throw error;
      }
    });
    entry.hasCold = hasCold;
    entry.coldVersion = coldVersion;
    entry.loaded = true;
    entry.hotRows = hotRows;
    this.totalRows += hotRows + coldRows - entry.rows;
    entry.rows = hotRows + coldRows;
    return syncedSeq;
  }

  /** Drops what createViews made (before the tables under them change or go). */
  private async dropViews(conn: DuckDBConnection, base: string): Promise<void> {
    for (const view of [`${base}_live`, base, `${base}_cold_live`]) await conn.run(`DROP VIEW IF EXISTS ${view}`);
  }

  /**
   * The partition's views: merged (`base`, `base_live`), and `base_cold_live`, the cold rows' live
   * ones alone (leased while the hot table is empty). Without cold rows it is the hot rows' live ones,
   * so a lease taken before a reload always finds it and reads the partition's state.
   */
  private async createViews(conn: DuckDBConnection, base: string, coldName: string | null, pk: string): Promise<void> {
    await conn.run(`CREATE VIEW ${base} AS ${mergedRelationSql(`${base}_hot`, coldName, pk, false)}`);
    const live = mergedRelationSql(`${base}_hot`, coldName, pk, true);
    await conn.run(`CREATE VIEW ${base}_live AS ${live}`);
    await conn.run(`CREATE VIEW ${base}_cold_live AS ${coldName === null ? live : `SELECT * FROM ${coldName} WHERE NOT "_deleted"`}`);
  }

  /**
   * The hot rows of a flushed partition into `target`: every version above `watermark` streamed (one
   * iterator, one consistent view, as the index scan) into a temp table, then the newest per key, in
   * key order like the index scan's. Each key written since the flush has its newest version there
   * (versions at or below the watermark are the only ones a hand-over deletes); a key not written
   * since has none, as its index entry reads cold. Returns the rows inserted.
   */
  private async loadUnflushed(conn: DuckDBConnection, entry: Entry, target: string, columns: SourceColumn[], pk: string, watermark: bigint): Promise<number> {
    const staged = `${entry.name}_unflushed`;
    await conn.run(`DROP TABLE IF EXISTS temp.main.${staged}`);
    await conn.run(`CREATE TEMP TABLE ${staged} (${columnList(columns)})`);
    try {
      const appender = await RowAppender.open(conn, staged, 'temp', columns);
      try {
        await this.hot.forEachVersion(entry.table, entry.partition, watermark, MAX_SEQ, (row) => appendVersion(appender, row));
        appender.flush();
      } finally {
        appender.close();
      }
      const inserted = await conn.run(`INSERT INTO ${target} SELECT * FROM temp.main.${staged} `
        + `QUALIFY row_number() OVER (PARTITION BY "${pk}" ORDER BY "_seq" DESC) = 1 ORDER BY "${pk}"`);
      return Number(inserted.rowsChanged);
    } finally {
      await conn.run(`DROP TABLE IF EXISTS temp.main.${staged}`);
    }
  }

  /**
   * Lays versions committed while the load scanned (the entry collected them) over the scanned rows,
   * keeping the newer `_seq` per key: the scan may already hold a key's version or a newer one.
   * Returns how many keys the scan did not have (rows added).
   */
  private async mergeNewer(conn: DuckDBConnection, hot: string, table: TableDef, columns: SourceColumn[], versions: readonly RowVersion[]): Promise<number> {
    const staged = `${hot.split('.').pop()!}_staged`;
    const pk = `"${columns[primaryKeyIndex(table)]!.name}"`;
    const seq = `"${columns[table.columns.length]!.name}"`;
    await conn.run(`CREATE TEMP TABLE ${staged} (${columnList(columns)})`);
    try {
      await appendVersions(conn, staged, 'temp', columns, newestByKey(table, versions).values());
      const replaced = await conn.run(`DELETE FROM ${hot} USING temp.main.${staged} s WHERE ${hot}.${pk} = s.${pk} AND s.${seq} > ${hot}.${seq}`);
      const inserted = await conn.run(
        `INSERT INTO ${hot} SELECT * FROM temp.main.${staged} s WHERE NOT EXISTS (SELECT 1 FROM ${hot} h WHERE h.${pk} = s.${pk})`);
      return inserted.rowsChanged - replaced.rowsChanged;
    } finally {
      await conn.run(`DROP TABLE IF EXISTS temp.main.${staged}`);
    }
  }

  private evict(): void {
    if (this.totalRows <= this.rowsMax) return;
    const idle = [...this.entries.values()].filter((e) => e.refs === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const entry of idle) {
      if (this.totalRows <= this.rowsMax) break;
      this.retire(entry);
    }
  }

  private retire(entry: Entry): void {
    if (entry.dropped) return;
    entry.dropped = true;
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    this.totalRows -= entry.rows;
    if (entry.refs === 0) void this.dropTables(entry);
  }

  private async dropTables(entry: Entry): Promise<void> {
    await entry.lock.run(() =>
      this.duck.withConnection(async (conn: DuckDBConnection) => {
        await this.dropViews(conn, `memory.main.${entry.name}`);
        await conn.run(`DROP TABLE IF EXISTS memory.main.${entry.name}_hot`);
        await conn.run(`DROP TABLE IF EXISTS memory.main.${entry.name}_cold`);
        await conn.run(`DROP TABLE IF EXISTS memory.main.${entry.name}_hot_next`);
        await conn.run(`DROP TABLE IF EXISTS memory.main.${entry.name}_cold_next`);
      }),
    ).catch(() => undefined);
  }
}

/** The newest version per primary key among versions given in any order. */
function newestByKey(table: TableDef, versions: readonly RowVersion[]): Map<string, RowVersion> {
  const pkIdx = primaryKeyIndex(table);
  const pkType = table.columns[pkIdx]!.type;
  const out = new Map<string, RowVersion>();
  for (const v of versions) {
    const k = encodePk(pkType, v.values[pkIdx]!).toString('latin1');
    const current = out.get(k);
    if (current === undefined || current.seq < v.seq) out.set(k, v);
  }
  return out;
}

/** Versions as mirror rows (their cells, then `_seq` and `_deleted`) appended to `table`. */
async function appendVersions(
  conn: DuckDBConnection, table: string, catalog: 'temp' | 'memory', columns: readonly SourceColumn[], versions: Iterable<RowVersion>,
): Promise<void> {
  const appender = await RowAppender.open(conn, table, catalog, columns);
  try {
    for (const r of versions) appendVersion(appender, r);
    appender.flush();
  } finally {
    appender.close();
  }
}

/** One version as a mirror row: its cells, then `_seq` and `_deleted`. */
function appendVersion(appender: RowAppender, r: RowVersion): void {
  appender.version(r.values, r.seq, r.deleted);
}
