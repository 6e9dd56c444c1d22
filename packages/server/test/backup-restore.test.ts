/**
 * BACKUP DATABASE / RESTORE DATABASE / SHOW BACKUP and `main.js restore` end to end: a backup taken
 * while writes and policy flushes run is restored into a fresh data dir, a server started on it
 * holds every table row for row (hot and cold, USER and SHARED), its users log in, and a
 * subscription resuming from a `_seq` taken before the backup gets exactly the later rows. Damaged
 * backups are refused naming the file; path rules and roles are checked; RESTORE on a running
 * server is applied at its next start.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer, assertError, eventually } from './harness.js';
import { LiveClient } from './ws-client.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');

function jobId(message: string | undefined): string {
  const id = /Job ID: ([A-Z]+-\d+)/.exec(message ?? '')?.[1];
  assert.ok(id !== undefined, `no job id in '${message}'`);
  return id;
}

/** Runs `main.js restore ...`; resolves with the exit code and output. */
function runRestore(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'restore', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Flips one byte in the middle of a file (a damaged disk or copy). */
function damage(path: string): void {
  const bytes = readFileSync(path);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(path, bytes);
}

describe('backup and restore', () => {
  let server: TestServer;
  let restored: TestServer | null = null;
  const work = mkdtempSync(join(tmpdir(), 'kalamdb-backup-test-'));
  const backupDir = join(work, 'backup-1');
  const alice = { user: 'alice', password: 'alice-password-1' };
  const bob = { user: 'bob', password: 'bob-password-1' };
  let resumeFrom = '';
  let writerAcked: number[] = [];
  let ackedBeforeBackup = 0;

  const waitJob = async (id: string, on = server): Promise<Record<string, unknown>> => {
    return eventually(`job ${id}`, async () => {
      const [job] = await on.rows(`SELECT * FROM system.jobs WHERE job_id = '${id}'`);
      return job !== undefined && job.status !== 'running' ? job : null;
    }, 60_000);
  };
  const flush = async (table: string): Promise<void> => {
    const [res] = await server.ok(`STORAGE FLUSH TABLE ${table}`);
    assert.equal((await waitJob(jobId(res!.message))).status, 'completed');
  };

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE bk');
    await server.createUser('alice', 'user', alice.password);
    await server.createUser('bob', 'user', bob.password);
    await server.ok('CREATE USER TABLE bk.notes (id BIGINT PRIMARY KEY, body TEXT, score DOUBLE)');
    await server.ok("CREATE SHARED TABLE bk.board (id BIGINT PRIMARY KEY, title TEXT, tags TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    // Cold rows, then hot updates and deletes over them, then new hot rows.
    for (let i = 1; i <= 40; i++) {
      await server.ok(`INSERT INTO bk.notes VALUES (${i}, 'alice-${i}', ${i}.5)`, { auth: alice });
      await server.ok(`INSERT INTO bk.notes VALUES (${i}, 'bob-${i}', ${i * 2})`, { auth: bob });
    }
    await server.ok(`INSERT INTO bk.board VALUES ${Array.from({ length: 120 }, (_, i) => `(${i + 1}, 'title ${i + 1}', 'x')`).join(', ')}`);
    await flush('bk.notes');
    await flush('bk.board');
    // From here on the writer's rows are flushed by the policy while it writes (and during the backup).
    await server.ok("ALTER TABLE bk.board SET FLUSH_POLICY 'rows:40'");
    await server.ok("UPDATE bk.notes SET body = 'alice-updated' WHERE id <= 5", { auth: alice });
    await server.ok('DELETE FROM bk.notes WHERE id BETWEEN 6 AND 8', { auth: bob });
    await server.ok("UPDATE bk.board SET title = 'changed' WHERE id = 7");
    await server.ok('DELETE FROM bk.board WHERE id = 9');
    for (let i = 41; i <= 50; i++) await server.ok(`INSERT INTO bk.notes VALUES (${i}, 'alice-${i}', 0)`, { auth: alice });
    // The position a subscriber saw before the backup; the rows after it are the ones it resumes with.
    const c = await LiveClient.connect(server.url, alice);
    const ack = await c.subscribeOk('n', 'SELECT * FROM bk.notes');
    resumeFrom = String(ack.batch_control!.last_seq_id);
    c.terminate();
    for (let i = 51; i <= 55; i++) await server.ok(`INSERT INTO bk.notes VALUES (${i}, 'later-${i}', 1)`, { auth: alice });
    await server.ok("UPDATE bk.notes SET body = 'later-update' WHERE id = 1", { auth: alice });
  });
  after(async () => {
    await restored?.dispose();
    await server.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('BACKUP DATABASE runs as a job with progress while writes and policy flushes go on', async () => {
    // One writer, one row at a time: the rows a consistent snapshot holds are a prefix of its rows.
    let writing = true;
    const writer = (async () => {
      for (let n = 1000; writing; n++) {
        await server.ok(`INSERT INTO bk.board VALUES (${n}, 'w${n}', '${'y'.repeat(200)}')`);
        writerAcked.push(n);
      }
    })();
    await eventually('writer running', async () => writerAcked.length >= 50, 60_000);
    ackedBeforeBackup = writerAcked.length;
    const [res] = await server.ok(`BACKUP DATABASE TO '${backupDir}'`);
    assert.match(res!.message!, new RegExp(`^Database backup started to '${backupDir}'\\. Job ID: JB-\\d+$`));
    const job = await waitJob(jobId(res!.message));
    // Rows acknowledged after the job completed are certainly after the snapshot.
    const ackedAtCompletion = writerAcked.length;
    await eventually('writer past the backup', async () => writerAcked.length >= ackedAtCompletion + 20, 60_000);
    writing = false;
    await writer;
    writerAcked = [...writerAcked];
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.job_type, 'backup');
    assert.equal(job.progress, 1);
    assert.match(String(job.message), /Backup written to/);
    const result = JSON.parse(String(job.result)) as { files: number; bytes: number; cold_rows: number };
    assert.ok(result.files >= 5 && result.bytes > 0 && result.cold_rows > 0, JSON.stringify(result));
    // Policy flushes ran during the writes (rows:40), around the snapshot (and compactions past 8 segments).
    const flushes = await server.rows("SELECT count(*) AS n FROM system.jobs WHERE job_type = 'flush' AND table_name = 'board' AND status = 'completed'");
    assert.ok(Number(flushes[0]!.n) >= 2, JSON.stringify(flushes));
    for (const f of ['backup.json', 'checksums.sha256', 'rocksdb/kv-000001.bin']) assert.ok(existsSync(join(backupDir, f)), f);
    assert.ok(!existsSync(join(backupDir, '.in-progress')));
    assert.equal(statSync(backupDir).mode & 0o777, 0o700, 'only the server\'s account enters a backup (it holds hashes and secrets)');
  });

  it('SHOW BACKUP describes it and checks every checksum', async () => {
    const [row] = await server.rows(`SHOW BACKUP '${backupDir}'`);
    assert.equal(row!.backup_path, backupDir);
    assert.equal(row!.verified, true);
    assert.equal(row!.problem, null);
    assert.equal(row!.server_version, '0.1.0');
    assert.equal(row!.tables, '2');
    assert.ok(Number(row!.cold_rows) > 0 && Number(row!.bytes) > 0 && Number(row!.files) > 0, JSON.stringify(row));
    assert.ok(!Number.isNaN(Date.parse(String(row!.created_at))));
  });

  it('main.js restore into a fresh data dir, then a server on it holds every row and its users log in', async () => {
    const dataDir = join(work, 'restored');
    const out = await runRestore(['--from', backupDir, '--data-dir', dataDir]);
    assert.equal(out.code, 0, out.stderr);
    const summary = JSON.parse(out.stdout) as { kv_records: number; cold_files: number };
    assert.ok(summary.kv_records > 0 && summary.cold_files > 0, out.stdout);
    restored = await TestServer.start(dataDir);
    // USER table, each user's own partition (hot and cold, updates and deletes), through their logins.
    for (const who of [alice, bob]) {
      const original = await server.rows('SELECT id, body, score, _seq FROM bk.notes ORDER BY id', { auth: who });
      const copy = await restored.rows('SELECT id, body, score, _seq FROM bk.notes ORDER BY id', { auth: who });
      assert.ok(original.length > 30);
      assert.deepEqual(copy, original);
    }
    // SHARED table: the rows from before the writer exactly; the writer's rows a prefix of what it wrote.
    const original = await server.rows('SELECT id, title, tags, _seq FROM bk.board WHERE id < 1000 ORDER BY id');
    assert.deepEqual(await restored.rows('SELECT id, title, tags, _seq FROM bk.board WHERE id < 1000 ORDER BY id'), original);
    const written = (await restored.rows('SELECT id FROM bk.board WHERE id >= 1000 ORDER BY id')).map((r) => Number(r.id));
    assert.ok(written.length >= ackedBeforeBackup, `${written.length} >= ${ackedBeforeBackup}`);
    assert.ok(written.length < writerAcked.length, 'rows written after the backup are not in it');
    assert.deepEqual(written, writerAcked.slice(0, written.length), 'a consistent snapshot holds a prefix of the writer\'s rows');
    const full = await server.rows(`SELECT id, title, tags, _seq FROM bk.board WHERE id >= 1000 AND id < ${1000 + written.length} ORDER BY id`);
    assert.deepEqual(await restored.rows('SELECT id, title, tags, _seq FROM bk.board WHERE id >= 1000 ORDER BY id'), full);
    // Users and the catalog came along; the restored server accepts writes and flushes.
    assert.deepEqual(
      await restored.rows('SELECT user_id, role FROM system.users ORDER BY user_id'),
      await server.rows('SELECT user_id, role FROM system.users ORDER BY user_id'),
    );
    await restored.ok("INSERT INTO bk.notes VALUES (900, 'after restore', 1)", { auth: bob });
    const [res] = await restored.ok('STORAGE FLUSH TABLE bk.notes');
    assert.equal((await waitJob(jobId(res!.message), restored)).status, 'completed');
    assert.equal((await restored.rows('SELECT body FROM bk.notes WHERE id = 900', { auth: bob }))[0]!.body, 'after restore');
  });

  it('a subscription resuming from a _seq taken before the backup gets exactly the later rows', async () => {
    assert.ok(restored !== null);
    const c = await LiveClient.connect(restored.url, alice);
    try {
      await c.subscribeOk('n', 'SELECT * FROM bk.notes', { from: resumeFrom });
      const expected = (await restored.rows(`SELECT id, body FROM bk.notes WHERE _seq > ${resumeFrom} ORDER BY _seq`, { auth: alice }))
        .map((r) => `${String(r.id)}:${String(r.body)}`);
      assert.deepEqual(expected, ['51:later-51', '52:later-52', '53:later-53', '54:later-54', '55:later-55', '1:later-update']);
      await eventually('resumed changes', async () => c.changes('n').length >= expected.length);
      const got = c.changes('n').flatMap((m) => (m.rows as Record<string, unknown>[]).map((r) => `${String(r.id)}:${String(r.body)}`));
      assert.deepEqual(got, expected);
    } finally {
      c.terminate();
    }
  });

  it('a damaged file is refused by RESTORE DATABASE, SHOW BACKUP and main.js restore, naming the file', async () => {
    const [part] = (JSON.parse(readFileSync(join(backupDir, 'backup.json'), 'utf8')) as { cold: { dir: string; segments: string[] }[] }).cold;
    for (const victim of [`${part!.dir}/${part!.segments[0]}`, 'rocksdb/kv-000001.bin', 'backup.json']) {
      const copy = join(work, `damaged-${victim.replace(/\W/g, '_')}`);
      cpSync(backupDir, copy, { recursive: true });
      damage(join(copy, victim));
      const quoted = victim.replace(/[.]/g, '\\.');
      assertError(await server.sql(`RESTORE DATABASE FROM '${copy}'`), 400, 'SQL_EXECUTION_ERROR', new RegExp(`Backup file '${quoted}' is damaged: SHA-256 does not match checksums\\.sha256`));
      const [row] = await server.rows(`SHOW BACKUP '${copy}'`);
      assert.equal(row!.verified, false);
      assert.match(String(row!.problem), new RegExp(quoted));
      const target = join(work, `target-${victim.replace(/\W/g, '_')}`);
      const out = await runRestore(['--from', copy, '--data-dir', target]);
      assert.equal(out.code, 1);
      assert.match(out.stderr, new RegExp(`kalamdb: backup .* cannot be restored: Backup file '${quoted}' is damaged`));
      assert.ok(!existsSync(join(target, 'rocksdb')), 'nothing written');
    }
    // The list itself is covered by its trailer line.
    const copy = join(work, 'damaged-list');
    cpSync(backupDir, copy, { recursive: true });
    const list = readFileSync(join(copy, 'checksums.sha256'), 'utf8');
    writeFileSync(join(copy, 'checksums.sha256'), list.replace(/^[0-9a-f]/, (c) => (c === '0' ? '1' : '0')));
    assertError(await server.sql(`RESTORE DATABASE FROM '${copy}'`), 400, 'SQL_EXECUTION_ERROR', /Backup file 'checksums\.sha256' is damaged/);
    // A missing file.
    const missing = join(work, 'missing-file');
    cpSync(backupDir, missing, { recursive: true });
    rmSync(join(missing, `${part!.dir}/manifest.json`));
    assertError(await server.sql(`RESTORE DATABASE FROM '${missing}'`), 400, 'SQL_EXECUTION_ERROR', /Backup file 'cold\/t\d+\/[^']+\/manifest\.json' is missing/);
  });

  it('main.js restore refuses a data dir that holds a database', async () => {
    const out = await runRestore(['--from', backupDir, '--data-dir', server.dataDir]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /kalamdb: data dir .* is not empty/);
  });

  it('path rules and roles', async () => {
    const bad: [string, RegExp][] = [
      ['BACKUP DATABASE TO /tmp/x', /Backup path must be quoted/],
      ['SHOW BACKUP', /The backup's directory is missing: e\.g\. SHOW BACKUP '/],
      ['BACKUP DATABASE TO;', /The backup's directory is missing/],
      ["BACKUP DATABASE TO ''", /Backup path cannot be empty/],
      ["BACKUP DATABASE TO '/tmp/../etc/x'", /cannot contain '\.\.'/],
      ["BACKUP DATABASE TO '/etc/kalamdb'", /sensitive directory: \/etc\//],
      ["BACKUP DATABASE TO '/home/x/var/log/y'", /sensitive directory: \/var\/log\//],
      ["BACKUP DATABASE TO '/proc/self'", /sensitive directory: \/proc\//],
      // Spellings of the same directories (an attack review wrote backups under /usr/local this way).
      ["BACKUP DATABASE TO '//usr/local/b'", /sensitive directory: \/usr\//],
      ["BACKUP DATABASE TO '/./usr/local/b'", /sensitive directory: \/usr\//],
      ["BACKUP DATABASE TO '/var//log/b'", /sensitive directory: \/var\/log\//],
      ["SHOW BACKUP '//proc/self'", /sensitive directory: \/proc\//],
      ["BACKUP DATABASE TO 'relative/dir'", /must be absolute/],
      ["RESTORE DATABASE FROM '/root/b'", /sensitive directory: \/root\//],
      ['BACKUP DATABASE', /Expected TO clause/],
      ["RESTORE DATABASE '/tmp/x'", /Expected FROM clause/],
    ];
    for (const [sql, message] of bad) assertError(await server.sql(sql), 400, 'INVALID_SQL', message);
    assertError(await server.sql(`BACKUP DATABASE TO '${backupDir}'`), 400, 'SQL_EXECUTION_ERROR', /already holds a backup/);
    const notEmpty = join(work, 'not-empty');
    mkdirSync(notEmpty);
    writeFileSync(join(notEmpty, 'keep.txt'), 'mine');
    assertError(await server.sql(`BACKUP DATABASE TO '${notEmpty}'`), 400, 'SQL_EXECUTION_ERROR', /is not empty/);
    assertError(await server.sql(`BACKUP DATABASE TO '${join(server.dataDir, 'b')}'`), 400, 'SQL_EXECUTION_ERROR', /inside the data directory/);
    // Symbolic links are followed before the rules apply.
    symlinkSync('/etc', join(work, 'to-etc'));
    symlinkSync(server.dataDir, join(work, 'to-data'));
    assertError(await server.sql(`BACKUP DATABASE TO '${join(work, 'to-etc', 'b')}'`), 400, 'INVALID_SQL', /sensitive directory: \/etc\//);
    assertError(await server.sql(`BACKUP DATABASE TO '${join(work, 'to-data', 'b')}'`), 400, 'SQL_EXECUTION_ERROR', /inside the data directory/);
    assertError(await server.sql(`RESTORE DATABASE FROM '${join(work, 'nope')}'`), 404, 'NOT_FOUND', /Backup directory '.*nope' not found/);
    assertError(await server.sql(`RESTORE DATABASE FROM '${join(notEmpty, 'keep.txt')}'`), 400, 'SQL_EXECUTION_ERROR', /is not a directory/);
    await server.createUser('svc', 'service', 'svc-password-1');
    for (const who of [alice, { user: 'svc', password: 'svc-password-1' }]) {
      assertError(await server.sql(`BACKUP DATABASE TO '${join(work, 'denied')}'`, { auth: who }), 403, 'PERMISSION_DENIED', /BACKUP DATABASE requires role dba or system/);
      assertError(await server.sql(`RESTORE DATABASE FROM '${backupDir}'`, { auth: who }), 403, 'PERMISSION_DENIED', /RESTORE DATABASE requires role dba or system/);
      assertError(await server.sql(`SHOW BACKUP '${backupDir}'`, { auth: who }), 403, 'PERMISSION_DENIED', /SHOW BACKUP requires role dba or system/);
    }
    assert.ok(!existsSync(join(work, 'denied')));
    // A dba may.
    await server.createUser('ops', 'dba', 'ops-password-1');
    const [row] = await server.rows(`SHOW BACKUP '${backupDir}'`, { auth: { user: 'ops', password: 'ops-password-1' } });
    assert.equal(row!.verified, true);
  });

  it('an unfinished backup of ours is written again; RESTORE DATABASE on a running server is applied at its next start', async () => {
    const second = join(work, 'backup-2');
    mkdirSync(join(second, 'rocksdb'), { recursive: true });
    writeFileSync(join(second, '.in-progress'), 'JB-1\n');
    writeFileSync(join(second, 'rocksdb', 'kv-000001.bin'), 'partial');
    const [res] = await server.ok(`BACKUP DATABASE TO '${second}'`);
    assert.equal((await waitJob(jobId(res!.message))).status, 'completed');
    const board = await server.rows('SELECT id, title, _seq FROM bk.board ORDER BY id');
    const notes = await server.rows('SELECT id, body, _seq FROM bk.notes ORDER BY id', { auth: alice });
    // Changes after the backup, which the restore rolls back.
    await server.ok("INSERT INTO bk.board VALUES (99999, 'after', 'z')");
    await server.ok('DELETE FROM bk.notes WHERE id = 2', { auth: alice });
    await server.ok('CREATE SHARED TABLE bk.later (id BIGINT PRIMARY KEY)');
    // A staged restore can be taken back before the restart: KILL JOB on its (completed) job.
    const [cancelled] = await server.ok(`RESTORE DATABASE FROM '${second}'`);
    const cancelledJob = jobId(cancelled!.message);
    assert.equal((await waitJob(cancelledJob)).status, 'completed');
    assert.ok(existsSync(join(server.dataDir, 'restore-pending')));
    const [killed] = await server.ok(`KILL JOB '${cancelledJob}'`);
    assert.match(killed!.message!, /the staged restore was removed/);
    assert.ok(!existsSync(join(server.dataDir, 'restore-pending')));
    const [row] = await server.rows(`SELECT status, message FROM system.jobs WHERE job_id = '${cancelledJob}'`);
    assert.equal(row!.status, 'cancelled');
    assertError(await server.sql(`KILL JOB '${cancelledJob}'`), 400, 'SQL_EXECUTION_ERROR', /is not running/);
    const [staged] = await server.ok(`RESTORE DATABASE FROM '${second}'`);
    assert.match(staged!.message!, new RegExp(`^Database restore started from '${second}'\\. Job ID: JB-\\d+\\. Server restart required after completion\\.$`));
    const job = await waitJob(jobId(staged!.message));
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.job_type, 'restore');
    assert.match(String(job.message), /applied when the server restarts/);
    await server.stop();
    await server.launch();
    assert.match(server.output.join(''), /applied a staged restore/);
    assert.deepEqual(await server.rows('SELECT id, title, _seq FROM bk.board ORDER BY id'), board);
    assert.deepEqual(await server.rows('SELECT id, body, _seq FROM bk.notes ORDER BY id', { auth: alice }), notes);
    assertError(await server.sql('SELECT * FROM bk.later'), 400, 'SQL_EXECUTION_ERROR', /later/);
    // The data it replaced is kept aside, not deleted.
    assert.ok(readdirSync(server.dataDir).some((n) => n.startsWith('pre-restore-')));
    assert.ok(!existsSync(join(server.dataDir, 'restore-pending')));
  });
});
