/**
 * connectionState and onConnectionState against the real server: idle → connecting → connected,
 * reconnecting and connected again across a server restart on the same port and data dir (with the
 * live row set resumed), disconnected after disconnect(), after a refused login and after the server
 * ends the session; a token made stale by a role change is replaced by a fresh login on reconnect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, KalamError, type ConnectionState, type ConnectionStateInfo, type KalamClient, type Row } from '../src/index.js';
import { eventually, freePort, sleep, TestServer, type Server } from './helpers.js';

describe('@kalamdb/client connection state', () => {
  let server: Server;
  let port: number;
  const clients: KalamClient[] = [];
  const client = (auth: { user: string; password: string }): KalamClient => {
    const c = createClient({ url: `http://127.0.0.1:${port}`, auth });
    clients.push(c);
    return c;
  };
  const record = (c: KalamClient): Array<[ConnectionState, ConnectionStateInfo | undefined]> => {
    const seen: Array<[ConnectionState, ConnectionStateInfo | undefined]> = [];
    c.onConnectionState((state, info) => seen.push([state, info]));
    return seen;
  };

  before(async () => {
    port = await freePort();
    server = await TestServer.start(undefined, {}, ['--port', String(port)]);
    await server.ok('CREATE NAMESPACE cs');
    await server.ok("CREATE SHARED TABLE cs.items (id BIGINT PRIMARY KEY, label TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.createUser('dana', 'user', 'dana-password-1');
  });
  after(async () => {
    for (const c of clients) await c.disconnect();
    await server.dispose();
  });

  it('idle → connecting → connected, reconnecting → connected across a server restart, disconnected after disconnect()', async () => {
    const c = client({ user: 'dana', password: 'dana-password-1' });
    assert.equal(c.connectionState, 'idle');
    const seen = record(c);
    let alsoSeen = 0;
    const unsubscribe = c.onConnectionState(() => { alsoSeen++; });
    await c.query('SELECT 1'); // HTTP does not open the WebSocket
    assert.equal(c.connectionState, 'idle');

    await server.ok("INSERT INTO cs.items VALUES (1, 'one')");
    let latest: Row[] = [];
    const stop = await c.live<Row>('SELECT id, label FROM cs.items', (rows) => { latest = rows; });
    assert.equal(c.connectionState, 'connected');
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected']);
    assert.equal(alsoSeen, 2);
    unsubscribe();
    await eventually('the initial row', () => latest.length === 1);

    await server.stop();
    await eventually('reconnecting', () => c.connectionState === 'reconnecting');
    await sleep(700); // a few failed attempts while the server is down: still one transition
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected', 'reconnecting']);
    const [, dropInfo] = seen[2]!;
    assert.equal(dropInfo?.attempt, 1);
    assert.ok(dropInfo?.error instanceof KalamError && dropInfo.error.code === 'CONNECTION_LOST', String(dropInfo?.error));

    await server.launch({}, ['--port', String(port)]);
    await eventually('connected again', () => c.connectionState === 'connected', 30_000);
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected', 'reconnecting', 'connected']);
    assert.ok((seen[3]![1]?.attempt ?? 0) >= 1, 'the attempts it took');
    assert.equal(c.reconnects, 1);
    await server.ok("INSERT INTO cs.items VALUES (2, 'two')");
    await eventually('the row written after the restart', () => latest.length === 2, 20_000);
    assert.equal(alsoSeen, 2, 'an unsubscribed listener is not called');

    await stop();
    await c.disconnect();
    assert.equal(c.connectionState, 'disconnected');
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected', 'reconnecting', 'connected', 'disconnected']);
    assert.equal(seen[4]![1], undefined);
    await c.disconnect();
    assert.equal(seen.length, 5, 'disconnect() twice is one transition');
  });

  it('a subscribe after disconnect() connects again; the socket is reopened after a drop even with no subscription left', async () => {
    const c = client({ user: 'dana', password: 'dana-password-1' });
    const seen = record(c);
    const sub = await c.subscribe('SELECT id FROM cs.items', {});
    await sub.unsubscribe();
    await c.disconnect();
    const again = await c.subscribe('SELECT id FROM cs.items', {});
    assert.equal(c.connectionState, 'connected');
    await again.unsubscribe();
    await server.kill();
    await eventually('reconnecting', () => c.connectionState === 'reconnecting');
    await server.launch({}, ['--port', String(port)]);
    await eventually('connected again', () => c.connectionState === 'connected', 30_000);
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected', 'disconnected', 'connecting', 'connected', 'reconnecting', 'connected']);
  });

  it('a refused login: the subscribe rejects with INVALID_CREDENTIALS and the state is disconnected with that error', async () => {
    const c = client({ user: 'dana', password: 'wrong-password' });
    const seen = record(c);
    await assert.rejects(c.live('SELECT id FROM cs.items', () => undefined), (e: unknown) => e instanceof KalamError && e.code === 'INVALID_CREDENTIALS');
    assert.equal(c.connectionState, 'disconnected');
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'disconnected']);
    assert.equal(seen[1]![1]?.error?.code, 'INVALID_CREDENTIALS');
  });

  it('a session the server ends (password changed): disconnected once, subscriptions end with the error, no reconnect', async () => {
    await server.createUser('erin', 'user', 'erin-password-1');
    const c = client({ user: 'erin', password: 'erin-password-1' });
    const seen = record(c);
    const errors: string[] = [];
    await c.subscribe('SELECT id FROM cs.items', { onError: (e) => errors.push(`${c.connectionState}:${e.code}`) });
    await server.ok("ALTER USER 'erin' SET PASSWORD 'erin-password-2'");
    await eventually('disconnected', () => c.connectionState === 'disconnected');
    await sleep(500);
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected', 'disconnected']);
    assert.equal(seen[2]![1]?.error?.code, 'INVALID_CREDENTIALS');
    assert.deepEqual(errors, ['disconnected:INVALID_CREDENTIALS']);
    assert.equal(c.reconnects, 0);
  });

  it('reconnects with a fresh login when the cached token went stale (role changed while connected)', async () => {
    await server.createUser('finn', 'user', 'finn-password-1');
    const c = client({ user: 'finn', password: 'finn-password-1' });
    const seen = record(c);
    let latest: Row[] = [];
    const stop = await c.live<Row>('SELECT id, label FROM cs.items', (rows) => { latest = rows; });
    await server.ok("ALTER USER 'finn' SET ROLE service"); // tokens issued before it stop working
    await server.stop();
    await server.launch({}, ['--port', String(port)]);
    await eventually('connected again', () => c.connectionState === 'connected' && c.reconnects === 1, 30_000);
    await server.ok("INSERT INTO cs.items VALUES (3, 'three')");
    await eventually('the new row', () => latest.some((r) => r.id === '3'), 20_000);
    assert.deepEqual(seen.map(([s]) => s), ['connecting', 'connected', 'reconnecting', 'connected']);
    await stop();
  });
});
