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
