-- The chat example's schema (docs/building-a-chat.md walks through it). Safe to run again: serve.mjs
-- runs it at every start, against its own KalamDB or the one given with --url.
CREATE NAMESPACE IF NOT EXISTS chat;

-- Rooms and messages: SHARED tables that every user reads (PUBLIC) and only the chat service writes.
CREATE SHARED TABLE IF NOT EXISTS chat.rooms (
  id         TEXT PRIMARY KEY,
  title      TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at TIMESTAMP DEFAULT NOW()
) WITH (ACCESS_LEVEL = 'PUBLIC');

CREATE SHARED TABLE IF NOT EXISTS chat.messages (
  id      UUID PRIMARY KEY,
  room    TEXT NOT NULL,
  author  TEXT NOT NULL,
  body    TEXT NOT NULL,
  sent_at TIMESTAMP DEFAULT NOW()
) WITH (ACCESS_LEVEL = 'PUBLIC');

-- Who is in which room: PRIVATE (the default), so only the service reads it.
CREATE SHARED TABLE IF NOT EXISTS chat.members (
  id        TEXT PRIMARY KEY,
  room      TEXT NOT NULL,
  user_name TEXT NOT NULL,
  joined_at TIMESTAMP DEFAULT NOW()
);

-- Each user's unsent text per room: a USER table, so everyone reads and writes only their own.
CREATE USER TABLE IF NOT EXISTS chat.drafts (
  room       TEXT PRIMARY KEY,
  body       TEXT NOT NULL,
  updated_at TIMESTAMP DEFAULT NOW()
);

-- "alice is typing": events in memory, per recipient, gone after 5 seconds (and at once when the
-- recipient has no subscription open).
CREATE STREAM TABLE IF NOT EXISTS chat.typing (
  room      TEXT NOT NULL,
  user_name TEXT NOT NULL,
  at        TIMESTAMP DEFAULT NOW()
) WITH (TTL_SECONDS = 5, EPHEMERAL = true);

INSERT INTO chat.rooms (id, title, created_by)
  SELECT 'general', 'General', 'root' WHERE NOT EXISTS (SELECT 1 FROM chat.rooms WHERE id = 'general');
INSERT INTO chat.rooms (id, title, created_by)
  SELECT 'random', 'Random', 'root' WHERE NOT EXISTS (SELECT 1 FROM chat.rooms WHERE id = 'random');
