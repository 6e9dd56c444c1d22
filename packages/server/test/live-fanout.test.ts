/**
 * The live fan-out by shape (docs/decisions/0015): subscriptions with the same SQL, user and schema
 * version share one match and one encoding per change, and sockets subscribed under the same id get
 * the same frame. Checked here: the WebSocket frames built once (header for each length class), and
 * that sharing never mixes streams up: the same SQL under other ids, on other connections and for
 * other users, next to other filters on the same table, through unsubscribes, a commit group with
 * inserts, updates and deletes, and an ALTER TABLE that moves some subscriptions to a new shape.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer } from './harness.js';
import { LiveClient, type WsMessage } from './ws-client.js';
import { LiveFrame } from '../src/live/wire-frame.js';
import { shapedRow, shapedRowJson, shapedRowsJson } from '../src/live/row-shape.js';
import { matchAll } from '../src/live/predicate.js';
import type { Catalog } from '../src/catalog/catalog.js';
import type { ColumnDef, StoredValue, TableDef } from '../src/catalog/types.js';
import type { SubscriptionQuery } from '../src/live/subscription-query.js';

/** Reads a server frame (RFC 6455 §5.2: FIN, text opcode, unmasked, 7/16/64-bit length); returns its text. */
function decode(frame: Buffer): string {
  assert.equal(frame[0], 0x81, 'FIN + text');
  const len7 = frame[1]! & 0x7f;
  assert.equal(frame[1]! & 0x80, 0, 'not masked');
  const [length, header] = len7 < 126 ? [len7, 2] : len7 === 126 ? [frame.readUInt16BE(2), 4] : [Number(frame.readBigUInt64BE(2)), 10];
  if (len7 === 126) assert.ok(length >= 126, 'shortest length form');
  if (len7 === 127) assert.ok(length >= 0x10000, 'shortest length form');
  assert.equal(frame.length, header + length, 'length matches');
  return frame.subarray(header).toString('utf8');
}

