/**
 * The cold tier: per partition, immutable zstd Parquet segments and the manifest listing them, in
 * the directory the table's storage gives it (StorageLocations: `<data>/storage/<namespace>/<table>/
 * [<user_id>/]` for the built-in 'local'). Segments are written by DuckDB (COPY ... TO, through a
 * temp file that is fsynced and renamed) and read by DuckDB; this module knows the manifests
 * (cached) and the file-level protocol. For a remote (S3) storage a segment is uploaded before the
 * manifest that lists it is committed, and a read first brings the partition's segments into the
 * local SegmentCache (checked against the manifest's size and SHA-256).
 *
 * Damage is contained per partition: a manifest that fails validation, a listed segment that is
 * missing, has the wrong size or checksum, or fails to read marks that partition unavailable (with
 * the file and the reason); its reads throw TableUnavailableError until STORAGE REPAIR TABLE, and
 * nothing else is affected.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { assert, TableUnavailableError } from '../../util/errors.js';
import { ACCOUNT_ID_PATTERN, type StorageDef, partitionId, qualifiedName, primaryKeyIndex, tablePartitionPrefix, type ColumnDef, type ColumnType, type StoredValue, type TableDef } from '../../catalog/types.js';
import { coerce, formatDecimal } from '../../sql/values.js';
import { columnList, duckType, readParquetSql, RowAppender, sqlIdent, sqlString, type DuckEngine, type SourceColumn } from '../duck/duck-engine.js';
import { ChunkWriter, chunkWritable } from '../duck/chunk-writer.js';
import { withChunkSource, type ChunkSource } from '../duck/chunk-source.js';
import type { FlushRows } from './flush-rows.js';
import { columnsForVersion, type SchemaLookup } from '../../catalog/schema-map.js';
import type { RowVersion } from '../hot/row-codec.js';
import { DELETED_FIELD_ID, SEQ_FIELD_ID, MANIFEST_FILE, ManifestError, SEGMENT_NAME, emptyManifest, fsyncPath, readManifest, writeManifest, type ColumnStats, type Manifest, type Segment } from './manifest.js';
import { checkSegment, fileSha256 } from './segment-check.js';
import { StorageLocations } from '../storages/storage-locations.js';
import { SegmentCache } from '../storages/segment-cache.js';
import { StorageUnreachableError, type ObjectStore } from '../storages/object-store.js';
import { userIdOfLeaf } from '../storages/templates.js';
import { pausepoint, pausesArmed } from '../../util/failpoints.js';

/** Downloads of one partition's segments run this many at a time. */
const DOWNLOADS_PARALLEL = 4;

/** Reports what failed in the background (remote manifest copies, deletes of replaced objects). */
export type ColdWarn = (message: string, fields: Record<string, unknown>) => void;

/** A user name: the partition id of accounts migrated from before account ids (newer ones: ACCOUNT_ID_PATTERN). */
const LEGACY_PARTITION_ID = /^[a-z0-9_][a-z0-9_.@-]{0,63}$/;
const INTEGER_TYPES: ReadonlySet<ColumnType> = new Set(['SmallInt', 'Int', 'BigInt']);
// 16,384-row groups: a point lookup decompresses one group (measured 3.1 ms vs 8.1 ms at 122,880 on a
// 200,000-row segment) at the price of ~28% larger files; scans are as fast.
export const PARQUET_ROW_GROUP_ROWS = 16_384;

/** Converts a DuckDB row of a segment back to stored cells (supplied by the exec layer). */
export type ColdRowDecoder = (table: TableDef, row: readonly unknown[]) => RowVersion;

/** Why a partition is unavailable (system.tables shows it). */
export interface PartitionDamage {
  readonly tableId: number;
  readonly partition: string;
  /** The damaged file, relative to the data directory (storage/<ns>/<table>/...). */
  readonly file: string;
  readonly reason: string;
  readonly since: number;
}

export class ColdStore {
  private readonly manifests = new Map<string, Manifest>();
  private readonly damaged = new Map<string, PartitionDamage>();
  /**
   * Segments whose checksum this process verified, by absolute path: the checksum and the file's
   * identity as it was then (`fileIdentity`). A file changed since (any write moves its ctime) is
   * hashed again before its next read instead of being trusted for the life of the process. Entries
   * go with their files.
   */
  private readonly verified = new Map<string, string>();
  private tempCounter = 0;
  /** Remote work started without a caller waiting (manifest copies, deletes); `settled` awaits it. */
  private readonly background = new Set<Promise<void>>();
  /**
   * Reads in flight, counted by the epoch they started in. A compaction's replaced segments are
   * retired at the current epoch (which it then advances) and deleted once no read of that epoch or
   * an earlier one remains: a read lists the segments of the manifest it saw and may still open them.
   */
  private readonly pins = new Map<number, number>();
  private pinEpoch = 0;
  private readonly retired: { epoch: number; table: TableDef; partition: string; names: readonly string[] }[] = [];

  /** The catalog's schema versions (set once it is loaded): segments of older versions are read in the current one. */
  schemas: SchemaLookup | null = null;

  /**
   * The cold tier of a data directory: its storages (`lookup`: the catalog's), the local cache of
   * remote segments (scanned: it survives restarts), reading and writing through `duck`.
   */
  static open(dataDir: string, duck: DuckEngine, lookup: (storageId: string) => StorageDef | undefined, cacheBytesMax: number, warn?: ColdWarn): ColdStore {
    const locations = new StorageLocations(join(dataDir, 'storage'), join(dataDir, 'remote'), lookup);
    const cache = new SegmentCache(cacheBytesMax);
    cache.scan(locations.cacheRoot);
    return new ColdStore(locations, duck, cache, dataDir, warn);
  }

  constructor(
    readonly locations: StorageLocations,
    private readonly duck: DuckEngine,
    readonly cache: SegmentCache,
    /** The data directory: damaged files are named relative to it. */
    private readonly dataDir: string,
    private readonly warn: ColdWarn = () => undefined,
  ) {}

