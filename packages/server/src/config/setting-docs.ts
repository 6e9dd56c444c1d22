/**
 * What each setting means and where it belongs, for system.settings. A Record over every Config
 * key, so a new setting without a description does not compile. The longer text with defaults and
 * the error each limit gives is docs/configuration.md; these are its one-line summaries.
 */
import type { Config } from './config.js';

export type SettingCategory = 'server' | 'logging' | 'auth' | 'metrics' | 'http' | 'limits' | 'query' | 'storage' | 'jobs' | 'export' | 'topics' | 'live';

export interface SettingDoc {
  readonly category: SettingCategory;
  readonly description: string;
}

const doc = (category: SettingCategory, description: string): SettingDoc => ({ category, description });

export const SETTING_DOCS: { readonly [K in keyof Config]: SettingDoc } = {
  host: doc('server', 'Address the HTTP and WebSocket server listens on'),
  port: doc('server', 'Port the server listens on (0 picks a free one)'),
  dataDir: doc('server', 'Directory holding RocksDB, the Parquet segments, manifests and the JWT secret'),
  nodeId: doc('server', 'Name of this node, shown in system.jobs, system.live and backups'),
  durability: doc('storage', 'fsync: the write-ahead log is synced once per commit group before it is acknowledged; process: not synced, writes survive a process crash only'),
  logLevel: doc('logging', 'debug, info (one line per request), warn or error'),
  logFormat: doc('logging', 'pretty, json, or auto (pretty on a terminal, JSON lines otherwise)'),
  rootPassword: doc('auth', "root's password, used only when root does not exist yet (secret)"),
  jwtSecret: doc('auth', 'HS256 secret signing access and refresh tokens; generated into the data directory when unset (secret)'),
  accessTokenTtlSeconds: doc('auth', 'Lifetime of an access token'),
  refreshTokenTtlSeconds: doc('auth', 'Lifetime of a refresh token'),
  metricsAccess: doc('metrics', 'Who may read GET /metrics: localhost, token, open or off'),
  metricsToken: doc('metrics', 'Bearer token for metrics_access = token (secret)'),
  bodyBytesMax: doc('http', 'Largest HTTP request body (413 past it)'),
  httpHeadersTimeoutMs: doc('http', "Time a client has to send a request's headers before 408 and close (slowloris)"),
  httpBodyTimeoutMs: doc('http', 'Time the body may take to arrive once the headers are in (408)'),
  httpRequestTimeoutMs: doc('http', 'Time to receive a whole request, headers and body: the backstop of the two above'),
  httpKeepAliveTimeoutMs: doc('http', 'An idle keep-alive connection is closed after this'),
  httpConnectionsMax: doc('http', 'TCP connections (HTTP and WebSocket) open at once; at most the open-file limit less 2,048; more are closed at once'),
  httpConnectionsPerAddressMax: doc('http', 'TCP connections open at once from one client address; more are closed at once (raise it behind a proxy)'),
  clientIpv6PrefixBits: doc('http', 'Leading bits of an IPv6 address that make one client for the per-client limits (connections per address, failed logins): 64 counts a host that can use any address of its /64 as one, 128 counts each address (many hosts in one /64, e.g. a cloud subnet)'),
  sqlBytesMax: doc('limits', 'Largest SQL text in one request (413)'),
  paramsMax: doc('limits', 'Most $n parameters in one request (413)'),
  statementsPerRequestMax: doc('limits', 'Most statements in one request, counted before any is parsed (413)'),
  sqlNestingDepthMax: doc('limits', 'Deepest parenthesis and bracket nesting in one statement (400)'),
  sqlTokensMax: doc('limits', 'Most tokens in one statement read by PostgreSQL\'s parser (400)'),
  parseTreeDepthMax: doc('limits', 'Deepest parse tree of one statement, for nesting without parentheses (400)'),
  subqueryDepthMax: doc('limits', 'Deepest nesting of subqueries in one statement (400)'),
  resultRowsMax: doc('limits', 'Most rows one query may return (400, add a LIMIT)'),
  resultBytesMax: doc('limits', 'Most bytes of results one response may carry, all statements together (400)'),
  writeRowsMax: doc('limits', 'Most rows one INSERT may write, one UPDATE or DELETE may match, one transaction may hold'),
  queryTimeoutMs: doc('limits', 'Time one statement may take as a whole; past it the statement fails and writes nothing'),
  generatedValuesMax: doc('limits', 'Largest output of one repeat, lpad, rpad, list_resize or range call (or growth by replace) with constant arguments; 1/500 of it per row otherwise'),
  memoryRssBytesMax: doc('limits', 'Process RSS over which the memory guard stops every running query'),
  memorySampleIntervalMs: doc('limits', 'How often the memory guard samples RSS while a query runs'),
  queryConnections: doc('query', 'DuckDB connections running user queries concurrently'),
  duckdbThreads: doc('query', 'DuckDB worker threads'),
  duckdbMemoryLimit: doc('query', 'Memory limit of the query engine (DuckDB units: GB = 10^9, GiB = 2^30, or a % of RAM)'),
  parseCacheEntries: doc('query', 'Parsed statements cached by SQL text (up to 8 KiB; literal INSERTs are not cached)'),
  mirrorRowsMax: doc('query', 'Rows the query engine keeps mirrored before dropping the least recently used partitions'),
  compactSegmentsMax: doc('storage', 'A partition with more Parquet segments than this is compacted after a flush'),
  remoteCacheBytesMax: doc('storage', 'Bytes of remote (S3) segment files kept in the local cache'),
  concurrentFlushesMax: doc('jobs', 'Partitions flushed or compacted at the same time'),
  jobRetentionDays: doc('jobs', 'Finished rows of system.jobs older than this are pruned'),
  userPurgeGraceSeconds: doc('jobs', "How long a dropped user's rows and files are kept before the cleanup job purges them"),
  exportsPerUserMax: doc('export', 'EXPORT USER DATA archives kept per user'),
  exportBytesMax: doc('export', 'Largest EXPORT USER DATA archive'),
  exportRetentionHours: doc('export', 'EXPORT USER DATA archives older than this are deleted'),
  topicVisibilityTimeoutSecs: doc('topics', "A consumer group's claimed, unacknowledged messages are delivered again after this"),
  liveSubscriptionsPerConnectionMax: doc('live', 'Subscriptions (and, counted apart, topic consumers) on one WebSocket'),
  liveSubscriptionsPerUserMax: doc('live', 'Subscriptions of one user across connections'),
  liveMessageBytesMax: doc('live', 'Largest client WebSocket frame (MESSAGE_TOO_LARGE)'),
  liveBufferedBytesMax: doc('live', 'Unsent bytes a connection may hold for as long as it likes'),
  liveSlowConsumerGraceMs: doc('live', 'How long a connection may stay past live_buffered_bytes_max before SLOW_CONSUMER'),
  liveBufferedBytesBurstMax: doc('live', 'Unsent bytes past which a connection gets SLOW_CONSUMER at once'),
  liveBurstBytesTotalMax: doc('live', 'Unsent bytes all connections together may hold past live_buffered_bytes_max'),
  liveMessagesPerSecondMax: doc('live', 'Client messages per second per connection; twice as many more past it close the connection'),
  liveConnectionsMax: doc('live', 'WebSocket connections open at once; more are refused with 503'),
  liveUnauthenticatedConnectionsMax: doc('live', 'WebSocket connections not yet authenticated; more are refused with 503'),
  liveConnectionsPerUserMax: doc('live', 'WebSocket connections one account may hold (role system: no limit); more fail to authenticate'),
  liveIncomingBytesMax: doc('live', 'Bytes of incoming WebSocket messages not yet complete, across all connections; past it the connection holding most is closed (1008)'),
  liveBatchSizeMax: doc('live', 'Largest batch_size a subscription may ask for'),
  liveAuthTimeoutMs: doc('live', 'Time a new WebSocket has to authenticate before it is closed'),
  livePingIntervalMs: doc('live', 'Interval of server pings; a connection that has not answered the previous ping is closed'),
};
