/**
 * The flush's in-place path (decision 0018, "Later"): FlushRows picks the newest version per integer
 * key in key order exactly as DuckDB's `QUALIFY row_number() ... ORDER BY` did, and ChunkWriter,
 * read through the `kalam_chunks` table function, yields exactly the rows the appender wrote from
 * the decoded versions, for every column type it takes and every encoding it reads in place or
 * leaves to the decoded path (nulls, inline and long strings, non-ASCII, invalid UTF-8, an older
 * schema version).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { decodeRow, encodeRow } from '../src/storage/hot/row-codec.js';
import { VersionPackBuilder, forEachPackedAt } from '../src/storage/hot/version-pack.js';
import { FlushRows } from '../src/storage/cold/flush-rows.js';
import { ChunkWriter } from '../src/storage/duck/chunk-writer.js';
import { withChunkSource } from '../src/storage/duck/chunk-source.js';
import { RowAppender, columnList, type SourceColumn } from '../src/storage/duck/duck-engine.js';
import type { ColumnDef, ColumnType, StoredValue, TableDef } from '../src/catalog/types.js';

function tableOf(types: readonly ColumnType[]): TableDef {
  const columns: ColumnDef[] = types.map((type, i) => ({ id: i + 1, name: `c${i}`, type, nullable: i > 0, primaryKey: i === 0 }));
  return {
    id: 7, namespace: 'app', name: 't', type: 'SHARED', schemaVersion: 3, columns, nextColumnId: columns.length + 1,
    options: { flushPolicy: { rows: null, intervalSeconds: null }, accessLevel: null, ttlSeconds: null, maxBuffer: null, ephemeral: false, deletedRetentionHours: 0 },
    createdAt: 0, createdBy: 'root',
  };
}

function sourceColumns(table: TableDef): SourceColumn[] {
  return [...table.columns.map((c) => ({ name: c.name, type: c.type })), { name: '_seq', type: 'BigInt' }, { name: '_deleted', type: 'Boolean' }];
}

interface Version { seq: bigint; deleted: boolean; values: StoredValue[]; encoded?: Buffer }

/** Packs the versions (in `_seq` order) as commit groups of `group` and adds them to a FlushRows. */
function collect(table: TableDef, versions: readonly Version[], group: number): FlushRows {
  const rows = new FlushRows(table, (seq, bytes) => {
    const row = decodeRow(seq, bytes);
    // The tests' "older schema" versions carry the same cells: only the schema number differs.
    return { ...row, schemaVersion: table.schemaVersion };
  });
  for (let i = 0; i < versions.length; i += group) {
    const builder = new VersionPackBuilder();
    for (const v of versions.slice(i, i + group)) builder.add(v.seq, v.encoded ?? encodeRow(table.schemaVersion, v.deleted, v.values));
    for (const { lastSeq, value } of builder.entries()) {
      const index = rows.addValue(value);
      forEachPackedAt(lastSeq, value, 0n, 2n ** 63n - 1n, (hi, lo, start, end) => rows.add(index, start, end, hi, lo));
    }
  }
  return rows;
}