  /**
   * The partition's segments (those that can hold one of `pks`, when given) as one SQL relation in
   * `table`'s schema: its columns in order, then `_seq` and `_deleted`. Segments with field ids
   * are read by column id (DuckDB's read_parquet schema map: renamed columns keep their data,
   * dropped ones are not read, added ones read their missing value); older ones by name in the
   * schema version they were written with. Null when no segment qualifies.
   */
  relation(table: TableDef, partition: string, pks?: readonly StoredValue[]): string | null {
    const m = this.manifest(table, partition);
    const dir = this.dir(table, partition);
    const pkCol = table.columns[primaryKeyIndex(table)]!;
    const segments = m.segments.filter((s) => pks === undefined || mayHoldAny(s, pkCol, pks));
    if (segments.length === 0) return null;
    const parts: string[] = [];
    // A segment written in the table's current schema version has its columns' current names and
    // types: read by name, it gives what the schema map would, and DuckDB reads it without the map's
    // per-file schema binding (a point read 5-7 ms → 5 ms, a 1M-row load ~30% less CPU; decision 0027).
    const current = (s: Segment): boolean => s.schema_version === table.schemaVersion;
    const byId = segments.filter((s) => s.field_ids === true && !current(s)).map((s) => join(dir, s.path));
    if (byId.length > 0) parts.push(`SELECT * FROM ${fieldIdRead(table, byId)}`);
    const legacy = new Map<number, string[]>();
    for (const s of segments) {
      if (s.field_ids === true && !current(s)) continue;
      const list = legacy.get(s.schema_version) ?? [];
      list.push(join(dir, s.path));
      legacy.set(s.schema_version, list);
    }
    for (const [version, files] of legacy) parts.push(this.byNameSql(table, version, files));
    return parts.length === 1 ? `(${parts[0]})` : `(${parts.map((p) => `(${p})`).join(' UNION ALL ')})`;
  }

  /** Segments without field ids, written under `version`: their columns mapped by name in that version. */
  private byNameSql(table: TableDef, version: number, files: readonly string[]): string {
    const from = version === table.schemaVersion || this.schemas === null ? table.columns : columnsForVersion(this.schemas, table, version);
    return `SELECT ${columnProjectionSql(from, table.columns)} FROM ${readParquetSql(files)}`;
  }

  /** The engine that reads and writes segment files (CHECK and REPAIR read through it too). */
  get fileEngine(): DuckEngine {
    return this.duck;
  }

  /** Every `_seq` the partition's listed segments hold (REPAIR finds the versions it lost with it). */
  async segmentSeqs(table: TableDef, partition: string): Promise<Set<bigint>> {
    return this.pinned(async () => {
      await this.fetchSegments(table, partition);
      const files = this.files(table, partition);
      if (files.length === 0) return new Set<bigint>();
      const rows = await this.duck.withConnection(async (conn) =>
        (await conn.run(`SELECT "_seq" FROM ${readParquetSql(files)}`)).getRows());
      return new Set(rows.map((r) => BigInt(r[0] as bigint)));
    });
  }

  /**
   * Runs `read` with the segment files pinned: every file a manifest lists once `read` starts stays on
   * disk until it ends (a compaction replacing them meanwhile deletes them afterwards).
   */
  async pinned<T>(read: () => Promise<T>): Promise<T> {
    const epoch = this.pinEpoch;
    this.pins.set(epoch, (this.pins.get(epoch) ?? 0) + 1);
    try {
      return await read();
    } finally {
      const left = this.pins.get(epoch)! - 1;
      if (left === 0) this.pins.delete(epoch);
      else this.pins.set(epoch, left);
      this.removeRetired();
    }
  }

  /**
   * Segment files a committed manifest no longer lists (a compaction replaced them): deleted now
   * when no read is in flight, else when the reads that started before the commit have ended.
   */
  retireSegmentFiles(table: TableDef, partition: string, names: readonly string[]): void {
    this.retired.push({ epoch: this.pinEpoch++, table, partition, names });
    this.removeRetired();
  }

  private removeRetired(): void {
    let oldestRead = Infinity;
    for (const epoch of this.pins.keys()) if (epoch < oldestRead) oldestRead = epoch;
    while (this.retired.length > 0 && this.retired[0]!.epoch < oldestRead) {
      const { table, partition, names } = this.retired.shift()!;
      // A name the partition's manifest lists again (STORAGE REPAIR TABLE re-lists every file it
      // finds) is kept; an unreadable manifest keeps them all (orphans are removed at the next start).
      let listed: Set<string>;
      try {
        listed = new Set(this.manifest(table, partition).segments.map((s) => s.path));
      } catch {
        continue;
      }
      this.removeSegmentFiles(table, partition, names.filter((n) => !listed.has(n)));
    }
  }

  /** A dropped table or partition: its retired files went with its directory (and the names may be reused). */
  private forgetRetired(tableId: number, partition: string | null): void {
    for (let i = this.retired.length - 1; i >= 0; i--) {
      const r = this.retired[i]!;
      if (r.table.id === tableId && (partition === null || r.partition === partition)) this.retired.splice(i, 1);
    }
  }

  private forgetVerifiedUnder(dir: string): void {
    for (const path of this.verified.keys()) if (path.startsWith(dir)) this.verified.delete(path);
  }

  /** Whether a segment file carries Parquet field ids (REPAIR re-lists unlisted files with it). */
  async hasFieldIds(path: string): Promise<boolean> {
    return this.duck.withConnection(async (conn) => {
      const rows = await (await conn.run(`SELECT count(*) FROM parquet_schema(${sqlString(path)}) WHERE field_id IS NOT NULL`)).getRows();
      return Number(rows[0]![0] as bigint) > 0;
    });
  }

  /** Column statistics of a segment file, for the given columns (REPAIR rebuilds entries with it). */
  async segmentColumnStats(path: string, columns: readonly SourceColumn[]): Promise<Record<string, ColumnStats>> {
    return this.duck.withConnection((conn) => columnStats(conn, `read_parquet(${sqlString(path)})`, columns));
  }

  /** The partition's (local) directory. User ids are re-validated here: they become path segments. */
  dir(table: TableDef, partition: string): string {
    if (partition !== '') assert(isPartitionDirName(partition), `unsafe partition id ${partition}`);
    return this.locations.partition(table, partition).dir;
  }

