// `npm run bench`: starts the real server and prints one JSON document with every benchmark.
// Options: --seconds N (per timed run, default 5), --only core|cold|live|stream|alter|topics|durability, --flush-rows N
// (default 1,000,000), --stream-events N (stream events per second, default 50,000: the target),
// --durability fsync|process (the servers' durability mode; default: the server's default, fsync),
// --topic-messages N (messages the topic drain preloads, default 300,000), --topic-rounds N (interleaved
// rounds of the topic INSERT comparisons, default 5).
// `--only durability` runs the two write benchmarks once per durability mode (not part of `all`).
// `--only pg` runs workloads 1, 2 and 6 of issue 15 against our server and a throw-away PostgreSQL in the
// same run (not part of `all`: it needs PostgreSQL installed and takes minutes); --pg-rows N (rows of the
// query workload, default 1,000,000), --pg-parts 1,2,6 (which workloads; default all: `--pg-parts 1` is the
// single-row INSERT alone, ~20 s at --seconds 5).
// `--only pg-realtime` runs workloads 3, 8 and 9 of issue 15 (bench/versus-pg-realtime.mjs; not part of `all`):
// --idle-connections N (default 200), --idle-subscriptions M per connection (default 100, the per-connection limit),
// --realtime-parts 3,8,9 (which of the three workloads to run; default all; 3-ours: our side of workload 3 alone).
// `--only memory` (bench/memory.mjs; not part of `all`): server RSS with N hot rows in one partition, one fresh
// server per table kind; --memory-rows N (default 1,000,000), --memory-kinds shared,user (default both),
// --memory-idle N (seconds of idle before the last reading, default 10), --memory-mirror-first (query the empty
// partition first, so the mirror exists while the rows arrive).
// `--only sdk` (bench/sdk.mjs; not part of `all`): @kalamdb/client's CPU per query next to a bare node:http client.
// `--only backup` (bench/backup.mjs; not part of `all`): BACKUP DATABASE and `main.js restore` MB/s on --backup-mb N
// (default 1024) of data, half cold, half hot.
import { startBenchServer, machine } from './lib.mjs';
import { benchCore, benchWrites } from './core.mjs';
import { benchCold } from './cold.mjs';
import { benchLive } from './live.mjs';
import { benchStream } from './stream.mjs';
import { benchAlter } from './alter.mjs';
import { benchTopics } from './topics.mjs';
import { rmSync } from 'node:fs';
import { startPostgres } from './pg.mjs';
import { benchWritesVersusPg, benchQueriesVersusPg } from './versus-pg.mjs';
import { benchRealtimeVersusPg } from './versus-pg-realtime.mjs';
import { benchFanoutVersusPg } from './versus-pg-fanout.mjs';
import { benchMemory } from './memory.mjs';
import { benchSdk } from './sdk.mjs';
import { benchBackup } from './backup.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const seconds = Number(arg('seconds', '5'));
const only = arg('only', 'all');
const flushRows = Number(arg('flush-rows', '1000000'));
const MODES = ['fsync', 'process'];
const durability = arg('durability', undefined);
if (durability !== undefined && !MODES.includes(durability)) {
  process.stderr.write(`--durability must be one of ${MODES.join(', ')}\n`);
  process.exit(2);
}
/** Extra TOML for every server of the run: the chosen durability mode, if any. */
const modeToml = durability === undefined ? '' : `durability = "${durability}"\n`;

