/**
 * The single write path for row data. Writers hand over intents (a statement's or a transaction's
 * row writes); the committer validates them against the newest versions (primary-key uniqueness,
 * optimistic "still the version I read" checks), assigns `_seq` in commit order, and writes whole
 * groups of intents as one atomic RocksDB batch (group commit). An intent is all or nothing.
 * Committed changes are then handed to listeners (the change bus); nothing here waits for them.
 */
import { ServerError, assert } from '../../util/errors.js';
import type { SnowflakeGenerator } from '../../util/snowflake.js';
import { partitionId, primaryKeyIndex, qualifiedName, type StoredValue, type TableDef } from '../../catalog/types.js';
import { KEY_PK, KEY_VERSION, catalogKey, partitionPrefix, pkKeyOf, versionKey } from './keys.js';
import { INDEX_VALUE_HEAD, encodeColdMarker, encodeIndexValue, encodeIndexValueOfRow, type RowVersion } from './row-codec.js';
import type { HotStore } from './hot-store.js';
import { PartitionKeyBounds } from './key-bounds.js';
import { VersionPackBuilder } from './version-pack.js';
import type { WriteBatch } from 'rocksdb-native';

/** What the newest version must be for a write to apply. */
export type WriteExpectation = 'absent' | 'any' | bigint;

export interface RowWrite {
  readonly table: TableDef;
  readonly partition: string;
  /** The full row in the table's current schema order (for a delete: the row being deleted). */
  readonly values: readonly StoredValue[];
  readonly deleted: boolean;
  readonly expect: WriteExpectation;
  /**
   * The row being replaced, when the writer read it: a cold row's index entry has no values, and
   * live queries need the old row to tell an update from an insert.
   */
  readonly previous?: readonly StoredValue[];
}

export type ChangeKind = 'insert' | 'update' | 'delete';

export interface CommittedChange {
  readonly table: TableDef;
  readonly partition: string;
  readonly kind: ChangeKind;
  readonly row: RowVersion;
  readonly old: RowVersion | null;
}

/** A write lost a race with another writer; the statement may be retried from a fresh read. */
export class WriteConflictError extends ServerError {
  constructor(table: TableDef) {
    super('SQL_EXECUTION_ERROR', `Write conflict on ${qualifiedName(table)}: a row changed concurrently, retry the statement`);
  }
}

/** ALTER TABLE wrote a new schema version after the statement read the table: retry it. */
export class SchemaChangedError extends WriteConflictError {
  constructor(table: TableDef, version: number) {
    super(table);
    this.message = `Write conflict on ${qualifiedName(table)}: the table's schema changed (version ${table.schemaVersion} -> ${version}) while the statement ran, retry the statement`;
  }
}

export const MAX_SEQ_KEY = 'meta:max_seq';
/** The max-seq catalog key, built once (every group writes it; RocksDB only reads it). */
const MAX_SEQ_KEY_BYTES = catalogKey(MAX_SEQ_KEY);
const GROUP_INTENTS_MAX = 512;
/** Bounds of the wait for the last group's writers to come back (fsync mode), in ms. */
const GATHER_MIN_MS = 1;
const GATHER_MAX_MS = 5;
/** While writers keep arriving, the gather is extended by this much at a time (ms), up to GATHER_MAX_MS. */
const GATHER_STEP_MS = 1;
/** Writers arriving this long (ms) after the last acknowledgement start a group at once. */
const GATHER_RECENT_MS = 20;
/**
 * Queued intents holding this many row writes start a group at once. Their own work dwarfs a shared
 * sync (1,000 rows: ~5 ms of this thread against a sync's ~0.2 ms of CPU), and waiting for the other
 * writers to come back leaves this thread idle while the group is written and synced, instead of
 * reading the next statements meanwhile.
 */
const GATHER_SKIP_WRITES = 256;
/**
 * A group of fewer row writes, whose encoded rows hold fewer bytes than LOOP_SYNC_BYTES_MAX, may have
 * its WAL sync on this thread (sync-placement.ts decides): its writers wait for the sync anyway. A
 * larger group's sync stays on the pool: this thread reads and stages the next large statements
 * meanwhile (the reason GATHER_SKIP_WRITES exists), and the kernel's write-back of a large WAL
 * append must not hold up every connection. (The WAL gets about twice the row bytes: the index
 * entries and the version packs both carry the encoded row.)
 */
