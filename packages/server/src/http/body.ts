/**
 * Reads a request body up to a byte limit and within a time limit.
 *
 * Why the care: a server that stops reading and closes the socket while the client is still sending
 * makes the kernel answer with a TCP reset, and the client then loses the response it was sent (it
 * sees "connection reset" instead of the 413). So a body over the limit is read to its end and
 * thrown away, and only then refused; the refusal closes the connection (the caller sends
 * `connection: close` with every 408 and 413). Discarding is bounded by the same time limit and by
 * discardBytesMax (and a client that stops sending for the body timeout), past which the 413 goes out at once (a client sending gigabytes may then see
 * the reset; it was never going to be served).
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { ServerError, type ErrorCode } from '../util/errors.js';
import { parseJson } from '../util/json.js';

export interface BodyLimits {
  /** Largest body accepted, in bytes. */
  readonly bytesMax: number;
  /** Time the whole body may take to arrive, from when the handler asks for it. */
  readonly timeoutMs: number;
}

/** Most bytes read and thrown away for a refused body before it is refused anyway. */
export function discardBytesMax(bytesMax: number): number {
  return Math.max(64 * 1024 * 1024, 8 * bytesMax);
}

export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const { bytesMax, timeoutMs } = limits;
  const tooLarge = (): ServerError => new ServerError('PAYLOAD_TOO_LARGE', `Request body is larger than ${bytesMax} bytes`);
  const declared = Number(req.headers['content-length'] ?? '0');
  const discardMax = discardBytesMax(bytesMax);
  if (declared > discardMax) return Promise.reject(tooLarge());
  // The common small request arrived whole with its headers (Node parsed it before the handler ran):
  // take the buffered body at once, without listeners, a timer and the stream's flowing mode.
  if (req.complete && declared <= bytesMax && req.readableLength <= bytesMax && !req.readableEnded) {
    const body = req.read() as Buffer | null;
    return Promise.resolve(body ?? Buffer.alloc(0));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Over the limit: keep reading to the end, keep nothing.
    let discarding = declared > bytesMax;
    const finish = (error: ServerError | null, body?: Buffer): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      chunks.length = 0;
      if (error !== null) reject(error);
      else resolve(body!);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > bytesMax) discarding = true;
      if (discarding) {
        chunks.length = 0;
        if (size > discardMax) finish(tooLarge());
        // A client still sending keeps the discard going (a large honest upload can take longer than
        // the body timeout); a stalled one is refused a body timeout later. Node's requestTimeout
        // bounds the whole thing.
        else timer.refresh();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (discarding) finish(tooLarge());
      else finish(null, Buffer.concat(chunks, size));
    };
    // The client went away mid-body; nobody will read the answer, but the handler must still end.
    const onGone = (): void => finish(new ServerError('BAD_REQUEST', 'The request body was not received completely'));
    const timer = setTimeout(() => {
      finish(discarding ? tooLarge() : new ServerError('REQUEST_TIMEOUT', `The request body did not arrive within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

/**
 * Parses a JSON object body. `code` is the error code a malformed body gets on this route: the SQL
 * route answers as upstream does (INVALID_INPUT, `Invalid JSON payload: ...`), others with BAD_REQUEST.
 */
export function parseJsonObject(body: Buffer, code: ErrorCode = 'BAD_REQUEST'): Record<string, unknown> {
  // JSON is UTF-8: invalid bytes would otherwise turn into U+FFFD silently and be stored.
  if (!isUtf8(body)) throw new ServerError(code, 'Invalid JSON payload: the body is not valid UTF-8');
  let parsed: unknown;
  try {
    // Exact 64-bit integers: upstream's Rust clients send i64 params as JSON numbers.
    parsed = parseJson(body.toString('utf8'));
  } catch (error) {
    throw new ServerError(code, `Invalid JSON payload: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ServerError(code, 'Invalid JSON payload: the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}
