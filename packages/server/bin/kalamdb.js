#!/usr/bin/env node
// The `kalamdb` executable (`npx kalamdb`, `npx kalamdb restore --from dir --data-dir d`, ...). It is
// committed (not built) so that `npm ci` links it even before the first build; it runs the compiled
// server, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('kalamdb: the server is not built yet. Run `npm run build` in the repository root first.\n');
  process.exit(2);
}
await import(main.href);
