// Builds the console into dist/ (served by the server at /ui): one minified bundle (Preact and the
// @kalamdb/client SDK included), the page and its stylesheet. Fails when the assets pass the size
// budget (300 KB gzipped), so the console stays light. Type-checking is tsc's (npm run build).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
const BUDGET_GZ_BYTES = 300 * 1024;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'main.tsx')],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // The SDK reaches for these only in Node (browsers have WebSocket and fetch).
  external: ['ws', 'node:*'],
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) copyFileSync(join(here, 'src', file), join(out, file));
let gz = 0;
for (const file of readdirSync(out)) if (!file.endsWith('.map')) gz += gzipSync(readFileSync(join(out, file))).length;
if (gz > BUDGET_GZ_BYTES) throw new Error(`console assets are ${gz} bytes gzipped, over the ${BUDGET_GZ_BYTES}-byte budget`);
if (process.env.KALAMDB_CONSOLE_SIZE === '1') console.log(JSON.stringify({ console_assets_gzip_bytes: gz }));
