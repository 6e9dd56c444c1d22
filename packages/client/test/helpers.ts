/**
 * Shared by the SDK's tests: the real server from packages/server's test harness (its compiled
 * dist/test/harness.js), a free port (so a restarted server comes back on the same URL), polling.
 */
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Server {
  port: number;
  url: string;
  dataDir: string;
  readonly output: string[];
  ok(sql: string, opts?: { params?: unknown[] }): Promise<unknown>;
  rows(sql: string, opts?: { params?: unknown[] }): Promise<Record<string, unknown>[]>;
  createUser(name: string, role?: string, password?: string): Promise<{ user: string; password: string }>;
  login(user: string, password: string): Promise<{ access_token: string; refresh_token: string }>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  launch(env?: Record<string, string>, args?: string[]): Promise<void>;
  dispose(): Promise<void>;
}
interface HarnessModule {
  TestServer: { start(dataDir?: string, env?: Record<string, string>, args?: string[]): Promise<Server> };
  ROOT_PASSWORD: string;
}

export const harnessPath = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'server', 'dist', 'test', 'harness.js');
const harness = (await import(harnessPath)) as HarnessModule;
export const { TestServer, ROOT_PASSWORD } = harness;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns something truthy; fails after `ms`. */
export async function eventually<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A config file holding `settings` (TOML), for `--config`. */
export function configFile(settings: Record<string, string | number | boolean>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-sdk-'));
  const path = join(dir, 'config.toml');
  writeFileSync(path, Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`).join('\n') + '\n');
  return path;
}
