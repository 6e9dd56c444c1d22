// Micro-benchmark for decision 0024: the cost of the live traffic counters on the fan-out's send
// path. Runs the shape of LiveSession.send (cap check, then a write of a shared frame to a corked
// socket stand-in) for 1,000 sessions x N frames, with and without the two adds the counters cost,
// interleaved A/B so both variants see the same machine load. Prints CPU ns per send for each (median of rounds).
// `node bench/live-counters.mjs [rounds]`
const SESSIONS = 1000;
const FRAMES = 2000;
const rounds = Number(process.argv[2] ?? 10);
const frame = { byteLength: 180, wire: Buffer.alloc(182) };

class Sink {
  constructor() { this.written = 0; this.bufferedAmount = 0; }
  write(buf) { this.written += buf.length; return true; }
}

function makeSessions() {
  const traffic = { messages: 0, bytes: 0 };
  return Array.from({ length: SESSIONS }, () => ({ closed: false, ws: new Sink(), d: { traffic, cap: 8 << 20 } }));
}

function sendPlain(s, f) {
  if (s.closed) return false;
  if (s.ws.bufferedAmount + f.byteLength > s.d.cap) return false;
  s.ws.write(f.wire);
  return true;
}

function sendCounted(s, f) {
  if (s.closed) return false;
  if (s.ws.bufferedAmount + f.byteLength > s.d.cap) return false;
  const traffic = s.d.traffic;
  traffic.messages++;
  traffic.bytes += f.byteLength;
  s.ws.write(f.wire);
  return true;
}

function run(send) {
  const sessions = makeSessions();
  // CPU time of this process, not wall time: on a shared machine the wall clock includes other processes' turns.
  const c0 = process.cpuUsage();
  for (let i = 0; i < FRAMES; i++) for (const s of sessions) send(s, frame);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / (FRAMES * SESSIONS);
}

const out = { plain: [], counted: [] };
run(sendPlain); run(sendCounted); // warm-up
for (let r = 0; r < rounds; r++) {
  out.plain.push(run(sendPlain));
  out.counted.push(run(sendCounted));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({
  sends_per_round: FRAMES * SESSIONS, rounds,
  ns_per_send_plain_median: +median(out.plain).toFixed(2), ns_per_send_counted_median: +median(out.counted).toFixed(2),
  load_average: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
}));
