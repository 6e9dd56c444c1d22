/**
 * Start-up mistakes against the real server process: a busy port, a data dir in use or not
 * writable, a bad setting each give one line on stderr and exit 1, with nothing created; a root
 * password that no longer matches is reported; reset-root-password works offline and is refused
 * while a server runs on the data dir.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer, ROOT_PASSWORD } from './harness.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-startup-'));
  dirs.push(dir);
  return dir;
}

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs main.js to its exit (env without KALAMDB_ROOT_PASSWORD unless given); `input` is piped to stdin. */
function run(args: string[], env: Record<string, string> = {}, input?: string): Promise<Run> {
  const base = { ...process.env };
  delete base.KALAMDB_ROOT_PASSWORD;
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...base, KALAMDB_LOG_LEVEL: 'info', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(input ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main.js ${args.join(' ')} did not exit:\n${stdout}${stderr}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit 1 and exactly one line on stderr, matching `pattern`, with no stack trace and no generated password. */
function assertOneLineFailure(out: Run, pattern: RegExp): void {
  const context = `stdout:\n${out.stdout}\nstderr:\n${out.stderr}`;
  assert.equal(out.code, 1, context);
  const lines = out.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, context);
  assert.match(lines[0]!, /^kalamdb: /, context);
  assert.match(lines[0]!, pattern, context);
  assert.doesNotMatch(out.stderr, /\n\s+at /, context);
  assert.doesNotMatch(out.stdout + out.stderr, /Generated password|created root user/, context);
}

function occupyPort(): Promise<{ port: number; blocker: Server }> {
  return new Promise((resolve) => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1', () => resolve({ port: (blocker.address() as { port: number }).port, blocker }));
  });
}

async function canLogIn(server: TestServer, password: string): Promise<boolean> {
  const res = await server.fetch('/v1/api/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'root', password }),
  });
  await res.text();
  return res.status === 200;
}

test('busy port, second server, reset-root-password and the root password warning on one data dir', async () => {
  const dataDir = join(tempDir(), 'data');

  // A busy port: one line, exit 1, and no root account (so no password nobody has).
  const { port, blocker } = await occupyPort();
  try {
    assertOneLineFailure(await run(['--port', String(port), '--data-dir', dataDir]), new RegExp(`port ${port} .*already in use.*--port`));
    // Nothing was created: the port is checked before the data dir is made or opened.
    assert.equal(existsSync(dataDir), false, 'the failed start created the data dir');
  } finally {
    blocker.close();
  }

  // The next start creates root with the password set then: proof the failed start created none.
  let server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    assert.ok(await canLogIn(server, ROOT_PASSWORD));

    // A second server on the same data dir (another port): one line naming the lock.
    assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir], { KALAMDB_ROOT_PASSWORD: 'another-password' }),
      /data dir .* is in use by another KalamDB process.*Stop the other server/);

    // reset-root-password while the server runs: refused.
    const refused = await run(['reset-root-password', '--data-dir', dataDir], { KALAMDB_ROOT_PASSWORD: 'new-root-password' });
    assertOneLineFailure(refused, /server is running on data dir.*Stop it first/);
    assert.ok(await canLogIn(server, ROOT_PASSWORD), 'the refused reset changed nothing');
  } finally {
    await server.stop();
  }

  // On the stopped server it works.
  const reset = await run(['reset-root-password', '--data-dir', dataDir], { KALAMDB_ROOT_PASSWORD: 'new-root-password' });
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /Changed the password of 'root'/);

  // Starting with the old KALAMDB_ROOT_PASSWORD: a warning, and the password stays the reset one.
  server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    const output = server.output.join('');
    assert.match(output, /"level":"warn","msg":"KALAMDB_ROOT_PASSWORD \(root_password\) does not match root's password and was not applied/);
    assert.ok(await canLogIn(server, 'new-root-password'));
    assert.ok(!(await canLogIn(server, ROOT_PASSWORD)));
  } finally {
    await server.stop();
  }

  // The password from stdin (no KALAMDB_ROOT_PASSWORD), as `npm run reset-root-password` with a pipe; a matching start warns of nothing.
  const piped = await run(['--reset-root-password', '--data-dir', dataDir], {}, 'piped-root-password\n');
  assert.equal(piped.code, 0, piped.stderr);
  server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: 'piped-root-password' });
  try {
    assert.ok(await canLogIn(server, 'piped-root-password'));
    assert.doesNotMatch(server.output.join(''), /does not match/);
  } finally {
    await server.stop();
  }
});

