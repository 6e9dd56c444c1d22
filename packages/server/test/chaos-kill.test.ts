/**
 * Kill -9 at random moments (seeded) while writers insert, a flush policy and explicit flushes move
 * rows to Parquet, and compactions merge segments. After every restart the table holds exactly the
 * acknowledged rows, plus possibly rows whose request was in flight at the kill (their outcome is
 * unknown to the client), each once; STORAGE CHECK TABLE finds every file sound.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_PASSWORD, TestServer, authHeader } from './harness.js';

const SEED = Number(process.env.CHAOS_SEED ?? 20261201);
const ROUNDS = 3;

/** mulberry32: small, seeded, good enough to pick kill moments. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe(`kill -9 at random moments during writes, flushes and compactions (seed ${SEED}; rerun with CHAOS_SEED=<n>)`, () => {
  let server: TestServer;
  let args: string[];
  const rand = random(SEED);
  const acknowledged = new Set<number>();
  const uncertain = new Set<number>();

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-chaos-'));
    const config = join(dir, 'config.toml');
    // Compaction after every second segment, so kills land inside compactions too.
    writeFileSync(config, 'compact_segments_max = 2\n');
    args = ['--config', config];
    server = await TestServer.start(undefined, {}, args);
    await server.ok('CREATE NAMESPACE chaos');
    await server.ok("CREATE SHARED TABLE chaos.t (id BIGINT PRIMARY KEY, body TEXT) WITH (FLUSH_POLICY = 'rows:150')");
  });

  after(async () => {
    await server.dispose();
  });

  const post = async (sql: string, params?: unknown[]): Promise<boolean> => {
    const res = await fetch(`${server.url}/v1/api/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeader({ user: 'root', password: ROOT_PASSWORD }) },
      body: JSON.stringify(params ? { sql, params } : { sql }),
    });
    const body = (await res.json()) as { status: string };
    return res.status === 200 && body.status === 'success';
  };

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: every acknowledged row, once, after the kill`, async () => {
      let stop = false;
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const id = round * 10_000_000 + w * 100_000 + i;
          uncertain.add(id);
          try {
            if (await post('INSERT INTO chaos.t (id, body) VALUES ($1, $2)', [id, `r${round} w${w} #${i}`])) acknowledged.add(id);
            uncertain.delete(id);
          } catch {
            return; // the server is gone: this id's outcome is unknown
          }
        }
      };
      const storage = async (): Promise<void> => {
        for (let i = 0; !stop; i++) {
          try {
            await post(i % 3 === 2 ? 'STORAGE COMPACT TABLE chaos.t' : 'STORAGE FLUSH TABLE chaos.t');
          } catch {
            return;
          }
          await new Promise((r) => setTimeout(r, 40 + rand() * 120));
        }
      };
      const workers = [...[1, 2, 3, 4].map((w) => writer(w)), storage()];
      const killAfterMs = 400 + Math.floor(rand() * 1600);
      await new Promise((r) => setTimeout(r, killAfterMs));
      await server.kill();
      stop = true;
      await Promise.all(workers);
      assert.ok(acknowledged.size > 0, 'some writes were acknowledged');

      await server.launch({}, args);
      const rows = await server.rows('SELECT id FROM chaos.t');
      const ids = rows.map((r) => Number(r.id));
      const present = new Set(ids);
      assert.equal(ids.length, present.size, `no row twice (kill after ${killAfterMs} ms)`);
      const lost = [...acknowledged].filter((id) => !present.has(id));
      assert.deepEqual(lost, [], `acknowledged rows lost (kill after ${killAfterMs} ms)`);
      const invented = ids.filter((id) => !acknowledged.has(id) && !uncertain.has(id));
      assert.deepEqual(invented, [], 'rows nobody wrote');
      // In-flight rows that made it are now known; the others are gone for good.
      for (const id of uncertain) if (present.has(id)) acknowledged.add(id);
      uncertain.clear();
      // Point lookups agree with the scan, hot or cold.
      for (const id of [...acknowledged].slice(-5)) {
        assert.equal((await server.rows('SELECT id FROM chaos.t WHERE id = $1', { params: [id] })).length, 1, `point lookup of ${id}`);
      }
      const check = await server.rows('STORAGE CHECK TABLE chaos.t');
      assert.deepEqual(check.filter((r) => r.status !== 'ok'), [], 'every segment sound');
    });
  }
});
