/**
 * Server configuration: flags over environment over a TOML file over defaults, frozen into one
 * Config. Every limit lives here with a safe default and the relations between limits are asserted.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { totalmem } from 'node:os';
import { parse as parseToml } from 'smol-toml';
import { isLogLevel, type LogFormat, type LogLevel } from '../util/log.js';

/**
 * `fsync`: acknowledged writes survive power loss (the WAL is synced once per commit group).
 * `process`: they survive a crash of the server process only (the WAL stays in the OS page cache).
 */
export type Durability = 'fsync' | 'process';
export const DURABILITY_MODES: readonly Durability[] = ['fsync', 'process'];

export type MetricsAccess = 'localhost' | 'token' | 'open' | 'off';
const METRICS_ACCESS: readonly MetricsAccess[] = ['localhost', 'token', 'open', 'off'];

function isDurability(value: string): value is Durability {
  return (DURABILITY_MODES as readonly string[]).includes(value);
}

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** `auto` (default): `pretty` when stdout is a terminal, JSON lines otherwise. */
  readonly logFormat: 'auto' | LogFormat;
  /**
   * `fsync` (default): the RocksDB WAL is synced once per commit group before the group is
   * acknowledged, so acknowledged writes survive power loss. `process`: not synced; acknowledged
   * writes survive a crash of the server process only (faster, see docs/operations.md).
   */
  readonly durability: Durability;
  /**
   * Who may scrape GET /metrics: `localhost` (default: connections from 127.0.0.1/::1 only), `token`
   * (an `Authorization: Bearer <metrics_token>` header), `open` (anyone), `off` (404).
   */
  readonly metricsAccess: MetricsAccess;
  readonly metricsToken: string | null;
  readonly rootPassword: string | null;
  readonly jwtSecret: string | null;
  readonly nodeId: string;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  /** Largest accepted HTTP request body. */
  readonly bodyBytesMax: number;
  /**
   * Time a client has to send a request's headers (Node's server.headersTimeout). A socket that
   * dribbles headers (slowloris) gets a 408 and is closed once it passes.
   */
  readonly httpHeadersTimeoutMs: number;
  /** Time a handler waits for the whole request body once the headers are in; then 408 (or 413 if it was already too large). */
  readonly httpBodyTimeoutMs: number;
  /** Time to receive the whole request, headers and body (Node's server.requestTimeout): the backstop for both. */
  readonly httpRequestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly httpKeepAliveTimeoutMs: number;
  /** TCP connections (HTTP and WebSocket) open at once, in all (at most the file descriptor limit less a reserve) and from one client address. */
  readonly httpConnectionsMax: number;
  readonly httpConnectionsPerAddressMax: number;
  /** Leading bits of an IPv6 client address that make one client for per-client limits (util/client-address.ts). */
  readonly clientIpv6PrefixBits: number;
  /** Largest SQL text in one request (protocol: 1 MiB). */
  readonly sqlBytesMax: number;
  readonly paramsMax: number;
  /** Statements one request may hold; checked right after splitting, before any is parsed. */
  readonly statementsPerRequestMax: number;
  /** Deepest parenthesis/bracket nesting in one statement; checked on tokens, before PostgreSQL's parser. */
  readonly sqlNestingDepthMax: number;
  /**
   * Most tokens in one statement PostgreSQL's parser reads (literal INSERTs have their own scanner):
   * parsing runs on the thread every request shares, ~1 µs per token.
   */
  readonly sqlTokensMax: number;
  /**
   * Deepest parse tree (JSON levels) a statement may have. Catches nesting without parentheses
   * (long UNION or operator chains) before the recursive stages (binder, deparser) see it.
   */
  readonly parseTreeDepthMax: number;
  /** Subqueries nested inside one another in one statement (DuckDB's planner is exponential in it). */
  readonly subqueryDepthMax: number;
  /** Rows one SELECT may return before it fails with a clear error. */
  readonly resultRowsMax: number;
  /** Bytes of JSON results one response may carry (all statements together). */
  readonly resultBytesMax: number;
  /** Rows one INSERT may write, or one UPDATE/DELETE may match. */
  readonly writeRowsMax: number;
  /** Time one statement may run: its query, and for writes also building the write batch. */
  readonly queryTimeoutMs: number;
  /** DuckDB connections running user queries concurrently. */
  readonly queryConnections: number;
  readonly duckdbThreads: number;
  readonly duckdbMemoryLimit: string;
  /** Process RSS above which the memory guard interrupts every running DuckDB query. */
  readonly memoryRssBytesMax: number;
  /** How often the memory guard samples RSS while a query runs. */
  readonly memorySampleIntervalMs: number;
  readonly parseCacheEntries: number;
  /** Rows the hot mirror (DuckDB copies of queried partitions) may hold before it drops the least recently used. */
  readonly mirrorRowsMax: number;
  /** Largest output of one size-amplifying call (repeat, lpad/rpad, range as a list, list_resize). */
  readonly generatedValuesMax: number;
  /** Finished rows of system.jobs older than this are pruned. */
  readonly jobRetentionDays: number;
  /** A partition with more Parquet segments than this is compacted after a flush. */
  readonly compactSegmentsMax: number;
  /**
   * Bytes of remote (S3) segment files kept in the local cache (`<data>/remote`); least recently
   * used files are deleted past it. Manifests are not counted (they are never evicted).
   */
  readonly remoteCacheBytesMax: number;
  /** Partitions flushed or compacted at the same time. */
  readonly concurrentFlushesMax: number;
  /** How long a dropped user's rows and files are kept before the cleanup job purges them (0: at once). */
  readonly userPurgeGraceSeconds: number;
  /** EXPORT USER DATA: archives kept per user (older ones are deleted when a new one completes). */
  readonly exportsPerUserMax: number;
  /** EXPORT USER DATA: largest archive; an export that would be larger fails (fflate writes no ZIP64: at most 4 GiB). */
  readonly exportBytesMax: number;
  /** EXPORT USER DATA: archives older than this are deleted. */
  readonly exportRetentionHours: number;
  /** [topics] visibility_timeout_secs: a claimed, unacknowledged range of a consumer group is delivered again after this. */
  readonly topicVisibilityTimeoutSecs: number;
  /** Live queries: per connection, per user, client frame size, unsent bytes before SLOW_CONSUMER. */
  readonly liveSubscriptionsPerConnectionMax: number;
  readonly liveSubscriptionsPerUserMax: number;
  readonly liveMessageBytesMax: number;
  readonly liveBufferedBytesMax: number;
  /** Past liveBufferedBytesMax: how long, how many unsent bytes per connection, and across all connections (send-backlog.ts). */
  readonly liveSlowConsumerGraceMs: number;
  readonly liveBufferedBytesBurstMax: number;
  readonly liveBurstBytesTotalMax: number;
  readonly liveMessagesPerSecondMax: number;
  /** WebSocket connections open at once, and of them not yet authenticated. */
  readonly liveConnectionsMax: number;
  readonly liveUnauthenticatedConnectionsMax: number;
  /** WebSocket connections one account may hold (role system: no limit). */
  readonly liveConnectionsPerUserMax: number;
  /** Bytes of incoming messages not yet complete, across all connections: past it the connection holding most is closed. */
  readonly liveIncomingBytesMax: number;
  readonly liveBatchSizeMax: number;
  readonly liveAuthTimeoutMs: number;
  readonly livePingIntervalMs: number;
}

