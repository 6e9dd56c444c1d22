/**
 * Fills DuckDB data chunks straight from encoded row versions (row-codec.ts: a msgpack array
 * `[schemaVersion, state, ...cells]`) and appends each full chunk with one call. The flush used the
 * appender a value at a time: seven native calls per row of the benchmark's table plus a decoded JS
 * array and a JS string per text cell (decision 0018, "Later"). Here fixed-width cells go into typed
 * arrays copied into their vector once per chunk, text and bytes are handed over as the stored bytes
 * (one native call per cell, no JS string), and nothing is allocated per row but those views.
 *
 * A version not in the plain form (an older schema version, a cell encoded unlike its column, text
 * that is not valid UTF-8 ...) is refused by `encoded` and written from its decoded values by
 * `values`, which converts them as the appender did.
 */
import { createRequire } from 'node:module';
import type * as Bindings from '@duckdb/node-bindings';
import type { DuckDBDataChunk } from '@duckdb/node-api';
import { assert } from '../../util/errors.js';
import type { ColumnType, StoredValue } from '../../catalog/types.js';
import type { SourceColumn } from './duck-engine.js';

/** The native binding @duckdb/node-api loaded (its chunks and vectors cannot go through another copy). */
const duckdb = createRequire(createRequire(import.meta.url).resolve('@duckdb/node-api'))('@duckdb/node-bindings') as typeof Bindings;

const ROWS: number = duckdb.vector_size();

const enum Kind { Bool, I16, I32, I64, F32, F64, Text, Blob }
/** Bytes per row in a vector: text and bytes are DuckDB's 16-byte string_t (duckdb.h's duckdb_string_t). */
const WIDTH = [1, 2, 4, 8, 4, 8, 16, 16] as const;
/** A string_t holds up to 12 bytes inline; longer ones point to memory the vector owns. */
const INLINE_MAX = 12;

/** How a column type is written into a chunk; null when it is not (UUID and DECIMAL: use the appender). */
function kindOf(type: ColumnType): Kind | null {
  switch (type) {
    case 'Boolean': return Kind.Bool;
    case 'SmallInt': return Kind.I16;
    case 'Int': case 'Date': return Kind.I32;
    case 'BigInt': case 'Timestamp': case 'Time': return Kind.I64;
    case 'Float': return Kind.F32;
    case 'Double': return Kind.F64;
    case 'Text': case 'Json': return Kind.Text;
    case 'Bytes': return Kind.Blob;
    case 'Uuid': case 'Decimal': return null;
  }
}

/** True when every column before `_seq`, `_deleted` can be written by a ChunkWriter. */
export function chunkWritable(columns: readonly SourceColumn[]): boolean {
  return columns.slice(0, -2).every((c) => kindOf(c.type) !== null);
}

class Column {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly view: DataView;
  /** Validity bits of the chunk's rows (1: not null), as DuckDB's uint64 words in little-endian. */
  readonly validity: Uint32Array<ArrayBuffer> = new Uint32Array(ROWS / 32);
  hasNull = false;
  /** The vector `flush` writes into (set by emit). */
  vector!: Bindings.Vector;
  /** Text and bytes longer than INLINE_MAX: the chunk's strings back to back, and where each row's starts (-1: inline). */
  private heap = new Uint8Array(0);
  private heapAt = 0;
  private readonly heapOffset: Int32Array;

  constructor(readonly kind: Kind) {
    this.bytes = new Uint8Array(ROWS * WIDTH[kind]);
    this.view = new DataView(this.bytes.buffer);
    this.validity.fill(0xffffffff);
    this.heapOffset = new Int32Array(kind === Kind.Text || kind === Kind.Blob ? ROWS : 0);
  }

  setNull(row: number): void {
    this.validity[row >>> 5]! &= ~(1 << (row & 31));
    this.hasNull = true;
    if (this.heapOffset.length > 0) {
      // An empty inline string_t: DuckDB may copy a null row's slot, never a stale pointer.
      this.bytes.fill(0, row * 16, row * 16 + 16);
      this.heapOffset[row] = -1;
    }
  }

  setValid(row: number): void {
    if (this.hasNull) this.validity[row >>> 5]! |= 1 << (row & 31);
  }

