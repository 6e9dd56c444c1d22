// What the examples' serve.mjs scripts share: command-line options, a KalamDB to talk to (a running
// one given with --url, or one started in this process on a free port), the page's HTTP server on a
// free port, and SQL as the administrator.
//
//   node examples/<name>/serve.mjs                       # own KalamDB (port 8080, or a free one if taken)
//   node examples/<name>/serve.mjs --url http://localhost:8080 --password "$KALAMDB_ROOT_PASSWORD"
//
// Ports given as flags are used as given (a clash is an error); the defaults (and PORT /
// KALAMDB_PORT from the environment) are preferences: when taken, a free port is used instead.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The SDK's built files, served to the pages under /sdk/. */
export const SDK_DIR = join(repo, 'packages', 'client', 'dist', 'src');
/** root's password on a KalamDB that an example starts itself (a throwaway demo data dir). */
export const DEMO_ROOT_PASSWORD = 'kalam-demo-root';

const USAGE = (name, pagePort) => `Usage: npm run example:${name} -- [options]

  --url URL          use a running KalamDB (e.g. http://localhost:8080) instead of starting one
  --user NAME        administrator to set the example up with on --url (default root; env KALAMDB_USER)
  --password PW      that administrator's password (env KALAMDB_PASSWORD, else KALAMDB_ROOT_PASSWORD)
  --port N           port of the example's page (default ${pagePort}, or a free one if taken; env PORT; 0 = any)
  --db-port N        port of the KalamDB this example starts (default 8080, or a free one if taken; env KALAMDB_PORT)
  --data-dir DIR     data dir of the KalamDB this example starts (default examples/${name}/data)
  --host ADDR        address to listen on (default 127.0.0.1)
  -h, --help         this text`;

/** Parses the options every example understands; exits with the usage on a bad one. */
export function exampleOptions(name, { pagePort, argv = process.argv.slice(2), env = process.env }) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' },
        port: { type: 'string' }, 'db-port': { type: 'string' }, 'data-dir': { type: 'string' },
        host: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`${error.message}\n\n${USAGE(name, pagePort)}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE(name, pagePort));
    process.exit(0);
  }
  const port = (flag, envValue, fallback) => {
    const text = flag ?? envValue;
    if (text === undefined || text === '') return { port: fallback, strict: false };
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`bad port '${text}'`, 'Give a number from 0 to 65535');
    return { port: n, strict: flag !== undefined && n !== 0 };
  };
  const url = values.url ?? env.KALAMDB_URL;
  return {
    url: url === undefined || url === '' ? null : url.replace(/\/+$/, ''),
    user: values.user ?? (env.KALAMDB_USER || 'root'),
    password: [values.password, env.KALAMDB_PASSWORD, env.KALAMDB_ROOT_PASSWORD].find((p) => p !== undefined && p !== '') ?? null,
    page: port(values.port, env.PORT, pagePort),
    db: port(values['db-port'], env.KALAMDB_PORT, 8080),
    dataDir: values['data-dir'] ?? join(repo, 'examples', name, 'data'),
    host: values.host ?? '127.0.0.1',
  };
}

/** Prints one line saying what is wrong and what to do, and exits 1. */
export function fail(problem, fix) {
  console.error(`example: ${problem}. ${fix}`);
  process.exit(1);
}

/**
 * A KalamDB for the example: the one at options.url (checked: reachable, credentials work, role may
 * create tables), or one started in this process on options.dataDir.
 * Returns { url, port, own, admin: { user, password }, sql(text, params), close() }.
 */
export async function openKalamDB(options) {
  return options.url !== null ? useRunning(options) : startOwn(options);
}

async function useRunning(options) {
  const url = options.url;
  try {
    const res = await fetch(`${url}/health`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (error) {
    fail(`cannot reach KalamDB at ${url} (${error.cause?.code ?? error.message})`,
      'Start it (npm start) or leave out --url to let the example start its own');
  }
  if (options.password === null) {
    fail(`no password for '${options.user}' on ${url}`,
      'Pass --password (or set KALAMDB_PASSWORD; KALAMDB_ROOT_PASSWORD, as given to npm start, also works)');
  }
  const db = { url, port: Number(new URL(url).port || 80), own: false, admin: { user: options.user, password: options.password }, close: async () => undefined };
  db.sql = adminSql(url, options.user, options.password);
  const me = await db.sql('SELECT CURRENT_USER() AS me').catch((error) => error);
  if (me instanceof Error) fail(`cannot log in to ${url} as '${options.user}': ${me.message}`, 'Check --user and --password');
  return db;
}

async function startOwn(options) {
  // The server's own modules, as `npm start` runs them (the example runs after `npm run build`).
  const { loadConfig } = await import('../../packages/server/dist/src/config/config.js');
  const { createLogger } = await import('../../packages/server/dist/src/util/log.js');
  const { startServer } = await import('../../packages/server/dist/src/app.js');
  const start = (port) => startServer(
    loadConfig(['--data-dir', options.dataDir, '--port', String(port), '--host', options.host],
      { KALAMDB_ROOT_PASSWORD: DEMO_ROOT_PASSWORD, KALAMDB_LOG_LEVEL: 'warn' }),
    createLogger('warn'));
  let server;
  try {
    server = await start(options.db.port);
  } catch (error) {
    if (error?.cause?.code === 'EADDRINUSE' && !options.db.strict) {
      console.log(`Port ${options.db.port} is taken (by \`npm start\`?): starting this example's KalamDB on a free port instead.`);
      console.log(`  (To use the running server instead: --url http://localhost:${options.db.port} --password <its root password>)`);
      server = await start(0).catch((again) => { console.error(`example: ${again.message}`); process.exit(1); });
    } else {
      // The server's start-up errors already say what to do (e.g. another copy of this example holds the data dir).
      console.error(`example: ${error?.message ?? String(error)}`);
      process.exit(1);
    }
  }
  const url = `http://127.0.0.1:${server.port}`;
  const db = {
    url, port: server.port, own: true, admin: { user: 'root', password: DEMO_ROOT_PASSWORD },
    sql: adminSql(url, 'root', DEMO_ROOT_PASSWORD),
    close: () => server.close(),
  };
  return db;
}

