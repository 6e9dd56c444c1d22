/**
 * Rows produced in JS a data chunk at a time, read by SQL as `kalam_chunks(<id>)`: a DuckDB table
 * function. A flush's COPY reads its versions through it (decision 0018, "Later"), so they are not
 * appended into a temp table first (DuckDB storing each appended chunk, then scanning it back, cost
 * about a microsecond per row). DuckDB calls `fill` on the JS thread (the binding hands each call
 * over and waits), one chunk per call, from one scanning thread: rows come out in the order they
 * were filled, which the COPY keeps.
 *
 * Registered on the file engine's connections only, which run no user SQL.
 */
import {
  BIGINT, BLOB, BOOLEAN, DATE, DOUBLE, DuckDBTableFunction, DuckDBVarCharType, FLOAT, INTEGER, SMALLINT, TIME, TIMESTAMP, VARCHAR,
  type DuckDBConnection, type DuckDBDataChunk, type DuckDBType,
} from '@duckdb/node-api';
import { assert } from '../../util/errors.js';
import type { SourceColumn } from './duck-engine.js';

export interface ChunkSource {
  readonly columns: readonly SourceColumn[];
  /** Fills `chunk` with the next rows and sets its row count; a count of 0 ends the scan. */
  fill(chunk: DuckDBDataChunk): void;
}

const FUNCTION = 'kalam_chunks';
const sources = new Map<number, ChunkSource>();
let lastId = 0;
const registered = new WeakSet<DuckDBConnection>();

/** The DuckDB type of a column a ChunkWriter writes (duckType's, as a type object). */
function chunkType(c: SourceColumn): DuckDBType {
  switch (c.type) {
    case 'Boolean': return BOOLEAN;
    case 'SmallInt': return SMALLINT;
    case 'Int': return INTEGER;
    case 'BigInt': return BIGINT;
    case 'Float': return FLOAT;
    case 'Double': return DOUBLE;
    case 'Text': return VARCHAR;
    case 'Json': return DuckDBVarCharType.create('JSON');
    case 'Timestamp': return TIMESTAMP;
    case 'Date': return DATE;
    case 'Time': return TIME;
    case 'Bytes': return BLOB;
    case 'Uuid': case 'Decimal': throw new Error(`no chunk type for ${c.type}`);
  }
}

function register(conn: DuckDBConnection): void {
  const fn = DuckDBTableFunction.create({
    name: FUNCTION,
    parameterTypes: [BIGINT],
    bindFunction: (bind) => {
      const id = Number(bind.getParameter(0) as bigint);
      const source = sources.get(id);
      if (source === undefined) {
        bind.setError(`${FUNCTION}: no source ${id}`);
        return;
      }
      for (const c of source.columns) bind.addResultColumn(c.name, chunkType(c));
      bind.setBindData({ id });
    },
    initFunction: () => undefined,
    mainFunction: (info, chunk) => {
      const { id } = info.bindData as { id: number };
      const source = sources.get(id);
      if (source === undefined) {
        info.setError(`${FUNCTION}: source ${id} is gone`);
        return;
      }
      // A throw fails the query with its message (the binding reports it to DuckDB).
      source.fill(chunk);
    },
  });
  conn.registerTableFunction(fn);
}

/**
 * Runs `run` with `source` readable as the relation it is given (`kalam_chunks(<id>)`) on `conn`.
 * The function is registered on a connection at its first use.
 */
export async function withChunkSource<T>(conn: DuckDBConnection, source: ChunkSource, run: (relation: string) => Promise<T>): Promise<T> {
  if (!registered.has(conn)) {
    register(conn);
    registered.add(conn);
  }
  const id = ++lastId;
  assert(!sources.has(id), 'chunk source ids are unique');
  sources.set(id, source);
  try {
    return await run(`${FUNCTION}(${id})`);
  } finally {
    sources.delete(id);
  }
}
