/**
 * Runs the examples of the user documentation against a real server (used by docs-examples.test.ts
 * and readme-quickstart.test.ts). A documentation file's ```sql and ```sh blocks run in document
 * order against one fresh server per file; every statement and command must succeed unless marked.
 *
 * What runs:
 * - ```sql: split into statements (`;` outside strings, quoted identifiers and comments); each is one
 *   POST /v1/api/sql as root (password DOCS_ROOT_PASSWORD), except that BEGIN ... COMMIT/ROLLBACK
 *   goes as one request (a transaction lives within one request). Every statement runs, also after a
 *   failure, so one report lists every broken statement of a file.
 * - ```sh / ```bash / ```shell: the block is a bash script (`set -e -o pipefail`) run in a sandbox
 *   directory that looks like the repository root (its entries are symlinked; `./data` is the test
 *   server's data dir). `curl` is a wrapper: `localhost:8080` becomes the test server, and the answer
 *   must be HTTP 2xx and, when it is JSON with a `status` field, `success` (or `healthy`).
 *   `npx kalam ...` runs node_modules/.bin/kalam (what npx runs) with `localhost:8080`, also as the
 *   default URL, pointing at the test server; it must exit 0. `npm ...` and other `npx ...` lines are
 *   not run (starting, building and testing the repository is the quick-start test's job) and are
 *   listed in the report. Shell variables set in one block are visible in the later blocks of the
 *   file, as in one terminal.
 * - Other fences (json, ts, js, toml, text, ...) are not run here.
 *
 * Markers: an HTML comment line `<!-- docs-test: KEYWORD ARGS -->` directly above a fence (no blank
 * line between; several may follow each other) changes how that block runs:
 *   skip REASON            do not run the block (listed in the report with the reason)
 *   expect-error CODE      every statement / curl / kalam of the block must fail with CODE (an
 *                          error code such as INVALID_SQL, or an HTTP status such as 404)
 *   as USER:PASSWORD       run a sql block as that user instead of root
 *   setup COMMANDS         hidden lines run before the block (SQL as root for sql blocks, bash for sh)
 *   stdin TEXT             a sh block's standard input (default: empty)
 *   server-stopped         run a sh block while the server is stopped (offline commands on ./data);
 *                          the server is started again afterwards
 * In a sql block, a statement whose line ends with the comment `-- error: CODE ...` must fail with
 * CODE (the rest of the comment is free text). A marker that is not directly above a fence, or an
 * unknown keyword, fails the file. Grammar synopses belong in ```text fences, not in ```sql.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer } from './harness.js';

/** The repository root (this file is packages/server/dist/test/docs-runner.js). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
/** Root's password on the servers examples run against: the one the README tells newcomers to set. */
export const DOCS_ROOT_PASSWORD = 'change-me-now';
const BLOCK_TIMEOUT_MS = 60_000;
const SHELL_LANGS = new Set(['sh', 'bash', 'shell']);
const KEYWORDS = new Set(['skip', 'expect-error', 'as', 'setup', 'stdin', 'server-stopped']);

export interface Marker { readonly keyword: string; readonly arg: string; readonly line: number }

export interface Block {
  readonly lang: string;
  /** 1-based line of the opening fence; the block's first line is fenceLine + 1. */
  readonly fenceLine: number;
  readonly lines: readonly string[];
  readonly markers: readonly Marker[];
}

export interface Problem { readonly line: number; readonly message: string }

export interface FileReport {
  readonly file: string;
  /** "file:line: statement → what went wrong", one per failure. */
  readonly failures: string[];
  /** "file:line: what was not run and why". */
  readonly skipped: string[];
  /** Statements and commands that ran and passed. */
  passed: number;
}

