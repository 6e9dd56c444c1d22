// Live notes: a browser app on @kalamdb/client. Starts KalamDB (port 8080, data in ./data next to
// this file) and a static server for the page (port 3000). Log in as alice or bob in two tabs:
// each sees only their own notes, and every tab of the same user updates live.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../packages/server/dist/src/config/config.js';
import { createLogger } from '../../packages/server/dist/src/util/log.js';
import { startServer } from '../../packages/server/dist/src/app.js';

const here = dirname(fileURLToPath(import.meta.url));
const sdkDir = join(here, '..', '..', 'packages', 'client', 'dist', 'src');
const ROOT_PASSWORD = 'kalam-demo-root';

const config = loadConfig(['--data-dir', join(here, 'data'), '--port', process.env.KALAMDB_PORT ?? '8080'], { KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD, KALAMDB_LOG_LEVEL: 'warn' });
const db = await startServer(config, createLogger('warn'));
const sql = async (text) => {
  const res = await fetch(`http://127.0.0.1:${db.port}/v1/api/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` },
    body: JSON.stringify({ sql: text }),
  });
  return res.json();
};
await sql('CREATE NAMESPACE IF NOT EXISTS demo');
await sql('CREATE USER TABLE IF NOT EXISTS demo.notes (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT NOT NULL, created_at TIMESTAMP DEFAULT NOW())');
for (const [user, password] of [['alice', 'alice-demo-1'], ['bob', 'bob-demo-1']]) {
  await sql(`CREATE USER '${user}' WITH PASSWORD '${password}' ROLE user`); // fails harmlessly when it exists
}

const types = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
const page = createServer(async (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  let file;
  if (path === '/' || path === '/index.html') file = join(here, 'index.html');
  else if (path.startsWith('/sdk/')) file = normalize(join(sdkDir, path.slice(5)));
  if (file === undefined || (path.startsWith('/sdk/') && !file.startsWith(sdkDir))) {
    res.writeHead(404).end('not found');
    return;
  }
  try {
    const body = (await readFile(file, 'utf8')).replace('__KALAMDB_URL__', `http://localhost:${db.port}`);
    res.writeHead(200, { 'content-type': types[file.slice(file.lastIndexOf('.'))] ?? 'text/plain' }).end(body);
  } catch {
    res.writeHead(404).end('not found');
  }
});
const port = Number(process.env.PORT ?? 3000);
page.listen(port, () => {
  console.log(`Live notes: open http://localhost:${port} (users alice / alice-demo-1 and bob / bob-demo-1)`);
  console.log(`KalamDB: http://localhost:${db.port} (root / ${ROOT_PASSWORD})`);
});
const stop = async () => { page.close(); await db.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
