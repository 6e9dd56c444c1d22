/**
 * GET /ui: the admin console (packages/console, built into its dist/ by `npm run build`). Only the
 * files of that directory are served, by exact name (no path from the URL reaches the file system),
 * read once and kept in memory (they are small: see the console's size budget).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8',
  map: 'application/json', svg: 'image/svg+xml', png: 'image/png', ico: 'image/x-icon',
};
// The console talks to this server only (HTTP and WebSocket), loads nothing from elsewhere, and is not framed.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

export interface ConsoleFile {
  readonly body: Buffer;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string>>;
}

let files: Map<string, ConsoleFile> | null = null;

/** The console's dist directory, next to the server's package in the repository. */
function consoleDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'console', 'dist');
}

function load(): Map<string, ConsoleFile> {
  const dir = consoleDir();
  const out = new Map<string, ConsoleFile>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)];
    if (type === undefined) continue;
    out.set(name, { body: readFileSync(join(dir, name)), contentType: type, headers: SECURITY_HEADERS });
  }
  return out;
}

/** The file for a /ui path, or null (404). `/ui` and `/ui/` are the page. */
export function consoleFile(path: string): ConsoleFile | null {
  files ??= load();
  const name = path === '/ui' || path === '/ui/' ? 'index.html' : path.slice('/ui/'.length);
  return files.get(name) ?? null;
}
