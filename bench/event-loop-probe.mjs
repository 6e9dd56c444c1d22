// Preload for a server under benchmark (KALAMDB_BENCH_NODE_ARGS="--import ./bench/event-loop-probe.mjs"):
// prints its event-loop delay (p50/p99/max) and CPU share every second to stderr.
import { monitorEventLoopDelay } from 'node:perf_hooks';
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
let last = process.cpuUsage();
setInterval(() => {
  const c = process.cpuUsage(last); last = process.cpuUsage();
  process.stderr.write(`[eld ${process.pid}] p50 ${(h.percentile(50)/1e6).toFixed(1)} p99 ${(h.percentile(99)/1e6).toFixed(1)} max ${(h.max/1e6).toFixed(1)} ms cpu ${((c.user+c.system)/1e4).toFixed(0)}%\n`);
  h.reset();
}, 1000).unref();