const LOOP_SYNC_WRITES_MAX = GATHER_SKIP_WRITES;
const LOOP_SYNC_BYTES_MAX = 32 * 1024;

/** A flush's hand-over: index entries that now live in a Parquet segment become cold markers. */
export interface ColdHandover {
  readonly table: TableDef;
  readonly partition: string;
  /** Index keys with the `_seq` that was written to the segment. */
  readonly entries: readonly { readonly key: Buffer; readonly seq: bigint; readonly deleted: boolean; readonly schemaVersion: number }[];
  /** Every version with `_seq` <= this was flushed (or superseded by a flushed one) and is deleted. */
  readonly maxSeq: bigint;
}

interface Intent {
  readonly writes: readonly RowWrite[];
  readonly keys: string[];
  /** The index-key prefix of each write's partition (latin1), for the partitions' key bounds. */
  readonly prefixes: string[];
  /** The keys as Buffers, as they are written to RocksDB. */
  readonly keyBuffers: Buffer[];
  resolve(changes: CommittedChange[]): void;
  reject(error: Error): void;
}

export type ChangeListener = (changes: readonly CommittedChange[]) => void;

/**
 * Appends messages derived from accepted changes to the group's batch (topics), so they are written
 * with the rows. `commitStaged`/`rollbackStaged` settle what `stage` handed out once the batch is written or failed.
 */
export interface StagePublisher {
  stage(changes: readonly CommittedChange[], batch: WriteBatch, now: number): void;
  commitStaged(): void;
  rollbackStaged(): void;
}

/** An open watch on a partition's writes, and then the hand-over it guards. */
export interface HandoverWatch {
  readonly tableId: number;
  readonly partition: string;
}

interface PendingHandover extends HandoverWatch {
  /** Index keys (latin1) written to the partition since the watch opened. */
  readonly written: Set<string>;
  handover: ColdHandover | null;
  next: number;
  converted: number;
  resolve(converted: number): void;
  reject(error: Error): void;
}

const HANDOVER_CHUNK_ENTRIES = 20_000;

interface StagedGroup {
  /** Intents in the group, refused ones included (their writers come back as well). */
  readonly size: number;
  readonly batch: WriteBatch;
  readonly accepted: { intent: Intent; changes: CommittedChange[] }[];
  /** Every accepted change of the group, in commit order (topics at staging, listeners once written). */
  readonly changes: CommittedChange[];
  readonly versions: Map<string, RowVersion>;
  /** Bytes of the encoded rows (what the group adds to the WAL, about twice over). */
  readonly rowBytes: number;
}

export class Committer {
  private queue: Intent[] = [];
  private readonly handovers: PendingHandover[] = [];
  private readonly watched: PendingHandover[] = [];
  /** Keys of the group being written right now (staged before a watch may have opened). */
  private inflight: ReadonlyMap<string, RowVersion> = new Map();
  /** Every version with a `_seq` up to this one is written and visible to reads. */
  committedMaxSeq = 0n;
  /** Listener failures so far (each one is a bug, logged on stderr). */
  listenerErrors = 0;
  private draining = false;
  private readonly listeners: ChangeListener[] = [];
  /** Upper bounds of each partition's index keys: keys above them are validated without a read. */
  private readonly keyBounds = new PartitionKeyBounds();
  /** Set while the drain waits for a group to gather (fsync mode): called once enough intents are queued. */
  private gathered: (() => void) | null = null;
  /**
   * Intents the drain waits for before forming a group: the last group's (its writers come back) plus
   * those that were already queued behind it.
   */
  private gatherTarget = 1;
  /** When the last group was acknowledged (performance.now()), and how long its write and sync took. */
  private lastAckAt = 0;
  private lastWriteMs = 0;
  /** The last gather ran out of time: the next group forms at once (mixed workloads do not wait every time). */
  private gatherMissed = false;
  /** Groups written and intents they held, and index reads they needed (for benchmarks and tests). */
  readonly stats = { groups: 0, intents: 0, indexReads: 0 };
  /** Called with each committed group's intent count (the /metrics histogram). */
  onGroup: ((intents: number) => void) | null = null;

