/**
 * Rows under the schema version a live subscription works in. A stored version keeps the cells of
 * the schema it was written with; a subscription matches changes under the version it is compiled
 * for and renders them under the one its client was last told about (ack or schema_changed), so a
 * change committed before an ALTER TABLE and delivered after it, or the other way round, is mapped
 * by column id (catalog/schema-map.ts: a renamed column keeps its data, a dropped one is left out,
 * a column the row predates reads its `missing` value or NULL). The mapping is planned once per
 * pair of versions.
 */
import type { Catalog } from '../catalog/catalog.js';
import type { ColumnDef, StoredValue, TableDef } from '../catalog/types.js';
import { valuesInSchema } from '../catalog/schema-map.js';
import { encodeCell } from '../sql/values.js';
import { liveColumns, type SubscriptionQuery } from './subscription-query.js';

export interface VersionedCells {
  readonly schemaVersion: number;
  readonly values: readonly StoredValue[];
}

/** `row`'s cells in `target`'s column order (`row.values` itself when it is of that version). */
export function cellsUnder(catalog: Catalog, target: TableDef, row: VersionedCells): readonly StoredValue[] {
  return valuesInSchema(catalog, target, row.schemaVersion, row.values);
}

/** What rows written before `column` was added read in it (its fast default), else null. */
export function fillFor(column: ColumnDef): StoredValue {
  return column.missing ?? null;
}

/** A column's identity across schema versions: its stable id. */
export function columnKey(c: ColumnDef): number {
  return c.id;
}

/** A stored version as a protocol object under a subscription's shape (converted from the schema it was written with). */
export function shapedRow(catalog: Catalog, shape: SubscriptionQuery, row: VersionedCells, seq: bigint): Record<string, unknown> {
  return rowObject(shape.table, shape.projection, cellsUnder(catalog, shape.table, row), seq);
}

/** A row as a protocol object: the projected columns (cells encoded) with `_seq`. */
export function rowObject(table: TableDef, projection: readonly number[], values: readonly StoredValue[], seq: bigint): Record<string, unknown> {
  const columns = liveColumns(table);
  const out: Record<string, unknown> = {};
  for (const i of projection) {
    const column = columns[i]!;
    out[column.name] = i === table.columns.length ? seq.toString() : encodeCell(column, values[i] ?? null);
  }
  return out;
}

/**
 * `JSON.stringify(shapedRow(...))` without the object in between: the live fan-out encodes every
 * row of every change once per projection, and building a keyed object per row only to serialize
 * it was most of that cost. Same text: keys in projection order (column names are identifiers, so
 * never array-index-like keys that an object would reorder), each value serialized as in the object.
 */
export function shapedRowJson(catalog: Catalog, shape: SubscriptionQuery, row: VersionedCells, seq: bigint): string {
  const values = cellsUnder(catalog, shape.table, row);
  const keys = keysOf(shape);
  const cells = cellJsonOf(shape);
  let out = '{';
  const projection = shape.projection;
  for (let k = 0; k < projection.length; k++) {
    const i = projection[k]!;
    out += keys[k]! + (cells[k] === null ? `"${seq}"` : cells[k]!(values[i] ?? null));
  }
  return out + '}';
}

/** One cell as JSON: the text of `JSON.stringify(encodeCell(column, value))`. */
type CellJson = (value: StoredValue) => string;

/** Characters JSON.stringify escapes in a string: quote, backslash, controls and (lone) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * The encoder of a column's cells. Text without characters to escape and finite numbers are written
 * directly (~3× faster per row than JSON.stringify of the encoded cell, which is what the rest get).
 */
function cellJson(column: ColumnDef): CellJson {
  const generic: CellJson = (v) => JSON.stringify(encodeCell(column, v));
  switch (column.type) {
    case 'Text':
      return (v) => (typeof v === 'string' && !NEEDS_ESCAPE.test(v) ? `"${v}"` : generic(v));
    case 'Double':
    case 'Int':
    case 'SmallInt':
      return (v) => (typeof v === 'number' && Number.isFinite(v) ? `${v}` : generic(v));
    default:
      return generic;
  }
}

/** Per compiled query: the encoder of each projected column, null for `_seq`. */
const projectedCells = new WeakMap<SubscriptionQuery, readonly (CellJson | null)[]>();

function cellJsonOf(shape: SubscriptionQuery): readonly (CellJson | null)[] {
  let cells = projectedCells.get(shape);
  if (cells === undefined) {
    const columns = shape.table.columns;
    cells = shape.projection.map((i) => (i === columns.length ? null : cellJson(columns[i]!)));
    projectedCells.set(shape, cells);
  }
  return cells;
}

/** Per compiled query: `"name":` for each projected column (with the separating comma after the first). */
const projectedKeys = new WeakMap<SubscriptionQuery, readonly string[]>();

function keysOf(shape: SubscriptionQuery): readonly string[] {
  let keys = projectedKeys.get(shape);
  if (keys === undefined) {
    const columns = liveColumns(shape.table);
    keys = shape.projection.map((i, k) => `${k === 0 ? '' : ','}${JSON.stringify(columns[i]!.name)}:`);
    projectedKeys.set(shape, keys);
  }
  return keys;
}

/**
 * The rows `picked` of a STREAM batch (all when null), as `shapedRowJson` encodes each, joined
 * with commas: cells of schema `schemaVersion`, `_seq` from `seqs`. No row object per event.
 */
export function shapedRowsJson(
  catalog: Catalog, shape: SubscriptionQuery, schemaVersion: number, rows: readonly (readonly StoredValue[])[], seqs: readonly bigint[], picked: readonly number[] | null,
): string {
  const keys = keysOf(shape);
  const cells = cellJsonOf(shape);
  const projection = shape.projection;
  const sameVersion = shape.table.schemaVersion === schemaVersion;
  const n = picked === null ? rows.length : picked.length;
  let out = '';
  for (let r = 0; r < n; r++) {
    const at = picked === null ? r : picked[r]!;
    const values = sameVersion ? rows[at]! : cellsUnder(catalog, shape.table, { schemaVersion, values: rows[at]! });
    out += r === 0 ? '{' : ',{';
    for (let k = 0; k < projection.length; k++) {
      const cell = cells[k]!;
      out += keys[k]! + (cell === null ? `"${seqs[at]!}"` : cell(values[projection[k]!] ?? null));
    }
    out += '}';
  }
  return out;
}
