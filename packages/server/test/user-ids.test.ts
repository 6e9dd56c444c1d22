/**
 * Immutable account ids, soft-deleted users and the purge job. Covers: a user dropped and created
 * again starts empty (hot and flushed rows, point lookups, primary-key uniqueness, STREAM events, live
 * subscriptions, EXECUTE AS); the dropped account's login, tokens and sockets stop working; grants are
 * not inherited; system.users lists the dropped account with deleted_at until its purge; the cleanup
 * job removes hot keys, Parquet files, manifest directories and stream buffers after the grace period,
 * also when killed half-way (KALAMDB_FAILPOINT) or due at start-up; a data dir from before account
 * ids (user records without an id, partitions keyed by name) keeps reading its rows, through the
 * catalog load path in-process and end to end on a rewritten data dir.
 * Not covered: the once-a-minute timer itself (grace periods here are 0-1 s, so DROP USER's wake-up
 * and the start-up check do the work), KILL JOB of a cleanup job.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { TestServer, assertError, eventually, type Auth, waitForExit } from './harness.js';
import { LiveClient } from './ws-client.js';
import { Catalog, type CatalogStore } from '../src/catalog/catalog.js';
import type { TableDef, UserDef } from '../src/catalog/types.js';
import { partitionFor, principalOf } from '../src/auth/access.js';
import { HotStore } from '../src/storage/hot/hot-store.js';
import { KEY_PK, KEY_VERSION, partitionPrefix } from '../src/storage/hot/keys.js';

type Row = Record<string, unknown>;

/** A server on its own temp dir with a TOML config, restartable with other settings or a failpoint. */
class ConfiguredServer {
  private constructor(readonly dir: string, readonly server: TestServer) {}

  static async start(settings: Record<string, number>, env: Record<string, string> = {}): Promise<ConfiguredServer> {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-users-'));
    writeConfig(dir, settings);
    return new ConfiguredServer(dir, await TestServer.start(join(dir, 'data'), env, ['--config', join(dir, 'config.toml')]));
  }

  get dataDir(): string {
    return this.server.dataDir;
  }

  async restart(settings: Record<string, number> | null = null, env: Record<string, string> = {}): Promise<void> {
    await this.server.stop();
    if (settings !== null) writeConfig(this.dir, settings);
    await this.server.launch(env, ['--config', join(this.dir, 'config.toml')]);
  }

