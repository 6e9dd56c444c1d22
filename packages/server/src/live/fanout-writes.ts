/**
 * The socket writes of one fan-out (a commit group's or a STREAM statement's changes going to every
 * subscriber) leave together: a connection's first frame corks its socket, and every socket corked
 * in the fan-out is uncorked when it ends, so each connection gets one write (one `writev`) however
 * many of its subscriptions the fan-out reached. Everything written to a corked socket, ws's own
 * frames included, keeps its order.
 */
import type { Socket } from 'node:net';

/** Sockets corked in the fan-out running now. */
const held: Socket[] = [];
let running = false;
/** Numbers the fan-outs, so a connection knows whether its socket is already held in this one. */
let current = 0;

/** Runs one fan-out; the sockets it corks are uncorked when it returns (or throws). Nested calls join the outer one. */
export function fanOut(run: () => void): void {
  if (running) return run();
  running = true;
  current++;
  try {
    run();
  } finally {
    running = false;
    for (const socket of held) socket.uncork();
    held.length = 0;
  }
}

/** The fan-out running now, or -1 outside of one. */
export function currentFanOut(): number {
  return running ? current : -1;
}

/** Corks `socket` until the running fan-out ends; call once per socket and fan-out. */
export function holdUntilFanOutEnds(socket: Socket): void {
  socket.cork();
  held.push(socket);
}
