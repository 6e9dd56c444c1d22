/**
 * One live message encoded once for every socket that gets it. A change fans out to many
 * subscriptions with the same bytes (same subscription id and columns); the WebSocket frame around
 * them is built with them, once, and written as is to each socket: no per-socket header, options
 * object or second write (ws's `send` makes all three on every call).
 */
export class LiveFrame {
  /** The whole frame a server sends for this text message. */
  readonly wire: Buffer;
  /** The message itself (a view into `wire`). */
  readonly payload: Buffer;

  private constructor(wire: Buffer, header: number) {
    this.wire = wire;
    this.payload = wire.subarray(header);
  }

  static of(text: string): LiveFrame {
    const n = Buffer.byteLength(text);
    const [out, header] = frameFor(n);
    out.write(text, header, 'utf8');
    return new LiveFrame(out, header);
  }

  /** A message made of pre-encoded parts (e.g. rows encoded once, wrapped per subscription id). */
  static concat(parts: readonly Buffer[]): LiveFrame {
    let n = 0;
    for (const part of parts) n += part.length;
    const [out, header] = frameFor(n);
    let at = header;
    for (const part of parts) at += part.copy(out, at);
    return new LiveFrame(out, header);
  }

  get byteLength(): number {
    return this.payload.length;
  }
}

/**
 * A buffer for a text frame of `n` payload bytes with its header written (RFC 6455 §5.2): FIN and
 * the text opcode, no mask (server to client), the length in 7, 16 or 64 bits; and the header's size.
 */
function frameFor(n: number): [Buffer, number] {
  const header = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(header + n);
  out[0] = 0x81;
  if (n < 126) {
    out[1] = n;
  } else if (n < 0x10000) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  return [out, header];
}
