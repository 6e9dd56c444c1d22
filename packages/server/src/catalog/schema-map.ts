/**
 * Schema evolution's mapping of stored rows between schema versions, by stable column id: a row
 * written under one version reads in another as that version's columns, each taken from the column
 * with the same id (a renamed column keeps its data, a dropped one is not read), widened where the
 * type grew (INT → BIGINT), and the column's `missing` value (or NULL) where the row predates it.
 */
import type { ColumnDef, StoredValue, TableDef } from './types.js';

/** What the storage layers need of the catalog: the columns of any schema version of a table. */
export interface SchemaLookup {
  /** The columns of one schema version; undefined when the catalog has no such version. */
  columnsAt(tableId: number, version: number): readonly ColumnDef[] | undefined;
}

/** For each target column: the source index to read, or -1 (use the target column's missing value). */
type Plan = { readonly from: Int32Array; readonly widenToBigInt: Uint8Array; readonly identity: boolean };

const plans = new WeakMap<readonly ColumnDef[], WeakMap<readonly ColumnDef[], Plan>>();

function planFor(from: readonly ColumnDef[], to: readonly ColumnDef[]): Plan {
  let inner = plans.get(from);
  if (inner === undefined) {
    inner = new WeakMap();
    plans.set(from, inner);
  }
  let plan = inner.get(to);
  if (plan !== undefined) return plan;
  const byId = new Map(from.map((c, i) => [c.id, i]));
  const idx = new Int32Array(to.length);
  const widen = new Uint8Array(to.length);
  let identity = from.length === to.length;
  to.forEach((c, i) => {
    const j = byId.get(c.id) ?? -1;
    idx[i] = j;
    if (j !== i) identity = false;
    if (j >= 0 && c.type === 'BigInt' && from[j]!.type !== 'BigInt') {
      widen[i] = 1;
      identity = false;
    }
  });
  plan = { from: idx, widenToBigInt: widen, identity };
  inner.set(to, plan);
  return plan;
}

/**
 * Cells of a row stored under `from` as the columns `to` (both column lists of the same table).
 * Returns `values` itself when nothing changes.
 * @example projectValues(v1Columns, table.columns, row.values)
 */
export function projectValues(from: readonly ColumnDef[], to: readonly ColumnDef[], values: readonly StoredValue[]): readonly StoredValue[] {
  if (from === to) return values;
  const plan = planFor(from, to);
  if (plan.identity) return values;
  const out = new Array<StoredValue>(to.length);
  for (let i = 0; i < to.length; i++) {
    const j = plan.from[i]!;
    if (j < 0) {
      out[i] = to[i]!.missing ?? null;
      continue;
    }
    const v = values[j] ?? null;
    out[i] = plan.widenToBigInt[i] === 1 && typeof v === 'number' ? BigInt(v) : v;
  }
  return out;
}

/**
 * The columns a row of `version` was written with, for a table (the live layer maps change rows
 * with it). The table's own columns when `version` is its current one.
 */
export function columnsForVersion(schemas: SchemaLookup, table: TableDef, version: number): readonly ColumnDef[] {
  if (version === table.schemaVersion) return table.columns;
  const columns = schemas.columnsAt(table.id, version);
  if (columns === undefined) throw new Error(`table ${table.namespace}.${table.name} has no schema version ${version}`);
  return columns;
}

/** Cells of a row written under schema `version` as the columns of `table` (any version of it). */
export function valuesInSchema(schemas: SchemaLookup, table: TableDef, version: number, values: readonly StoredValue[]): readonly StoredValue[] {
  if (version === table.schemaVersion) return values;
  return projectValues(columnsForVersion(schemas, table, version), table.columns, values);
}
