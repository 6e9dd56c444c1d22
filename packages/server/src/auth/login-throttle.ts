/**
 * Failed-login throttling, refused with RATE_LIMIT_EXCEEDED (429) until the window passes, whether
 * or not the password would have been right:
 * - 5 failures within a minute for one user name from one client address (brute force);
 * - 5 failures within a minute from one client address across names (spraying); loopback clients
 *   are exempt from this rule (local tools; behind a reverse proxy, throttle there);
 * - 100 failures within a minute for one user name from any addresses (a distributed brute force).
 * A client address is an IPv4 address or an IPv6 prefix, a /64 by default (util/client-address.ts): an
 * IPv6 client could otherwise take a fresh address from its /64 for every try. A name alone is not locked after 5: anyone could then lock any account, root included, with five
 * wrong passwords a minute (an attack review). Bounded: at most 100,000 tracked keys.
 */
import { ServerError } from '../util/errors.js';
import { clientKey } from '../util/client-address.js';
import { KeyedSemaphore } from '../util/mutex.js';

export const LOGIN_FAILURES_MAX = 5;
/** Failures for one user name from all addresses together. */
export const LOGIN_FAILURES_PER_USER_MAX = 100;
export const LOGIN_WINDOW_MS = 60_000;
const KEYS_MAX = 100_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly byName = new KeyedSemaphore(1);

  constructor(private readonly now: () => number = Date.now, private readonly ipv6PrefixBits = 64) {}

  /** Throws RATE_LIMIT_EXCEEDED when the user or the address failed too often recently. */
  check(userId: string, clientAddress: string): void {
    const address = clientKey(clientAddress, this.ipv6PrefixBits);
    const byAddress = isLoopback(clientAddress) ? 0 : this.recent(`a:${address}`);
    if (this.recent(`p:${userId}\u0000${address}`) >= LOGIN_FAILURES_MAX || byAddress >= LOGIN_FAILURES_MAX
      || this.recent(`u:${userId}`) >= LOGIN_FAILURES_PER_USER_MAX) {
      throw new ServerError('RATE_LIMIT_EXCEEDED', `Too many failed logins: try again in ${LOGIN_WINDOW_MS / 1000} seconds`);
    }
  }


  /**
   * One password check for `userId`: refused as `check` refuses, else `verify` runs, and a wrong
   * password is counted before the next check of the same name starts. Checks of one name run one at
   * a time: guesses sent in parallel, each waiting for its argon2 hash, all passed `check` before any
   * had failed (a review: 30 parallel guesses, no 429). Right passwords of one name wait their turn too;
   * none is refused for it.
   */
  async verify(userId: string, clientAddress: string, verify: () => Promise<boolean>): Promise<boolean> {
    return this.byName.run(userId, async () => {
      this.check(userId, clientAddress);
      const ok = await verify();
      if (ok) this.succeeded(userId, clientAddress);
      else this.failed(userId, clientAddress);
      return ok;
    });
  }

  failed(userId: string, clientAddress: string): void {
    const address = clientKey(clientAddress, this.ipv6PrefixBits);
    if (this.failures.size >= KEYS_MAX) this.failures.clear();
    for (const key of [`p:${userId}\u0000${address}`, `u:${userId}`, `a:${address}`]) {
      const list = this.failures.get(key) ?? [];
      list.push(this.now());
      this.failures.set(key, list);
    }
  }

  succeeded(userId: string, clientAddress: string): void {
    this.failures.delete(`p:${userId}\u0000${clientKey(clientAddress, this.ipv6PrefixBits)}`);
  }

  private recent(key: string): number {
    const list = this.failures.get(key);
    if (list === undefined) return 0;
    const cutoff = this.now() - LOGIN_WINDOW_MS;
    while (list.length > 0 && list[0]! < cutoff) list.shift();
    if (list.length === 0) this.failures.delete(key);
    return list.length;
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.') || address === 'unknown';
}
