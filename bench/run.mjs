// `npm run bench`: starts the real server and prints one JSON document with every benchmark.
// Options: --seconds N (per timed run, default 5), --only core|cold|live|stream, --flush-rows N (default
// 1,000,000), --stream-events N (stream events per second, default 50,000: the target).
import { startBenchServer, machine } from './lib.mjs';
import { benchCore } from './core.mjs';
import { benchCold } from './cold.mjs';
import { benchLive } from './live.mjs';
import { benchStream } from './stream.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const seconds = Number(arg('seconds', '5'));
const only = arg('only', 'all');
const flushRows = Number(arg('flush-rows', '1000000'));

async function main() {
  const results = { machine: machine(), seconds_per_run: seconds };
  if (only === 'all' || only === 'core') {
    const server = await startBenchServer();
    try { results.core = await benchCore(server, seconds); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'cold') {
    // The 20-segment query needs 20 segments: automatic compaction (past 8) is off for this run.
    const server = await startBenchServer('compact_segments_max = 1000\n');
    try { results.cold = await benchCold(server, seconds, flushRows); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'live') {
    // One user (root) opens every subscription here, so the per-user limit is raised for the run.
    const server = await startBenchServer('live_subscriptions_per_user_max = 200000\n');
    try { results.live = await benchLive(server, seconds); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'stream') {
    const server = await startBenchServer();
    try { results.stream = await benchStream(server, seconds, Number(arg('stream-events', '50000'))); } finally { await server.stop(); }
  }
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
