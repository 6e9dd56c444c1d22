/**
 * Integration-test harness: starts the real server (`dist/src/main.js`) as a child process on a
 * free port with a temporary data dir, and talks to it over HTTP like any client. Servers can be
 * stopped with SIGTERM or killed with SIGKILL and restarted on the same data dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');
export const ROOT_PASSWORD = 'root-password-for-tests';

export interface SqlResponse {
  status: 'success' | 'error';
  results: Array<{ schema?: Array<{ name: string; data_type: unknown; index: number }>; rows?: unknown[][]; row_count: number; message?: string; as_user: string }>;
  took: number;
  error?: { code: string; message: string };
}

export class TestServer {
  private child: ChildProcess | null = null;
  port = 0;
  readonly output: string[] = [];

  private constructor(readonly dataDir: string, private readonly ownsDir: boolean) {}

  /** Starts a server on a new temp data dir (or the given one). */
  static async start(dataDir?: string, env: Record<string, string> = {}, args: string[] = []): Promise<TestServer> {
    const server = new TestServer(dataDir ?? mkdtempSync(join(tmpdir(), 'kalamdb-test-')), dataDir === undefined);
    await server.launch(env, args);
    return server;
  }

  /** Starts a server with a TOML config file holding `settings` (snake_case keys, e.g. live_subscriptions_per_user_max). */
  static async startWithConfig(settings: Record<string, string | number | boolean>): Promise<TestServer> {
    const dir = mkdtempSync(join(tmpdir(), 'kalamdb-test-'));
    const path = join(dir, 'config.toml');
    writeFileSync(path, Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`).join('\n') + '\n');
    const server = new TestServer(join(dir, 'data'), true);
    server.configDir = dir;
    await server.launch({}, ['--config', path]);
    return server;
  }

  private configDir: string | null = null;

  /** The server process id (e.g. to read its memory use from /proc). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async launch(env: Record<string, string> = {}, args: string[] = []): Promise<void> {
    const child = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', this.dataDir, ...args], {
      env: { ...process.env, KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD, KALAMDB_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      let buffer = '';
      // A start that misses the deadline is killed: a server left running would keep the test process alive (a hang, not a failure).
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`server did not start within 60 s:\n${this.output.join('')}`));
      }, 60_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        this.output.push(text);
        buffer += text;
        const m = /"msg":"listening".*?"port":(\d+)/.exec(buffer);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${this.output.join('')}`));
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Graceful stop (SIGTERM); resolves with the exit code. */
  async stop(): Promise<number | null> {
    return this.signal('SIGTERM');
  }

  /** kill -9: no shutdown code runs. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  private async signal(sig: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    this.child = null;
    return new Promise((resolve) => {
      child.removeAllListeners('exit');
      child.once('exit', (code) => resolve(code));
      child.kill(sig);
    });
  }

  /** Stops the server and removes its data dir. */
  async dispose(): Promise<void> {
    await this.kill();
    if (this.ownsDir) rmSync(this.configDir ?? this.dataDir, { recursive: true, force: true });
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(this.url + path, init);
  }

  /** One unlabelled metric's value from /metrics (read from localhost, which needs no token). */
  async metric(name: string): Promise<number> {
    const text = await (await this.fetch('/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (line === undefined) throw new Error(`${name} is not in /metrics`);
    return Number(line.split(' ')[1]);
  }

  /** POST /v1/api/sql with Basic or Bearer credentials; returns status and parsed body. */
  async sql(sql: string, opts: { auth?: Auth; params?: unknown[]; namespace?: string } = {}): Promise<{ status: number; body: SqlResponse }> {
    const payload: Record<string, unknown> = { sql };
    if (opts.params !== undefined) payload.params = opts.params;
    if (opts.namespace !== undefined) payload.namespace_id = opts.namespace;
    const res = await this.fetch('/v1/api/sql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeader(opts.auth === undefined ? { user: 'root', password: ROOT_PASSWORD } : opts.auth) },
      body: JSON.stringify(payload),
    });
    return { status: res.status, body: (await res.json()) as SqlResponse };
  }

  /** Runs SQL and fails the test unless it succeeded; returns the results. */
  async ok(sql: string, opts: { auth?: Auth; params?: unknown[]; namespace?: string } = {}): Promise<SqlResponse['results']> {
    const { status, body } = await this.sql(sql, opts);
    if (status !== 200 || body.status !== 'success') {
      throw new Error(`expected success for ${sql}\n got ${status} ${JSON.stringify(body)}`);
    }
    return body.results;
  }

  /** Rows of a single SELECT as objects keyed by column name. */
  async rows(sql: string, opts: { auth?: Auth; params?: unknown[]; namespace?: string } = {}): Promise<Record<string, unknown>[]> {
    const [result] = await this.ok(sql, opts);
    const schema = result!.schema!;
    return result!.rows!.map((r) => Object.fromEntries(schema.map((f, i) => [f.name, r[i]])));
  }

  /** POST with a raw body (string sent as is, anything else as JSON); returns status, text and parsed JSON (or null). */
  async post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string; json: unknown }> {
    const res = await this.fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: res.status, text, json };
  }

  /** Waits until a job is no longer running; returns its system.jobs row. */
  async waitForJob(jobId: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return eventually(`job ${jobId}`, async () => {
      const [job] = await this.rows('SELECT * FROM system.jobs WHERE job_id = $1', { params: [jobId] });
      return job !== undefined && job.status !== 'running' ? job : null;
    }, timeoutMs);
  }

  /** STORAGE FLUSH TABLE, then waits for the job and fails unless it completed; returns the job row. */
  async flushAndWait(table: string): Promise<Record<string, unknown>> {
    const [res] = await this.ok(`STORAGE FLUSH TABLE ${table}`);
    const job = await this.waitForJob(jobIdOf(res!.message));
    if (job.status !== 'completed') throw new Error(`flush of ${table} ended ${JSON.stringify(job)}`);
    return job;
  }

  async login(user: string, password: string): Promise<{ access_token: string; refresh_token: string }> {
    const res = await this.fetch('/v1/api/auth/login', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }),
    });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
    return (await res.json()) as { access_token: string; refresh_token: string };
  }

  /** Creates a user (as root) and returns Basic credentials for it. */
  async createUser(name: string, role = 'user', password = `${name}-password-1`): Promise<{ user: string; password: string }> {
    await this.ok(`CREATE USER '${name}' WITH PASSWORD '${password}' ROLE ${role}`);
    return { user: name, password };
  }
}