/** Fenced blocks and the markers above them; problems for orphan or unknown markers and unclosed fences. */
export function extractBlocks(text: string): { blocks: Block[]; problems: Problem[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const problems: Problem[] = [];
  let pending: Marker[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const marker = /^\s*<!--\s*docs-test:\s*(\S+)\s*(.*?)\s*-->\s*$/.exec(line);
    if (marker !== null) {
      const keyword = marker[1]!;
      if (!KEYWORDS.has(keyword)) problems.push({ line: i + 1, message: `unknown docs-test marker '${keyword}' (known: ${[...KEYWORDS].join(', ')})` });
      pending.push({ keyword, arg: marker[2]!, line: i + 1 });
      continue;
    }
    const fence = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (fence !== null) {
      const indent = fence[1]!.length;
      const ticks = fence[2]!;
      const close = new RegExp(`^\\s*${ticks[0] === '`' ? '`' : '~'}{${ticks.length},}\\s*$`);
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !close.test(lines[j]!)) {
        const l = lines[j]!;
        body.push(l.slice(Math.min(indent, l.length - l.trimStart().length)));
        j++;
      }
      if (j === lines.length) problems.push({ line: i + 1, message: 'code fence is never closed' });
      blocks.push({ lang: fence[3]!.toLowerCase(), fenceLine: i + 1, lines: body, markers: pending });
      pending = [];
      i = j;
      continue;
    }
    if (pending.length > 0) {
      for (const m of pending) problems.push({ line: m.line, message: `docs-test marker '${m.keyword}' is not directly above a code fence` });
      pending = [];
    }
  }
  for (const m of pending) problems.push({ line: m.line, message: `docs-test marker '${m.keyword}' is not directly above a code fence` });
  return { blocks, problems };
}

export interface SqlStatement {
  readonly sql: string;
  /** 1-based line in the block where the statement starts. */
  readonly line: number;
  /** From a trailing `-- error: CODE` comment on the statement's last line. */
  readonly expectError: string | null;
}

/**
 * Splits SQL text into statements at `;` outside quotes, dollar quotes and comments; a statement's
 * trailing comment on the line of its `;` may say `error: CODE`. Comment-only pieces are dropped.
 */
export function splitSqlStatements(text: string): SqlStatement[] {
  const out: SqlStatement[] = [];
  let start = 0;
  let startLine = 1;
  let line = 1;
  let i = 0;
  const finish = (end: number): void => {
    const raw = text.slice(start, end);
    if (stripComments(raw).trim() === '') return;
    // The statement's line is the first one holding code (not blank, not only a comment).
    const rawLines = raw.split('\n');
    let k = 0;
    while (k < rawLines.length - 1 && stripComments(rawLines[k]!).trim() === '') k++;
    const trailing = /^[ \t]*--\s*error:\s*([A-Za-z0-9_]+)/.exec(text.slice(end + 1).split('\n')[0] ?? '');
    const last = /--\s*error:\s*([A-Za-z0-9_]+)[^\n]*$/.exec(raw.trimEnd().split('\n').pop()!);
    out.push({ sql: raw.trim(), line: startLine + k, expectError: trailing?.[1] ?? last?.[1] ?? null });
  };
  const skipTo = (stop: number): void => {
    line += (text.slice(i, stop).match(/\n/g) ?? []).length;
    i = stop;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (c === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i);
      i = eol === -1 ? text.length : eol;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      skipTo(end === -1 ? text.length : end + 2);
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length) {
        if (text[j] === c) { if (text[j + 1] === c) { j += 2; continue; } break; }
        j++;
      }
      skipTo(Math.min(j + 1, text.length));
      continue;
    }
    const dollar = c === '$' ? /^\$[A-Za-z_]*\$/.exec(text.slice(i)) : null;
    if (dollar !== null) {
      const end = text.indexOf(dollar[0], i + dollar[0].length);
      skipTo(end === -1 ? text.length : end + dollar[0].length);
      continue;
    }
    if (c === ';') {
      finish(i);
      // The trailing comment on this line belongs to this statement, not to the next one.
      const eol = text.indexOf('\n', i);
      const tail = text.slice(i + 1, eol === -1 ? text.length : eol);
      i = /^\s*--/.test(tail) ? (eol === -1 ? text.length : eol) : i + 1;
      start = i;
      startLine = line;
      continue;
    }
    i++;
  }
  finish(text.length);
  return out;
}

function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

