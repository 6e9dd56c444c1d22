/**
 * Log formats: JSON lines for collectors, pretty coloured text for a terminal (`log_format`, `auto`
 * picks by whether stdout is a TTY). The server is started with KALAMDB_LOG_FORMAT=pretty and its
 * real output read; the formatter's rules are checked directly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, prettyLine } from '../src/util/log.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
// eslint-disable-next-line no-control-regex
const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('log formats', () => {
  it('writes pretty lines: time, level, message, key=value fields (strings with spaces quoted)', () => {
    const line = prettyLine(new Date('2026-12-02T12:04:05.123Z'), 'info', 'request', { method: 'POST', route: '/v1/api/sql', status: 200, user: 'a b', big: 12n, gone: undefined });
    assert.equal(plain(line), '12:04:05.123 INFO  request method=POST route=/v1/api/sql status=200 user="a b" big="12"');
    assert.match(line, /\x1b\[36mINFO/);
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l), 'json');
    log.info('x', { n: 1n });
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!) as object), ['ts', 'level', 'msg', 'n']);
  });

  it('the server logs pretty lines with KALAMDB_LOG_FORMAT=pretty', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-log-'));
    const child = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dir], {
      env: { ...process.env, KALAMDB_LOG_FORMAT: 'pretty', KALAMDB_ROOT_PASSWORD: 'root-password-for-tests' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 30_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const found = plain(out).split('\n').find((l) => / INFO  listening /.test(l));
          if (found !== undefined) { clearTimeout(timer); resolve(found); }
        });
        child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}:\n${out}`)); });
      });
      assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO  listening host=127\.0\.0\.1 port=\d+ /);
      assert.ok(!line.includes('{"ts"'));
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
