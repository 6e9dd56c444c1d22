// Workload 1 on one fresh server over time (decision 0028): 16 clients send single-row INSERTs for N
// seconds and every W seconds prints rows/s, the server's CPU per row and its split by thread (main,
// the rest: libuv pool and V8 workers), with the load generator's cores. Shows the JIT warm-up (the
// first 2-3 s) apart from the host's own drift (slow stretches of seconds to tens of seconds):
//   node bench/insert-timeline.mjs [seconds] [window seconds]
import { startBenchServer, threadTicks } from './lib.mjs';
import { treeCpuMicros } from './pg.mjs';

const seconds = Number(process.argv[2] ?? 30);
const windowSeconds = Number(process.argv[3] ?? 2);


const server = await startBenchServer();
const { sql } = server;
await sql('CREATE NAMESPACE IF NOT EXISTS vs');
await sql("CREATE SHARED TABLE vs.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) WITH (FLUSH_POLICY = 'rows:100000000')");
let rows = 0;
let last = { rows: 0, cpu: treeCpuMicros(server.pid), at: performance.now(), me: process.cpuUsage(), ticks: threadTicks(server.pid) };
const started = performance.now();
const lines = [];
const timer = setInterval(() => {
  const now = { rows, cpu: treeCpuMicros(server.pid), at: performance.now(), me: process.cpuUsage(), ticks: threadTicks(server.pid) };
  const n = now.rows - last.rows;
  const secs = (now.at - last.at) / 1000;
  const loadgen = (now.me.user + now.me.system - last.me.user - last.me.system) / 1e6 / secs;
  const perRow = (ticks) => ((ticks * 1e4) / n).toFixed(1);
  lines.push(`${((now.at - started) / 1000).toFixed(0).padStart(4)} s ${String(Math.round(n / secs)).padStart(6)} rows/s ${((now.cpu - last.cpu) / n).toFixed(1).padStart(7)} µs/row`
    + `  (main ${perRow(now.ticks.main - last.ticks.main)}, other threads ${perRow(now.ticks.other - last.ticks.other)})  load generator ${loadgen.toFixed(2)} cores`);
  console.log(lines.at(-1));
  last = now;
}, windowSeconds * 1000);
const deadline = started + seconds * 1000;
try {
  await Promise.all(Array.from({ length: 16 }, async (_, c) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await sql('INSERT INTO vs.single (user_id, body, n) VALUES ($1, $2, $3)', [`u${c}`, `message ${i} from client ${c}`, i]);
      rows++;
    }
  }));
} finally {
  clearInterval(timer);
  const stopped = await server.stop();
  if (stopped?.commit_groups) console.log(`commit groups ${stopped.commit_groups}, ${(stopped.commit_intents / stopped.commit_groups).toFixed(2)} inserts per group`);
}
