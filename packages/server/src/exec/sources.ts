/**
 * The read path's sources: for a table and a partition, the newest version of every key from every
 * tier, minus tombstones (unless asked for), with the open transaction's own writes laid over. The
 * cold tier plugs in here as one more tier. Rows come out as [...columns, _seq, _deleted].
 */
import { assert } from '../util/errors.js';
import { DELETED_COLUMN, SEQ_COLUMN, primaryKeyIndex, type StoredValue, type TableDef } from '../catalog/types.js';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { RowVersion } from '../storage/hot/row-codec.js';
import type { SourceColumn } from '../storage/duck/duck-engine.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import type { DuckDBValue } from '@duckdb/node-api';
import { coerce } from '../sql/values.js';
import { duckToInput } from './duck-cells.js';
import { pkString, type Transaction } from './transaction.js';

export interface VisibleRow {
  /** null for a row written by the open transaction and not committed yet. */
  readonly seq: bigint | null;
  readonly deleted: boolean;
  readonly values: readonly StoredValue[];
}

export function sourceColumns(table: TableDef): SourceColumn[] {
  return [
    ...table.columns.map((c) => ({ name: c.name, type: c.type, precision: c.precision, scale: c.scale })),
    { name: SEQ_COLUMN, type: 'BigInt' as const },
    { name: DELETED_COLUMN, type: 'Boolean' as const },
  ];
}

/** STREAM tables have `_seq` but no `_deleted`. */
export function streamColumns(table: TableDef): SourceColumn[] {
  return sourceColumns(table).filter((c) => c.name !== DELETED_COLUMN);
}

/** Row values of a stored version in the table's schema (the hot store maps older versions by column id). */
export function currentValues(table: TableDef, row: RowVersion): readonly StoredValue[] {
  assert(row.schemaVersion === table.schemaVersion, 'row version mapped to the reader\'s schema');
  assert(row.values.length === table.columns.length, 'row width matches schema');
  return row.values;
}

export class RowSources {
  constructor(private readonly hot: HotStore, private readonly cold: ColdStore) {}

  /**
   * The hot rows of a partition (tombstones included) with the transaction's writes laid over,
   * for a query that merges them with the cold segments in DuckDB.
   */
  async hotWithOverlay(table: TableDef, partition: string, tx: Transaction | null): Promise<VisibleRow[]> {
    const stored = await this.hot.scanPartition(table, partition);
    const rows: VisibleRow[] = stored.map((r) => ({ seq: r.seq, deleted: r.deleted, values: currentValues(table, r) }));
    return tx && tx.size > 0 ? overlay(table, rows, tx, partition) : rows;
  }

  /**
   * Visible rows for specific primary keys (point reads): transaction writes, then hot, then cold.
   * A flushed key whose index entry still holds its cells is answered from them (the version its
   * segment holds); only cold markers without cells read the segments (decision 0027).
   */
  async byPks(table: TableDef, partition: string, pks: readonly StoredValue[], tx: Transaction | null): Promise<(VisibleRow | null)[]> {
    const stored = await this.hot.getByPks(table, partition, pks, true);
    const coldKeys = pks.filter((_, i) => stored[i]?.cold === true && !stored[i]!.deleted && stored[i]!.values.length === 0);
    const coldRows = coldKeys.length === 0 ? new Map<string, RowVersion>() : await this.coldByPk(table, partition, coldKeys);
    const pending = tx ? new Map(tx.overlay(table, partition).map((w) => [pkString(table, w.values[primaryKeyIndex(table)]!), w])) : null;
    return stored.map((r, i) => {
      const key = pkString(table, pks[i]!);
      const w = pending?.get(key);
      if (w) return w.deleted ? null : { seq: null, deleted: false, values: w.values };
      if (r === null || r.deleted) return null;
      if (r.cold && r.values.length > 0) {
        if (!this.cold.mayHoldVersion(table, partition, pks[i]!, r.seq)) return null;
        return { seq: r.seq, deleted: false, values: currentValues(table, r) };
      }
      if (r.cold) {
        const c = coldRows.get(key);
        // The index says which version is newest; a segment without it means the row is gone.
        if (c === undefined || c.seq !== r.seq || c.deleted) return null;
        return { seq: c.seq, deleted: false, values: c.values };
      }
      return { seq: r.seq, deleted: false, values: currentValues(table, r) };
    });
  }

  private async coldByPk(table: TableDef, partition: string, pks: readonly StoredValue[]): Promise<Map<string, RowVersion>> {
    const versions = await this.cold.readVersions(table, partition, pks, decodeColdRow);
    const out = new Map<string, RowVersion>();
    const pkIdx = primaryKeyIndex(table);
    for (const v of versions) out.set(pkString(table, v.values[pkIdx]!), v); // ordered by _seq: newest last
    return out;
  }
}

/** A Parquet row (cells in schema order, then _seq, _deleted) back to a stored version. */
export function decodeColdRow(table: TableDef, row: readonly unknown[]): RowVersion {
  const n = table.columns.length;
  assert(row.length === n + 2, 'segment row width');
  const values = table.columns.map((c, i) => coerce({ ...c, nullable: true }, duckToInput(row[i] as DuckDBValue)));
  return { seq: BigInt(row[n] as bigint), deleted: row[n + 1] === true, schemaVersion: table.schemaVersion, values };
}

function overlay(table: TableDef, rows: VisibleRow[], tx: Transaction, partition: string): VisibleRow[] {
  const pkIdx = primaryKeyIndex(table);
  const byPk = new Map<string, VisibleRow>();
  for (const r of rows) byPk.set(pkString(table, r.values[pkIdx]!), r);
  for (const w of tx.overlay(table, partition)) {
    byPk.set(pkString(table, w.values[pkIdx]!), { seq: null, deleted: w.deleted, values: w.values });
  }
  return [...byPk.values()];
}

export function withSystemColumns(row: VisibleRow): StoredValue[] {
  return [...row.values, row.seq, row.deleted];
}
