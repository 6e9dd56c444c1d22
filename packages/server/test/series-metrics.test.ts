/**
 * The request path's series metrics report exactly what prom-client's Counter and Histogram report for
 * the same observations: the same /metrics text and the same JSON (system.stats reads that).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from '../src/util/series-metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const OBSERVATIONS: [string, string, number][] = [
  ['insert', 'ok', 0.0012], ['select', 'ok', 0.0005], ['insert', 'error', 0.03], ['insert', 'ok', 0.0005],
  ['select', 'ok', 12], ['insert', 'ok', 0], ['update', 'error', 2.5], ['select', 'ok', 0.00049],
];

function both(): { theirs: Registry; ours: Registry; observe(kind: string, outcome: string, value: number): void } {
  const theirs = new Registry();
  const ours = new Registry();
  const counter = new Counter({ name: 'x_requests_total', help: 'Requests, by kind and outcome', labelNames: ['kind', 'outcome'], registers: [theirs] });
  const histogram = new Histogram({ name: 'x_seconds', help: 'Latency "quoted" \\ help', labelNames: ['kind', 'outcome'], buckets: BUCKETS, registers: [theirs] });
  const seriesCounter = new SeriesCounter('x_requests_total', 'Requests, by kind and outcome', ours);
  const seriesHistogram = new SeriesHistogram('x_seconds', 'Latency "quoted" \\ help', BUCKETS, ours);
  return {
    theirs, ours,
    observe(kind, outcome, value) {
      counter.inc({ kind, outcome });
      histogram.observe({ kind, outcome }, value);
      seriesCounter.inc(`${kind} ${outcome}`, () => ({ kind, outcome }));
      seriesHistogram.observe(`${kind} ${outcome}`, () => ({ kind, outcome }), value);
    },
  };
}

describe('series metrics', () => {
  it('give the text and JSON of prom-client for the same observations', async () => {
    const { theirs, ours, observe } = both();
    assert.equal(await ours.metrics(), await theirs.metrics(), 'no series yet');
    for (const [kind, outcome, value] of OBSERVATIONS) observe(kind, outcome, value);
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  });

  it('forget their series on reset, as prom-client does', async () => {
    const { theirs, ours, observe } = both();
    for (const [kind, outcome, value] of OBSERVATIONS) observe(kind, outcome, value);
    theirs.resetMetrics();
    ours.resetMetrics();
    observe('delete', 'ok', 0.002);
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('refuse a value that is not a finite number, as prom-client does', () => {
    const histogram = new SeriesHistogram('y_seconds', 'y', BUCKETS, new Registry());
    assert.throws(() => histogram.observe('a', () => ({ a: 'a' }), Number.NaN), TypeError);
  });
});