/** Retries `check` until it stops throwing (or rethrows after `ms`). */
async function settled(check: () => void, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('live fan-out by shape', { timeout: 120_000 }, () => {
  it('frames: one text frame per message, for 7-, 16- and 64-bit lengths, from text or from parts', async () => {
    for (const n of [0, 1, 125, 126, 65_535, 65_536, 200_000]) {
      const text = 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2);
      const frame = LiveFrame.of(text);
      assert.equal(frame.byteLength, Buffer.byteLength(text));
      assert.equal(frame.payload.toString('utf8'), text);
      assert.equal(decode(frame.wire), text, `length ${n}`);
      const parts = LiveFrame.concat([Buffer.from('{"a":'), Buffer.from(JSON.stringify(text)), Buffer.from('}')]);
      assert.deepEqual(JSON.parse(decode(parts.wire)), { a: text });
    }
  });

  it('row JSON written directly is the text of JSON.stringify of the row object, for every kind of cell', () => {
    const columns: ColumnDef[] = (['Text', 'Double', 'Int', 'SmallInt', 'BigInt', 'Boolean', 'Float'] as const)
      .map((type, i) => ({ id: i + 1, name: `c_${type.toLowerCase()}`, type }) as ColumnDef);
    const table = { id: 1, namespace: 'n', name: 't', type: 'STREAM', schemaVersion: 1, columns, options: {} } as unknown as TableDef;
    const projection = [...columns.map((_, i) => i), columns.length];
    const shape = { table, projection, projectionKey: 'k', predicate: matchAll, sql: 's', userId: 'u', schema: [] } as unknown as SubscriptionQuery;
    const catalog = {} as Catalog;
    const texts = ['plain', '', 'quote " here', 'back\\slash', 'tab\tnew\nline', '\u0000\u001f', 'é ü 中文 😀', 'lone \ud800 high', 'lone \udc00 low', '\u2028\u2029', '</script>'];
    const numbers = [0, -0, 1.5, -2.25, 1e21, 1e-7, 1764659000000001, Number.MAX_VALUE, NaN, Infinity, -Infinity];
    const rows: StoredValue[][] = [];
    for (let i = 0; i < Math.max(texts.length, numbers.length); i++) {
      const n = numbers[i % numbers.length]!;
      rows.push([texts[i % texts.length]!, n, Number.isFinite(n) ? Math.trunc(n) % 1000 : n, i - 5, BigInt(i) * 12345678901234567n, i % 2 === 0, n]);
    }
    rows.push(columns.map(() => null));
    const seqs = rows.map((_, i) => 700000000000000000n + BigInt(i));
    for (let i = 0; i < rows.length; i++) {
      const expected = JSON.stringify(shapedRow(catalog, shape, { schemaVersion: 1, values: rows[i]! }, seqs[i]!));
      assert.equal(shapedRowJson(catalog, shape, { schemaVersion: 1, values: rows[i]! }, seqs[i]!), expected, `row ${i}`);
    }
    const all = `[${rows.map((r, i) => JSON.stringify(shapedRow(catalog, shape, { schemaVersion: 1, values: r }, seqs[i]!))).join(',')}]`;
    assert.equal(`[${shapedRowsJson(catalog, shape, 1, rows, seqs, null)}]`, all);
    assert.deepEqual(JSON.parse(`[${shapedRowsJson(catalog, shape, 1, rows, seqs, [1, 3])}]`), [JSON.parse(all)[1], JSON.parse(all)[3]]);
  });

  describe('against the server', () => {
    let server: TestServer;
    const clients: LiveClient[] = [];
    let alice: { user: string; password: string };
    let bob: { user: string; password: string };
    const root = async (): Promise<LiveClient> => {
      const c = await LiveClient.connect(server.url, { user: 'root', password: ROOT_PASSWORD });
      clients.push(c);
      return c;
    };
    before(async () => {
      server = await TestServer.start();
      alice = await server.createUser('alice_f');
      bob = await server.createUser('bob_f');
      await server.ok('CREATE NAMESPACE fan');
      await server.ok('CREATE SHARED TABLE fan.t (id BIGINT PRIMARY KEY, v INT, note TEXT)');
      await server.ok('CREATE USER TABLE fan.u (id BIGINT PRIMARY KEY, v INT)');
    });
    after(async () => {
      for (const c of clients) c.terminate();
      await server.dispose();
    });

    const rowsOf = (c: LiveClient, id: string): [string, unknown][] => c.changes(id).map((m: WsMessage) =>
      [m.change_type as string, m.change_type === 'delete' ? (m.old_values as { id: string }[])[0]!.id : (m.rows as { id: string }[])[0]!.id]);

    it('same SQL under several ids and connections, other filters beside it: every stream exact and in commit order', async () => {
      const a = await root();
      const b = await root();
      await a.subscribeOk('all', 'SELECT * FROM fan.t');
      await a.subscribeOk('all2', 'SELECT * FROM fan.t');
      await a.subscribeOk('big', 'SELECT id, v FROM fan.t WHERE v > 5');
      await b.subscribeOk('all', 'SELECT * FROM fan.t');
      await b.subscribeOk('gone', 'SELECT * FROM fan.t');
      await b.subscribeOk('big', 'SELECT id, v FROM fan.t WHERE v > 5');
      b.send({ type: 'unsubscribe', subscription_id: 'gone' });
      await server.ok("INSERT INTO fan.t VALUES (1, 1, 'a'), (2, 9, 'b'), (3, 7, 'c')");
      await server.ok('UPDATE fan.t SET v = 2 WHERE id = 3');
      await server.ok('UPDATE fan.t SET v = 8 WHERE id = 1');
      await server.ok('DELETE FROM fan.t WHERE id = 2');
      const all: [string, unknown][] = [['insert', '1'], ['insert', '2'], ['insert', '3'], ['update', '3'], ['update', '1'], ['delete', '2']];
      const big: [string, unknown][] = [['insert', '2'], ['insert', '3'], ['delete', '3'], ['insert', '1'], ['delete', '2']];
      await settled(() => {
        assert.deepEqual(rowsOf(a, 'all'), all);
        assert.deepEqual(rowsOf(a, 'all2'), all);
        assert.deepEqual(rowsOf(b, 'all'), all);
        assert.deepEqual(rowsOf(a, 'big'), big);
        assert.deepEqual(rowsOf(b, 'big'), big);
      });
      assert.deepEqual(b.changes('gone'), []);
      // The projection is the subscription's own: `big` carries id, v and _seq only.
      assert.deepEqual(Object.keys((a.changes('big')[0]!.rows as object[])[0]!).sort(), ['_seq', 'id', 'v']);
      // Three inserts of one statement are one message per subscription.
      assert.equal(a.frames.filter((m) => m.subscription_id === 'all' && m.change_type === 'insert').length, 1);
    });

    it('the same SQL for two users on a USER table: each gets only their own partition\'s rows', async () => {
      const ca = await LiveClient.connect(server.url, alice);
      const cb = await LiveClient.connect(server.url, bob);
      clients.push(ca, cb);
      await ca.subscribeOk('mine', 'SELECT * FROM fan.u');
      await cb.subscribeOk('mine', 'SELECT * FROM fan.u');
      await server.ok('INSERT INTO fan.u VALUES (10, 1)', { auth: alice });
      await server.ok('INSERT INTO fan.u VALUES (20, 2)', { auth: bob });
      await settled(() => {
        assert.deepEqual(rowsOf(ca, 'mine'), [['insert', '10']]);
        assert.deepEqual(rowsOf(cb, 'mine'), [['insert', '20']]);
      });
    });

    it('ALTER TABLE moves the subscriptions to the new schema version; streams stay exact', async () => {
      const c = await root();
      await c.subscribeOk('star', 'SELECT * FROM fan.t');
      await c.subscribeOk('cols', 'SELECT id, v FROM fan.t');
      await server.ok('ALTER TABLE fan.t ADD COLUMN extra TEXT');
      await server.ok("INSERT INTO fan.t (id, v, note, extra) VALUES (100, 6, 'n', 'x')");
      await settled(() => {
        assert.ok(c.of('star', 'schema_changed').length === 1);
        const star = c.changes('star');
        assert.equal(star.length, 1);
        assert.equal((star[0]!.rows as { extra: string }[])[0]!.extra, 'x');
        const cols = c.changes('cols');
        assert.equal(cols.length, 1);
        assert.deepEqual(Object.keys((cols[0]!.rows as object[])[0]!).sort(), ['_seq', 'id', 'v']);
      });
      assert.equal(c.of('cols', 'schema_changed').length, 0);
    });
  });
});