/** Statements grouped into requests: BEGIN ... COMMIT/ROLLBACK/END together, everything else alone. */
export function sqlRequests(statements: readonly SqlStatement[]): SqlStatement[] {
  const out: SqlStatement[] = [];
  let tx: SqlStatement[] | null = null;
  for (const st of statements) {
    const first = /^\s*(\w+)/.exec(stripComments(st.sql))?.[1]?.toUpperCase() ?? '';
    if (tx === null && (first === 'BEGIN' || first === 'START')) tx = [];
    if (tx === null) { out.push(st); continue; }
    tx.push(st);
    if (first === 'COMMIT' || first === 'ROLLBACK' || first === 'END') {
      out.push({ sql: tx.map((s) => s.sql).join(';\n'), line: tx[0]!.line, expectError: tx.find((s) => s.expectError !== null)?.expectError ?? null });
      tx = null;
    }
  }
  if (tx !== null) out.push(...tx);
  return out;
}

function oneLine(text: string, max = 160): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function markerArg(block: Block, keyword: string): string | null {
  const m = block.markers.find((x) => x.keyword === keyword);
  return m === undefined ? null : m.arg;
}

/** Where and how a file's shell blocks run. */
export interface ShellContext {
  /** Working directory of the blocks (the repository root, or a sandbox that looks like it). */
  readonly cwd: string;
  /** Directory for the runner's files (records, bodies, shell state). */
  readonly workDir: string;
  /** Port that replaces 8080 in URLs. */
  port(): number;
}

/** A documentation file's blocks, run against a fresh server in a sandbox. */
export async function runDocFile(path: string, display: string): Promise<FileReport> {
  const report: FileReport = { file: display, failures: [], skipped: [], passed: 0 };
  const { blocks, problems } = extractBlocks(readFileSync(path, 'utf8'));
  for (const p of problems) report.failures.push(`${display}:${p.line}: ${p.message}`);
  const runnable = blocks.filter((b) => b.lang === 'sql' || SHELL_LANGS.has(b.lang));
  if (runnable.length === 0) return report;
  const sandbox = mkdtempSync(join(tmpdir(), 'kalamdb-docs-'));
  for (const entry of readdirSync(REPO_ROOT)) {
    if (entry === 'data' || entry === '.git') continue;
    symlinkSync(join(REPO_ROOT, entry), join(sandbox, entry));
  }
  const workDir = join(sandbox, '.docs-test');
  mkdirSync(workDir);
  const env = { KALAMDB_ROOT_PASSWORD: DOCS_ROOT_PASSWORD };
  let server: TestServer | null = null;
  try {
    server = await TestServer.start(join(sandbox, 'data'), env);
    const ctx: ShellContext = { cwd: sandbox, workDir, port: () => server!.port };
    for (const block of runnable) {
      const skip = markerArg(block, 'skip');
      if (skip !== null) {
        report.skipped.push(`${display}:${block.fenceLine}: ${block.lang} block skipped (marker): ${skip || 'no reason given'}`);
        continue;
      }
      if (block.lang === 'sql') await runSqlBlock(server, block, display, report);
      else if (markerArg(block, 'server-stopped') !== null) {
        await server.stop();
        try {
          await runShellBlock(ctx, block, display, report);
        } finally {
          await server.launch(env);
        }
      } else await runShellBlock(ctx, block, display, report);
    }
  } finally {
    await server?.dispose();
    rmSync(sandbox, { recursive: true, force: true });
  }
  return report;
}

