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

/** Row values of a stored version in the table's current schema. */
export function currentValues(table: TableDef, row: RowVersion): readonly StoredValue[] {
  // ALTER TABLE does not exist yet, so every stored version is in the current schema.
  assert(row.schemaVersion === table.schemaVersion, 'row version written with the current schema');
  assert(row.values.length === table.columns.length, 'row width matches schema');
  return row.values;
}

export class RowSources {
  constructor(private readonly hot: HotStore) {}

  async visible(table: TableDef, partition: string, includeDeleted: boolean, tx: Transaction | null): Promise<VisibleRow[]> {
    const stored = await this.hot.scanPartition(table, partition);
    const rows: VisibleRow[] = stored.map((r) => ({ seq: r.seq, deleted: r.deleted, values: currentValues(table, r) }));
    const merged = tx && tx.size > 0 ? overlay(table, rows, tx, partition) : rows;
    return includeDeleted ? merged : merged.filter((r) => !r.deleted);
  }

  /** Visible rows for specific primary keys (point reads), same rules as `visible`. */
  async byPks(table: TableDef, partition: string, pks: readonly StoredValue[], tx: Transaction | null): Promise<(VisibleRow | null)[]> {
    const stored = await this.hot.getByPks(table, partition, pks);
    const pending = tx ? new Map(tx.overlay(table, partition).map((w) => [pkString(table, w.values[primaryKeyIndex(table)]!), w])) : null;
    return stored.map((r, i) => {
      const w = pending?.get(pkString(table, pks[i]!));
      if (w) return w.deleted ? null : { seq: null, deleted: false, values: w.values };
      if (r === null || r.deleted) return null;
      return { seq: r.seq, deleted: false, values: currentValues(table, r) };
    });
  }
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