/** SQL as the administrator over HTTP (Basic auth): the results, or a thrown Error with the server's message. */
function adminSql(url, user, password) {
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return async (sql, params) => {
    const res = await fetch(`${url}/v1/api/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ sql, ...(params ? { params } : {}) }),
    });
    const body = await res.json().catch(() => ({}));
    if (body.status !== 'success') throw Object.assign(new Error(body.error?.message ?? body.message ?? `HTTP ${res.status}`), { code: body.error?.code ?? body.error });
    return body.results;
  };
}

/** Whether `user` can log in with `password` at `url`. */
export async function canLogIn(url, user, password) {
  const res = await fetch(`${url}/v1/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
  await res.arrayBuffer();
  return res.status === 200;
}

/**
 * Creates the accounts that do not exist yet ([name, password, role] each). Returns the names it
 * created and the accounts that can log in with the example's password: on a server of your own
 * (--url) a demo name may exist already with another password (the README's quick start makes
 * alice), which is said once here.
 */
export async function ensureUsers(db, users) {
  const created = [];
  const usable = [];
  for (const account of users) {
    const [name, password, role] = account;
    try {
      await db.sql(`CREATE USER '${name}' WITH PASSWORD '${password}' ROLE ${role}`);
      created.push(name);
    } catch (error) {
      if (!/already exists/i.test(error.message)) throw error;
    }
    if (created.includes(name) || await canLogIn(db.url, name, password)) usable.push(account);
    else console.warn(`note: the user '${name}' existed before with another password: log in with that one, or as another demo user`);
  }
  return { created, usable };
}

/** The URL a browser that loaded the page from `req` uses for KalamDB: the same host name when this
 * process started KalamDB (so localhost and 127.0.0.1 both work), else the --url as given. */
export function browserKalamUrl(db, req) {
  if (!db.own) return db.url;
  const host = (req.headers.host ?? '127.0.0.1').replace(/:\d+$/, '');
  return `http://${host}:${db.port}`;
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json', '.json': 'application/json' };

/** Serves `file` (or 404), optionally rewriting its text. */
export async function sendFile(res, file, rewrite = (text) => text) {
  try {
    const body = rewrite(await readFile(file, 'utf8'));
    res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'text/plain', 'cache-control': 'no-store' }).end(body);
  } catch {
    res.writeHead(404).end('not found');
  }
}

/** Serves a file under `dir` for the URL path `rest` (no escaping the directory), or 404. */
export function sendFrom(res, dir, rest) {
  const file = normalize(join(dir, decodeURIComponent(rest)));
  if (!file.startsWith(dir + sep)) return void res.writeHead(404).end('not found');
  return sendFile(res, file);
}

/** Starts the page's HTTP server on options.page (a free port when the preferred one is taken). Returns the port. */
export async function listenPage(handler, options) {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((error) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal error' }));
    });
  });
  const listen = (port) => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, options.host, () => { server.off('error', reject); resolve(server.address().port); });
  });
  let port;
  try {
    port = await listen(options.page.port);
  } catch (error) {
    if (error.code !== 'EADDRINUSE' || options.page.strict) fail(`cannot listen on ${options.host}:${options.page.port} (${error.code})`, 'Choose another with --port');
    console.log(`Port ${options.page.port} is taken: serving the page on a free port instead.`);
    port = await listen(0);
  }
  return { server, port };
}

/** Closes the page's server and its open (keep-alive) connections. */
export function closePage(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Stops everything on SIGINT/SIGTERM (each step at most once). */
export function onShutdown(steps) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const step of steps) await Promise.resolve().then(step).catch((error) => console.error(error));
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** How to reach the page, for the banner: localhost unless it listens elsewhere. */
export function pageBase(options, port) {
  const host = options.host === '127.0.0.1' || options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host;
  return `http://${host}:${port}`;
}
