/**
 * What one WebSocket client can make the server hold or do (an attack review: 16 MiB buffered per
 * anonymous connection, no cap on connections, floods answered message by message): the read limit
 * before and after authentication, the connection caps, and the flood cut-off. Small limits keep it quick.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ROOT_PASSWORD, TestServer } from './harness.js';
import { LiveClient, eventually, type WsMessage } from './ws-client.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const ROOT = { user: 'root', password: ROOT_PASSWORD };

/** Opens a raw socket; resolves with the HTTP status when the upgrade is refused. */
async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket | null; status: number }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { headers, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => { resolve({ ws: null, status: res.statusCode ?? 0 }); res.resume(); });
    ws.once('error', (e) => reject(e));
  });
}

const closeOf = (ws: WebSocket): Promise<number> => new Promise((resolve) => ws.once('close', (code) => resolve(code)));

describe('WebSocket limits', { timeout: 60_000 }, () => {
  let server: TestServer;
  const open: WebSocket[] = [];
  before(async () => {
    server = await TestServer.startWithConfig({ live_messages_per_second_max: 20, live_unauthenticated_connections_max: 3, live_connections_max: 6 });
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await server.dispose();
  });

  it('before authentication a message over 64 KiB closes the connection (1009); after it, up to 4 MiB is answered', async () => {
    const anon = await upgradeStatus(server.url);
    assert.equal(anon.status, 101);
    const closed = closeOf(anon.ws!);
    anon.ws!.send(JSON.stringify({ type: 'authenticate', method: 'basic', username: 'x'.repeat(70 * KIB), password: 'y' }));
    assert.equal(await closed, 1009);

    const c = await LiveClient.connect(server.url, ROOT);
    const big = await c.request(' '.repeat(4 * MIB), (m) => m.type === 'error', 10_000);
    assert.equal(big.code, 'MESSAGE_TOO_LARGE');
    assert.ok(c.isOpen);
    const closedAfter = c.closed;
    c.send(' '.repeat(4 * MIB + 1));
    assert.equal((await closedAfter).code, 1009, 'past 4x the limit ws closes rather than buffer it');
  });

  it('a flood gets one error, then the connection is closed (1008) once it sends twice the rate past it', async () => {
    const c = await LiveClient.connect(server.url, ROOT);
    for (let i = 0; i < 200; i++) c.send({ type: 'ping' });
    const info = await c.closed;
    assert.equal(info.code, 1008);
    assert.equal(info.reason, 'too many messages');
    const errors = c.messages.filter((m: WsMessage) => m.type === 'error');
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!.subscription_id, 'rate_limit');
    assert.ok(c.messages.filter((m) => m.type === 'pong').length <= 21);
  });

  it('connections not yet authenticated, and connections in all, are capped (503 at the upgrade)', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await upgradeStatus(server.url);
      assert.equal(r.status, 101);
      open.push(r.ws!);
    }
    assert.equal((await upgradeStatus(server.url)).status, 503, 'a fourth anonymous connection');
    // Authenticated ones still come in, up to 6 in all.
    const auth = { authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` };
    for (let i = 0; i < 3; i++) {
      const c = await LiveClient.connect(server.url, ROOT);
      open.push(c.ws);
    }
    assert.equal((await upgradeStatus(server.url, auth)).status, 503, 'a seventh connection');
    for (const ws of open.splice(0)) ws.terminate();
    await eventually('room again', async () => (await upgradeStatus(server.url, auth).then((r) => { r.ws?.terminate(); return r.status; })) === 101, 5_000);
  });
});
