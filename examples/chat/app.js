// The chat page. Reads straight from KalamDB with the user's own token (live queries over the SDK's
// one WebSocket); posts through the chat service (service.mjs), which writes on the user's behalf.
import { createClient } from './sdk/index.js';

const $ = (id) => document.getElementById(id);
const { kalamdbUrl } = await (await fetch('/config.json')).json();

// ---------------------------------------------------------------------------------------------
// Session: the page logs in to KalamDB itself and keeps the tokens (for this tab) in sessionStorage.
// The access token goes to KalamDB (through the SDK's authProvider) and to the chat service, which
// asks KalamDB whose it is.
const SESSION_KEY = 'kalamdb-chat-session';
let session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
let renewing = null;

async function authCall(path, body, bearer) {
  const res = await fetch(`${kalamdbUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body ?? {}),
  });
  const json = await res.json().catch(() => ({}));
  if (res.status !== 200) throw Object.assign(new Error(json.message ?? `HTTP ${res.status}`), { status: res.status });
  return json;
}

function keep(user, tokens) {
  session = {
    user, access: tokens.access_token, refresh: tokens.refresh_token,
    expiresAt: Date.parse(tokens.expires_at), refreshExpiresAt: Date.parse(tokens.refresh_expires_at),
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

/** A valid access token: the kept one, or a refreshed one shortly before it expires. */
async function accessToken() {
  if (session === null) throw new Error('Not logged in');
  if (session.expiresAt - 60_000 > Date.now()) return session.access;
  renewing ??= authCall('/v1/api/auth/refresh', {}, session.refresh)
    .then((tokens) => { keep(session.user, tokens); return session.access; })
    .catch((error) => {
      if (error.status === 401) logout('Your session expired: log in again.');
      throw error;
    })
    .finally(() => { renewing = null; });
  return renewing;
}

// ---------------------------------------------------------------------------------------------
// State
let client = null;
let room = null;                 // the open room's id
let roomGeneration = 0;          // bumps on every room switch: late callbacks of an old room are ignored
let stopMessages = null;
let messages = [];               // the open room's rows, as the live query delivers them
const outbox = new Map();        // id -> { id, room, body, state }: posted, not yet seen in the live rows
const typing = new Map();        // `${room}/${user}` -> until (ms)
let rooms = [];

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** TIMESTAMP cells: Date objects with `timestamps: 'date'`, else microseconds since the epoch. */
const toDate = (v) => (v instanceof Date ? v : new Date(Number(v) / 1000));
const seqLess = (a, b) => (a.length !== b.length ? a.length < b.length : a < b);

// ---------------------------------------------------------------------------------------------
// Log in / out
$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('error').textContent = '';
  try {
    const user = $('user').value.trim().toLowerCase();
    keep(user, await authCall('/v1/api/auth/login', { user, password: $('password').value }));
    await start();
  } catch (error) {
    $('error').textContent = `Login failed: ${error.message}`;
  }
});
$('logout').addEventListener('click', () => logout(''));

async function logout(message) {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  const old = client;
  client = null;
  await old?.disconnect();
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('whoami').textContent = '';
  showConnection('idle');
  $('error').textContent = message;
}

async function start() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('whoami').textContent = session.user;
  client = createClient({ url: kalamdbUrl, auth: { authProvider: accessToken }, timestamps: 'date' });

  // The badge follows the SDK's connection: connecting, connected, reconnecting… (after a drop or a
  // server restart the SDK reconnects and resumes every live query from its last _seq).
  showConnection(client.connectionState);
  client.onConnectionState((state) => showConnection(state));

  const onError = (error) => { $('error').textContent = `${error.code}: ${error.message}`; };
  // Rooms: a SHARED table, the same rows for everyone.
  await client.live('SELECT id, title, created_at FROM chat.rooms', (rows) => {
    rooms = rows.sort((a, b) => toDate(a.created_at) - toDate(b.created_at) || (a.id < b.id ? -1 : 1));
    renderRooms();
  }, { onError });
  // Typing: a STREAM table; each user's partition holds the events addressed to them. No initial data:
  // only what happens from now on.
  await client.subscribe('SELECT room, user_name FROM chat.typing', {
    onInsert: (rows) => {
      for (const r of rows) if (r.user_name !== session?.user) typing.set(`${r.room}/${r.user_name}`, Date.now() + 4000);
      renderTyping();
    },
    onError,
  });
  await openRoom(decodeURIComponent(location.hash.slice(1)) || 'general');
}

function showConnection(state) {
  const labels = { idle: 'offline', connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…', disconnected: 'disconnected' };
  $('conn').dataset.state = state ?? 'idle';
  $('conn').textContent = labels[state] ?? String(state);
}

// ---------------------------------------------------------------------------------------------
// Rooms and messages
async function openRoom(id) {
  await flushDraft();
  const generation = ++roomGeneration;
  room = id;
  if (location.hash.slice(1) !== id) history.replaceState(null, '', `#${encodeURIComponent(id)}`);
  renderRooms();
  messages = [];
  renderMessages();
  $('composer').value = '';
  $('draft-status').textContent = '';
  const old = stopMessages;
  stopMessages = null;
  await old?.();
  // The newest 200 messages of the room, then every new one. Rows are kept by primary key, so a
  // message arrives once even across reconnects (the SDK resumes from the last _seq it saw).
  const stop = await client.live(
    `SELECT id, room, author, body, sent_at FROM chat.messages WHERE room = '${id.replaceAll("'", "''")}'`,
    (rows) => {
      if (generation !== roomGeneration) return;
      messages = rows.sort((a, b) => toDate(a.sent_at) - toDate(b.sent_at) || (seqLess(a._seq, b._seq) ? -1 : 1));
      for (const m of messages) outbox.delete(m.id);
      renderMessages();
    },
    {
      lastRows: 200,
      onEvent: (event) => {
        // Someone's message arrived: they are not typing any more.
        if (event.type === 'insert') for (const m of event.rows) typing.delete(`${m.room}/${m.author}`);
        renderTyping();
      },
      onError: (error) => { $('error').textContent = `${error.code}: ${error.message}`; },
    },
  );
  if (generation !== roomGeneration) return void stop();
  stopMessages = stop;
  post('/api/join', { room: id }).catch(() => undefined);
  // The draft this user left in this room (their own partition of chat.drafts).
  const [draft] = await client.queryRows('SELECT body FROM chat.drafts WHERE room = $1', [id]);
  if (generation === roomGeneration && draft !== undefined && $('composer').value === '') {
    $('composer').value = draft.body;
    $('draft-status').textContent = 'Draft restored';
  }
}

function renderRooms() {
  $('rooms').replaceChildren(...rooms.map((r) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.textContent = `# ${r.title}`;
    b.dataset.room = r.id;
    b.setAttribute('aria-current', String(r.id === room));
    b.onclick = () => void openRoom(r.id);
    li.append(b);
    return li;
  }));
  $('room-title-heading').textContent = `# ${rooms.find((r) => r.id === room)?.title ?? room ?? ''}`;
}

