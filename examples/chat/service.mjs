// The chat service: the only writer of rooms and messages. Browsers read everything straight from
// KalamDB (live queries with their own token); they post through this service, which
//   - checks who is posting by asking KalamDB who the caller's token belongs to,
//   - writes the SHARED tables as its own `service` account (users may read them, not write them),
//   - and reaches into users' own partitions with EXECUTE AS USER: it clears the sender's draft
//     (chat.drafts, a USER table) and drops an "is typing" event into every other member's
//     partition of chat.typing (a STREAM table), which no user could do for another.
//
//   POST /api/messages {id, room, body}   id: a UUID made by the page, so a retried post is one message
//   POST /api/typing   {room}
//   POST /api/join     {room}
//   POST /api/rooms    {title}
// Every call carries `Authorization: Bearer <the user's KalamDB access token>`.
import { createClient, KalamError } from '@kalamdb/client';

const ROOM_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BODY_MAX = 4000;

/** An HTTP answer with a status, for errors the caller should see. */
class Reply extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** EXECUTE AS USER takes the name as a literal, not a parameter: quote it. */
const literal = (text) => `'${String(text).replaceAll("'", "''")}'`;
const isDuplicate = (error) => error instanceof KalamError && /duplicate primary key/i.test(error.message);

/**
 * @param {{ kalamUrl: string, user: string, password: string, log?: (line: string) => void }} options
 * @returns {{ handle(req, res): Promise<boolean>, close(): Promise<void> }} handle answers /api/* and returns true, or returns false
 */
export function createChatService({ kalamUrl, user, password, log = () => undefined }) {
  // The service's own connection: logs in once, refreshes its token, retries once on a 401.
  const db = createClient({ url: kalamUrl, auth: { user, password } });

  // token -> { name, until }: KalamDB said who this token is; trusted until the token expires (at most 5 minutes).
  const known = new Map();
  async function caller(req) {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined) throw new Reply(401, 'Log in first: send your KalamDB access token as a Bearer token');
    const hit = known.get(token);
    if (hit !== undefined && hit.until > Date.now()) return hit.name;
    let res;
    try {
      res = await fetch(`${kalamUrl}/v1/api/sql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ sql: 'SELECT CURRENT_USER() AS me' }),
      });
    } catch (error) {
      throw new KalamError('CONNECTION_FAILED', `Cannot reach ${kalamUrl}: ${error.message}`);
    }
    if (res.status === 401) throw new Reply(401, 'Your session has expired: log in again');
    const body = await res.json();
    if (body.status !== 'success') throw new KalamError(body.error?.code ?? 'INTERNAL_ERROR', body.error?.message ?? `HTTP ${res.status}`, res.status);
    const name = body.results[0].rows[0][0];
    if (known.size > 10_000) known.clear();
    known.set(token, { name, until: Math.min(Date.now() + 300_000, tokenExpiry(token)) });
    return name;
  }

  async function roomExists(room) {
    if (typeof room !== 'string' || !ROOM_ID.test(room)) throw new Reply(400, 'room: a room id (a-z, 0-9, -)');
    const rows = await db.queryRows('SELECT id FROM chat.rooms WHERE id = $1', [room]);
    if (rows.length === 0) throw new Reply(404, `No room '${room}'`);
  }

  async function join(room, name) {
    try {
      await db.query('INSERT INTO chat.members (id, room, user_name) VALUES ($1, $2, $3)', [`${room}/${name}`, room, name]);
    } catch (error) {
      if (!isDuplicate(error)) throw error;
    }
  }

  const routes = {
    async '/api/messages'(name, input) {
      const { id, room, body } = input;
      if (typeof id !== 'string' || !UUID.test(id)) throw new Reply(400, 'id: a UUID made by the sender');
      if (typeof body !== 'string' || body.trim() === '' || body.length > BODY_MAX) throw new Reply(400, `body: 1 to ${BODY_MAX} characters`);
      await roomExists(room);
      try {
        await db.query('INSERT INTO chat.messages (id, room, author, body) VALUES ($1, $2, $3, $4)', [id, room, name, body]);
      } catch (error) {
        if (!isDuplicate(error)) throw error;
        // A retry of a post whose first answer was lost: the message is there already, once.
        const [row] = await db.queryRows('SELECT author FROM chat.messages WHERE id = $1', [id]);
        if (row?.author !== name) throw new Reply(409, 'That message id is taken');
      }
      await join(room, name);
      // The sent text is no longer a draft: clear it in the sender's own partition.
      await db.query(`EXECUTE AS USER ${literal(name)} (DELETE FROM chat.drafts WHERE room = $1)`, [room]);
      return { id };
    },

    async '/api/typing'(name, { room }) {
      await roomExists(room);
      const others = await db.queryRows('SELECT user_name FROM chat.members WHERE room = $1 AND user_name <> $2', [room, name]);
      // One event in each other member's partition of the STREAM table; they each subscribe to their own.
      const sent = await Promise.allSettled(others.map(({ user_name: to }) =>
        db.query(`EXECUTE AS USER ${literal(to)} (INSERT INTO chat.typing (room, user_name) VALUES ($1, $2))`, [room, name])));
      return { notified: sent.filter((s) => s.status === 'fulfilled').length };
    },

    async '/api/join'(name, { room }) {
      await roomExists(room);
      await join(room, name);
      return { room };
    },

    async '/api/rooms'(name, { title }) {
      if (typeof title !== 'string' || title.trim() === '' || title.length > 60) throw new Reply(400, 'title: 1 to 60 characters');
      const id = title.trim().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
      if (!ROOM_ID.test(id)) throw new Reply(400, 'title: needs a letter or digit');
      try {
        await db.query('INSERT INTO chat.rooms (id, title, created_by) VALUES ($1, $2, $3)', [id, title.trim(), name]);
      } catch (error) {
        if (isDuplicate(error)) throw new Reply(409, `Room '${id}' exists`);
        throw error;
      }
      await join(id, name);
      return { id };
    },
  };

  async function handle(req, res) {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes[path];
    if (route === undefined) return false;
    const send = (status, body) => res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    if (req.method !== 'POST') {
      send(405, { error: 'POST only' });
      return true;
    }
    try {
      const input = await readJson(req);
      const name = await caller(req);
      send(200, await route(name, input));
    } catch (error) {
      if (error instanceof Reply) send(error.status, { error: error.message });
      else if (error instanceof KalamError && error.code === 'CONNECTION_FAILED') {
        // KalamDB is restarting or down: the page keeps the message and retries.
        send(503, { error: 'KalamDB is unreachable', retry: true });
      } else if (error instanceof KalamError && error.status !== null && error.status < 500) {
        send(error.status === 401 ? 502 : error.status, { error: `${error.code}: ${error.message}` });
      } else {
        log(`chat service: ${path}: ${error?.stack ?? error}`);
        send(502, { error: 'The chat service failed', retry: true });
      }
    }
    return true;
  }

  return { handle, close: () => db.disconnect() };
}

/** The `exp` of a JWT (not verified here: KalamDB verified the token before we cached it). */
function tokenExpiry(token) {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    return typeof payload.exp === 'number' ? payload.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 64 * 1024) {
        reject(new Reply(413, 'Request too large'));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        const value = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
        resolve(value);
      } catch {
        reject(new Reply(400, 'The body must be a JSON object'));
      }
    });
    req.on('error', reject);
  });
}
