/**
 * A live-query resume from before the table's deleted-rows retention is refused (the deletes before
 * it may be purged, so only a snapshot is exact), while `from` "1" (every change, for a client that
 * holds nothing) is served. The server is restarted with its clock 3 hours ahead (a preloaded module
 * moves Date.now), so a table with DELETED_RETENTION_HOURS = 1 has a `_seq` older than its retention.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT_PASSWORD, TestServer } from './harness.js';
import { LiveClient } from './ws-client.js';

describe('resume past the deleted-rows retention', () => {
  let server: TestServer;
  const shiftDir = mkdtempSync(join(tmpdir(), 'kalamdb-clock-'));
  const shift = join(shiftDir, 'shift.mjs');
  writeFileSync(shift, 'const real = Date.now; Date.now = () => real() + 3 * 3600 * 1000;\n');

  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server.dispose();
    rmSync(shiftDir, { recursive: true, force: true });
  });

  it('is refused with a reason; from "1" is served', async () => {
    await server.ok('CREATE NAMESPACE ret');
    await server.ok("CREATE SHARED TABLE ret.t (id BIGINT PRIMARY KEY, v TEXT) WITH (DELETED_RETENTION_HOURS = 1)");
    await server.ok("INSERT INTO ret.t VALUES (1, 'a'), (2, 'b')");
    const s = String((await server.rows('SELECT max(_seq) AS s FROM ret.t'))[0]!.s);
    await server.stop();
    await server.launch({ NODE_OPTIONS: `--import ${pathToFileURL(shift).href}` });
    const c = await LiveClient.connect(server.url, { user: 'root', password: ROOT_PASSWORD });
    try {
      const refused = await c.subscribe('old', 'SELECT * FROM ret.t', { from: s });
      assert.equal(refused.type, 'error', JSON.stringify(refused));
      assert.match(refused.message!, /^Cannot resume ret\.t from _seq \d+: it is older than the retained history \(DELETED_RETENTION_HOURS = 1\)\. Subscribe again without 'from'/);
      const all = await c.subscribe('all', 'SELECT * FROM ret.t', { from: '1' });
      assert.equal(all.type, 'subscription_ack', JSON.stringify(all));
      assert.equal(all.total_rows, 2);
    } finally {
      c.terminate();
    }
  });
});

describe('what one resume may read, and what held initial data is charged (result_bytes_max 1 MiB)', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.startWithConfig({ result_bytes_max: 1024 * 1024 });
  });
  after(async () => {
    await server.dispose();
  });

  it('a resume over result_bytes_max of changes is refused with a reason, the connection lives, and smaller ones are served', async () => {
    // An attack review: 20 resumes of a 200 MB partition took the server to 5.9 GB and a V8 out-of-memory.
    await server.ok('CREATE NAMESPACE big');
    await server.ok("CREATE SHARED TABLE big.t (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC', FLUSH_POLICY = 'rows:100000000')");
    const pad = 'x'.repeat(1000);
    for (let b = 0; b < 4; b++) {
      await server.ok(`INSERT INTO big.t (id, v) VALUES ${Array.from({ length: 500 }, (_, i) => `(${b * 500 + i}, '${pad}')`).join(', ')}`);
    }
    const recent = String((await server.rows('SELECT max(_seq) AS s FROM big.t'))[0]!.s);
    const c = await LiveClient.connect(server.url, { user: 'root', password: ROOT_PASSWORD });
    try {
      for (let i = 0; i < 3; i++) {
        // Again and again: refused at once, without reading the partition again.
        const refused = await c.subscribe(`all${i}`, 'SELECT * FROM big.t', { from: '1' });
        assert.equal(refused.type, 'error', JSON.stringify(refused).slice(0, 300));
        assert.match(refused.message!, /^Cannot resume big\.t from _seq 1: its unflushed changes are more than 1048576 bytes \(result_bytes_max\)\. Subscribe again without 'from'/);
      }
      await server.ok('INSERT INTO big.t (id, v) VALUES (5000, \'new\')');
      // The same partition is refused whatever the range (the hot tier is read whole): flush it, and a
      // resume from just before the last row reads one cold version.
      await server.ok('STORAGE FLUSH TABLE big.t');
      await eventually(async () => Number((await server.rows("SELECT count(*) AS n FROM system.jobs WHERE job_type = 'flush' AND status = 'completed'"))[0]!.n) >= 1);
      const small = await c.subscribe('recent', 'SELECT id FROM big.t', { from: recent });
      assert.equal(small.type, 'subscription_ack', JSON.stringify(small).slice(0, 300));
      assert.equal(small.total_rows, 1);
      const fromCold = await c.subscribe('cold', 'SELECT * FROM big.t', { from: '1' });
      assert.equal(fromCold.type, 'error', JSON.stringify(fromCold).slice(0, 300));
      assert.match(fromCold.message!, /^Cannot resume big\.t from _seq 1: more than 100000 versions or 1048576 bytes \(result_bytes_max\) were flushed since/);
      assert.equal((await c.request({ type: 'ping' }, (m) => m.type === 'pong')).type, 'pong');
    } finally {
      c.terminate();
    }
  });

  it('10,000 small rows: ~300 KB as JSON, ~1.5 MB as row objects, refused past a 1 MiB budget; 4,000 are held', async () => {
    // An attack review: two 1M-row snapshots were accepted within a 64 MiB budget and held 600 MB.
    await server.ok('CREATE NAMESPACE small');
    await server.ok("CREATE SHARED TABLE small.t (id BIGINT PRIMARY KEY, a SMALLINT, b SMALLINT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    for (let k = 0; k < 10; k++) {
      await server.ok(`INSERT INTO small.t (id, a, b) VALUES ${Array.from({ length: 1000 }, (_, i) => `(${k * 1000 + i}, 1, 2)`).join(', ')}`);
    }
    const c = await LiveClient.connect(server.url, { user: 'root', password: ROOT_PASSWORD });
    try {
      const refused = await c.subscribe('all', 'SELECT * FROM small.t', { batch_size: 1 });
      assert.equal(refused.type, 'error', JSON.stringify(refused).slice(0, 200));
      assert.match(String(refused.message), /result_bytes_max/);
      const held = await c.subscribe('some', 'SELECT * FROM small.t WHERE id < 4000', { batch_size: 1 });
      assert.equal(held.type, 'subscription_ack', JSON.stringify(held).slice(0, 200));
    } finally {
      c.terminate();
    }
  });
});

async function eventually(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
