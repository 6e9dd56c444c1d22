/**
 * Composition root: opens storage, loads the catalog, makes sure root exists, wires executor and
 * HTTP server. The only module that knows every subsystem.
 */
import { Metrics } from './util/metrics.js';
import { registerGauges } from './metrics-gauges.js';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config/config.js';
import type { Logger } from './util/log.js';
import { SnowflakeGenerator } from './util/snowflake.js';
import { Mutex } from './util/mutex.js';
import { Catalog, damagedCatalogEntry } from './catalog/catalog.js';
import { bindPort, checkPort, openDataDir } from './startup.js';
import { walRecoveryDrops } from './storage/hot/wal-recovery.js';
import { ensureRoot } from './auth/root-account.js';
import { Committer, MAX_SEQ_KEY } from './storage/hot/committer.js';
import { TopicService } from './topics/topic-service.js';
import { topicRoutes } from './exec/topic-exec.js';
import { StorageHealth } from './storage/storage-health.js';
import { StartupError, StorageFullError } from './util/errors.js';
import { writeFileDurably } from './storage/cold/manifest.js';
import { DuckEngine } from './storage/duck/duck-engine.js';
import { HotMirror } from './storage/duck/hot-mirror.js';
import { fileEngineConfig, queryEngineConfig } from './engine-config.js';
import { MemoryGuard } from './storage/duck/memory-guard.js';
import { filesystemStorageDirs } from './storage/storages/storage-locations.js';
import { ColdStore } from './storage/cold/cold-store.js';
import { JobStore } from './jobs/job-store.js';
import { FlushService } from './jobs/flush-service.js';
import { UserPurgeService } from './jobs/user-purge.js';
import { AuditLog } from './auth/audit-log.js';
import { UserExportService } from './jobs/user-export.js';
import { SERVER_VERSION } from './http/build-info.js';
import { applyPendingRestore } from './storage/backup/restore.js';

const AUDIT_RETENTION_MS = 90 * 86_400_000;
import { StreamStore } from './storage/stream/stream-store.js';
import { STREAM_SWEEP_MS, evictStreamEvents } from './jobs/stream-eviction.js';
import { TOPIC_SWEEP_MS, sweepTopicRetention } from './jobs/topic-retention.js';
import { initParser, ParseCache } from './sql/parser.js';
import { PasswordHasher } from './auth/passwords.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { TokenService } from './auth/tokens.js';
import { Authenticator } from './auth/authenticator.js';
import { Executor } from './exec/executor.js';
import { RowSources, sourceColumns } from './exec/sources.js';
import type { Services } from './exec/context.js';
import { createHttpServer } from './http/server.js';
import { LiveServer } from './ws/live-server.js';

