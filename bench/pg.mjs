// A throw-away PostgreSQL cluster for the side-by-side benchmarks: initdb into a temp dir, started
// with pg_ctl on a free port (TCP on 127.0.0.1, socket in the temp dir), stopped and deleted at the
// end, on Ctrl+C and on errors. Never touches a system cluster.
// Also: the CPU (utime + stime) of a process tree read from /proc, used for both servers.
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, readdirSync, existsSync, chownSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ; 100 on Linux). */
const TICKS = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; }
})();

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces): [state, ppid, ...]. */
function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

/**
 * CPU µs used so far by `pid` and every live descendant (utime + stime), plus the root's cutime + cstime,
 * which accumulate children that exited and were reaped (PostgreSQL backends of closed connections).
 * A child that exited but was not yet reaped is counted by neither for a moment; the runs measured here
 * keep their connections open, so that does not happen inside a measurement.
 */
export function treeCpuMicros(pid) {
  const root = statFields(pid);
  if (!root) throw new Error(`process ${pid} is gone`);
  // stat fields 14..17 (utime, stime, cutime, cstime) are indices 11..14 after the name.
  let ticks = Number(root[11]) + Number(root[12]) + Number(root[13]) + Number(root[14]);
  for (const p of processTree(pid).slice(1)) {
    const f = statFields(p);
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks / TICKS) * 1e6;
}

/** `n` connections to a cluster from startPostgres(), each with `SET synchronous_commit = on|off`. */
export async function pgClients(pg, n, syncCommit) {
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = await pg.connect();
    await c.query(`SET synchronous_commit = ${syncCommit}`);
    clients.push(c);
  }
  return clients;
}

/** `pid` and every live descendant (pids as strings, `pid` first). */
export function processTree(pid) {
  const children = new Map(); // ppid -> [pid]
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(name);
    if (!f) continue;
    const ppid = f[1];
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(name);
  }
  const out = [];
  const stack = [String(pid)];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** VmRSS and Pss (smaps_rollup) of one process, in KiB; Pss splits shared pages among their users. */
export function memKb(pid) {
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  let pss = 0;
  try { pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0); } catch {}
  return { rss, pss };
}

/** RSS and PSS summed over `pid` and its descendants, KiB (processes that exit meanwhile are skipped). */
export function treeMemKb(pid) {
  let rss = 0, pss = 0, processes = 0;
  for (const p of processTree(pid)) {
    try { const m = memKb(p); rss += m.rss; pss += m.pss; processes++; } catch {}
  }
  return { rss, pss, processes };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** initdb/pg_ctl/postgres: the newest /usr/lib/postgresql/<v>/bin, else PATH. */
export function findPgBin() {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return join(which.stdout.trim(), '..');
  throw new Error('PostgreSQL not found: apt-get install -y postgresql (the bench never uses a system cluster)');
}

/**
 * initdb refuses to run as root: then the cluster belongs to the `postgres` system user (made by the
 * Debian package), else `nobody`; the temp dir is chowned to it. As another user, it runs as that user.
 */
function runAsUser() {
  if (process.getuid() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (r.status === 0) {
      const uid = Number(r.stdout.trim());
      const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
      return { name, uid, gid };
    }
  }
  throw new Error('running as root and neither a postgres nor a nobody user exists');
}

const live = new Set(); // clusters to stop if the process is interrupted
function stopAllSync() {
  for (const c of live) c.stopSync();
}
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', stopAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      stopAllSync();
      process.exit(130);
    });
  }
}

/**
 * Starts a cluster. `settings` are extra `-c name=value` server settings (fsync and synchronous_commit
 * default to on, PostgreSQL's defaults). Returns { port, pid (the postmaster), version, settings,
 * connect(), cpuMicros(), stop() }.
 */
export async function startPostgres(settings = {}) {
  const bin = findPgBin();
  const user = runAsUser();
  const base = mkdtempSync(join(tmpdir(), 'kalamdb-bench-pg-'));
  const dataDir = join(base, 'data');
  const sockDir = join(base, 'sock');
  mkdirSync(sockDir);
  if (user) {
    chownSync(base, user.uid, user.gid);
    chownSync(sockDir, user.uid, user.gid);
  }
  chmodSync(base, 0o755);
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};
  const run = (cmd, args) => {
    const r = spawnSync(join(bin, cmd), args, { ...asUser, encoding: 'utf8', cwd: base, env: { ...process.env, LC_ALL: 'C' } });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const cluster = {
    stopped: false,
    stopSync() {
      if (cluster.stopped) return;
      cluster.stopped = true;
      live.delete(cluster);
      if (existsSync(join(dataDir, 'postmaster.pid'))) {
        spawnSync(join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w'], { ...asUser, stdio: 'ignore' });
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
  hookExit();
  live.add(cluster);
  try {
    run('initdb', ['-D', dataDir, '-U', 'bench', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    const port = await freePort();
    const all = {
      fsync: 'on', synchronous_commit: 'on', listen_addresses: '127.0.0.1', max_connections: '100',
      ...settings,
    };
    const opts = [`-p ${port}`, `-k ${sockDir}`, ...Object.entries(all).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
    run('pg_ctl', ['start', '-D', dataDir, '-w', '-t', '60', '-l', join(base, 'postgres.log'), '-o', opts]);
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const version = execFileSync(join(bin, 'postgres'), ['--version']).toString().trim();
    const { default: pg } = await import('pg');
    const connect = async () => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'bench', database: 'postgres' });
      await client.connect();
      return client;
    };
    return {
      port, pid, version, settings: all, connect,
      cpuMicros: () => treeCpuMicros(pid),
      stop: async () => cluster.stopSync(),
    };
  } catch (error) {
    cluster.stopSync();
    throw error;
  }
}
