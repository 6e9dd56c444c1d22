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
