/**
 * What per-client limits count by: one client is one IPv4 address, or one IPv6 /64. An IPv6 host is
 * normally given a whole /64 and can pick a fresh address from it for every connection, so counting
 * by the full address would cap nothing. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, how a
 * dual-stack listener reports IPv4 clients) count as the IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net';

export function clientKey(address: string): string {
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7);
  if (!isIPv6(address)) return address;
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  const [head = '', tail] = bare.split('::');
  const hextets = head === '' ? [] : head.split(':');
  // With '::' the missing groups are zeros; only the first four matter, so the tail is needed only when the head is short.
  if (tail !== undefined && hextets.length < 4) {
    const tailGroups = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 tail (`::1.2.3.4`) is two groups.
    const tailCount = tailGroups.length + (tailGroups.length > 0 && tailGroups[tailGroups.length - 1]!.includes('.') ? 1 : 0);
    const zeros = 8 - hextets.length - tailCount;
    for (let i = 0; i < zeros; i++) hextets.push('0');
    hextets.push(...tailGroups);
  }
  return `${hextets.slice(0, 4).map((h) => (h.includes('.') ? h : Number.parseInt(h, 16).toString(16))).join(':')}::/64`;
}