  /** True when the table's segments live in a remote (S3) storage. */
  isRemote(table: TableDef): boolean {
    return this.locations.table(table).remote !== null;
  }

  /**
   * The partition's manifest (cached). Throws TableUnavailableError when the partition is marked
   * damaged, or when the manifest fails validation or a segment it lists is missing or has another
   * size (both checked once, when the manifest is first read: a stat per segment).
   */
  manifest(table: TableDef, partition: string): Manifest {
    const key = partitionId(table.id, partition);
    let m = this.manifests.get(key);
    if (m !== undefined) return m;
    const damage = this.damaged.get(key);
    if (damage !== undefined) throw this.unavailableError(table, damage);
    const dir = this.dir(table, partition);
    try {
      m = readManifest(dir, qualifiedName(table), partition === '' ? null : partition);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      throw this.markUnavailable(table, partition, MANIFEST_FILE, error.reason);
    }
    if (m.table_id !== undefined && m.table_id !== table.id) m = emptyManifest(qualifiedName(table), partition || null);
    const remote = this.isRemote(table);
    for (const s of m.segments) {
      const path = join(dir, s.path);
      // A remote partition's local files are a cache: a missing one is downloaded when it is read.
      if (remote && !existsSync(path)) continue;
      if (!existsSync(path)) throw this.markUnavailable(table, partition, s.path, 'listed in the manifest but the file does not exist');
      const size = statSync(path).size;
      if (size !== s.size_bytes) throw this.markUnavailable(table, partition, s.path, `size ${size} bytes, the manifest says ${s.size_bytes} (truncated or overwritten)`);
    }
    this.manifests.set(key, m);
    return m;
  }

  // Damage -----------------------------------------------------------------------------------

  /** Records a partition as unavailable and returns the error its reads get. */
  markUnavailable(table: TableDef, partition: string, fileName: string, reason: string): TableUnavailableError {
    const key = partitionId(table.id, partition);
    const damage: PartitionDamage = {
      tableId: table.id, partition, file: this.displayPath(join(this.dir(table, partition), fileName)), reason, since: Date.now(),
    };
    // The first cause is kept: it is the one an operator needs (later ones are often consequences).
    if (!this.damaged.has(key)) {
      this.damaged.set(key, damage);
      this.warn('table partition unavailable: damaged cold-tier file (STORAGE REPAIR TABLE)', { table: qualifiedName(table), partition, file: damage.file, reason });
    }
    this.manifests.delete(key);
    return this.unavailableError(table, this.damaged.get(key)!);
  }

  /** After a repair: the partition is served again from its (new) manifest. */
  clearUnavailable(table: TableDef, partition: string): void {
    const key = partitionId(table.id, partition);
    this.damaged.delete(key);
    this.manifests.delete(key);
  }

  isUnavailable(table: TableDef, partition: string): boolean {
    return this.damaged.has(partitionId(table.id, partition));
  }

  /** The damaged partitions of a table (empty when it is fully available). */
  unavailable(table: TableDef): PartitionDamage[] {
    return [...this.damaged.values()].filter((d) => d.tableId === table.id);
  }

  /** A file as operators see it: relative to the data directory when inside it, else absolute. */
  private displayPath(path: string): string {
    const rel = relative(this.dataDir, path);
    return rel === '..' || rel.startsWith(`..${sep}`) ? path : rel;
  }

  private unavailableError(table: TableDef, damage: PartitionDamage): TableUnavailableError {
    return new TableUnavailableError(qualifiedName(table), damage.file, damage.reason);
  }

  /**
   * Verifies the checksums of segments this process has not verified yet, or that changed on disk
   * since (a stat per segment), so bytes overwritten in a page that still decodes are caught before
   * their values are served.
   */
  async verifyChecksums(table: TableDef, partition: string): Promise<void> {
    await this.fetchSegments(table, partition);
    const m = this.manifest(table, partition);
    const dir = this.dir(table, partition);
    for (const s of m.segments) {
      if (s.sha256 === undefined) continue;
      const path = join(dir, s.path);
      let identity: string;
      let sha: string;
      try {
        // Taken before the hash: a write while it runs moves the ctime, so the next read hashes again.
        identity = fileIdentity(path);
        if (this.verified.get(path) === `${s.sha256}\0${identity}`) continue;
        sha = await fileSha256(path);
      } catch (error) {
        throw this.markUnavailable(table, partition, s.path, `cannot be read: ${(error as Error).message}`);
      }
      if (sha !== s.sha256) {
        this.verified.delete(path);
        throw this.markUnavailable(table, partition, s.path, 'SHA-256 does not match the manifest (bytes overwritten)');
      }
      this.verified.set(path, `${sha}\0${identity}`);
    }
  }

  /**
   * Remote partitions: makes every listed segment present in the local cache (downloaded to a temp
   * name, checked against the manifest's size and SHA-256, renamed). An unreachable storage throws
   * StorageUnreachableError (503, nothing marked damaged: it is not the data's fault); an object that
   * does not match the manifest marks the partition unavailable naming it. Local partitions: nothing.
   */
  async fetchSegments(table: TableDef, partition: string): Promise<void> {
    const loc = this.locations.partition(table, partition);
    if (loc.remote === null) return;
    const { store, prefix } = loc.remote;
    const missing: Segment[] = [];
    for (const s of this.manifest(table, partition).segments) {
      const path = join(loc.dir, s.path);
      if (existsSync(path)) this.cache.touch(path);
      else missing.push(s);
    }
    const fetchOne = async (s: Segment): Promise<void> => {
      const path = join(loc.dir, s.path);
      await this.download(store, `${prefix}/${s.path}`, path, async (temp) => {
        const size = statSync(temp).size;
        if (size !== s.size_bytes) throw this.markUnavailable(table, partition, s.path, `remote object is ${size} bytes, the manifest says ${s.size_bytes}`);
        const sha = await fileSha256(temp);
        if (s.sha256 !== undefined && sha !== s.sha256) throw this.markUnavailable(table, partition, s.path, 'remote object\'s SHA-256 does not match the manifest');
      });
      if (s.sha256 !== undefined) this.verified.set(path, `${s.sha256}\0${fileIdentity(path)}`);
    };
    for (let i = 0; i < missing.length; i += DOWNLOADS_PARALLEL) {
      await Promise.all(missing.slice(i, i + DOWNLOADS_PARALLEL).map(fetchOne));
    }
  }

