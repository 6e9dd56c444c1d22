/**
 * The second line of defence, tested with the first one switched off: SQL run on the query engine
 * opened exactly as the server opens it, but without the bind layer or the engine check, still
 * cannot list, read, write or attach a file, nor unlock the engine's configuration. The files
 * attacked are real Parquet segments and manifests a running server flushed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DuckEngine } from '../src/storage/duck/duck-engine.js';
import { fileEngineConfig, queryEngineConfig } from '../src/engine-config.js';
import { loadConfig } from '../src/config/config.js';
import { checkEngineSql, EngineCheckError } from '../src/sql/bind/engine-check.js';
import { ENGINE_MACRO_COPIES, isAllowedFunction } from '../src/sql/bind/engine-names.js';
import { TestServer } from './harness.js';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

const digest = (paths: readonly string[]): string => {
  const h = createHash('sha256');
  for (const p of [...paths].sort()) h.update(p).update(readFileSync(p));
  return h.digest('hex');
};

describe('query engine sandbox (engine check switched off)', () => {
  let server: TestServer;
  let engine: DuckEngine;
  let storage: string;
  let segments: string[];

  before(async () => {
    server = await TestServer.start();
    await server.ok('CREATE NAMESPACE s');
    await server.ok('CREATE USER TABLE s.t (id BIGINT PRIMARY KEY, body TEXT)');
    const bob = await server.createUser('bob');
    await server.ok("INSERT INTO s.t VALUES (1, 'BOB-SECRET')", { auth: bob });
    await server.flushAndWait('s.t');
    storage = join(server.dataDir, 'storage');
    segments = filesUnder(storage).filter((p) => p.endsWith('.parquet'));
    assert.ok(segments.length > 0, 'the flush wrote a segment');
    engine = await DuckEngine.open(queryEngineConfig(loadConfig(['--data-dir', server.dataDir], {})));
  });

  after(async () => {
    engine?.close();
    await server?.stop();
  });

  const refused = async (sql: string): Promise<string> => {
    try {
      await engine.query(sql, [], []);
    } catch (error) {
      return (error as Error).message;
    }
    assert.fail(`the query engine ran: ${sql}`);
  };

  it("every engine macro user SQL may call that names a parameter twice is in ENGINE_MACRO_COPIES (the binder counts its copies)", async () => {
    const macros = await engine.query("SELECT DISTINCT function_name, array_to_string(parameters, ','), macro_definition FROM duckdb_functions() WHERE function_type = 'macro'", [], []);
    const missing: string[] = [];
    let checked = 0;
    for (const [name, paramList, definition] of macros.rows as unknown as [string, string, string][]) {
      if (!isAllowedFunction(name)) continue;
      const params = paramList.split(',');
      checked++;
      // A parameter as the definition names it: a bare word or a double-quoted identifier, outside string literals and not a named argument's name (`"key" := ...`).
      const code = definition.replace(/'(?:[^']|'')*'/g, "''");
      params.forEach((param, i) => {
        const uses = code.match(new RegExp(`(?<![\\w."])(?:"${param}"|${param})(?![\\w("])(?!\\s*:=)`, 'g'))?.length ?? 0;
        const counted = ENGINE_MACRO_COPIES.get(name)?.[i] ?? 1;
        if (uses > counted) missing.push(`${name}(${params.join(', ')}): ${param} ${uses} times, counted ${counted}: ${definition}`);
      });
    }
    assert.ok(checked > 20, `${checked} allowed macros`);
    assert.deepEqual(missing, []);
  });

  it('cannot read, list or sniff any file, the cold tier included', async () => {
    const segment = segments[0]!;
    const manifest = filesUnder(storage).find((p) => p.endsWith('manifest.json'))!;
    for (const sql of [
      `SELECT * FROM read_parquet('${segment}')`,
      `SELECT * FROM parquet_metadata('${segment}')`,
      `SELECT * FROM read_text('${manifest}')`,
      `SELECT * FROM read_blob('${segment}')`,
      `SELECT * FROM read_csv('/etc/passwd')`,
      `SELECT * FROM glob('${storage}/**')`,
      `SELECT * FROM '${segment}'`,
    ]) {
      assert.match(await refused(sql), /disabled|Permission|not allowed/i, sql);
    }
  });

  it('cannot write, overwrite, attach or export, and every file stays as it was', async () => {
    const before = digest(filesUnder(storage));
    const segment = segments[0]!;
    for (const sql of [
      `COPY (SELECT 1 AS id, 'FORGED' AS body) TO '${segment}' (FORMAT parquet)`,
      `COPY (SELECT 1) TO '${storage}/new.csv'`,
      `ATTACH '${storage}/x.db'`,
      `EXPORT DATABASE '${storage}/export'`,
      'INSTALL httpfs',
      'LOAD httpfs',
    ]) {
      await refused(sql);
    }
    assert.equal(digest(filesUnder(storage)), before, 'no file under storage/ changed');
  });

  it('cannot unlock its configuration', async () => {
    for (const sql of [
      'SET enable_external_access = true',
      "SET allowed_directories = ['/']",
      'SET lock_configuration = false',
      'RESET lock_configuration',
    ]) {
      assert.match(await refused(sql), /lock|configuration|Cannot change/i, sql);
    }
  });

  it('the file engine, which never runs user SQL, is confined to the cold tier', async () => {
    const files = await DuckEngine.open(fileEngineConfig(loadConfig(['--data-dir', server.dataDir], {})));
    try {
      await assert.rejects(files.query("SELECT * FROM read_text('/etc/passwd')", [], []), /Permission|not allowed|disabled/i);
      const rows = await files.query(`SELECT body FROM read_parquet('${segments[0]}')`, [], []);
      assert.deepEqual(rows.rows, [['BOB-SECRET']]);
    } finally {
      files.close();
    }
  });
});

describe('engine check (DuckDB parses the final text; the check walks what it understood)', () => {
  let engine: DuckEngine;
  const allow = { relations: new Set(['memory.main.m_1_live']), cteNames: new Map([['kalam_cte_1', 'x']]) };

  before(async () => {
    engine = await DuckEngine.open(queryEngineConfig(loadConfig(['--data-dir', '/nonexistent-kalamdb-test'], {})));
  });
  after(() => engine?.close());

  /** Runs only the check: the engine parses the text, nothing executes. */
  const verdict = async (sql: string): Promise<string> => {
    try {
      checkEngineSql(await engine.serialize(sql), allow);
      return 'passed';
    } catch (error) {
      return error instanceof EngineCheckError ? `refused: ${error.reason}` : (error as Error).message;
    }
  };

  it('passes one SELECT over the statement\'s relations, CTEs and allowlisted functions', async () => {
    for (const sql of [
      'SELECT "body", count(*) AS "n" FROM memory.main.m_1_live AS "at" GROUP BY 1',
      'WITH kalam_cte_1 AS (SELECT 1 AS "v") SELECT lower("v"::VARCHAR) FROM kalam_cte_1 AS "x"',
      'SELECT * FROM range(3) AS "r" WHERE "range" IN (SELECT 1)',
      'SELECT row_number() OVER (ORDER BY 1), unnest([1, 2])',
    ]) assert.equal(await verdict(sql), 'passed', sql);
  });

  it('refuses other relations, catalog and file functions, and anything but one SELECT', async () => {
    for (const [sql, reason] of [
      ['SELECT * FROM memory.main.m_2_live', /relation memory\.main\.m_2_live/],
      ['SELECT * FROM m_1_live', /unbound relation m_1_live/],
      ['WITH RECURSIVE a AS (SELECT * FROM m_1), m_1 AS (SELECT 1) SELECT * FROM a', /unbound relation/],
      ['SELECT * FROM duckdb_tables()', /table function duckdb_tables/],
      ["SELECT * FROM read_parquet('/x')", /table function read_parquet/],
      ["SELECT current_setting('allowed_directories')", /function current_setting/],
      ["SELECT * FROM 'x.parquet'", /unbound relation x\.parquet/],
      ['SELECT 1; SELECT 2', /exactly one/],
      ["COPY (SELECT 1) TO '/tmp/x'", /not a SELECT/],
      ['PRAGMA version', /not a SELECT/],
      ["ATTACH '/tmp/x.db'", /not a SELECT/],
      ["SELECT main.current_setting('x')", /function current_setting/],
      ['SELECT pg_catalog.current_database()', /qualified function/],
      ['SELECT * FROM sqlite_master', /unbound relation sqlite_master/],
      ['PIVOT memory.main.m_1_live ON "a" USING sum("b")', /not a SELECT|query node|table reference/],
    ] as const) assert.match(await verdict(sql), reason, sql);
  });
});
