/**
 * client.consumer() against the real server, over HTTP and over the WebSocket: every message handled
 * once and acknowledged (positions persist for the group), all partitions drained without one
 * long-poll starving the others, two members of a group sharing the messages, a new group at 'latest'
 * on an empty topic, handler retries (counted) and permanent failures (stop or skip), manual acks,
 * stop() acknowledging finished work, the server killed and restarted mid-run, a server not up yet,
 * DROP TOPIC mid-run, a refused token replaced, refusals (403, 404, 400); and the WebSocket credit
 * window and release on stop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { createClient, ConsumerHandlerError, KalamError, type Consumer, type KalamClient } from '../src/index.js';
import { eventually, freePort, ROOT_PASSWORD, sleep, TestServer, type Server } from './helpers.js';

interface Row { id: string; v: number; _table: string }

describe('client.consumer', () => {
  let server: Server;
  let port: number;
  const clients: KalamClient[] = [];
  const SERVICE = { user: 'svc', password: 'svc-password-1' };
  const client = (auth: { user: string; password: string } = SERVICE): KalamClient => {
    const c = createClient({ url: `http://127.0.0.1:${port}`, auth });
    clients.push(c);
    return c;
  };
  let tableNo = 0;
  /** A topic fed by inserts into a new shared table; returns the names. */
  const topic = async (partitions = 1): Promise<{ topic: string; table: string }> => {
    const n = ++tableNo;
    await server.ok(`CREATE SHARED TABLE cons.t${n} (id BIGINT PRIMARY KEY, v INT)`);
    await server.ok(`CREATE TOPIC cons.topic${n} PARTITIONS ${partitions}`);
    await server.ok(`ALTER TOPIC cons.topic${n} ADD SOURCE cons.t${n} ON INSERT`);
    return { topic: `cons.topic${n}`, table: `cons.t${n}` };
  };
  const insert = async (table: string, from: number, count: number): Promise<void> => {
    const values = Array.from({ length: count }, (_, i) => `(${from + i}, ${from + i})`).join(', ');
    await server.ok(`INSERT INTO ${table} VALUES ${values}`);
  };
  const acked = async (topicName: string, group: string): Promise<Record<number, number>> => {
    const rows = await server.rows(`SELECT partition_id, last_acked_offset FROM system.topic_offsets WHERE topic_id = '${topicName}' AND group_id = '${group}'`) as { partition_id: number; last_acked_offset: string }[];
    return Object.fromEntries(rows.map((r) => [r.partition_id, Number(r.last_acked_offset)]));
  };
  /** Runs the consumer in the background; `ids` are the handled payload ids in order. */
  const collect = (consumer: Consumer<Row>): { ids: number[]; partitions: Set<number>; done: Promise<void> } => {
    const ids: number[] = [];
    const partitions = new Set<number>();
    const done = consumer.run(({ message }) => {
      ids.push(Number(message.payload.id));
      partitions.add(message.partition_id);
    });
    return { ids, partitions, done };
  };

  before(async () => {
    port = await freePort();
    server = await TestServer.start(undefined, { KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS: '2' }, ['--port', String(port)]);
    await server.ok('CREATE NAMESPACE cons');
    await server.createUser('svc', 'service', 'svc-password-1');
    await server.createUser('alice', 'user', 'alice-password-1');
  });
  after(async () => {
    for (const c of clients) await c.disconnect();
    await server.dispose();
  });

  for (const transport of ['http', 'websocket'] as const) describe(transport, () => {
    it('autoAck: every message handled once, in offset order, acknowledged; the group position persists', async () => {
      const t = await topic();
      await insert(t.table, 0, 250);
      const c = client();
      const first = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', batchSize: 40, timeoutSeconds: 1 });
      const run = collect(first);
      await eventually('250 messages', () => run.ids.length >= 250);
      first.stop();
      await run.done;
      assert.deepEqual(run.ids, Array.from({ length: 250 }, (_, i) => i));
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 249 });
      // Another member of the group, later (past the visibility timeout): nothing old, only what is new.
      await sleep(2100);
      const second = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', timeoutSeconds: 1 });
      const again = collect(second);
      await sleep(500);
      await insert(t.table, 1000, 1);
      await eventually('the new message', () => again.ids.length >= 1);
      await sleep(300);
      second.stop();
      await again.done;
      assert.deepEqual(again.ids, [1000]);
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 250 });
    });

    it('drains every partition, and a long-poll on one partition does not hold back the others', async () => {
      const t = await topic(4);
      await insert(t.table, 0, 100);
      const c = client();
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', batchSize: 10, timeoutSeconds: 20 });
      const run = collect(consumer);
      await eventually('100 messages', () => run.ids.length >= 100);
      assert.equal(run.partitions.size, 4, 'the ids hash over all 4 partitions');
      // Now every partition is idle and long-polling (20 s): new messages in any partition arrive at once.
      const began = Date.now();
      await insert(t.table, 100, 20);
      await eventually('20 more messages', () => run.ids.length >= 120, 5000);
      assert.ok(Date.now() - began < 3000, `took ${Date.now() - began} ms`);
      consumer.stop();
      await run.done;
      assert.deepEqual([...run.ids].sort((a, b) => a - b), Array.from({ length: 120 }, (_, i) => i));
      const offsets = await acked(t.topic, 'g');
      const sums = await server.rows(`CONSUME FROM ${t.topic} FROM EARLIEST LIMIT 1000`) as { partition_id: number; offset: string }[];
      const last: Record<number, number> = {};
      for (const r of sums) last[r.partition_id] = Math.max(last[r.partition_id] ?? -1, Number(r.offset));
      assert.deepEqual(offsets, last, 'each partition acknowledged up to its last message');
    });

    it('two members of one group (one account) share the messages: each handled once, all acknowledged', async () => {
      const t = await topic(2);
      await insert(t.table, 0, 200);
      const c = client();
      const members = [0, 1].map(() => c.consumer<Row>({ transport, topic: t.topic, group: 'shared', start: 'earliest', batchSize: 10, timeoutSeconds: 1 }));
      const seen: number[][] = [[], []];
      const runs = members.map((m, i) => m.run(async ({ message }) => {
        seen[i]!.push(Number(message.payload.id));
        await sleep(2);
      }));
      await eventually('200 handled', () => seen[0]!.length + seen[1]!.length >= 200, 20_000);
      await sleep(300);
      for (const m of members) m.stop();
      await Promise.all(runs);
      assert.ok(seen[0]!.length > 0 && seen[1]!.length > 0, `both took part: ${seen[0]!.length} + ${seen[1]!.length}`);
      assert.deepEqual([...seen[0]!, ...seen[1]!].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i), 'each once');
      const last = await server.rows(`CONSUME FROM ${t.topic} FROM EARLIEST LIMIT 1000`) as { partition_id: number; offset: string }[];
      const ends: Record<number, number> = {};
      for (const r of last) ends[r.partition_id] = Math.max(ends[r.partition_id] ?? -1, Number(r.offset));
      assert.deepEqual(await acked(t.topic, 'shared'), ends);
    });

    it("a new group at 'latest' on an empty topic gets the first message published while it waits", async () => {
      const t = await topic();
      const c = client();
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'fresh', timeoutSeconds: 5 });
      const run = collect(consumer);
      await sleep(700); // the first request (empty) is done, a long-poll is waiting
      await insert(t.table, 1, 1);
      await sleep(1500); // a second poll came and went
      await insert(t.table, 2, 1);
      await eventually('both messages', () => run.ids.length >= 2, 8000);
      consumer.stop();
      await run.done;
      assert.deepEqual(run.ids, [1, 2]);
    });

    it("a new group at 'latest' misses nothing published while its connection was cut", async () => {
      const t = await topic(2);
      const proxy = await tcpProxy(port);
      try {
        const c = createClient({ url: `http://127.0.0.1:${proxy.port}`, auth: SERVICE });
        clients.push(c);
        const ids: number[] = [];
        let started = false;
        const errors: string[] = [];
        const consumer = c.consumer<Row>({
          transport, topic: t.topic, group: 'fresh', timeoutSeconds: 1, retry: { initialBackoffMs: 50, maxBackoffMs: 200 },
          onStarted: () => { started = true; }, onError: (e) => errors.push(e.code),
        });
        const run = consumer.run(({ message }) => { ids.push(Number(message.payload.id)); });
        await eventually('started', () => started);
        proxy.down(true);
        await eventually('the consumer noticed', () => errors.length > 0, 10_000);
        await insert(t.table, 1, 6);
        await sleep(300);
        proxy.down(false);
        await eventually('6 messages', () => ids.length >= 6, 15_000);
        consumer.stop();
        await run;
        assert.deepEqual([...ids].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
      } finally {
        proxy.close();
      }
    });

    it('retries a failing handler with backoff until it succeeds (attempts counted)', async () => {
      const t = await topic();
      await insert(t.table, 0, 3);
      const c = client();
      const attempts: string[] = [];
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', timeoutSeconds: 1, retry: { maxAttempts: 4, initialBackoffMs: 20, maxBackoffMs: 100 } });
      const done = consumer.run((ctx) => {
        attempts.push(`${ctx.message.payload.id}#${ctx.attempt}`);
        if (ctx.message.payload.id === '1' && ctx.attempt < 3) throw new Error('flaky');
      });
      await eventually('all three handled', () => attempts.includes('2#1'));
      consumer.stop();
      await done;
      assert.deepEqual(attempts, ['0#1', '1#1', '1#2', '1#3', '2#1']);
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 2 });
    });

    it("a handler failing on every attempt ends run() with ConsumerHandlerError, leaving it unacknowledged; onFailed 'skip' acks it and goes on", async () => {
      const t = await topic();
      await insert(t.table, 0, 5);
      const c = client();
      let calls = 0;
      const failing = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', timeoutSeconds: 1, retry: { maxAttempts: 2, initialBackoffMs: 10 } });
      const error = await failing.run(({ message }) => {
        calls++;
        if (message.offset === 2) throw new Error('poison');
      }).then(() => null, (e: unknown) => e);
      assert.ok(error instanceof ConsumerHandlerError, String(error));
      assert.equal(error.code, 'HANDLER_FAILED');
      assert.equal(error.attempts, 2);
      assert.equal(error.topicMessage.offset, 2);
      assert.equal((error.cause as Error).message, 'poison');
      assert.equal(calls, 4); // 0, 1, 2 twice
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 1 }, 'what was handled before it is acknowledged, not the failed one');

      await sleep(2100); // the claim of the failed batch expires
      const seen: number[] = [];
      const failures: number[] = [];
      const skipping = c.consumer<Row>({
        transport,
        topic: t.topic, group: 'g', timeoutSeconds: 1, retry: { maxAttempts: 2, initialBackoffMs: 10 },
        onFailed: ({ message, attempts }) => { failures.push(message.offset, attempts); return 'skip'; },
      });
      const run = skipping.run(({ message }) => {
        seen.push(message.offset);
        if (message.offset === 2) throw new Error('poison');
      });
      await eventually('offset 4', () => seen.includes(4));
      skipping.stop();
      await run;
      assert.deepEqual(seen, [2, 2, 3, 4]);
      assert.deepEqual(failures, [2, 2]);
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 4 });
    });

    it('autoAck false: only what the handler acks is acknowledged; the rest comes again', async () => {
      const t = await topic();
      await insert(t.table, 0, 5);
      const c = client();
      const seen: number[] = [];
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', autoAck: false, timeoutSeconds: 1 });
      const run = consumer.run(async ({ message, ack }) => {
        seen.push(message.offset);
        if (message.offset < 3) await ack();
      });
      await eventually('five messages', () => seen.length >= 5);
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 2 }, 'acknowledged by ctx.ack() at once');
      // Past the visibility timeout, 3 and 4 are delivered again (to this member, the only one).
      await eventually('3 and 4 again', () => seen.length >= 7, 8000);
      consumer.stop();
      await run;
      assert.deepEqual(seen.slice(0, 7), [0, 1, 2, 3, 4, 3, 4]);
    });

    it('stop() lets the message being handled finish, acknowledges it and what came before, and resolves run()', async () => {
      const t = await topic();
      await insert(t.table, 0, 10);
      const c = client();
      const seen: number[] = [];
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', timeoutSeconds: 20 });
      let finished = false;
      const run = consumer.run(async ({ message }) => {
        seen.push(message.offset);
        if (message.offset === 3) {
          consumer.stop();
          await sleep(300);
          finished = true;
        }
      });
      const began = Date.now();
      await run;
      assert.ok(finished);
      assert.deepEqual(seen, [0, 1, 2, 3]);
      assert.deepEqual(await acked(t.topic, 'g'), { 0: 3 });
      assert.ok(Date.now() - began < 3000, 'stop does not wait for a long-poll');
      // An AbortSignal stops an idle consumer (waiting in a 20 s long-poll) at once.
      const controller = new AbortController();
      const idle = c.consumer<Row>({ transport, topic: t.topic, group: 'other', timeoutSeconds: 20, signal: controller.signal });
      const idleRun = idle.run(() => undefined);
      await sleep(500);
      const stopAt = Date.now();
      controller.abort();
      await idleRun;
      assert.ok(Date.now() - stopAt < 1000, `took ${Date.now() - stopAt} ms`);
    });

    it('keeps going when the server is killed and restarted mid-run: nothing lost, nothing handled twice', async () => {
      const t = await topic(2);
      await insert(t.table, 0, 50);
      const c = client();
      const errors: string[] = [];
      const consumer = c.consumer<Row>({
        transport,
        topic: t.topic, group: 'g', start: 'earliest', batchSize: 5, timeoutSeconds: 2,
        retry: { initialBackoffMs: 100, maxBackoffMs: 500 }, onError: (e) => errors.push(e.code),
      });
      const ids: number[] = [];
      const run = consumer.run(async ({ message }) => {
        ids.push(Number(message.payload.id));
        await sleep(5);
      });
      await eventually('some messages', () => ids.length >= 10);
      await server.kill();
      await sleep(1000);
      await server.launch({ KALAMDB_TOPIC_VISIBILITY_TIMEOUT_SECS: '2' }, ['--port', String(port)]);
      await insert(t.table, 50, 50);
      await eventually('100 messages', () => new Set(ids).size >= 100, 30_000);
      await sleep(500);
      consumer.stop();
      await run;
      assert.ok(errors.includes(transport === 'http' ? 'CONNECTION_FAILED' : 'CONNECTION_LOST'), `onError heard: ${errors.join()}`);
      assert.deepEqual([...ids].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i), 'each once');
    });

    it('starts against a server that is not up yet, and goes on once it is; stop() while unreachable resolves', async () => {
      const late = await freePort();
      const other = await TestServer.start(undefined, {}, ['--port', String(late)]);
      try {
        await other.ok('CREATE NAMESPACE late');
        await other.ok('CREATE SHARED TABLE late.src (id BIGINT PRIMARY KEY, v INT)');
        await other.ok('CREATE TOPIC late.events');
        await other.ok('ALTER TOPIC late.events ADD SOURCE late.src ON INSERT');
        await other.createUser('svc', 'service', 'svc-password-1');
        await other.ok('INSERT INTO late.src VALUES (7, 7)');
        await other.stop();
        const c = createClient({ url: `http://127.0.0.1:${late}`, auth: SERVICE });
        clients.push(c);
        const errors: string[] = [];
        const ids: number[] = [];
        const consumer = c.consumer<Row>({
          transport, topic: 'late.events', group: 'g', start: 'earliest', timeoutSeconds: 1,
          retry: { initialBackoffMs: 50, maxBackoffMs: 300 }, onError: (e) => errors.push(e.code),
        });
        const run = consumer.run(({ message }) => { ids.push(Number(message.payload.id)); });
        await eventually('two failed attempts', () => errors.length >= 2);
        await other.launch({}, ['--port', String(late)]);
        await other.ok('INSERT INTO late.src VALUES (8, 8)');
        await eventually('the messages', () => ids.length >= 2, 20_000);
        consumer.stop();
        await run;
        assert.deepEqual(ids, [7, 8]);
        assert.ok(errors.every((code) => code === 'CONNECTION_FAILED'), errors.join());
      } finally {
        await other.dispose();
      }
      const nowhere = createClient({ url: `http://127.0.0.1:${await freePort()}`, auth: SERVICE });
      clients.push(nowhere);
      const idle = nowhere.consumer({ transport, topic: 'x.y', group: 'g', retry: { initialBackoffMs: 50 } });
      const idleRun = idle.run(() => undefined);
      await sleep(300);
      idle.stop();
      await idleRun;
    });

    it('DROP TOPIC while it runs ends run() with an error', async () => {
      const t = await topic();
      const c = client();
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'g', timeoutSeconds: 2 });
      let started = false;
      const consumerWithStart = c.consumer<Row>({ transport, topic: t.topic, group: 'g2', timeoutSeconds: 2, onStarted: () => { started = true; } });
      const runs = [consumer.run(() => undefined), consumerWithStart.run(() => undefined)];
      const settled = Promise.allSettled(runs);
      await eventually('started', () => started);
      await server.ok(`DROP TOPIC ${t.topic}`);
      for (const result of await settled) {
        assert.equal(result.status, 'rejected');
        const e = (result as PromiseRejectedResult).reason as unknown;
        assert.ok(e instanceof KalamError && (transport === 'http' ? e.code === 'NOT_FOUND' && e.status === 404 : e.code === 'CONSUMER_STOPPED' && /dropped/.test(e.message)), String(e));
      }
    });

    it('a refused token (401) is replaced by a fresh one from the authProvider, as elsewhere in the SDK', async () => {
      const t = await topic();
      await insert(t.table, 0, 3);
      let calls = 0;
      const authProvider = async (): Promise<string> => (++calls === 1 ? 'not-a-valid-token' : (await server.login(SERVICE.user, SERVICE.password)).access_token);
      const c = createClient({ url: `http://127.0.0.1:${port}`, auth: { authProvider } });
      clients.push(c);
      const ids: number[] = [];
      const consumer = c.consumer<Row>({ transport, topic: t.topic, group: 'g', start: 'earliest', timeoutSeconds: 1 });
      const run = consumer.run(({ message }) => { ids.push(Number(message.payload.id)); });
      await eventually('3 messages', () => ids.length >= 3);
      consumer.stop();
      await run;
      assert.deepEqual(ids, [0, 1, 2]);
      assert.ok(calls >= 2);
    });

    it('refusals end run(): the user role (403), a missing topic (404), a missing partition (400 over HTTP)', async () => {
      const t = await topic();
      const alice = client({ user: 'alice', password: 'alice-password-1' });
      await assert.rejects(alice.consumer({ transport, topic: t.topic, group: 'g' }).run(() => undefined),
        (e: unknown) => e instanceof KalamError && e.code === (transport === 'http' ? 'PERMISSION_DENIED' : 'UNAUTHORIZED') && e.status === 403);
      const c = client();
      await assert.rejects(c.consumer({ transport, topic: 'cons.nope', group: 'g' }).run(() => undefined),
        (e: unknown) => e instanceof KalamError && e.code === 'NOT_FOUND' && e.status === 404);
      await assert.rejects(c.consumer({ transport, topic: t.topic, group: 'g', partition: 7 }).run(() => undefined),
        (e: unknown) => e instanceof KalamError && e.status === (transport === 'http' ? 400 : 404));
      const root = client({ user: 'root', password: ROOT_PASSWORD });
      const consumer = root.consumer({ transport, topic: t.topic, group: 'g' });
      const running = consumer.run(() => undefined);
      await assert.rejects(consumer.run(() => undefined), (e: unknown) => e instanceof KalamError && e.code === 'CONSUMER_RUNNING');
      consumer.stop();
      await running;
    });
  });

  it('websocket: holds at most its credit window of unhandled messages; stop() hands the rest back at once', async () => {
    const t = await topic();
    await insert(t.table, 0, 500);
    const c = client();
    const handled: number[] = [];
    const consumer = c.consumer<Row>({ transport: 'websocket', topic: t.topic, group: 'g', start: 'earliest', batchSize: 10 });
    const run = consumer.run(async ({ message }) => {
      handled.push(message.offset);
      await sleep(20);
    });
    await eventually('30 handled', () => handled.length >= 30);
    // Another member of the group (HTTP) gets what the WebSocket member has not been pushed: the window
    // is max(2 × 10, 100) messages beyond what was handled, not the whole backlog.
    const other = await c.topics.consume({ topic: t.topic, group: 'g', limit: 1 });
    const first = other.messages[0]!.offset;
    assert.ok(first > handled.length && first <= handled.length + 110, `the other member starts at ${first} after ${handled.length} handled`);
    consumer.stop();
    await run;
    assert.deepEqual(handled, Array.from({ length: handled.length }, (_, i) => i), 'in order, each once');
    assert.deepEqual(await acked(t.topic, 'g'), { 0: handled.length - 1 });

    // Alone in its group, what it was pushed and did not handle is released by consume_stop: the next
    // member gets it without waiting out the visibility timeout.
    const alone: number[] = [];
    const second = c.consumer<Row>({ transport: 'websocket', topic: t.topic, group: 'solo', start: 'earliest', batchSize: 10 });
    const secondRun = second.run(async ({ message }) => {
      alone.push(message.offset);
      await sleep(20);
    });
    await eventually('10 handled', () => alone.length >= 10);
    second.stop();
    await secondRun;
    const done = alone.length;
    assert.deepEqual(await acked(t.topic, 'solo'), { 0: done - 1 });
    const rest = await c.topics.consume({ topic: t.topic, group: 'solo', limit: 5 });
    assert.deepEqual(rest.messages.map((m) => m.offset), [done, done + 1, done + 2, done + 3, done + 4]);
  });
});

/** A TCP proxy to the server whose connections can be cut (`down(true)` drops them and refuses new ones). */
async function tcpProxy(target: number): Promise<{ port: number; down(on: boolean): void; close(): void }> {
  const sockets = new Set<Socket>();
  let isDown = false;
  const proxy = createServer((inbound) => {
    if (isDown) { inbound.destroy(); return; }
    const outbound = connect(target, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => { sockets.delete(s); inbound.destroy(); outbound.destroy(); });
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  return {
    port,
    down: (on) => {
      isDown = on;
      if (on) for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      proxy.close();
    },
  };
}