async function runSqlBlock(server: TestServer, block: Block, display: string, report: FileReport): Promise<void> {
  const as = markerArg(block, 'as');
  let auth: { user: string; password: string } = { user: 'root', password: DOCS_ROOT_PASSWORD };
  if (as !== null) {
    const colon = as.indexOf(':');
    if (colon <= 0) {
      report.failures.push(`${display}:${block.fenceLine}: marker 'as' needs USER:PASSWORD (got '${as}')`);
      return;
    }
    auth = { user: as.slice(0, colon), password: as.slice(colon + 1) };
  }
  const blockError = markerArg(block, 'expect-error');
  const setup = markerArg(block, 'setup');
  const root = { user: 'root', password: DOCS_ROOT_PASSWORD };
  const requests: { st: SqlStatement; line: number; auth: typeof auth }[] = [];
  if (setup !== null) {
    const line = block.markers.find((m) => m.keyword === 'setup')!.line;
    for (const st of sqlRequests(splitSqlStatements(setup))) requests.push({ st: { ...st, expectError: null }, line, auth: root });
  }
  for (const st of sqlRequests(splitSqlStatements(block.lines.join('\n')))) {
    requests.push({ st: { ...st, expectError: st.expectError ?? blockError }, line: block.fenceLine + st.line, auth });
  }
  for (const { st, line, auth } of requests) {
    const where = `${display}:${line}: ${oneLine(st.sql)}`;
    let status: number;
    let body: { status?: string; error?: { code?: string; message?: string } } | null;
    try {
      const res = await server.sql(st.sql, { auth });
      status = res.status;
      body = res.body as typeof body;
    } catch (error) {
      report.failures.push(`${where}\n    → request failed: ${(error as Error).message}`);
      continue;
    }
    const got = body?.status === 'success' ? 'success' : `HTTP ${status} ${body?.error?.code}: ${body?.error?.message}`;
    if (st.expectError === null) {
      if (status === 200 && body?.status === 'success') report.passed++;
      else report.failures.push(`${where}\n    → ${got}`);
    } else if (body?.status === 'error' && (body.error?.code === st.expectError || String(status) === st.expectError)) {
      report.passed++;
    } else {
      report.failures.push(`${where}\n    → expected error ${st.expectError}, got ${got}`);
    }
  }
}

/**
 * bash functions that make a block's commands testable (`@{` stands for bash's `${`, which a
 * template literal would take). Records (tab-separated lines) go to
 * $DOCS_DIR/records: `FAIL <script line> <command> <reason>`, `SKIP <script line> <command>`,
 * `PASS <script line>`, `ERR <script line> <exit code> <command>`.
 */
