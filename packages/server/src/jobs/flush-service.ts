/**
 * Moves hot rows to the cold tier. A partition flush: stream the partition's unflushed versions up
 * to the last committed `_seq` into DuckDB, write the newest version of each key (tombstones too) as
 * a Parquet segment through a temp file (fsync, rename), commit the manifest atomically, then raise
 * the partition's flush watermark in the hot store: index entries at or below it read as cold
 * markers, and the flushed versions are deleted (decision 0014; a write that raced the flush has a
 * larger `_seq` and stays hot). A crash at any step leaves the old state or the new one: orphan
 * files are removed and hand-overs completed at start-up (`recover`).
 * Also compaction, the flush policies (rows per partition, interval), the flush event listeners
 * and STORAGE REPAIR TABLE jobs (they take the same partition locks).
 */
import { Mutex } from '../util/mutex.js';
import { StorageFullError, TableUnavailableError, assert, errorLine } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { snowflakeAtMs, snowflakeTimeMs } from '../util/snowflake.js';
import { partitionId, primaryKeyIndex, qualifiedName, tablePartitionPrefix, type StoredValue, type TableDef } from '../catalog/types.js';
import type { Catalog } from '../catalog/catalog.js';
import type { HotStore } from '../storage/hot/hot-store.js';
import { KEY_PK, decodePk, partitionPrefix } from '../storage/hot/keys.js';
import type { CommittedChange, Committer } from '../storage/hot/committer.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import { MANIFEST_FILE, SEGMENT_NAME, highestSeq, manifestFlushedSeq, manifestMaxSeq, type Manifest, type Segment } from '../storage/cold/manifest.js';
import { sqlIdent, type DuckEngine, type SourceColumn } from '../storage/duck/duck-engine.js';
import { checkSegment, readSegmentContent } from '../storage/cold/segment-check.js';
import {
  REPAIR_PENDING_FILE, clearRepairPending, isRepairPending, markRepairPending, repairPartition, type RepairResult,
} from '../storage/cold/table-repair.js';
import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import type { JobRow, JobStore } from './job-store.js';
import { failpoint, pausepoint } from '../util/failpoints.js';
import { JobProgress, count } from './job-progress.js';
import { FlushRows } from '../storage/cold/flush-rows.js';

const POLICY_BACKOFF_MIN_MS = 5_000;
const POLICY_BACKOFF_MAX_MS = 300_000;

export interface FlushEvent {
  readonly table: TableDef;
  /** The partition flushed: a USER table's account id (not the user name), or null (SHARED). */
  readonly userId: string | null;
  readonly row_count: number;
  readonly files: readonly string[];
  readonly flushed_at: number;
}

export interface FlushDeps {
  readonly catalog: Catalog;
  readonly hot: HotStore;
  readonly cold: ColdStore;
  readonly committer: Committer;
  readonly duck: DuckEngine;
  readonly jobs: JobStore;
  readonly log: Logger;
  readonly columnsOf: (table: TableDef) => SourceColumn[];
  /** Segments per partition past which a flush schedules a compaction. */
  readonly compactSegmentsMax: number;
  readonly concurrentFlushesMax: number;
}

interface Pending {
  /** The newest definition seen (ALTER TABLE replaces it; the count goes on). */
  table: TableDef;
  readonly partition: string;
  count: number;
  firstAtMs: number;
}

export class FlushService {
  private readonly locks = new Map<string, Mutex>();
  private readonly pending = new Map<string, Pending>();
  private readonly requested = new Set<string>();
  private readonly listeners: ((e: FlushEvent) => void)[] = [];
  private readonly running = new Set<Promise<unknown>>();
  private slots: number;
  private readonly slotWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Disk-full back-off for policy flushes (0: none); reset by a completed job. */
  private policyBackoffMs = 0;
  private policyPausedUntil = 0;

  constructor(private readonly d: FlushDeps) {
    this.slots = d.concurrentFlushesMax;
  }

  onFlush(listener: (e: FlushEvent) => void): void {
    this.listeners.push(listener);
  }

  // Start-up and policies --------------------------------------------------------------------

  /** Removes orphan files, completes interrupted hand-overs and loads the unflushed-row counters. */
  async recover(): Promise<void> {
    for (const table of this.d.catalog.tablesIn(null)) {
      if (table.type === 'STREAM') continue;
      for (const partition of this.partitionsOf(table)) {
        try {
          await this.recoverPartition(table, partition);
        } catch (error) {
          // A damaged partition is left exactly as found (no orphan removal: with its manifest
          // unusable every segment would look like one) and served as unavailable; the rest starts.
          if (!(error instanceof TableUnavailableError)) throw error;
          this.d.log.error('table partition unavailable: damaged cold-tier file', { table: qualifiedName(table), partition, error: error.message });
        }
      }
    }
    const byId = new Map(this.d.catalog.tablesIn(null).map((t) => [t.id, t]));
    for (const [key, c] of await this.d.hot.countHotVersions()) {
      const table = byId.get(c.tableId);
      if (table === undefined || table.type === 'STREAM') continue;
      this.pending.set(key, { table, partition: c.partition, count: c.count, firstAtMs: snowflakeTimeMs(c.oldestSeq) });
    }
  }

