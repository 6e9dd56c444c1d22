/**
 * The live-query delivery guarantees of ../shared/protocol.md, against the real server:
 * - resume with options.from after a disconnect gives every change after that _seq exactly once,
 *   with hot rows and with rows flushed to Parquet in between, including rows that left the filter;
 * - the snapshot/live hand-over under concurrent writers: initial rows + changes of every
 *   subscription replay to exactly the final table state, nothing twice, nothing missing;
 * - a slow consumer (socket not read) gets SLOW_CONSUMER with last_seq_id and is closed, while the
 *   server's memory stays bounded and other clients keep receiving; it can resume from last_seq_id;
 * - a failing subscription (bad SQL, or a filter that fails on a row) does not disturb the others.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestServer } from './harness.js';
import { defaults } from '../src/config/config.js';
import { LiveClient, eventually, sleep, type Row, type WsMessage } from './ws-client.js';

type Creds = { user: string; password: string };

const changeOf = (id: string, type?: string) => (m: WsMessage): boolean => m.type === 'change' && m.subscription_id === id && (type === undefined || m.change_type === type);
const rowOf = (m: WsMessage): Row => (m.rows ?? m.old_values)![0]!;
const seqOfMsg = (m: WsMessage): bigint => BigInt(rowOf(m)._seq as string);
const withoutSeq = (r: Row): Row => {
  const { _seq: _ignored, ...rest } = r;
  return rest;
};

/**
 * Replays a subscription's messages into a table state keyed by id, checking each step against the
 * protocol (strict: an insert of a present key, an update or delete of an absent one, or an
 * old_values that is not the row the client holds, is an error). Returns the state and problems.
 */
function replay(initial: Row[], changes: WsMessage[], opts: { upsertInserts?: boolean; deletesOfUnknown?: boolean; deleteValuesUnknown?: boolean } = {}): { state: Map<string, Row>; problems: string[]; seqs: bigint[] } {
  const state = new Map<string, Row>();
  const problems: string[] = [];
  const seqs: bigint[] = [];
  for (const r of initial) {
    const id = String(r.id);
    if (state.has(id)) problems.push(`initial data holds id ${id} twice`);
    state.set(id, r);
    seqs.push(BigInt(r._seq as string));
  }
  for (const m of changes) {
    if (m.change_type === 'flush') continue;
    const rows = m.rows ?? [];
    const olds = m.old_values ?? [];
    const r = rowOf(m);
    const id = String(r.id);
    if (m.change_type !== 'insert') seqs.push(BigInt(r._seq as string));
    switch (m.change_type) {
      case 'insert':
        // Consecutive inserts of one commit may arrive as one message with several rows.
        if (rows.length < 1 || olds.length !== 0) problems.push(`insert shape: ${JSON.stringify(m)}`);
        for (const row of rows) {
          const rowId = String(row.id);
          seqs.push(BigInt(row._seq as string));
          if (state.has(rowId) && !opts.upsertInserts) problems.push(`insert of id ${rowId} which the client already holds (${JSON.stringify(state.get(rowId))}) → ${JSON.stringify(row)}`);
          state.set(rowId, row);
        }
        break;
      case 'update':
        if (rows.length !== 1 || olds.length !== 1) problems.push(`update shape: ${JSON.stringify(m)}`);
        if (!state.has(id)) problems.push(`update of id ${id} which the client does not hold: ${JSON.stringify(m)}`);
        else if (JSON.stringify(state.get(id)) !== JSON.stringify(olds[0])) problems.push(`update old_values ${JSON.stringify(olds[0])} != held ${JSON.stringify(state.get(id))}`);
        state.set(id, rows[0]!);
        break;
      case 'delete':
        if (rows.length !== 0 || olds.length !== 1) problems.push(`delete shape: ${JSON.stringify(m)}`);
        if (!state.has(id)) {
          if (!opts.deletesOfUnknown) problems.push(`delete of id ${id} which the client does not hold: ${JSON.stringify(m)}`);
        } else if (!opts.deleteValuesUnknown && JSON.stringify(withoutSeq(state.get(id)!)) !== JSON.stringify(withoutSeq(olds[0]!))) problems.push(`delete old_values ${JSON.stringify(olds[0])} != held ${JSON.stringify(state.get(id))}`);
        state.delete(id);
        break;
      default:
        problems.push(`unknown change_type: ${JSON.stringify(m)}`);
    }
  }
  return { state, problems, seqs };
}

function sortedState(state: Map<string, Row>): Row[] {
  return [...state.values()].sort((a, b) => Number(a.id) - Number(b.id));
}

