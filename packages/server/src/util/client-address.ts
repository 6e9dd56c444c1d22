/**
 * What per-client limits count by: one client is one IPv4 address, or the first `ipv6PrefixBits` bits
 * of an IPv6 address (client_ipv6_prefix_bits, 64 by default). An IPv6 host is normally given a whole
 * /64 and can pick a fresh address from it for every connection, so counting by the full address would
 * cap nothing; where many hosts share one /64 (a cloud subnet), 128 counts each address. IPv4-mapped
 * IPv6 addresses (`::ffff:10.0.0.1`, how a dual-stack listener reports IPv4 clients) count as IPv4.
 */
import { isIPv4, isIPv6 } from 'node:net';

export function clientKey(address: string, ipv6PrefixBits = 64): string {
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7);
  if (!isIPv6(address)) return address;
  const groups = ipv6Groups(address);
  const out: string[] = [];
  for (let i = 0, bits = ipv6PrefixBits; i < 8 && bits > 0; i++, bits -= 16) {
    // A group cut by the prefix keeps its leading bits only.
    out.push((bits >= 16 ? groups[i]! : groups[i]! & (0xffff << (16 - bits))).toString(16));
  }
  return `${out.join(':')}/${ipv6PrefixBits}`;
}

/** The eight 16-bit groups of a valid IPv6 address (a zone is ignored; an embedded IPv4 tail is two groups). */
function ipv6Groups(address: string): number[] {
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const double = bare.indexOf('::');
  if (double === -1) return parse(bare);
  const head = parse(bare.slice(0, double));
  const tail = parse(bare.slice(double + 2));
  return [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
