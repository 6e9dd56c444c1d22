// Preload for the server under the STREAM benchmark (KALAMDB_BENCH_NODE_ARGS="--import $PWD/bench/frame-lag-probe.mjs"):
// the server side of the latency breakdown. For every live frame the server writes that carries the
// benchmark's `"sent_at":N` (µs since the epoch, set by the load generator just before it sends the
// INSERT), records now − N when `socket.write` is called: the time from send to the frame being
// handed to the socket (the HTTP request, the server's queue, its handling and the fan-out). The rest
// of the benchmark's latency (bench/stream.mjs) is the kernel and the subscriber. Prints p50/p99/max
// every second and for the whole run at exit on stderr, with the socket's queued bytes at the write
// (frames of the same fan-out corked before it, plus anything the kernel did not take yet), and the
// server's CPU time per 1,000 events delivered that second (events = rows handed to sockets / 100
// subscriptions, rows counted by the frame's size): a cold server (JIT, heap growth) shows here as a
// higher cost per event in the first seconds. With coalesced messages (several INSERTs' events in one
// frame), the lag is that of the frame's first, oldest row.
import net from 'node:net';
import { createHistogram } from 'node:perf_hooks';

const perSecond = createHistogram();
const whole = createHistogram();
const queued = createHistogram();
const KEY = Buffer.from('"sent_at":');
const SUBSCRIPTIONS = 100;
let rowBytes = 0; // the width of one row and its separator, learnt from the first frame
let rows = 0;
let cpu = process.cpuUsage();
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (chunk, ...rest) {
  if (Buffer.isBuffer(chunk) && chunk[0] === 0x81 && chunk.length > 200) {
    const at = chunk.indexOf(KEY);
    if (at > 0 && at < 200) {
      const sent = Number(chunk.latin1Slice(at + KEY.length, at + KEY.length + 16));
      const lag = Math.max(1, Math.round((performance.timeOrigin + performance.now()) * 1000 - sent));
      if (rowBytes === 0) {
        const open = chunk.lastIndexOf(0x7b /* { */, at);
        const close = chunk.indexOf(0x7d /* } */, at);
        rowBytes = close + 2 - open;
      }
      const rowsAt = chunk.indexOf('"rows":[') + 8;
      rows += Math.round((chunk.length - 1 - rowsAt) / rowBytes);
      perSecond.record(lag);
      whole.record(lag);
      queued.record(Math.max(1, this.writableLength));
    }
  }
  return write.call(this, chunk, ...rest);
};
const stats = (h) => `p50 ${(h.percentile(50) / 1000).toFixed(1)} p99 ${(h.percentile(99) / 1000).toFixed(1)} max ${(h.max / 1000).toFixed(1)} ms (${h.count} frames)`;
setInterval(() => {
  const used = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  if (perSecond.count === 0) return;
  const events = rows / SUBSCRIPTIONS;
  const perK = events > 0 ? ((used.user + used.system) / 1000 / (events / 1000)).toFixed(1) : '-';
  process.stderr.write(`[frame-lag ${process.pid}] send -> server write ${stats(perSecond)} | queued on the socket p50 ${queued.percentile(50)} p99 ${queued.percentile(99)} max ${queued.max} B`
    + ` | ${Math.round(events)} events, server CPU ${perK} ms per 1k events\n`);
  rows = 0;
  perSecond.reset();
  queued.reset();
}, 1000).unref();
process.on('exit', () => {
  if (whole.count > 0) process.stderr.write(`[frame-lag ${process.pid}] whole run: send -> server write ${stats(whole)}\n`);
});
