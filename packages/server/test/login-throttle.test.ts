/**
 * Failed-login throttling: over HTTP for one user name from one address (429 after 5 failures in a
 * minute, even with the right password, other users unaffected), and the per-address rule as a unit (the integration
 * tests all come from loopback, which is exempt from it). Timing uniformity is not measured here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle } from '../src/auth/login-throttle.js';
import { ServerError } from '../src/util/errors.js';
import { clientKey } from '../src/util/client-address.js';
import { TestServer } from './harness.js';

describe('login throttling', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
    await server.createUser('target', 'user', 'right-password-1');
    await server.createUser('bystander', 'user', 'right-password-2');
  });
  after(async () => {
    await server.dispose();
  });

  const login = async (user: string, password: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await server.fetch('/v1/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('refuses a user with 429 after 5 failed logins in a minute, even with the right password', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await login('target', `wrong-${i}`)).status, 401);
    const blocked = await login('target', 'right-password-1');
    assert.equal(blocked.status, 429);
    assert.equal(blocked.body.error, 'rate_limit_exceeded');
    assert.match(String(blocked.body.message), /Too many failed logins/);
    const basic = await server.sql('SELECT 1', { auth: { user: 'target', password: 'right-password-1' } });
    assert.equal(basic.status, 429, 'Basic auth is throttled the same way');
    assert.equal(basic.body.error!.code, 'RATE_LIMIT_EXCEEDED');
    assert.equal((await login('bystander', 'right-password-2')).status, 200, 'other users are unaffected');
    assert.equal((await login('nobody-at-all', 'x')).status, 401, 'unknown users get the same 401');
  });

  it('blocks a client address after 5 failures across user names, and unblocks after the window', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(() => now);
    for (let i = 0; i < 5; i++) {
      throttle.check(`user${i}`, '203.0.113.7');
      throttle.failed(`user${i}`, '203.0.113.7');
    }
    assert.throws(() => throttle.check('someone-else', '203.0.113.7'), (e: unknown) => e instanceof ServerError && e.code === 'RATE_LIMIT_EXCEEDED');
    throttle.check('someone-else', '198.51.100.1');
    for (let i = 0; i < 10; i++) throttle.failed(`local${i}`, '127.0.0.1');
    throttle.check('fresh', '127.0.0.1');
    now += 61_000;
    throttle.check('someone-else', '203.0.113.7');
  });

  it('a user name is locked for the address that failed, not for everyone (no lockout of others\' accounts); 100 failures from anywhere lock it', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(() => now);
    const refused = (user: string, address: string): boolean => {
      try {
        throttle.check(user, address);
        return false;
      } catch (e) {
        return e instanceof ServerError && e.code === 'RATE_LIMIT_EXCEEDED';
      }
    };
    for (let i = 0; i < 5; i++) throttle.failed('root', '127.0.0.1');
    assert.ok(refused('root', '127.0.0.1'), 'the address that failed is locked out of root');
    assert.ok(!refused('root', '198.51.100.1'), 'root can still log in from elsewhere');
    // A distributed brute force: 4 failures from each of 25 addresses (each under its own limits).
    for (let a = 0; a < 25; a++) for (let i = 0; i < 4; i++) throttle.failed('root', `203.0.113.${a}`);
    assert.ok(refused('root', '198.51.100.1'), '100 failures from anywhere lock the name');
    now += 61_000;
    assert.ok(!refused('root', '198.51.100.1'));
  });

  it('counts an IPv6 client by its /64: fresh addresses from one /64 do not reset the count', () => {
    const throttle = new LoginThrottle(() => 1_000_000);
    for (let i = 0; i < 5; i++) throttle.failed(`user${i}`, `2001:db8:1:2::${(i + 1).toString(16)}`);
    assert.throws(() => throttle.check('other', '2001:db8:1:2:ffff:1:2:3'), (e: unknown) => e instanceof ServerError && e.code === 'RATE_LIMIT_EXCEEDED');
    throttle.check('other', '2001:db8:1:3::1');
    for (let i = 0; i < 10; i++) throttle.failed(`local${i}`, '::1');
    throttle.check('fresh', '::1');
  });

  it('clientKey: IPv4 as is, IPv4-mapped as IPv4, IPv6 as its prefix (64 bits by default) in one spelling', () => {
    assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('2001:db8:1:2::1'), '2001:db8:1:2/64');
    assert.equal(clientKey('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2/64');
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0/64');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0/64');
    assert.equal(clientKey('::1'), '0:0:0:0/64');
    assert.equal(clientKey('::'), '0:0:0:0/64');
    assert.equal(clientKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0/64');
    assert.equal(clientKey('unknown'), 'unknown');
    // client_ipv6_prefix_bits: 128 is each address; a prefix inside a group keeps its leading bits.
    assert.equal(clientKey('2001:db8:1:2::1', 128), '2001:db8:1:2:0:0:0:1/128');
    assert.equal(clientKey('64:ff9b::192.0.2.1', 128), '64:ff9b:0:0:0:0:c000:201/128');
    assert.equal(clientKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200/56');
    assert.equal(clientKey('2001:db8:1:2ff::1', 48), '2001:db8:1/48');
  });

  it('with 128 prefix bits each IPv6 address is its own client, and ::1 is still loopback', () => {
    const throttle = new LoginThrottle(() => 1_000_000, 128);
    for (let i = 0; i < 5; i++) throttle.failed(`user${i}`, '2001:db8:1:2::1');
    assert.throws(() => throttle.check('other', '2001:db8:1:2::1'), (e: unknown) => e instanceof ServerError && e.code === 'RATE_LIMIT_EXCEEDED');
    throttle.check('other', '2001:db8:1:2::2');
    for (let i = 0; i < 10; i++) throttle.failed(`local${i}`, '::1');
    throttle.check('fresh', '::1');
  });
});
