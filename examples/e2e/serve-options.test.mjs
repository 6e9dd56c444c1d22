// The examples' serve.mjs next to a running server: preferred ports that are taken give way to free
// ones (and the output says which to open), explicit ones do not, and --url problems are one clear line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { freePort, runExample, startExample, stopAll, stopProcess, tempDir, waitFor } from './helpers.mjs';

const occupied = [];
async function occupy() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  occupied.push(server);
  return server.address().port;
}

after(async () => {
  for (const server of occupied) server.close();
  await stopAll();
});

test('chat: default ports that are taken are replaced by free ones, and the URLs printed', { timeout: 120_000 }, async () => {
  const [pagePort, dbPort] = [await occupy(), await occupy()];
  // PORT and KALAMDB_PORT are preferences, like the defaults 3001 and 8080.
  const example = await startExample('chat', ['--data-dir', join(tempDir('kalamdb-serve-'), 'data')], { PORT: String(pagePort), KALAMDB_PORT: String(dbPort) });
  try {
    // startExample returns at the page's line; the KalamDB line is printed after it and may arrive in a later chunk.
    const dbLine = /KalamDB: http:\/\/localhost:(\d+) \(started by this example/;
    await waitFor('the KalamDB line', () => dbLine.test(example.output.join('')), 10_000);
    const out = example.output.join('');
    assert.match(out, new RegExp(`Port ${dbPort} is taken`));
    const page = Number(new URL(example.base).port);
    assert.notEqual(page, pagePort);
    const db = Number(dbLine.exec(out)?.[1]);
    assert.ok(db > 0 && db !== dbPort, out);
    const config = await (await fetch(`${example.base}/config.json`)).json();
    assert.equal(config.kalamdbUrl, `http://127.0.0.1:${db}`);
    assert.equal((await fetch(`${example.base}/`)).status, 200);
    assert.equal((await fetch(`${example.base}/sdk/index.js`)).status, 200);
    assert.equal((await fetch(`${example.base}/sdk/../../../package.json`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${db}/health`)).status, 200);
    // The service refuses callers without a KalamDB token.
    const res = await fetch(`${example.base}/api/messages`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 401);
  } finally {
    await stopProcess(example.child);
  }
  assert.equal(example.exited, 0, 'SIGTERM stops it cleanly');
});

test('notes: a port given with --port that is taken is an error naming it', { timeout: 120_000 }, async () => {
  const pagePort = await occupy();
  const { code, output } = await runExample('notes', ['--data-dir', join(tempDir('kalamdb-serve-'), 'data'), '--db-port', '0', '--port', String(pagePort)]);
  assert.equal(code, 1, output);
  assert.match(output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${pagePort} \\(EADDRINUSE\\)\\. Choose another with --port`));
});

test('--url: an unreachable server, or no password, is one line saying what to do', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const unreachable = await runExample('chat', ['--url', `http://127.0.0.1:${port}`, '--password', 'x']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.output, /cannot reach KalamDB at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\. Start it \(npm start\)/);
  const env = { KALAMDB_PASSWORD: '', KALAMDB_ROOT_PASSWORD: '' };
  const server = await occupyHttpHealth();
  const noPassword = await runExample('notes', ['--url', server.url], { ...env });
  server.close();
  assert.equal(noPassword.code, 1);
  assert.match(noPassword.output, /no password for 'root' on .*Pass --password/);
});

/** A stand-in that answers /health, enough to get past the reachability check. */
async function occupyHttpHealth() {
  const { createServer: createHttp } = await import('node:http');
  const server = createHttp((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy"}'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}