function assertUnique(seqs: bigint[], what: string): void {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const s of seqs) {
    if (seen.has(s.toString())) dups.push(s.toString());
    seen.add(s.toString());
  }
  assert.deepEqual(dups, [], `${what}: _seq delivered more than once`);
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('live delivery guarantees', { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: Creds;
  let bob: Creds;
  const clients: LiveClient[] = [];
  const connect = async (auth: Creds): Promise<LiveClient> => {
    const c = await LiveClient.connect(server.url, auth);
    clients.push(c);
    return c;
  };
  const flush = async (table: string): Promise<void> => {
    await server.flushAndWait(table);
  };

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
    await server.ok('CREATE NAMESPACE g');
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.dispose();
  });

  // ---------------------------------------------------------------------------------------------
  describe('resume with options.from', () => {
    /**
     * Subscribes with a snapshot, receives a few live changes, disconnects at _seq S, lets `whileAway`
     * write (and maybe flush), resumes from S, and checks that the resumed stream replays the client's
     * state to exactly the table's state, with every delivered _seq > S and none twice.
     */
    /**
     * `flushedAway`: a flush keeps only each key's newest version, so when the version the client held
     * and a newer one were flushed together the server cannot know whether the client held the row.
     * It then sends a delete for a row that no longer matches, with the row's current values
     * (documented in docs/protocol.md); the replay accepts such deletes but still demands the final state.
     */
    const scenario = async (table: string, where: string, whileAway: () => Promise<void>, flushedAway = false): Promise<{ resumed: WsMessage[]; ack: WsMessage; s: bigint }> => {
      const sql = `SELECT * FROM g.${table} WHERE ${where}`;
      const c1 = await connect(alice);
      await c1.subscribeOk('r', sql, { batch_size: 4 });
      const batches = await c1.loadAll('r');
      const initial = batches.flatMap((b) => b.rows!);
      await server.ok(`INSERT INTO g.${table} VALUES (11, 'open', 11)`);
      await server.ok(`UPDATE g.${table} SET v = 100 WHERE id = 1`);
      await c1.waitForCount(changeOf('r'), 2);
      const before = replay(initial, c1.changes('r'));
      assert.deepEqual(before.problems, []);
      const s = before.seqs.reduce((a, b) => (b > a ? b : a), 0n);
      c1.terminate();
      await whileAway();
      const expected = await server.rows(`SELECT id, status, v, _seq FROM g.${table} WHERE ${where} ORDER BY id`, { auth: alice });
      const c2 = await connect(alice);
      const mark = c2.mark();
      const ack = await c2.subscribeOk('r', sql, { from: s.toString() });
      assert.equal(ack.batch_control!.status, 'ready');
      assert.equal(ack.batch_control!.has_more, false);
      // A sentinel written after the resume marks the end of the resumed stream.
      await server.ok(`INSERT INTO g.${table} VALUES (999, 'open', 0)`);
      await c2.waitFor((m) => changeOf('r', 'insert')(m) && rowOf(m).id === '999', 5_000, mark);
      const all = c2.changes('r', mark);
      const resumed = all.slice(0, -1);
      assert.deepEqual(c2.of('r', 'initial_data_batch', mark), [], 'resume sends changes, not a snapshot');
      for (const m of resumed) assert.ok(seqOfMsg(m) > s, `change at or before from=${s}: ${JSON.stringify(m)}`);
      const after = replay([...before.state.values()], resumed, { upsertInserts: true, deletesOfUnknown: flushedAway, deleteValuesUnknown: flushedAway });
      assert.deepEqual(after.problems, []);
      assertUnique(after.seqs, 'resume');
      assert.deepEqual(sortedState(after.state), expected, 'state after resume != table state');
      assert.equal(ack.total_rows, resumed.length, 'ack total_rows = number of resumed changes');
      await server.ok(`DELETE FROM g.${table} WHERE id = 999`);
      return { resumed, ack, s };
    };

    const seed = async (table: string): Promise<void> => {
      await server.ok(`CREATE SHARED TABLE g.${table} (id BIGINT PRIMARY KEY, status TEXT, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')`);
      await server.ok(`INSERT INTO g.${table} VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, '${(i + 1) % 2 === 1 ? 'open' : 'closed'}', ${i + 1})`).join(', ')}`);
    };
    const away = async (table: string): Promise<void> => {
      await server.ok(`INSERT INTO g.${table} VALUES (12, 'open', 12), (13, 'closed', 13)`);
      await server.ok(`UPDATE g.${table} SET v = 33 WHERE id = 3`); // stays in the filter
      // (A row leaving the filter is its own test below, so that these stay independent of it.)
      await server.ok(`UPDATE g.${table} SET status = 'open' WHERE id = 2`); // enters the filter
      await server.ok(`DELETE FROM g.${table} WHERE id = 7`); // deleted while in the filter
      await server.ok(`DELETE FROM g.${table} WHERE id = 4`); // deleted outside: nothing
      await server.ok(`UPDATE g.${table} SET v = 91 WHERE id = 9`);
      await server.ok(`UPDATE g.${table} SET v = 92 WHERE id = 9`);
    };

    it('from before the table existed ("1"): every row the table holds, hot and flushed, then live changes', async () => {
      await seed('rz');
      await server.ok("UPDATE g.rz SET v = 50 WHERE id = 5");
      await flush('g.rz');
      await server.ok("DELETE FROM g.rz WHERE id = 3");
      await server.ok("UPDATE g.rz SET v = 90 WHERE id = 9");
      const c = await connect(alice);
      const mark = c.mark();
      // Older than the retention (168 hours) and than the table: nothing the client could hold was purged.
      const ack = await c.subscribeOk('z', "SELECT * FROM g.rz WHERE status = 'open'", { from: '1' });
      assert.equal(ack.batch_control!.status, 'ready');
      await server.ok("INSERT INTO g.rz VALUES (999, 'open', 0)");
      await c.waitFor((m) => changeOf('z', 'insert')(m) && rowOf(m).id === '999', 5_000, mark);
      const got = replay([], c.changes('z', mark), { upsertInserts: true, deletesOfUnknown: true, deleteValuesUnknown: true });
      assert.deepEqual(got.problems, []);
      assertUnique(got.seqs, 'resume from 1');
      const expected = await server.rows("SELECT id, status, v, _seq FROM g.rz WHERE status = 'open' ORDER BY id", { auth: alice });
      assert.deepEqual(sortedState(got.state), expected);
    });

    it('from a _seq of a table dropped and created again since: refused (the client holds the old table\'s rows)', async () => {
      await seed('rdc');
      const s = (await server.rows('SELECT max(_seq) AS s FROM g.rdc'))[0]!.s as string;
      await server.ok('DROP TABLE g.rdc');
      await new Promise((r) => setTimeout(r, 5)); // created in a later millisecond than s
      await seed('rdc');
      const c = await connect(alice);
      const m = await c.subscribe('dc', 'SELECT * FROM g.rdc', { from: s });
      assert.equal(m.type, 'error', JSON.stringify(m));
      assert.match(m.message!, /^Cannot resume g\.rdc from _seq \d+: a table of this name was dropped after it.*Subscribe again without 'from'/);
    });

    it('hot rows: every change after from, once, and the client ends with the table\'s state', async () => {
      await seed('rh');
      const { resumed } = await scenario('rh', "status = 'open'", () => away('rh'));
      const ids = resumed.map((m) => `${String(rowOf(m).id)}:${m.change_type}`);
      assert.ok(ids.includes('12:insert'), ids.join(' '));
      assert.ok(ids.includes('2:insert'), ids.join(' '));
      assert.ok(ids.includes('7:delete'), ids.join(' '));
      assert.ok(!ids.some((x) => x.startsWith('4:') || x.startsWith('13:')), ids.join(' '));
    });

    for (const flushed of [false, true]) {
      it(`a row that left the filter while the client was away is delivered as a delete${flushed ? ' (flushed in between)' : ''}`, async () => {
        const table = flushed ? 'rlf' : 'rl';
        await seed(table);
        const { resumed } = await scenario(table, "status = 'open'", async () => {
          await server.ok(`UPDATE g.${table} SET status = 'closed' WHERE id = 3`);
          if (flushed) await flush(`g.${table}`);
        }, flushed);
        assert.deepEqual(resumed.map((m) => `${String(rowOf(m).id)}:${m.change_type}`), ['3:delete']);
      });
    }

    it('rows flushed to Parquet while the client was away are resumed too, exactly once', async () => {
      await seed('rf');
      const { resumed } = await scenario('rf', "status = 'open'", async () => {
        await away('rf');
        await flush('g.rf');
        const [seg] = await server.rows("SELECT count(*) AS n FROM system.manifest WHERE namespace_id = 'g' AND table_name = 'rf'");
        assert.equal(seg!.n, '1');
        await server.ok("INSERT INTO g.rf VALUES (14, 'open', 14)");
        await server.ok("UPDATE g.rf SET v = 111 WHERE id = 11");
      }, true);
      const ids = resumed.map((m) => `${String(rowOf(m).id)}:${m.change_type}`);
      for (const want of ['12:insert', '2:insert', '7:delete', '14:insert']) assert.ok(ids.includes(want), `${want} missing: ${ids.join(' ')}`);
    });

    it('resume from a _seq inside an already flushed segment returns only the later rows', async () => {
      await seed('rs');
      const c = await connect(alice);
      await c.subscribeOk('x', 'SELECT * FROM g.rs');
      await server.ok("INSERT INTO g.rs VALUES (20, 'open', 20)");
      await server.ok("INSERT INTO g.rs VALUES (21, 'open', 21)");
      const [m20, m21] = await c.waitForCount(changeOf('x', 'insert'), 2);
      c.terminate();
      await flush('g.rs');
      const c2 = await connect(alice);
      const ack = await c2.subscribeOk('x', 'SELECT * FROM g.rs', { from: rowOf(m20!)._seq });
      assert.equal(ack.total_rows, 1);
      const [only] = await c2.waitForCount(changeOf('x'), 1);
      assert.deepEqual(only, m21);
      await sleep(300);
      assert.equal(c2.changes('x').length, 1);
    });

    it('a resumed change to a row the client already holds is an update with old_values, not a second insert', async () => {
      await server.ok("CREATE SHARED TABLE g.ru (id BIGINT PRIMARY KEY, name TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
      await server.ok("INSERT INTO g.ru VALUES (1, 'a'), (2, 'b')");
      const c = await connect(alice);
      await c.subscribeOk('u', 'SELECT * FROM g.ru', { batch_size: 10 });
      const [batch] = await c.loadAll('u');
      const held = batch!.rows!;
      c.terminate();
      await server.ok("UPDATE g.ru SET name = 'a2' WHERE id = 1");
      const c2 = await connect(alice);
      await c2.subscribeOk('u', 'SELECT * FROM g.ru', { from: batch!.batch_control!.last_seq_id });
      const [m] = await c2.waitForCount(changeOf('u'), 1);
      assert.deepEqual(m, {
        type: 'change', subscription_id: 'u', change_type: 'update',
        rows: [{ id: '1', name: 'a2', _seq: (await server.rows('SELECT _seq FROM g.ru WHERE id = 1'))[0]!._seq }], old_values: [held[0]],
      });
    });

    it('a transaction deleting a flushed row and inserting it again is an update, or a delete for a filter it leaves (found by a resume fuzz)', async () => {
      await server.ok("CREATE SHARED TABLE g.tx (id BIGINT PRIMARY KEY, v INT, tag TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
      await server.ok("INSERT INTO g.tx VALUES (1, 1, 'a')");
      await flush('g.tx');
      const c = await connect(alice);
      await c.subscribeOk('low', 'SELECT * FROM g.tx WHERE v < 5');
      await c.subscribeOk('all', 'SELECT * FROM g.tx');
      await server.ok("BEGIN; DELETE FROM g.tx WHERE id = 1; INSERT INTO g.tx VALUES (1, 9, 'b'); COMMIT");
      const [low] = await c.waitForCount(changeOf('low'), 1);
      assert.equal(low!.change_type, 'delete');
      assert.deepEqual((low!.old_values as Row[]).map((r) => [r.id, r.v, r.tag]), [['1', 1, 'a']]);
      const [all] = await c.waitForCount(changeOf('all'), 1);
      assert.equal(all!.change_type, 'update');
      assert.deepEqual((all!.rows as Row[]).map((r) => [r.id, r.v, r.tag]), [['1', 9, 'b']]);
      assert.deepEqual((all!.old_values as Row[]).map((r) => [r.id, r.v, r.tag]), [['1', 1, 'a']]);
    });

    for (const flushed of [false, true]) {
      it(`a client that drops part-way through a resumed stream and resumes from the last _seq it saw ends with the table's state${flushed ? ' (flushed in between)' : ''} (found by a resume fuzz)`, async () => {
        const table = flushed ? 'g.pf' : 'g.ph';
        const sql = `SELECT * FROM ${table} WHERE v < 5`;
        await server.ok(`CREATE SHARED TABLE ${table} (id BIGINT PRIMARY KEY, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')`);
        await server.ok(`INSERT INTO ${table} VALUES (1, 1), (3, 3)`);
        const c = await connect(alice);
        await c.subscribeOk('p', sql, { batch_size: 10 });
        const [batch] = await c.loadAll('p');
        const from = batch!.batch_control!.last_seq_id!;
        c.terminate();
        // Row 1 leaves the filter, row 2 enters it, then row 1 changes again outside it; row 3 leaves and comes back.
        await server.ok(`UPDATE ${table} SET v = 7 WHERE id = 1`);
        await server.ok(`INSERT INTO ${table} VALUES (2, 2)`);
        await server.ok(`UPDATE ${table} SET v = 8 WHERE id = 1`);
        await server.ok(`UPDATE ${table} SET v = 9 WHERE id = 3`);
        await server.ok(`UPDATE ${table} SET v = 4 WHERE id = 3`);
        if (flushed) await flush(table);
        const expected = await server.rows(`SELECT id, v, _seq FROM ${table} WHERE v < 5 ORDER BY id`);
        const resumeAll = async (resumeFrom: string): Promise<WsMessage[]> => {
          const r = await connect(alice);
          const ack = await r.subscribeOk('p', sql, { from: resumeFrom });
          const got = ack.total_rows === 0 ? [] : await r.waitForCount(changeOf('p'), Number(ack.total_rows));
          r.terminate();
          return got;
        };
        const whole = await resumeAll(from);
        assert.ok(whole.length > 0);
        // Every point the connection could have dropped at: after k changes, resume from the last _seq seen.
        for (let k = 0; k <= whole.length; k++) {
          const seen = whole.slice(0, k);
          const held = replay(batch!.rows!, seen, { upsertInserts: true, deletesOfUnknown: true, deleteValuesUnknown: flushed });
          const last = k === 0 ? from : rowOf(seen[k - 1]!)._seq as string;
          const rest = await resumeAll(last);
          for (const m of rest) assert.ok(seqOfMsg(m) > BigInt(last), `change at or before ${last}: ${JSON.stringify(m)}`);
          const end = replay([...held.state.values()], rest, { upsertInserts: true, deletesOfUnknown: true, deleteValuesUnknown: flushed });
          assert.deepEqual(sortedState(end.state), expected, `dropped after ${k} of ${whole.length} changes (${whole.map((m) => `${String(rowOf(m).id)}:${m.change_type}`).join(' ')})`);
        }
      });
    }

    it('resume on a USER table returns only the subscriber\'s partition', async () => {
      await server.ok('CREATE USER TABLE g.mine (id BIGINT PRIMARY KEY, status TEXT, v INT)');
      const c = await connect(alice);
      const ack = await c.subscribeOk('m', 'SELECT * FROM g.mine');
      const from = ack.batch_control!.last_seq_id;
      c.terminate();
      await server.ok("INSERT INTO g.mine VALUES (1, 'alice', 1)", { auth: alice });
      await server.ok("INSERT INTO g.mine VALUES (1, 'bob', 1), (2, 'bob', 2)", { auth: bob });
      await flush('g.mine');
      await server.ok("INSERT INTO g.mine VALUES (3, 'bob', 3)", { auth: bob });
      const c2 = await connect(alice);
      await c2.subscribeOk('m', 'SELECT * FROM g.mine', { from });
      const mark = c2.mark();
      await server.ok("INSERT INTO g.mine VALUES (2, 'alice', 2)", { auth: alice });
      await c2.waitFor((m) => changeOf('m')(m) && rowOf(m).id === '2', 5_000, mark);
      assert.deepEqual(c2.changes('m').map((m) => `${String(rowOf(m).id)}:${String(rowOf(m).status)}`), ['1:alice', '2:alice']);
    });
  });

  // ---------------------------------------------------------------------------------------------
  it('snapshot/live hand-over under concurrent writers: initial rows + changes = final state, nothing twice, nothing missing', async (t) => {
    await server.ok("CREATE SHARED TABLE g.hand (id BIGINT PRIMARY KEY, grp TEXT, v INT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok(`INSERT INTO g.hand VALUES ${Array.from({ length: 150 }, (_, i) => `(${i + 1}, '${i % 2 === 0 ? 'a' : 'b'}', 0)`).join(', ')}`);
    let stop = false;
    let writes = 0;
    const errors: string[] = [];
    const writer = async (w: number): Promise<void> => {
      let next = 0;
      const mine: number[] = [];
      let rnd = w * 7919 + 1;
      const rand = (n: number): number => { rnd = (rnd * 1103515245 + 12345) % 2147483648; return rnd % n; };
      while (!stop) {
        const op = rand(10);
        let sql: string;
        if (op < 4 || mine.length < 5) {
          const id = 1000 * (w + 1) + next++;
          mine.push(id);
          sql = `INSERT INTO g.hand VALUES (${id}, '${rand(2) === 0 ? 'a' : 'b'}', 0)`;
        } else if (op < 9) {
          const id = rand(3) === 0 ? 1 + rand(150) : mine[rand(mine.length)]!;
          sql = `UPDATE g.hand SET v = v + 1, grp = CASE WHEN grp = 'a' THEN 'b' ELSE 'a' END WHERE id = ${id}`;
        } else {
          const id = mine.splice(rand(mine.length), 1)[0]!;
          sql = `DELETE FROM g.hand WHERE id = ${id}`;
        }
        const res = await server.sql(sql);
        if (res.status !== 200) {
          if (!/conflict/i.test(res.body.error?.message ?? '')) errors.push(`${sql}: ${JSON.stringify(res.body.error)}`);
        } else writes++;
      }
    };
    // A snapshot taken before the writers start: resumed subscriptions replay from its hand-over _seq.
    const base = await connect(alice);
    const baseAck = await base.subscribeOk('base', 'SELECT * FROM g.hand', { batch_size: 1000 });
    const baseRows = (await base.loadAll('base')).flatMap((b) => b.rows!);
    const h0 = baseAck.batch_control!.last_seq_id;
    base.terminate();
    const writers = [0, 1, 2].map((w) => writer(w));
    interface Sub { c: LiveClient; id: string; where: string | null; resumed: boolean; ack: WsMessage | null; initial: Row[]; loaded: Promise<void> }
    const subs: Sub[] = [];
    const t0 = Date.now();
    let flushed: Promise<void> | null = null;
    // At least 10 subscriptions (each connect waits for its server round trips, so a loaded machine opens fewer in 4 s).
    for (let i = 0; Date.now() - t0 < 4_000 || i < 10; i++) {
      // Halfway, flush the table to Parquet while everything keeps running.
      if (flushed === null && Date.now() - t0 > 1_500) flushed = flush('g.hand');
      const c = await connect(i % 2 === 0 ? alice : bob);
      const where = i % 3 === 2 ? "grp = 'a'" : null;
      const sub: Sub = { c, id: `h${i}`, where, resumed: i % 3 === 1, ack: null, initial: [], loaded: Promise.resolve() };
      if (sub.resumed) {
        // Resume from h0 while the writers keep going: every change after h0, once, in order.
        sub.ack = await c.subscribeOk(sub.id, 'SELECT * FROM g.hand', { from: h0 });
        sub.initial = baseRows;
        subs.push(sub);
        await sleep(150);
        continue;
      }
      const ack = await c.subscribeOk(sub.id, `SELECT * FROM g.hand${where ? ` WHERE ${where}` : ''}`, { batch_size: 40 });
      sub.ack = ack;
      // Read the batches slowly, so that many commits land while the subscription is loading.
      sub.loaded = (async () => {
        let cursor = 0;
        for (;;) {
          const b = await c.waitFor((m) => m.subscription_id === sub.id && (m.type === 'initial_data_batch' || m.type === 'error'), 10_000, cursor);
          assert.equal(b.type, 'initial_data_batch', JSON.stringify(b));
          cursor = c.messages.indexOf(b) + 1;
          sub.initial.push(...b.rows!);
          if (!b.batch_control!.has_more) return;
          await sleep(20);
          c.send({ type: 'next_batch', subscription_id: sub.id, last_seq_id: b.batch_control!.last_seq_id });
        }
      })();
      subs.push(sub);
      await sleep(150);
    }
    // On a loaded machine the writers may need longer than 4 s to reach a meaningful count.
    while (writes <= 200 && Date.now() - t0 < 30_000) await sleep(50);
    stop = true;
    await Promise.all(writers);
    await flushed;
    await Promise.all(subs.map((s) => s.loaded));
    assert.deepEqual(errors, []);
    // Enough writes to interleave with every subscription. Each of the 3 sequential writers waits for a
    // WAL sync per write in the default fsync mode: measured 300 writes alone and 182 during the full
    // suite on a shared 2-core machine (598 with durability = process), hence the margin.
    assert.ok(writes > 100, `only ${writes} writes`);
    await server.ok("INSERT INTO g.hand VALUES (999999, 'a', 0)");
    const finalAll = (await server.rows('SELECT id, grp, v, _seq FROM g.hand ORDER BY id'));
    for (const s of subs) {
      await s.c.waitFor((m) => changeOf(s.id, 'insert')(m) && rowOf(m).id === '999999', 10_000);
      const changes = s.c.changes(s.id).filter((m) => m.change_type !== 'flush');
      const label = `${s.id} (${s.resumed ? `resumed from ${h0}` : s.where ?? 'all rows'})`;
      // Resumed updates may come as inserts of the newer version (see the resume tests), and a row
      // inserted and deleted after h0 and then flushed comes back as its tombstone only: allowed here.
      const { state, problems, seqs } = replay(s.initial, changes, { upsertInserts: s.resumed, deletesOfUnknown: s.resumed });
      assert.deepEqual(problems, [], label);
      assertUnique(seqs, label);
      // The ack carries the first batch's batch_control (as upstream's), so the hand-over point a client
      // sees is the newest of its initial rows, or the ack's last_seq_id when it got none.
      const handover = s.resumed ? BigInt(h0)
        : s.initial.reduce((m, r) => (BigInt(r._seq as string) > m ? BigInt(r._seq as string) : m), BigInt(s.ack!.batch_control!.last_seq_id));
      const changeSeqs = changes.map(seqOfMsg);
      for (let i = 0; i < changeSeqs.length; i++) {
        assert.ok(changeSeqs[i]! > handover, `${label}: change at or before the hand-over _seq`);
        if (i > 0) assert.ok(changeSeqs[i]! > changeSeqs[i - 1]!, `${label}: changes out of commit order at ${i}`);
      }
      for (const r of s.initial) assert.ok(BigInt(r._seq as string) <= handover, `${label}: initial row newer than the hand-over`);
      const expected = s.where === null ? finalAll : finalAll.filter((r) => r.grp === 'a');
      assert.deepEqual(sortedState(state), expected, `${label}: replayed state != table`);
    }
    t.diagnostic(`${writes} writes by 3 writers, ${subs.length} subscriptions, ${subs.reduce((n, s) => n + s.c.changes(s.id).length, 0)} changes replayed`);
  });

  // ---------------------------------------------------------------------------------------------
  it('a slow consumer gets SLOW_CONSUMER with last_seq_id and is closed; memory stays bounded, other clients are unaffected', async (t) => {
    await server.ok("CREATE SHARED TABLE g.big (id BIGINT PRIMARY KEY, payload TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("CREATE SHARED TABLE g.quiet (id BIGINT PRIMARY KEY) WITH (ACCESS_LEVEL = 'PUBLIC')");
    const slow = await connect(alice);
    const fast = await connect(bob);
    const ackBig = await slow.subscribeOk('big', 'SELECT * FROM g.big');
    const ackQuiet = await slow.subscribeOk('quiet', 'SELECT * FROM g.quiet');
    await fast.subscribeOk('big', 'SELECT id FROM g.big');
    const pid = server.pid!;
    const rss0 = rssBytes(pid);
    let rssMax = rss0;
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssBytes(pid)); }, 50);
    slow.socket.pause();
    const payload = 'p'.repeat(100_000);
    const rowsPerRequest = 8;
    const slowClosed = async (): Promise<boolean> => (await server.rows("SELECT metric_value FROM system.stats WHERE metric_name = 'live_slow_consumers_closed'"))[0]?.metric_value === '1';
    // Writes go on until the server has closed the slow client (past its burst limit, or behind for
    // longer than the grace), then three more that it no longer gets: at most 96 MB of row data.
    let requests = 0;
    let afterClose = 0;
    const t0 = Date.now();
    while (requests < 120 && afterClose < 3) {
      const values = Array.from({ length: rowsPerRequest }, (_, i) => `(${requests * rowsPerRequest + i + 1}, '${payload}')`).join(', ');
      await server.ok(`INSERT INTO g.big VALUES ${values}`);
      requests++;
      if (afterClose > 0 || await slowClosed()) afterClose++;
    }
    const insertMs = Date.now() - t0;
    assert.ok(await slowClosed(), `the slow client is closed after ${requests} requests`);
    const total = requests * rowsPerRequest;
    // Rows count, not messages: the inserts of one request may come as one message.
    const fastRows = (): number => fast.changes('big').reduce((n, m) => n + (m.rows?.length ?? 0), 0);
    await eventually('every row at the fast client', async () => fastRows() >= total, 15_000);
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssBytes(pid));
    // The fast client got every row, in order.
    const fastIds = fast.changes('big').flatMap((m) => (m.rows ?? []).map((row) => Number(row.id)));
    assert.deepEqual(fastIds, Array.from({ length: total }, (_, i) => i + 1));
    // Now read what the server sent the slow client: changes, then SLOW_CONSUMER per subscription, then close.
    slow.socket.resume();
    const info = await slow.waitClosed(10_000);
    assert.equal(info.code, 1008, `close code ${info.code}`);
    const errors = slow.messages.filter((m) => m.type === 'error');
    assert.deepEqual(errors.map((m) => [m.code, m.subscription_id]).sort(), [['SLOW_CONSUMER', 'big'], ['SLOW_CONSUMER', 'quiet']]);
    const got = slow.changes('big');
    const gotRows = got.flatMap((m) => m.rows ?? []);
    assert.ok(gotRows.length > 0 && gotRows.length < total, `slow client got ${gotRows.length} of ${total} rows`);
    const errBig = errors.find((m) => m.subscription_id === 'big')!;
    assert.equal(errBig.last_seq_id, gotRows[gotRows.length - 1]!._seq, 'last_seq_id = the last change the client received');
    assert.ok(slow.messages.indexOf(errBig) > slow.messages.indexOf(got[got.length - 1]!));
    // Bounded: what was queued for the slow client is at most the burst limit plus kernel buffers.
    const wmemMax = Number(readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8').trim().split(/\s+/)[2]);
    const rmemMax = Number(readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/)[2]);
    t.diagnostic(`slow client: ${gotRows.length}/${total} rows, ${slow.bytesReceived} bytes before SLOW_CONSUMER; server RSS +${Math.round((rssMax - rss0) / 1e6)} MB; inserts ${insertMs} ms`);
    assert.ok(slow.bytesReceived <= defaults.liveBufferedBytesBurstMax + wmemMax + rmemMax + 200_000, `slow client was sent ${slow.bytesReceived} bytes`);
    assert.ok(rssMax - rss0 < 256 * 1024 * 1024, `server RSS grew by ${Math.round((rssMax - rss0) / 1e6)} MB while inserting ${total / 10} MB`);
    // A write path that waited for the paused socket would never finish; 40 s leaves room for a loaded machine.
    assert.ok(insertMs < 40_000, `writes took ${insertMs} ms: the write path waited for the slow socket?`);
    // Every subscription on the closed connection can resume from its last_seq_id.
    const errQuiet = errors.find((m) => m.subscription_id === 'quiet')!;
    assert.ok(BigInt(errBig.last_seq_id!) >= BigInt(ackBig.batch_control!.last_seq_id));
    const again = await connect(alice);
    const ack = await again.subscribe('big', 'SELECT id FROM g.big', { from: errBig.last_seq_id });
    assert.equal(ack.type, 'subscription_ack', JSON.stringify(ack));
    await eventually('the rest of the rows', async () => again.changes('big').reduce((n, m) => n + (m.rows?.length ?? 0), 0) >= total - gotRows.length, 10_000);
    const rest = again.changes('big').flatMap((m) => m.rows ?? []);
    const union = [...gotRows, ...rest].map((row) => Number(row.id));
    assert.deepEqual(union, Array.from({ length: total }, (_, i) => i + 1), 'received before + resumed = every row once, in order');
    // The server is healthy.
    const health = await server.fetch('/health');
    assert.equal(health.status, 200);
    // A subscription that had no change yet when the connection was closed: its last_seq_id must
    // still be a valid resume point (at least its ack's last_seq_id), not "0".
    assert.ok(BigInt(errQuiet.last_seq_id!) >= BigInt(ackQuiet.batch_control!.last_seq_id), `quiet: last_seq_id ${errQuiet.last_seq_id} is before its ack's ${ackQuiet.batch_control!.last_seq_id}`);
    const quiet = await again.subscribe('quiet', 'SELECT * FROM g.quiet', { from: errQuiet.last_seq_id });
    assert.equal(quiet.type, 'subscription_ack', `resuming the quiet subscription from its last_seq_id failed: ${JSON.stringify(quiet)}`);
  });

  // ---------------------------------------------------------------------------------------------
  describe('one failing subscription does not disturb the others', () => {
    before(async () => {
      await server.ok("CREATE SHARED TABLE g.f (id BIGINT PRIMARY KEY, name TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    });

    it('bad SQL between good subscriptions on one connection', async () => {
      const c = await connect(alice);
      await c.subscribeOk('a', 'SELECT * FROM g.f');
      const bad = await c.subscribe('b', 'SELECT * FROM g.f WHERE nope = 1', { batch_size: 10 });
      assert.equal(bad.type, 'error');
      assert.equal(bad.code, 'INVALID_SQL');
      const bad2 = await c.subscribe('b2', 'SELEC * FROM g.f');
      assert.equal(bad2.type, 'error');
      await c.subscribeOk('c', "SELECT id FROM g.f WHERE name = 'x'");
      await server.ok("INSERT INTO g.f VALUES (1, 'x')");
      const [ma, mc] = [await c.waitFor(changeOf('a')), await c.waitFor(changeOf('c'))];
      assert.equal(rowOf(ma).id, '1');
      assert.equal(rowOf(mc).id, '1');
      assert.deepEqual(c.of('b').map((m) => m.type), ['error']);
      const live = await server.rows("SELECT subscription_id FROM system.live WHERE user_id = 'alice' AND table_name = 'f' ORDER BY subscription_id");
      assert.deepEqual(live.map((r) => r.subscription_id), ['a', 'c']);
    });

    it('a filter that fails on a row (BIGINT = TEXT) fails alone; every other subscription and later writes keep flowing', async () => {
      // Its own server: if the server dies here, no other test is affected.
      const own = await TestServer.start();
      try {
        await own.ok('CREATE NAMESPACE g');
        await own.ok("CREATE SHARED TABLE g.f (id BIGINT PRIMARY KEY, name TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
        await failingFilter(own);
      } finally {
        await own.dispose();
      }
    });

    const failingFilter = async (server: TestServer): Promise<void> => {
      const alice = await server.createUser('alice');
      const bob = await server.createUser('bob');
      const c = await LiveClient.connect(server.url, alice);
      const other = await LiveClient.connect(server.url, bob);
      clients.push(c, other);
      const alive = async (): Promise<void> => {
        const ok = await server.fetch('/health').then((r) => r.status === 200, () => false);
        if (!ok) assert.fail(`the server died; its last output:\n${server.output.join('').slice(-1200)}`);
      };
      // The throwing subscription is registered first, so it is evaluated before the others.
      const reply = await c.subscribe('boom', 'SELECT * FROM g.f WHERE id = name');
      await c.subscribeOk('ok1', 'SELECT * FROM g.f');
      await other.subscribeOk('ok2', 'SELECT id FROM g.f');
      const res = await server.sql("INSERT INTO g.f VALUES (2, 'abc')");
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await sleep(300);
      await alive();
      const m1 = await c.waitFor(changeOf('ok1'), 3_000);
      const m2 = await other.waitFor(changeOf('ok2'), 3_000);
      assert.equal(rowOf(m1).id, '2');
      assert.equal(rowOf(m2).id, '2');
      const res2 = await server.sql("INSERT INTO g.f VALUES (3, 'def')");
      assert.equal(res2.status, 200, JSON.stringify(res2.body));
      await c.waitFor((m) => changeOf('ok1')(m) && rowOf(m).id === '3', 3_000);
      await other.waitFor((m) => changeOf('ok2')(m) && rowOf(m).id === '3', 3_000);
      if (reply.type === 'subscription_ack') {
        // It failed alone: an error for it (or nothing), never a wrong row, and the connection stays open.
        assert.deepEqual(c.changes('boom'), []);
        assert.ok(c.isOpen);
      }
      await alive();
      assert.deepEqual(await server.rows('SELECT id FROM g.f WHERE id IN (2, 3) ORDER BY id'), [{ id: '2' }, { id: '3' }]);
    };
  });
});