/**
 * The settings whose values are secrets: never shown (system.settings says only whether they are
 * set), never logged. Every other key is plain configuration; a new secret must be added here (the
 * settings test sets each one and looks for its value in system.settings, /metrics and the logs).
 * Storage credentials are not configuration: they live in the catalog (system.storages masks them).
 */
export const SECRET_SETTINGS: ReadonlySet<keyof Config> = new Set<keyof Config>(['rootPassword', 'jwtSecret', 'metricsToken']);

export const defaults: Config = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  logLevel: 'info',
  logFormat: 'auto',
  durability: 'fsync',
  rootPassword: null,
  jwtSecret: null,
  metricsAccess: 'localhost',
  metricsToken: null,
  nodeId: 'node-1',
  accessTokenTtlSeconds: 3600,
  refreshTokenTtlSeconds: 7 * 24 * 3600,
  bodyBytesMax: 2 * 1024 * 1024,
  httpHeadersTimeoutMs: 10_000,
  httpBodyTimeoutMs: 30_000,
  httpRequestTimeoutMs: 60_000,
  httpKeepAliveTimeoutMs: 65_000,
  httpConnectionsMax: 20_000,
  httpConnectionsPerAddressMax: 2_000,
  clientIpv6PrefixBits: 64,
  sqlBytesMax: 1024 * 1024,
  paramsMax: 50,
  statementsPerRequestMax: 1000,
  sqlNestingDepthMax: 64,
  sqlTokensMax: 100_000,
  parseTreeDepthMax: 1000,
  subqueryDepthMax: 16,
  resultRowsMax: 1_000_000,
  resultBytesMax: 64 * 1024 * 1024,
  writeRowsMax: 100_000,
  queryTimeoutMs: 30_000,
  queryConnections: 4,
  duckdbThreads: 2,
  duckdbMemoryLimit: '2GB',
  memoryRssBytesMax: 2.5 * 1024 * 1024 * 1024,
  memorySampleIntervalMs: 25,
  parseCacheEntries: 2048,
  mirrorRowsMax: 5_000_000,
  generatedValuesMax: 10_000_000,
  jobRetentionDays: 7,
  compactSegmentsMax: 8,
  remoteCacheBytesMax: 1024 * 1024 * 1024,
  concurrentFlushesMax: 2,
  userPurgeGraceSeconds: 7 * 86_400,
  exportsPerUserMax: 3,
  exportBytesMax: 1024 * 1024 * 1024,
  exportRetentionHours: 7 * 24,
  topicVisibilityTimeoutSecs: 60,
  liveSubscriptionsPerConnectionMax: 100,
  liveSubscriptionsPerUserMax: 1000,
  liveMessageBytesMax: 1024 * 1024,
  liveBufferedBytesMax: 8 * 1024 * 1024,
  liveSlowConsumerGraceMs: 2000,
  liveBufferedBytesBurstMax: 32 * 1024 * 1024,
  liveBurstBytesTotalMax: 512 * 1024 * 1024,
  liveMessagesPerSecondMax: 500,
  liveConnectionsMax: 10_000,
  liveUnauthenticatedConnectionsMax: 256,
  liveConnectionsPerUserMax: 256,
  liveIncomingBytesMax: 256 * 1024 * 1024,
  liveBatchSizeMax: 10_000,
  liveAuthTimeoutMs: 3000,
  livePingIntervalMs: 30_000,
});