  /** Text or bytes src[from, from + length) as row `row`'s string_t (a long one's pointer is set by `flush`). */
  setString(row: number, src: Uint8Array, from: number, length: number): void {
    const o = row * 16;
    const d = this.bytes;
    this.view.setUint32(o, length, true);
    if (length <= INLINE_MAX) {
      for (let k = 0; k < length; k++) d[o + 4 + k] = src[from + k]!;
      d.fill(0, o + 4 + length, o + 16);
      this.heapOffset[row] = -1;
    } else {
      for (let k = 0; k < 4; k++) d[o + 4 + k] = src[from + k]!;
      if (this.heapAt + length > this.heap.length) {
        const grown = new Uint8Array(Math.max(64 * 1024, 2 * (this.heapAt + length)));
        grown.set(this.heap.subarray(0, this.heapAt));
        this.heap = grown;
      }
      const h = this.heap;
      const at = this.heapAt;
      if (length <= 64) for (let k = 0; k < length; k++) h[at + k] = src[from + k]!;
      else h.set(src.subarray(from, from + length), at);
      this.heapOffset[row] = at;
      this.heapAt = at + length;
    }
    this.setValid(row);
  }

  /** Copies the chunk's cells and validity into the vector. */
  flush(rows: number): void {
    if (this.heapAt > 0) this.placeHeap(rows);
    duckdb.copy_data_to_vector(this.vector, 0, this.bytes.buffer, 0, rows * WIDTH[this.kind]);
    if (this.hasNull) {
      duckdb.vector_ensure_validity_writable(this.vector);
      duckdb.copy_data_to_vector_validity(this.vector, 0, this.validity.buffer, 0, Math.ceil(rows / 64) * 8);
      this.validity.fill(0xffffffff);
      this.hasNull = false;
    }
  }

  /**
   * One native call per chunk instead of one per long string: the chunk's long strings are handed to
   * DuckDB as ONE string (copied into the vector's own string memory, which lives as long as the
   * vector), its address read back from the string_t DuckDB wrote, and each long row's string_t
   * pointed at its part of it. The row used for the copy gets its own string_t back in `flush`.
   */
  private placeHeap(rows: number): void {
    duckdb.vector_assign_string_element_len(this.vector, 0, this.heap.subarray(0, this.heapAt));
    const slot = duckdb.vector_get_data(this.vector, 16);
    const back = new DataView(slot.buffer, slot.byteOffset, 16);
    const baseLo = back.getUint32(8, true);
    const baseHi = back.getUint32(12, true);
    // Valid UTF-8 pieces make valid UTF-8 (DuckDB would store invalid text as NULL and write no pointer).
    if (back.getUint32(0, true) !== this.heapAt || (baseLo === 0 && baseHi === 0)) throw new Error('DuckDB refused a flush chunk\'s strings');
    for (let r = 0; r < rows; r++) {
      const offset = this.heapOffset[r]!;
      if (offset < 0) continue;
      const lo = baseLo + offset;
      this.view.setUint32(r * 16 + 8, lo >>> 0, true);
      this.view.setUint32(r * 16 + 12, lo > 0xffffffff ? baseHi + 1 : baseHi, true);
    }
    this.heapAt = 0;
  }
}

/** Where the last `readNumber` stopped (-1: the cell is not a msgpack number a JS number holds). */
let numberEnd = 0;

/** The msgpack number at `at` (not a 64-bit integer: those are bigints and read apart). */
function readNumber(b: Uint8Array, dv: DataView, at: number): number {
  const t = b[at]!;
  if (t <= 0x7f) { numberEnd = at + 1; return t; }
  if (t >= 0xe0) { numberEnd = at + 1; return t - 256; }
  switch (t) {
    case 0xcc: numberEnd = at + 2; return b[at + 1]!;
    case 0xcd: numberEnd = at + 3; return dv.getUint16(at + 1);
    case 0xce: numberEnd = at + 5; return dv.getUint32(at + 1);
    case 0xd0: numberEnd = at + 2; return dv.getInt8(at + 1);
    case 0xd1: numberEnd = at + 3; return dv.getInt16(at + 1);
    case 0xd2: numberEnd = at + 5; return dv.getInt32(at + 1);
    case 0xca: numberEnd = at + 5; return dv.getFloat32(at + 1);
    case 0xcb: numberEnd = at + 9; return dv.getFloat64(at + 1);
    default: numberEnd = -1; return 0;
  }
}

