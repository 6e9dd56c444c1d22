/**
 * The SDK used from outside the repository: `npm pack -w packages/client` (its prepack builds it) makes
 * a tarball with the built code, type declarations, sources for the source maps and the README, and
 * no tests; installed into a fresh temp project (its one dependency, ws, from the npm cache or the
 * registry), a plain ESM script imports `@kalamdb/client`, logs in to the real server, queries and
 * receives a live row; a TypeScript file compiles against the declarations.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, TestServer, type Server } from './helpers.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The environment without the npm_* variables of an enclosing `npm test` (they would steer the inner npm). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = cleanEnv()): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')} failed (${error.killed ? `killed after ${timeoutMs} ms` : `exit ${String(error.code)}`}):\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

const SCRIPT = `
import { createClient, KalamError } from '@kalamdb/client';

const client = createClient({ url: process.env.KALAMDB_URL, auth: { user: 'pat', password: 'pat-password-1' }, timestamps: 'date' });
const out = { states: [] };
client.onConnectionState((state) => out.states.push(state));
await client.query('INSERT INTO pk.notes (id, body, at) VALUES ($1, $2, $3)', [9007199254740993n, 'from the tarball', new Date('2024-05-06T07:08:09.123Z')]);
out.rows = await client.queryRows('SELECT id, body, at FROM pk.notes');
out.at = out.rows[0].at instanceof Date ? out.rows[0].at.toISOString() : String(out.rows[0].at);
out.live = await new Promise((resolve, reject) => {
  client.live('SELECT id, body FROM pk.notes', (rows) => resolve(rows.map((r) => r.body)), { onError: reject }).catch(reject);
});
out.error = await client.query('SELEC 1').catch((e) => (e instanceof KalamError ? e.code : String(e)));
await client.disconnect();
console.log(JSON.stringify(out));
`;

const CONSUMER_TS = `
import { createClient, ConsumerHandlerError, KalamError, type ConnectionState, type Consumer, type ConsumerContext, type ConsumerFailure, type KalamClient, type Row } from '@kalamdb/client';

const client: KalamClient = createClient({ url: 'http://localhost:8080', auth: { token: 't' }, timestamps: 'date', bigint: true });
const state: ConnectionState = client.connectionState;
const off: () => void = client.onConnectionState((s: ConnectionState, info) => { void s; void info?.attempt; void info?.error?.code; });
async function main(): Promise<void> {
  const rows: Array<{ id: bigint; at: Date }> = await client.queryRows<{ id: bigint; at: Date }>('SELECT id, at FROM app.t WHERE id = $1', [1n]);
  const stop: () => Promise<void> = await client.live<Row>('SELECT * FROM app.t', (r: Row[]) => void r, { key: 'id' });
  await stop();
  void rows;
  const consumer: Consumer<{ id: string }> = client.consumer<{ id: string }>({
    topic: 'app.events', group: 'g', transport: 'websocket', retry: { maxAttempts: 2 },
    onFailed: (f: ConsumerFailure<{ id: string }>) => (f.attempts > 1 ? 'skip' : 'stop'),
  });
  await consumer.run(async (ctx: ConsumerContext<{ id: string }>) => { const id: string = ctx.message.payload.id; void id; await ctx.ack(); })
    .catch((e: unknown) => { if (e instanceof ConsumerHandlerError) void e.topicMessage.offset; });
}
void state; void off; void main; void KalamError;
`;

describe('@kalamdb/client as a package', () => {
  let server: Server;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kalamdb-pack-'));
    const port = await freePort();
    server = await TestServer.start(undefined, {}, ['--port', String(port)]);
    await server.ok('CREATE NAMESPACE pk');
    await server.ok('CREATE USER TABLE pk.notes (id BIGINT PRIMARY KEY, body TEXT, at TIMESTAMP)');
    await server.createUser('pat', 'user', 'pat-password-1');
  });
  after(async () => {
    await server?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('npm pack makes a tarball that installs into a fresh project, where an ESM script queries and subscribes', { timeout: 300_000 }, async () => {
    const { stdout } = await run(NPM, ['pack', '-w', 'packages/client', '--pack-destination', dir, '--json'], REPO, 120_000);
    const packed = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed[0]!.files.map((f) => f.path).sort();
    for (const f of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client.js', 'dist/src/live-connection.js', 'dist/src/consumer.js', 'src/index.ts']) {
      assert.ok(files.includes(f), `${f} is in the tarball: ${files.join(', ')}`);
    }
    assert.deepEqual(files.filter((f) => /(^|\/)test\/|\.test\.|tsbuildinfo/.test(f)), [], 'no tests or build info in the tarball');

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }));
    await run(NPM, ['install', join(dir, packed[0]!.filename), '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app, 180_000);
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', '@kalamdb', 'client', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.deepEqual(Object.keys(installed.dependencies), ['ws']);
    await run(NPM, ['ls', '--all'], app, 60_000); // fails on a missing or invalid dependency

    writeFileSync(join(app, 'main.mjs'), SCRIPT);
    const out = await run(process.execPath, ['main.mjs'], app, 60_000, cleanEnv({ KALAMDB_URL: `http://127.0.0.1:${server.port}` }));
    assert.deepEqual(JSON.parse(out.stdout), {
      states: ['connecting', 'connected', 'disconnected'],
      rows: [{ id: '9007199254740993', body: 'from the tarball', at: '2024-05-06T07:08:09.123Z' }],
      at: '2024-05-06T07:08:09.123Z',
      live: ['from the tarball'],
      error: 'INVALID_SQL',
    });

    // TypeScript consumers: the declarations resolve through package.json's exports
    writeFileSync(join(app, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, lib: ['ES2022', 'DOM'], types: [] },
      files: ['consumer.ts'],
    }));
    await run(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app, 120_000);
  });
});
