/**
 * One write per connection per fan-out (docs/decisions/0020): frames a fan-out writes to a socket
 * leave in one write when it ends, in order; a fan-out that throws still releases its sockets; a
 * nested fan-out joins the outer one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { currentFanOut, fanOut, holdUntilFanOutEnds } from '../src/live/fanout-writes.js';

describe('fan-out writes', () => {
  let server: net.Server;
  let sender: net.Socket;
  let receiver: net.Socket;
  /** Calls that reached the socket's handle: a corked run of frames is one writev. */
  let handleWrites = 0;
  let received = '';

  before(async () => {
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    receiver = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sender = await accepted;
    receiver.setEncoding('latin1');
    receiver.on('data', (chunk: string) => { received += chunk; });
    const counted = sender as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const write = counted._write.bind(sender);
    const writev = counted._writev.bind(sender);
    counted._write = (...a) => { handleWrites++; write(...a); };
    counted._writev = (...a) => { handleWrites++; writev(...a); };
  });

  after(async () => {
    receiver.destroy();
    sender.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  async function arrived(text: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (received.length < text.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(received, text);
    received = '';
  }

  it('sends the frames of a fan-out in one write, in order, when it ends', async () => {
    handleWrites = 0;
    let during = -1;
    fanOut(() => {
      during = currentFanOut();
      holdUntilFanOutEnds(sender);
      for (let i = 0; i < 10; i++) sender.write(`frame ${i};`);
      assert.equal(handleWrites, 0, 'nothing written before the fan-out ends');
    });
    assert.notEqual(during, -1);
    assert.equal(currentFanOut(), -1);
    assert.equal(sender.writableCorked, 0);
    assert.equal(handleWrites, 1);
    await arrived(Array.from({ length: 10 }, (_, i) => `frame ${i};`).join(''));
  });

  it('numbers fan-outs apart, joins a nested one to the outer, and releases sockets when one throws', async () => {
    let first = -1;
    let nested = -2;
    fanOut(() => {
      first = currentFanOut();
      fanOut(() => { nested = currentFanOut(); });
    });
    assert.equal(nested, first);
    let second = -1;
    assert.throws(() => fanOut(() => {
      second = currentFanOut();
      holdUntilFanOutEnds(sender);
      sender.write('before the failure;');
      throw new Error('a listener failed');
    }), /a listener failed/);
    assert.notEqual(second, first);
    assert.equal(sender.writableCorked, 0);
    await arrived('before the failure;');
  });
});