test('reset-root-password refuses a short password and creates root on an empty data dir', async () => {
  const dataDir = join(tempDir(), 'data');
  assertOneLineFailure(await run(['reset-root-password', '--data-dir', dataDir], { KALAMDB_ROOT_PASSWORD: 'short' }), /at least 8 characters/);
  const created = await run(['reset-root-password', '--data-dir', dataDir], { KALAMDB_ROOT_PASSWORD: 'fresh-root-password' });
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /Created user 'root'/);
});

test('a data dir that cannot be created gives one line and exit 1', async () => {
  const file = join(tempDir(), 'a-file');
  writeFileSync(file, 'not a directory');
  assertOneLineFailure(await run(['--port', '0', '--data-dir', join(file, 'data')]), /data dir .* is not writable \(ENOTDIR\).*--data-dir/);
});

test('a fresh data dir whose storage/ is a volume of its own (lost+found) starts', async () => {
  const dataDir = join(tempDir(), 'data');
  mkdirSync(join(dataDir, 'storage', 'lost+found'), { recursive: true });
  const server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  await server.stop();
});

test('an exports path that is a file gives one line and exit 1', async () => {
  const dataDir = join(tempDir(), 'data');
  const server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  await server.stop();
  rmSync(join(dataDir, 'exports'), { recursive: true, force: true });
  writeFileSync(join(dataDir, 'exports'), 'not a directory');
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /exports cannot hold user exports \(EEXIST\).*Move away whatever is at that path/);
});