  /**
   * The table's partitions with a directory, and those the hot tier says were flushed: one whose
   * directory is gone altogether must be found too (its rows' only copy was there).
   */
  partitionsOf(table: TableDef): string[] {
    return [...new Set([...this.d.cold.partitions(table), ...this.d.hot.flushedPartitions(table.id)])];
  }

  /**
   * Orphan removal and an interrupted hand-over's completion, for one partition. Both delete data
   * on the manifest's word, so the manifest is checked against the hot tier first: a manifest older
   * than the data, or one whose segments do not hold what it says, makes the partition unavailable with
   * every file left in place (a fault review: an older manifest copied back had a newer segment
   * deleted as an orphan, and a raised max_seq had acknowledged hot rows deleted).
   */
  private async recoverPartition(table: TableDef, partition: string): Promise<void> {
    if (isRepairPending(this.d.cold.dir(table, partition))) {
      throw this.d.cold.markUnavailable(table, partition, REPAIR_PENDING_FILE,
        'STORAGE REPAIR TABLE was interrupted before it finished (keys whose rows it took out may read as older versions): run it again');
    }
    await this.checkManifestPresent(table, partition);
    const manifest = this.d.cold.manifest(table, partition);
    const watermark = this.d.hot.flushedSeq(table.id, partition);
    await this.checkManifestNotOlder(table, partition, manifest, watermark);
    const removed = this.d.cold.removeOrphans(table, partition);
    if (removed.length > 0) this.d.log.warn('removed orphan segment files', { table: qualifiedName(table), partition, files: removed });
    if (this.d.cold.isRemote(table)) this.reconcileRemote(table, partition);
    const maxSeq = manifestMaxSeq(manifest);
    // Killed after the manifest commit and before the watermark was written (or a data directory from
    // before watermarks): write it now; the same batch deletes the flushed versions. A watermark at
    // or above the manifest's was written with its deletes, so there is nothing to do (no write per
    // partition at every start).
    if (maxSeq === 0n || watermark >= maxSeq) return;
    await this.checkSegmentsToHandOver(table, partition, manifest, watermark);
    await this.d.hot.handOverFlushed(table.id, partition, maxSeq);
    this.d.log.warn('completed an interrupted flush hand-over', { table: qualifiedName(table), partition, flushed_seq: maxSeq.toString() });
  }

  /**
   * A manifest is older than the data when the hot tier handed versions over past what it records.
   * One from before flushed_seq was recorded may end below the watermark legitimately (compaction
   * dropped the newest versions): it is taken for older only when an unlisted segment file holds
   * versions it should list (unlistedBelow).
   */
  private async checkManifestNotOlder(table: TableDef, partition: string, manifest: Manifest, watermark: bigint): Promise<void> {
    const recorded = manifestFlushedSeq(manifest);
    if (watermark <= recorded) return;
    if (manifest.flushed_seq === undefined && !(await this.unlistedBelow(table, partition, recorded, watermark))) return;
    throw this.d.cold.markUnavailable(table, partition, MANIFEST_FILE,
      `records flushes up to _seq ${recorded}, but the hot tier handed rows over to the cold tier up to _seq ${watermark}: `
      + 'the manifest is older than the data (copied back from an earlier backup?). Nothing was removed: put the newer manifest back, '
      + 'or run STORAGE REPAIR TABLE to list the segment files that are there');
  }

  /**
   * Whether an unlisted segment file holds versions in (listed, watermark]: handed over, yet in no file
   * the manifest lists. Unlisted files are otherwise a crash's leftovers: a flush's (above the
   * watermark) or a compaction's inputs not yet deleted (at or below what the manifest lists).
   */
  private async unlistedBelow(table: TableDef, partition: string, listed: bigint, watermark: bigint): Promise<boolean> {
    const dir = this.d.cold.dir(table, partition);
    for (const file of this.d.cold.unlistedSegments(table, partition)) {
      try {
        const content = await readSegmentContent(this.d.duck, join(dir, file));
        if (BigInt(content.maxSeq) > listed && BigInt(content.maxSeq) <= watermark) return true;
      } catch {
        // An unreadable leftover tells nothing either way; it is removed as an orphan.
      }
    }
    return false;
  }

  /**
   * Before an interrupted hand-over is completed (it deletes the hot versions up to the manifest's
   * highest `_seq`): each segment above the watermark must hold what its entry says (checksum, rows,
   * `_seq` range), or the hot versions would be deleted for rows no file holds. (Not compared with the
   * highest committed `_seq`: a WAL tail lost in `process` mode can leave it below an intact segment's.)
   */
  private async checkSegmentsToHandOver(table: TableDef, partition: string, manifest: Manifest, watermark: bigint): Promise<void> {
    const dir = this.d.cold.dir(table, partition);
    for (const segment of manifest.segments) {
      const path = join(dir, segment.path);
      // A remote partition's segment not cached here is checked when it is downloaded (size and checksum).
      if (BigInt(segment.max_seq) <= watermark || !existsSync(path)) continue;
      const check = await checkSegment(this.d.duck, path, segment);
      if (check.status !== 'ok') throw this.d.cold.markUnavailable(table, partition, segment.path, check.detail);
    }
  }

