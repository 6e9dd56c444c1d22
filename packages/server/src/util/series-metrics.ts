/**
 * A counter and a histogram for the request path, observed by series key. prom-client's own Counter
 * and Histogram validate and hash the label object on every call (about 0.5 µs each; a SQL request made
 * three such calls, ~1.5-2 µs in all); here the caller names the series with a string it already has
 * (e.g. the route), the labels are built the first time that series is seen, and an observation is a
 * Map lookup, a bucket search and a few additions. Both register in a prom-client Registry as metrics
 * of their own and report exactly what prom-client's Counter and Histogram report (same names, help,
 * label sets, buckets, order of series), so /metrics and system.stats read them as before.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

/** One value as prom-client's registry formats it (`sharedLabels`: the series' labels, after `le`). */
interface ValuePair {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels?: Labels;
  readonly value: number;
  readonly metricName?: string;
  readonly exemplar?: null | undefined;
}

interface MetricData {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: ValuePair[];
  readonly aggregator: 'sum';
}

abstract class SeriesMetric<S> {
  readonly aggregator = 'sum' as const;
  protected series = new Map<string, S>();

  constructor(public name: string, readonly help: string, registry: Registry) {
    // prom-client's Registry takes any object with its metric interface (name, help, type, get, reset).
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  abstract get(): Promise<MetricData>;

  /** As prom-client's reset(): every series is forgotten. */
  reset(): void {
    this.series = new Map();
  }
}

interface CounterSeries {
  readonly labels: Labels;
  value: number;
}

export class SeriesCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter' as const;

  /** Adds `by` to the series `key`; `labels` is called only the first time the key is seen. */
  inc(key: string, labels: () => Labels, by = 1): void {
    let s = this.series.get(key);
    if (s === undefined) this.series.set(key, (s = { labels: labels(), value: 0 }));
    s.value += by;
  }

  async get(): Promise<MetricData> {
    const values: ValuePair[] = [];
    for (const s of this.series.values()) values.push({ value: s.value, labels: s.labels });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

interface HistogramSeries {
  readonly labels: Labels;
  /** Observations per bucket (not cumulative), the last one past every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

export class SeriesHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram' as const;

  constructor(name: string, help: string, private readonly bounds: readonly number[], registry: Registry) {
    super(name, help, registry);
  }

  /** Observes `value` in the series `key`; `labels` is called only the first time the key is seen. */
  observe(key: string, labels: () => Labels, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    let s = this.series.get(key);
    if (s === undefined) this.series.set(key, (s = { labels: labels(), counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** What the registry formats as text: `le` in `labels`, the series' labels in `sharedLabels`. */
  async getForPromString(): Promise<MetricData> {
    const values: ValuePair[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** As prom-client's Histogram.get(): each value's labels with the series' labels merged in. */
  async get(): Promise<MetricData> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })),
    };
  }
}