const PRELUDE = String.raw`
set -eE -o pipefail
__docs_baseline=" $(compgen -v | tr '\n' ' ') "
if [ -f "$DOCS_DIR/state" ]; then source "$DOCS_DIR/state"; fi
__docs_save() {
  local v d
  for v in $(compgen -v); do
    case "$__docs_baseline" in *" $v "*) continue;; esac
    case "$v" in __docs*|DOCS_*|BASH*|_*|PIPESTATUS|FUNCNAME|LINENO|RANDOM|SECONDS|OPTIND|OPTARG|REPLY|COLUMNS|LINES) continue;; esac
    d=$(declare -p "$v" 2>/dev/null) || continue
    case "$d" in "declare -"*r*" "*) continue;; esac
    printf '%s\n' "$d"
  done > "$DOCS_DIR/state.new" && mv "$DOCS_DIR/state.new" "$DOCS_DIR/state"
}
trap __docs_save EXIT
trap '__docs_rc=$?; printf "ERR\t%s\t%s\t%s\n" "$LINENO" "$__docs_rc" "$(printf %s "$BASH_COMMAND" | tr "\n\t" "  ")" >> "$DOCS_DIR/records"' ERR
__docs_rec() { printf '%s\n' "$1" >> "$DOCS_DIR/records"; }
__docs_url() { local a=$1; a=@{a//localhost:8080/127.0.0.1:$DOCS_PORT}; printf '%s' "@{a//127.0.0.1:8080/127.0.0.1:$DOCS_PORT}"; }
__docs_cmd() { printf '%s' "$*" | tr '\n\t' '  '; }
# Prints why a curl answer is wrong, or nothing. The server's JSON is compact, so the envelope's
# status is the body's first field.
__docs_verdict() {
  local rc=$1 st=$2 body
  body=$(head -c 400 "$3" | tr '\n\t' '  ')
  if [ "$rc" != 0 ]; then echo "curl exited with $rc (HTTP $st)"; return; fi
  if [ -n "@{DOCS_EXPECT_ERROR:-}" ]; then
    if [ "$st" -lt 400 ] || { [ "$st" != "$DOCS_EXPECT_ERROR" ] && [[ $body != *"\"code\":\"$DOCS_EXPECT_ERROR\""* ]] && [[ $body != *"\"error\":\"$DOCS_EXPECT_ERROR\""* ]]; }; then
      echo "expected error $DOCS_EXPECT_ERROR, got HTTP $st $body"
    fi
    return
  fi
  if [ "$st" -lt 200 ] || [ "$st" -gt 299 ]; then echo "HTTP $st $body"; return; fi
  if [[ $body =~ ^[[:space:]]*\{\"status\":\"([a-z_]*)\" ]] && [ "@{BASH_REMATCH[1]}" != success ] && [ "@{BASH_REMATCH[1]}" != healthy ]; then
    echo "status @{BASH_REMATCH[1]}: $body"
  fi
}
curl() {
  local line=@{BASH_LINENO[0]} a st rc out verdict
  local args=()
  for a in "$@"; do args+=("$(__docs_url "$a")"); done
  out=$(mktemp "$DOCS_DIR/body.XXXXXX")
  st=$(command curl "@{args[@]}" -o "$out" -w '%{http_code}') && rc=0 || rc=$?
  cat "$out"
  verdict=$(__docs_verdict "$rc" "$st" "$out")
  if [ -n "$verdict" ]; then
    __docs_rec "FAIL	$line	$(__docs_cmd curl "$@")	$verdict"
    return 1
  fi
  __docs_rec "PASS	$line"
}
npx() {
  local line=@{BASH_LINENO[0]}
  if [ "@{1:-}" = kalam ]; then shift; __docs_kalam "$line" "$@"; return; fi
  __docs_rec "SKIP	$line	$(__docs_cmd npx "$@")"
}
npm() { __docs_rec "SKIP	@{BASH_LINENO[0]}	$(__docs_cmd npm "$@")"; }
__docs_kalam() {
  local line=$1 a rc err
  shift
  local args=()
  for a in "$@"; do args+=("$(__docs_url "$a")"); done
  if [ ! -e node_modules/.bin/kalam ]; then
    __docs_rec "FAIL	$line	$(__docs_cmd npx kalam "$@")	node_modules/.bin/kalam does not exist in $PWD"
    return 1
  fi
  err=$(mktemp "$DOCS_DIR/stderr.XXXXXX")
  KALAMDB_URL=$(__docs_url "@{KALAMDB_URL:-http://localhost:8080}") node node_modules/.bin/kalam "@{args[@]}" 2>"$err" && rc=0 || rc=$?
  cat "$err" >&2
  if [ -n "@{DOCS_EXPECT_ERROR:-}" ]; then
    if [ "$rc" = 0 ] || ! grep -q "ERROR $DOCS_EXPECT_ERROR" "$err"; then
      __docs_rec "FAIL	$line	$(__docs_cmd npx kalam "$@")	expected error $DOCS_EXPECT_ERROR, got exit code $rc: $(tr '\n' ' ' < "$err")"
      return 1
    fi
  elif [ "$rc" != 0 ]; then
    __docs_rec "FAIL	$line	$(__docs_cmd npx kalam "$@")	exit code $rc: $(tr '\n' ' ' < "$err")"
    return 1
  fi
  __docs_rec "PASS	$line"
}
`.replaceAll('@{', '${');