  /**
   * Makes a remote partition's bucket match its manifest: objects a crash left between an upload and
   * its manifest commit go, segments a restored data directory has locally but the bucket lost are
   * uploaded again. In the background (an unreachable storage must not hold up the start) and under the
   * partition's lock (an upload of the next flush must not be taken for an orphan before its commit).
   */
  private reconcileRemote(table: TableDef, partition: string): void {
    void this.lock(table, partition).run(async () => {
      const { removed, uploaded } = await this.d.cold.reconcileRemote(table, partition);
      if (removed.length > 0) this.d.log.warn('removed orphan remote segment objects', { table: qualifiedName(table), partition, keys: removed });
      if (uploaded.length > 0) this.d.log.warn('uploaded segments missing from the remote storage', { table: qualifiedName(table), partition, files: uploaded });
    }).catch((error: unknown) => {
      this.d.log.warn('could not reconcile a partition with its remote storage (retried at the next start)', { table: qualifiedName(table), partition, error: (error as Error).message });
    });
  }

  /**
   * No manifest is the state of a partition whose first flush never completed: its segment files are
   * orphans, and its rows are all still hot. But when the hot tier says rows were handed over to cold
   * (index entries marked cold), the manifest was lost: its segments hold the only copy of those rows,
   * so they must not be swept as orphans. The partition is served as unavailable until STORAGE REPAIR
   * TABLE lists them again.
   */
  private async checkManifestPresent(table: TableDef, partition: string): Promise<void> {
    const dir = this.d.cold.dir(table, partition);
    let files: string[];
    try {
      if (existsSync(join(dir, MANIFEST_FILE))) return;
      files = existsSync(dir) ? readdirSync(dir) : [];
    } catch (error) {
      // Unreadable (permissions, an I/O error): this partition is unavailable, not the server.
      throw this.d.cold.markUnavailable(table, partition, MANIFEST_FILE, `cannot be read: ${(error as Error).message}`);
    }
    const segments = files.some((f) => SEGMENT_NAME.test(f));
    // A local partition with neither manifest nor segments and no flush watermark never completed a
    // flush (every row is hot); a remote one's segments may all be in the bucket only.
    if (!segments && !this.d.cold.isRemote(table) && this.d.hot.flushedSeq(table.id, partition) === 0n) return;
    if (await this.d.hot.hasLiveColdRows(table, partition)) {
      throw this.d.cold.markUnavailable(table, partition, MANIFEST_FILE, !existsSync(dir)
        ? 'missing with its whole partition directory, but the hot tier says rows of this partition were flushed there'
        : 'missing, but the hot tier says rows of this partition were flushed: its segment files are kept (not swept as orphans)');
    }
  }

  /** Committer listener: counts unflushed versions per partition and applies the rows policy. */
  onCommit(changes: readonly CommittedChange[]): void {
    const now = Date.now();
    // A bulk INSERT's changes are one run of one table and partition: looked up once per run.
    let last: CommittedChange | null = null;
    let p: Pending | undefined;
    for (const c of changes) {
      if (c.table.type === 'STREAM') continue;
      if (last === null || c.table !== last.table || c.partition !== last.partition) {
        p = this.pending.get(partitionId(c.table.id, c.partition));
        last = c;
      }
      if (p === undefined || p.table.id !== c.table.id) {
        p = { table: c.table, partition: c.partition, count: 0, firstAtMs: now };
        this.pending.set(partitionId(c.table.id, c.partition), p);
      } else if (p.table !== c.table && c.table.schemaVersion >= p.table.schemaVersion) {
        p.table = c.table;
      }
      // The interval counts from the oldest unflushed write, not from the last flush.
      if (p.count === 0) p.firstAtMs = now;
      p.count++;
      const rows = c.table.options.flushPolicy.rows;
      if (rows !== null && p.count >= rows) this.requestPolicyFlush(p);
    }
  }

