-- The agent example's schema. Safe to run again: setup.mjs runs it statement by statement at every
-- start and skips what already exists (ALTER TOPIC ... ADD SOURCE has no IF NOT EXISTS).
CREATE NAMESPACE IF NOT EXISTS blog;

-- Posts: a USER table, so each writer has their own partition (and the topic's messages say who wrote).
CREATE USER TABLE IF NOT EXISTS blog.posts (
  id         TEXT PRIMARY KEY DEFAULT ULID(),
  title      TEXT NOT NULL,
  body       TEXT NOT NULL,
  created_at TIMESTAMP DEFAULT NOW()
);

-- The agent's output, one row per post, in the post writer's own partition (EXECUTE AS USER).
-- post_id is the key: a message delivered twice (after a crash) cannot produce a second summary.
CREATE USER TABLE IF NOT EXISTS blog.summaries (
  post_id       TEXT PRIMARY KEY,
  summary       TEXT NOT NULL,
  keywords      TEXT NOT NULL,
  model         TEXT NOT NULL,
  source_offset BIGINT NOT NULL,
  created_at    TIMESTAMP DEFAULT NOW()
);

-- Every new post becomes a message of blog.summarizer, in the same commit as the row.
CREATE TOPIC IF NOT EXISTS blog.summarizer PARTITIONS 1;
ALTER TOPIC blog.summarizer ADD SOURCE blog.posts ON INSERT WITH (payload = 'full');
