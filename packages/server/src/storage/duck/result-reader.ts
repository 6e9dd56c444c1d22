/**
 * Reads a streaming DuckDB result into JS one chunk at a time, under a row cap and a byte budget.
 * Converting is where a result's memory goes (every cell becomes a JS value; a 1 GB string is
 * copied and decoded), so each chunk's size is measured on DuckDB's own vectors first and an
 * oversized result is refused before it is converted. Streaming also means DuckDB stops producing
 * rows once reading stops, instead of materializing the whole result (a cross join) first.
 *
 * The measure is a lower bound of the chunk's size in the response JSON: one byte and a separator
 * per scalar cell, a string's UTF-8 bytes plus its quotes, two bytes per BLOB byte, nested values
 * summed over their children. So this check never refuses a result that the HTTP layer's exact
 * check (the same `result_bytes_max`) would accept; it only refuses earlier and cheaper.
 */
import { createRequire } from 'node:module';
import type * as Bindings from '@duckdb/node-bindings';
import {
  BLOB, DuckDBTypeId, LIST, STRUCT, UINTEGER, UTINYINT, VARCHAR,
  type DuckDBDataChunk, type DuckDBResult, type DuckDBType, type DuckDBValue,
} from '@duckdb/node-api';
import { LimitError, assert, type ServerError } from '../../util/errors.js';
import type { ByteBudget } from '../../util/budget.js';

/**
 * The native binding that @duckdb/node-api itself loaded: chunks and vectors of one copy of the
 * addon cannot be read through another, so it is resolved from node-api's location.
 */
const duckdb = createRequire(createRequire(import.meta.url).resolve('@duckdb/node-api'))('@duckdb/node-bindings') as typeof Bindings;

export interface ReadLimits {
  /** More rows than this fail with a `result_rows_max` error. */
  readonly rowsMax: number;
  readonly bytes: ByteBudget;
  /** The error the query was stopped with (time or memory), checked between chunks. */
  readonly stopped: () => ServerError | null;
}

/** Every row of `result`, converted chunk by chunk; throws as soon as a limit is passed. */
export async function readRowsBounded(result: DuckDBResult, limits: ReadLimits): Promise<DuckDBValue[][]> {
  const types = result.columnTypes();
  const rows: DuckDBValue[][] = [];
  for (;;) {
    const stop = limits.stopped();
    if (stop !== null) throw stop;
    const chunk = await result.fetchChunk();
    if (chunk === null || chunk.rowCount === 0) {
      // An interrupted stream ends like a finished one (an empty chunk, no error): only the stop's
      // reason tells them apart, and a truncated result must never pass for a complete one.
      const stopped = limits.stopped();
      if (stopped !== null) throw stopped;
      return rows;
    }
    if (rows.length + chunk.rowCount > limits.rowsMax) {
      throw new LimitError('SQL_EXECUTION_ERROR', 'result_rows_max',
        `Result has more than ${limits.rowsMax} rows (result_rows_max): add a LIMIT or a narrower WHERE`);
    }
    limits.bytes.charge(chunkJsonBytesMin(chunk, types, limits.bytes.remaining()));
    const before = rows.length;
    chunk.appendToRows(rows);
    assert(rows.length === before + chunk.rowCount, 'every row of the chunk converted');
  }
}

/**
 * A lower bound of the chunk's JSON size (see the file comment); stops counting once past
 * `stopAfter`, so a chunk holding a huge list is not walked to the end just to be refused.
 */
export function chunkJsonBytesMin(chunk: DuckDBDataChunk, types: readonly DuckDBType[], stopAfter: number): number {
  assert(types.length === chunk.columnCount, 'one type per column');
  const count = chunk.rowCount;
  // Brackets of each row.
  let total = 2 * count;
  for (let c = 0; c < types.length && total <= stopAfter; c++) {
    total += vectorBytes(duckdb.data_chunk_get_vector(chunk.chunk, c), types[c]!, count, stopAfter - total);
  }
  return total;
}

/** DuckDB's physical layout of VARIANT (a struct), as @duckdb/node-api reads it. */
const VARIANT_LAYOUT = STRUCT({
  keys: LIST(VARCHAR),
  children: LIST(STRUCT({ keys_index: UINTEGER, values_index: UINTEGER })),
  values: LIST(STRUCT({ type_id: UTINYINT, byte_offset: UINTEGER })),
  data: BLOB,
});

function vectorBytes(vector: Bindings.Vector, type: DuckDBType, count: number, stopAfter: number): number {
  if (count === 0) return 0;
  switch (type.typeId) {
    case DuckDBTypeId.VARCHAR: case DuckDBTypeId.BIT: case DuckDBTypeId.BIGNUM:
      return stringBytes(vector, count, 1, stopAfter);
    case DuckDBTypeId.BLOB: case DuckDBTypeId.GEOMETRY:
      return stringBytes(vector, count, 2, stopAfter);
    case DuckDBTypeId.LIST:
      return 2 * count + vectorBytes(duckdb.list_vector_get_child(vector), type.valueType, duckdb.list_vector_get_size(vector), stopAfter);
    case DuckDBTypeId.MAP: {
      const entries = duckdb.list_vector_get_child(vector);
      const size = duckdb.list_vector_get_size(vector);
      const keys = vectorBytes(duckdb.struct_vector_get_child(entries, 0), type.keyType, size, stopAfter);
      return 2 * count + keys + vectorBytes(duckdb.struct_vector_get_child(entries, 1), type.valueType, size, stopAfter - keys);
    }
    case DuckDBTypeId.ARRAY:
      return 2 * count + vectorBytes(duckdb.array_vector_get_child(vector), type.valueType, count * type.length, stopAfter);
    case DuckDBTypeId.STRUCT:
      return structBytes(vector, type.entryTypes, count, stopAfter);
    case DuckDBTypeId.UNION:
      // A union is a struct of its tag and one child per member.
      return structBytes(vector, [UTINYINT, ...type.memberTypes], count, stopAfter);
    case DuckDBTypeId.VARIANT:
      return structBytes(vector, VARIANT_LAYOUT.entryTypes, count, stopAfter);
    default:
      // Any scalar is at least one character and a separator in JSON.
      return 2 * count;
  }
}

function structBytes(vector: Bindings.Vector, entryTypes: readonly DuckDBType[], count: number, stopAfter: number): number {
  let total = 2 * count;
  for (let i = 0; i < entryTypes.length && total <= stopAfter; i++) {
    total += vectorBytes(duckdb.struct_vector_get_child(vector, i), entryTypes[i]!, count, stopAfter - total);
  }
  return total;
}

/** string_t cells (16 bytes each, the length in the first 4): their lengths, without copying the text. */
function stringBytes(vector: Bindings.Vector, count: number, bytesPerByte: number, stopAfter: number): number {
  const data = duckdb.vector_get_data(vector, count * 16);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const validity = duckdb.vector_get_validity(vector, Math.ceil(count / 64) * 8);
  let total = 0;
  for (let i = 0; i < count && total <= stopAfter; i++) {
    // A NULL cell's string_t is not defined; it is `null` (4 bytes) in JSON.
    const valid = validity === null || validity.length === 0 || ((validity[i >> 3]! >> (i & 7)) & 1) === 1;
    total += valid ? view.getUint32(i * 16, true) * bytesPerByte + 3 : 5;
  }
  return total;
}