  /** Checks interval policies once a second. */
  start(): void {
    this.timer = setInterval(() => this.checkIntervals(), 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.running]);
  }

  private checkIntervals(): void {
    const now = Date.now();
    for (const p of this.pending.values()) {
      const interval = p.table.options.flushPolicy.intervalSeconds;
      if (interval !== null && p.count > 0 && now - p.firstAtMs >= interval * 1000) this.requestPolicyFlush(p);
    }
  }

  private requestPolicyFlush(p: Pending): void {
    const key = partitionId(p.table.id, p.partition);
    const current = this.d.catalog.table(p.table.namespace, p.table.name);
    if (this.requested.has(key) || current?.id !== p.table.id) return;
    // ALTER TABLE since the last commit: the policy and the flush follow the current definition.
    p.table = current;
    // Disk full: no job row could be recorded and no segment written. The unflushed count stays,
    // so the next check after the disk is writable again (and the back-off is over) flushes it.
    if (!this.storageWritable()) return;
    // A damaged partition would fail every attempt: no job per commit or per second until REPAIR.
    if (this.d.cold.isUnavailable(p.table, p.partition)) return;
    this.requested.add(key);
    void this.startJob('flush', p.table, p.partition === '' ? null : p.partition, { trigger: 'policy' }, async (signal, job, progress) => {
      try {
        return await this.flushPartition(p.table, p.partition, signal, job, { progress, index: 0, of: 1 });
      } finally {
        this.requested.delete(key);
      }
    }).catch((error: unknown) => {
      this.requested.delete(key);
      // A full disk is logged once by the storage health monitor, not once per policy check.
      if (this.storageFailed(error)) return;
      this.d.log.error('could not record a policy flush job', { error: (error as Error).message });
    });
  }

  /** Partitions of a table with unflushed rows. */
  pendingPartitions(table: TableDef): string[] {
    return [...this.pending.values()].filter((p) => p.table.id === table.id && p.count > 0).map((p) => p.partition);
  }

  /** False while the disk is full or a disk-full failure's back-off runs. */
  private storageWritable(): boolean {
    return (this.d.hot.health?.writable ?? true) && Date.now() >= this.policyPausedUntil;
  }

  /**
   * True when a job failed for a full disk (reported to the health monitor). Policy flushes then
   * pause with a doubling back-off, so a cold tier that stays full (Parquet writes failing while
   * RocksDB still has room) does not fail a flush every second.
   */
  private storageFailed(error: unknown): boolean {
    const health = this.d.hot.health;
    if (health === null || !(health.writeFailed(error, 'flush') instanceof StorageFullError)) return false;
    this.policyBackoffMs = Math.min(POLICY_BACKOFF_MAX_MS, this.policyBackoffMs === 0 ? POLICY_BACKOFF_MIN_MS : this.policyBackoffMs * 2);
    this.policyPausedUntil = Date.now() + this.policyBackoffMs;
    return true;
  }

  // Commands ---------------------------------------------------------------------------------

  /** STORAGE FLUSH TABLE: a job over every partition with unflushed rows; null when there is none. */
  async flushTable(table: TableDef): Promise<JobRow | null> {
    assert(table.type !== 'STREAM', 'stream tables are never flushed');
    const partitions = this.pendingPartitions(table);
    if (partitions.length === 0) return null;
    return this.startJob('flush', table, null, { trigger: 'command', partitions: partitions.length }, async (signal, job, progress) => {
      const total: WorkResult = { rows: 0, bytes: 0, files: [] };
      for (const [index, partition] of partitions.entries()) {
        if (signal.aborted) throw new CancelledError();
        addResult(total, await this.flushPartition(table, partition, signal, job, { progress, index, of: partitions.length }));
      }
      return total;
    });
  }

  /** STORAGE COMPACT TABLE: one job rewriting each partition's segments into one. */
  async compactTable(table: TableDef): Promise<JobRow> {
    const partitions = this.d.cold.partitions(table);
    return this.startJob('compaction', table, null, { partitions: partitions.length }, async (signal, _job, progress) => {
      const total: WorkResult = { rows: 0, bytes: 0, files: [] };
      for (const [index, partition] of partitions.entries()) {
        if (signal.aborted) throw new CancelledError();
        addResult(total, await this.compactPartition(table, partition, { progress, index, of: partitions.length }));
      }
      return total;
    });
  }

  /**
   * STORAGE REPAIR TABLE: one job rebuilding each partition's manifest from its readable segments
   * (unreadable ones quarantined), under each partition's lock; the job's result lists what moved.
   */
  async repairTable(table: TableDef): Promise<JobRow> {
    const partitions = this.partitionsOf(table);
    return this.startJob('repair', table, null, { partitions: partitions.length }, async (signal, job, progress) => {
      const total: WorkResult = { rows: 0, bytes: 0, files: [] };
      const reports: (RepairResult & { forgotten_keys: number })[] = [];
      for (const [index, partition] of partitions.entries()) {
        if (signal.aborted) throw new CancelledError();
        progress.report(index / partitions.length, `partition ${count(index + 1)} of ${count(partitions.length)}`, true);
        const report = await this.lock(table, partition).run(async () => {
          await this.d.cold.fetchAllRemote(table, partition);
          const dir = this.d.cold.dir(table, partition);
          // A marker left by an earlier REPAIR that did not finish stays until one does.
          const pendingBefore = isRepairPending(dir);
          markRepairPending(dir);
          let committed = false;
          try {
            const r = await repairPartition(this.d.cold, table, partition, this.d.columnsOf(table), this.d.hot.flushedSeq(table.id, partition));
            committed = true;
            failpoint('repair:after-manifest');
            const forgotten = await this.forgetLostKeys(table, partition);
            clearRepairPending(dir);
            return { ...r, forgotten_keys: forgotten };
          } catch (error) {
            // Its new manifest may leave files out whose keys are not forgotten yet: not served as it is.
            // Before the commit nothing the reads use changed (a quarantined file is a missing one to them).
            if (committed) this.d.cold.markUnavailable(table, partition, REPAIR_PENDING_FILE, `STORAGE REPAIR TABLE did not finish (${errorLine(error)}): run it again`);
            else if (!pendingBefore) clearRepairPending(dir);
            throw error;
          }
        });
        reports.push(report);
        total.rows += report.rows;
        total.files.push(...report.kept);
        if (report.quarantined.length > 0) this.d.log.warn('quarantined damaged segment files', { table: qualifiedName(table), partition, files: report.quarantined });
        await this.d.jobs.update(job.job_id, { rows_processed: total.rows });
      }
      return { ...total, details: reports };
    });
  }

  /**
   * After a repair: keys whose newest version (their cold marker's `_seq`) no kept segment holds (it
   * was in a quarantined file) are forgotten: they read as absent, everywhere. Their older versions
   * still in kept segments go (a scan would otherwise read the key as that version: a fault review
   * saw a deleted row come back and an update undone), and their markers become deleted markers,
   * through the committer's hand-over path so a concurrent write to the same key wins. Hot entries
   * are left alone: a version still hot is kept even if its segment is gone (the next flush writes it
   * again), which is why the start-up hand-over is not repeated here.
   */
  private async forgetLostKeys(table: TableDef, partition: string): Promise<number> {
    const watch = this.d.committer.watchPartition(table.id, partition);
    try {
      const present = await this.d.cold.segmentSeqs(table, partition);
      const lost = (await this.d.hot.scanIndex(table, partition, this.d.hot.db)).filter((e) => e.row.cold === true && !present.has(e.row.seq));
      if (lost.length === 0) return 0;
      const pkType = table.columns[primaryKeyIndex(table)]!.type;
      const prefixBytes = partitionPrefix(KEY_PK, table.id, partition).length;
      await this.dropColdVersions(table, partition, lost.map((e) => decodePk(pkType, e.key.subarray(prefixBytes))));
      const entries = lost.filter((e) => !e.row.deleted).map((e) => ({ key: e.key, seq: e.row.seq, deleted: true, schemaVersion: e.row.schemaVersion }));
      // maxSeq 0: no hot version is deleted by this hand-over (there is none at seq 0).
      if (entries.length > 0) await this.d.committer.handOverToCold({ table, partition, entries, maxSeq: 0n }, watch);
      this.d.log.warn('forgot keys whose newest rows were in quarantined segments', { table: qualifiedName(table), partition, keys: lost.length });
      return lost.length;
    } finally {
      this.d.committer.closeWatch(watch);
    }
  }

  /** Rewrites the partition's segments as one without any version of `pks` (under the partition's lock, in a job slot as compaction). */
  private async dropColdVersions(table: TableDef, partition: string, pks: readonly StoredValue[]): Promise<void> {
    if (!(await this.d.cold.holdsKeys(table, partition, pks))) return;
    await this.slot(() => this.rewriteWithout(table, partition, pks));
  }

  private async rewriteWithout(table: TableDef, partition: string, pks: readonly StoredValue[]): Promise<void> {
    const manifest = this.d.cold.manifest(table, partition);
    const select = this.d.cold.selectWithoutKeys(table, partition, pks);
    if (select === null) return;
    const written = await this.d.cold.writeSegmentFromQuery(table, partition, this.d.columnsOf(table), select, manifest.next_batch);
    await this.replaceAllSegments(table, partition, manifest, written);
  }

  /**
   * The flushed_seq of the manifest that follows `manifest` with segments up to `segmentsMax`: never
   * below the hot watermark, since a manifest written before flushed_seq was recorded may end below it
   * (an older compaction dropped its newest tombstones). Called under the partition's lock (the watermark is stable).
   */
  private flushedSeqAfter(table: TableDef, partition: string, manifest: Manifest, segmentsMax: bigint): string {
    return highestSeq(manifestFlushedSeq(manifest), this.d.hot.flushedSeq(table.id, partition), segmentsMax).toString();
  }

  /**
   * Every segment of `manifest` replaced by `written` (batch `next_batch`), or by none: one manifest
   * swap, then the old files retired once the reads that may have listed them have ended.
   */
  private async replaceAllSegments(table: TableDef, partition: string, manifest: Manifest, written: { segment: Segment; tmpPath: string } | null): Promise<void> {
    const batch = manifest.next_batch;
    // The versions left out may have been the newest: flushed_seq still says how far flushes went.
    const flushedSeq = this.flushedSeqAfter(table, partition, manifest, 0n);
    if (written === null) {
      this.d.cold.commitManifest(table, partition, { ...manifest, next_batch: batch + 1, segments: [], flushed_seq: flushedSeq });
    } else {
      await this.d.cold.publishSegment(table, partition, written);
      this.d.cold.commitManifest(table, partition, { ...manifest, next_batch: batch + 1, segments: [written.segment], flushed_seq: flushedSeq });
    }
    this.d.cold.retireSegmentFiles(table, partition, manifest.segments.map((s) => s.path));
  }

  /**
   * The purge of a dropped account's partition: forgets its unflushed-row counter and runs `remove`
   * under the partition's lock, so no flush or compaction writes into files being deleted.
   */
  async dropPartition<T>(table: TableDef, partition: string, remove: () => Promise<T>): Promise<T> {
    this.pending.delete(partitionId(table.id, partition));
    return this.lock(table, partition).run(remove);
  }

  /** Waits for every flush or compaction of a table to finish (before DROP TABLE removes its files). */
  async quiesce(table: TableDef): Promise<void> {
    // A backup copying the cold tier: the table's files are removed after it is done.
    while (this.frozen !== null) await this.frozen;
    for (const [key, p] of this.pending) if (p.table.id === table.id) this.pending.delete(key);
    for (const [key, lock] of this.locks) if (key.startsWith(tablePartitionPrefix(table.id))) await lock.run(async () => undefined);
  }

  // Jobs -------------------------------------------------------------------------------------

  private async startJob(
    type: 'flush' | 'compaction' | 'repair', table: TableDef, partition: string | null, params: unknown,
    work: (signal: AbortSignal, job: JobRow, progress: JobProgress) => Promise<WorkResult>,
  ): Promise<JobRow> {
    // system.jobs shows user names, like every other system table; partitions are keyed by account id.
    const userId = partition === null ? null : this.d.catalog.account(partition)?.userId ?? partition;
    const { job, signal } = await this.d.jobs.create({ job_type: type, namespace_id: table.namespace, table_name: table.name, user_id: userId, parameters: params });
    this.track(this.finishJob(job, signal, work));
    return job;
  }

  private async finishJob(job: JobRow, signal: AbortSignal, work: (signal: AbortSignal, job: JobRow, progress: JobProgress) => Promise<WorkResult>): Promise<void> {
    const started = performance.now();
    const progress = new JobProgress(this.d.jobs, job.job_id);
    try {
      const { rows, files, bytes, details } = await work(signal, job, progress).finally(() => progress.settled());
      // Killed before it wrote anything (e.g. queued behind a flush that took every row): cancelled.
      if (signal.aborted && rows === 0) throw new CancelledError();
      const durationMs = Math.round(performance.now() - started);
      await this.d.jobs.update(job.job_id, {
        status: 'completed', rows_processed: rows, finished_at: Date.now(),
        progress: 1, progress_message: `${count(rows)} rows, ${count(files.length)} files`,
        result: JSON.stringify({ rows, bytes, files, duration_ms: durationMs, ...(details === undefined ? {} : { partitions: details }) }),
      });
      this.policyBackoffMs = 0;
      this.d.log.info('job completed', { job_id: job.job_id, job_type: job.job_type, table: `${job.namespace_id}.${job.table_name}`, rows, ms: durationMs });
    } catch (error) {
      const cancelled = error instanceof CancelledError;
      await this.d.jobs.update(job.job_id, {
        status: cancelled ? 'cancelled' : 'failed', finished_at: Date.now(),
        error_message: cancelled ? 'Cancelled by KILL JOB' : (error as Error).message,
      }).catch(() => undefined);
      if (cancelled) return;
      if (this.storageFailed(error)) {
        // Expected while the disk is full: one short line per job, the state change is logged apart.
        this.d.log.warn('job failed: storage full', { job_id: job.job_id, job_type: job.job_type });
        return;
      }
      if (error instanceof TableUnavailableError) {
        // Expected until STORAGE REPAIR TABLE: the damage itself was logged when it was found.
        this.d.log.warn('job failed: table unavailable', { job_id: job.job_id, job_type: job.job_type, error: error.message });
        return;
      }
      this.d.log.error('job failed', { job_id: job.job_id, error: (error as Error).stack ?? String(error) });
    }
  }

  private track(p: Promise<unknown>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    while (this.slots === 0) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.slots--;
    try {
      return await fn();
    } finally {
      this.slots++;
      this.slotWaiters.shift()?.();
    }
  }

  /**
   * The partition's lock. Every change to a partition's cold files (flush, compaction, repair, purge)
   * runs under it, and waits first while a backup holds the cold tier frozen (`freezeCold`): the
   * gate check and the lock's queueing happen in one synchronous step, so nothing slips between.
   */
  private lock(table: TableDef, partition: string): { run<T>(fn: () => Promise<T>): Promise<T> } {
    const key = partitionId(table.id, partition);
    return {
      run: async <T>(fn: () => Promise<T>): Promise<T> => {
        while (this.frozen !== null) await this.frozen;
        let m = this.locks.get(key);
        if (m === undefined) {
          m = new Mutex();
          this.locks.set(key, m);
        }
        return m.run(fn);
      },
    };
  }

  /** Non-null while a backup holds the cold tier frozen; resolves when it lets go. */
  private frozen: Promise<void> | null = null;

  /**
   * Runs `fn` with every manifest and segment file frozen: waits for running flushes, compactions,
   * repairs and purges to finish (each holds its partition's lock through its hand-over), and holds
   * back new ones (and DROP TABLE's file removal) until `fn` returns. Writes go on into the hot
   * tier meanwhile. A backup takes its RocksDB snapshot and copies the cold files inside it.
   */
  async freezeCold<T>(fn: () => Promise<T>): Promise<T> {
    while (this.frozen !== null) await this.frozen;
    let thaw!: () => void;
    this.frozen = new Promise<void>((resolve) => (thaw = resolve));
    const releases: (() => void)[] = [];
    try {
      for (const m of [...this.locks.values()]) releases.push(await m.lock());
      return await fn();
    } finally {
      for (const release of releases) release();
      this.frozen = null;
      thaw();
    }
  }

  // Flush ------------------------------------------------------------------------------------

  /** Flushes one partition; partitions of a table never flush concurrently with themselves. */
  async flushPartition(table: TableDef, partition: string, signal: AbortSignal, job: JobRow, part?: PartitionProgress): Promise<WorkResult> {
    return this.lock(table, partition).run(() => this.slot(async () => {
      // Dropped (or dropped and created again) since the request: nothing to flush. Altered since:
      // flushed in the current definition (rows of every version are mapped to it by column id).
      const current = this.d.catalog.table(table.namespace, table.name);
      if (current?.id !== table.id) return { rows: 0, bytes: 0, files: [] };
      table = current;
      const started = performance.now();
      // Every version up to `upTo` is committed and every later write gets a larger `_seq`: the
      // versions in (watermark, upTo] reduced to the newest per key are exactly the partition's
      // unflushed rows as of upTo, like a snapshot (a key written since stays hot: its newer `_seq`
      // is above the watermark this flush sets).
      const upTo = this.d.committer.committedMaxSeq;
      const counted = this.pending.get(partitionId(table.id, partition));
      const countedBefore = counted?.count ?? 0;
      const report = partReporter(part);
      const written = await this.flushPartitionWrite(table, partition, upTo, signal, (stage, rows, force) => {
        // Reading the versions: 0-70%; the segment write and hand-over after it (a fixed split, not a measured one).
        const of = countedBefore > 0 ? ` of ${count(Math.max(rows, countedBefore))}` : '';
        if (stage === 'scan') report(0.7 * (countedBefore > 0 ? Math.min(1, rows / countedBefore) : 0), `rows ${count(rows)}${of} read`, force);
        else report(0.8, `rows ${count(rows)}${of} read; writing the segment`, force);
      });
      if (written === null) return { rows: 0, bytes: 0, files: [] };
      const { segment, scanned, scanMs, handover } = written;
      const writtenMs = performance.now() - started;
      report(0.9, `segment written (${count(segment.row_count)} rows); handing over from the hot tier`, true);
      await handover;
      failpoint('flush:after-handover');
      this.d.log.info('partition flushed', {
        table: qualifiedName(table), partition, rows: segment.row_count, versions: scanned, file: segment.path, size_bytes: segment.size_bytes,
        scan_ms: Math.round(scanMs), write_ms: Math.round(writtenMs - scanMs), handover_ms: Math.round(performance.now() - started - writtenMs),
      });
      if (counted !== undefined) {
        counted.count = Math.max(0, counted.count - countedBefore);
        if (counted.count > 0) counted.firstAtMs = Date.now();
      }
      await this.flushPartitionFinish(table, partition, job, segment.row_count, segment);
      return { rows: segment.row_count, bytes: segment.size_bytes, files: [segment.path] };
    }));
  }

  /**
   * Up to the commit point of a flush: the versions streamed from RocksDB straight into DuckDB's
   * appender (no array of them), the segment written, renamed, and listed in the manifest; then the
   * hand-over started, which raises the watermark for reads in the same synchronous step as the
   * manifest commit (no read sees the rows both hot and in the new segment). Null when there was
   * nothing to flush.
   */
  private async flushPartitionWrite(
    table: TableDef, partition: string, upTo: bigint, signal: AbortSignal,
    progress: (stage: 'scan' | 'write', rows: number, force: boolean) => void = () => undefined,
  ): Promise<{ segment: Segment; scanned: number; scanMs: number; handover: Promise<void> } | null> {
    const manifest = this.d.cold.manifest(table, partition);
    const batch = manifest.next_batch;
    const after = this.d.hot.flushedSeq(table.id, partition);
    const started = performance.now();
    // The versions are held as the RocksDB values they came in and read in place (flush-rows.ts).
    const expected = this.pending.get(partitionId(table.id, partition))?.count ?? 0;
    const rows = new FlushRows(table, (seq, bytes) => this.d.hot.decodeVersion(table, seq, bytes), Math.min(expected, 4_000_000));
    // Progress once per RocksDB value read (a pack holds a commit group's versions); JobProgress writes at most twice a second.
    rows.onValue = (versions) => progress('scan', versions, false);
    const scanned = await this.d.hot.forEachEncodedVersion(table, partition, after, upTo, rows);
    const scanMs = performance.now() - started;
    progress('write', scanned, true);
    await pausepoint('flush:after-scan');
    const written = await this.d.cold.writeSegment(table, partition, this.d.columnsOf(table), rows, batch);
    if (written === null) return null;
    const { segment } = written;
    failpoint('flush:after-write');
    if (signal.aborted) {
      this.d.cold.removeSegmentFiles(table, partition, [`${segment.path}.tmp`]);
      throw new CancelledError();
    }
    await this.d.cold.publishSegment(table, partition, written, () => failpoint('flush:during-upload'));
    failpoint('flush:after-rename');
    const flushedSeq = this.flushedSeqAfter(table, partition, manifest, BigInt(segment.max_seq));
    this.d.cold.commitManifest(table, partition, { ...manifest, next_batch: batch + 1, segments: [...manifest.segments, segment], flushed_seq: flushedSeq });
    this.d.hot.health?.flushSucceeded();
    failpoint('flush:after-manifest');
    return { segment, scanned, scanMs, handover: this.d.hot.handOverFlushed(table.id, partition, BigInt(segment.max_seq)) };
  }

  /** Job progress, the flush event for live subscribers, and compaction when segments pile up. */
  private async flushPartitionFinish(table: TableDef, partition: string, job: JobRow, rows: number, segment: Segment): Promise<void> {
    await this.d.jobs.update(job.job_id, { rows_processed: (this.d.jobs.get(job.job_id)?.rows_processed ?? 0) + rows });
    const event: FlushEvent = { table, userId: partition === '' ? null : partition, row_count: rows, files: [segment.path], flushed_at: Date.now() };
    for (const listener of this.listeners) listener(event);
    if (this.d.cold.manifest(table, partition).segments.length > this.d.compactSegmentsMax) {
      this.track(this.startJob('compaction', table, partition === '' ? null : partition, { trigger: 'segments' },
        async (_signal, _job, progress) => this.compactPartition(table, partition, { progress, index: 0, of: 1 })));
    }
  }

  // Compaction -------------------------------------------------------------------------------

  /**
   * Rewrites a partition's segments as one: newest version per key, tombstones older than the
   * table's retention dropped. The manifest swap is atomic; old files are deleted after it, once the
   * reads that may have listed them have ended.
   */
  async compactPartition(table: TableDef, partition: string, part?: PartitionProgress): Promise<WorkResult> {
    return this.lock(table, partition).run(() => this.slot(async () => {
      const manifest = this.d.cold.manifest(table, partition);
      if (manifest.segments.length === 0) return { rows: 0, bytes: 0, files: [] };
      const report = partReporter(part);
      const segments = manifest.segments.length;
      await this.verifyBeforeCompaction(table, partition, (checked) => report(0.5 * (checked / segments), `verifying segment ${count(checked + 1)} of ${count(segments)}`, checked === 0));
      // One segment without tombstones is already compact: rewriting it would change nothing.
      const only = manifest.segments.length === 1 ? manifest.segments[0]! : null;
      // (unless it was written under an older schema or without field ids: compaction rewrites it into the current one).
      if (only !== null && only.columns._deleted?.max !== 'true' && only.schema_version === table.schemaVersion && only.field_ids === true) {
        return { rows: 0, bytes: 0, files: [] };
      }
      const relation = this.d.cold.relation(table, partition)!;
      const pk = table.columns[primaryKeyIndex(table)]!.name;
      const cutoffSeq = snowflakeAtMs(Date.now() - table.options.deletedRetentionHours * 3_600_000);
      const select = `SELECT * FROM ${relation} `
        + `QUALIFY row_number() OVER (PARTITION BY ${sqlIdent(pk)} ORDER BY "_seq" DESC) = 1`;
      const kept = `SELECT * FROM (${select}) WHERE NOT ("_deleted" AND "_seq" < ${cutoffSeq})`;
      const batch = manifest.next_batch;
      // One DuckDB statement reads every segment and writes the new one: no finer progress inside it.
      const rowsIn = manifest.segments.reduce((n, seg) => n + seg.row_count, 0);
      report(0.6, `rewriting ${count(segments)} segments (${count(rowsIn)} rows) as one`, true);
      await pausepoint('compaction:before-rewrite');
      let written;
      try {
        written = await this.d.cold.writeSegmentFromQuery(table, partition, this.d.columnsOf(table), kept, batch);
      } catch (error) {
        throw await this.d.cold.readFailed(table, partition, error);
      }
      await this.replaceAllSegments(table, partition, manifest, written);
      return { rows: written?.segment.row_count ?? 0, bytes: written?.segment.size_bytes ?? 0, files: written ? [written.segment.path] : [] };
    }));
  }

  /**
   * Compaction deletes the segments it merged, so it must never merge a damaged one: every segment
   * is read in full first (and its checksum compared); a bad one fails the job with the reason and
   * marks the partition unavailable. Costs one extra read of what compaction reads anyway.
   */
  private async verifyBeforeCompaction(table: TableDef, partition: string, checking: (index: number) => void): Promise<void> {
    await this.d.cold.fetchSegments(table, partition);
    const dir = this.d.cold.dir(table, partition);
    for (const [index, segment] of this.d.cold.manifest(table, partition).segments.entries()) {
      checking(index);
      const check = await checkSegment(this.d.cold.fileEngine, join(dir, segment.path), segment);
      if (check.status !== 'ok') throw this.d.cold.markUnavailable(table, partition, segment.path, check.detail);
    }
  }
}

/** Where one partition's work sits in its job: its progress reporter, and partition `index` of `of`. */
interface PartitionProgress {
  readonly progress: JobProgress;
  readonly index: number;
  readonly of: number;
}

/** Reports a partition's own fraction and message as the job's: scaled into its slot, prefixed with "partition i of n" when there are several. */
function partReporter(part: PartitionProgress | undefined): (fraction: number, message: string, force: boolean) => void {
  if (part === undefined) return () => undefined;
  const prefix = part.of > 1 ? `partition ${count(part.index + 1)} of ${count(part.of)}: ` : '';
  return (fraction, message, force) => part.progress.report((part.index + fraction) / part.of, prefix + message, force);
}

interface WorkResult {
  rows: number;
  bytes: number;
  files: string[];
  /** Per-partition reports (repair), recorded in the job's result. */
  details?: unknown;
}

function addResult(total: WorkResult, part: WorkResult): void {
  total.rows += part.rows;
  total.bytes += part.bytes;
  total.files.push(...part.files);
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}
