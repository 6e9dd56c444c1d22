/**
 * Running the real `kalam` binary in tests: to completion with piped stdio (`kalam`), as a live
 * process whose output can be waited for (`Session.piped`), or under a real pseudo-terminal
 * (`Session.terminal`, through a small python3 pty relay) so that readline runs in raw mode and
 * Ctrl-C / Ctrl-D arrive as the bytes 0x03 / 0x04, as they do from a keyboard. Waits poll the output
 * instead of sleeping; every wait has a deadline and `close()` kills the child, so no test hangs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Server {
  url: string;
  ok(sql: string): Promise<unknown>;
  rows(sql: string): Promise<Record<string, unknown>[]>;
  dispose(): Promise<void>;
}
interface HarnessModule { TestServer: { start(): Promise<Server> }; ROOT_PASSWORD: string }

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = join(here, '..', 'src', 'main.js');
const harness = (await import(join(here, '..', '..', '..', 'server', 'dist', 'test', 'harness.js'))) as HarnessModule;
export const TestServer = harness.TestServer;
export const ROOT_PASSWORD = harness.ROOT_PASSWORD;

/** The environment for a child: a fresh HOME (history file) and no KALAMDB_* connection settings unless given. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, HOME: mkdtempSync(join(tmpdir(), 'kalam-home-')) };
  for (const key of ['KALAMDB_URL', 'KALAMDB_USER', 'KALAMDB_PASSWORD', 'KALAMDB_TOKEN']) delete base[key];
  return { ...base, ...env };
}

/** Runs kalam to completion with `input` on stdin. */
export function kalam(args: string[], input = '', env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * The pty relay: forks the command onto a new pseudo-terminal (200x40), copies our stdin to it and
 * its output to our stdout, and exits with the command's exit code (128 + signal if killed).
 */
const RELAY = `
import os, pty, sys, select, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 200, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
inputs = [fd, 0]
while True:
    try:
        r, _, _ = select.select(inputs, [], [])
    except InterruptedError:
        continue
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
    if 0 in r:
        data = os.read(0, 65536)
        if not data:
            inputs.remove(0)
        else:
            os.write(fd, data)
_, status = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
`;

const DEFAULT_WAIT_MS = 45_000;

/** A running kalam whose (combined) output can be waited for. */
export class Session {
  private raw = '';
  private exit: number | null | undefined = undefined;
  private readonly closed: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    const collect = (c: Buffer): void => { this.raw += c.toString(); };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.closed = new Promise((resolve) => child.on('close', (code) => { this.exit = code; resolve(code); }));
  }

  /** kalam under a pseudo-terminal: stdin and stdout are a TTY. */
  static terminal(args: string[], env: Record<string, string> = {}): Session {
    return new Session(spawn('python3', ['-c', RELAY, process.execPath, BIN, ...args], { env: childEnv(env) }));
  }

  /** kalam with piped stdio; `input` is written and stdin left open unless `end`. */
  static piped(args: string[], input = '', end = false, env: Record<string, string> = {}): Session {
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv(env) });
    child.stdin.write(input);
    if (end) child.stdin.end();
    return new Session(child);
  }

  /** The output so far, without terminal escape sequences and carriage returns. */
  get text(): string {
    // eslint-disable-next-line no-control-regex
    return this.raw.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\r/g, '');
  }

  /** Current end of the output: pass to waitFor to look only at what comes later. */
  get mark(): number {
    return this.text.length;
  }

  send(data: string): void {
    this.child.stdin!.write(data);
  }

  endInput(): void {
    this.child.stdin!.end();
  }

  /** Waits until the output after `from` matches; returns the offset just past the match. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = DEFAULT_WAIT_MS): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const exited = this.exit !== undefined;
      const text = this.text;
      const m = pattern.exec(text.slice(from));
      if (m) return from + m.index + m[0].length;
      if (exited) throw new Error(`kalam exited (${String(this.exit)}) before printing ${pattern} (after offset ${from}); output:\n${text}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} (after offset ${from}); output:\n${text}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for the primary prompt at the end of the output after `from`. */
  prompt(from = 0): Promise<number> {
    return this.waitFor(/kalam> $/, from);
  }

  /** Waits for the continuation prompt (a statement is being typed) at the end of the output after `from`. */
  continuation(from = 0): Promise<number> {
    return this.waitFor(/ {3}\.\.\. $/, from);
  }

  /** Resolves with the exit code, or throws (after killing the child) when it does not exit in time. */
  async exited(timeoutMs = DEFAULT_WAIT_MS): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`kalam did not exit within ${timeoutMs} ms; output:\n${this.text}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Kills the child if it still runs (a pty child gets SIGHUP when the relay dies). */
  async close(): Promise<void> {
    if (this.exit === undefined) {
      this.child.kill('SIGKILL');
      await this.closed;
    }
  }
}

/** Number of non-overlapping occurrences of `needle` in `text`. */
export function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}
