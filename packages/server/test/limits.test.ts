/**
 * Resource limits, each at its edge and with a plain `user` account: statements per request,
 * parenthesis nesting and parse-tree depth, rows written per statement and per transaction, the
 * statement time limit covering writes, result bytes (on DuckDB's vectors and on the encoded
 * response, which must stay byte-identical to JSON.stringify), and the memory guard, with peak RSS
 * (VmHWM) under the documented bound for memory bombs. Every refusal is a 4xx error envelope,
 * nothing is written, and the server answers afterwards. The config checks and the memory guard's
 * sampling are exercised in-process.
 * Not covered: table-function argument caps (the binder's), the WebSocket's own limits (live tests).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestServer, assertError, eventually } from './harness.js';
import { LiveClient } from './ws-client.js';
import { defaults, loadConfig, parseMemoryLimit } from '../src/config/config.js';
import { encodeSqlSuccess } from '../src/http/sql-response.js';
import { MemoryGuard } from '../src/storage/duck/memory-guard.js';
import { RunningQueries } from '../src/storage/duck/running-queries.js';
import { ByteBudget, Deadline } from '../src/util/budget.js';
import { ServerError } from '../src/util/errors.js';
import type { StatementResult } from '../src/exec/context.js';

const MIB = 1024 * 1024;

/** The server's peak resident set size so far, in bytes (Linux /proc). */
function peakRssBytes(server: TestServer): number {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  assert.ok(kb !== undefined, 'VmHWM in /proc status');
  return Number(kb) * 1024;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

const nestedSubqueries = (depth: number): string => 'SELECT ' + '(SELECT '.repeat(depth) + '1' + ')'.repeat(depth);

describe('limits on requests and writes', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  const count = async (): Promise<number> => Number((await server.rows('SELECT count(*) AS n FROM lim.t', { auth: alice }))[0]!.n);
  const answers = async (): Promise<void> => {
    assert.equal(Number((await server.rows('SELECT sum(range) AS s FROM range(10)', { auth: alice }))[0]!.s), 45);
  };

  before(async () => {
    server = await TestServer.startWithConfig({
      duckdb_threads: 1,
      statements_per_request_max: 5,
      sql_nesting_depth_max: 8,
      subquery_depth_max: 5,
      parse_tree_depth_max: 300,
      sql_tokens_max: 20_000,
      write_rows_max: 100,
      result_bytes_max: MIB,
    });
    alice = await server.createUser('alice');
    await server.ok('CREATE NAMESPACE lim');
    await server.ok('CREATE USER TABLE lim.t (id BIGINT PRIMARY KEY, body TEXT)');
  });
  after(async () => {
    await server.dispose();
  });

  it('statements per request: 5 run, 6 are refused with 413 before any runs', async () => {
    const five = Array.from({ length: 5 }, (_, i) => `SELECT ${i} AS x`).join('; ');
    assert.equal((await server.ok(five, { auth: alice })).length, 5);
    const six = Array.from({ length: 6 }, (_, i) => `INSERT INTO lim.t VALUES (${i}, 'a')`).join('; ');
    assertError(await server.sql(six, { auth: alice }), 413, 'PAYLOAD_TOO_LARGE', /6 \(limit 5, statements_per_request_max\)/);
    assert.equal(await count(), 0);
    const { value, ms } = await timed(() => server.sql(Array(20_000).fill('SELECT 1').join(';'), { auth: alice }));
    assertError(value, 413, 'PAYLOAD_TOO_LARGE', /20000/);
    assert.ok(ms < 2000, `20,000 statements refused in ${ms} ms`);
    // The request log names the limit, so operators can see which limits their clients hit.
    await eventually('the 413 in the request log', async () => /"status":413[^\n]*"limit":"statements_per_request_max"/.test(server.output.join('')));
    await answers();
  });

  it('nesting depth: 8 levels run, 9 and 2,000 nested subqueries get a fast 400', async () => {
    assert.equal((await server.rows('SELECT ' + '(abs('.repeat(4) + '-1' + '))'.repeat(4) + ' AS v', { auth: alice }))[0]!.v, '1');
    assertError(await server.sql('SELECT ' + '('.repeat(9) + '1' + ')'.repeat(9), { auth: alice }), 400, 'INVALID_SQL', /9 levels .*sql_nesting_depth_max/);
    const { value, ms } = await timed(() => server.sql(nestedSubqueries(2000), { auth: alice }));
    assertError(value, 400, 'INVALID_SQL', /nested too deeply/);
    assert.ok(ms < 1000, `refused in ${ms} ms`);
    assertError(await server.sql('SELECT ' + 'ARRAY['.repeat(3000) + '1' + ']'.repeat(3000), { auth: alice }), 400, 'INVALID_SQL');
    // In a batch the failing statement is named.
    assertError(await server.sql(`SELECT 1; ${nestedSubqueries(9)}`, { auth: alice }), 400, 'INVALID_SQL', /^Statement 2 failed: /);
    await answers();
  });

  it('subquery depth: 5 nested subqueries run, 6 are refused before DuckDB plans them', async () => {
    const exists = (depth: number): string => 'SELECT 1 AS v WHERE EXISTS ' + '(SELECT 1 WHERE EXISTS '.repeat(depth - 1) + '(SELECT 1)' + ')'.repeat(depth - 1);
    assert.equal((await server.rows(exists(5), { auth: alice }))[0]!.v, '1');
    assert.equal((await server.rows(nestedSubqueries(5) + ' AS v', { auth: alice }))[0]!.v, '1');
    assertError(await server.sql(exists(6), { auth: alice }), 400, 'INVALID_SQL', /more than 5 deep \(subquery_depth_max\)/);
    assertError(await server.sql(nestedSubqueries(6), { auth: alice }), 400, 'INVALID_SQL', /subquery_depth_max/);
    assertError(await server.sql(`INSERT INTO lim.t SELECT ${nestedSubqueries(6).slice(7)}, 'deep'`, { auth: alice }), 400, 'INVALID_SQL', /subquery_depth_max/);
    assert.equal(await count(), 0);
  });

  it('parse-tree depth: long chains nest without parentheses and are refused before the binder', async () => {
    assert.equal((await server.ok(Array(100).fill('SELECT 1').join(' UNION ALL '), { auth: alice }))[0]!.row_count, 100);
    assertError(await server.sql(Array(2000).fill('SELECT 1').join(' UNION ALL '), { auth: alice }), 400, 'INVALID_SQL', /parse_tree_depth_max/);
    assertError(await server.sql('SELECT ' + Array(1500).fill('1').join(' + '), { auth: alice }), 400, 'INVALID_SQL', /parse_tree_depth_max/);
    await answers();
  });

  it('statement tokens: a long IN list is refused before PostgreSQL\'s parser', async () => {
    const inList = (n: number): string => `SELECT count(*) AS n FROM lim.t WHERE id IN (${Array.from({ length: n }, (_, i) => i).join(',')})`;
    assert.equal((await server.ok(inList(9_000), { auth: alice }))[0]!.row_count, 1);
    // 15 tokens around the list and 2 per item: 19,999 with 9,992 items, one more with `-id`: exactly
    // 20,000 pass; 20,001 (9,993 items, the last token ends the text) do not.
    assert.equal((await server.ok(inList(9_992).replace('WHERE id IN', 'WHERE -id IN'), { auth: alice }))[0]!.row_count, 1);
    assertError(await server.sql(inList(9_993), { auth: alice }), 400, 'INVALID_SQL', /more than 20000 tokens/);
    assertError(await server.sql(inList(10_000), { auth: alice }), 400, 'INVALID_SQL', /too long: more than 20000 tokens \(sql_tokens_max\)/);
    assertError(await server.sql(`UPDATE lim.t SET body = 'x' WHERE id IN (${Array(12_000).fill('1').join(',')})`, { auth: alice }), 400, 'INVALID_SQL', /sql_tokens_max/);
    // A subscription's SQL is read by the same lexer.
    const live = await LiveClient.connect(server.url, alice);
    try {
      const refused = await live.subscribe('long', `SELECT * FROM lim.t WHERE id IN (${Array(12_000).fill('1').join(',')})`);
      assert.equal(refused.type, 'error');
      assert.equal(refused.code, 'INVALID_SQL');
      assert.match(String(refused.message), /sql_tokens_max/);
      assert.equal((await live.subscribe('short', 'SELECT * FROM lim.t WHERE id IN (1, 2)')).type, 'subscription_ack');
    } finally {
      await live.close();
    }
    await answers();
  });

  it('a subscription LIKE filter too costly for a row ends that subscription, not the server (attack review: 9 s per insert)', async () => {
    const live = await LiveClient.connect(server.url, alice);
    try {
      assert.equal((await live.subscribe('costly', `SELECT id FROM lim.t WHERE body LIKE '%${'a'.repeat(100)}_b'`)).type, 'subscription_ack');
      assert.equal((await live.subscribe('plain', `SELECT id FROM lim.t WHERE body LIKE '%${'a'.repeat(200)}b%'`)).type, 'subscription_ack');
      const tooLong = await live.subscribe('long', `SELECT id FROM lim.t WHERE body LIKE '%${'a'.repeat(300)}'`);
      assert.equal(tooLong.code, 'INVALID_SQL');
      const started = performance.now();
      await server.ok(`INSERT INTO lim.t (id, body) VALUES (900, '${'a'.repeat(400_000)}b')`, { auth: alice });
      assert.ok(performance.now() - started < 5_000, `${performance.now() - started} ms`);
      const failed = await live.waitFor((m) => m.type === 'error' && m.subscription_id === 'costly');
      assert.match(String(failed.message), /steps/);
      // The % pattern (linear) matched the row and was delivered.
      const change = await live.waitFor((m) => m.type === 'change' && m.subscription_id === 'plain');
      assert.equal((change.rows as { id: string }[])[0]!.id, '900');
      await server.ok('DELETE FROM lim.t WHERE id = 900', { auth: alice });
    } finally {
      await live.close();
    }
    await answers();
  });

  it('initial data held for a client that does not ask for it is bounded per user, and given back (attack review: 1.8 GB held)', async () => {
    // result_bytes_max is 1 MiB here: three rows of 200,000 characters are ~600 KB of initial data.
    for (const id of [700, 701, 702]) await server.ok(`INSERT INTO lim.t (id, body) VALUES (${id}, '${'x'.repeat(200_000)}')`, { auth: alice });
    const sql = 'SELECT * FROM lim.t WHERE id >= 700 AND id < 703';
    const live = await LiveClient.connect(server.url, alice);
    const other = await LiveClient.connect(server.url, alice);
    try {
      assert.equal((await live.subscribe('held', sql, { batch_size: 1 })).type, 'subscription_ack');
      // The same user, another connection: the budget is the user's.
      const refused = await other.subscribe('second', sql, { batch_size: 1 });
      assert.equal(refused.type, 'error');
      assert.match(String(refused.message), /result_bytes_max.*next_batch/);
      // Unsubscribing a loading subscription gives its bytes back; so does reading its batches.
      assert.equal((await live.subscribe('dropped', 'SELECT * FROM lim.t WHERE id = 700', { batch_size: 1 })).type, 'subscription_ack');
      live.send({ type: 'unsubscribe', subscription_id: 'dropped' });
      const batches = await live.loadAll('held');
      assert.equal(batches.at(-1)!.batch_control && (batches.at(-1)!.batch_control as { status: string }).status, 'ready');
      const from = other.mark();
      assert.equal((await other.subscribe('second', sql, { batch_size: 1 })).type, 'subscription_ack');
      await other.loadAll('second', from);
      assert.equal((await other.subscribe('third', sql, { batch_size: 10 })).type, 'subscription_ack', 'sent whole at once: nothing held');
      assert.equal((await other.subscribe('fourth', sql, { batch_size: 10 })).type, 'subscription_ack');
    } finally {
      await live.close();
      await other.close();
      await server.ok('DELETE FROM lim.t WHERE id >= 700 AND id < 703', { auth: alice });
    }
  });

  it('rows written: 100 VALUES rows are written, 101 are refused and nothing is written', async () => {
    const values = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `(${from + i}, 'v')`).join(', ');
    assertError(await server.sql(`INSERT INTO lim.t VALUES ${values(0, 101)}`, { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /write_rows_max/);
    assert.equal(await count(), 0);
    await server.ok(`INSERT INTO lim.t VALUES ${values(0, 100)}`, { auth: alice });
    assert.equal(await count(), 100);
    await server.ok('DELETE FROM lim.t', { auth: alice });
  });

  it('rows written: INSERT ... SELECT over the cap is refused, at the cap it is written', async () => {
    assertError(await server.sql("INSERT INTO lim.t SELECT range, 's' FROM range(1000000)", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /more than 100 rows \(write_rows_max\)/);
    assertError(await server.sql("INSERT INTO lim.t SELECT range, 's' FROM range(101) ORDER BY range DESC LIMIT 101", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /write_rows_max/);
    assert.equal(await count(), 0);
    const [res] = await server.ok("INSERT INTO lim.t SELECT range, 's' FROM range(100)", { auth: alice });
    assert.equal(res!.row_count, 100);
    assert.equal(await count(), 100);
  });

  it('rows written: UPDATE and DELETE matching more rows than the cap change nothing', async () => {
    await server.ok("INSERT INTO lim.t SELECT range + 1000, 'x' FROM range(50)", { auth: alice });
    assert.equal(await count(), 150);
    assertError(await server.sql("UPDATE lim.t SET body = 'changed'", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /UPDATE matches more than 100 rows/);
    assertError(await server.sql('DELETE FROM lim.t WHERE id >= 0', { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /DELETE matches more than 100 rows/);
    assert.equal(await count(), 150);
    assert.equal((await server.rows("SELECT count(*) AS n FROM lim.t WHERE body = 'changed'", { auth: alice }))[0]!.n, '0');
    const [updated] = await server.ok("UPDATE lim.t SET body = 'changed' WHERE id >= 1000", { auth: alice });
    assert.equal(updated!.row_count, 50);
  });

  it('rows written: a transaction holding more rows than the cap commits nothing', async () => {
    const before = await count();
    const sql = "BEGIN; INSERT INTO lim.t SELECT range + 5000, 'tx' FROM range(60); INSERT INTO lim.t SELECT range + 6000, 'tx' FROM range(60); COMMIT";
    assertError(await server.sql(sql, { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /^Statement 3 failed: The transaction writes more than 100 rows/);
    assert.equal(await count(), before);
  });

  it('result bytes: a large value is refused from DuckDB\'s vectors, before it is converted', async () => {
    const { value, ms } = await timed(() => server.sql("SELECT repeat('x', 5000000) AS s", { auth: alice }));
    assertError(value, 400, 'SQL_EXECUTION_ERROR', /larger than 1048576 bytes \(result_bytes_max\)/);
    assert.ok(ms < 5000, `refused in ${ms} ms`);
    assertError(await server.sql('SELECT a.range, b.range FROM range(100000) a, range(100000) b', { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /result_bytes_max/);
    const [ok] = await server.ok("SELECT repeat('x', 1000000) AS s", { auth: alice });
    assert.equal((ok!.rows![0]![0] as string).length, 1_000_000);
  });

  it('result bytes: the exact check on the encoded response, and across the statements of a request', async () => {
    // 2-byte cells by DuckDB's measure, ~12 bytes each as JSON strings: only the encoder sees it is too large.
    assertError(await server.sql('SELECT range * 1000000 AS n FROM range(120000)', { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /result_bytes_max/);
    const half = "SELECT repeat('y', 600000) AS s";
    assert.equal((await server.ok(half, { auth: alice })).length, 1);
    assertError(await server.sql(`${half}; ${half}`, { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /^Statement 2 failed: .*result_bytes_max/);
    // What a write read is released once the write is applied: it does not count against later results.
    await server.ok(`INSERT INTO lim.t SELECT range + 9000, repeat('w', 9000) FROM range(100); ${half}; DELETE FROM lim.t WHERE id >= 9000`, { auth: alice });
    await answers();
  });

  it('the chunked response is byte-identical to JSON.stringify, with a matching content-length', async () => {
    const res = await server.fetch('/v1/api/sql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${alice.user}:${alice.password}`).toString('base64')}` },
      body: JSON.stringify({ sql: "SELECT range AS id, 'é\"\\\\ ✓ ' || range AS s, range / 3 AS d, range % 2 = 0 AS b FROM range(20000); SELECT 1 AS one" }),
    });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.ok(text.length > 200_000, 'spans several chunks');
    assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(text));
    assert.equal(text, JSON.stringify(JSON.parse(text)));
  });
});

describe('the statement time limit covers writes', () => {
  let server: TestServer;
  let bob: { user: string; password: string };

  before(async () => {
    server = await TestServer.startWithConfig({ query_timeout_ms: 200, duckdb_threads: 1 });
    bob = await server.createUser('bob');
    await server.ok('CREATE NAMESPACE slow');
    await server.ok('CREATE USER TABLE slow.t (id BIGINT PRIMARY KEY, body TEXT, n DOUBLE)');
  });
  after(async () => {
    await server.dispose();
  });

  /** The row count, retried: on a loaded machine even a count can pass this server's 200 ms limit. */
  const storedRows = (): Promise<string> => eventually('a count within the time limit', async () => {
    const res = await server.sql('SELECT count(*) AS n FROM slow.t', { auth: bob });
    return res.status === 200 ? String(res.body.results[0]!.rows![0]![0]) : undefined;
  });

  it('an INSERT ... SELECT that cannot finish reading and building its rows in time writes nothing', async () => {
    const sql = "INSERT INTO slow.t SELECT range, repeat('b', 200) || range, range / 7 FROM range(100000)";
    const { value, ms } = await timed(() => server.sql(sql, { auth: bob }));
    assertError(value, 400, 'SQL_EXECUTION_ERROR', /time limit of 200 ms \(query_timeout_ms\); nothing was written/);
    assert.ok(ms < 3000, `refused after ${ms} ms`);
    assert.equal(await storedRows(), '0');
  });

  it('a SELECT stopped while its rows stream in fails; it never returns a truncated result', async () => {
    // Fewer rows than result_rows_max arrive within 200 ms; an interrupted stream ends like a finished one.
    const res = await server.sql('SELECT a.range AS x FROM range(100000) a, range(100000) b', { auth: bob });
    assertError(res, 400, 'SQL_EXECUTION_ERROR', /time limit of 200 ms/);
  });

  it('a slow read inside a write is stopped too; the server answers afterwards', async () => {
    const sql = "INSERT INTO slow.t SELECT count(*), 'c', 0 FROM range(100000) a, range(100000) b";
    assertError(await server.sql(sql, { auth: bob }), 400, 'SQL_EXECUTION_ERROR', /time limit/);
    assert.equal(await storedRows(), '0');
    await server.ok("INSERT INTO slow.t VALUES (1, 'fast', 1.5)", { auth: bob });
    assert.equal(await storedRows(), '1');
  });
});

describe('size-amplifying functions', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice');
  });
  after(async () => {
    await server.dispose();
  });

  it('answer as the engine does within their caps, per call and per row', async () => {
    const [row] = await server.rows(
      "SELECT replace('a-b-c', '-', '--') AS r, replace('abc', '', 'X') AS e, regexp_replace('a1b22', '\\d+', '#', 'g') AS g, "
      + "regexp_replace('a1b22', '\\d+', '#') AS o, regexp_replace('john@x', '(\\w+)@(\\w+)', '\\2 at \\1') AS b, lpad('7', 3, '0') AS p, "
      + "repeat('ab', 2) AS rep, len(range(5)) AS l, len(generate_series(1, 3)) AS gs, list_transform(ARRAY[1, 2], x -> x * 2)::VARCHAR AS t",
      { auth: alice },
    );
    assert.deepEqual({ ...row }, { r: 'a--b--c', e: 'abc', g: 'a#b#', o: 'a#b22', b: 'x at john', p: '007', rep: 'abab', l: '5', gs: '3', t: '[2, 4]' });
    // Per row (an argument from the row): the same answers, within the per-row cap.
    const [sums] = await server.rows(
      "SELECT sum(length(replace('a-b' || range, '-', '++'))) AS r, sum(length(repeat('xy', 3 + range % 2))) AS rep FROM range(1000)", { auth: alice });
    assert.deepEqual({ ...sums }, { r: String(1000 * 4 + 2890), rep: String(500 * 6 + 500 * 8) });
    // A constant call used as it is is computed once: its cap is the per-call one.
    const [once] = await server.rows("SELECT length(repeat('x', 5000000)) AS n", { auth: alice });
    assert.equal(once!.n, '5000000');
    // Under anything computed per row (an aggregate, a row's value) its one value may be copied into every row: the per-row cap.
    for (const sql of ["SELECT sum(length(repeat('a', 5000000) || x::text)) AS s FROM generate_series(1, 3) AS t(x)",
      "SELECT length(string_agg(repeat('a', 5000000), '')) AS n FROM generate_series(1, 3) AS t(x)"]) {
      assertError(await server.sql(sql, { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /more than 20000 elements in one row/);
    }
    assertError(await server.sql("SELECT max(length(repeat('x', 30000 + range))) AS n FROM range(3)", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /more than 20000 elements in one row/);
    assertError(await server.sql("SELECT length(replace(repeat('x', 100), 'x', repeat('y', 1000)))", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /replace would produce more than 20000/);
    // The quadratic distances: answers as the engine's, and a cap on the character pairs compared.
    const [dist] = await server.rows("SELECT levenshtein('kitten', 'sitting') AS l, damerau_levenshtein('ab', 'ba') AS d, sum(levenshtein('abc' || range, 'abd')) OVER () AS s FROM range(10) LIMIT 1", { auth: alice });
    assert.deepEqual({ ...dist }, { l: '3', d: '1', s: '20' });
    assertError(await server.sql("SELECT levenshtein(repeat('x', 1000) || range, repeat('y', 1000)) FROM range(2)", { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /compare more than 200000 character pairs in one row/);
  });

  it('strftime formats, to_base padding and equi_width_bins counts are bounded (an attack review: 2 GB of RSS from one strftime)', async () => {
    const [row] = await server.rows(
      "SELECT strftime(TIMESTAMP '2020-01-02 03:04:05', '%Y-%m-%d %H') AS a, strftime('%d', DATE '2020-01-02') AS b, to_base(5, 2) AS c, "
      + "to_base(5, 2, 8) AS d, equi_width_bins(0, 10, 2, false)::VARCHAR AS e, max(to_base(range, 2, 4)) OVER () AS f FROM range(4) LIMIT 1",
      { auth: alice });
    assert.deepEqual({ ...row }, { a: '2020-01-02 03', b: '02', c: '101', d: '00000101', e: '[5, 10]', f: '0011' });
    const many = '%c'.repeat(200);
    assertError(await server.sql(`SELECT sum(length(strftime(TIMESTAMP '2020-01-01' + x * INTERVAL '1 second', '${many}'))) FROM range(0, 2048) t(x)`, { auth: alice }),
      400, 'INVALID_SQL', /strftime format may be at most 256 characters/);
    assertError(await server.sql("SELECT strftime(now(), repeat('%c', 100))", { auth: alice }), 400, 'INVALID_SQL', /format as a string literal/);
    assertError(await server.sql('SELECT strftime(now(), $1)', { auth: alice, params: ['%Y'] }), 400, 'INVALID_SQL', /format as a string literal/);
    assertError(await server.sql('SELECT to_base(1, 2, 100000000)', { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /to_base would produce more than/);
    assertError(await server.sql('SELECT to_base(range, 2, 100000) FROM range(2)', { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /more than 20000 elements in one row/);
    assertError(await server.sql('SELECT equi_width_bins(0, 10, 100000000, false)', { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /equi_width_bins would produce more than/);
  });

  it('LIKE matches in linear time, with the engine LIKE semantics (found by an attack review: 800 characters ran 110 s)', async () => {
    const { value, ms } = await timed(() => server.rows(
      "SELECT count(*) AS c FROM generate_series(1, 3) AS t(x) WHERE (repeat('a', 3000) || x::text) LIKE '%a%a%a%_b' OR (repeat('a', 3000) || x::text) ~~ '%a%a%a%a%_b'",
      { auth: alice }));
    assert.equal(value[0]!.c, '0');
    assert.ok(ms < 10_000, `${ms} ms`);
    const [row] = await server.rows(
      "SELECT 'a\\b' LIKE 'a\\b' AS backslash, 'a%' LIKE 'a\\%' AS not_escape, E'x\\ny' LIKE 'x_y' AS newline, 12 LIKE '1%' AS number, "
      + "'Alma' ILIKE 'a%' AS ilike, 'Alma' NOT LIKE 'a%' AS not_like, 'a.c' LIKE 'a.c' AS dot, 'abc' LIKE 'a.c' AS dot_literal, "
      + "'(x)*' LIKE '(x)*' AS meta, NULL LIKE '%' AS nul, 'ab' LIKE $1 AS param",
      { auth: alice, params: ['a_'] });
    assert.deepEqual({ ...row }, {
      backslash: true, not_escape: false, newline: true, number: true, ilike: true, not_like: true, dot: true, dot_literal: false, meta: true, nul: null, param: true,
    });
    assertError(await server.sql("SELECT 'abc' ~~~ 'a*'", { auth: alice }), 400, 'INVALID_SQL', /GLOB/);
    const [esc] = await server.rows(
      "SELECT 'a%b' LIKE 'a!%b' ESCAPE '!' AS pct, 'axb' LIKE 'a!%b' ESCAPE '!' AS not_pct, 'a_B' ILIKE 'A!_b' ESCAPE '!' AS under, "
      + "'a!b' LIKE 'a!!b' ESCAPE '!' AS self, 'a.b' NOT LIKE 'a_b' ESCAPE '' AS no_escape",
      { auth: alice });
    assert.deepEqual({ ...esc }, { pct: true, not_pct: false, under: true, self: true, no_escape: false });
    assertError(await server.sql("SELECT 'a' LIKE $1 ESCAPE '!'", { auth: alice, params: ['a'] }), 400, 'INVALID_SQL', /ESCAPE needs a string literal/);
    assertError(await server.sql("SELECT like_escape('a', 'a', '!')", { auth: alice }), 403, 'PERMISSION_DENIED');
  });

  it('searches cost at most their budget of text bytes × pattern bytes; short patterns and ordinary searches are untouched', async () => {
    // Every way to search: the same answers as the engine's own functions.
    const [row] = await server.rows(
      "SELECT strpos('hello world', 'world') AS a, instr('hello', 'l') AS b, position('lo' IN 'hello') AS c, contains('abc', 'b') AS d, "
      + "contains(ARRAY[1, 2], 2) AS e, split_part('a--b--c', '--', 2) AS f, string_split('a,b', ',') AS g, 'abc' ~ 'a.c' AS h, "
      + "'abc' !~ 'a.c' AS i, 'abc' SIMILAR TO 'a%' AS j, 'hello world' LIKE '%o w%' AS k, 'hello' LIKE 'he%' AS l, 'hello' LIKE '%lo' AS m, "
      + "'hello' LIKE 'hello' AS n, 'hello' NOT LIKE '%xyz%' AS o, 12345 LIKE '%234%' AS p, NULL LIKE '%a%' AS q, 'x' LIKE '%%' AS r, "
      + "regexp_extract('abc123', '[0-9]+') AS s, strpos($1, $2) AS t, $1 LIKE '%' || $2 || '%' AS u",
      { auth: alice, params: ['xx-abcdefghijklmnop-yy', 'abcdefghijklmnop'] });
    assert.deepEqual({ ...row }, {
      a: '7', b: '3', c: '4', d: true, e: true, f: 'b', g: '["a","b"]', h: true, i: false, j: false, k: true, l: true, m: true,
      n: true, o: true, p: true, q: null, r: true, s: '123', t: '4', u: true,
    });
    // Long patterns in ordinary texts answer; the same against a long text are refused at once.
    const needle = 'q'.repeat(100);
    await server.ok('CREATE NAMESPACE IF NOT EXISTS pat');
    await server.ok('CREATE SHARED TABLE pat.docs (id BIGINT PRIMARY KEY, body TEXT)');
    await server.ok(`INSERT INTO pat.docs (id, body) VALUES (1, '${'x'.repeat(5000)}${needle}'), (2, 'short')`);
    const found = await server.rows(
      `SELECT id, strpos(body, '${needle}') AS at, body LIKE '%${needle}%' AS has, regexp_matches(body, '${'q'.repeat(40)}$') AS re FROM pat.docs ORDER BY id`);
    assert.deepEqual(found.map((r) => ({ ...r })), [{ id: '1', at: '5001', has: true, re: true }, { id: '2', at: '0', has: false, re: false }]);
    const { value: refused, ms } = await timed(() => server.sql(`SELECT strpos(repeat('a', 10000000), repeat('a', 199998) || '\`b')`, { auth: alice }));
    assertError(refused, 400, 'SQL_EXECUTION_ERROR', /A substring search over 8 bytes may cost at most 100000000 text bytes times pattern bytes in one row/);
    assert.ok(ms < 3_000, `${ms} ms`);
    assertError(await server.sql(`SELECT count(*) FROM range(3) t(i) WHERE (repeat('a', 20000) || i::VARCHAR) ~ '${'(a|aa)'.repeat(20)}b'`, { auth: alice }),
      400, 'SQL_EXECUTION_ERROR', /regular expression \(or LIKE pattern\) over 64 bytes may cost at most 2000000 text bytes times pattern bytes in one row/);
    // A pattern computed per row is checked per row; inside a lambda only short literals are allowed.
    assertError(await server.sql(`SELECT repeat('a', 20000) || i::VARCHAR LIKE repeat('a%', 60) || i::VARCHAR FROM range(2) t(i)`, { auth: alice }),
      400, 'SQL_EXECUTION_ERROR', /in one row/);
    // A review of the guard: counted repetitions make a short expression a large one (15 bytes: 7.4 s for
    // 100 KB); a call over constants runs once per row all the same; string_to_array and contains on
    // JSON search like string_split and contains on text.
    for (const sql of [
      "SELECT regexp_matches(repeat('a', 100000), '(a|aa){1000}b')",
      "SELECT regexp_matches(repeat('a', 20000) || i::VARCHAR, '(a|aa|aaa){1000}b') FROM range(3) t(i)",
      "SELECT regexp_matches(repeat('a', 27000), repeat('(a|aa)', 3000) || 'b') FROM range(3) t(i)",
      "SELECT regexp_matches(repeat('a', 20000), $1)",
    ]) {
      const { value, ms: took } = await timed(() => server.sql(sql, { auth: alice, params: sql.includes('$1') ? ['(a|aa){1000}b'] : [] }));
      assertError(value, 400, 'SQL_EXECUTION_ERROR', /regular expression .* in one row/);
      assert.ok(took < 3_000, `${sql}: ${took} ms`);
    }
    for (const sql of [
      "WITH t AS (SELECT repeat('ab', 1000000) x, repeat('ab', 24999) || 'ba' n) SELECT len(string_to_array(x, n)) FROM t",
      "WITH t AS (SELECT to_json(repeat('ab', 1000000)) x, repeat('ab', 24999) || 'ba' n) SELECT contains(x, n) FROM t",
    ]) assertError(await server.sql(sql, { auth: alice }), 400, 'SQL_EXECUTION_ERROR', /substring search .* in one row/);
    // Ordinary searches in a 21 KB text: patterns of up to 64 bytes are never refused (LIKE and ILIKE
    // with a parameter or a literal, a 60-byte expression).
    await server.ok(`INSERT INTO pat.docs (id, body) VALUES (3, '${'lorem ipsum '.repeat(1800)}the quick brown fox jumps over the lazy dog')`);
    const phrase = '%the quick brown fox jumps over the lazy dog%';
    for (const [sql, params] of [
      ['SELECT id FROM pat.docs WHERE body LIKE $1', [phrase]],
      ['SELECT id FROM pat.docs WHERE body ILIKE $1', [phrase.toUpperCase()]],
      [`SELECT id FROM pat.docs WHERE body ILIKE '${phrase}'`, []],
      ["SELECT id FROM pat.docs WHERE body LIKE '%quick brown fox%lazy dog%'", []],
      ["SELECT id FROM pat.docs WHERE regexp_matches(body, 'quick (brown|red|grey) fox jumps over the (lazy|sleepy) dog')", []],
    ] as const) {
      assert.deepEqual((await server.rows(sql, { params: [...params] })).map((r) => r.id), ['3'], sql);
    }
    assert.deepEqual((await server.rows("SELECT list_transform(ARRAY['ab', 'cd'], y -> contains(y, 'b')) AS v", { auth: alice }))[0]!.v, '[true,false]');
    assertError(await server.sql(`SELECT list_transform(ARRAY['ab'], y -> contains(y, '${needle}')) AS v`, { auth: alice }), 400, 'INVALID_SQL', /inside a lambda/);
  });

  it('are refused inside lambdas, past 16 calls, with non-literal regex options, and as the server macros', async () => {
    assertError(await server.sql('SELECT list_transform(range(3), x -> repeat(\'a\', x))', { auth: alice }), 400, 'INVALID_SQL', /not allowed inside a lambda/);
    const nested = (n: number): string => `SELECT length(${'repeat('.repeat(n)}'x'${', 1)'.repeat(n)}) AS n`;
    assert.equal((await server.rows(nested(16), { auth: alice }))[0]!.n, '1');
    assertError(await server.sql(nested(17), { auth: alice }), 400, 'INVALID_SQL', /at most 16 times/);
    assertError(await server.sql("SELECT regexp_replace('abc', 'b', 'x', lower('G'))", { auth: alice }), 400, 'INVALID_SQL', /options must be a string literal/);
    assertError(await server.sql("SELECT kalam_repeat('x', 3)", { auth: alice }), 403, 'PERMISSION_DENIED');
    assertError(await server.sql('SELECT list_reduce(ARRAY[1, 2], (a, x) -> a + x)', { auth: alice }), 403, 'PERMISSION_DENIED');
  });
});

describe('query connections are shared fairly between accounts', () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  let bob: { user: string; password: string };
  before(async () => {
    server = await TestServer.startWithConfig({ query_connections: 2, query_timeout_ms: 6000, duckdb_threads: 1 });
    alice = await server.createUser('alice');
    bob = await server.createUser('bob');
  });
  after(async () => {
    await server.dispose();
  });

  it("one account's slow queries leave a connection to the others", async () => {
    const order: string[] = [];
    // Each runs until the 6 s limit; alone they would hold both connections.
    const slow = Array.from({ length: 3 }, () =>
      server.sql('SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1', { auth: alice }).then((res) => {
        order.push('alice');
        return res;
      }));
    await new Promise((r) => setTimeout(r, 500));
    const { value, ms } = await timed(() => server.sql('SELECT 41 + 1 AS v', { auth: bob }));
    order.push('bob');
    assert.equal(value.status, 200, JSON.stringify(value.body));
    assert.ok(ms < 5000, `bob waited ${ms} ms`);
    for (const res of await Promise.all(slow)) assertError(res, 400, 'SQL_EXECUTION_ERROR', /time limit/);
    assert.equal(order[0], 'bob', `answered in the order ${order.join(', ')}`);
  });
});

describe('memory', () => {
  // Small bounds and one DuckDB thread keep these tests short and light on the CPU other test files share.
  const memory = { duckdb_memory_limit: '128MB', memory_rss_bytes_max: 400 * MIB, duckdb_threads: 1, result_bytes_max: 16 * MIB };
  /** docs/configuration.md: peak RSS stays under memory_rss_bytes_max + 512 MiB. */
  const peakBound = memory.memory_rss_bytes_max + 512 * MIB;

  /** Polls until a DuckDB query succeeds: freed memory returns to the OS within seconds, until then the guard refuses. */
  const servesAgain = async (server: TestServer, auth: { user: string; password: string }): Promise<void> => {
    for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
      const res = await server.sql('SELECT sum(range) AS s FROM range(1000)', { auth });
      if (res.status === 200) return;
      assert.ok(Date.now() < deadline, `still refused: ${JSON.stringify(res.body)}`);
    }
  };

  it('memory bombs get a 4xx, peak RSS stays under the bound, and the server keeps serving', async () => {
    const server = await TestServer.startWithConfig(memory);
    try {
      const carol = await server.createUser('carol');
      const bombs = [
        "SELECT repeat('x', 150000000) AS s",
        'SELECT list(range) FROM range(30000000)',
        "SELECT a.range, b.range, repeat('y', 100) FROM range(100000) a, range(100000) b",
      ];
      for (const sql of bombs) {
        const res = await server.sql(sql, { auth: carol });
        assert.equal(res.status, 400, `${sql}: ${JSON.stringify(res.body).slice(0, 300)}`);
        assert.equal(res.body.error?.code, 'SQL_EXECUTION_ERROR');
        assert.ok(peakRssBytes(server) < peakBound, `${sql}: peak RSS ${peakRssBytes(server)} over ${peakBound}`);
        await servesAgain(server, carol);
      }
    } finally {
      await server.dispose();
    }
  });

  it('the guard stops a query whose rows grow the process past the bound', async () => {
    // Within result_bytes_max and the row cap, but its JS rows need more than the 320 MiB bound.
    const small = { ...memory, memory_rss_bytes_max: 320 * MIB, result_bytes_max: 256 * MIB, result_rows_max: 20_000_000 };
    const server = await TestServer.startWithConfig(small);
    try {
      const dave = await server.createUser('dave');
      const res = await server.sql("SELECT range, 'row number ' || range AS label, range * 2 AS twice FROM range(15000000)", { auth: dave });
      assertError(res, 400, 'SQL_EXECUTION_ERROR', /exceeded the memory limit.*memory_rss_bytes_max/);
      const bound = small.memory_rss_bytes_max + 512 * MIB;
      assert.ok(peakRssBytes(server) < bound, `peak RSS ${peakRssBytes(server)} over ${bound}`);
      await servesAgain(server, dave);
    } finally {
      await server.dispose();
    }
  });
});

describe('limit building blocks', () => {
  it('the memory guard samples only while queries run and stops them all over the bound', () => {
    let rss = 100;
    const queries = new RunningQueries();
    const guard = new MemoryGuard(queries, { rssBytesMax: 1000, sampleIntervalMs: 1000, readRssBytes: () => rss });
    let interrupts = 0;
    const conn = { interrupt: (): void => { interrupts++; } };
    const a = queries.start(conn);
    const b = queries.start(conn);
    guard.sample();
    assert.equal(a.stopReason, null);
    rss = 1001;
    guard.sample();
    assert.equal(interrupts, 2);
    assert.match(a.stopReason!.message, /memory_rss_bytes_max/);
    assert.equal(b.stopReason, a.stopReason);
    queries.finish(a);
    queries.finish(b);
    guard.sample();
    assert.equal(interrupts, 2, 'nothing to stop once no query runs');
    guard.close();
  });

  it('a deadline expires on its clock; a byte budget refuses past its maximum and releases to a mark', () => {
    let now = 0;
    const deadline = new Deadline(100, () => now);
    deadline.check();
    now = 99;
    assert.equal(deadline.remainingMs(), 1);
    now = 100;
    assert.throws(() => deadline.check(), (e: unknown) => e instanceof ServerError && /100 ms \(query_timeout_ms\)/.test(e.message));
    const budget = new ByteBudget(10);
    budget.charge(6);
    const mark = budget.used;
    budget.charge(4);
    assert.throws(() => budget.charge(1), /result_bytes_max/);
    budget.releaseTo(mark);
    assert.equal(budget.remaining(), 4);
  });

  it('the response encoder matches JSON.stringify and refuses over its byte maximum', () => {
    const results: StatementResult[] = [
      { schema: [{ name: 'a', data_type: 'Text', index: 0 }], rows: Array.from({ length: 5000 }, (_, i) => [`ü${i}"\n`, i, null, [1, 2]]), row_count: 5000, as_user: 'u' },
      { row_count: 0, message: 'ok', as_user: 'u' },
      { row_count: 1, message: undefined, as_user: 'u', rows: [] },
    ];
    const encoded = encodeSqlSuccess(results, 1.25, 10 * MIB);
    const expected = JSON.stringify({ status: 'success', results, took: 1.25 });
    const text = (chunks: readonly (Buffer | string)[]): string => Buffer.concat(chunks.map((c) => Buffer.from(c))).toString('utf8');
    assert.equal(text(encoded.chunks), expected);
    assert.equal(encoded.bytes, Buffer.byteLength(expected));
    assert.ok(encoded.chunks.length > 1);
    assert.throws(() => encodeSqlSuccess(results, 1, 1000), /result_bytes_max/);
    // A small body stays one string; its bytes (not its characters) are counted and capped.
    const small: StatementResult[] = [{ row_count: 1, message: 'Inserted 1 row(s) ü€', as_user: 'u' }];
    const one = encodeSqlSuccess(small, 0.5, 10 * MIB);
    const smallExpected = JSON.stringify({ status: 'success', results: small, took: 0.5 });
    assert.deepEqual(one.chunks, [smallExpected]);
    assert.equal(one.bytes, Buffer.byteLength(smallExpected));
    assert.throws(() => encodeSqlSuccess(small, 0.5, smallExpected.length), /result_bytes_max/, 'the cap is on bytes: the characters fit');
  });

  it('config: limits must be positive integers and consistent with each other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-config-'));
    const load = (toml: string): unknown => {
      writeFileSync(join(dir, 'c.toml'), toml);
      return loadConfig(['--config', join(dir, 'c.toml')], {});
    };
    try {
      assert.throws(() => load('write_rows_max = 0'), /write_rows_max must be a positive integer/);
      assert.throws(() => load('result_bytes_max = -1'), /result_bytes_max must be a positive integer/);
      assert.throws(() => load('write_rows_max = 2000000'), /write_rows_max must not exceed result_rows_max/);
      assert.throws(() => load('sql_nesting_depth_max = 2000'), /sql_nesting_depth_max must be below parse_tree_depth_max/);
      assert.throws(() => load('parse_tree_depth_max = 5000'), /must not exceed 1500/);
      assert.throws(() => load('subquery_depth_max = 100'), /subquery_depth_max must not exceed sql_nesting_depth_max/);
      assert.throws(() => load('duckdb_memory_limit = "4GB"'), /memory_rss_bytes_max .* must exceed duckdb_memory_limit/);
      assert.throws(() => load('duckdb_memory_limit = "lots"'), /not a size/);
      assert.equal(parseMemoryLimit('2GB', 0), 2e9);
      assert.equal(parseMemoryLimit('512 MiB', 0), 512 * MIB);
      assert.equal(parseMemoryLimit('50%', 1000), 500);
      assert.ok(defaults.memoryRssBytesMax > parseMemoryLimit(defaults.duckdbMemoryLimit, 0));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