/** Polls probe until it returns a truthy value, or throws after timeoutMs. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits until the server no longer answers (killed at a KALAMDB_FAILPOINT); throws after `timeoutMs`. */
export async function waitForExit(server: TestServer, timeoutMs = 15_000): Promise<void> {
  await eventually('the server to die at the failpoint', async () => {
    try {
      await server.fetch('/health');
      return false;
    } catch {
      return true; // connection refused: the process is gone
    }
  }, timeoutMs);
}

/** The job id in a "... Job ID: <id>" message. */
export function jobIdOf(message: string | undefined): string {
  const id = /Job ID: (\S+)$/.exec(message ?? '')?.[1];
  if (id === undefined) throw new Error(`no job id in '${message}'`);
  return id;
}

export type Auth = { user: string; password: string } | { token: string } | { header: string } | null;

export function authHeader(auth: Auth): Record<string, string> {
  if (auth === null) return {};
  if ('token' in auth) return { authorization: `Bearer ${auth.token}` };
  if ('header' in auth) return { authorization: auth.header };
  return { authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` };
}

/** Asserts a failed SQL request: HTTP status, the protocol's error envelope, the code and (optionally) the message. */
export function assertError(res: { status: number; body: SqlResponse }, status: number, code: string, message?: RegExp): void {
  const context = JSON.stringify(res.body);
  assert.equal(res.status, status, `HTTP status; body: ${context}`);
  assert.equal(res.body.status, 'error', context);
  assert.deepEqual(res.body.results, [], context);
  assert.equal(typeof res.body.took, 'number', context);
  assert.equal(res.body.error?.code, code, context);
  assert.equal(typeof res.body.error?.message, 'string', context);
  if (message !== undefined) assert.match(res.body.error!.message, message, context);
}
