/**
 * Caps on the TCP connections (HTTP and WebSocket) the server holds open. In all: at most the
 * process's open-file limit less a reserve, because RocksDB, DuckDB and the Parquet segments need
 * descriptors too (an attack review held every descriptor with idle keep-alive connections, and the
 * server answered nobody, its own clients included). Per client (an IPv4 address or an IPv6 prefix,
 * util/client-address.ts), so that one client cannot take them all. A connection over either cap is closed at once, before anything is read from it.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/config.js';
import type { Logger } from '../util/log.js';
import { clientKey } from '../util/client-address.js';

/** Descriptors left for files, the WAL, DuckDB's spill files and outgoing S3 connections (at most half the limit). */
const DESCRIPTORS_RESERVED = 2048;

/** Refusals are logged at most this often (a flood would otherwise be a flood of log lines). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export function limitConnections(server: Server, config: Config, log: Logger): void {
  const fileLimit = openFileLimit();
  // Half of a small limit stays for files (a limit of 1,024 leaves 512 connections, not 64).
  const max = fileLimit === null ? config.httpConnectionsMax
    : Math.min(config.httpConnectionsMax, fileLimit - Math.min(DESCRIPTORS_RESERVED, Math.floor(fileLimit / 2)));
  if (max < config.httpConnectionsMax) {
    log.info('http_connections_max lowered to the open-file limit less a reserve (raise the limit with ulimit -n to allow more)', { http_connections_max: config.httpConnectionsMax, open_file_limit: fileLimit, effective: max });
  }
  server.maxConnections = max;
  const perAddress = new Map<string, number>();
  let refused = 0;
  let loggedAt = 0;
  server.on('connection', (socket: Socket) => {
    const address = clientKey(socket.remoteAddress ?? '', config.clientIpv6PrefixBits);
    const open = (perAddress.get(address) ?? 0) + 1;
    if (open > config.httpConnectionsPerAddressMax) {
      socket.destroy();
      refused++;
      const now = Date.now();
      if (now - loggedAt >= REFUSAL_LOG_INTERVAL_MS) {
        log.warn('connections refused: too many from one address (http_connections_per_address_max)', { address, refused, limit: config.httpConnectionsPerAddressMax });
        loggedAt = now;
        refused = 0;
      }
      return;
    }
    perAddress.set(address, open);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left === 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
}

/** The soft limit on open files (Linux: /proc/self/limits), or null where it cannot be read. */
function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || !/^\d+$/.test(soft) ? null : Number(soft);
  } catch {
    return null;
  }
}
