/**
 * The status line and header block of a lean-path response, byte for byte what node:http writes for
 * the same `writeHead(status, flatList)`: our fields as given, then `Date`, then `Connection` (and
 * `Keep-Alive: timeout=N`) unless our fields carry a `connection` of their own.
 */
import { STATUS_CODES } from 'node:http';

let dateSecond = -1;
let dateText = '';

/** Node's own cache: one toUTCString per second. */
function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

export interface HeadOptions {
  /** The request allows the connection to stay open (llhttp's shouldKeepAlive) and we mean to keep it. */
  readonly keepAlive: boolean;
  /** server.keepAliveTimeout, in ms (0: no Keep-Alive field). */
  readonly keepAliveTimeoutMs: number;
}

/** The head, and whether the connection closes after this response. */
export function responseHead(status: number, fields: readonly string[], options: HeadOptions): { head: string; close: boolean } {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
  let connection: string | null = null;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.length === 10 && name.toLowerCase() === 'connection') connection = value;
    head += `${name}: ${value}\r\n`;
  }
  head += `Date: ${utcDate()}\r\n`;
  let close: boolean;
  if (connection !== null) {
    close = !options.keepAlive || /(?:^|\W)close(?:$|\W)/i.test(connection);
  } else if (options.keepAlive) {
    close = false;
    head += 'Connection: keep-alive\r\n';
    if (options.keepAliveTimeoutMs > 0) head += `Keep-Alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n`;
  } else {
    close = true;
    head += 'Connection: close\r\n';
  }
  return { head: head + '\r\n', close };
}