function renderMessages() {
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const pending = [...outbox.values()].filter((m) => m.room === room);
  list.replaceChildren(
    ...messages.map((m) => messageItem(m.id, m.author, m.body, toDate(m.sent_at), false)),
    ...pending.map((m) => messageItem(m.id, session.user, m.body, new Date(m.createdAt), true)),
  );
  if (atBottom || pending.length > 0) list.scrollTop = list.scrollHeight;
}

function messageItem(id, author, body, date, pending) {
  const li = document.createElement('li');
  li.className = `msg${author === session?.user ? ' mine' : ''}${pending ? ' pending' : ''}`;
  li.dataset.id = id;
  const who = document.createElement('span');
  who.className = 'author';
  who.textContent = author;
  const time = document.createElement('time');
  time.dateTime = date.toISOString();
  time.title = fullFormat.format(date);
  time.textContent = readableTime(date);
  const text = document.createElement('p');
  text.className = 'body';
  text.textContent = body;
  li.append(who, time, text);
  return li;
}

/** 14:05 today, "Dec 1, 14:05" before, with the year when it is not this year's. */
function readableTime(date) {
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return timeFormat.format(date);
  if (date.getFullYear() === now.getFullYear()) return dayTimeFormat.format(date);
  return fullFormat.format(date);
}

function renderTyping() {
  const now = Date.now();
  const names = [];
  for (const [key, until] of typing) {
    if (until < now) typing.delete(key);
    else if (key.startsWith(`${room}/`)) names.push(key.slice(room.length + 1));
  }
  names.sort();
  $('typing').textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    : `${names.length} people are typing…`;
}
setInterval(renderTyping, 500);