async function main() {
  const results = { machine: machine(), seconds_per_run: seconds, durability_mode: durability ?? 'default (fsync)' };
  if (only === 'all' || only === 'core') {
    const server = await startBenchServer(modeToml);
    try { results.core = await benchCore(server, seconds); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'cold') {
    // The 20-segment query needs 20 segments: automatic compaction (past 8) is off for this run.
    const server = await startBenchServer(modeToml + 'compact_segments_max = 1000\n');
    try { results.cold = await benchCold(server, seconds, flushRows); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'live') {
    // One user (root) opens every subscription here, so the per-user limit is raised for the run.
    const server = await startBenchServer(modeToml + 'live_subscriptions_per_user_max = 200000\n');
    try { results.live = await benchLive(server, seconds); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'stream') {
    const server = await startBenchServer(modeToml);
    try { results.stream = await benchStream(server, seconds, Number(arg('stream-events', '50000'))); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'alter') {
    // 20 segments per table: automatic compaction (past 8) is off for this run, as for cold.
    const server = await startBenchServer(modeToml + 'compact_segments_max = 1000\n');
    try { results.alter = await benchAlter(server, seconds, Number(arg('alter-rows', '1000000'))); } finally { await server.stop(); }
  }
  if (only === 'all' || only === 'topics') {
    const server = await startBenchServer(modeToml);
    try {
      results.topics = await benchTopics(server, seconds, Number(arg('topic-rounds', '5')), Number(arg('topic-messages', '300000')));
    } finally { await server.stop(); }
  }
  if (only === 'durability') {
    // Same writes, one fresh server per mode (or only the mode given with --durability).
    results.durability = {};
    for (const mode of durability === undefined ? MODES : [durability]) {
      const server = await startBenchServer(`durability = "${mode}"\n`);
      try { results.durability[mode] = await benchWrites(server, seconds); } finally { await server.stop(); }
    }
  }
  if (only === 'pg') {
    // Both servers stay up for the whole run; each is idle while the other is measured.
    // Another process on these 2 cores changes every figure: the load average is kept with them.
    const { loadavg, cpus: cpuList } = await import('node:os');
    const { execFileSync } = await import('node:child_process');
    results.run_context = {
      cpu_model: cpuList()[0]?.model, loadavg_at_start: loadavg().map((x) => Math.round(x * 100) / 100),
      commit: (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(); } catch { return undefined; } })(),
    };
    const pg = await startPostgres();
    try {
      results.postgres = { version: pg.version, settings: pg.settings, synchronous_commit: 'on and off, SET per session' };
      const server = await startBenchServer(modeToml);
      // On Ctrl+C / SIGTERM pg.mjs stops PostgreSQL and exits: our server and its temp dir go with it.
      const onExit = () => { try { process.kill(server.pid, 'SIGKILL'); rmSync(server.dataDir, { recursive: true, force: true }); } catch {} };
      process.on('exit', onExit);
      try {
        const parts = arg('pg-parts', '1,2,6').split(',');
        results.versus_pg = await benchWritesVersusPg(server, pg, seconds, parts);
        if (parts.includes('6')) results.versus_pg.queries = await benchQueriesVersusPg(server, pg, seconds, Number(arg('pg-rows', '1000000')));
      } finally { process.off('exit', onExit); await server.stop(); }
    } finally { await pg.stop(); }
    results.run_context.loadavg_at_end = loadavg().map((x) => Math.round(x * 100) / 100);
  }
  if (only === 'pg-realtime') {
    // Issue 15 workloads 3, 8, 9 (insert→notification vs NOTIFY and wal2json, STREAM, idle memory); not part
    // of `all`. PostgreSQL: wal_level=logical (for wal2json), room for 200 idle LISTEN connections.
    const { loadavg, cpus: cpuList } = await import('node:os');
    const { execFileSync } = await import('node:child_process');
    const la = () => loadavg().map((x) => Math.round(x * 100) / 100);
    results.run_context = {
      cpu_model: cpuList()[0]?.model, loadavg_at_start: la(),
      commit: (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(); } catch { return undefined; } })(),
    };
    // Another benchmark on these 2 cores (e.g. a second worktree's run) changes every figure: every
    // second, other `bench/run.mjs` processes are looked for and the ones seen are kept with the results.
    const others = new Set();
    const { readdirSync, readFileSync } = await import('node:fs');
    const scan = () => {
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
          if (/bench\/run\.mjs/.test(cmd) && !cmd.startsWith('timeout')) others.add(`${p}: ${cmd}`);
        } catch {}
      }
    };
    scan();
    const scanner = setInterval(scan, 1000);
    const pg = await startPostgres({ wal_level: 'logical', max_replication_slots: '4', max_wal_senders: '4', max_connections: '300' });
    try {
      results.postgres = { version: pg.version, settings: pg.settings };
      const server = await startBenchServer(modeToml + 'live_subscriptions_per_user_max = 200000\n');
      const onExit = () => { try { process.kill(server.pid, 'SIGKILL'); rmSync(server.dataDir, { recursive: true, force: true }); } catch {} };
      process.on('exit', onExit);
      try {
        results.versus_pg_realtime = await benchRealtimeVersusPg(server, pg, seconds, {
          streamEvents: Number(arg('stream-events', '50000')),
          idleConnections: Number(arg('idle-connections', '200')), idleSubsPerConnection: Number(arg('idle-subscriptions', '100')),
          parts: arg('realtime-parts', '3,8,9').split(','),
        });
      } finally { process.off('exit', onExit); await server.stop(); }
    } finally { await pg.stop(); }
    clearInterval(scanner);
    results.run_context.loadavg_at_end = la();
    results.run_context.other_benchmarks_seen_during_run = [...others];
  }
  if (only === 'pg-fanout') {
    // Issue 15, workloads 4 (fan-out), 5 (reconnect storm) and 7 (flush vs DuckDB): bench/versus-pg-fanout.mjs.
    // --fanout-connections N (default 1,000) x 10 subscriptions, --fanout-writes N[,N...] (writes/s, one run each, default 1,10,100),
    // --storm-clients N (default 500), --storm-writes N (writes/s, default 100), --storm-prefill N (hot rows in the
    // table before the storm, default 0: each resume reads the partition's hot versions), --flush-rows N (default 1M),
    // --no-pg (skip PostgreSQL's 1,000 LISTEN connections), --parts fanout,storm,flush (default all; flush alone needs no PostgreSQL).
    const { loadavg, cpus: cpuList } = await import('node:os');
    const { execFileSync } = await import('node:child_process');
    const sh = (cmd) => { try { return execFileSync('sh', ['-c', cmd]).toString().trim(); } catch { return undefined; } };
    results.run_context = {
      cpu_model: cpuList()[0]?.model, loadavg_at_start: loadavg().map((x) => Math.round(x * 100) / 100),
      commit: sh('git rev-parse --short HEAD'), ulimit_n: sh('ulimit -n'),
    };
    const opts = {
      seconds, fanoutConnections: Number(arg('fanout-connections', '1000')), fanoutWrites: arg('fanout-writes', '1,10,100').split(',').map(Number),
      stormClients: Number(arg('storm-clients', '500')), stormWrites: Number(arg('storm-writes', '100')), stormPrefill: Number(arg('storm-prefill', '0')),
      stormBeforeMs: 3000, stormAfterMs: 3000, flushRows, parts: new Set(arg('parts', 'fanout,storm,flush').split(',')),
    };
    // Each side holds one socket per connection in this process, plus the server's end.
    const fds = Number(results.run_context.ulimit_n);
    let pg;
    if (process.argv.includes('--no-pg')) opts.pgSkipReason = '--no-pg';
    else if (!opts.parts.has('fanout')) opts.pgSkipReason = 'fan-out not among --parts';
    else if (fds && fds < 2 * opts.fanoutConnections + 500) opts.pgSkipReason = `ulimit -n ${fds} too low for ${opts.fanoutConnections} connections on each side`;
    else {
      pg = await startPostgres({ max_connections: String(opts.fanoutConnections + 50) });
      results.postgres = { version: pg.version, settings: pg.settings };
    }
    try {
      const server = await startBenchServer(modeToml + `live_subscriptions_per_user_max = ${opts.fanoutConnections * 10 + opts.stormClients + 1000}\n`);
      const onExit = () => { try { process.kill(server.pid, 'SIGKILL'); rmSync(server.dataDir, { recursive: true, force: true }); } catch {} };
      process.on('exit', onExit);
      try { results.versus_pg_fanout = await benchFanoutVersusPg(server, pg, opts); } finally { process.off('exit', onExit); await server.stop(); }
    } finally { await pg?.stop(); }
    results.run_context.loadavg_at_end = loadavg().map((x) => Math.round(x * 100) / 100);
  }
  if (only === 'backup') {
    const { loadavg } = await import('node:os');
    const la = () => loadavg().map((x) => Math.round(x * 100) / 100);
    results.run_context = { loadavg_at_start: la() };
    const server = await startBenchServer(modeToml);
    try { results.backup = await benchBackup(server, Number(arg('backup-mb', '1024'))); } finally { await server.stop(); }
    results.run_context.loadavg_at_end = la();
  }
  if (only === 'sdk') {
    const { loadavg } = await import('node:os');
    const la = () => loadavg().map((x) => Math.round(x * 100) / 100);
    results.run_context = { loadavg_at_start: la() };
    const server = await startBenchServer(modeToml);
    try { results.sdk = await benchSdk(server, { seconds }); } finally { await server.stop(); }
    results.run_context.loadavg_at_end = la();
  }
  if (only === 'memory') {
    const { loadavg } = await import('node:os');
    const la = () => loadavg().map((x) => Math.round(x * 100) / 100);
    results.run_context = { loadavg_at_start: la() };
    results.memory = [];
    for (const kind of arg('memory-kinds', 'shared,user').split(',')) {
      // The first query loads 1M rows into the hot mirror: on a busy machine that can pass the default 30 s limit.
      const server = await startBenchServer(modeToml + 'query_timeout_ms = 600000\n');
      try {
        results.memory.push(await benchMemory(server, {
          kind, rows: Number(arg('memory-rows', '1000000')), seconds, idleSeconds: Number(arg('memory-idle', '10')),
          mirrorFirst: process.argv.includes('--memory-mirror-first'),
        }));
      } finally { await server.stop(); }
    }
    results.run_context.loadavg_at_end = la();
  }
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