/** Runs one shell block; records passes, failures (with the documentation line) and skipped commands. */
export async function runShellBlock(ctx: ShellContext, block: Block, display: string, report: FileReport): Promise<void> {
  const dir = ctx.workDir;
  writeFileSync(join(dir, 'prelude.sh'), PRELUDE);
  writeFileSync(join(dir, 'records'), '');
  // Script line → documentation line (line 1 sources the prelude).
  const map: number[] = [0, block.fenceLine];
  const script = ['source "$DOCS_DIR/prelude.sh"'];
  const expect = markerArg(block, 'expect-error');
  if (expect !== null) { script.push(`DOCS_EXPECT_ERROR=${shellQuote(expect)}`); map.push(block.fenceLine); }
  const setup = block.markers.find((m) => m.keyword === 'setup');
  if (setup !== undefined) { script.push(setup.arg); map.push(setup.line); }
  block.lines.forEach((l, i) => { script.push(l); map.push(block.fenceLine + 1 + i); });
  writeFileSync(join(dir, 'block.sh'), script.join('\n') + '\n');
  const stdin = markerArg(block, 'stdin');
  writeFileSync(join(dir, 'stdin'), stdin === null ? '' : `${stdin}\n`);
  // A newcomer's shell: none of the server's or the CLI's variables are set unless the docs set them.
  // HOME is the runner's: the CLI keeps its history there.
  mkdirSync(join(dir, 'home'), { recursive: true });
  const env: Record<string, string | undefined> = { ...process.env, HOME: join(dir, 'home'), DOCS_DIR: dir, DOCS_PORT: String(ctx.port()) };
  for (const name of Object.keys(env)) if (name.startsWith('KALAMDB_')) delete env[name];
  const result = await runBash(join(dir, 'block.sh'), join(dir, 'stdin'), ctx.cwd, env);
  const docLine = (scriptLine: number): number => map[scriptLine] ?? block.fenceLine;
  /**
   * The command as written in the docs: bash reports a command spanning several lines at one of
   * them, so walk back to the line naming the command (at most 10 lines), and on over `\` ends.
   */
  const source = (scriptLine: number, command: string): { line: number; text: string } => {
    const word = command.split(' ')[0] ?? '';
    let first = scriptLine;
    for (let l = scriptLine; l >= 2 && l >= scriptLine - 10; l--) {
      if (script[l - 1]?.includes(word)) { first = l; break; }
    }
    let last = scriptLine;
    while (last < script.length && script[last - 1]!.trimEnd().endsWith('\\')) last++;
    return { line: docLine(first), text: oneLine(script.slice(first - 1, last).join(' '), 400) };
  };
  const records = readFileSync(join(dir, 'records'), 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
  let failed = false;
  for (const r of records) {
    if (r[0] === 'PASS') report.passed++;
    else if (r[0] === 'SKIP') report.skipped.push(`${display}:${source(Number(r[1]), r[2] ?? '').line}: not run here: ${r[2]}`);
    else if (r[0] === 'FAIL') {
      failed = true;
      const at = source(Number(r[1]), r[2] ?? '');
      report.failures.push(`${display}:${at.line}: ${at.text}\n    → ${r[3]}`);
    }
  }
  if (result.timedOut) {
    report.failures.push(`${display}:${block.fenceLine}: the block did not finish within ${BLOCK_TIMEOUT_MS / 1000} s (killed)\n${tail(result.stderr)}`);
  } else if (result.code !== 0 && !failed) {
    const err = records.find((r) => r[0] === 'ERR');
    const line = err === undefined ? block.fenceLine : docLine(Number(err[1]));
    report.failures.push(`${display}:${line}: ${oneLine(err?.[3] ?? 'the block', 400)}\n    → exited with ${err?.[2] ?? result.code}\n${tail(result.stderr)}`);
  } else if (result.code === 0 && !failed && !records.some((r) => r[0] === 'PASS')
    && block.lines.some((l) => l.trim() !== '' && !/^\s*(#|npm\s)/.test(l))) {
    report.passed++; // plain commands only (no curl or kalam), all fine
  }
}

function tail(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-8);
  return lines.map((l) => `      ${l}`).join('\n');
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** bash SCRIPT with stdin from a file, in its own process group, killed (with its children) on timeout. */
function runBash(script: string, stdinFile: string, cwd: string, env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `exec bash ${shellQuote(script)} < ${shellQuote(stdinFile)}`], {
      cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, BLOCK_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      // Whatever the block left running in its process group goes too.
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* none left */ }
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** README.md and every .md under docs/, relative to the repository root, in a stable order. */
export function documentationFiles(root = REPO_ROOT): string[] {
  const out = ['README.md'];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) out.push(path);
    }
  };
  if (existsSync(join(root, 'docs'))) walk('docs');
  return out;
}
