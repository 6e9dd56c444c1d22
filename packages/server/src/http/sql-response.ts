/**
 * Encodes a successful /v1/api/sql body as a list of Buffers rather than one string. The bytes are
 * exactly JSON.stringify(body) (clients see no difference), but rows are encoded a slice at a time,
 * so a large result never exists as one giant string next to its rows, and the body's size is
 * known, and checked against result_bytes_max, before the status line is written: an oversized
 * result is answered with an error envelope, never with a truncated 200.
 */
import { assert } from '../util/errors.js';
import { resultTooLarge } from '../util/budget.js';
import type { StatementResult } from '../exec/context.js';

/** Encoded text is cut into Buffers of about this size. */
const PIECE_CHARS = 64 * 1024;

export interface EncodedBody {
  /** UTF-8 Buffers, or one string for a small body: node:http then sends head and body as one string write. */
  readonly chunks: readonly (Buffer | string)[];
  readonly bytes: number;
}

/** `{"status":"success","results":[...],"took":…}`, refused once it passes `bytesMax` bytes. */
export function encodeSqlSuccess(results: readonly StatementResult[], took: number, bytesMax: number): EncodedBody {
  const out = new ChunkWriter(bytesMax);
  out.text('{"status":"success","results":[');
  results.forEach((result, i) => {
    if (i > 0) out.text(',');
    encodeResult(result, out);
  });
  out.text(`],"took":${JSON.stringify(took)}}`);
  return out.finish();
}

/** One result object, key by key in its own order (as JSON.stringify does), `rows` a slice at a time. */
function encodeResult(result: StatementResult, out: ChunkWriter): void {
  out.text('{');
  let first = true;
  for (const [key, value] of Object.entries(result)) {
    // JSON.stringify leaves out keys whose value is undefined.
    if (value === undefined) continue;
    out.text(`${first ? '' : ','}${JSON.stringify(key)}:`);
    first = false;
    if (key === 'rows' && Array.isArray(value)) encodeRows(value, out);
    else out.text(JSON.stringify(value));
  }
  out.text('}');
}

function encodeRows(rows: readonly unknown[], out: ChunkWriter): void {
  out.text('[');
  for (let i = 0; i < rows.length; i++) {
    const row = JSON.stringify(rows[i]);
    assert(typeof row === 'string', 'a row encodes to JSON');
    out.text(i === 0 ? row : ',' + row);
  }
  out.text(']');
}

/** Collects text into Buffers of about PIECE_CHARS and counts their bytes as it goes. */
class ChunkWriter {
  private readonly chunks: Buffer[] = [];
  private pending: string[] = [];
  private pendingChars = 0;
  private bytes = 0;

  constructor(private readonly bytesMax: number) {}

  text(s: string): void {
    this.pending.push(s);
    this.pendingChars += s.length;
    if (this.pendingChars >= PIECE_CHARS) this.flush();
  }

  finish(): EncodedBody {
    if (this.chunks.length === 0) {
      // Under one piece (the usual DML or small SELECT answer): left as text, no Buffer of its own.
      const text = this.pending.join('');
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > this.bytesMax) throw resultTooLarge(this.bytesMax);
      return { chunks: [text], bytes };
    }
    this.flush();
    return { chunks: this.chunks, bytes: this.bytes };
  }

  private flush(): void {
    if (this.pendingChars === 0) return;
    const chunk = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingChars = 0;
    this.bytes += chunk.length;
    if (this.bytes > this.bytesMax) throw resultTooLarge(this.bytesMax);
    this.chunks.push(chunk);
  }
}