  /**
   * The schema version each table is at now (the catalog's), or undefined for a dropped table. A
   * write prepared against another version is refused at staging (WriteConflictError, retry): rows
   * are validated against exactly one schema version, the one they are stored with.
   */
  currentSchemaVersion: ((tableId: number) => number | undefined) | null = null;

  /** Topic publishing, in the same batch as the rows (set at start-up). */
  publisher: StagePublisher | null = null;

  constructor(private readonly hot: HotStore, private readonly seqs: SnowflakeGenerator) {}

  onCommit(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /**
   * Resolves once every intent handed over before the call is written (or refused): an intent with
   * no writes, queued behind them. ALTER TABLE uses it to see every write of the previous schema version.
   */
  barrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ writes: [], keys: [], prefixes: [], keyBuffers: [], resolve: () => resolve(), reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Commits the writes atomically, or rejects with the first failed expectation. */
  commit(writes: readonly RowWrite[]): Promise<CommittedChange[]> {
    if (writes.length === 0) return Promise.resolve([]);
    const { keys, prefixes, keyBuffers } = indexKeysOf(writes);
    return new Promise((resolve, reject) => {
      this.queue.push({ writes, keys, prefixes, keyBuffers, resolve, reject });
      if (!this.draining) void this.drain();
      else if (this.gathered !== null && this.queue.length >= this.gatherTarget) this.gathered();
    });
  }

  /**
   * Replaces flushed index entries by cold markers (except keys written since the watch opened:
   * those have a newer hot version) and deletes the flushed versions, in chunks interleaved with
   * other writes. Resolves with how many entries became cold.
   */
  handOverToCold(handover: ColdHandover, watch: HandoverWatch): Promise<number> {
    for (let i = 1; i < handover.entries.length; i++) {
      assert(Buffer.compare(handover.entries[i - 1]!.key, handover.entries[i]!.key) < 0, 'hand-over entries in key order');
    }
    const pending = watch as PendingHandover;
    assert(this.watched.includes(pending) && pending.handover === null, 'hand-over needs an open watch');
    return new Promise((resolve, reject) => {
      pending.handover = handover;
      pending.resolve = resolve;
      pending.reject = reject;
      this.handovers.push(pending);
      if (!this.draining) void this.drain();
    });
  }

  /**
   * Starts recording the keys written to a partition. A flush opens the watch before it reads the
   * index, so every key written after that read is known at hand-over time and stays hot, without
   * re-reading the index. `closeWatch` ends it when the flush gives up.
   */
  watchPartition(tableId: number, partition: string): HandoverWatch {
    // The group in flight was staged before this watch: its keys may land after the flush's read.
    const pending: PendingHandover = {
      tableId, partition, written: new Set(this.inflight.keys()), handover: null, next: 0, converted: 0,
      resolve: () => undefined, reject: () => undefined,
    };
    this.watched.push(pending);
    return pending;
  }

  closeWatch(watch: HandoverWatch): void {
    const i = this.watched.indexOf(watch as PendingHandover);
    if (i !== -1 && (watch as PendingHandover).handover === null) this.watched.splice(i, 1);
  }

  /** Resolves when every intent handed over so far is settled. */
  async idle(): Promise<void> {
    while (this.draining) await new Promise((r) => setTimeout(r, 1));
  }

  /**
   * Pipelined group commit: the index read of group N+1 overlaps the RocksDB write of group N
   * (in `process` mode; in `fsync` mode the next group is formed after the previous one's sync).
   * Group N+1 is validated only after group N's write finished, with N's staged versions laid over
   * what the read returned (the read may or may not have seen them). Writes stay strictly ordered.
   */
  private async drain(): Promise<void> {
    this.draining = true;
    let previousWrite: Promise<boolean> = Promise.resolve(true);
    let previousStaged = new Map<string, RowVersion>();
    try {
      // Intents that arrive while the last write is in flight are picked up by the outer loop.
      do {
        while (this.queue.length > 0) {
          if (this.hot.durability === 'fsync') {
            // With a WAL sync per group, forming the next group while the previous one syncs splits
            // the writers into two alternating half-groups (one sync each). Waiting for the sync lets
            // every writer it acknowledged rejoin the next group: one sync for all of them (measured
            // with 16 writers: 16 commits per sync instead of 8, see decision 0010).
            await previousWrite;
            if (this.queue.length === 0) break;
            await this.gather();
          }
          const group = this.queue.splice(0, GROUP_INTENTS_MAX);
          let newest: Map<string, RowVersion | null>;
          let learned: Map<string, string>;
          try {
            [newest, learned] = await this.readNewest(group);
          } catch (error) {
            for (const intent of group) intent.reject(error as Error);
            continue;
          }
          // The learned bounds may miss the keys of the group being written while they were read.
          this.keyBounds.install(learned, this.inflight.keys());
          if (await previousWrite) {
            for (const [key, row] of previousStaged) if (newest.has(key)) newest.set(key, row);
          }
          const staged = this.stageGroup(group, newest);
          previousStaged = staged.versions;
          this.inflight = staged.versions;
          previousWrite = this.writeGroup(staged);
        }
        await previousWrite;
        this.inflight = new Map();
        // One chunk of a flush hand-over at a time, so writers are never held up for long.
        if (this.handovers.length > 0) {
          await this.handoverChunk(this.handovers[0]!);
          previousStaged = new Map();
        }
      } while (this.queue.length > 0 || this.handovers.length > 0);
    } finally {
      this.draining = false;
    }
  }

  private stageGroup(group: Intent[], newest: Map<string, RowVersion | null>): StagedGroup {
    const batch = this.hot.db.write({ capacity: 16, autoDestroy: true });
    const accepted: StagedGroup['accepted'] = [];
    const all: CommittedChange[] = [];
    const versions = new Map<string, RowVersion>();
    let maxSeq = 0n;
    let rowBytes = 0;
    // One version entry per partition for the whole group (version-pack.ts): a flush reads entries, not rows.
    const packs = new Map<string, { prefix: Buffer; pack: VersionPackBuilder }>();
    for (const intent of group) {
      const staged = this.stageIntent(intent, versions, newest);
      if (staged instanceof Error) {
        intent.reject(staged);
        continue;
      }
      // The partition's pack is looked up once per run of changes to one partition (a multi-row INSERT: once).
      let prefixOf: CommittedChange | null = null;
      let pack: VersionPackBuilder | null = null;
      for (let i = 0; i < staged.length; i++) {
        const change = staged[i]!;
        const indexValue = encodeIndexValueOfRow(change.row.seq, change.row.schemaVersion, change.row.deleted, change.row.values);
        rowBytes += indexValue.length - INDEX_VALUE_HEAD;
        const key = intent.keys[i]!;
        this.keyBounds.wrote(intent.prefixes[i]!, key);
        if (prefixOf === null || prefixOf.table !== change.table || prefixOf.partition !== change.partition) {
          prefixOf = change;
          const id = partitionId(change.table.id, change.partition);
          let entry = packs.get(id);
          if (entry === undefined) {
            entry = { prefix: partitionPrefix(KEY_VERSION, change.table.id, change.partition), pack: new VersionPackBuilder() };
            packs.set(id, entry);
          }
          pack = entry.pack;
        }
        pack!.add(change.row.seq, indexValue.subarray(INDEX_VALUE_HEAD));
        batch.tryPut(intent.keyBuffers[i]!, indexValue);
        versions.set(key, change.row);
        for (const w of this.watched) if (w.tableId === change.table.id && w.partition === change.partition) w.written.add(key);
        if (change.row.seq > maxSeq) maxSeq = change.row.seq;
        all.push(change);
      }
      accepted.push({ intent, changes: staged });
    }
    for (const { prefix, pack } of packs.values()) for (const e of pack.entries()) batch.tryPut(versionKey(prefix, e.lastSeq), e.value);
    // One call for the whole group: the topics store a call's messages of a partition as one chunk
    // (one RocksDB entry), so concurrent single-row writes share entries (cheaper to read back).
    if (this.publisher !== null && all.length > 0) this.publisher.stage(all, batch, Date.now());
    if (maxSeq > 0n) batch.tryPut(MAX_SEQ_KEY_BYTES, Buffer.from(JSON.stringify(maxSeq.toString()), 'utf8'));
    return { size: group.length, batch, accepted, changes: all, versions, rowBytes };
  }

  /** Writes a staged group; resolves true when it is durable (per the durability mode), false when RocksDB or the WAL sync refused it. */
  private async writeGroup(staged: StagedGroup): Promise<boolean> {
    if (staged.accepted.length === 0) {
      staged.batch.destroy();
      this.publisher?.commitStaged();
      return true;
    }
    const started = performance.now();
    try {
      await staged.batch.flush();
      // fsync mode: one WAL sync for the whole group, before any of its writers is acknowledged.
      await this.hot.syncWal(staged.changes.length < LOOP_SYNC_WRITES_MAX && staged.rowBytes < LOOP_SYNC_BYTES_MAX);
      this.publisher?.commitStaged();
    } catch (error) {
      this.publisher?.rollbackStaged();
      // Classified once for the whole group (a full disk becomes StorageFullError, HTTP 507).
      const failure = this.hot.writeFailed(error);
      for (const { intent } of staged.accepted) intent.reject(failure);
      return false;
    }
    this.stats.groups++;
    this.stats.intents += staged.accepted.length;
    this.onGroup?.(staged.accepted.length);
    this.lastAckAt = performance.now();
    this.lastWriteMs = this.lastAckAt - started;
    this.gatherTarget = Math.min(GROUP_INTENTS_MAX, staged.size + this.queue.length);
    for (const { intent, changes } of staged.accepted) intent.resolve(changes);
    for (const c of staged.changes) if (c.row.seq > this.committedMaxSeq) this.committedMaxSeq = c.row.seq;
    for (const listener of this.listeners) {
      try {
        listener(staged.changes);
      } catch (error) {
        // Listeners (live queries, flush policies, the mirror) must not fail the writers: log and go on.
        this.listenerErrors++;
        process.stderr.write(`commit listener failed: ${(error as Error)?.stack ?? String(error)}\n`);
      }
    }
    return true;
  }

  /**
   * The newest version of every key of the group that may have one (keys above their partition's
   * bound have none and are left out: absent), and the bounds of partitions seen for the first time.
   */
  private async readNewest(group: readonly Intent[]): Promise<[Map<string, RowVersion | null>, Map<string, string>]> {
    const unique = new Set<string>();
    const unknown = new Set<string>();
    for (const intent of group) {
      for (let i = 0; i < intent.keys.length; i++) {
        const prefix = intent.prefixes[i]!;
        if (this.keyBounds.isAbsent(prefix, intent.keys[i]!)) continue;
        unique.add(intent.keys[i]!);
        if (!this.keyBounds.known(prefix)) unknown.add(prefix);
      }
    }
    const newest = new Map<string, RowVersion | null>();
    if (unique.size === 0) return [newest, new Map()];
    this.stats.indexReads++;
    const keys = [...unique];
    const [values, learned] = await Promise.all([
      this.hot.getIndexEntries(keys.map((k) => Buffer.from(k, 'latin1'))),
      this.keyBounds.learn(this.hot, unknown),
    ]);
    keys.forEach((k, i) => newest.set(k, values[i] ?? null));
    return [newest, learned];
  }

  /**
   * fsync mode: waits until the writers the last group acknowledged are back, with those that were
   * queued behind it (gatherTarget). Without the wait, N concurrent writers settle into two cohorts
   * that alternate, each paying a WAL sync (N/2 commits per sync), or a returning writer starts a group
   * alone; waiting less than a sync to merge them halves the syncs per commit. The first wait is half
   * the last write and sync (GATHER_MIN_MS to GATHER_MAX_MS); while writers keep arriving it is
   * extended by GATHER_STEP_MS at a time, up to GATHER_MAX_MS in all: the returning writers' requests
   * are read and executed one after another on this thread, so 16 of them take longer than a fast
   * sync (with a fixed 1 ms, 30% of groups were formed by a timeout, and the group after it at once,
   * measured 10.8 intents per group of 16 writers). A wait that sees no arrival for a step (writers
   * with slower statements, or gone) ends, and the next group does not wait. A writer arriving long
   * after the last group (GATHER_RECENT_MS) is not made to wait.
   */
  private async gather(): Promise<void> {
    const target = this.gatherTarget;
    if (this.queue.length >= target || performance.now() - this.lastAckAt > GATHER_RECENT_MS) return;
    let writes = 0;
    for (const intent of this.queue) if ((writes += intent.writes.length) >= GATHER_SKIP_WRITES) return;
    if (this.gatherMissed) {
      this.gatherMissed = false;
      return;
    }
    const started = performance.now();
    const deadline = started + GATHER_MAX_MS;
    const firstWaitMs = Math.min(GATHER_MAX_MS, Math.max(GATHER_MIN_MS, this.lastWriteMs / 2));
    await new Promise<void>((resolve) => {
      let seen = this.queue.length;
      let timer: NodeJS.Timeout;
      const check = (): void => {
        // Arrivals since the last check extend the wait, within the deadline.
        const now = performance.now();
        if (this.queue.length > seen && now < deadline) {
          seen = this.queue.length;
          timer = setTimeout(check, Math.min(GATHER_STEP_MS, deadline - now));
          return;
        }
        this.gatherMissed = true;
        done();
      };
      timer = setTimeout(check, firstWaitMs);
      const done = (): void => {
        clearTimeout(timer);
        this.gathered = null;
        resolve();
      };
      this.gathered = done;
    });
  }

  /**
   * Converts the next chunk of a hand-over into cold markers with blind puts: keys written since the
   * watch opened are skipped, every other flushed entry is still the newest version. The last chunk
   * also deletes the flushed versions. Chunks are independent: a crash between them is completed by
   * the start-up recovery, which repeats the hand-over.
   */
  private async handoverChunk(pending: PendingHandover): Promise<void> {
    const h = pending.handover!;
    const chunk = h.entries.slice(pending.next, pending.next + HANDOVER_CHUNK_ENTRIES);
    try {
      const batch = this.hot.db.write({ capacity: 16, autoDestroy: true });
      for (const entry of chunk) {
        // A key written since the flush read the index has a newer hot version: it stays hot.
        if (pending.written.has(entry.key.toString('latin1'))) continue;
        batch.tryPut(entry.key, encodeIndexValue(entry.seq, encodeColdMarker(entry.schemaVersion, entry.deleted)));
        pending.converted++;
      }
      pending.next += chunk.length;
      const done = pending.next >= h.entries.length;
      if (done) {
        const prefix = partitionPrefix(KEY_VERSION, h.table.id, h.partition);
        batch.tryDeleteRange(versionKey(prefix, 0n), versionKey(prefix, h.maxSeq + 1n));
      }
      await batch.flush();
      // The cold markers are synced like any write: the segment they point to is already fsynced.
      await this.hot.syncWal();
      if (done) this.finishHandover(pending);
    } catch (error) {
      this.finishHandover(pending);
      pending.reject(this.hot.writeFailed(error));
    }
  }

  private finishHandover(pending: PendingHandover): void {
    this.handovers.splice(this.handovers.indexOf(pending), 1);
    this.watched.splice(this.watched.indexOf(pending), 1);
    if (pending.next >= pending.handover!.entries.length) pending.resolve(pending.converted);
  }

  /**
   * Checks an intent's expectations and assigns seqs; returns the changes or the error. A key's
   * newest version is the intent's own earlier write of it, else the group's (`staged`), else what
   * was read (`newest`).
   */
  private stageIntent(
    intent: Intent, staged: ReadonlyMap<string, RowVersion>, newest: ReadonlyMap<string, RowVersion | null>,
  ): CommittedChange[] | Error {
    // Keys in strictly ascending order (a bulk INSERT of ascending ids) are all different: no map of
    // the intent's own writes is needed.
    const local = strictlyAscending(intent.keys) ? null : new Map<string, RowVersion | null>();
    const changes: CommittedChange[] = [];
    let checkedTable: TableDef | null = null;
    for (let i = 0; i < intent.writes.length; i++) {
      const write = intent.writes[i]!;
      const key = intent.keys[i]!;
      const current = local?.has(key) ? local.get(key)! : (staged.get(key) ?? newest.get(key) ?? null);
      const live = current !== null && !current.deleted ? current : null;
      const failure = checkExpectation(write, live, current);
      if (failure) return failure;
      if (write.table !== checkedTable) {
        const version = this.currentSchemaVersion?.(write.table.id);
        if (version !== undefined && version !== write.table.schemaVersion) return new SchemaChangedError(write.table, version);
        checkedTable = write.table;
      }
      const row: RowVersion = {
        seq: this.seqs.next(),
        deleted: write.deleted,
        schemaVersion: write.table.schemaVersion,
        values: write.values,
      };
      local?.set(key, row);
      const kind = write.deleted ? 'delete' : live === null ? 'insert' : 'update';
      const old = live !== null && live.cold === true && write.previous !== undefined
        ? { ...live, values: write.previous, schemaVersion: write.table.schemaVersion }
        : live === null ? null : this.hot.inSchema(write.table, live);
      changes.push({ table: write.table, partition: write.partition, kind, row, old });
    }
    return changes;
  }
}

function strictlyAscending(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) return false;
  return true;
}

