/** Reads a request body up to a byte limit; past it the request fails with PAYLOAD_TOO_LARGE. */
import type { IncomingMessage } from 'node:http';
import { ServerError, type ErrorCode } from '../util/errors.js';

export async function readBody(req: IncomingMessage, bytesMax: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > bytesMax) throw new ServerError('PAYLOAD_TOO_LARGE', `Request body is larger than ${bytesMax} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > bytesMax) throw new ServerError('PAYLOAD_TOO_LARGE', `Request body is larger than ${bytesMax} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Parses a JSON object body. `code` is the error code a malformed body gets on this route: the SQL
 * route answers with a code from the protocol's closed list (INVALID_SQL), others with BAD_REQUEST.
 */
export function parseJsonObject(body: Buffer, code: ErrorCode = 'BAD_REQUEST'): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new ServerError(code, `Malformed JSON body: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ServerError(code, 'Request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}
