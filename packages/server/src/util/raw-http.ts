/**
 * An HTTP/1.1 answer as text, for sockets node:http hands over without a response object (a client
 * error, CONNECT, a WebSocket upgrade that is refused): the status line, `Connection: close`, a JSON
 * body, and `headers` (each line ending in CRLF) if any.
 */
export function rawJsonAnswer(status: string, body: unknown, headers = ''): string {
  const text = JSON.stringify(body);
  return `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}