const instances: DuckDBInstance[] = [];
const dirs: string[] = [];
after(() => {
  for (const i of instances) i.closeSync();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('flush chunks', () => {
  it('chooses the newest version per integer key and sorts by key like DuckDB did (negative, 64-bit, repeated keys)', async () => {
    const table = tableOf(['BigInt', 'Text']);
    const keys = [5n, -1n, 0n, 2n ** 40n, -(2n ** 40n), 2n ** 63n - 1n, -(2n ** 63n), 77n, 5n, -1n, 65536n, 65535n, 2n ** 32n, 2n ** 32n - 1n, 5n];
    let seq = 1000n;
    const versions: Version[] = keys.map((k, i) => ({ seq: seq += 3n, deleted: i % 4 === 3, values: [k, `v${i}`] }));
    for (const group of [1, 4, 100]) {
      const rows = collect(table, versions, group);
      const order = rows.order();
      assert.ok(order !== null);
      const newest = new Map<bigint, Version>();
      for (const v of versions) newest.set(v.values[0] as bigint, v);
      const expected = [...newest.values()].sort((a, b) => ((a.values[0] as bigint) < (b.values[0] as bigint) ? -1 : 1)).map((v) => v.seq);
      const seqs: bigint[] = [];
      for (const i of order) rows.write(i, { encoded: (_b, _dv, _s, _e, hi, lo) => (seqs.push((BigInt(hi) << 32n) | BigInt(lo)), true), values: () => assert.fail('decoded') });
      assert.deepEqual(seqs, expected, `group of ${group}`);
    }
    // An INT key is sorted the same way; a TEXT key is left to DuckDB.
    const ints = collect(tableOf(['Int', 'Text']), [{ seq: 1n, deleted: false, values: [3, 'a'] }, { seq: 2n, deleted: false, values: [-3, 'b'] }], 2);
    assert.equal(ints.order()?.length, 2);
    assert.equal(collect(tableOf(['Text', 'Int']), [{ seq: 1n, deleted: false, values: ['k', 1] }], 1).order(), null);
  });

  it('reads back through kalam_chunks and a COPY to Parquet exactly what the appender wrote from decoded versions, for every column type', async () => {
    const types: ColumnType[] = ['BigInt', 'Boolean', 'SmallInt', 'Int', 'Float', 'Double', 'Text', 'Json', 'Timestamp', 'Date', 'Time', 'Bytes'];
    const table = tableOf(types);
    const columns = sourceColumns(table);
    const texts = ['', 'short', 'exactly12byt', 'thirteen byte', 'x'.repeat(70), 'ünïcødé ✓ 😀 text past inline', 'é'];
    const versions: Version[] = [];
    for (let i = 0; i < 5000; i++) {
      const nul = (c: number): boolean => (i + c) % 11 === 0;
      const values: StoredValue[] = [
        BigInt(i * 7 - 9000), nul(1) ? null : i % 2 === 0, nul(2) ? null : (i % 500) - 250, nul(3) ? null : i * 1000 - 2_000_000,
        nul(4) ? null : i / 3, nul(5) ? null : (i % 3 === 0 ? i : i / 7 - 100), nul(6) ? null : texts[i % texts.length]! + (i % 5 === 0 ? '' : String(i)),
        nul(7) ? null : JSON.stringify({ i, s: texts[i % texts.length] }), nul(8) ? null : 1_700_000_000_000_000 + i * 1_000_003 - (i % 2) * 3_000_000_000_000_000,
        nul(9) ? null : i - 2500, nul(10) ? null : i * 1_000_000 % 86_400_000_000, nul(11) ? null : Uint8Array.from({ length: i % 40 }, (_, k) => (k * 31 + i) & 0xff),
      ];
      versions.push({ seq: 10_000n + BigInt(i), deleted: i % 13 === 0, values });
    }
    // Left to the decoded path: an older schema version, and text stored as invalid UTF-8 (a lone
    // surrogate as an old msgpack writer encoded it: DuckDB would store those bytes as NULL, the
    // decoder makes each bad byte U+FFFD, which is what the appender got).
    const old = versions[10]!;
    old.encoded = encodeRow(table.schemaVersion - 1, old.deleted, old.values);
    const bad = versions[20]!;
    const good = encodeRow(table.schemaVersion, bad.deleted, [...bad.values.slice(0, 6), 'ab\u00e9cd', ...bad.values.slice(7)]);
    const at = good.indexOf(Buffer.from('ab\u00e9cd'));
    bad.encoded = Buffer.concat([good.subarray(0, at - 1), Buffer.from([0xa7, 0x61, 0x62, 0xed, 0xa0, 0x80, 0x63, 0x64]), good.subarray(at + 6)]);

    const instance = await DuckDBInstance.create(':memory:');
    instances.push(instance);
    const conn = await instance.connect();
    await conn.run(`CREATE TABLE expected (${columnList(columns)})`);
    const appender = await RowAppender.open(conn, 'expected', 'memory', columns);
    for (const v of versions) {
      const row = decodeRow(v.seq, v.encoded ?? encodeRow(table.schemaVersion, v.deleted, v.values));
      appender.version(row.values, row.seq, row.deleted);
    }
    appender.flush();
    appender.close();

    const rows = collect(table, versions, 1000);
    const writer = new ChunkWriter(columns, table.schemaVersion);
    let next = 0;
    const source = {
      columns,
      fill: (chunk: Parameters<ChunkWriter['emit']>[0]) => {
        const end = Math.min(rows.count, next + ChunkWriter.ROWS);
        for (; next < end; next++) rows.write(next, writer);
        writer.emit(chunk);
      },
    };
    // Through a COPY to Parquet as the flush does (several row groups, DuckDB's threads): the rows
    // stay in the order they were produced, which is the segment's key order.
    const file = join(mkdtempSync(join(tmpdir(), 'kalamdb-chunks-')), 'out.parquet');
    dirs.push(dirname(file));
    await withChunkSource(conn, source, (relation) => conn.run(`COPY (SELECT * FROM ${relation}) TO '${file}' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE 1024)`));
    const got = (await conn.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRows();
    const want = (await conn.runAndReadAll('SELECT * FROM expected')).getRows();
    assert.equal(got.length, versions.length);
    assert.deepEqual(got, want);
    const [[texts2]] = (await conn.runAndReadAll(`SELECT count(*) FROM expected WHERE c6 = 'ab\ufffd\ufffd\ufffdcd'`)).getRows() as bigint[][];
    assert.equal(texts2, 1n);
  });
});
