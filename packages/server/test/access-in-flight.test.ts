/**
 * Access taken away while a request is in flight (an attack review, round 4): a request whose
 * Authorization was checked before a password change, a role change or DROP USER must not act after
 * it: not after its slow body (up to http_body_timeout_ms), not in a topic long-poll (up to 300 s).
 * Also: password guesses through ALTER USER ... OLD PASSWORD are throttled like logins, and a
 * long-poll that starts at 'Latest' on an empty partition gets the message it waited for.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { TestServer, authHeader } from './harness.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface RawRequest { send(rest: string): void; response: Promise<string> }

/** A POST whose headers and the first bytes of its body are sent now, the rest when told. */
function partialPost(port: number, path: string, headers: Record<string, string>, body: string, sentFirst: number): RawRequest {
  const socket = connect(port, '127.0.0.1');
  const head = [`POST ${path} HTTP/1.1`, 'Host: localhost', 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  socket.write(head + body.slice(0, sentFirst));
  const response = new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
  return { send: (rest) => socket.write(rest), response };
}

const statusOf = (raw: string): number => Number(raw.split(' ')[1]);

describe('access taken away while a request is in flight', () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE app');
    await server.ok("CREATE SHARED TABLE app.priv (id BIGINT PRIMARY KEY, secret TEXT) WITH (ACCESS_LEVEL = 'PRIVATE')");
    await server.ok("CREATE SHARED TABLE app.dbat (id BIGINT PRIMARY KEY, secret TEXT) WITH (ACCESS_LEVEL = 'DBA')");
  });
  after(async () => server.dispose());

  for (const change of ['password', 'drop'] as const) {
    it(`a statement whose body arrives after ${change === 'password' ? 'a password change' : 'DROP USER'} is refused and does nothing`, async () => {
      const name = `slow_${change}`;
      const dba = await server.createUser(name, 'dba');
      const { access_token: token } = await server.login(dba.user, dba.password);
      const body = JSON.stringify({ sql: `CREATE USER 'evil_${change}' WITH PASSWORD 'evil-pass-123' ROLE service` });
      const request = partialPost(server.port, '/v1/api/sql', { Authorization: `Bearer ${token}` }, body, 5);
      await sleep(100);
      await server.ok(change === 'password' ? `ALTER USER '${name}' SET PASSWORD 'rotated-pass-9'` : `DROP USER '${name}'`);
      request.send(body.slice(5));
      const raw = await request.response;
      assert.equal(statusOf(raw), 401, raw);
      assert.match(raw, /INVALID_CREDENTIALS/);
      assert.match(raw, /The account changed while this request ran/);
      assert.deepEqual(await server.rows(`SELECT user_id FROM system.users WHERE user_id = 'evil_${change}'`), []);
    });
  }

  it('Basic credentials too: a role taken away before the body arrives', async () => {
    const dba = await server.createUser('slow_role', 'dba');
    const body = JSON.stringify({ sql: 'SELECT secret FROM app.dbat' });
    const request = partialPost(server.port, '/v1/api/sql', authHeader(dba), body, 3);
    await sleep(100);
    await server.ok("ALTER USER 'slow_role' SET ROLE user");
    request.send(body.slice(3));
    const raw = await request.response;
    assert.equal(statusOf(raw), 401, raw);
  });

  it('a topic long-poll stops when a source it may not read is added, its role is taken, or its account dropped', async () => {
    let id = 0;
    const cases: [string, (topic: string, poller: string) => Promise<void>, number][] = [
      ['a DBA source added', async (topic) => {
        await server.ok(`ALTER TOPIC ${topic} ADD SOURCE app.dbat ON INSERT`);
        await server.ok(`INSERT INTO app.dbat VALUES (${++id}, 'DBA-ONLY')`);
      }, 403],
      ['the role taken', async (_topic, poller) => {
        await server.ok(`ALTER USER '${poller}' SET ROLE user`);
        await server.ok(`INSERT INTO app.priv VALUES (${++id}, 'AFTER-ROLE-CHANGE')`);
      }, 401],
      ['the account dropped', async (_topic, poller) => {
        await server.ok(`DROP USER '${poller}'`);
        await server.ok(`INSERT INTO app.priv VALUES (${++id}, 'AFTER-DROP')`);
      }, 401],
    ];
    for (const [i, [what, change, status]] of cases.entries()) {
      const topic = `app.feed${i}`;
      await server.ok(`CREATE TOPIC ${topic} PARTITIONS 1`);
      await server.ok(`ALTER TOPIC ${topic} ADD SOURCE app.priv ON INSERT`);
      const poller = await server.createUser(`poller${i}`, 'service');
      const poll = server.post('/v1/api/topics/consume', { topic_id: topic, group_id: 'g', start: 'Latest', timeout_seconds: 20 }, authHeader(poller));
      await sleep(300);
      await change(topic, poller.user);
      const res = await poll;
      assert.equal(res.status, status, `${what}: ${res.text}`);
      assert.doesNotMatch(res.text, /DBA-ONLY|AFTER-ROLE-CHANGE|AFTER-DROP/, what);
    }
  });

  it("a long-poll from 'Latest' on an empty partition returns the message it waited for, once", async () => {
    await server.ok('CREATE SHARED TABLE app.pub (id BIGINT PRIMARY KEY, v TEXT)');
    await server.ok('CREATE TOPIC app.fresh PARTITIONS 1');
    await server.ok('ALTER TOPIC app.fresh ADD SOURCE app.pub ON INSERT');
    const svc = await server.createUser('fresh_svc', 'service');
    const poll = server.post('/v1/api/topics/consume', { topic_id: 'app.fresh', group_id: 'gl', start: 'Latest', timeout_seconds: 10 }, authHeader(svc));
    await sleep(300);
    await server.ok("INSERT INTO app.pub VALUES (1, 'waited-for')");
    const res = await poll;
    assert.equal(res.status, 200, res.text);
    const consumed = res.json as { messages: { offset: number; payload: string }[] };
    assert.deepEqual(consumed.messages.map((m) => m.offset), [0]);
    assert.match(Buffer.from(consumed.messages[0]!.payload, 'base64').toString('utf8'), /waited-for/);
  });

  it("a batch that changes the caller's own password goes on (the change is the request's own)", async () => {
    const carol = await server.createUser('carol_batch', 'user', 'carol-pass-1');
    const res = await server.sql("ALTER USER 'carol_batch' SET PASSWORD 'carol-pass-2' OLD PASSWORD 'carol-pass-1'; SELECT 1 AS one", { auth: carol });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await server.login('carol_batch', 'carol-pass-2');
  });

  it('guesses sent in parallel are throttled too (OLD PASSWORD and login)', async () => {
    const dave = await server.createUser('parallel_guess', 'user', 'the-real-pass-2');
    const { access_token: token } = await server.login(dave.user, dave.password);
    const guesses = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      server.sql(`ALTER USER 'parallel_guess' SET PASSWORD 'taken-over-1' OLD PASSWORD 'guess-${i}'`, { auth: { token } })));
    const statuses = guesses.map((g) => g.status);
    assert.equal(statuses.filter((s) => s === 403).length, 5, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 15, statuses.join(','));
    const eve = await server.createUser('parallel_login', 'user', 'the-real-pass-3');
    const logins = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      server.post('/v1/api/auth/login', { user: eve.user, password: `wrong-${i}` })));
    const loginStatuses = logins.map((l) => l.status);
    assert.equal(loginStatuses.filter((s) => s === 401).length, 5, loginStatuses.join(','));
    assert.equal(loginStatuses.filter((s) => s === 429).length, 15, loginStatuses.join(','));
  });

  it('password guesses through ALTER USER ... OLD PASSWORD are throttled like logins', async () => {
    const bob = await server.createUser('guessed', 'user', 'the-real-pass-1');
    const { access_token: token } = await server.login(bob.user, bob.password);
    const attempt = (old: string): Promise<{ status: number }> => server.sql(`ALTER USER 'guessed' SET PASSWORD 'taken-over-1' OLD PASSWORD '${old}'`, { auth: { token } });
    for (let i = 0; i < 5; i++) assert.equal((await attempt(`guess-${i}`)).status, 403);
    const throttled = await server.sql("ALTER USER 'guessed' SET PASSWORD 'taken-over-1' OLD PASSWORD 'the-real-pass-1'", { auth: { token } });
    assert.equal(throttled.status, 429, JSON.stringify(throttled.body));
    // Nothing changed: the real password still logs in.
    await server.login('guessed', 'the-real-pass-1');
  });
});
