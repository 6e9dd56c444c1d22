// Creates the agent example's schema (schema.sql) and accounts. `sql(text)` runs one statement as an
// administrator and throws an Error carrying the server's message on failure (examples/lib/dev-server.mjs
// `db.sql`, or any wrapper around @kalamdb/client's `query`).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The agent's account: role service may consume topics and write into users' partitions (EXECUTE AS USER). */
export const AGENT = { user: 'blog_agent', password: process.env.AGENT_PASSWORD || 'blog-agent-demo-1' };
/** Demo writers (role user). */
export const WRITERS = [{ user: 'alice', password: 'alice-demo-1' }, { user: 'bob', password: 'bob-demo-1' }];

/** The statements of schema.sql, without comments. */
export async function schemaStatements() {
  const text = (await readFile(join(here, 'schema.sql'), 'utf8')).replace(/--[^\n]*/g, '');
  return text.split(';').map((s) => s.trim()).filter((s) => s !== '');
}

export async function setup(sql) {
  for (const statement of await schemaStatements()) {
    try {
      await sql(statement);
    } catch (error) {
      // The route is there from an earlier run.
      if (!/^ALTER TOPIC/i.test(statement) || !/already exists/i.test(error.message)) throw error;
    }
  }
  const accounts = [[AGENT, 'service'], ...WRITERS.map((w) => [w, 'user'])];
  for (const [{ user, password }, role] of accounts) {
    try {
      await sql(`CREATE USER '${user}' WITH PASSWORD '${password}' ROLE ${role}`);
    } catch (error) {
      if (!/already exists/i.test(error.message)) throw error;
    }
  }
}
