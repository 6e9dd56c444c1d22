/**
 * GET /v1/exports/{user}/{export_id}: an EXPORT USER DATA archive, for its owner or an admin (dba,
 * system). In upstream's order: the caller is authenticated (401), may only name themselves unless
 * an admin (403, decided from the path alone, so it says nothing about what exists), the ids must be
 * well formed (400), and the archive must exist (404). The file is opened here and streamed by the
 * server's sender, never read into memory whole.
 */
import type { IncomingMessage } from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import type { Principal } from '../auth/access.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Catalog } from '../catalog/catalog.js';
import { isAdminRole } from '../catalog/types.js';
import { ServerError } from '../util/errors.js';

export const EXPORTS_ROUTE_PREFIX = '/v1/exports/';

/** What the route needs of the export service. */
export interface ExportArchives {
  /** The archive's path for an account and export id, or null when the id is malformed. */
  archivePath(accountId: string, exportId: string): string | null;
}

export interface ExportFile {
  readonly handle: FileHandle;
  readonly size: number;
  readonly filename: string;
}

export async function exportDownload(
  deps: { auth: Authenticator; catalog: Catalog; exports: ExportArchives }, req: IncomingMessage, path: string,
): Promise<{ file: ExportFile; principal: Principal }> {
  const principal = await deps.auth.fromHeader(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
  if (req.method !== 'GET') throw new ServerError('BAD_REQUEST', 'Use GET for /v1/exports/{user_id}/{export_id}');
  const parts = path.slice(EXPORTS_ROUTE_PREFIX.length).split('/');
  const [user, exportId] = parts.map(decodeSegment);
  if (parts.length !== 2 || user === null || exportId === null || user === undefined || exportId === undefined) {
    throw new ServerError('INVALID_INPUT', 'Invalid export path');
  }
  if (user.toLowerCase() !== principal.userId && !isAdminRole(principal.role)) {
    throw new ServerError('PERMISSION_DENIED', 'You can only download your own exports');
  }
  if (!safeSegment(user) || !safeSegment(exportId)) throw new ServerError('INVALID_INPUT', 'Invalid export path');
  // The live account of that name: a new account under a dropped user's name never gets its exports.
  const account = deps.catalog.user(user.toLowerCase());
  const archive = account === undefined ? null : deps.exports.archivePath(account.id, exportId);
  if (account !== undefined && archive === null) throw new ServerError('INVALID_INPUT', 'Invalid export path');
  if (archive === null) throw new ServerError('NOT_FOUND', 'Export not found');
  let handle: FileHandle;
  try {
    handle = await open(archive, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ServerError('NOT_FOUND', 'Export not found');
    throw error;
  }
  const { size } = await handle.stat();
  return { file: { handle, size, filename: `${exportId}.zip` }, principal };
}

/** A path segment decoded, or null when its percent-encoding is broken. */
function decodeSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** upstream's checks (no `..`, `/`, `\`, NUL), plus length and control characters. */
function safeSegment(s: string): boolean {
  return s.length > 0 && s.length <= 256 && !s.includes('..') && !/[/\\\0-\x1f]/.test(s);
}
