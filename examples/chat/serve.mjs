// Chat: rooms and messages in SHARED tables written by a small service (EXECUTE AS USER), drafts in a
// USER table, "is typing" in a STREAM table, all read live by the browser with the user's own token.
//
//   npm run example:chat                                    # starts its own KalamDB (data in examples/chat/data)
//   npm run example:chat -- --url http://localhost:8080 --password change-me-now   # uses `npm start`'s (root's password)
//
// One HTTP server (default port 3001) serves the page, the SDK (/sdk/) and the chat service (/api/).
// Prints the URLs to open. Options: --help (examples/lib/dev-server.mjs); CHAT_SERVICE_PASSWORD sets
// the password of the service account `chat_service` when this script creates it.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SDK_DIR, browserKalamUrl, closePage, ensureUsers, exampleOptions, fail, listenPage, onShutdown, openKalamDB, pageBase, sendFile, sendFrom,
} from '../lib/dev-server.mjs';
import { createChatService } from './service.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SERVICE = ['chat_service', process.env.CHAT_SERVICE_PASSWORD ?? 'chat-service-demo-1', 'service'];
const USERS = [['alice', 'alice-demo-1', 'user'], ['bob', 'bob-demo-1', 'user'], ['carol', 'carol-demo-1', 'user']];

const options = exampleOptions('chat', { pagePort: 3001 });
const db = await openKalamDB(options);
await db.sql(await readFile(join(here, 'schema.sql'), 'utf8'));
// schema.sql creates only what is missing: a `chat` namespace made by something else (the README's
// quick start makes a USER table chat.messages) is not this app's, and would fail later, row by row.
const columns = new Set((await db.sql("SELECT column_name FROM system.columns WHERE namespace_id = 'chat' AND table_name = 'messages'"))[0].rows.map((r) => r[0]));
const missing = ['author', 'sent_at'].filter((c) => !columns.has(c));
if (missing.length > 0) {
  fail(`${db.url} already has a table chat.messages that is not this example's (no column ${missing.join(', ')}): the README's quick start makes one`,
    'Run the example on its own server (`npm run example:chat` with no --url), or drop the other one first: DROP NAMESPACE chat CASCADE');
}
const { usable } = await ensureUsers(db, [SERVICE, ...USERS]);
if (!usable.includes(SERVICE)) {
  fail(`the service account '${SERVICE[0]}' cannot log in; it existed before with another password`,
    `Set CHAT_SERVICE_PASSWORD to its password, or reset it: ALTER USER '${SERVICE[0]}' SET PASSWORD '...'`);
}
const people = USERS.filter((u) => usable.includes(u));

const service = createChatService({ kalamUrl: db.url, user: SERVICE[0], password: SERVICE[1], log: (line) => console.error(line) });
const files = { '/': 'index.html', '/index.html': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
const { server: page, port } = await listenPage(async (req, res) => {
  if (await service.handle(req, res)) return;
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/config.json') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ kalamdbUrl: browserKalamUrl(db, req) }));
    return;
  }
  if (files[path] !== undefined) return sendFile(res, join(here, files[path]));
  if (path.startsWith('/sdk/')) return sendFrom(res, SDK_DIR, path.slice('/sdk/'.length));
  res.writeHead(404).end('not found');
}, options);

const base = pageBase(options, port);
console.log(`Chat: open ${base}/ and log in as ${people.map(([u, p]) => `${u} / ${p}`).join(', ')}`);
if (people.length >= 2) console.log(`  e.g. two windows: ${people.slice(0, 2).map(([u, p]) => `${base}/?user=${u}&password=${p}`).join(' and ')}`);
console.log(db.own
  ? `KalamDB: http://localhost:${db.port} (started by this example, data in ${options.dataDir}, root / ${db.admin.password})`
  : `KalamDB: ${db.url} (already running; set up as ${db.admin.user})`);
onShutdown([() => closePage(page), () => service.close(), () => db.close()]);
