/**
 * Rows under another schema version of their table. A stored version keeps the cells of the
 * schema it was written with; a live subscription sees every row under the one version it is
 * compiled for (matching) or announced to its client (rendering), so a row written before an
 * ALTER TABLE and delivered after it (or an update's old version) is converted: columns are
 * matched by their stable id, a column the row predates gets its literal default or null, a
 * dropped column is left out. The mapping is computed once per (version written, version shown).
 */
import type { Catalog } from '../catalog/catalog.js';
import type { ColumnDef, StoredValue, TableDef } from '../catalog/types.js';
import { coerce } from '../sql/values.js';

export interface VersionedCells {
  readonly schemaVersion: number;
  readonly values: readonly StoredValue[];
}

type Converter = (values: readonly StoredValue[]) => readonly StoredValue[];

/** Per target definition (frozen per version and per catalog), per source version. */
const converters = new WeakMap<TableDef, Map<number, Converter>>();

/** `row`'s cells in `target`'s column order. */
export function cellsUnder(catalog: Catalog, target: TableDef, row: VersionedCells): readonly StoredValue[] {
  if (row.schemaVersion === target.schemaVersion) return row.values;
  let byVersion = converters.get(target);
  if (byVersion === undefined) converters.set(target, (byVersion = new Map()));
  let convert = byVersion.get(row.schemaVersion);
  if (convert === undefined) {
    const source = catalog.schemaVersion(target.id, row.schemaVersion)?.columns;
    convert = source === undefined ? (values) => values : converter(source, target.columns);
    byVersion.set(row.schemaVersion, convert);
  }
  return convert(row.values);
}

/** What a row written before `column` was added holds in it: its literal default, else null. */
export function fillFor(column: ColumnDef): StoredValue {
  return column.default?.kind === 'literal' ? column.default.value : null;
}

/** A stable column identity: the column id where both sides have one, else the name. */
export function columnKey(c: ColumnDef): string {
  const id = (c as { readonly id?: unknown }).id;
  return id === undefined || id === null ? `name:${c.name}` : `id:${String(id)}`;
}

function converter(from: readonly ColumnDef[], to: readonly ColumnDef[]): Converter {
  const index = new Map(from.map((c, i) => [columnKey(c), i]));
  const steps = to.map((target): ((values: readonly StoredValue[]) => StoredValue) => {
    const i = index.get(columnKey(target));
    if (i === undefined) {
      const fill = fillFor(target);
      return () => fill;
    }
    const source = from[i]!;
    if (sameType(source, target)) return (values) => values[i] ?? null;
    return (values) => retype(target, values[i] ?? null);
  });
  return (values) => steps.map((step) => step(values));
}

function sameType(a: ColumnDef, b: ColumnDef): boolean {
  return a.type === b.type && a.precision === b.precision && a.scale === b.scale;
}

/** A cell of a column whose type changed (MODIFY COLUMN), as the new type holds it; null when it does not fit. */
function retype(target: ColumnDef, value: StoredValue): StoredValue {
  if (value === null) return null;
  try {
    return coerce({ ...target, nullable: true }, value);
  } catch {
    return null;
  }
}
