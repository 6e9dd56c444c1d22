/**
 * The literal INSERT scanner (sql/insert-scan.ts) must give exactly what the token path gives (lexer,
 * insert-fast.ts, then each A_Const evaluated by `constantValue`) for every statement it accepts, and
 * leave everything outside its subset (params, DEFAULT, casts, comments, E'' strings, quoted names,
 * two statements, malformed text) to that path.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { scanLiteralInsert } from '../src/sql/insert-scan.js';
import { splitStatements } from '../src/sql/lexer.js';
import { parseSimpleInsert } from '../src/sql/insert-fast.js';
import { ParseCache, initParser } from '../src/sql/parser.js';
import { constantValue } from '../src/sql/create-table.js';
import type { PgNode } from '../src/sql/statement.js';

/** The token path's table, columns and evaluated rows, or null when insert-fast.ts refuses the text. */
function viaTokens(sql: string): unknown {
  const texts = splitStatements(sql);
  if (texts.length !== 1) return null;
  const st = parseSimpleInsert(texts[0]!);
  if (st === null || st.kind !== 'insert' || st.paramCount !== 0) return null;
  const lists: PgNode[] = (st.ast.selectStmt as PgNode).SelectStmt.valuesLists;
  if (lists.some((l) => l.List.items.some((item: PgNode) => item.A_Const === undefined))) return null;
  return {
    relation: st.ast.relation, cols: st.ast.cols,
    rows: lists.map((l) => l.List.items.map((item: PgNode) => constantValue(item, 'test'))),
  };
}

function viaScanner(sql: string): unknown {
  const scanned = scanLiteralInsert(sql);
  return scanned === null ? null : { relation: scanned.ast.relation, cols: scanned.ast.cols, rows: scanned.rows };
}

/** Accepted by the scanner: equal to the token path, -0 included. */
function assertSame(sql: string): void {
  const scanned = viaScanner(sql);
  assert.notEqual(scanned, null, `scanned: ${sql}`);
  assert.deepStrictEqual(scanned, viaTokens(sql), sql);
  const rows = (scanned as { rows: unknown[][] }).rows.flat();
  const expected = (viaTokens(sql) as { rows: unknown[][] }).rows.flat();
  rows.forEach((v, i) => assert.ok(Object.is(v, expected[i]), `${String(v)} is ${String(expected[i])} in ${sql}`));
}

describe('literal INSERT scanner', () => {
  before(async () => initParser({ statementsMax: 100, nestingDepthMax: 32, tokensMax: 100_000, treeDepthMax: 1000, subqueryDepthMax: 32 }));

  it('reads strings, numbers, NULL and booleans exactly as the token path evaluates them', () => {
    assertSame("INSERT INTO ns.t (id, a, b, c) VALUES (1, 'x', NULL, TRUE), (2, 'it''s', null, false)");
    assertSame("insert into T values (0, -0, 2147483647, -2147483648, 2147483648, -2147483649)");
    assertSame('INSERT INTO t VALUES (9007199254740991, 9007199254740993, -9007199254740993, 123456789012345678901234)');
    assertSame('INSERT INTO t VALUES (1.5, -1.5, .5, -.5, 1e3, 1E-3, -2e+2, 1.2.3, 00012, 1e)');
    assertSame("INSERT INTO t VALUES ( - 5 ,'' , '''' ,'a''b''c' ) ;  ");
    assertSame("INSERT\nINTO\tns . t(a,b)VALUES('x',1),('y',2);\n");
    assertSame("INSERT INTO t VALUES ('δ unicode ✓', 'semi;colon', '--not a comment', '/* nor this */')");
    assertSame('INSERT INTO t VALUES (1), (1, 2), (1, 2, 3)');
    assertSame(`INSERT INTO t VALUES ${Array.from({ length: 1000 }, (_, i) => `(${i}, 'u${i % 100}', 'body ${i}', ${i % 7})`).join(',')}`);
  });

  it('leaves everything else to the token path', () => {
    for (const sql of [
      'INSERT INTO t VALUES ($1, 2)',
      'INSERT INTO t VALUES (DEFAULT, 2)',
      "INSERT INTO t VALUES ('1'::int)",
      "INSERT INTO t VALUES (E'a\\nb')",
      "INSERT INTO t VALUES (x'1f')",
      'INSERT INTO t VALUES (1) -- comment',
      'INSERT INTO t VALUES (/* c */ 1)',
      'INSERT INTO "T" VALUES (1)',
      'INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)',
      'INSERT INTO t VALUES (1);;',
      'INSERT INTO t VALUES (1 + 2)',
      'INSERT INTO t VALUES (now())',
      "INSERT INTO t VALUES ('a' 'b')",
      "INSERT INTO t VALUES ('unterminated)",
      'INSERT INTO t VALUES (- - 1)',
      'INSERT INTO t VALUES (5abc)',
      'INSERT INTO t VALUES ()',
      'INSERT INTO t VALUES (1),',
      'INSERT INTO t SELECT 1',
      'INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING',
      'INSERT INTO t VALUES (1) RETURNING *',
      `INSERT INTO ${'x'.repeat(65)} VALUES (1)`,
      'INSERT INTO t.5 VALUES (1)',
      'SELECT 1',
    ]) assert.equal(viaScanner(sql), null, sql);
  });

  it('is what the parse cache returns for such INSERTs, with the rows instead of a tree per value', () => {
    const cache = new ParseCache(10);
    const [st] = cache.parse("INSERT INTO ns.t (id, v) VALUES (1, 'a'), (2, NULL)");
    assert.equal(st!.kind, 'insert');
    assert.deepEqual(st!.kind === 'insert' ? st.rows : null, [[1, 'a'], [2, null]]);
    const [withParam] = cache.parse('INSERT INTO ns.t (id, v) VALUES ($1, $2)');
    assert.equal(withParam!.kind === 'insert' ? withParam.rows : 'not an insert', undefined);
  });

  it('keeps parameterized statements in the parse cache and not literal INSERTs (their text is their data)', () => {
    const cache = new ParseCache(10);
    const literal = "INSERT INTO ns.t (id, v) VALUES (1, 'a'), (2, NULL)";
    assert.notEqual(cache.parse(literal), cache.parse(literal));
    const templated = 'INSERT INTO ns.t (id, v) VALUES ($1, $2)';
    assert.equal(cache.parse(templated), cache.parse(templated));
    assert.equal(cache.parse('SELECT * FROM ns.t WHERE id = $1'), cache.parse('SELECT * FROM ns.t WHERE id = $1'));
  });
});
