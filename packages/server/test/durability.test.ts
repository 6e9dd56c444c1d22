/**
 * Durability: everything survives a graceful restart (catalog, users, rows, tokens), and every
 * acknowledged write survives `kill -9` of the real server process during concurrent inserts, in
 * both durability modes. Not covered: power loss, which cannot be simulated here (in `fsync` mode
 * the WAL sync per commit group is checked in durability-modes.test.ts; see docs/operations.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, authHeader } from './harness.js';

describe('durability', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server.dispose();
  });

  it('keeps namespaces, tables, users, rows and tokens across a graceful restart', async () => {
    await server.ok('CREATE NAMESPACE keep');
    await server.ok('CREATE USER TABLE keep.notes (id BIGINT PRIMARY KEY, body TEXT)');
    const alice = await server.createUser('alice_keep');
    await server.ok("INSERT INTO keep.notes (id, body) VALUES (1, 'one'), (2, 'two')", { auth: alice });
    await server.ok("UPDATE keep.notes SET body = 'uno' WHERE id = 1", { auth: alice });
    await server.ok('DELETE FROM keep.notes WHERE id = 2', { auth: alice });
    const { access_token } = await server.login('alice_keep', alice.password);
    assert.equal(await server.stop(), 0, 'graceful stop exits 0');
    await server.launch();
    const rows = await server.rows('SELECT id, body FROM keep.notes ORDER BY id', { auth: { token: access_token } });
    assert.deepEqual(rows, [{ id: '1', body: 'uno' }]);
    const deleted = await server.rows('SELECT id FROM keep.notes WHERE _deleted = true', { auth: alice });
    assert.deepEqual(deleted, [{ id: '2' }]);
    const tables = await server.rows("SELECT table_name, table_type FROM system.tables WHERE namespace_id = 'keep'");
    assert.deepEqual(tables, [{ table_name: 'notes', table_type: 'user' }]);
    // Snowflake ids keep increasing across restarts.
    await server.ok("INSERT INTO keep.notes (id, body) VALUES (3, 'three')", { auth: alice });
    const seqs = await server.rows('SELECT id, _seq FROM keep.notes ORDER BY id', { auth: alice });
    assert.ok(BigInt(seqs[1]!._seq as string) > BigInt(seqs[0]!._seq as string));
  });

  for (const durability of ['fsync', 'process'] as const) {
    it(`loses no acknowledged insert when the server is killed with SIGKILL mid-load (durability = ${durability})`, async () => {
      const env = { KALAMDB_DURABILITY: durability };
      await server.stop();
      await server.launch(env);
      assert.match(server.output.join(''), new RegExp(`"durability":"${durability}"`));
      const ns = `crash_${durability}`;
      await server.ok(`CREATE NAMESPACE ${ns}`);
      await server.ok(`CREATE SHARED TABLE ${ns}.events (id BIGINT PRIMARY KEY, writer INT, body TEXT)`);
      const acknowledged = new Set<number>();
      let stop = false;
      let failures = 0;
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const id = w * 1_000_000 + i;
          try {
            const res = await fetch(`${server.url}/v1/api/sql`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...authHeader({ user: 'root', password: 'root-password-for-tests' }) },
              body: JSON.stringify({ sql: `INSERT INTO ${ns}.events (id, writer, body) VALUES ($1, $2, $3)`, params: [id, w, `row ${i}`] }),
            });
            const body = (await res.json()) as { status: string };
            if (res.status === 200 && body.status === 'success') acknowledged.add(id);
          } catch {
            failures++;
            return; // connection refused or reset: the server is gone
          }
        }
      };
      const writers = Array.from({ length: 8 }, (_, w) => writer(w + 1));
      await new Promise((r) => setTimeout(r, 1500));
      await server.kill();
      stop = true;
      await Promise.all(writers);
      assert.ok(acknowledged.size > 100, `expected a real load before the crash, got ${acknowledged.size} rows`);
      await server.launch(env);
      const rows = await server.rows(`SELECT id FROM ${ns}.events`);
      const stored = new Set(rows.map((r) => Number(r.id)));
      const missing = [...acknowledged].filter((id) => !stored.has(id));
      assert.deepEqual(missing, [], `${missing.length} acknowledged rows lost after kill -9`);
      assert.ok(failures <= 8);
    });
  }
});
