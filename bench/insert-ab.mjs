// Workload 1 (single-row INSERT, 16 clients, SHARED table) or, with WORKLOAD=multi, workload 2
// (1,000-row INSERTs, 4 clients) against two builds at once, in alternating slices, so that both see
// the same machine load (this VM's speed drifts: back-to-back runs differ by up to half). Server CPU
// per row (all its threads) and rows/s per side, per slice and in all:
//   [WORKLOAD=multi] node bench/insert-ab.mjs <before main.js> [after main.js] [rounds] [slice seconds]
// (after defaults to this tree's build). Each server is warmed up for 3 s first.
import { startBenchServer, threadTicks } from './lib.mjs';
import { drive } from './versus-pg.mjs';
import { treeCpuMicros } from './pg.mjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const before = process.argv[2];
const after = process.argv[3] && process.argv[3] !== '-' ? process.argv[3] : join(dirname(fileURLToPath(import.meta.url)), '..', 'packages/server/dist/src/main.js');
const rounds = Number(process.argv[4] ?? 6);
const slice = Number(process.argv[5] ?? 2);
const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const multi = process.env.WORKLOAD === 'multi';
const clients = multi ? 4 : 16;
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

const sides = [];
for (const [name, main] of [['before', before], ['after', after]]) {
  const server = await startBenchServer('', main);
  await server.sql('CREATE NAMESPACE IF NOT EXISTS vs');
  await server.sql(`CREATE SHARED TABLE vs.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) ${NO_FLUSH}`);
  sides.push({ name, server, rows: 0, cpu: 0, secs: 0, slices: [], main: 0, other: 0, nextId: 0 });
}
/** Workload 2's statement: `n` rows from id `from` (as bench/versus-pg.mjs writes them). */
const multiValues = (from, n) => {
  const values = [];
  for (let i = from; i < from + n; i++) values.push(`(${i}, 'u${i % 100}', 'bulk body number ${i}', ${i % 1000})`);
  return values.join(',');
};
const op = (side) => multi
  ? async () => {
    const from = side.nextId;
    side.nextId += 1000;
    await side.server.sql(`INSERT INTO vs.single (id, user_id, body, n) VALUES ${multiValues(from, 1000)}`);
    return 1000;
  }
  : async (c, i) => {
    await side.server.sql('INSERT INTO vs.single (user_id, body, n) VALUES ($1, $2, $3)', [`u${c}`, `message ${i} from client ${c}`, i]);
    return 1;
  };
console.log(`load at start ${load()}`);
for (const side of sides) await drive({ clients, seconds: 0.1, warmup: 3, op: op(side), serverCpu: () => treeCpuMicros(side.server.pid) });
try {
  for (let r = 0; r < rounds; r++) {
    // Alternate which side goes first in each round.
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const ticks = [];
      const res = await drive({ clients, seconds: slice, warmup: 0.3, op: op(side), serverCpu: () => { ticks.push(threadTicks(side.server.pid)); return treeCpuMicros(side.server.pid); } });
      side.main += ticks[1].main - ticks[0].main;
      side.other += ticks[1].other - ticks[0].other;
      side.rows += res.rows;
      side.cpu += res.server_cpu_us_per_row * res.rows;
      side.secs += res.seconds;
      side.slices.push(res.server_cpu_us_per_row);
      console.log(`round ${r} ${side.name.padEnd(6)} load ${load()}  ${res.rows_per_s} rows/s  ${res.server_cpu_us_per_row} µs/row  p50 ${res.latency.p50_ms} ms`);
    }
  }
} finally {
  for (const side of sides) {
    const stopped = await side.server.stop();
    side.groups = stopped?.commit_groups ? round(stopped.commit_intents / stopped.commit_groups, 2) : null;
  }
}
for (const s of sides) {
  const sorted = [...s.slices].sort((a, b) => a - b);
  console.log(`${s.name.padEnd(6)} ${Math.round(s.rows / s.secs)} rows/s, ${round(s.cpu / s.rows)} µs/row (slices: median ${sorted[Math.floor(sorted.length / 2)]}, min ${sorted[0]}), intents/group ${s.groups}; main thread ${round(s.main * 1e4 / s.rows)} µs/row, other threads ${round(s.other * 1e4 / s.rows)}`);
}
console.log(`load at end ${load()}`);