  async dispose(): Promise<void> {
    await this.server.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function writeConfig(dir: string, settings: Record<string, number>): void {
  writeFileSync(join(dir, 'config.toml'), Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
}

async function accounts(server: TestServer, name: string): Promise<Row[]> {
  return server.rows('SELECT user_id, account_id, deleted_at FROM system.users WHERE user_id = $1 ORDER BY created_at', { params: [name] });
}

async function liveAccountId(server: TestServer, name: string): Promise<string> {
  const live = (await accounts(server, name)).filter((r) => r.deleted_at === null);
  assert.equal(live.length, 1, `one live account named ${name}`);
  return String(live[0]!.account_id);
}

/** Rows of one statement as positional cells; as root when `auth` is undefined. */
async function cells(server: TestServer, sql: string, auth?: Auth): Promise<unknown[][]> {
  const [result] = await server.ok(sql, { auth });
  return result!.rows!;
}

/** Hot keys per partition, read from a stopped server's RocksDB: "<table id>/<partition>" → key count. */
async function hotKeys(dataDir: string): Promise<Map<string, number>> {
  const hot = await HotStore.open(join(dataDir, 'rocksdb'));
  try {
    const out = new Map<string, number>();
    for await (const { key } of hot.db.iterator({ gte: Buffer.of(KEY_VERSION), lt: Buffer.of(KEY_PK + 1), values: false })) {
      const id = `${key.readUInt32BE(1)}/${key.subarray(6, 6 + key[5]!).toString('utf8')}`;
      out.set(id, (out.get(id) ?? 0) + 1);
    }
    return out;
  } finally {
    await hot.close();
  }
}

function hasPartition(keys: ReadonlyMap<string, number>, partition: string): boolean {
  return [...keys.keys()].some((k) => k.endsWith(`/${partition}`));
}

// ---------------------------------------------------------------------------------------------
describe('user ids: a dropped name created again is a new, empty account', () => {
  let cs: ConfiguredServer;
  let server: TestServer;
  const firstPw = 'first-life-pw-1';
  const secondPw = 'second-life-pw-2';
  const bob1: Auth = { user: 'bob', password: firstPw };
  const bob2: Auth = { user: 'bob', password: secondPw };
  let oldId = '';
  let oldTokens: { access_token: string; refresh_token: string };
  let oldSocket: LiveClient;

  before(async () => {
    // The default grace period (7 days): nothing here is purged until the last test asks for it.
    cs = await ConfiguredServer.start({});
    server = cs.server;
    await server.ok('CREATE NAMESPACE u');
    await server.ok('CREATE USER TABLE u.notes (id INT PRIMARY KEY, body TEXT)');
    await server.ok('CREATE USER TABLE u.other (id INT PRIMARY KEY, body TEXT)');
    await server.ok('CREATE STREAM TABLE u.typing (who TEXT) WITH (TTL_SECONDS = 3600)');
    await server.ok("CREATE SHARED TABLE u.board (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'RESTRICTED')");
    await server.ok("INSERT INTO u.board VALUES (1, 'restricted')");
    await server.createUser('bob', 'user', firstPw);
    await server.createUser('alice');
    oldId = await liveAccountId(server, 'bob');
    await server.ok("INSERT INTO u.notes VALUES (1, 'old-1'), (2, 'old-2'), (3, 'old-3')", { auth: bob1 });
    await server.ok("INSERT INTO u.other VALUES (1, 'old-other')", { auth: bob1 });
    await server.flushAndWait('u.notes');
    await server.ok("INSERT INTO u.notes VALUES (4, 'old-hot')", { auth: bob1 });
    await server.ok("DELETE FROM u.notes WHERE id = 3", { auth: bob1 });
    await server.ok("INSERT INTO u.typing VALUES ('old-bob')", { auth: bob1 });
    await server.ok("GRANT SELECT ON u.board TO 'bob'");
    assert.deepEqual(await cells(server, 'SELECT v FROM u.board', bob1), [['restricted']]);
    oldTokens = await server.login('bob', firstPw);
    oldSocket = await LiveClient.connect(server.url, bob1);
    await oldSocket.subscribeOk('n', 'SELECT * FROM u.notes');

    await server.ok("DROP USER 'bob'");
    await server.ok(`CREATE USER 'bob' WITH PASSWORD '${secondPw}' ROLE user`);
  });
  after(async () => {
    await cs.dispose();
  });

  it('ids are @<snowflake>, never a name, and the new account gets a new one', async () => {
    const rows = await accounts(server, 'bob');
    assert.equal(rows.length, 2, JSON.stringify(rows));
    assert.equal(rows[0]!.account_id, oldId);
    assert.match(oldId, /^@[0-9]+$/);
    assert.match(String(rows[1]!.account_id), /^@[0-9]+$/);
    assert.notEqual(rows[1]!.account_id, oldId);
    assertError(await server.sql("CREATE USER '@123' WITH PASSWORD 'long-enough-1'"), 400, 'INVALID_SQL', /@123/);
  });

  it('system.users shows the dropped account with deleted_at and the new one without', async () => {
    const rows = await server.rows("SELECT user_id, username, deleted_at, created_at FROM system.users WHERE user_id = 'bob' ORDER BY created_at");
    assert.equal(typeof rows[0]!.deleted_at, 'number');
    assert.ok(Number(rows[0]!.deleted_at) >= Number(rows[0]!.created_at));
    assert.ok(Math.abs(Number(rows[0]!.deleted_at) / 1000 - Date.now()) < 120_000, 'deleted_at is in microseconds, recent');
    assert.equal(rows[1]!.deleted_at, null);
    assert.deepEqual(rows.map((r) => r.username), ['bob', 'bob']);
    const [live] = await server.rows("SELECT count(*) AS n FROM system.users WHERE deleted_at IS NULL AND user_id = 'bob'");
    assert.equal(live!.n, '1');
  });

  it('the new account sees none of the old rows, hot or flushed, by scan, point lookup or tombstone', async () => {
    assert.deepEqual(await cells(server, 'SELECT id, body FROM u.notes ORDER BY id', bob2), []);
    assert.deepEqual(await cells(server, 'SELECT body FROM u.notes WHERE id = 1', bob2), []);
    assert.deepEqual(await cells(server, 'SELECT body FROM u.notes WHERE id = 4', bob2), []);
    assert.deepEqual(await cells(server, 'SELECT id FROM u.notes WHERE _deleted = true', bob2), []);
    assert.deepEqual(await cells(server, 'SELECT count(*) FROM u.other', bob2), [['0']]);
    assert.deepEqual(await cells(server, 'SELECT * FROM u.typing', bob2), []);
    // The old keys do not exist for the new account: inserting them is no duplicate, updating them hits nothing.
    const [upd] = await server.ok("UPDATE u.notes SET body = 'x' WHERE id = 2", { auth: bob2 });
    assert.equal(upd!.row_count, 0);
    await server.ok("INSERT INTO u.notes VALUES (1, 'new-1'), (4, 'new-4')", { auth: bob2 });
    assert.deepEqual(await cells(server, 'SELECT id, body FROM u.notes ORDER BY id', bob2), [[1, 'new-1'], [4, 'new-4']]);
    await server.flushAndWait('u.notes');
    assert.deepEqual(await cells(server, 'SELECT id, body FROM u.notes ORDER BY id', bob2), [[1, 'new-1'], [4, 'new-4']]);
    assert.deepEqual(await cells(server, "EXECUTE AS USER 'bob' (SELECT id, body FROM u.notes ORDER BY id)"),
      [[1, 'new-1'], [4, 'new-4']], 'EXECUTE AS resolves the name to the live account');
    const [who] = await server.ok('SELECT CURRENT_USER() AS u', { auth: bob2 });
    assert.deepEqual(who!.rows, [['bob']]);
    assert.equal(who!.as_user, 'bob');
  });

  it('the old account\'s data is kept on disk until the purge, in a directory named by its id', async () => {
    const newId = await liveAccountId(server, 'bob');
    const dirs = readdirSync(join(server.dataDir, 'storage', 'u', 'notes')).sort();
    assert.ok(dirs.includes(oldId) && dirs.includes(newId), dirs.join(', '));
    assert.ok(!dirs.includes('bob'), 'no directory is named by the user name');
    // Two segments: the new bob's flush also flushed the old account's hot rows (kept until the purge).
    const manifest = JSON.parse(readFileSync(join(server.dataDir, 'storage', 'u', 'notes', oldId, 'manifest.json'), 'utf8')) as { segments: unknown[] };
    assert.equal(manifest.segments.length, 2);
    const segments = await server.rows("SELECT user_id FROM system.manifest WHERE namespace_id = 'u' AND table_name = 'notes'");
    assert.deepEqual(segments.map((s) => s.user_id), ['bob', 'bob', 'bob'], 'system.manifest shows names');
  });

  it('the dropped account cannot log in, and its tokens stay refused after the name is re-created', async () => {
    assertError(await server.sql('SELECT 1', { auth: bob1 }), 401, 'INVALID_CREDENTIALS');
    assertError(await server.sql('SELECT 1', { auth: { token: oldTokens.access_token } }), 401, 'INVALID_CREDENTIALS');
    assert.equal((await server.post('/v1/api/auth/refresh', '', { authorization: `Bearer ${oldTokens.refresh_token}` })).status, 401);
    assert.equal((await server.post('/v1/api/auth/login', { user: 'bob', password: firstPw })).status, 401);
    const fresh = await server.login('bob', secondPw);
    assert.equal((await server.sql('SELECT 1', { auth: { token: fresh.access_token } })).status, 200);
    const claims = JSON.parse(Buffer.from(fresh.access_token.split('.')[1]!, 'base64url').toString('utf8')) as Row;
    assert.equal(claims.sub, 'bob', 'sub stays the user name');
    assert.equal(claims.uid, await liveAccountId(server, 'bob'));
  });

  it('the dropped account\'s WebSocket was closed; the new account\'s subscription starts empty', async () => {
    const closed = await oldSocket.waitClosed(3_000);
    assert.equal(closed.code, 4003);
    const c = await LiveClient.connect(server.url, bob2);
    try {
      await c.subscribeOk('n', 'SELECT id, body FROM u.notes', { batch_size: 100 });
      const [batch] = await c.loadAll('n');
      assert.deepEqual(batch!.rows!.map((r) => [r.id, r.body]), [[1, 'new-1'], [4, 'new-4']]);
      await server.ok("INSERT INTO u.notes VALUES (7, 'new-7')", { auth: bob2 });
      const change = await c.waitFor((m) => m.type === 'change' && m.subscription_id === 'n');
      assert.deepEqual(change.rows!.map((r) => r.id), [7]);
      const live = await server.rows("SELECT user_id FROM system.live WHERE subscription_id = 'n'");
      assert.deepEqual(live, [{ user_id: 'bob' }], 'system.live shows the name');
    } finally {
      await c.close();
    }
  });

  it('grants belong to the account: the new bob does not inherit them', async () => {
    assertError(await server.sql('SELECT v FROM u.board', { auth: bob2 }), 403, 'PERMISSION_DENIED');
    await server.ok("GRANT SELECT ON u.board TO 'bob'");
    assert.deepEqual(await cells(server, 'SELECT v FROM u.board', bob2), [['restricted']]);
    await server.ok("REVOKE SELECT ON u.board FROM 'bob'");
    assertError(await server.sql('SELECT v FROM u.board', { auth: bob2 }), 403, 'PERMISSION_DENIED');
  });

  it('names resolve to the live account: ALTER, DROP and EXECUTE AS of a dropped-only name fail', async () => {
    await server.createUser('gone');
    await server.ok("DROP USER 'gone'");
    assertError(await server.sql("DROP USER 'gone'"), 400, 'SQL_EXECUTION_ERROR', /does not exist/);
    assertError(await server.sql("ALTER USER 'gone' SET EMAIL 'x@example.com'"), 400, 'SQL_EXECUTION_ERROR', /does not exist/);
    assertError(await server.sql("EXECUTE AS USER 'gone' (SELECT 1)"), 400, 'SQL_EXECUTION_ERROR', /does not exist/);
    assertError(await server.sql("GRANT SELECT ON u.board TO 'gone'"), 400, 'SQL_EXECUTION_ERROR', /does not exist/);
    const [ok] = await server.ok("DROP USER IF EXISTS 'gone'");
    assert.equal(ok!.row_count, 0);
  });

  it('a restart keeps the soft delete; with the grace period set to 0 the start-up check purges it', async () => {
    await cs.restart();
    assert.equal((await accounts(server, 'bob')).length, 2, 'still listed after a restart');
    assert.deepEqual(await cells(server, 'SELECT id FROM u.notes ORDER BY id', bob2), [[1], [4], [7]]);
    assert.ok(existsSync(join(server.dataDir, 'storage', 'u', 'notes', oldId)));

    await cs.restart({ user_purge_grace_seconds: 0 });
    await eventually('the dropped accounts to be purged', async () =>
      (await server.rows('SELECT user_id FROM system.users WHERE deleted_at IS NOT NULL')).length === 0, 15_000);
    assert.equal(existsSync(join(server.dataDir, 'storage', 'u', 'notes', oldId)), false);
    assert.deepEqual(await cells(server, 'SELECT id FROM u.notes ORDER BY id', bob2), [[1], [4], [7]], 'the new account is untouched');
    // The account record goes before the job row says completed: wait for the rows to settle.
    const jobs = await eventually('the cleanup jobs finished', async () => {
      const rows = await server.rows("SELECT user_id, status FROM system.jobs WHERE job_type = 'cleanup' ORDER BY user_id");
      return rows.every((r) => r.status !== 'running') ? rows : null;
    });
    assert.deepEqual(jobs, [{ user_id: 'bob', status: 'completed' }, { user_id: 'gone', status: 'completed' }]);
    const newId = await liveAccountId(server, 'bob');
    await server.stop();
    const keys = await hotKeys(server.dataDir);
    assert.equal(hasPartition(keys, oldId), false, 'no hot key of the purged account is left');
    assert.ok(hasPartition(keys, newId), 'the new account keeps its keys');
  });
});

// ---------------------------------------------------------------------------------------------
describe('user ids: the purge job', () => {
  const servers: ConfiguredServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  /** Two USER tables (flushed and hot rows) and a STREAM table with rows of `name`; returns its account id. */
  async function fill(server: TestServer, name: string): Promise<{ auth: Auth; id: string }> {
    const auth = await server.createUser(name);
    for (const t of ['a', 'b']) {
      await server.ok(`INSERT INTO p.${t} VALUES (1, 'one'), (2, 'two')`, { auth });
      await server.flushAndWait(`p.${t}`);
      await server.ok(`INSERT INTO p.${t} VALUES (3, 'hot')`, { auth });
      await server.ok(`UPDATE p.${t} SET v = 'changed' WHERE id = 1`, { auth });
    }
    await server.ok("INSERT INTO p.s VALUES ('event')", { auth });
    return { auth, id: await liveAccountId(server, name) };
  }

  async function createTables(server: TestServer): Promise<void> {
    await server.ok('CREATE NAMESPACE p');
    for (const t of ['a', 'b']) await server.ok(`CREATE USER TABLE p.${t} (id INT PRIMARY KEY, v TEXT)`);
    await server.ok('CREATE STREAM TABLE p.s (v TEXT) WITH (TTL_SECONDS = 3600)');
  }

  it('removes hot keys, Parquet files, manifests and stream events after the grace period, then the record', async () => {
    const cs = await ConfiguredServer.start({ user_purge_grace_seconds: 1 });
    servers.push(cs);
    const server = cs.server;
    await createTables(server);
    // dave first: a flush covers every partition, and carol's last writes are to stay hot.
    const bystander = await fill(server, 'dave');
    const carol = await fill(server, 'carol');
    const droppedAt = Date.now();
    await server.ok("DROP USER 'carol'");
    const reborn = await server.createUser('carol', 'user', 'carol-password-2');
    await server.ok("INSERT INTO p.a VALUES (9, 'reborn')", { auth: reborn });

    await eventually('carol\'s old account to be purged', async () => (await accounts(server, 'carol')).length === 1, 15_000);
    assert.ok(Date.now() - droppedAt >= 1000, 'not before the grace period');
    for (const t of ['a', 'b']) {
      assert.equal(existsSync(join(server.dataDir, 'storage', 'p', t, carol.id)), false, `p.${t}: the partition directory is gone`);
      assert.ok(existsSync(join(server.dataDir, 'storage', 'p', t, bystander.id, 'manifest.json')), `p.${t}: dave's files stay`);
    }
    const [job] = await server.rows("SELECT * FROM system.jobs WHERE job_type = 'cleanup'");
    assert.equal(job!.status, 'completed', JSON.stringify(job));
    assert.equal(job!.user_id, 'carol');
    assert.equal(job!.namespace_id, null);
    assert.equal((JSON.parse(String(job!.parameters)) as Row).account_id, carol.id);
    const result = JSON.parse(String(job!.result)) as Row;
    assert.deepEqual({ ...result, duration_ms: 0 }, {
      account_id: carol.id, tables: 3, hot_versions: 4, cold_segments: 2, cold_rows: 4, cold_bytes: result.cold_bytes,
      stream_events: 1, duration_ms: 0,
    });
    assert.equal(job!.rows_processed, '9');
    assert.deepEqual(await cells(server, 'SELECT id, v FROM p.a ORDER BY id', reborn), [[9, 'reborn']]);
    assert.deepEqual(await cells(server, 'SELECT * FROM p.s', reborn), []);
    assert.deepEqual(await cells(server, 'SELECT id, v FROM p.b ORDER BY id', bystander.auth), [[1, 'changed'], [2, 'two'], [3, 'hot']]);
    assert.deepEqual(await cells(server, 'SELECT v FROM p.s', bystander.auth), [['event']]);

    await server.stop();
    const keys = await hotKeys(server.dataDir);
    assert.equal(hasPartition(keys, carol.id), false, 'no version, index entry or cold marker of carol\'s old account is left');
    assert.ok(hasPartition(keys, bystander.id));
  });

  it('a purge killed half-way (after the first table\'s hot keys) completes at the next start', async () => {
    const cs = await ConfiguredServer.start({ user_purge_grace_seconds: 1 }, { KALAMDB_FAILPOINT: 'purge:after-hot' });
    servers.push(cs);
    const server = cs.server;
    await createTables(server);
    const erin = await fill(server, 'erin');
    await server.ok("DROP USER 'erin'");
    await waitForExit(server);
    await server.kill();
    assert.match(server.output.join(''), /failpoint purge:after-hot/);

    // Half-way: p.a lost its hot keys, its files and p.b are untouched, the record is still there.
    const keys = await hotKeys(server.dataDir);
    const ids = await tableIds(server.dataDir);
    const [a, b] = [ids.get('p.a'), ids.get('p.b')];
    assert.equal(keys.has(`${a}/${erin.id}`), false);
    assert.ok(keys.has(`${b}/${erin.id}`));
    assert.ok(existsSync(join(server.dataDir, 'storage', 'p', 'a', erin.id, 'manifest.json')));

    await server.launch({}, ['--config', join(cs.dir, 'config.toml')]);
    await eventually('the interrupted purge to finish', async () => (await accounts(server, 'erin')).length === 0, 15_000);
    for (const t of ['a', 'b']) assert.equal(existsSync(join(server.dataDir, 'storage', 'p', t, erin.id)), false);
    const jobs = await eventually('the cleanup jobs finished', async () => {
      const rows = await server.rows("SELECT status, error_message FROM system.jobs WHERE job_type = 'cleanup' ORDER BY created_at");
      return rows.every((r) => r.status !== 'running') ? rows : null;
    });
    assert.deepEqual(jobs.map((j) => j.status), ['failed', 'completed']);
    assert.match(String(jobs[0]!.error_message), /restart/);
    const fresh = await server.createUser('erin', 'user', 'erin-password-2');
    assert.deepEqual(await cells(server, 'SELECT count(*) FROM p.a', fresh), [['0']]);
    assert.deepEqual(await cells(server, 'SELECT count(*) FROM p.b', fresh), [['0']]);
    await server.stop();
    assert.equal(hasPartition(await hotKeys(server.dataDir), erin.id), false);
  });
});

/** Table ids by qualified name, from a stopped server's catalog. */
async function tableIds(dataDir: string): Promise<Map<string, number>> {
  const hot = await HotStore.open(join(dataDir, 'rocksdb'));
  try {
    const out = new Map<string, number>();
    for (const [key, value] of await hot.loadCatalog()) {
      if (key.startsWith('table:')) out.set(key.slice('table:'.length), (value as TableDef).id);
    }
    return out;
  } finally {
    await hot.close();
  }
}

// ---------------------------------------------------------------------------------------------
describe('user ids: data dirs from before account ids', () => {
  /** An in-memory CatalogStore holding exactly what an older version wrote. */
  class MemoryStore implements CatalogStore {
    readonly entries = new Map<string, unknown>();
    async loadCatalog(): Promise<Map<string, unknown>> {
      return new Map(this.entries);
    }
    async writeCatalog(entries: ReadonlyMap<string, unknown>): Promise<void> {
      for (const [k, v] of entries) {
        if (v === undefined) this.entries.delete(k);
        else this.entries.set(k, v);
      }
    }
  }

  const userTable = { type: 'USER' } as TableDef;
  const legacy = (name: string): Omit<UserDef, 'id' | 'deletedAt'> => ({
    userId: name, role: 'user', passwordHash: 'h', email: null, createdAt: 1, updatedAt: 1, tokenGeneration: 5,
  });

  it('catalog load: a record without an id gets id = name, keeps its partition and grants, and is written back', async () => {
    // Written by the previous version: no id, no deletedAt; grants keyed by name, one of a dropped user.
    const store = new MemoryStore();
    store.entries.set('user:bob', legacy('bob'));
    store.entries.set('grant:7:bob', { tableId: 7, userId: 'bob' });
    store.entries.set('grant:7:ghost', { tableId: 7, userId: 'ghost' });
    const catalog = await Catalog.load(store);
    assert.equal(store.entries.has('grant:7:ghost'), false, 'a grant left behind by an old DROP USER is removed');
    const bob = catalog.user('bob')!;
    assert.equal(bob.id, 'bob');
    assert.equal(bob.deletedAt, null);
    assert.equal(partitionFor(principalOf(bob), userTable), 'bob', 'the old partition key');
    assert.ok(catalog.hasGrant(7, principalOf(bob)));
    assert.deepEqual(store.entries.get('user:bob'), { ...legacy('bob'), id: 'bob', deletedAt: null });

    // Dropped and created again: a new id; the legacy account's grant goes with it.
    await catalog.softDeleteUser('bob', 1000);
    assert.equal(catalog.user('bob'), undefined);
    assert.equal(store.entries.has('grant:7:bob'), false);
    const next = await catalog.createUser(legacy('bob'), 50n);
    assert.equal(next.id, '@50');
    assert.equal(catalog.hasGrant(7, next), false);

    // Reloaded: both accounts, the ids never reused, not even for an older snowflake after a purge.
    const again = await Catalog.load(store);
    assert.deepEqual(again.listUsers().map((u) => [u.id, u.deletedAt]), [['bob', 1000], ['@50', null]]);
    await again.removeUser('bob');
    assert.equal(again.account('bob'), undefined);
    assert.equal((await again.createUser(legacy('carol'), 10n)).id, '@51');
  });

  it('end to end: rows, files and tokens of an account stored by name keep working after the upgrade', async () => {
    const server = await TestServer.start();
    try {
      await server.ok('CREATE NAMESPACE lg');
      await server.ok('CREATE USER TABLE lg.t (id INT PRIMARY KEY, v TEXT)');
      const bob = await server.createUser('bob');
      await server.ok("INSERT INTO lg.t VALUES (1, 'cold-1'), (2, 'cold-2')", { auth: bob });
      await server.flushAndWait('lg.t');
      await server.ok("INSERT INTO lg.t VALUES (3, 'hot-3')", { auth: bob });
      await server.ok("UPDATE lg.t SET v = 'hot-1' WHERE id = 1", { auth: bob });
      const id = await liveAccountId(server, 'bob');
      await server.stop();

      // Rewrite the data dir into what the previous version wrote: partitions and the record keyed by name.
      const generation = await rewriteAsLegacy(server.dataDir, id, 'bob');
      await server.launch();
      assert.deepEqual(await accounts(server, 'bob'), [{ user_id: 'bob', account_id: 'bob', deleted_at: null }]);
      const expected = [[1, 'hot-1'], [2, 'cold-2'], [3, 'hot-3']];
      assert.deepEqual(await cells(server, 'SELECT id, v FROM lg.t ORDER BY id', bob), expected);
      assert.deepEqual(await cells(server, 'SELECT v FROM lg.t WHERE id = 2', bob), [['cold-2']]);
      assertError(await server.sql("INSERT INTO lg.t VALUES (2, 'dup')", { auth: bob }), 400, 'SQL_EXECUTION_ERROR');
      // A token issued before the upgrade has no uid: it means the account whose id is the name.
      const secret = readFileSync(join(server.dataDir, 'jwt-secret'), 'utf8').trim();
      const oldToken = await new SignJWT({ role: 'user', gen: generation, typ: 'access' }).setProtectedHeader({ alg: 'HS256' })
        .setSubject('bob').setIssuer('kalamdb').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(secret));
      assert.deepEqual(await cells(server, 'SELECT id FROM lg.t ORDER BY id', { token: oldToken }), [[1], [2], [3]]);
      await server.flushAndWait('lg.t');
      assert.deepEqual(await cells(server, 'SELECT id, v FROM lg.t ORDER BY id', bob), expected);
      assert.deepEqual(readdirSync(join(server.dataDir, 'storage', 'lg', 't')), ['bob']);

      // The migrated account is dropped like any other; the new bob gets an @ id and sees nothing.
      await server.ok("DROP USER 'bob'");
      const bob2 = await server.createUser('bob', 'user', 'bob-password-2');
      assert.deepEqual(await cells(server, 'SELECT count(*) FROM lg.t', bob2), [['0']]);
      assertError(await server.sql('SELECT 1', { auth: { token: oldToken } }), 401, 'INVALID_CREDENTIALS');
      assert.match(await liveAccountId(server, 'bob'), /^@[0-9]+$/);
    } finally {
      await server.dispose();
    }
  });
});

/**
 * Moves an account's hot keys and cold directories to partition `name` and stores its record the way
 * versions before account ids did (key `user:<name>`, no id, no deletedAt). Returns its token generation.
 */
async function rewriteAsLegacy(dataDir: string, accountId: string, name: string): Promise<number> {
  const hot = await HotStore.open(join(dataDir, 'rocksdb'));
  let generation: number;
  try {
    const batch = hot.db.write({ autoDestroy: true });
    for await (const { key, value } of hot.db.iterator({ gte: Buffer.of(KEY_VERSION), lt: Buffer.of(KEY_PK + 1) })) {
      if (key.subarray(6, 6 + key[5]!).toString('utf8') !== accountId) continue;
      const renamed = Buffer.concat([partitionPrefix(key[0]!, key.readUInt32BE(1), name), key.subarray(6 + key[5]!)]);
      batch.tryDelete(Buffer.from(key));
      batch.tryPut(renamed, Buffer.from(value));
    }
    await batch.flush();
    const record = { ...((await hot.loadCatalog()).get(`user:${accountId}`) as Record<string, unknown>) };
    generation = Number(record.tokenGeneration);
    delete record.id;
    delete record.deletedAt;
    await hot.writeCatalog(new Map<string, unknown>([[`user:${accountId}`, undefined], [`user:${name}`, record]]));
  } finally {
    await hot.close();
  }
  const storage = join(dataDir, 'storage');
  for (const ns of readdirSync(storage)) {
    for (const table of readdirSync(join(storage, ns))) {
      const dir = join(storage, ns, table, accountId);
      if (!existsSync(dir)) continue;
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Row;
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, user_id: name }));
      renameSync(dir, join(storage, ns, table, name));
    }
  }
  return generation;
}
