/**
 * A cold partition's directory lost while the server was stopped (the "faults" issue): the hot tier
 * says rows were flushed there, so after the restart the partition is unavailable (409 naming its
 * manifest) instead of available without those rows while their keys still refuse INSERTs as
 * duplicates; a partition path that cannot be listed makes that partition unavailable, not the start
 * fail; STORAGE CHECK TABLE reports both; STORAGE REPAIR TABLE brings the table back with what is left (its hot rows), forgetting the
 * lost keys.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, assertError, jobIdOf } from './harness.js';

describe('a lost partition directory', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  const dir = (...parts: string[]): string => join(server.dataDir, 'storage', 'lost', ...parts);

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice');
    await server.ok('CREATE NAMESPACE lost');
    // Every flushed row deleted and the deletes flushed: its partition holds nothing live.
    await server.ok("CREATE SHARED TABLE lost.emptied (id BIGINT PRIMARY KEY, body TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')");
    await server.ok("INSERT INTO lost.emptied VALUES (1, 'a'), (2, 'b')");
    await server.flushAndWait('lost.emptied');
    await server.ok('DELETE FROM lost.emptied WHERE id > 0');
    await server.flushAndWait('lost.emptied');
    for (const t of ['gone', 'file', 'fine']) {
      await server.ok(`CREATE SHARED TABLE lost.${t} (id BIGINT PRIMARY KEY, body TEXT) WITH (ACCESS_LEVEL = 'PUBLIC')`);
      await server.ok(`INSERT INTO lost.${t} SELECT i, 'cold ' || i FROM range(1, 101) AS r(i)`);
      await server.flushAndWait(`lost.${t}`);
      await server.ok(`INSERT INTO lost.${t} VALUES (101, 'hot')`);
    }
    await server.ok('CREATE USER TABLE lost.notes (id BIGINT PRIMARY KEY, body TEXT)');
    await server.ok("INSERT INTO lost.notes VALUES (1, 'a1'), (2, 'a2')", { auth: alice });
    await server.flushAndWait('lost.notes');
  });
  after(async () => {
    await server.dispose();
  });

  it('is unavailable after a restart, not silently empty; an unlistable one too; the rest starts', async () => {
    const aliceId = String((await server.rows("SELECT account_id FROM system.users WHERE user_id = 'alice'"))[0]!.account_id);
    assert.equal(await server.stop(), 0);
    rmSync(dir('gone'), { recursive: true });
    // (As a backup leaves it when its manifest lists no segment.)
    rmSync(dir('emptied'), { recursive: true });
    rmSync(dir('notes', aliceId), { recursive: true });
    // A partition path that is not a directory: listing it fails (as a permission error would).
    rmSync(dir('file'), { recursive: true });
    writeFileSync(dir('file'), 'not a directory');
    await server.launch();
    const gone = await server.sql('SELECT count(*) FROM lost.gone');
    assertError(gone, 409, 'TABLE_UNAVAILABLE', /storage\/lost\/gone\/manifest\.json: missing with its whole partition directory/);
    assertError(await server.sql('SELECT * FROM lost.notes', { auth: alice }), 409, 'TABLE_UNAVAILABLE', new RegExp(`lost/notes/${aliceId}/manifest\\.json`));
    assertError(await server.sql('SELECT count(*) FROM lost.file'), 409, 'TABLE_UNAVAILABLE', /storage\/lost\/file\/manifest\.json: cannot be read/);
    // A write that needs the lost rows fails cleanly too.
    const write = await server.sql("INSERT INTO lost.gone VALUES (7, 'again')");
    assert.ok(write.status === 409 || write.status === 400, JSON.stringify(write.body));
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM lost.fine'), [{ n: '101' }]);
    // A partition with no live row in its segments lost nothing: served, empty.
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM lost.emptied'), [{ n: '0' }]);
    // STORAGE CHECK TABLE reports both, not nothing (and not a 500).
    const check = async (t: string): Promise<unknown[]> => (await server.rows(`STORAGE CHECK TABLE lost.${t}`)).map((r) => [r.file, r.status]);
    assert.deepEqual(await check('gone'), [['manifest.json', 'missing']]);
    assert.deepEqual(await check('file'), [['manifest.json', 'damaged']]);
  });

  it('STORAGE REPAIR TABLE brings it back with its hot rows and forgets the lost keys', async () => {
    const [res] = await server.ok('STORAGE REPAIR TABLE lost.gone');
    const job = await server.waitForJob(jobIdOf(res!.message));
    assert.equal(job.status, 'completed', JSON.stringify(job));
    const result = JSON.parse(String(job.result)) as { partitions: { forgotten_keys: number }[] };
    assert.equal(result.partitions[0]!.forgotten_keys, 100);
    assert.deepEqual(await server.rows('SELECT id, body FROM lost.gone'), [{ id: '101', body: 'hot' }]);
    await server.ok("INSERT INTO lost.gone VALUES (7, 'again')");
    assert.deepEqual(await server.rows('SELECT count(*) AS n FROM lost.gone'), [{ n: '2' }]);
  });
});