test('bad configuration gives one line and exit 1', async () => {
  const dataDir = join(tempDir(), 'data');
  assertOneLineFailure(await run(['--port', 'abc', '--data-dir', dataDir]), /bad configuration: --port: 'abc' is not a port/);
  const config = join(tempDir(), 'bad.toml');
  writeFileSync(config, 'http_headers_timeout_ms = 5000\nhttp_request_timeout_ms = 1000\n');
  assertOneLineFailure(await run(['--config', config, '--data-dir', dataDir]), /bad configuration: http_headers_timeout_ms/);
  writeFileSync(config, 'port = [\n');
  // The file is named: the parser's own message says only where in it.
  assertOneLineFailure(await run(['--config', config, '--data-dir', dataDir]), new RegExp(`bad configuration: ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  assertOneLineFailure(await run(['--config', join(tempDir(), 'missing.toml')]), /bad configuration: .*ENOENT/);
  // A root password too short to be accepted: said before the data dir is made (it was a stack trace after).
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir], { KALAMDB_ROOT_PASSWORD: 'short' }), /bad configuration: root_password \(KALAMDB_ROOT_PASSWORD\) must be at least 8 characters/);
  assert.equal(existsSync(dataDir), false, 'nothing created');
});

test('a data dir that held a database never starts empty: a damaged jwt-secret, a hot store that lost its catalog or is gone', async () => {
  const dataDir = join(tempDir(), 'data');
  let server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    await server.ok('CREATE NAMESPACE keep');
    await server.ok('CREATE SHARED TABLE keep.t (id BIGINT PRIMARY KEY, body TEXT)');
    await server.ok("INSERT INTO keep.t SELECT i, 'row ' || i FROM range(1, 101) AS r(i)");
    await server.flushAndWait('keep.t');
    await server.ok("INSERT INTO keep.t VALUES (101, 'hot')");
  } finally {
    await server.stop();
  }
  const rocks = join(dataDir, 'rocksdb');
  const kept = join(dataDir, 'rocksdb-before-open');

  // An empty (cut) token secret: refused, not a server whose every login fails or whose tokens anyone forges.
  const secret = readFileSync(join(dataDir, 'jwt-secret'));
  writeFileSync(join(dataDir, 'jwt-secret'), '');
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /jwt-secret is damaged: it holds 0 characters.*Restore it from a backup/);
  writeFileSync(join(dataDir, 'jwt-secret'), secret);

  // A MANIFEST cut in half: RocksDB opens an older (here: empty) store and deletes the files it no
  // longer lists. The start is refused, and the files are kept as they were before it.
  const manifest = readdirSync(rocks).find((f) => f.startsWith('MANIFEST-'))!;
  const whole = readFileSync(join(rocks, manifest));
  writeFileSync(join(rocks, manifest), whole.subarray(0, Math.floor(whole.length / 2)));
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /holds a database \(jwt-secret\) but its hot store .* opened without its catalog.*kept in .*rocksdb-before-open/);
  const saved = join(dataDir, readdirSync(dataDir).find((f) => f.startsWith('rocksdb-before-open-'))!);
  assert.ok(readdirSync(saved).some((f) => f.endsWith('.sst') || f.endsWith('.log')), 'the store\'s files were kept');
  // A retry refuses again and leaves that copy alone.
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /opened without its catalog/);
  assert.ok(readdirSync(saved).some((f) => f.endsWith('.sst') || f.endsWith('.log')), 'the copy survived the retry');
  for (const extra of readdirSync(dataDir).filter((f) => f.startsWith('rocksdb-before-open-') && join(dataDir, f) !== saved)) rmSync(join(dataDir, extra), { recursive: true });
  // Those files, put back with the whole MANIFEST, are the database as it was.
  rmSync(rocks, { recursive: true });
  renameSync(saved, rocks);
  writeFileSync(join(rocks, manifest), whole);
  server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    assert.deepEqual(await server.rows('SELECT count(*) AS n, max(body) AS last FROM keep.t WHERE id > 100'), [{ n: '1', last: 'hot' }]);
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM keep.t'), [{ n: '101' }]);
  } finally {
    await server.stop();
  }
  assert.equal(existsSync(kept), false, 'a good open removes the kept links');
  // A second server refused by the lock leaves no links behind (they would pin the running one's files).
  server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /is in use by another KalamDB process/);
    assert.equal(existsSync(kept), false, 'a refused second start removes its links');
  } finally {
    await server.stop();
  }

  // The hot store removed: no new empty store beside the old tables' files.
  rmSync(rocks, { recursive: true });
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /holds a database \(jwt-secret\) but its hot store .* is missing.*Restore the data dir from a backup/);
  assert.equal(existsSync(join(rocks, 'CURRENT')), false, 'nothing was created');
});

test('a hot store that lost CURRENT, with the token secret from the environment and nothing flushed: refused with the way back, every file kept', async () => {
  // A fault review: the first start failed, the second opened an empty database and RocksDB deleted the
  // table file that held every row (no jwt-secret file and no cold files said a database lived here).
  const dataDir = join(tempDir(), 'data');
  const env = { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD, KALAMDB_JWT_SECRET: 'a-secret-from-the-environment-0123456789' };
  const server = await TestServer.start(dataDir, env);
  await server.ok('CREATE NAMESPACE keep');
  await server.ok('CREATE SHARED TABLE keep.t (id BIGINT PRIMARY KEY)');
  await server.ok('INSERT INTO keep.t VALUES (1), (2)');
  await server.stop();
  const rocks = join(dataDir, 'rocksdb');
  assert.equal(existsSync(join(dataDir, 'jwt-secret')), false, 'the secret came from the environment');
  const current = readFileSync(join(rocks, 'CURRENT'), 'utf8');
  rmSync(join(rocks, 'CURRENT'));
  const files = readdirSync(rocks).sort();
  for (let i = 0; i < 2; i++) {
    assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir], env),
      /holds a database \(table and log files under rocksdb\/\) but its hot store .* lost its CURRENT file .*write that name and a newline into it/);
  }
  assert.deepEqual(readdirSync(rocks).sort(), files, 'nothing created or deleted');
  // The way back the message gives.
  writeFileSync(join(rocks, 'CURRENT'), current);
  const back = await TestServer.start(dataDir, env);
  try {
    assert.deepEqual(await back.rows('SELECT id FROM keep.t ORDER BY id'), [{ id: '1' }, { id: '2' }]);
  } finally {
    await back.stop();
  }
});

test('damaged hot-store data stops the start with one line that says so, not a stack trace', async () => {
  // A fault review: a flipped block of the table file, or a garbled catalog value, stopped the start
  // with RocksDB's raw error or a bare SyntaxError that named no key.
  const dataDir = join(tempDir(), 'data');
  const server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  await server.ok('CREATE NAMESPACE dmg');
  await server.ok(`CREATE SHARED TABLE dmg.t (id BIGINT PRIMARY KEY, v TEXT)`);
  await server.ok(`INSERT INTO dmg.t SELECT range, repeat('x', 100) FROM range(2000)`);
  await server.stop();
  // The next open replays the WAL into a table file.
  await server.launch();
  await server.stop();
  const rocks = join(dataDir, 'rocksdb');
  const tables = readdirSync(rocks).filter((f) => f.endsWith('.sst')).map((f) => join(rocks, f));
  assert.ok(tables.length > 0, 'the rows are in a table file');
  const saved = tables.map((f) => readFileSync(f));
  for (const f of tables) {
    const bytes = readFileSync(f);
    for (let i = 100; i < 108; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(f, bytes);
  }
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /the hot store's files \(rocksdb\/ in the data dir\) are damaged or missing: .*Restore the data dir from a backup/);
  tables.forEach((f, i) => writeFileSync(f, saved[i]!));
  const back = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    assert.deepEqual(await back.rows('SELECT count(*) AS n FROM dmg.t'), [{ n: '2000' }]);
  } finally {
    await back.stop();
  }
  // A garbled catalog value: one of history (an audit row) is left out and logged; a table's stops the start, naming it.
  const { default: RocksDB } = await import('rocksdb-native');
  const poke = async (prefix: string): Promise<string> => {
    const db = new RocksDB(rocks);
    await db.ready();
    try {
      for await (const { key } of db.iterator({ gte: Buffer.from(`\u0000${prefix}`), lt: Buffer.from(`\u0000${prefix}\uffff`) })) {
        const batch = db.write();
        batch.tryPut(key, Buffer.from('{"garbled'));
        await batch.flush();
        batch.destroy();
        return key.subarray(1).toString('utf8');
      }
      throw new Error(`no catalog key starts with ${prefix}`);
    } finally {
      await db.close();
    }
  };
  const audit = await poke('audit:');
  const afterAudit = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    assert.deepEqual(await afterAudit.rows('SELECT count(*) AS n FROM dmg.t'), [{ n: '2000' }]);
    assert.match(afterAudit.output.join(''), new RegExp(`damaged audit or job entries left out of the catalog.*${audit}`));
  } finally {
    await afterAudit.stop();
  }
  const table = await poke('table:');
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), new RegExp(`the catalog entry '${table}' in the hot store is damaged .*Restore the data dir from a backup`));
});

/** Replaces (or adds) catalog entries of a stopped server's hot store; returns each key's old value. */
async function putCatalog(dataDir: string, entries: Record<string, string>): Promise<Record<string, Buffer | null>> {
  const { default: RocksDB } = await import('rocksdb-native');
  const db = new RocksDB(join(dataDir, 'rocksdb'));
  await db.ready();
  try {
    const old: Record<string, Buffer | null> = {};
    const batch = db.write();
    for (const [key, value] of Object.entries(entries)) {
      old[key] = await db.get(Buffer.from(`\u0000${key}`));
      batch.tryPut(Buffer.from(`\u0000${key}`), Buffer.from(value));
    }
    await batch.flush();
    batch.destroy();
    return old;
  } finally {
    await db.close();
  }
}

test('catalog entries that are JSON but not what their key holds: a job row is left out, a table id counter is raised, others name themselves', async () => {
  // A fault review: a job row of the wrong shape made every read of system.jobs a 500, a counter set
  // back gave a new table the id (and the rows and files) of an existing one, and a bad max_seq or a
  // table record without columns was a stack trace.
  const dataDir = join(tempDir(), 'data');
  const server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  await server.ok('CREATE NAMESPACE cat');
  await server.ok('CREATE SHARED TABLE cat.a (id BIGINT PRIMARY KEY, v TEXT)');
  await server.ok("INSERT INTO cat.a VALUES (1, 'a1')");
  await server.flushAndWait('cat.a');
  await server.stop();
  await putCatalog(dataDir, { 'job:FL-1': '{"job_id":"FL-1","status":"running","created_at":"x"}', 'meta:next_table_id': '1' });
  const back = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    const jobs = await back.sql('SELECT job_id, status FROM system.jobs');
    assert.equal(jobs.status, 200, JSON.stringify(jobs.body));
    assert.match(back.output.join(''), /malformed job entries left out of system\.jobs.*job:FL-1/);
    await back.ok('CREATE SHARED TABLE cat.b (id BIGINT PRIMARY KEY, v TEXT)');
    await back.ok("INSERT INTO cat.b VALUES (1, 'b1')");
    assert.deepEqual(await back.rows('SELECT v FROM cat.a'), [{ v: 'a1' }]);
    assert.deepEqual(await back.rows('SELECT v FROM cat.b'), [{ v: 'b1' }]);
    const ids = (await back.rows("SELECT table_name, table_id FROM system.tables WHERE namespace_id = 'cat'")).map((r) => String(r.table_id));
    assert.equal(new Set(ids).size, 2, `two tables, two ids: ${ids.join(', ')}`);
  } finally {
    await back.stop();
  }
  const maxSeq = await putCatalog(dataDir, { 'meta:max_seq': '"abc"' });
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /the catalog entry 'meta:max_seq' in the hot store is damaged \(not a _seq\).*Restore the data dir from a backup/);
  await putCatalog(dataDir, { 'meta:max_seq': maxSeq['meta:max_seq']!.toString() });
  await putCatalog(dataDir, { 'table:cat.a': '{"id": 1}' });
  assertOneLineFailure(await run(['--port', '0', '--data-dir', dataDir]), /the catalog entry 'table:cat\.a' in the hot store is damaged \(not a table definition\)/);
});

test('WAL records dropped at recovery are logged as an error, not only in RocksDB\'s own LOG', async () => {
  const dataDir = join(tempDir(), 'data');
  const server = await TestServer.start(dataDir, { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD });
  try {
    await server.ok('CREATE NAMESPACE walr');
    await server.ok('CREATE SHARED TABLE walr.t (id BIGINT PRIMARY KEY, body TEXT)');
    for (let i = 1; i <= 40; i++) await server.ok(`INSERT INTO walr.t VALUES (${i}, 'row ${i}')`);
    await server.kill();
    // Bytes overwritten in the middle of the WAL: the replay stops at the damaged record.
    const rocks = join(dataDir, 'rocksdb');
    const wal = join(rocks, readdirSync(rocks).filter((f) => f.endsWith('.log')).sort().at(-1)!);
    const bytes = readFileSync(wal);
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0x5a;
    writeFileSync(wal, bytes);
    const logStart = server.output.length;
    await server.launch();
    const recovered = Number((await server.rows('SELECT count(*) AS n FROM walr.t'))[0]!.n);
    assert.ok(recovered < 40, `recovered ${recovered}`);
    const line = server.output.slice(logStart).join('').split('\n').find((l) => l.includes('WAL recovery dropped damaged records'));
    assert.ok(line !== undefined, server.output.slice(logStart).join(''));
    const entry = JSON.parse(line) as { level: string; bytes_dropped: number; drops: { file: string; reason: string }[] };
    assert.equal(entry.level, 'error');
    assert.ok(entry.bytes_dropped > 0);
    assert.match(entry.drops[0]!.reason, /Corruption/);
  } finally {
    await server.stop();
  }
});
