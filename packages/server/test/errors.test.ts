/**
 * Error paths of the HTTP API: the error envelope (status "error", results [], took, error.code and
 * error.message), every protocol code with its HTTP status (MISSING_AUTHORIZATION, INVALID_CREDENTIALS,
 * EMPTY_SQL, PARAMS_WITH_BATCH, INVALID_SQL, SQL_EXECUTION_ERROR, PAYLOAD_TOO_LARGE), malformed and
 * non-object JSON bodies, unknown routes, the "Statement N failed: " prefix in batches, that a
 * failed statement changes nothing, and that the server stays healthy (no 500s) after all of it.
 * Not covered here: PERMISSION_DENIED rules (auth.test.ts, ddl.test.ts), RATE_LIMIT_EXCEEDED (no
 * rate limiter is specified for the core server), type-specific errors (types.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { ROOT_PASSWORD, TestServer, assertError, authHeader, type SqlResponse } from './harness.js';

const ROOT = authHeader({ user: 'root', password: ROOT_PASSWORD });
const MIB = 1024 * 1024;

function isSqlResponse(value: unknown): value is SqlResponse {
  return typeof value === 'object' && value !== null && 'status' in value && 'results' in value;
}

describe('errors', () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE e');
  });
  after(async () => {
    await server.dispose();
  });

  /** POSTs a raw body to /v1/api/sql and returns the parsed envelope. */
  const rawSql = async (body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = ROOT): Promise<{ status: number; body: SqlResponse }> => {
    const res = await server.fetch('/v1/api/sql', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : new Blob([body]) });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      assert.fail(`response is not JSON (${res.status}): ${text.slice(0, 200)}`);
    }
    assert.ok(isSqlResponse(parsed), `not an SQL envelope: ${text.slice(0, 200)}`);
    return { status: res.status, body: parsed };
  };

  describe('envelope', () => {
    it('an error has exactly status, results, took and error{code, message}', async () => {
      const res = await server.sql('SELECT * FROM e.no_such_table');
      assert.equal(res.status, 400);
      assert.deepEqual(Object.keys(res.body).sort(), ['error', 'results', 'status', 'took']);
      assert.equal(res.body.status, 'error');
      assert.deepEqual(res.body.results, []);
      assert.deepEqual(Object.keys(res.body.error!).sort(), ['code', 'message']);
      assert.equal(res.body.error!.code, 'SQL_EXECUTION_ERROR');
      assert.match(res.body.error!.message, /e\.no_such_table/);
      assert.equal(typeof res.body.took, 'number');
      assert.ok(res.body.took >= 0);
      assert.equal(Math.round(res.body.took * 1000) / 1000, res.body.took, 'took has at most 3 decimals');
    });

    it('a success has status, results and took in ms with at most 3 decimals', async () => {
      const res = await server.sql('SELECT 1 AS one');
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ['results', 'status', 'took']);
      assert.equal(res.body.status, 'success');
      assert.equal(Math.round(res.body.took * 1000) / 1000, res.body.took);
      assert.ok(res.body.took < 10_000);
    });
  });

  describe('authentication errors', () => {
    it('MISSING_AUTHORIZATION 401 without credentials', async () => {
      assertError(await server.sql('SELECT 1', { auth: null }), 401, 'MISSING_AUTHORIZATION');
      assertError(await server.sql('SELECT 1', { auth: { header: '' } }), 401, 'MISSING_AUTHORIZATION');
      assertError(await server.sql('SELECT 1', { auth: { header: 'Digest abc' } }), 401, 'MISSING_AUTHORIZATION', /^Unsupported authorization scheme: use 'Bearer <token>'/);
      const basic = await server.sql('SELECT 1', { auth: { header: 'BasicdXNlcjpwYXNz' } });
      assertError(basic, 401, 'MISSING_AUTHORIZATION');
      assert.doesNotMatch(JSON.stringify(basic.body), /dxnlcjpwyxnz/i);
      // A token glued to its scheme is not echoed back (nor into the request log).
      const glued = await server.sql('SELECT 1', { auth: { header: 'BearereyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyb290In0.c2lnbmF0dXJl' } });
      assertError(glued, 401, 'MISSING_AUTHORIZATION', /^Unsupported authorization scheme: use/);
      assert.doesNotMatch(JSON.stringify(glued.body), /eyj/i);
    });

    it('INVALID_CREDENTIALS 401 for a bad password, an unknown user or malformed Basic credentials', async () => {
      assertError(await server.sql('SELECT 1', { auth: { user: 'root', password: 'wrong-password' } }), 401, 'INVALID_CREDENTIALS');
      assertError(await server.sql('SELECT 1', { auth: { user: 'nobody_here', password: 'whatever-pw' } }), 401, 'INVALID_CREDENTIALS');
      assertError(await server.sql('SELECT 1', { auth: { header: `Basic ${Buffer.from('no-colon').toString('base64')}` } }), 401, 'INVALID_CREDENTIALS');
    });

    it('INVALID_CREDENTIALS 401 for garbage, forged, unsigned, tampered and expired tokens', async () => {
      assertError(await server.sql('SELECT 1', { auth: { token: 'abc.def.ghi' } }), 401, 'INVALID_CREDENTIALS');
      assertError(await server.sql('SELECT 1', { auth: { token: 'not-a-jwt' } }), 401, 'INVALID_CREDENTIALS');
      const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const claims = { role: 'system', gen: 1, typ: 'access', sub: 'root', iss: 'kalamdb', iat: now, exp: now + 3600 };
      const head = b64({ alg: 'HS256', typ: 'JWT' });
      const forgedSig = createHmac('sha256', 'not-the-server-secret').update(`${head}.${b64(claims)}`).digest('base64url');
      assertError(await server.sql('SELECT 1', { auth: { token: `${head}.${b64(claims)}.${forgedSig}` } }), 401, 'INVALID_CREDENTIALS');
      assertError(await server.sql('SELECT 1', { auth: { token: `${b64({ alg: 'none' })}.${b64(claims)}.` } }), 401, 'INVALID_CREDENTIALS');
      // A real token with its payload changed (expired, or another user) no longer verifies.
      const { access_token } = await server.login('root', ROOT_PASSWORD);
      const [h, p, s] = access_token.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
      assertError(await server.sql('SELECT 1', { auth: { token: `${h}.${b64({ ...payload, exp: now - 10 })}.${s}` } }), 401, 'INVALID_CREDENTIALS');
      assertError(await server.sql('SELECT 1', { auth: { token: `${h}.${b64({ ...payload, sub: 'someone' })}.${s}` } }), 401, 'INVALID_CREDENTIALS');
      // The untouched token works.
      assert.equal((await server.sql('SELECT 1', { auth: { token: access_token } })).status, 200);
    });
  });

  describe('request errors', () => {
    it('EMPTY_SQL 400 for blank SQL, lone semicolons and comments', async () => {
      for (const sql of ['', '   ', '\n\t', ';', ' ; ; ', '-- nothing here', '/* nothing */']) {
        assertError(await server.sql(sql), 400, 'EMPTY_SQL');
      }
    });

    it('PARAMS_WITH_BATCH 400 when params come with more than one statement, and nothing runs', async () => {
      await server.ok('CREATE TABLE e.pb (id INT PRIMARY KEY)');
      assertError(await server.sql('INSERT INTO e.pb VALUES ($1); INSERT INTO e.pb VALUES (2)', { params: [1] }), 400, 'PARAMS_WITH_BATCH');
      assert.deepEqual(await server.rows('SELECT id FROM e.pb'), []);
      // An empty params array with a batch is fine.
      assert.equal((await server.sql('SELECT 1; SELECT 2', { params: [] })).status, 200);
    });

    it('INVALID_SQL 400 for syntax errors, with the position in the message', async () => {
      assertError(await server.sql('SELECT FROM WHERE'), 400, 'INVALID_SQL', /position \d+/);
      assertError(await server.sql('SELECT * FROM e.t WHERE (1 = 1'), 400, 'INVALID_SQL', /position \d+|end of/);
      assertError(await server.sql("SELECT 'unterminated"), 400, 'INVALID_SQL', /position \d+/);
      assertError(await server.sql('INSERT INTO e.pb VALUES'), 400, 'INVALID_SQL', /position \d+|end of/);
    });

    it('INVALID_SQL 400 for unsupported statements, naming them', async () => {
      const statements: Array<[string, RegExp]> = [
        ['SELEC 1', /SELEC/],
        ['GRANT ALL ON e.pb TO bob', /GRANT/],
        ['VACUUM', /VACUUM/],
        ['SET threads = 1', /SET/],
        ['CREATE INDEX i ON e.pb (id)', /INDEX/],
        ['ALTER TABLE e.pb RENAME TO pb2', /ALTER TABLE/],   // ADD COLUMN and the rest: alter-table.test.ts
        ['PRAGMA version', /PRAGMA/],
        ["COPY e.pb TO '/tmp/out.csv'", /COPY/],
        ["ATTACH '/tmp/x.db' AS x", /ATTACH/],
        ['INSTALL httpfs', /INSTALL/],
        ['LOAD httpfs', /LOAD/],
        ["EXPORT DATABASE '/tmp/x'", /EXPORT/],
        ['TRUNCATE e.pb', /TRUNCATE/],
        ['EXPLAIN SELECT 1', /EXPLAIN/],
      ];
      for (const [sql, name] of statements) assertError(await server.sql(sql), 400, 'INVALID_SQL', name);
    });

    it('INVALID_SQL 400 for SELECT ... INTO and SELECT ... FOR UPDATE', async () => {
      assertError(await server.sql('SELECT 1 INTO e.newtable'), 400, 'INVALID_SQL', /INTO/);
      assertError(await server.sql('SELECT id FROM e.pb FOR UPDATE'), 400, 'INVALID_SQL', /FOR UPDATE|lock/i);
    });

    it('RETURNING is either honoured or refused, never silently dropped', async () => {
      await server.ok('CREATE TABLE e.ret (id INT PRIMARY KEY, v TEXT)');
      const res = await server.sql("INSERT INTO e.ret VALUES (1, 'a') RETURNING id");
      if (res.status === 200) {
        assert.deepEqual(res.body.results[0]!.rows, [[1]], `RETURNING accepted but rows not returned: ${JSON.stringify(res.body)}`);
      } else {
        assertError(res, 400, 'INVALID_SQL', /RETURNING/);
        assert.deepEqual(await server.rows('SELECT id FROM e.ret'), []);
      }
    });

    it('INVALID_SQL 400 for identifiers outside [A-Za-z_][A-Za-z0-9_]*', async () => {
      assertError(await server.sql('SELECT * FROM "bad-name"'), 400, 'INVALID_SQL', /bad-name/);
      assertError(await server.sql('SELECT * FROM e."has space"'), 400, 'INVALID_SQL', /has space/);
      assertError(await server.sql('SELECT * FROM tablé'), 400, 'INVALID_SQL', /tablé/);
      assertError(await server.sql('CREATE TABLE e."x-y" (id INT PRIMARY KEY)'), 400, 'INVALID_SQL', /x-y/);
      assertError(await server.sql('CREATE TABLE e.ok_name ("bad col" INT PRIMARY KEY)'), 400, 'INVALID_SQL', /bad col/);
      assertError(await server.sql('SELECT 1', { namespace: 'bad-ns' }), 400, 'INVALID_SQL', /bad-ns/);
      assertError(await server.sql('SELECT 1', { namespace: "x'; DROP" }), 400, 'INVALID_SQL');
    });

    it('SQL_EXECUTION_ERROR 400 for runtime failures: unknown table, unknown namespace, duplicate key, read-only system tables', async () => {
      assertError(await server.sql('SELECT * FROM e.missing'), 400, 'SQL_EXECUTION_ERROR', /'e\.missing' does not exist/);
      assertError(await server.sql('SELECT * FROM nowhere.missing'), 400, 'SQL_EXECUTION_ERROR', /nowhere\.missing/);
      assertError(await server.sql('INSERT INTO e.missing VALUES (1)'), 400, 'SQL_EXECUTION_ERROR', /e\.missing/);
      await server.ok('CREATE TABLE e.dupk (id INT PRIMARY KEY); INSERT INTO e.dupk VALUES (1)');
      assertError(await server.sql('INSERT INTO e.dupk VALUES (1)'), 400, 'SQL_EXECUTION_ERROR', /[Dd]uplicate/);
      assertError(await server.sql("INSERT INTO system.users (user_id) VALUES ('x')"), 400, 'SQL_EXECUTION_ERROR', /system\.users/);
      assertError(await server.sql("UPDATE system.users SET role = 'system'"), 400, 'SQL_EXECUTION_ERROR', /system\.users/);
      assertError(await server.sql('DELETE FROM system.users'), 400, 'SQL_EXECUTION_ERROR', /system\.users/);
      assertError(await server.sql('SELECT * FROM system.nope'), 400, 'SQL_EXECUTION_ERROR', /system\.nope/);
    });

    it('refuses params that are objects or arrays in a query', async () => {
      const res = await server.sql('SELECT $1 AS x', { params: [{ a: 1 }] });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error!.message, /\$1/);
    });
  });

  describe('limits', () => {
    it('PAYLOAD_TOO_LARGE 413 for SQL text over 1 MiB; exactly 1 MiB is accepted', async () => {
      const head = 'SELECT 1 AS x -- ';
      const atLimit = head + 'x'.repeat(MIB - head.length);
      assert.equal(Buffer.byteLength(atLimit), MIB);
      const ok = await server.sql(atLimit);
      assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
      assertError(await server.sql(atLimit + 'x'), 413, 'PAYLOAD_TOO_LARGE', /SQL/);
      // Multi-byte characters count as bytes.
      const wide = head + 'é'.repeat(MIB / 2);
      assertError(await server.sql(wide), 413, 'PAYLOAD_TOO_LARGE');
    });

    it('more than 50 params is a 400 SQL_EXECUTION_ERROR (upstream\'s words); exactly 50 are accepted', async () => {
      const fifty = Array.from({ length: 50 }, (_, i) => `$${i + 1}`).join(' + ');
      const params = Array.from({ length: 50 }, (_, i) => i + 1);
      const ok = await server.rows(`SELECT ${fifty} AS total`, { params });
      assert.equal(Number(ok[0]!.total), 1275);
      const fiftyOne = Array.from({ length: 51 }, (_, i) => `$${i + 1}`).join(' + ');
      assertError(await server.sql(`SELECT ${fiftyOne} AS total`, { params: [...params, 51] }), 400, 'SQL_EXECUTION_ERROR',
        /^Parameter count exceeded: maximum 50 parameters allowed, got 51$/);
    });

    /** GET /health on a fresh connection (never a pooled socket the server may have closed). */
    const freshHealth = (): Promise<number> => new Promise((resolve, reject) => {
      const req = httpGet({ host: '127.0.0.1', port: server.port, path: '/health', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });

    it('PAYLOAD_TOO_LARGE 413 for a request body over the limit, and the server keeps serving', async () => {
      for (const size of [3 * MIB, 8 * MIB]) {
        const body = JSON.stringify({ sql: 'SELECT 1', padding: 'x'.repeat(size) });
        let status: number | null = null;
        try {
          const res = await server.fetch('/v1/api/sql', { method: 'POST', headers: { 'content-type': 'application/json', ...ROOT }, body });
          status = res.status;
          const parsed = JSON.parse(await res.text()) as SqlResponse;
          assertError({ status: res.status, body: parsed }, 413, 'PAYLOAD_TOO_LARGE', /[Bb]ody|bytes/);
        } catch (error) {
          // The server may close the connection after answering 413 while the client still sends.
          if (status !== null) throw error;
          assert.match(String((error as Error).cause ?? error), /socket|closed|reset|EPIPE/i);
        }
        assert.equal(await freshHealth(), 200);
      }
    });

    it('a 413 that closes the connection says so (Connection: close), so clients do not reuse a dead socket', async () => {
      // SQL over 1 MiB in a body under the body limit: the server reads the whole request, then answers 413.
      const body = JSON.stringify({ sql: `SELECT 1 -- ${'x'.repeat(MIB)}` });
      const head = [
        'POST /v1/api/sql HTTP/1.1', `Host: 127.0.0.1:${server.port}`, 'Content-Type: application/json',
        `Authorization: ${ROOT.authorization!}`, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: keep-alive', '', '',
      ].join('\r\n');
      const { response, closedAfter } = await new Promise<{ response: string; closedAfter: boolean }>((resolve, reject) => {
        const socket = connect(server.port, '127.0.0.1');
        let text = '';
        let done = false;
        socket.on('error', () => undefined); // the server may reset while we still send
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          const length = /content-length: *(\d+)/i.exec(text);
          if (!done && end !== -1 && length && text.length >= end + 4 + Number(length[1])) {
            done = true;
            // Response complete: does the socket close within 500 ms?
            const timer = setTimeout(() => { socket.destroy(); resolve({ response: text, closedAfter: false }); }, 500);
            socket.once('close', () => { clearTimeout(timer); resolve({ response: text, closedAfter: true }); });
          }
        });
        socket.once('close', () => { if (!done) reject(new Error(`closed before a full response: ${text.slice(0, 200)}`)); });
        socket.write(head);
        socket.write(body);
      });
      assert.match(response, /^HTTP\/1\.1 413 /);
      const connectionHeader = /\r\nconnection: *([^\r]*)/i.exec(response)?.[1]?.toLowerCase() ?? '';
      if (closedAfter) assert.equal(connectionHeader, 'close', 'the server closed the connection after a 413 that said keep-alive');
      assert.equal(await freshHealth(), 200);
    });
  });

  describe('bad bodies and routes', () => {
    it('malformed JSON bodies get a 400 error envelope that says the JSON is malformed', async () => {
      for (const body of ['{', 'not json', '{"sql": }', "{'sql': 'SELECT 1'}", '{"sql":"SELECT 1",}', '']) {
        const res = await rawSql(body);
        assert.equal(res.status, 400, `${body}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.status, 'error');
        assert.deepEqual(res.body.results, []);
        assert.match(res.body.error!.message, /JSON/, body);
      }
      const bytes = await rawSql(new Uint8Array([0xff, 0xfe, 0x7b]));
      assert.equal(bytes.status, 400);
    });

    it('non-object bodies and wrongly typed fields get a 400 error envelope', async () => {
      for (const body of ['[]', '[{"sql":"SELECT 1"}]', '"SELECT 1"', '42', 'null', 'true', '{}', '{"sql": 1}', '{"sql": null}',
        '{"sql": "SELECT 1", "params": "x"}', '{"sql": "SELECT 1", "params": {"0": 1}}', '{"sql": "SELECT 1", "namespace_id": 5}']) {
        const res = await rawSql(body);
        assert.equal(res.status, 400, `${body}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.status, 'error', body);
        assert.deepEqual(res.body.results, [], body);
        assert.equal(typeof res.body.error?.message, 'string', body);
      }
    });

    it('bad bodies answer upstream\'s INVALID_INPUT "Invalid JSON payload: ..."; a blank sql is EMPTY_SQL', async () => {
      for (const body of ['{', '[]', '{"sql": 1}', '{}', '{"sql": "SELECT 1", "params": "x"}']) {
        const res = await rawSql(body);
        assertError(res, 400, 'INVALID_INPUT', /^Invalid JSON payload: /);
      }
      assertError(await rawSql('{"sql": "  "}'), 400, 'EMPTY_SQL');
      // Invalid UTF-8 inside a string is refused, not stored as U+FFFD.
      const bad = new Uint8Array([...Buffer.from('{"sql": "SELECT \''), 0xff, 0xfe, ...Buffer.from('\' AS s"}')]);
      assertError(await rawSql(bad), 400, 'INVALID_INPUT', /not valid UTF-8/);
    });

    it('checks credentials before reading the body', async () => {
      const res = await rawSql('{', {});
      assertError(res, 401, 'MISSING_AUTHORIZATION');
    });

    it('unknown routes are 404 with a JSON body; GET /v1/api/sql is refused', async () => {
      for (const [method, path] of [['GET', '/nope'], ['POST', '/v1/api/nope'], ['GET', '/v1/api'], ['DELETE', '/health'], ['GET', '/v2/api/sql']] as const) {
        const res = await server.fetch(path, { method });
        assert.equal(res.status, 404, `${method} ${path}`);
        const body = (await res.json()) as Record<string, unknown>;
        assert.equal(typeof body.message, 'string');
      }
      const get = await server.fetch('/v1/api/sql', { headers: ROOT });
      assert.ok(get.status >= 400 && get.status < 500, `GET /v1/api/sql → ${get.status}`);
      // A browser opening the server's address is told where the console and the API are.
      const home = await server.fetch('/');
      assert.equal(home.status, 404);
      assert.match(((await home.json()) as { message: string }).message, /admin console is at \/ui, the SQL API at POST \/v1\/api\/sql/);
    });
  });

  describe('batches', () => {
    it('prefixes the failing statement\'s message with "Statement N failed: "', async () => {
      assertError(await server.sql('SELECT 1; SELECT 2; SELECT * FROM e.missing'), 400, 'SQL_EXECUTION_ERROR', /^Statement 3 failed: .*e\.missing/);
      assertError(await server.sql('SELECT * FROM e.missing; SELECT 1'), 400, 'SQL_EXECUTION_ERROR', /^Statement 1 failed: /);
    });

    it('prefixes syntax errors and unsupported statements in a batch too', async () => {
      assertError(await server.sql('SELECT 1; SELEC 2'), 400, 'INVALID_SQL', /^Statement 2 failed: /);
      assertError(await server.sql('SELECT 1; SELECT 2; SELECT FROM WHERE'), 400, 'INVALID_SQL', /^Statement 3 failed: /);
    });

    it('a single statement has no prefix', async () => {
      const res = await server.sql('SELECT * FROM e.missing');
      assert.doesNotMatch(res.body.error!.message, /^Statement/);
    });

    it('semicolons inside string literals, quoted identifiers and comments do not split', async () => {
      const results = await server.ok("SELECT 'a;b' AS \"x;y\"; SELECT 2 AS two -- ; SELECT 3\n; SELECT $$c;d$$ AS s");
      assert.equal(results.length, 3);
      assert.deepEqual(results[0]!.rows, [['a;b']]);
      assert.equal(results[0]!.schema![0]!.name, 'x;y');
      assert.deepEqual(results[1]!.rows, [['2']]);
      assert.deepEqual(results[2]!.rows, [['c;d']]);
    });
  });

  describe('a failed statement changes nothing', () => {
    before(async () => {
      await server.ok('CREATE TABLE e.atomic (id INT PRIMARY KEY, n INT, v TEXT NOT NULL)');
      await server.ok("INSERT INTO e.atomic VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')");
      assert.equal((await server.rows('SELECT id FROM e.atomic')).length, 3);
    });

    it('a multi-row INSERT with one bad row inserts no row', async () => {
      assertError(await server.sql("INSERT INTO e.atomic VALUES (10, 1, 'x'), (11, 2, 'y'), (12, 'three', 'z')"), 400, 'SQL_EXECUTION_ERROR', /'n'/);
      assertError(await server.sql("INSERT INTO e.atomic VALUES (10, 1, 'x'), (11, 2, NULL)"), 400, 'SQL_EXECUTION_ERROR', /'v'/);
      assert.deepEqual((await server.rows('SELECT id FROM e.atomic ORDER BY id')).map((r) => r.id), [1, 2, 3]);
    });

    it('an UPDATE that fails on one row updates no row', async () => {
      const res = await server.sql("UPDATE e.atomic SET v = CASE WHEN id = 3 THEN NULL ELSE 'changed' END");
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /'v'/);
      assert.deepEqual((await server.rows('SELECT v FROM e.atomic ORDER BY id')).map((r) => r.v), ['a', 'b', 'c']);
    });

    it('an INSERT ... SELECT that fails part-way inserts nothing', async () => {
      const res = await server.sql("INSERT INTO e.atomic SELECT id + 100, n, CASE WHEN id = 2 THEN NULL ELSE v END FROM e.atomic");
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /'v'/);
      assert.deepEqual((await server.rows('SELECT count(*) AS c FROM e.atomic')), [{ c: '3' }]);
    });
  });

  describe('no input crashes the server', () => {
    it('answers odd inputs with 4xx (never 500) and stays healthy', async () => {
      const inputs = [
        'SELECT ' + '('.repeat(100_000) + '1' + ')'.repeat(100_000),
        "SELECT 'a\u0000b'",
        'SELECT $99999999999',
        'SELECT 1/0 AS x, 1 // 0 AS y',
        '\u0000',
        'SELECT * FROM e.atomic WHERE id = 99999999999999999999999',
        "SELECT * FROM e.atomic WHERE id = 'x'",
        'SELECT CAST(\'x\' AS INT)',
        'SELECT * FROM generate_series(1, 3) AS g(x) WHERE x = $1',
        'DROP TABLE',
        'CREATE TABLE',
        'CREATE USER',
        "EXECUTE AS USER 'root'",
        "EXECUTE AS USER 'root' (SELECT 1; SELECT 2)",
        "EXECUTE AS USER 'nobody' (SELECT 1)",
        'BEGIN; COMMIT; COMMIT',
        'ROLLBACK',
        'SHOW',
        'DESCRIBE',
        'SELECT ' + Array.from({ length: 3000 }, (_, i) => `${i} AS c${i}`).join(', '),
      ];
      for (const sql of inputs) {
        const res = await server.sql(sql);
        assert.ok(res.status < 500, `${sql.slice(0, 60)} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        if (res.status !== 200) {
          assert.equal(res.body.status, 'error');
          assert.notEqual(res.body.error!.code, 'INTERNAL_ERROR');
        }
      }
      const health = await server.fetch('/health');
      assert.equal(health.status, 200);
      const body = await health.json() as Record<string, unknown>;
      assert.deepEqual({ ...body, build_date: undefined }, { status: 'healthy', version: '0.1.0', api_version: 'v1', build_date: undefined });
      assert.match(String(body.build_date), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      assert.deepEqual(await server.rows('SELECT count(*) AS c FROM e.atomic'), [{ c: '3' }]);
    });
  });
});