type Overrides = { -readonly [K in keyof Config]?: Config[K] };

/** Builds the configuration from argv (without node and script) and an environment. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const flags = parseFlags(argv);
  const fileOverrides = flags.config !== undefined ? readTomlConfig(flags.config) : {};
  const envOverrides: Overrides = {};
  if (env.KALAMDB_HOST) envOverrides.host = env.KALAMDB_HOST;
  if (env.KALAMDB_PORT) envOverrides.port = parsePort(env.KALAMDB_PORT, 'KALAMDB_PORT');
  if (env.KALAMDB_DATA_DIR) envOverrides.dataDir = env.KALAMDB_DATA_DIR;
  if (env.KALAMDB_ROOT_PASSWORD) envOverrides.rootPassword = env.KALAMDB_ROOT_PASSWORD;
  if (env.KALAMDB_JWT_SECRET) envOverrides.jwtSecret = env.KALAMDB_JWT_SECRET;
  if (env.KALAMDB_LOG_LEVEL) envOverrides.logLevel = parseLogLevel(env.KALAMDB_LOG_LEVEL);
  if (env.KALAMDB_LOG_FORMAT) envOverrides.logFormat = env.KALAMDB_LOG_FORMAT as Config['logFormat'];
  // KALAMDB_VISIBILITY_TIMEOUT_SECS: upstream's compatibility alias.
  const visibility = env.KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS || env.KALAMDB_VISIBILITY_TIMEOUT_SECS;
  if (visibility) envOverrides.topicVisibilityTimeoutSecs = Number(visibility);
  if (env.KALAMDB_REMOTE_CACHE_BYTES_MAX) envOverrides.remoteCacheBytesMax = Number(env.KALAMDB_REMOTE_CACHE_BYTES_MAX);
  if (env.KALAMDB_METRICS_ACCESS) envOverrides.metricsAccess = env.KALAMDB_METRICS_ACCESS as MetricsAccess;
  if (env.KALAMDB_METRICS_TOKEN) envOverrides.metricsToken = env.KALAMDB_METRICS_TOKEN;
  if (env.KALAMDB_DURABILITY) envOverrides.durability = parseDurability(env.KALAMDB_DURABILITY, 'KALAMDB_DURABILITY');
  const flagOverrides: Overrides = {};
  if (flags.host !== undefined) flagOverrides.host = flags.host;
  if (flags.port !== undefined) flagOverrides.port = parsePort(flags.port, '--port');
  if (flags['data-dir'] !== undefined) flagOverrides.dataDir = flags['data-dir'];
  if (flags['log-level'] !== undefined) flagOverrides.logLevel = parseLogLevel(flags['log-level']);
  if (flags.durability !== undefined) flagOverrides.durability = parseDurability(flags.durability, '--durability');
  const config: Config = { ...defaults, ...fileOverrides, ...envOverrides, ...flagOverrides };
  const resolved = { ...config, dataDir: resolve(config.dataDir) };
  checkConfig(resolved);
  return Object.freeze(resolved);
}

function checkConfig(config: Config): void {
  for (const [key, value] of Object.entries(config)) {
    if (typeof value !== 'number' || key === 'port') continue;
    const least = POSITIVE_SETTINGS.has(key as keyof Config) ? 1 : 0;
    if (!Number.isSafeInteger(value) || value < least) {
      throw new Error(`${snakeCase(key)} must be ${least === 1 ? 'a positive' : 'a non-negative'} integer (got ${value})`);
    }
  }
  if (config.httpHeadersTimeoutMs > config.httpRequestTimeoutMs) {
    throw new Error('http_headers_timeout_ms must not exceed http_request_timeout_ms: the request timeout covers the headers too');
  }
  if (config.httpHeadersTimeoutMs + config.httpBodyTimeoutMs > config.httpRequestTimeoutMs) {
    throw new Error('http_headers_timeout_ms + http_body_timeout_ms must not exceed http_request_timeout_ms: '
      + 'the body timeout should answer a slow body (with a 408 envelope) before Node\'s request timeout drops it');
  }
  if (!['auto', 'json', 'pretty'].includes(config.logFormat)) throw new Error(`log_format must be auto, json or pretty (got '${String(config.logFormat)}')`);
  if (!METRICS_ACCESS.includes(config.metricsAccess)) throw new Error(`metrics_access must be one of ${METRICS_ACCESS.join(', ')} (got '${String(config.metricsAccess)}')`);
  if (config.metricsAccess === 'token' && (config.metricsToken === null || config.metricsToken.length < 16)) {
    throw new Error('metrics_access = "token" needs metrics_token (KALAMDB_METRICS_TOKEN), at least 16 characters');
  }
  if (config.sqlBytesMax > config.bodyBytesMax) throw new Error('sql_bytes_max must not exceed body_bytes_max: the SQL text travels in the request body');
  if (config.accessTokenTtlSeconds >= config.refreshTokenTtlSeconds) {
    throw new Error('access tokens must expire before refresh tokens');
  }
  if (config.queryConnections < 1) throw new Error('query_connections must be at least 1');
  if (!Number.isSafeInteger(config.userPurgeGraceSeconds) || config.userPurgeGraceSeconds < 0) {
    throw new Error('user_purge_grace_seconds must be a whole number of seconds, 0 or more');
  }
  if (config.exportBytesMax > EXPORT_BYTES_CEILING) {
    throw new Error(`export_bytes_max must not exceed ${EXPORT_BYTES_CEILING}: export archives are plain ZIP (no ZIP64), whose sizes stop at 4 GiB`);
  }
  if (config.writeRowsMax > config.resultRowsMax) {
    throw new Error('write_rows_max must not exceed result_rows_max: an INSERT ... SELECT reads its rows as a query result');
  }
  if (config.sqlNestingDepthMax >= config.parseTreeDepthMax) {
    throw new Error('sql_nesting_depth_max must be below parse_tree_depth_max: every nesting level adds at least one tree level');
  }
  if (config.subqueryDepthMax > config.sqlNestingDepthMax) {
    throw new Error('subquery_depth_max must not exceed sql_nesting_depth_max: every subquery sits in parentheses');
  }
  if (config.clientIpv6PrefixBits > 128) throw new Error(`client_ipv6_prefix_bits must be at most 128 (got ${config.clientIpv6PrefixBits})`);
  if (config.parseTreeDepthMax > PARSE_TREE_DEPTH_CEILING) {
    throw new Error(`parse_tree_depth_max must not exceed ${PARSE_TREE_DEPTH_CEILING}: deeper trees overflow the binder's stack`);
  }
  const duckdbBytes = parseMemoryLimit(config.duckdbMemoryLimit, totalmem());
  if (config.memoryRssBytesMax <= duckdbBytes) {
    throw new Error(`memory_rss_bytes_max (${config.memoryRssBytesMax}) must exceed duckdb_memory_limit (${duckdbBytes} bytes): `
      + 'DuckDB may legitimately fill its limit (the hot mirror lives there) and the guard would then interrupt every query');
  }
  if (config.resultBytesMax >= config.memoryRssBytesMax) throw new Error('result_bytes_max must be below memory_rss_bytes_max');
  // Checked here, before the data dir is touched, rather than when root is created (a stack trace then).
  if (config.rootPassword !== null && config.rootPassword.length < PASSWORD_LENGTH_MIN) {
    throw new Error(`root_password (KALAMDB_ROOT_PASSWORD) must be at least ${PASSWORD_LENGTH_MIN} characters`);
  }
  if (config.liveSlowConsumerGraceMs > 3_600_000) throw new Error('live_slow_consumer_grace_ms must not exceed 3600000 (an hour)');
  if (config.liveBufferedBytesBurstMax < config.liveBufferedBytesMax) {
    throw new Error('live_buffered_bytes_burst_max must not be below live_buffered_bytes_max: the burst is what a connection may hold past the cap for a moment');
  }
  if (config.liveIncomingBytesMax < config.liveMessageBytesMax * 4) {
    throw new Error('live_incoming_bytes_max must be at least 4 times live_message_bytes_max: one connection may be receiving a frame that large');
  }
  if (config.memorySampleIntervalMs > MEMORY_SAMPLE_INTERVAL_CEILING_MS) {
    throw new Error(`memory_sample_interval_ms must not exceed ${MEMORY_SAMPLE_INTERVAL_CEILING_MS}: a slower guard lets memory overshoot by seconds of allocation`);
  }
}

/** Shortest password accepted (CREATE/ALTER USER, the root password). */
export const PASSWORD_LENGTH_MIN = 8;

