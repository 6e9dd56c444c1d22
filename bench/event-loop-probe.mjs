// Preload for a server under benchmark (KALAMDB_BENCH_NODE_ARGS="--import ./bench/event-loop-probe.mjs"):
// every second, prints to stderr its event-loop delay (p50/p99/max), its CPU share, its GC pauses
// (count, total and longest; the server's stdout is drained unread by bench/lib.mjs, so --trace-gc
// output would be lost), the young generation's size (scavenges × its size ≈ bytes allocated) and
// the old generation's use (what survived into it).
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';

const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
let gcCount = 0;
let gcMs = 0;
let gcMax = 0;
let majorCount = 0;
let majorMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
    gcMax = Math.max(gcMax, e.duration);
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      majorCount++;
      majorMs += e.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });
let last = process.cpuUsage();
setInterval(() => {
  const c = process.cpuUsage(last);
  last = process.cpuUsage();
  const ms = (ns) => (ns / 1e6).toFixed(1);
  const spaces = v8.getHeapSpaceStatistics();
  const mb = (name, field) => (spaces.find((x) => x.space_name === name)?.[field] / 1048576).toFixed(1);
  process.stderr.write(`[probe ${process.pid}] event-loop delay p50 ${ms(h.percentile(50))} p99 ${ms(h.percentile(99))} max ${ms(h.max)} ms`
    + ` | cpu ${((c.user + c.system) / 1e4).toFixed(0)}% | gc ${gcCount} pauses ${gcMs.toFixed(1)} ms, longest ${gcMax.toFixed(1)} ms, of them major ${majorCount}: ${majorMs.toFixed(1)} ms`
    + ` | new space ${mb('new_space', 'space_size')} MB, old space used ${mb('old_space', 'space_used_size')} MB\n`);
  h.reset();
  gcCount = 0;
  gcMs = 0;
  gcMax = 0;
  majorCount = 0;
  majorMs = 0;
}, 1000).unref();