function checkExpectation(write: RowWrite, live: RowVersion | null, current: RowVersion | null): Error | null {
  if (write.expect === 'absent') {
    if (live === null) return null;
    const pkCol = write.table.columns[primaryKeyIndex(write.table)]!;
    return new ServerError(
      'SQL_EXECUTION_ERROR',
      `Duplicate primary key in ${qualifiedName(write.table)}: ${pkCol.name} = ${String(write.values[primaryKeyIndex(write.table)])} already exists`,
    );
  }
  if (write.expect === 'any') return null;
  if (current === null || current.seq !== write.expect) return new WriteConflictError(write.table);
  return null;
}

/**
 * Index-key prefixes of the partitions written to, as Buffer and latin1 text, per table definition
 * (a new definition after ALTER TABLE starts afresh; the old one is collected with its entries). A
 * single-row INSERT otherwise builds and converts the same prefix for every statement.
 */
const indexPrefixes = new WeakMap<TableDef, Map<string, { readonly bytes: Buffer; readonly text: string }>>();
const PREFIXES_PER_TABLE_MAX = 4096;

function indexPrefix(table: TableDef, partition: string): { readonly bytes: Buffer; readonly text: string } {
  let byPartition = indexPrefixes.get(table);
  if (byPartition === undefined) indexPrefixes.set(table, (byPartition = new Map()));
  let prefix = byPartition.get(partition);
  if (prefix === undefined) {
    // USER tables have a partition per account: a table written by very many accounts starts over.
    if (byPartition.size >= PREFIXES_PER_TABLE_MAX) byPartition.clear();
    const bytes = partitionPrefix(KEY_PK, table.id, partition);
    prefix = { bytes, text: bytes.toString('latin1') };
    byPartition.set(partition, prefix);
  }
  return prefix;
}

/** Each write's index key and its partition's key prefix (latin1); the prefix is looked up once per run of writes to one partition. */
function indexKeysOf(writes: readonly RowWrite[]): { keys: string[]; prefixes: string[]; keyBuffers: Buffer[] } {
  const keys = new Array<string>(writes.length);
  const keyBuffers = new Array<Buffer>(writes.length);
  const prefixes = new Array<string>(writes.length);
  let table: TableDef | null = null;
  let partition = '';
  let prefix: Buffer = Buffer.alloc(0);
  let prefixText = '';
  let pkIdx = -1;
  for (let i = 0; i < writes.length; i++) {
    const write = writes[i]!;
    if (write.table !== table || write.partition !== partition) {
      table = write.table;
      partition = write.partition;
      pkIdx = primaryKeyIndex(table);
      assert(pkIdx >= 0, 'writes need a primary key');
      const cached = indexPrefix(table, partition);
      prefix = cached.bytes;
      prefixText = cached.text;
    }
    const key = pkKeyOf(prefix, table.columns[pkIdx]!.type, write.values[pkIdx]!);
    keyBuffers[i] = key;
    keys[i] = key.toString('latin1');
    prefixes[i] = prefixText;
  }
  return { keys, prefixes, keyBuffers };
}