/** Settings where 0 would refuse every request or stop nothing (others, like job_retention_days, may be 0). */
const POSITIVE_SETTINGS: ReadonlySet<keyof Config> = new Set<keyof Config>([
  'bodyBytesMax', 'httpHeadersTimeoutMs', 'httpBodyTimeoutMs', 'httpRequestTimeoutMs', 'httpKeepAliveTimeoutMs', 'sqlBytesMax', 'statementsPerRequestMax', 'sqlNestingDepthMax', 'sqlTokensMax', 'parseTreeDepthMax', 'subqueryDepthMax', 'resultRowsMax',
  'resultBytesMax', 'writeRowsMax', 'queryTimeoutMs', 'exportsPerUserMax', 'exportBytesMax', 'exportRetentionHours', 'queryConnections', 'duckdbThreads', 'memoryRssBytesMax', 'memorySampleIntervalMs',
  'liveConnectionsMax', 'liveUnauthenticatedConnectionsMax', 'liveConnectionsPerUserMax', 'httpConnectionsMax', 'httpConnectionsPerAddressMax',
  'clientIpv6PrefixBits',
]);

/**
 * Measured: the binder (recursive) overflows Node's default stack between 1,750 and 2,000 tree
 * levels; this ceiling keeps a margin for the frames below it.
 */
