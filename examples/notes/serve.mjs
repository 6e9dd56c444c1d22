// Live notes: a browser app on @kalamdb/client. Log in as alice or bob in two tabs: each sees only
// their own notes, and every tab of the same user updates live.
//
//   npm run example:notes                                   # starts its own KalamDB (data in examples/notes/data)
//   npm run example:notes -- --url http://localhost:8080 --password "$KALAMDB_ROOT_PASSWORD"   # uses `npm start`'s
//
// Prints the URL to open. Options: --help (examples/lib/dev-server.mjs).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SDK_DIR, browserKalamUrl, closePage, ensureUsers, exampleOptions, listenPage, onShutdown, openKalamDB, pageBase, sendFile, sendFrom,
} from '../lib/dev-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const USERS = [['alice', 'alice-demo-1', 'user'], ['bob', 'bob-demo-1', 'user']];

const options = exampleOptions('notes', { pagePort: 3000 });
const db = await openKalamDB(options);
await db.sql('CREATE NAMESPACE IF NOT EXISTS demo');
await db.sql('CREATE USER TABLE IF NOT EXISTS demo.notes (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT NOT NULL, created_at TIMESTAMP DEFAULT NOW())');
const { usable } = await ensureUsers(db, USERS);

const { server: page, port } = await listenPage((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/' || path === '/index.html') {
    return sendFile(res, join(here, 'index.html'), (html) => html.replace('__KALAMDB_URL__', browserKalamUrl(db, req)));
  }
  if (path.startsWith('/sdk/')) return sendFrom(res, SDK_DIR, path.slice('/sdk/'.length));
  res.writeHead(404).end('not found');
}, options);

const base = pageBase(options, port);
console.log(`Live notes: open ${base}/ (users ${usable.map(([u, p]) => `${u} / ${p}`).join(', ') || 'of your own: the demo users existed before with other passwords'})`);
if (usable.length > 0) console.log(`  or log in directly: ${usable.map(([u, p]) => `${base}/?user=${u}&password=${p}`).join(' and ')}`);
console.log(db.own
  ? `KalamDB: http://localhost:${db.port} (started by this example, data in ${options.dataDir}, root / ${db.admin.password})`
  : `KalamDB: ${db.url} (already running; set up as ${db.admin.user})`);
onShutdown([() => closePage(page), () => db.close()]);
