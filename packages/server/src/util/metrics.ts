/**
 * The server's Prometheus metrics (prom-client), served at GET /metrics. Events that happen on hot
 * paths are counted where they happen through the narrow `observe*` methods (a label lookup and an
 * add, no allocation per call beyond prom-client's); figures that already exist elsewhere (live
 * subscriptions, job rows, DuckDB memory) are read when a scrape asks, through `gauge`. A leaf
 * module: subsystems get a Metrics, never the other way round.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from './series-metrics.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const GROUP_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** A gauge read at scrape time: one value, or values per label set. */
type LabelledValues = readonly (readonly [Record<string, string>, number])[];
export type GaugeRead = () => number | LabelledValues | Promise<number | LabelledValues>;

export class Metrics {
  readonly registry = new Registry();
  // Observed on every request: series metrics (no label hashing per call, see series-metrics.ts).
  private readonly httpRequests: SeriesCounter;
  private readonly httpSeconds: SeriesHistogram;
  private readonly statementSeconds: SeriesHistogram;
  private readonly commitGroupIntents: Histogram;
  private readonly walSyncs: Counter;
  private readonly jobRows: Counter<'job_type' | 'status'>;
  private readonly jobSeconds: Histogram<'job_type' | 'status'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kalamdb_' });
    const r = [this.registry];
    this.httpRequests = new SeriesCounter('kalamdb_http_requests_total', 'HTTP requests answered, by route and status', this.registry);
    this.httpSeconds = new SeriesHistogram('kalamdb_http_request_duration_seconds', 'Time from request to response written', LATENCY_BUCKETS, this.registry);
    this.statementSeconds = new SeriesHistogram('kalamdb_statement_duration_seconds', 'Statement latency by statement kind and outcome (ok, error)', LATENCY_BUCKETS, this.registry);
    this.commitGroupIntents = new Histogram({ name: 'kalamdb_commit_group_intents', help: 'Write intents per commit group (one RocksDB batch each)', buckets: GROUP_BUCKETS, registers: r });
    this.walSyncs = new Counter({ name: 'kalamdb_wal_syncs_total', help: 'Commit groups made durable (one WAL sync each under durability = fsync)', registers: r });
    this.jobRows = new Counter({ name: 'kalamdb_job_rows_total', help: 'Rows processed by finished jobs (flush, compaction, ...)', labelNames: ['job_type', 'status'], registers: r });
    this.jobSeconds = new Histogram({ name: 'kalamdb_job_duration_seconds', help: 'Duration of finished jobs', labelNames: ['job_type', 'status'], buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800], registers: r });
  }

  observeRequest(route: string, status: number, seconds: number): void {
    // Routes are a closed set (routeLabel), statuses a small one: the keys cannot grow without bound.
    this.httpRequests.inc(`${route} ${status}`, () => ({ route, status: String(status) }));
    this.httpSeconds.observe(route, () => ({ route }), seconds);
  }

  observeStatement(kind: string, ok: boolean, seconds: number): void {
    this.statementSeconds.observe(ok ? kind : `${kind} error`, () => ({ kind, outcome: ok ? 'ok' : 'error' }), seconds);
  }

  observeCommitGroup(intents: number, synced: boolean): void {
    this.commitGroupIntents.observe(intents);
    if (synced) this.walSyncs.inc();
  }

  observeJob(jobType: string, status: string, rows: number, seconds: number): void {
    this.jobRows.inc({ job_type: jobType, status }, rows);
    this.jobSeconds.observe({ job_type: jobType, status }, seconds);
  }

  /**
   * A counter kept as a plain number by its subsystem (bumped on a hot path without prom-client's
   * label lookup) and read at scrape time. `read` must only ever grow.
   */
  counter(name: string, help: string, read: () => number): void {
    new Counter({
      name, help, registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** Every metric's current values, as prom-client reports them (system.stats reads the same numbers as /metrics). */
  async values(): Promise<Awaited<ReturnType<Registry['getMetricsAsJSON']>>> {
    return this.registry.getMetricsAsJSON();
  }

  /** A gauge whose value is read at scrape time. */
  gauge(name: string, help: string, read: GaugeRead, labelNames: readonly string[] = []): void {
    new Gauge({
      name, help, labelNames: [...labelNames], registers: [this.registry],
      async collect() {
        const value = await read();
        this.reset();
        if (typeof value === 'number') this.set(value);
        else for (const [labels, v] of value) this.set(labels, v);
      },
    });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const KNOWN_API_ROUTES = new Set([
  '/v1/api/auth/login', '/v1/api/auth/refresh', '/v1/api/auth/me', '/v1/api/auth/logout', '/v1/api/auth/status',
  '/v1/api/topics/consume', '/v1/api/topics/ack',
]);

/** A request path as a metrics label: known routes only, so arbitrary URLs cannot grow the label set. */
export function routeLabel(path: string): string {
  if (path === '/health' || path === '/v1/api/healthcheck' || path === '/v1/api/sql' || path === '/metrics' || path === '/v1/ws') return path;
  if (KNOWN_API_ROUTES.has(path)) return path;
  if (path.startsWith('/v1/exports/')) return '/v1/exports/:user/:id';
  if (path === '/ui' || path.startsWith('/ui/')) return '/ui';
  return 'other';
}
