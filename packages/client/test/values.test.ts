/**
 * Values between JS and the real server: `timestamps: 'date'` (TIMESTAMP and DATE cells as Date in
 * query, queryRows, subscribe and live; the wire form by default), bigint and Date params (exact
 * BIGINT above 2^53, DATE and TIMESTAMP columns, WHERE), parameters that cannot be sent (a clear
 * INVALID_PARAMS before any request, not CONNECTION_FAILED), and live() refusing a projection
 * without the key (LIVE_KEY_MISSING, nothing left subscribed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, KalamError, type ClientOptions, type KalamClient, type Row, type SchemaField } from '../src/index.js';
import { eventually, freePort, TestServer, type Server } from './helpers.js';

const AT = new Date('2024-05-06T07:08:09.123Z');
const AT_MICROS = 1714979289123000;
const DAY = new Date('2024-05-06T00:00:00.000Z');
const DAY_NUMBER = 19849;
const BEFORE_EPOCH = new Date('1969-12-31T23:59:59.999Z');
const BIG = 9007199254740993n; // 2^53 + 1: not a safe JS number

describe('@kalamdb/client values', () => {
  let server: Server;
  let port: number;
  const clients: KalamClient[] = [];
  const alice = { user: 'alice', password: 'alice-password-1' };
  const client = (extra: Partial<ClientOptions> = {}, auth: { user: string; password: string } = alice): KalamClient => {
    const c = createClient({ url: `http://127.0.0.1:${port}`, auth, ...extra });
    clients.push(c);
    return c;
  };
  const isError = (code: string, message?: RegExp) => (e: unknown): boolean => {
    assert.ok(e instanceof KalamError, String(e));
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };

  before(async () => {
    port = await freePort();
    server = await TestServer.start(undefined, {}, ['--port', String(port)]);
    await server.ok('CREATE NAMESPACE v');
    await server.ok('CREATE USER TABLE v.events (id BIGINT PRIMARY KEY, at TIMESTAMP, day DATE, t TIME, label TEXT)');
    await server.ok('CREATE USER TABLE v.msgs (id BIGINT PRIMARY KEY, room TEXT, body TEXT, data BYTES, doc JSON)');
    await server.ok('CREATE STREAM TABLE v.ticks (n INT) WITH (TTL_SECONDS = 600)');
    await server.createUser('alice', 'user', alice.password);
  });
  after(async () => {
    for (const c of clients) await c.disconnect();
    await server.dispose();
  });

  it("timestamps: 'date' turns TIMESTAMP and DATE cells into Date in query and queryRows; the default keeps the wire form", async () => {
    const c = client();
    await c.query('INSERT INTO v.events VALUES ($1, $2, $3, $4, $5)', [1, AT, DAY, '07:08:09', 'one']);
    await c.query('INSERT INTO v.events VALUES ($1, $2, $3, $4, $5)', [2, BEFORE_EPOCH, null, null, 'two']);
    assert.deepEqual(await c.queryRows('SELECT id, at, day, t FROM v.events ORDER BY id'), [
      { id: '1', at: AT_MICROS, day: DAY_NUMBER, t: 25689000000 },
      { id: '2', at: -1000, day: null, t: null },
    ]);
    const d = client({ timestamps: 'date' });
    const rows = await d.queryRows<{ id: string; at: Date; day: Date | null; t: number | null }>('SELECT id, at, day, t FROM v.events ORDER BY id');
    assert.ok(rows[0]!.at instanceof Date && rows[0]!.day instanceof Date);
    assert.equal(rows[0]!.at.toISOString(), AT.toISOString());
    assert.equal(rows[0]!.day!.toISOString(), DAY.toISOString());
    assert.equal(rows[0]!.t, 25689000000, 'TIME stays µs since midnight');
    assert.equal(rows[1]!.at.toISOString(), BEFORE_EPOCH.toISOString());
    assert.equal(rows[1]!.day, null);
    const res = await d.query('SELECT at, NOW() AS now, CURRENT_DATE AS today FROM v.events WHERE id = $1', [1n]);
    const [at, now, today] = res.results[0]!.rows![0]!;
    assert.ok(at instanceof Date && now instanceof Date && today instanceof Date);
    assert.ok(Math.abs(now.getTime() - Date.now()) < 60_000, `NOW() is about now: ${now.toISOString()}`);
    assert.equal(today.getUTCHours(), 0);
    // Date params in WHERE (TIMESTAMP, and DATE through the midnight form)
    assert.deepEqual(await c.queryRows('SELECT id FROM v.events WHERE at >= $1 AND day = $2', [new Date(AT.getTime() - 1), DAY]), [{ id: '1' }]);
    assert.deepEqual(await c.queryRows('SELECT id FROM v.events WHERE at = $1', [AT]), [{ id: '1' }]);
  });

  it("timestamps: 'date' in subscribe (initial data, insert, update with old values) and live", async () => {
    const d = client({ timestamps: 'date' });
    const seen: string[] = [];
    let schema: readonly SchemaField[] | null = null;
    const iso = (r: Row): string => `${String(r.id)}@${(r.at as Date).toISOString()}/${r.day instanceof Date ? r.day.toISOString().slice(0, 10) : String(r.day)}`;
    const sub = await d.subscribe<Row>('SELECT id, at, day FROM v.events', {
      onInitialData: (rows, s) => { schema = s; for (const r of rows) seen.push(`initial:${iso(r)}`); },
      onInsert: (rows) => { for (const r of rows) seen.push(`insert:${iso(r)}`); },
      onUpdate: (rows, old) => seen.push(`update:${iso(old[0]!)}->${iso(rows[0]!)}`),
    }, { batchSize: 100 });
    let latest: Row[] = [];
    const stop = await d.live<Row>('SELECT id, at, day FROM v.events', (rows) => { latest = rows; });
    await eventually('the initial rows', () => latest.length === 2 && seen.length === 2);
    assert.ok(latest.every((r) => r.at instanceof Date));
    assert.deepEqual(schema!.map((f) => [f.name, f.data_type]), [['id', 'BigInt'], ['at', 'Timestamp'], ['day', 'Date'], ['_seq', 'BigInt']]);
    assert.ok(latest.every((r) => typeof r._seq === 'string'), '_seq stays a string (bigint: false)');
    const later = new Date('2025-01-02T03:04:05.678Z');
    await d.query('INSERT INTO v.events (id, at, day) VALUES ($1, $2, $3)', [3, later, new Date('2025-01-02T00:00:00Z')]);
    await d.query('UPDATE v.events SET at = $1 WHERE id = $2', [AT, 3]);
    await eventually('insert and update', () => seen.length === 4);
    assert.deepEqual(seen, [
      `initial:1@${AT.toISOString()}/2024-05-06`,
      `initial:2@${BEFORE_EPOCH.toISOString()}/null`,
      `insert:3@${later.toISOString()}/2025-01-02`,
      `update:3@${later.toISOString()}/2025-01-02->3@${AT.toISOString()}/2025-01-02`,
    ]);
    await eventually('live has the update', () => latest.length === 3 && latest.some((r) => r.id === '3' && (r.at as Date).getTime() === AT.getTime()));
    assert.ok(latest.every((r) => r.at instanceof Date && (r.day === null || r.day instanceof Date)));
    await d.query('DELETE FROM v.events WHERE id = 3');
    await eventually('live has the delete', () => latest.length === 2);
    await sub.unsubscribe();
    await stop();
  });

  it('bigint params round trip exactly (above 2^53, the BIGINT range ends); bigint: true reads them back as bigint', async () => {
    const c = client();
    const min = -(2n ** 63n);
    const max = 2n ** 63n - 1n;
    await c.query('INSERT INTO v.msgs (id, room, body) VALUES ($1, $2, $3), ($4, $2, $5), ($6, $2, $7)', [BIG, 'big', 'b', min, 'min', max, 'max']);
    assert.deepEqual(await c.queryRows('SELECT id, body FROM v.msgs WHERE id = $1', [BIG]), [{ id: '9007199254740993', body: 'b' }]);
    assert.deepEqual(await c.queryRows('SELECT body FROM v.msgs WHERE id IN ($1, $2) ORDER BY id', [min, max]), [{ body: 'min' }, { body: 'max' }]);
    assert.deepEqual(await c.queryRows('SELECT body FROM v.msgs WHERE id > $1 AND room = $2 ORDER BY id', [BIG - 1n, 'big']), [{ body: 'b' }, { body: 'max' }]);
    const big = client({ bigint: true });
    assert.deepEqual(await big.queryRows('SELECT id FROM v.msgs WHERE room = $1 ORDER BY id', ['big']), [{ id: min }, { id: BIG }, { id: max }]);
    await c.query('UPDATE v.msgs SET body = $1 WHERE id = $2', ['B', BIG]);
    assert.deepEqual(await big.queryRows('SELECT id, body FROM v.msgs WHERE id = $1', [BIG]), [{ id: BIG, body: 'B' }]);
    await assert.rejects(c.query('INSERT INTO v.msgs (id) VALUES ($1)', [2n ** 63n]), isError('SQL_EXECUTION_ERROR', /id/));
    // nested in a JSON param, and bytes
    await c.query('INSERT INTO v.msgs (id, doc, data) VALUES ($1, $2, $3)', [5, { n: 12345678901234567890n, when: AT }, new Uint8Array([0, 1, 255])]);
    const [row] = await c.queryRows<{ doc: string; data: number[] }>('SELECT doc, data FROM v.msgs WHERE id = 5');
    assert.deepEqual(JSON.parse(row!.doc), { n: '12345678901234567890', when: AT.toISOString() });
    assert.deepEqual(row!.data, [0, 1, 255]);
  });

  it('parameters that cannot be sent fail with INVALID_PARAMS naming the parameter, before any request', async () => {
    let requests = 0;
    const c = client({ fetch: (input, init) => { if (String(input).endsWith('/v1/api/sql')) requests++; return fetch(input, init); } });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await assert.rejects(c.query('SELECT $1', [undefined]), isError('INVALID_PARAMS', /\$1 is undefined/));
    await assert.rejects(c.query('SELECT $1, $2', ['ok', Symbol('x')]), isError('INVALID_PARAMS', /\$2 is a symbol/));
    await assert.rejects(c.query('SELECT $1', [() => 1]), isError('INVALID_PARAMS', /\$1 is a function/));
    await assert.rejects(c.query('SELECT $1', [new Date('nope')]), isError('INVALID_PARAMS', /\$1 is an invalid Date/));
    await assert.rejects(c.query('SELECT $1', [circular]), isError('INVALID_PARAMS', /JSON/));
    assert.equal(requests, 0);
    const e = await c.query('SELECT $1', [undefined]).catch((error: unknown) => error);
    assert.ok(e instanceof KalamError && e.status === null);
    // and the client still works
    assert.deepEqual(await c.queryRows('SELECT $1 AS x', [BIG]), [{ x: '9007199254740993' }]);
    assert.equal(requests, 1);
  });

  it('live() refuses a projection without the primary key (LIVE_KEY_MISSING naming it) and leaves nothing subscribed', async () => {
    const c = client();
    await c.query("INSERT INTO v.msgs (id, room, body) VALUES (10, 'k', 'a'), (11, 'k', 'b')");
    let calls = 0;
    await assert.rejects(c.live("SELECT room, body FROM v.msgs WHERE room = 'k'", () => { calls++; }),
      isError('LIVE_KEY_MISSING', /primary key 'id'.*add id to the selected columns, or pass options\.key/));
    await assert.rejects(c.live("SELECT id, body FROM v.msgs WHERE room = 'k'", () => { calls++; }, { key: 'room' }),
      isError('LIVE_KEY_MISSING', /'room'.*not among the selected columns/));
    // a stream table without a primary key: no key to name
    await assert.rejects(c.live('SELECT n FROM v.ticks', () => { calls++; }), isError('LIVE_KEY_MISSING', /v\.ticks has no primary key.*'_seq'/));
    assert.equal(calls, 0);
    const live = async (): Promise<unknown[][]> => ((await server.ok('SELECT query FROM system.live')) as Array<{ rows: unknown[][] }>)[0]!.rows;
    await eventually('no subscription left', async () => (await live()).length === 0);

    // with a key that is selected, or the pk selected, it works
    let byBody: Row[] = [];
    const stopBody = await c.live<Row>("SELECT room, body FROM v.msgs WHERE room = 'k'", (rows) => { byBody = rows; }, { key: 'body' });
    await eventually('two rows keyed by body', () => byBody.length === 2);
    let ticks: Row[] = [];
    const stopTicks = await c.live<Row>('SELECT n FROM v.ticks', (rows) => { ticks = rows; }, { key: '_seq' });
    await c.query('INSERT INTO v.ticks VALUES (1), (1), (2)');
    await eventually('every event of the stream', () => ticks.length === 3);
    assert.equal((await live()).length, 2, 'system.live lists the two live() subscriptions');
    await stopBody();
    await stopTicks();
  });
});