/** True when b[start, end) is well-formed UTF-8 (what DuckDB accepts; anything else would be stored as NULL). */
function validUtf8(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; } else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; } else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; } else return false;
    if (i + n >= end) return false;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k]!;
      if ((cc & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

/**
 * Rows of a table whose columns are a version's cells then `_seq` (BIGINT) and `_deleted` (BOOLEAN),
 * staged up to ROWS at a time and then moved into a data chunk with `emit`.
 */
export class ChunkWriter {
  static readonly ROWS = ROWS;
  private readonly columns: Column[];
  private readonly cells: number;
  private readonly seqs: DataView;
  private readonly deleted: Uint8Array;
  private row = 0;

  /** `schemaVersion`: the only schema version `encoded` accepts (the table's current one). */
  constructor(columns: readonly SourceColumn[], private readonly schemaVersion: number) {
    assert(columns.at(-2)?.name === '_seq' && columns.at(-1)?.name === '_deleted', 'chunk columns end with _seq, _deleted');
    assert(chunkWritable(columns), 'every column has a chunk kind');
    this.cells = columns.length - 2;
    this.columns = columns.map((c, i) => new Column(i === this.cells ? Kind.I64 : i === this.cells + 1 ? Kind.Bool : kindOf(c.type)!));
    this.seqs = this.columns[this.cells]!.view;
    this.deleted = this.columns[this.cells + 1]!.bytes;
  }

  /** Rows staged for the next chunk. */
  get rows(): number {
    return this.row;
  }

  /**
   * Moves the rows written so far into `chunk` (its columns those of the writer) and sets its row
   * count; the next row starts a new chunk. Rows are staged in JS until then, so they can be written
   * while DuckDB still works on the previous chunk.
   */
  emit(chunk: DuckDBDataChunk): void {
    assert(chunk.columnCount === this.columns.length, 'chunk columns match the writer');
    for (let i = 0; i < this.columns.length; i++) {
      const col = this.columns[i]!;
      col.vector = duckdb.data_chunk_get_vector(chunk.chunk, i);
      col.flush(this.row);
    }
    chunk.rowCount = this.row;
    this.row = 0;
  }

  /**
   * Writes the encoded version b[start, end) as the next row, with its `_seq` (unsigned 32-bit halves); false (and nothing
   * written) when it is not a plain version of the current schema whose cells match their columns.
   */
  encoded(b: Uint8Array, dv: DataView, start: number, end: number, seqHi: number, seqLo: number): boolean {
    let at = start;
    const h = b[at++]!;
    let n: number;
    if (h >= 0x90 && h <= 0x9f) n = h & 0x0f;
    else if (h === 0xdc) { n = dv.getUint16(at); at += 2; } else return false;
    if (n !== this.cells + 2) return false;
    const sv = readNumber(b, dv, at);
    if (numberEnd < 0 || sv !== this.schemaVersion) return false;
    at = numberEnd;
    const state = b[at++];
    if (state !== 0 && state !== 1) return false;
    const row = this.row;
    for (let c = 0; c < this.cells; c++) {
      at = this.cell(this.columns[c]!, row, b, dv, at);
      if (at < 0) return false;
    }
    if (at !== end) return false;
    this.seqs.setUint32(row * 8, seqLo, true);
    this.seqs.setUint32(row * 8 + 4, seqHi, true);
    this.deleted[row] = state;
    this.endRow();
    return true;
  }

  /** Writes one msgpack cell at `at` into `col` at `row`; returns where it ends, or -1. */
  private cell(col: Column, row: number, b: Uint8Array, dv: DataView, at: number): number {
    const t = b[at]!;
    if (t === 0xc0) {
      col.setNull(row);
      return at + 1;
    }
    switch (col.kind) {
      case Kind.Bool:
        if (t !== 0xc2 && t !== 0xc3) return -1;
        col.bytes[row] = t - 0xc2;
        col.setValid(row);
        return at + 1;
      case Kind.I16: case Kind.I32: {
        const v = readNumber(b, dv, at);
        if (numberEnd < 0 || !Number.isInteger(v)) return -1;
        if (col.kind === Kind.I16) {
          if (v < -0x8000 || v > 0x7fff) return -1;
          col.view.setInt16(row * 2, v, true);
        } else {
          if (v < -0x80000000 || v > 0x7fffffff) return -1;
          col.view.setInt32(row * 4, v, true);
        }
        col.setValid(row);
        return numberEnd;
      }
      case Kind.I64: {
        if (t === 0xd3 || (t === 0xcf && b[at + 1]! < 0x80)) {
          // Big-endian int64 to the vector's little-endian slot, byte by byte (no bigint).
          const o = row * 8;
          for (let k = 0; k < 8; k++) col.bytes[o + k] = b[at + 8 - k]!;
          col.setValid(row);
          return at + 9;
        }
        const v = readNumber(b, dv, at);
        if (numberEnd < 0 || !Number.isInteger(v) || Math.abs(v) > Number.MAX_SAFE_INTEGER) return -1;
        const hi = Math.floor(v / 4294967296);
        col.view.setUint32(row * 8, v - hi * 4294967296, true);
        col.view.setInt32(row * 8 + 4, hi, true);
        col.setValid(row);
        return numberEnd;
      }
      case Kind.F32: case Kind.F64: {
        const v = readNumber(b, dv, at);
        if (numberEnd < 0) return -1;
        if (col.kind === Kind.F32) col.view.setFloat32(row * 4, v, true);
        else col.view.setFloat64(row * 8, v, true);
        col.setValid(row);
        return numberEnd;
      }
      case Kind.Text: case Kind.Blob: {
        let length: number;
        let from: number;
        if (col.kind === Kind.Text) {
          if (t >= 0xa0 && t <= 0xbf) { length = t & 0x1f; from = at + 1; }
          else if (t === 0xd9) { length = b[at + 1]!; from = at + 2; }
          else if (t === 0xda) { length = dv.getUint16(at + 1); from = at + 3; }
          else if (t === 0xdb) { length = dv.getUint32(at + 1); from = at + 5; }
          else return -1;
          if (from + length > b.length || !validUtf8(b, from, from + length)) return -1;
        } else {
          if (t === 0xc4) { length = b[at + 1]!; from = at + 2; }
          else if (t === 0xc5) { length = dv.getUint16(at + 1); from = at + 3; }
          else if (t === 0xc6) { length = dv.getUint32(at + 1); from = at + 5; }
          else return -1;
          if (from + length > b.length) return -1;
        }
        col.setString(row, b, from, length);
        return from + length;
      }
    }
  }

  /** Writes one decoded version (cells in the table's current schema) as the next row. */
  values(values: readonly StoredValue[], seq: bigint, deleted: boolean): void {
    assert(values.length === this.cells, 'version width matches the columns before _seq, _deleted');
    const row = this.row;
    for (let c = 0; c < this.cells; c++) {
      const col = this.columns[c]!;
      const v = values[c];
      if (v === null || v === undefined) {
        col.setNull(row);
        continue;
      }
      switch (col.kind) {
        case Kind.Bool: col.bytes[row] = v === true ? 1 : 0; break;
        case Kind.I16: col.view.setInt16(row * 2, v as number, true); break;
        case Kind.I32: col.view.setInt32(row * 4, v as number, true); break;
        // BIGINT cells are bigints; TIMESTAMP and TIME microseconds are numbers (BigInt() refuses a fraction, as the appender's path did).
        case Kind.I64: col.view.setBigInt64(row * 8, typeof v === 'bigint' ? v : BigInt(v as number), true); break;
        case Kind.F32: col.view.setFloat32(row * 4, v as number, true); break;
        case Kind.F64: col.view.setFloat64(row * 8, v as number, true); break;
        // UTF-8 as N-API converts a JS string for the appender (a lone surrogate becomes U+FFFD).
        case Kind.Text: {
          const utf8 = Buffer.from(v as string, 'utf8');
          col.setString(row, utf8, 0, utf8.length);
          continue;
        }
        case Kind.Blob: col.setString(row, v as Uint8Array, 0, (v as Uint8Array).length); continue;
      }
      col.setValid(row);
    }
    this.seqs.setBigInt64(row * 8, seq, true);
    this.deleted[row] = deleted ? 1 : 0;
    this.endRow();
  }

  private endRow(): void {
    this.row++;
  }
}
