/** Path relations the server's own path rules share (storages, backups). */
import { isAbsolute, relative } from 'node:path';

/** Whether `inner` is `outer` or lies below it (both absolute and resolved). */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