// ---------------------------------------------------------------------------------------------
// Posting through the chat service
async function post(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await accessToken()}` },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw Object.assign(new Error(`The chat service is unreachable: ${error.message}`), { retry: true });
  }
  const json = await res.json().catch(() => ({}));
  if (res.status !== 200) throw Object.assign(new Error(json.error ?? `HTTP ${res.status}`), { retry: json.retry === true || res.status >= 500 });
  return json;
}

/** A UUID v4 (crypto.randomUUID needs a secure context; getRandomValues does not). */
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

$('send').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
$('composer').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});

async function send() {
  const body = $('composer').value.trim();
  if (body === '' || room === null) return;
  $('composer').value = '';
  cancelDraftSave();
  $('draft-status').textContent = '';
  // The message gets its id here: when the post is retried (KalamDB restarting, a lost answer) the
  // service finds the id already written, so the message exists once.
  const message = { id: uuid(), room, body, createdAt: Date.now() };
  outbox.set(message.id, message);
  renderMessages();
  await draftChain; // a draft save still in flight lands before the service clears the draft
  for (let attempt = 0; outbox.has(message.id); attempt++) {
    try {
      await post('/api/messages', { id: message.id, room: message.room, body: message.body });
      $('draft-status').textContent = '';
      $('error').textContent = '';
      return; // it leaves the outbox when the live query delivers it
    } catch (error) {
      if (!error.retry) {
        outbox.delete(message.id);
        renderMessages();
        $('error').textContent = `Not sent: ${error.message}`;
        return;
      }
      $('error').textContent = `${error.message} (will retry)`;
      await new Promise((resolve) => setTimeout(resolve, Math.min(4000, 250 * 2 ** attempt)));
    }
  }
}

$('new-room').addEventListener('submit', async (e) => {
  e.preventDefault();
  const title = $('room-title').value.trim();
  if (title === '') return;
  try {
    const { id } = await post('/api/rooms', { title });
    $('room-title').value = '';
    await openRoom(id);
  } catch (error) {
    $('error').textContent = error.message;
  }
});

// ---------------------------------------------------------------------------------------------
// Typing pings and drafts, as the user types
let lastTypingPing = 0;
let draftTimer = null;
let draftPending = null;     // { room, text } waiting for the debounce
let draftChain = Promise.resolve();

$('composer').addEventListener('input', () => {
  const text = $('composer').value;
  if (text.trim() !== '' && Date.now() - lastTypingPing > 2000) {
    lastTypingPing = Date.now();
    post('/api/typing', { room }).catch(() => undefined);
  }
  draftPending = { room, text };
  $('draft-status').textContent = 'Editing…';
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => void flushDraft(), 600);
});

function cancelDraftSave() {
  clearTimeout(draftTimer);
  draftTimer = null;
  draftPending = null;
}

/** Saves the pending draft now (one save at a time, in order) and waits for every save so far. */
function flushDraft() {
  clearTimeout(draftTimer);
  draftTimer = null;
  const pending = draftPending;
  draftPending = null;
  if (pending !== null && client !== null) {
    draftChain = draftChain.then(() => saveDraft(pending.room, pending.text)).then(
      () => { if (pending.room === room && draftPending === null) $('draft-status').textContent = 'Draft saved'; },
      (error) => { $('draft-status').textContent = `Draft not saved: ${error.message}`; },
    );
  }
  return draftChain;
}

/** The user's own row of chat.drafts for the room: updated, inserted, or deleted when empty. */
async function saveDraft(draftRoom, text) {
  if (text.trim() === '') {
    await client.query('DELETE FROM chat.drafts WHERE room = $1', [draftRoom]);
    return;
  }
  const update = () => client.query('UPDATE chat.drafts SET body = $2, updated_at = NOW() WHERE room = $1', [draftRoom, text]);
  if ((await update()).results[0].row_count > 0) return;
  try {
    await client.query('INSERT INTO chat.drafts (room, body) VALUES ($1, $2)', [draftRoom, text]);
  } catch (error) {
    if (!/duplicate primary key/i.test(error.message)) throw error;
    await update();
  }
}

window.addEventListener('hashchange', () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (client !== null && id !== '' && id !== room) void openRoom(id);
});
window.addEventListener('pagehide', () => void flushDraft());

// ---------------------------------------------------------------------------------------------
// ?user=…&password=… logs in at once (handy for a second window and for tests); then the URL forgets
// the password, and a reload keeps the session from sessionStorage.
const params = new URLSearchParams(location.search);
if (params.get('user')) {
  $('user').value = params.get('user');
  $('password').value = params.get('password') ?? '';
  history.replaceState(null, '', location.pathname + location.hash);
  $('login').requestSubmit();
} else if (session !== null) {
  start().catch((error) => { $('error').textContent = error.message; });
}