const PARSE_TREE_DEPTH_CEILING = 1500;
/** 4 GiB less room for the archive's headers and manifest. */
const EXPORT_BYTES_CEILING = 4 * 1024 ** 3 - 64 * 1024 ** 2;
const MEMORY_SAMPLE_INTERVAL_CEILING_MS = 1000;

const MEMORY_UNITS: Readonly<Record<string, number>> = Object.freeze({
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
});

/** A DuckDB memory_limit setting ('2GB', '512MiB', '80%' of `totalBytes`) in bytes, with DuckDB's units. */
export function parseMemoryLimit(text: string, totalBytes: number): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*|%)\s*$/i.exec(text);
  const unit = m?.[2]?.toLowerCase() ?? '';
  const scale = unit === '%' ? totalBytes / 100 : MEMORY_UNITS[unit === '' ? 'b' : unit];
  if (m === null || scale === undefined) throw new Error(`duckdb_memory_limit '${text}' is not a size like '2GB', '512MiB' or '80%'`);
  return Math.floor(Number(m[1]) * scale);
}

function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function parseFlags(argv: readonly string[]): Record<string, string> {
  const known = new Set(['host', 'port', 'data-dir', 'config', 'log-level', 'durability']);
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`Unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.has(name)) throw new Error(`Unknown flag '--${name}' (known: ${[...known].map((k) => '--' + k).join(', ')})`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new Error(`Flag '--${name}' needs a value`);
    out[name] = value;
  }
  return out;
}

/** TOML keys: host, port, data_dir, log_level, durability, root_password, jwt_secret, node_id and the limits in snake_case. */
function readTomlConfig(path: string): Overrides {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    // smol-toml's message does not say which file (a fault review); its first line says where in it.
    throw new Error(`${path}: ${String((error as Error).message).split('\n')[0]}`, { cause: error });
  }
  const out: Record<string, unknown> = {};
  const server = (doc.server as Record<string, unknown> | undefined) ?? doc;
  const topics = doc.topics as Record<string, unknown> | undefined;
  if (topics !== undefined) {
    for (const [key, value] of Object.entries(topics)) {
      if (key !== 'visibility_timeout_secs') throw new Error(`Unknown setting 'topics.${key}' in ${path}`);
      if (typeof value !== 'bigint' && typeof value !== 'number') throw new Error(`Setting 'topics.${key}' in ${path} must be a number`);
      out.topicVisibilityTimeoutSecs = Number(value);
    }
  }
  for (const [key, value] of Object.entries(server)) {
    if (server === doc && (key === 'topics' || key === 'server')) continue;
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(camel in defaults)) throw new Error(`Unknown setting '${key}' in ${path}`);
    const expected = typeof defaults[camel as keyof Config];
    const actual = typeof value === 'bigint' ? 'number' : typeof value;
    if (expected !== 'object' && expected !== actual) throw new Error(`Setting '${key}' in ${path} must be a ${expected}`);
    out[camel] = typeof value === 'bigint' ? Number(value) : value;
  }
  if (typeof out.logLevel === 'string') out.logLevel = parseLogLevel(out.logLevel);
  if (typeof out.durability === 'string') out.durability = parseDurability(out.durability, `durability in ${path}`);
  return out as Overrides;
}

function parsePort(value: string, source: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${source}: '${value}' is not a port`);
  return port;
}

/** Case-sensitive on purpose: a typo must not silently pick a mode with weaker guarantees. */
function parseDurability(value: string, source: string): Durability {
  if (isDurability(value)) return value;
  throw new Error(`${source}: unknown durability mode '${value}' (expected ${DURABILITY_MODES.map((m) => `'${m}'`).join(' or ')}: `
    + "'fsync' survives power loss, 'process' survives a server crash only)");
}

function parseLogLevel(value: string): LogLevel {
  const lower = value.toLowerCase();
  if (!isLogLevel(lower)) throw new Error(`Unknown log level '${value}' (debug, info, warn, error)`);
  return lower;
}
