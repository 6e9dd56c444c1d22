/**
 * The real `kalam` binary against the real server: -c with table/json/csv output, -f scripts that
 * stop at the first error, exit codes (0 ok, 1 SQL error, 2 connection/auth failure), the REPL fed
 * through stdin (multi-line statements, backslash commands), --help and --version. The REPL under
 * a real pseudo-terminal (Ctrl-C, Ctrl-D, \watch, the password prompt) is in repl.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kalam, ROOT_PASSWORD, TestServer, type Server } from './helpers.js';

describe('kalam CLI', () => {
  let server: Server;
  let conn: string[];
  before(async () => {
    server = await TestServer.start();
    conn = ['--url', server.url, '--user', 'root', '--password', ROOT_PASSWORD];
    await server.ok('CREATE NAMESPACE cli');
    await server.ok("CREATE SHARED TABLE cli.t (id BIGINT PRIMARY KEY, name TEXT)");
    await server.ok("INSERT INTO cli.t VALUES (1, 'one'), (2, 'two, \"quoted\"')");
  });
  after(async () => {
    await server.dispose();
  });

  it('-c prints an aligned table, JSON lines or CSV', async () => {
    const table = await kalam([...conn, '--format', 'table', '-c', 'SELECT id, name FROM cli.t ORDER BY id']);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout, 'id | name\n---+--------------\n1  | one\n2  | two, "quoted"\n(2 rows)\n');
    const json = await kalam([...conn, '--format', 'json', '-c', 'SELECT id, name FROM cli.t ORDER BY id']);
    assert.equal(json.stdout, '{"id":"1","name":"one"}\n{"id":"2","name":"two, \\"quoted\\""}\n');
    const csv = await kalam([...conn, '--format', 'csv', '-c', 'SELECT id, name FROM cli.t ORDER BY id']);
    assert.equal(csv.stdout, 'id,name\n1,one\n2,"two, ""quoted"""\n');
    const dml = await kalam([...conn, '--format', 'table', '-c', "INSERT INTO cli.t VALUES (3, 'three')"]);
    assert.equal(dml.stdout, 'Inserted 1 row(s)\n');
  });

  it('takes the connection from the environment, and prints timing with --timing', async () => {
    const res = await kalam(['--format', 'csv', '--timing', '-c', 'SELECT count(*) AS n FROM cli.t'], '', {
      KALAMDB_URL: server.url, KALAMDB_USER: 'root', KALAMDB_PASSWORD: ROOT_PASSWORD,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^n\n\d+\n$/);
    assert.match(res.stderr, /Time: \d+\.\d ms/);
  });

  it('-f runs statements in order and stops at the first error with exit code 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalam-script-'));
    const script = join(dir, 'script.sql');
    writeFileSync(script, "-- a comment; not a statement\nINSERT INTO cli.t VALUES (10, 'a;b');\nSELECT name FROM cli.t WHERE id = 10;\nSELECT nope FROM cli.t;\nINSERT INTO cli.t VALUES (11, 'never');\n");
    const res = await kalam([...conn, '--format', 'csv', '-f', script]);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, 'Inserted 1 row(s)\nname\na;b\n');
    assert.match(res.stderr, /ERROR SQL_EXECUTION_ERROR: .*nope/);
    const check = await kalam([...conn, '--format', 'csv', '-c', 'SELECT count(*) AS n FROM cli.t WHERE id = 11']);
    assert.equal(check.stdout, 'n\n0\n', 'nothing after the error ran');
  });

  it('exit code 2 for bad credentials and unreachable servers, 1 for SQL errors', async () => {
    const auth = await kalam(['--url', server.url, '--user', 'root', '--password', 'wrong', '-c', 'SELECT 1']);
    assert.equal(auth.code, 2);
    assert.match(auth.stderr, /INVALID_CREDENTIALS/);
    const down = await kalam(['--url', 'http://127.0.0.1:1', '--user', 'root', '--password', 'x', '-c', 'SELECT 1']);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /CONNECTION_FAILED/);
    const sql = await kalam([...conn, '-c', 'SELEC 1']);
    assert.equal(sql.code, 1);
    assert.match(sql.stderr, /ERROR INVALID_SQL/);
    const usage = await kalam(['--bogus']);
    assert.equal(usage.code, 2);
    // An empty password (an unset shell variable expanded) is no password: named as missing, never sent.
    for (const [args, env] of [[['--password', ''], {}], [[], { KALAMDB_PASSWORD: '' }]] as const) {
      const empty = await kalam(['--url', server.url, '--user', 'root', ...args, '-c', 'SELECT 1'], '', env);
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /no password given for user 'root'/);
    }
  });

  it('the REPL reads statements from stdin: multi-line statements, backslash shortcuts', async () => {
    const input = 'SELECT id\n  FROM cli.t\n  WHERE id = 1;\n\\dt cli\n\\dn\n\\d cli.t\n\\timing\nSELECT 1 AS one;\n\\q\n';
    const res = await kalam([...conn, '--format', 'csv'], input);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^id\n1\n/);
    assert.match(res.stdout, /namespace_id,table_name,table_type,created_at\ncli,t,shared,\d+/);
    assert.match(res.stdout, /namespace_id,table_count,created_at\n/);
    assert.match(res.stdout, /column_name,data_type,is_nullable,is_primary_key,column_default,ordinal_position\nid,BIGINT,false,true,,1\nname,TEXT,true,false,,2/);
    assert.match(res.stdout, /Timing is on\.\none\n1\n/);
    assert.match(res.stderr, /Time: /);
  });

  it('--help and --version', async () => {
    const help = await kalam(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage:[\s\S]*-c "SQL"[\s\S]*Exit codes/);
    const version = await kalam(['--version']);
    assert.equal(version.stdout, 'kalam 0.1.0\n');
  });
});
