// Agent: an offline "AI" summarizer fed by a topic. Posts written to blog.posts (a USER table) become
// messages of the topic blog.summarizer; the agent (agent.mjs) consumes them as a consumer group,
// summarizes each post with a deterministic fake model (model.mjs) and writes the summary into
// blog.summaries in the writer's own partition.
//
//   npm run example:agent                                    # starts its own KalamDB (data in examples/agent/data)
//   npm run example:agent -- --url http://localhost:8080 --password "$KALAMDB_ROOT_PASSWORD"   # uses `npm start`'s
//
// Sets up the schema and the accounts, writes one sample post as alice (or bob, when alice exists with another password), runs the agent in this process
// and prints what it does; Ctrl-C stops both. Options: --help (examples/lib/dev-server.mjs; --port is unused).
import { createClient } from '@kalamdb/client';
import { canLogIn, exampleOptions, fail, onShutdown, openKalamDB } from '../lib/dev-server.mjs';
import { runAgent } from './agent.mjs';
import { AGENT, WRITERS, setup } from './setup.mjs';

const options = exampleOptions('agent', { pagePort: 0 });
const db = await openKalamDB(options);
await setup((statement) => db.sql(statement));

// On a server of your own (--url) an account may exist from before with another password (the
// README's quick start makes alice).
if (!await canLogIn(db.url, AGENT.user, AGENT.password)) {
  fail(`the service account '${AGENT.user}' cannot log in; it existed before with another password`,
    `Set AGENT_PASSWORD to its password, or reset it: ALTER USER '${AGENT.user}' SET PASSWORD '...'`);
}
const writers = [];
for (const w of WRITERS) {
  if (await canLogIn(db.url, w.user, w.password)) writers.push(w);
  else console.warn(`note: the user '${w.user}' existed before with another password: this example writes as the other demo users`);
}
if (writers.length === 0) {
  fail(`none of the demo writers (${WRITERS.map((w) => w.user).join(', ')}) can log in with the example's password`,
    'Run the example on its own server (`npm run example:agent` with no --url)');
}

const agentClient = createClient({ url: db.url, auth: AGENT });
const controller = new AbortController();
const running = runAgent({ client: agentClient, signal: controller.signal, pollSeconds: 5 });

const [writer] = writers;
const writerClient = createClient({ url: db.url, auth: writer });
await writerClient.query('INSERT INTO blog.posts (title, body) VALUES ($1, $2)', [
  `Hello from ${writer.user}`,
  'KalamDB routes table changes into topics in the same commit as the row. An agent consumes them as a consumer group and writes results back, each into the writer\'s own partition.',
]);

const cli = (who, sql) => `npx kalam --url ${db.url} --user ${who.user} --password ${who.password} -c "${sql}"`;
console.log(db.own
  ? `KalamDB: ${db.url} (started by this example, data in ${options.dataDir}, root / ${db.admin.password})`
  : `KalamDB: ${db.url} (already running; set up as ${db.admin.user})`);
console.log(`Agent: consuming blog.summarizer as ${AGENT.user}. Write a post, then read its summary:`);
console.log(`  ${cli(writers[writers.length - 1], "INSERT INTO blog.posts (title, body) VALUES ('Note', 'Topics make agents simple. They read, think and write back.')")}`);
console.log(`  ${cli(writers[writers.length - 1], 'SELECT post_id, summary, keywords FROM blog.summaries')}`);

onShutdown([
  async () => { controller.abort(); await running; },
  () => agentClient.disconnect(),
  () => writerClient.disconnect(),
  () => db.close(),
]);
