/**
 * Slow consumers against the real server (send-backlog.ts): a reader that stalls for a moment
 * keeps its connection and loses nothing; one that stays behind past the grace is closed with
 * SLOW_CONSUMER even when nothing more is sent to it; the limit on all connections' bytes past
 * their caps closes a connection that no limit of its own would. Small caps, so a paused reader
 * goes behind after a few MB (the kernel's socket buffers take the first ones).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer } from './harness.js';
import { LiveClient, eventually, type Row } from './ws-client.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const PAYLOAD = 'p'.repeat(100_000);
const ROWS_PER_INSERT = 8;
const ROOT = { user: 'root', password: ROOT_PASSWORD };

const metric = (server: TestServer, name: string): Promise<number> => server.metric(name);

const rowsOf = (c: LiveClient, id: string): Row[] => c.messages.filter((m) => m.type === 'change' && m.subscription_id === id).flatMap((m) => m.rows ?? []);

describe('slow consumers: a grace for a stalled reader, limits on what it may hold', { timeout: 120_000 }, () => {
  const GRACE_MS = 3000;
  let server: TestServer;
  let nextId = 0;
  const insert = async (table: string): Promise<void> => {
    await server.ok(`INSERT INTO ${table} VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => `(${++nextId}, '${PAYLOAD}')`).join(', ')}`);
  };
  /** Inserts until the server counts bytes past the cap (the paused reader is behind); returns when the last insert began. */
  const insertUntilBehind = async (table: string): Promise<number> => {
    for (let r = 0; r < 100; r++) {
      const began = Date.now();
      await insert(table);
      if (await metric(server, 'kalamdb_live_burst_bytes') > 0) return began;
    }
    assert.fail('the paused reader never went past its cap');
  };

  before(async () => {
    server = await TestServer.startWithConfig({
      live_buffered_bytes_max: 256 * KIB, live_buffered_bytes_burst_max: 64 * MIB, live_slow_consumer_grace_ms: GRACE_MS,
    });
    await server.ok("CREATE SHARED TABLE default.big (id BIGINT PRIMARY KEY, payload TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
  });
  after(async () => {
    await server.dispose();
  });

  it('a reader that stalls for less than the grace keeps its connection and gets every row, in order', async () => {
    const reader = await LiveClient.open(server.url, ROOT);
    const first = nextId + 1;
    await reader.subscribeOk('s', 'SELECT * FROM default.big');
    reader.socket.pause();
    await insertUntilBehind('default.big');
    reader.socket.resume();
    const last = nextId;
    await eventually('every row at the reader', async () => rowsOf(reader, 's').length >= last - first + 1, 20_000);
    assert.deepEqual(rowsOf(reader, 's').map((r) => Number(r.id)), Array.from({ length: last - first + 1 }, (_, i) => first + i));
    assert.equal(reader.messages.filter((m) => m.type === 'error').length, 0);
    await eventually('the stall counted as over', async () => await metric(server, 'kalamdb_live_burst_bytes') === 0, 5_000);
    assert.equal(await metric(server, 'kalamdb_live_slow_consumers_total'), 0);
    assert.ok(reader.isOpen);
    await reader.close();
  });

  it('a reader still behind when the grace ends is closed with SLOW_CONSUMER, though nothing more is sent to it', async () => {
    const reader = await LiveClient.open(server.url, ROOT);
    await reader.subscribeOk('s', 'SELECT * FROM default.big');
    const dropped0 = await metric(server, 'kalamdb_live_messages_dropped_total');
    reader.socket.pause();
    const behindFrom = await insertUntilBehind('default.big');
    const lastSent = nextId;
    await eventually('the close', async () => await metric(server, 'kalamdb_live_slow_consumers_total') === 1, GRACE_MS + 10_000);
    assert.ok(Date.now() - behindFrom >= GRACE_MS, 'not before the grace');
    assert.equal(await metric(server, 'kalamdb_live_messages_dropped_total'), dropped0, 'the grace ran out: no message was refused');
    reader.socket.resume();
    const info = await reader.closed;
    assert.equal(info.code, 1008);
    const rows = rowsOf(reader, 's');
    assert.equal(rows.length > 0 ? Number(rows[rows.length - 1]!.id) : lastSent, lastSent, 'everything sent before the close arrived');
    const error = reader.messages.find((m) => m.type === 'error')!;
    assert.equal(error.code, 'SLOW_CONSUMER');
    assert.equal(error.last_seq_id, rows[rows.length - 1]!._seq);
    assert.equal(await metric(server, 'kalamdb_live_burst_bytes'), 0, 'the closed connection gave its bytes back');
  });
});

describe('slow consumers: the limit on all connections together', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    // A burst and a grace that would never end the test; only the shared limit can.
    server = await TestServer.startWithConfig({
      live_buffered_bytes_max: 256 * KIB, live_buffered_bytes_burst_max: 256 * MIB, live_slow_consumer_grace_ms: 600_000,
      live_burst_bytes_total_max: 2 * MIB,
    });
    await server.ok("CREATE SHARED TABLE default.big (id BIGINT PRIMARY KEY, payload TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
  });
  after(async () => {
    await server.dispose();
  });

  it('a connection whose bytes past its cap would take the total past the limit is closed at once; other readers keep theirs', async () => {
    const slow = await LiveClient.open(server.url, ROOT);
    const fast = await LiveClient.open(server.url, ROOT);
    await slow.subscribeOk('s', 'SELECT * FROM default.big');
    await fast.subscribeOk('f', 'SELECT id FROM default.big');
    slow.socket.pause();
    let id = 0;
    for (let r = 0; r < 60 && await metric(server, 'kalamdb_live_slow_consumers_total') === 0; r++) {
      await server.ok(`INSERT INTO default.big VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => `(${++id}, '${PAYLOAD}')`).join(', ')}`);
    }
    assert.equal(await metric(server, 'kalamdb_live_slow_consumers_total'), 1);
    assert.ok(await metric(server, 'kalamdb_live_messages_dropped_total') >= 1, 'closed on a refused message, not by a timer');
    slow.socket.resume();
    assert.equal((await slow.closed).code, 1008);
    assert.ok(slow.bytesReceived < 48 * MIB, `the slow reader was sent ${slow.bytesReceived} bytes`);
    await eventually('every row at the fast reader', async () => rowsOf(fast, 'f').length === id, 20_000);
    assert.ok(fast.isOpen);
    assert.equal(await metric(server, 'kalamdb_live_burst_bytes'), 0);
    await fast.close();
  });
});