  /**
   * STORAGE REPAIR TABLE on a remote partition: downloads every segment object under its prefix
   * that is not present locally, listed or not (the manifest may be the damaged part), so the repair
   * sees what the bucket holds. Returns the names downloaded.
   */
  async fetchAllRemote(table: TableDef, partition: string): Promise<string[]> {
    const loc = this.locations.partition(table, partition);
    if (loc.remote === null) return [];
    const { store, prefix } = loc.remote;
    const names = (await store.list(`${prefix}/`)).map((o) => o.key.slice(prefix.length + 1)).filter((n) => /^batch-\d+\.parquet$/.test(n));
    const fetched: string[] = [];
    for (const name of names) {
      const path = join(loc.dir, name);
      if (existsSync(path)) continue;
      await this.download(store, `${prefix}/${name}`, path);
      fetched.push(name);
    }
    return fetched;
  }

  /**
   * One object into the partition directory and the segment cache: downloaded to a temp name, checked
   * (`check` throws to refuse it), then renamed, so a failed or refused download leaves nothing.
   */
  private async download(store: ObjectStore, key: string, path: string, check?: (temp: string) => Promise<void>): Promise<void> {
    const temp = `${path}.download-${++this.tempCounter}`;
    mkdirSync(dirname(path), { recursive: true });
    try {
      await store.getFile(key, temp);
      await check?.(temp);
      renameSync(temp, path);
    } finally {
      rmSync(temp, { force: true });
    }
    this.cache.added(path, statSync(path).size);
  }

  /**
   * A read of the partition's segments failed: finds the damaged segment (a full check of each) and
   * marks the partition unavailable naming it. When every segment checks out the failure was not
   * the files' (memory, a cancelled query): the original error is returned unchanged.
   */
  async readFailed(table: TableDef, partition: string, error: unknown): Promise<unknown> {
    if (error instanceof TableUnavailableError || error instanceof StorageUnreachableError) return error;
    const key = partitionId(table.id, partition);
    const m = this.manifests.get(key);
    if (m === undefined) return error;
    const dir = this.dir(table, partition);
    for (const s of m.segments) {
      const check = await checkSegment(this.duck, join(dir, s.path), s);
      if (check.status !== 'ok') return this.markUnavailable(table, partition, s.path, check.detail);
    }
    return error;
  }

  /** Absolute paths of the segments that can hold a row (pruned by primary-key range when `pks` are given). */
  files(table: TableDef, partition: string, pks?: readonly StoredValue[]): string[] {
    const m = this.manifest(table, partition);
    const dir = this.dir(table, partition);
    const pkCol = table.columns[primaryKeyIndex(table)]!;
    return m.segments.filter((s) => pks === undefined || mayHoldAny(s, pkCol, pks)).map((s) => join(dir, s.path));
  }

  /**
   * Whether a listed segment can hold version `seq` of key `pk` (its `_seq` and key ranges include
   * them). A point read answered from the index's copy of a flushed row asks this instead of reading
   * the segment: a row lost with a quarantined segment stays gone (as when the segment was read), and
   * the manifest is read, so a damaged partition stays unavailable.
   */
  mayHoldVersion(table: TableDef, partition: string, pk: StoredValue, seq: bigint): boolean {
    const pkCol = table.columns[primaryKeyIndex(table)]!;
    return this.manifest(table, partition).segments.some((s) =>
      BigInt(s.min_seq) <= seq && seq <= BigInt(s.max_seq) && mayHoldAny(s, pkCol, [pk]));
  }

  /** True when the segments' primary-key ranges are pairwise disjoint (so no key is in two of them). */
  disjoint(table: TableDef, partition: string): boolean {
    const segments = this.manifest(table, partition).segments;
    if (segments.length <= 1) return true;
    const pk = table.columns[primaryKeyIndex(table)]!;
    const ranges: [StoredValue, StoredValue][] = [];
    for (const s of segments) {
      const stats = s.columns[pk.name];
      const min = stats?.min == null ? undefined : keyBound(pk, stats.min);
      const max = stats?.max == null ? undefined : keyBound(pk, stats.max);
      if (min === undefined || max === undefined) return false;
      ranges.push([min, max]);
    }
    const cmp = keyComparator(pk);
    if (cmp === null) return false;
    ranges.sort((a, b) => cmp(a[0], b[0]));
    for (let i = 1; i < ranges.length; i++) if (cmp(ranges[i]![0], ranges[i - 1]![1]) <= 0) return false;
    return true;
  }

  /** Atomically replaces the manifest; the new one is what every later read sees. */
  commitManifest(table: TableDef, partition: string, manifest: Manifest): void {
    const written = { ...manifest, table_id: table.id, updated_at: Date.now() };
    const loc = this.locations.partition(table, partition);
    writeManifest(loc.dir, written);
    this.manifests.set(partitionId(table.id, partition), { ...manifest, table_id: table.id });
    // The local manifest is the commit point; the copy in the bucket is for other readers of it and
    // catches up at the partition's next commit if this upload fails.
    if (loc.remote !== null) {
      const { store, prefix, storageId } = loc.remote;
      this.inBackground(store.putBytes(`${prefix}/${MANIFEST_FILE}`, Buffer.from(JSON.stringify(written, null, 2))),
        'copy of a manifest to the remote storage failed (retried at the next flush)', { table: qualifiedName(table), partition, storage: storageId });
    }
  }