export interface RunningServer {
  readonly port: number;
  readonly services: Services;
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  // The data dir's lock and the port come first: a start that fails on either must not have
  // created anything (a root account whose generated password was printed by a dying process).
  await checkPort(config);
  const storage = new StorageHealth(config.dataDir, log);
  // A RESTORE DATABASE staged before the last stop is applied before anything reads the stores.
  const restored = await applyPendingRestore(config.dataDir, async () => (await openDataDir(config, undefined, { expectHeldDatabase: false })).close());
  if (restored !== null) log.warn('applied a staged restore', { created_at: restored.manifest.created_at, kv_records: restored.kv_records, cold_files: restored.cold_files, previous_data: restored.previous });
  const hot = await openDataDir(config, storage);
  const drops = walRecoveryDrops(hot.path);
  if (drops.length > 0) {
    log.error('WAL recovery dropped damaged records: commits in or after them are not in the hot store (a write cut short by a crash '
      + 'loses only rows that were never acknowledged; anything else means the WAL was damaged: restore from a backup to get them back)', {
      bytes_dropped: drops.reduce((n, d) => n + d.bytes, 0), drops: drops.slice(0, 5),
    });
  }
  const http = createHttpServer(config, log);
  const port = await bindPort(http.server, config).catch(async (error: unknown) => {
    await hot.close();
    throw error;
  });
  await initParser({
    statementsMax: config.statementsPerRequestMax, nestingDepthMax: config.sqlNestingDepthMax, tokensMax: config.sqlTokensMax,
    treeDepthMax: config.parseTreeDepthMax,
    subqueryDepthMax: config.subqueryDepthMax,
  });
  const catalog = await Catalog.load(hot);
  if (hot.damagedHistory.length > 0) log.error('damaged audit or job entries left out of the catalog', { keys: hot.damagedHistory.slice(0, 20), count: hot.damagedHistory.length });
  // Rows of older schema versions are read in the reader's schema, mapped by column id.
  hot.schemas = catalog;
  const seqs = new SnowflakeGenerator();
  const maxSeq = catalog.meta.get(MAX_SEQ_KEY);
  if (maxSeq !== undefined && (typeof maxSeq !== 'string' || !/^\d{1,20}$/.test(maxSeq))) throw damagedCatalogEntry(MAX_SEQ_KEY, 'not a _seq');
  if (typeof maxSeq === 'string') seqs.observe(BigInt(maxSeq));
  // User SQL runs on an engine with no file access; the cold tier's files are read by a second one.
  const duck = await DuckEngine.open(queryEngineConfig(config));
  const files = await DuckEngine.open(fileEngineConfig(config, filesystemStorageDirs(catalog.listStorages())));
  const memoryGuard = new MemoryGuard(duck.running, {
    rssBytesMax: config.memoryRssBytesMax, sampleIntervalMs: config.memorySampleIntervalMs, log,
  });
  const passwords = new PasswordHasher();
  await ensureRoot(catalog, passwords, seqs, config.rootPassword, log);
  const tokens = new TokenService(jwtSecret(config), config.accessTokenTtlSeconds, config.refreshTokenTtlSeconds);
  const committer = new Committer(hot, seqs);
  committer.currentSchemaVersion = (tableId) => catalog.tableById(tableId)?.schemaVersion;
  const topics = await TopicService.load(hot, (id) => catalog.tableById(id), (id) => catalog.account(id)?.userId,
    config.topicVisibilityTimeoutSecs * 1000);
  committer.publisher = topics;
  if (typeof maxSeq === 'string') committer.committedMaxSeq = BigInt(maxSeq);
  const cold = ColdStore.open(config.dataDir, files, (id) => catalog.storage(id), config.remoteCacheBytesMax, (message, fields) => log.warn(message, fields));
  cold.schemas = catalog;
  const mirror = new HotMirror(duck, files, hot, sourceColumns, cold, config.mirrorRowsMax, () => committer.committedMaxSeq);
  const jobs = new JobStore(hot, seqs, config.nodeId);
  await jobs.load(catalog.meta);
  if (jobs.malformed.length > 0) log.error('malformed job entries left out of system.jobs', { keys: jobs.malformed.slice(0, 20), count: jobs.malformed.length });
  const audit = new AuditLog(hot, seqs);
  audit.load(catalog.meta);
  const flush = new FlushService({
    catalog, hot, cold, committer, duck: files, jobs, log, columnsOf: sourceColumns,
    compactSegmentsMax: config.compactSegmentsMax, concurrentFlushesMax: config.concurrentFlushesMax,
  });
  await flush.recover();
  committer.onCommit((changes) => {
    mirror.onCommit(changes);
    flush.onCommit(changes);
  });
  flush.start();
  const pruneTimer = setInterval(() => {
    // Pruning writes tombstones: skipped while the disk is full (it runs again ten minutes later).
    if (!storage.writable) return;
    const failed = (error: unknown): void => {
      if (!(error instanceof StorageFullError)) log.error('prune failed', { error: (error as Error)?.stack ?? String(error) });
    };
    jobs.prune(config.jobRetentionDays * 86_400_000).catch(failed);
    audit.prune(AUDIT_RETENTION_MS).catch(failed);
  }, 600_000);
  pruneTimer.unref();
  await jobs.prune(config.jobRetentionDays * 86_400_000);
  const ddl = new Mutex();
  const streams = new StreamStore();
  const userPurge = new UserPurgeService({
    catalog, hot, cold, committer, streams, flush, jobs, ddl, log, graceSeconds: config.userPurgeGraceSeconds,
  });
  userPurge.start();
  const metrics = new Metrics();
  committer.onGroup = (intents) => metrics.observeCommitGroup(intents, config.durability === 'fsync');
  jobs.onFinished = (job) => metrics.observeJob(job.job_type, job.status, job.rows_processed, ((job.finished_at ?? Date.now()) - (job.started_at ?? job.created_at)) / 1000);
  const exports = new UserExportService({ config, catalog, mirror, duck, jobs, log, serverVersion: SERVER_VERSION });
  await exports.start();
  // Failed logins and failed OLD PASSWORD checks count together (either one guesses a password).
  const loginThrottle = new LoginThrottle(Date.now, config.clientIpv6PrefixBits);
  const services: Services = {
    config, catalog, hot, committer, duck, mirror, cold, jobs, flush, userPurge, sources: new RowSources(hot, cold), seqs, ddl, passwords, loginThrottle,
    live: null,
    listenPort: config.port,
    streams,
    audit,
    log,
    topics,
    metrics,
    exports,
  };
  const evictionTimer = setInterval(() => void evictStreamEvents(services, log), STREAM_SWEEP_MS);
  evictionTimer.unref();
  let topicSweepRunning = false;
  const topicTimer = setInterval(() => {
    if (topicSweepRunning) return;
    topicSweepRunning = true;
    void sweepTopicRetention(services, log).finally(() => { topicSweepRunning = false; });
  }, TOPIC_SWEEP_MS);
  topicTimer.unref();
  const executor = new Executor(services, new ParseCache(config.parseCacheEntries));
  const auth = new Authenticator(catalog, tokens, passwords, loginThrottle);
  auth.onFailedLogin = (userId, address) => {
    // A failed login is still answered (401) when its audit row cannot be written (disk full).
    audit.record({ actor: userId, effective_user: userId, action: 'login', target: null, status: 'failed', client_address: address, details: 'invalid credentials' })
      .catch((error: unknown) => {
        if (!(error instanceof StorageFullError)) log.error('audit record failed', { error: (error as Error)?.stack ?? String(error) });
      });
  };
  const live = new LiveServer(services, auth, log, config.nodeId);
  services.live = live;
  committer.onCommit((changes) => live.registry.onCommit(changes));
  flush.onFlush((event) => live.registry.onFlush(event));
  live.attach(http.server);
  registerGauges(metrics, { live, jobs, hot, cache: cold.cache, engines: { query: duck, files } });
  http.serve({ config, log, auth, tokens, executor, catalog, storage, topics: topicRoutes(services), metrics, exports });
  services.listenPort = port;
  log.info('listening', { host: config.host, port, data_dir: config.dataDir, durability: config.durability, url: `http://${config.host}:${port}` });

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await live.close();
      await new Promise<void>((resolve) => {
        http.server.close(() => resolve());
        http.server.closeIdleConnections();
      });
      clearInterval(pruneTimer);
      clearInterval(evictionTimer);
      clearInterval(topicTimer);
      await userPurge.stop();
      await exports.stop();
      await flush.stop();
      await committer.idle();
      // Remote manifest copies and deletes still in flight (bounded by the S3 client's timeouts).
      await cold.settled();
      cold.locations.close();
      storage.close();
      memoryGuard.close();
      duck.close();
      files.close();
      const { syncs: walSyncs, syncsOnLoop: walSyncsOnLoop } = hot.walSyncState();
      await hot.close();
      // Commit groups and the intents they held, and WAL syncs: how well group commit batched the writers.
      log.info('stopped', { commit_groups: committer.stats.groups, commit_intents: committer.stats.intents, commit_index_reads: committer.stats.indexReads, wal_syncs: walSyncs, wal_syncs_on_loop: walSyncsOnLoop });
    })();
    return closing;
  };
  return { port, services, close };
}

function jwtSecret(config: Config): string {
  if (config.jwtSecret !== null) return config.jwtSecret;
  const path = join(config.dataDir, 'jwt-secret');
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    // A generated secret is 43 characters; an empty or cut file would sign tokens anyone can forge, or none.
    if (secret.length < JWT_SECRET_CHARS_MIN) {
      throw new StartupError(`${path} is damaged: it holds ${secret.length} characters, a generated secret has 43`,
        'Restore it from a backup, or delete it to generate a new one (tokens issued before then stop working)');
    }
    return secret;
  }
  const secret = randomBytes(32).toString('base64url');
  // Written whole or not at all: a crash or a full disk must not leave an empty secret behind.
  writeFileDurably(path, secret + '\n', 0o600);
  return secret;
}

const JWT_SECRET_CHARS_MIN = 32;
