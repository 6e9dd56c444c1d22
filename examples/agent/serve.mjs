// Agent: an offline "AI" summarizer fed by a topic. Posts written to blog.posts (a USER table) become
// messages of the topic blog.summarizer; the agent (agent.mjs) consumes them as a consumer group,
// summarizes each post with a deterministic fake model (model.mjs) and writes the summary into
// blog.summaries in the writer's own partition.
//
//   npm run example:agent                                    # starts its own KalamDB (data in examples/agent/data)
//   npm run example:agent -- --url http://localhost:8080 --password "$KALAMDB_ROOT_PASSWORD"   # uses `npm start`'s
//
// Sets up the schema and the accounts, writes one sample post as alice, runs the agent in this process
// and prints what it does; Ctrl-C stops both. Options: --help (examples/lib/dev-server.mjs; --port is unused).
import { createClient } from '@kalamdb/client';
import { exampleOptions, onShutdown, openKalamDB } from '../lib/dev-server.mjs';
import { runAgent } from './agent.mjs';
import { AGENT, WRITERS, setup } from './setup.mjs';

const options = exampleOptions('agent', { pagePort: 0 });
const db = await openKalamDB(options);
await setup((statement) => db.sql(statement));

const agentClient = createClient({ url: db.url, auth: AGENT });
const controller = new AbortController();
const running = runAgent({ client: agentClient, signal: controller.signal, pollSeconds: 5 });

const [alice] = WRITERS;
const aliceClient = createClient({ url: db.url, auth: alice });
await aliceClient.query('INSERT INTO blog.posts (title, body) VALUES ($1, $2)', [
  'Hello from alice',
  'KalamDB routes table changes into topics in the same commit as the row. An agent consumes them as a consumer group and writes results back, each into the writer\'s own partition.',
]);

const cli = (who, sql) => `npx kalam --url ${db.url} --user ${who.user} --password ${who.password} -c "${sql}"`;
console.log(db.own
  ? `KalamDB: ${db.url} (started by this example, data in ${options.dataDir}, root / ${db.admin.password})`
  : `KalamDB: ${db.url} (already running; set up as ${db.admin.user})`);
console.log(`Agent: consuming blog.summarizer as ${AGENT.user}. Write a post, then read its summary:`);
console.log(`  ${cli(WRITERS[1], "INSERT INTO blog.posts (title, body) VALUES ('Note', 'Topics make agents simple. They read, think and write back.')")}`);
console.log(`  ${cli(WRITERS[1], 'SELECT post_id, summary, keywords FROM blog.summaries')}`);

onShutdown([
  async () => { controller.abort(); await running; },
  () => agentClient.disconnect(),
  () => aliceClient.disconnect(),
  () => db.close(),
]);