  private inBackground(work: Promise<void>, message: string, fields: Record<string, unknown>): void {
    const tracked = work.catch((error: unknown) => this.warn(message, { ...fields, error: (error as Error).message }))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  /** Resolves when the background remote work started so far has finished (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  /**
   * Writes the versions a flush read as `batch-<n>.parquet.tmp`, fsynced; returns the segment entry
   * and the temp path (null when there is none). `rows` may hold a key more than once (older
   * versions of it too): only the newest version of each key (highest `_seq`) is written, sorted by
   * key. `columns`: the table's, then `_seq` and `_deleted`. The caller renames the file with
   * `publishSegment` and then commits the manifest.
   */
  async writeSegment(
    table: TableDef, partition: string, columns: readonly SourceColumn[], rows: FlushRows, batch: number,
  ): Promise<{ segment: Segment; tmpPath: string } | null> {
    if (rows.count === 0) return null;
    assert(columns.at(-2)?.name === '_seq' && columns.at(-1)?.name === '_deleted', 'segment columns end with _seq, _deleted');
    // Newest version per key in key order when FlushRows can (integer keys), else DuckDB does both.
    const order = rows.order();
    const pk = sqlIdent(table.columns[primaryKeyIndex(table)]!.name);
    const copy = (conn: DuckDBConnection, relation: string): Promise<{ segment: Segment; tmpPath: string } | null> => order !== null
      ? this.copyToSegment(conn, table, partition, columns, `SELECT * FROM ${relation}`, batch, true)
      : this.copyToSegment(conn, table, partition, columns,
        `SELECT * FROM ${relation} QUALIFY row_number() OVER (PARTITION BY ${pk} ORDER BY "_seq" DESC) = 1`, batch, false);
    return this.duck.withConnection(async (conn) => {
      if (chunkWritable(columns)) return withChunkSource(conn, flushChunks(table, columns, rows, order), (relation) => copy(conn, relation));
      // UUID and DECIMAL cells are converted by the appender, a value at a time, into a temp table.
      const temp = `f_${++this.tempCounter}`;
      await conn.run(`CREATE TEMP TABLE ${temp} (${columnList(columns)})`);
      try {
        const appender = await RowAppender.open(conn, temp, 'temp', columns);
        try {
          const writer = { encoded: () => false, values: (values: readonly StoredValue[], seq: bigint, deleted: boolean) => appender.version(values, seq, deleted) };
          if (order === null) for (let i = 0; i < rows.count; i++) rows.write(i, writer);
          else for (let j = 0; j < order.length; j++) rows.write(order[j]!, writer);
          appender.flush();
        } finally {
          appender.close();
        }
        return await copy(conn, `temp.main.${temp}`);
      } finally {
        await conn.run(`DROP TABLE IF EXISTS temp.main.${temp}`).catch(() => undefined);
      }
    });
  }

  /** Like writeSegment, from a query over existing segments (compaction); null when it yields no row. */
  async writeSegmentFromQuery(
    table: TableDef, partition: string, columns: readonly SourceColumn[], select: string, batch: number,
  ): Promise<{ segment: Segment; tmpPath: string } | null> {
    return this.duck.withConnection((conn) => this.copyToSegment(conn, table, partition, columns, select, batch, false));
  }

  /**
   * COPY of `select` to the segment file. `inKeyOrder`: its rows are already in key order (a table
   * appended in that order, read back in insertion order, which DuckDB keeps by default); else the
   * COPY sorts them.
   */
  private async copyToSegment(
    conn: DuckDBConnection, table: TableDef, partition: string, columns: readonly SourceColumn[], select: string, batch: number, inKeyOrder: boolean,
  ): Promise<{ segment: Segment; tmpPath: string } | null> {
    const dir = this.dir(table, partition);
    mkdirSync(dir, { recursive: true });
    const name = `batch-${batch}.parquet`;
    const tmpPath = join(dir, `${name}.tmp`);
    const pk = table.columns[primaryKeyIndex(table)]!.name;
    let copied: Awaited<ReturnType<DuckDBConnection['run']>>;
    try {
      copied = await conn.run(
        `COPY (${inKeyOrder ? select : `SELECT * FROM (${select}) ORDER BY ${sqlIdent(pk)}`}) TO ${sqlString(tmpPath)} `
        + `(FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE ${PARQUET_ROW_GROUP_ROWS}, FIELD_IDS ${fieldIds(table, columns)})`,
      );
    } catch (error) {
      // A COPY that failed half-way (ENOSPC) leaves a partial temp file: give its space back now,
      // not at the next start-up's orphan sweep.
      rmSync(tmpPath, { force: true });
      throw error;
    }
    const rowCount = copied.rowsChanged;
    if (rowCount === 0) {
      rmSync(tmpPath, { force: true });
      return null;
    }
    const stats = await columnStats(conn, `read_parquet(${sqlString(tmpPath)})`, columns);
    fsyncPath(tmpPath);
    const sha256 = await fileSha256(tmpPath);
    const segment: Segment = {
      path: name,
      row_count: rowCount,
      size_bytes: statSync(tmpPath).size,
      min_seq: String(stats._seq!.min ?? '0'),
      max_seq: String(stats._seq!.max ?? '0'),
      schema_version: table.schemaVersion,
      created_at: Date.now(),
      columns: stats,
      sha256,
      field_ids: true,
    };
    return { segment, tmpPath };
  }

  /**
   * Renames the written segment into place and, for a remote storage, uploads it: only once this
   * resolves may the manifest list it. A failed upload removes the local file and rejects (the rows
   * stay hot; nothing is listed). `onProgress` sees multipart upload progress (crash tests).
   */
  async publishSegment(table: TableDef, partition: string, written: { segment: Segment; tmpPath: string }, onProgress?: () => void): Promise<void> {
    const { segment, tmpPath } = written;
    assert(tmpPath.endsWith('.parquet.tmp'), 'segment temp path');
    const path = tmpPath.slice(0, -'.tmp'.length);
    renameSync(tmpPath, path);
    // Written and hashed by this process: no need to hash it again before its first read (its
    // identity is taken once it has its name: the rename moves the ctime).
    if (segment.sha256 !== undefined) this.verified.set(path, `${segment.sha256}\0${fileIdentity(path)}`);
    const loc = this.locations.partition(table, partition);
    fsyncPath(loc.dir);
    if (loc.remote === null) return;
    const name = path.slice(loc.dir.length + 1);
    try {
      await loc.remote.store.putFile(`${loc.remote.prefix}/${name}`, path, onProgress);
    } catch (error) {
      rmSync(path, { force: true });
      throw error;
    }
    this.cache.added(path, statSync(path).size);
  }

  /** Whether a segment holds any version of one of `pks`. */
  async holdsKeys(table: TableDef, partition: string, pks: readonly StoredValue[]): Promise<boolean> {
    if (pks.length === 0) return false;
    const rows = await this.readRows(table, partition, () => {
      const relation = this.relation(table, partition, pks);
      return relation === null ? null : `SELECT 1 FROM ${relation} WHERE ${keyIn(table, pks)} LIMIT 1`;
    });
    return rows.length > 0;
  }

  /** Every cold version of the partition except those of `pks`, as a SELECT (null: no segment). */
  selectWithoutKeys(table: TableDef, partition: string, pks: readonly StoredValue[]): string | null {
    const relation = this.relation(table, partition);
    return relation === null ? null : `SELECT * FROM ${relation} WHERE NOT (${keyIn(table, pks)})`;
  }

  /** Newest cold version of each key among `pks`, read from the segments that can hold them. */
  async readVersions(table: TableDef, partition: string, pks: readonly StoredValue[], decode: ColdRowDecoder): Promise<RowVersion[]> {
    if (pks.length === 0) return [];
    const rows = await this.readRows(table, partition, () => {
      const relation = this.relation(table, partition, pks);
      return relation === null ? null : `SELECT * FROM ${relation} WHERE ${keyIn(table, pks)} ORDER BY _seq`;
    });
    return rows.map((r) => decode(table, r));
  }

  /**
   * Cold versions of a partition whose `_seq` lies in (`after`, `upTo`] (resume), optionally only
   * for some keys; in no particular order.
   */
  async readSeqRange(table: TableDef, partition: string, after: bigint | null, upTo: bigint, decode: ColdRowDecoder, keys?: readonly StoredValue[], limit?: number): Promise<RowVersion[]> {
    const lower = after === null ? '' : `"_seq" > ${after} AND `;
    const keyFilter = keys === undefined ? '' : ` AND ${keyIn(table, keys)}`;
    const limitClause = limit === undefined ? '' : ` LIMIT ${Math.floor(limit)}`;
    const rows = await this.readRows(table, partition, () => {
      const relation = this.relation(table, partition, keys);
      return relation === null ? null : `SELECT * FROM ${relation} WHERE ${lower}"_seq" <= ${upTo}${keyFilter}${limitClause}`;
    });
    return rows.map((r) => decode(table, r));
  }

  /**
   * Runs a read over the partition's segments (`sql`: over the manifest as it is once the files are
   * pinned; null when no segment qualifies); a failure is checked for damaged files.
   */
  private async readRows(table: TableDef, partition: string, sql: () => string | null): Promise<unknown[][]> {
    return this.pinned(async () => {
      const text = sql();
      if (text === null) return [];
      if (pausesArmed) await pausepoint('cold:read');
      try {
        await this.verifyChecksums(table, partition);
        return await this.duck.withConnection(async (conn) => (await conn.run(text)).getRows());
      } catch (error) {
        throw await this.readFailed(table, partition, error);
      }
    });
  }

  /** Segment files in the partition's directory that its manifest does not list (none for no directory). */
  unlistedSegments(table: TableDef, partition: string): string[] {
    return this.filesOutsideManifest(table, partition).filter((file) => SEGMENT_NAME.test(file));
  }

  /** Deletes temp files and segments the manifest does not list (left by a crash mid-flush). */
  removeOrphans(table: TableDef, partition: string): string[] {
    const removed = this.filesOutsideManifest(table, partition).filter((file) => file.endsWith('.tmp') || SEGMENT_NAME.test(file));
    for (const file of removed) unlinkSync(join(this.dir(table, partition), file));
    return removed;
  }

  /** Names in the partition's directory that its manifest does not list (quarantine/ among them). */
  private filesOutsideManifest(table: TableDef, partition: string): string[] {
    const dir = this.dir(table, partition);
    if (!existsSync(dir)) return [];
    const listed = new Set(this.manifest(table, partition).segments.map((s) => s.path));
    return readdirSync(dir).filter((file) => !listed.has(file));
  }

  /**
   * Remote partitions: makes the bucket match the manifest. Objects under the partition's prefix that
   * the manifest does not list are deleted (a crash between an upload and the manifest commit);
   * listed segments missing from the bucket but present locally are uploaded again, with the manifest
   * copy (a data directory restored from a backup into a bucket that lost them). The caller holds the
   * partition's flush lock, so no upload is waiting for its commit.
   */
  async reconcileRemote(table: TableDef, partition: string): Promise<{ removed: string[]; uploaded: string[] }> {
    const loc = this.locations.partition(table, partition);
    if (loc.remote === null) return { removed: [], uploaded: [] };
    const { store, prefix } = loc.remote;
    const manifest = this.manifest(table, partition);
    const listed = new Set(manifest.segments.map((s) => `${prefix}/${s.path}`));
    const present = new Set((await store.list(`${prefix}/`)).map((o) => o.key));
    const removed = [...present].filter((key) => /^batch-\d+\.parquet$/.test(key.slice(prefix.length + 1)) && !listed.has(key));
    await store.delete(removed);
    const uploaded: string[] = [];
    for (const s of manifest.segments) {
      const path = join(loc.dir, s.path);
      if (present.has(`${prefix}/${s.path}`) || !existsSync(path) || statSync(path).size !== s.size_bytes) continue;
      await store.putFile(`${prefix}/${s.path}`, path);
      uploaded.push(s.path);
    }
    if (uploaded.length > 0 || (manifest.segments.length > 0 && !present.has(`${prefix}/${MANIFEST_FILE}`))) {
      await store.putBytes(`${prefix}/${MANIFEST_FILE}`, Buffer.from(JSON.stringify({ ...manifest, table_id: table.id }, null, 2)));
    }
    return { removed, uploaded };
  }

  /** Partitions of a table that have a directory (USER tables: one per user that was flushed). */
  partitions(table: TableDef): string[] {
    const t = this.locations.table(table);
    if (!existsSync(t.dir)) return [];
    if (t.user === null) return [''];
    const out: string[] = [];
    let entries;
    try {
      entries = readdirSync(t.dir, { withFileTypes: true });
    } catch {
      // Unreadable: the partitions the hot tier knows were flushed are still checked by the callers.
      return [];
    }
    for (const d of entries) {
      if (!d.isDirectory()) continue;
      const id = userIdOfLeaf(t.user, d.name);
      if (id !== null && isPartitionDirName(id)) out.push(id);
    }
    return out;
  }

  /** Deletes segment files the manifest no longer lists (and their remote objects, in the background). */
  removeSegmentFiles(table: TableDef, partition: string, names: readonly string[]): void {
    const loc = this.locations.partition(table, partition);
    for (const name of names) {
      rmSync(join(loc.dir, name), { force: true });
      this.cache.removed(join(loc.dir, name));
      this.verified.delete(join(loc.dir, name));
    }
    const remoteNames = names.filter((n) => !n.endsWith('.tmp'));
    if (loc.remote !== null && remoteNames.length > 0) {
      this.inBackground(loc.remote.store.delete(remoteNames.map((n) => `${loc.remote!.prefix}/${n}`)),
        'delete of replaced remote segments failed (removed at the next start)', { table: qualifiedName(table), partition, files: remoteNames });
    }
  }

  /** Deletes every remote object under a prefix (a dropped table or a purged partition), in the background. */
  private removeRemotePrefix(table: TableDef, loc: { store: ObjectStore; storageId: string }, prefix: string): void {
    this.inBackground((async () => {
      const keys = (await loc.store.list(`${prefix}/`)).map((o) => o.key);
      await loc.store.delete(keys);
    })(), 'delete of a dropped table\'s remote objects failed (delete them by hand)', { table: qualifiedName(table), storage: loc.storageId, prefix });
  }

  /**
   * The purge of a dropped account's partition: its manifest goes first, so that a crash part-way
   * leaves files no manifest lists (orphans, removed at start-up or by the purge run again), never a
   * manifest naming missing files. Returns what it held. Idempotent.
   */
  removePartition(table: TableDef, partition: string): { segments: number; rows: number; bytes: number } {
    assert(partition !== '', 'a SHARED table has one partition; removing it is DROP TABLE');
    this.forgetRetired(table.id, partition);
    const dir = this.dir(table, partition);
    let segments: readonly Segment[] = [];
    try {
      if (existsSync(dir)) segments = this.manifest(table, partition).segments;
    } catch (error) {
      // A damaged partition is removed all the same; what it held is not known.
      if (!(error instanceof TableUnavailableError)) throw error;
    }
    rmSync(join(dir, MANIFEST_FILE), { force: true });
    if (existsSync(dir)) fsyncPath(dir);
    this.manifests.delete(partitionId(table.id, partition));
    this.damaged.delete(partitionId(table.id, partition));
    rmSync(dir, { recursive: true, force: true });
    this.cache.removedUnder(dir + sep);
    this.forgetVerifiedUnder(dir + sep);
    const remote = this.locations.partition(table, partition).remote;
    if (remote !== null) this.removeRemotePrefix(table, remote, remote.prefix);
    return {
      segments: segments.length,
      rows: segments.reduce((n, s) => n + s.row_count, 0),
      bytes: segments.reduce((n, s) => n + s.size_bytes, 0),
    };
  }

  /** DROP TABLE: the table's whole directory. */
  removeTable(table: TableDef): void {
    this.forgetRetired(table.id, null);
    for (const key of [...this.manifests.keys()]) if (key.startsWith(tablePartitionPrefix(table.id))) this.manifests.delete(key);
    for (const key of [...this.damaged.keys()]) if (key.startsWith(tablePartitionPrefix(table.id))) this.damaged.delete(key);
    const t = this.locations.table(table);
    rmSync(t.dir, { recursive: true, force: true });
    this.cache.removedUnder(t.dir + sep);
    this.forgetVerifiedUnder(t.dir + sep);
    if (t.remote !== null) this.removeRemotePrefix(table, { store: t.remote, storageId: t.storageId }, t.remotePrefix!);
  }
}

/** COPY's FIELD_IDS: every column's stable id, and the system columns' fixed ones. */
/**
 * A file's identity for "unchanged since verified": inode, size, and modification and change times
 * in nanoseconds. Any write to the file, in place or by replacing it, changes one of them (the
 * ctime cannot be set back from user space).
 */
function fileIdentity(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function fieldIds(table: TableDef, columns: readonly SourceColumn[]): string {
  const ids = columns.map((c) => {
    const id = c.name === '_seq' ? SEQ_FIELD_ID : c.name === '_deleted' ? DELETED_FIELD_ID : table.columns.find((t) => t.name === c.name)?.id;
    assert(id !== undefined, `column ${c.name} has an id`);
    return `${sqlIdent(c.name)}: ${id}`;
  });
  return `{${ids.join(', ')}}`;
}

/** read_parquet over segments with field ids, as `table`'s columns (then `_seq`, `_deleted`). */
function fieldIdRead(table: TableDef, files: readonly string[]): string {
  const entry = (id: number, name: string, type: string, missing: string): string =>
    `${id}: {name: ${sqlString(name)}, type: ${sqlString(type)}, default_value: ${missing}}`;
  // One struct type for every entry: defaults travel as text, cast back to the column type by DuckDB.
  const text = (c: ColumnDef): string => (c.missing === undefined || c.missing === null ? 'NULL::VARCHAR' : `CAST(CAST(${missingLiteral(c)} AS ${duckType(c)}) AS VARCHAR)`);
  const entries = table.columns.map((c) => entry(c.id, c.name, duckType(c), text(c)));
  entries.push(entry(SEQ_FIELD_ID, '_seq', 'BIGINT', 'NULL::VARCHAR'), entry(DELETED_FIELD_ID, '_deleted', 'BOOLEAN', 'NULL::VARCHAR'));
  return `read_parquet([${files.map(sqlString).join(', ')}], schema = map {${entries.join(', ')}})`;
}

/**
 * A SELECT list turning a relation with the columns `from` (then `_seq`, `_deleted`) into one with
 * the columns `to` of the same table, by column id: renamed and widened columns are cast, added
 * ones read their missing value, dropped ones are left out.
 */
export function columnProjectionSql(from: readonly ColumnDef[], to: readonly ColumnDef[]): string {
  const select = to.map((c) => {
    const source = from.find((f) => f.id === c.id);
    if (source === undefined) return `CAST(${missingLiteral(c)} AS ${duckType(c)}) AS ${sqlIdent(c.name)}`;
    const same = source.name === c.name && duckType(source) === duckType(c);
    return same ? sqlIdent(c.name) : `CAST(${sqlIdent(source.name)} AS ${duckType(c)}) AS ${sqlIdent(c.name)}`;
  });
  return [...select, '"_seq"', '"_deleted"'].join(', ');
}

/** What a row written before the column existed reads, as SQL (ColumnDef.missing, else NULL). */
function missingLiteral(c: ColumnDef): string {
  return c.missing === undefined || c.missing === null ? 'NULL' : sqlLiteral(c, c.missing);
}

export function isPartitionDirName(name: string): boolean {
  return ACCOUNT_ID_PATTERN.test(name) || (LEGACY_PARTITION_ID.test(name) && !name.includes('..'));
}

async function columnStats(conn: DuckDBConnection, relation: string, columns: readonly SourceColumn[]): Promise<Record<string, ColumnStats>> {
  const exprs = columns.flatMap((c) => [`min(${sqlIdent(c.name)})::VARCHAR`, `max(${sqlIdent(c.name)})::VARCHAR`]);
  const [row] = await (await conn.run(`SELECT ${exprs.join(', ')} FROM ${relation}`)).getRows();
  const out: Record<string, ColumnStats> = {};
  columns.forEach((c, i) => {
    out[c.name] = { min: (row![2 * i] as string | null) ?? null, max: (row![2 * i + 1] as string | null) ?? null };
  });
  return out;
}

/** A manifest min/max (DuckDB's text form) as a stored key value, or undefined when it does not parse. */
function keyBound(pk: ColumnDef, value: string | number | boolean): StoredValue | undefined {
  try {
    const v = coerce({ ...pk, nullable: true }, typeof value === 'boolean' ? String(value) : value);
    return v === null ? undefined : v;
  } catch {
    return undefined;
  }
}

/** Key order as DuckDB sorts the key type (numbers by value, text by UTF-8 bytes); null when not known. */
function keyComparator(pk: ColumnDef): ((a: StoredValue, b: StoredValue) => number) | null {
  if (INTEGER_TYPES.has(pk.type) || pk.type === 'Timestamp' || pk.type === 'Date') {
    return (a, b) => { const x = BigInt(a as number | bigint); const y = BigInt(b as number | bigint); return x < y ? -1 : x > y ? 1 : 0; };
  }
  if (pk.type === 'Text' || pk.type === 'Uuid') return (a, b) => Buffer.compare(Buffer.from(String(a), 'utf8'), Buffer.from(String(b), 'utf8'));
  return null;
}

/**
 * Whether a segment's primary-key range can hold one of the keys. The manifest's min/max are DuckDB's
 * text forms: integers, times and dates compare as numbers, text and UUIDs by UTF-8 bytes (DuckDB's
 * order). Other key types are never pruned.
 */
function mayHoldAny(segment: Segment, pk: ColumnDef, pks: readonly StoredValue[]): boolean {
  const stats = segment.columns[pk.name];
  if (stats?.min == null || stats.max == null) return true;
  const cmp = keyComparator(pk);
  const min = keyBound(pk, stats.min);
  const max = keyBound(pk, stats.max);
  if (cmp === null || min === undefined || max === undefined) return true;
  return pks.some((v) => cmp(v, min) >= 0 && cmp(v, max) <= 0);
}

/** `pk IN (...)` for the given primary-key values, as SQL. */
function keyIn(table: TableDef, keys: readonly StoredValue[]): string {
  const pk = table.columns[primaryKeyIndex(table)]!;
  return `${sqlIdent(pk.name)} IN (${keys.map((k) => sqlLiteral(pk, k)).join(', ')})`;
}

export function sqlLiteral(column: ColumnDef, value: StoredValue): string {
  switch (column.type) {
    case 'Timestamp': return `make_timestamp(${String(value)}::BIGINT)`;
    case 'Date': return `(DATE '1970-01-01' + ${String(value)}::INTEGER)`;
    case 'Time': return `(TIME '00:00:00' + to_microseconds(${String(value)}::BIGINT))`;
    case 'Decimal': return `${sqlString(formatDecimal(value as bigint, column.scale ?? 0))}::DECIMAL(${column.precision ?? 18},${column.scale ?? 0})`;
    default: break;
  }
  if (typeof value === 'bigint' || typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (value instanceof Uint8Array) return `from_hex(${sqlString(Buffer.from(value).toString('hex'))})`;
  assert(typeof value === 'string', `primary key literal of type ${column.type}`);
  return sqlString(value);
}

/**
 * The flush's versions as a chunk source: in `order` (indexes into `rows`), or in the order they were
 * read. The next chunk is staged as soon as one is handed over, while DuckDB encodes that one on its
 * own thread: DuckDB waits for the JS thread in each `fill`, and the JS thread had nothing to do while
 * DuckDB worked (a profile of a 1M-row flush: ~320 ms staging, ~330 ms idle, one after the other).
 */
function flushChunks(table: TableDef, columns: readonly SourceColumn[], rows: FlushRows, order: Uint32Array | null): ChunkSource {
  const writer = new ChunkWriter(columns, table.schemaVersion);
  const n = order === null ? rows.count : order.length;
  let next = 0;
  /** The writer holds the next chunk's rows (staged ahead), not yet handed over. */
  let staged = false;
  const stage = (): void => {
    const end = Math.min(n, next + ChunkWriter.ROWS);
    if (order === null) for (; next < end; next++) rows.write(next, writer);
    else for (; next < end; next++) rows.write(order[next]!, writer);
    staged = true;
  };
  const stageAhead = (): void => {
    if (!staged && next < n) stage();
  };
  return {
    columns,
    fill: (chunk) => {
      if (!staged) stage();
      staged = false;
      writer.emit(chunk);
      // Runs after this call returns, while DuckDB works on the chunk (a fill arriving first waits for it).
      if (next < n) setImmediate(stageAhead);
    },
  };
}
