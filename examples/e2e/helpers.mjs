// Shared by the examples' end-to-end tests: a real KalamDB in a child process (restartable on the same
// port and data dir), the examples' serve.mjs in a child process, and headless Chromium (Debian's
// `chromium` package, driven by playwright-core). Everything started here is stopped by stopAll().
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(REPO, 'packages', 'server', 'dist', 'src', 'main.js');
export const ROOT_PASSWORD = 'root-password-for-e2e';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots and page logs go: $TEST_OUTPUT_DIR/<name>, or <tmp>/kalamdb-e2e/<name>. */
export function outputDir(name) {
  const dir = join(process.env.TEST_OUTPUT_DIR ?? join(tmpdir(), 'kalamdb-e2e'), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export const tempDir = (prefix) => mkdtempSync(join(tmpdir(), prefix));
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` (async, truthy = done) until it holds or `ms` pass; then throws `what`. */
export async function waitFor(what, check, ms = 30_000, every = 100) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (error.fatal) throw error;
      last = error;
    }
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(every);
  }
}

const children = new Set();

/** Ends a child process: SIGTERM, then SIGKILL after `graceMs`. Resolves once it has exited. */
export function stopProcess(child, signal = 'SIGTERM', graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      children.delete(child);
      resolve();
    });
    child.kill(signal);
  });
}

/** Stops every process these helpers started and that is still running. */
export async function stopAll() {
  await Promise.all([...children].map((child) => stopProcess(child, 'SIGTERM', 5_000)));
}

function track(child, output) {
  children.add(child);
  child.stdout?.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk) => output.push(chunk.toString()));
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * A KalamDB server process on a fixed port and data dir (so it can be stopped and started again at
 * the same address, as a server restart). `await db.start()` waits for /health.
 */
export class KalamProcess {
  child = null;
  output = [];

  constructor(port, dataDir) {
    this.port = port;
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${port}`;
  }

  async start() {
    const child = track(spawn(process.execPath, [MAIN, '--port', String(this.port), '--data-dir', this.dataDir], {
      env: { ...process.env, KALAMDB_ROOT_PASSWORD: ROOT_PASSWORD, KALAMDB_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }), this.output);
    this.child = child;
    let exited = null;
    child.once('exit', (code) => { exited = code; });
    await waitFor(`KalamDB on port ${this.port}`, async () => {
      if (exited !== null) throw Object.assign(new Error(`KalamDB exited with ${exited}:\n${this.output.join('')}`), { fatal: true });
      const res = await fetch(`${this.url}/health`);
      return res.ok;
    }, 60_000, 200).catch((error) => {
      throw new Error(`${error.message}\n${this.output.join('')}`);
    });
  }

  async stop(signal = 'SIGTERM') {
    if (this.child !== null) await stopProcess(this.child, signal);
    this.child = null;
  }

  /** SQL over HTTP as `user` (Basic auth); returns rows as objects of the first result, or throws. */
  async rows(sql, params, user = 'root', password = ROOT_PASSWORD) {
    const res = await fetch(`${this.url}/v1/api/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
      body: JSON.stringify({ sql, ...(params ? { params } : {}) }),
    });
    const body = await res.json();
    if (body.status !== 'success') throw new Error(`${sql}: ${body.error?.code}: ${body.error?.message}`);
    const result = body.results[0];
    return (result.rows ?? []).map((row) => Object.fromEntries(result.schema.map((f, i) => [f.name, row[i]])));
  }
}

/**
 * Runs an example's serve.mjs with `args` and waits for the line that names the page to open.
 * Returns { child, base (http://127.0.0.1:<port>), output, exited }.
 */
export async function startExample(name, args, env = {}) {
  const output = [];
  const child = track(spawn(process.execPath, [join(REPO, 'examples', name, 'serve.mjs'), ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  }), output);
  let exited = null;
  child.once('exit', (code) => { exited = code; });
  const port = await waitFor(`${name} to print its URL`, () => {
    if (exited !== null) throw Object.assign(new Error(`${name} exited with ${exited}`), { fatal: true });
    return /open http:\/\/[^:/\s]+:(\d+)\//.exec(output.join(''))?.[1];
  }, 60_000).catch((error) => {
    throw new Error(`${error.message}\n${output.join('')}`);
  });
  return { child, base: `http://127.0.0.1:${port}`, output, get exited() { return exited; } };
}

/** Runs an example's serve.mjs until it exits (or `ms` pass); returns { code, output }. */
export async function runExample(name, args, env = {}, ms = 60_000) {
  const output = [];
  const child = track(spawn(process.execPath, [join(REPO, 'examples', name, 'serve.mjs'), ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  }), output);
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve('timeout'); }, ms);
    child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  return { code, output: output.join('') };
}

/**
 * Why the browser tests are skipped, or undefined when they run. Without Chromium they are skipped,
 * named in the test report with this reason, so that `npm ci && npm test` passes on a machine that
 * does not have it; with KALAMDB_REQUIRE_BROWSER=1 (.ci/run sets it, after installing Chromium) they
 * run and a missing Chromium fails them.
 */
export const BROWSER_SKIP = existsSync(CHROMIUM) || process.env.KALAMDB_REQUIRE_BROWSER === '1'
  ? undefined
  : `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH) to run the browser tests`;

/** Throws, saying how to install it, when there is no Chromium at CHROMIUM. */
export function assertChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: the browser tests need it. Install it with ` +
      '`apt-get update && apt-get install -y --no-install-recommends chromium` (as .ci/run does), or set CHROMIUM_PATH.');
  }
}

/** Headless Chromium from the system package (the tests that call it are skipped by BROWSER_SKIP without it). */
export async function launchBrowser() {
  assertChromium();
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 60_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Closes the browser, giving up after 15 s (a wedged browser must not hang the test run). */
export async function closeBrowser(browser) {
  if (!browser) return;
  let timer;
  await Promise.race([
    browser.close().catch(() => undefined),
    new Promise((resolve) => { timer = setTimeout(resolve, 15_000); }),
  ]);
  clearTimeout(timer); // (playwright-core also kills the browsers it launched when this process exits)
}

/** A page in its own browser context (its own sessionStorage), with its console errors collected. */
export async function openPage(browser, label) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  page.log = [];
  page.on('console', (msg) => page.log.push(`[${label} ${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (error) => page.log.push(`[${label} pageerror] ${error.message}`));
  return page;
}
