import type { SendBacklog } from './send-backlog.js';

/**
 * What the live layer has sent: messages and bytes written to WebSocket clients, and connections
 * closed as slow consumers with the messages refused for them. Plain numbers bumped where the writes
 * happen (one add per socket write, no allocation, no label lookup: the fan-out is a hot path,
 * decisions 0015/0020/0024); /metrics and system.stats read them when asked.
 */
export interface LiveTraffic {
  /** Messages written to client sockets (changes, initial-data batches, acks, errors, topic messages). */
  messages: number;
  /** Their payload bytes (without the WebSocket frame header). */
  bytes: number;
  /** Connections closed with SLOW_CONSUMER (behind for longer than the grace, or past the burst limits). */
  slowConsumers: number;
  /** Messages not sent because their connection was over its limits (the one that tripped them included). */
  droppedMessages: number;
  /** Unsent bytes all connections hold past live_buffered_bytes_max now (send-backlog.ts's shared account). */
  burstBytes: number;
  /** Times a connection went past live_buffered_bytes_max (each such stall, whether it caught up or was closed). */
  stalls: number;
  /** The connections behind now (send-backlog.ts). */
  readonly holders: Set<SendBacklog>;
}

export function newLiveTraffic(): LiveTraffic {
  return { messages: 0, bytes: 0, slowConsumers: 0, droppedMessages: 0, burstBytes: 0, stalls: 0, holders: new Set() };
}
