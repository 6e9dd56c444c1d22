/**
 * A property test on names: namespaces, tables and columns get pseudo-random names drawn from
 * PostgreSQL and DuckDB keywords, the dialect's own words, type names, mixed case (quoted and not),
 * 63/64-character names, and plain random ones; rows round-trip through INSERT, SELECT (full, and with
 * WHERE / ORDER BY naming the columns, odd column and table aliases, point lookups), UPDATE, and a live
 * subscription (initial data and a later insert arrive keyed by the right names with the right values).
 * Names the dialect calls invalid (spaces, dots, quotes, Unicode, leading digits, too long, `_` columns,
 * reserved namespaces) must be refused with a 4xx error envelope, never a 500.
 *
 * The rules under test (docs/sql.md, ../shared/sql.md): identifiers match [A-Za-z_][A-Za-z0-9_]*, at
 * most 64 characters, stored lower-case; quoting only lets PostgreSQL's reserved words through (the
 * stored name is still lower-case, and the same spelling finds it again). Aliases are not stored
 * names: any PostgreSQL alias works and comes back exactly as written.
 *
 * Deterministic: NAMES_SEED (default below) fixes every name and value; every failure message
 * names the seed. ITERATIONS plans are generated up front, so the three tests share them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_PASSWORD, TestServer, authHeader, type Auth, type SqlResponse } from './harness.js';
import { LiveClient, type WsMessage } from './ws-client.js';

const SEED = Number(process.env.NAMES_SEED ?? 20_241_201);
const ITERATIONS = 30;
const IDENTIFIER_MAX = 64;
const ROOT = { user: 'root', password: ROOT_PASSWORD };

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Names

/** DuckDB keywords that PostgreSQL takes as plain identifiers. */
const DUCK_WORDS = ['at', 'pivot', 'unpivot', 'qualify', 'positional', 'asof', 'semi', 'anti', 'lambda', 'struct', 'map',
  'list', 'columns', 'glob', 'sample', 'summarize', 'describe', 'install', 'load', 'pragma', 'macro', 'attach', 'export', 'dict'];
/** PostgreSQL reserved words: usable only quoted. */
const PG_RESERVED = ['select', 'from', 'where', 'order', 'group', 'user', 'table', 'limit', 'union', 'all', 'case', 'end',
  'default', 'current_user', 'window', 'natural', 'join', 'left', 'primary', 'check', 'column', 'true', 'null', 'offset',
  'using', 'array', 'do', 'grant', 'with', 'as', 'and', 'not', 'into', 'only', 'unique', 'constraint', 'create', 'when',
  'else', 'distinct', 'having', 'fetch', 'cast', 'collate', 'analyze', 'desc', 'lateral', 'returning', 'bigint', 'int',
  'integer', 'smallint', 'boolean', 'real', 'decimal', 'float', 'time', 'timestamp', 'varchar', 'double'];
/** Type words and the dialect's own words, not PostgreSQL keywords (or unreserved ones). */
const OWN_WORDS = ['text', 'json', 'uuid', 'string', 'bytes', 'blob', 'date', 'serial', 'bigserial', 'auto_increment',
  'namespace', 'storage', 'flush', 'subscribe', 'options', 'kill', 'job', 'live', 'access_level', 'ttl_seconds', 'shared',
  'stream', 'private', 'public', 'restricted', 'dba', 'password', 'role', 'email', 'execute', 'manifest', 'tables', 'users',
  'main', 'temp', 'memory', 'system', 'type', 'flush_policy', 'max_buffer', 'ephemeral'];
const RESERVED_NAMESPACES = ['system', 'information_schema', 'pg_catalog', 'main', 'temp'];
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const TAIL_CHARS = `${LETTERS}0123456789_`;

type Kind = 'namespace' | 'table' | 'column';

interface Name {
  /** As written in CREATE. */
  written: string;
  /** What the server must store and report. */
  stored: string;
  /** Spellings that must refer to it later. */
  spellings: string[];
  category: string;
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function randomWord(rng: Rng, min: number, max: number): string {
  let w = rng.pick([...LETTERS]);
  const len = rng.int(min, max);
  while (w.length < len) w += rng.pick([...TAIL_CHARS]);
  return w;
}

function mixCase(rng: Rng, w: string): string {
  let out = [...w].map((ch) => (rng.chance(0.5) ? ch.toUpperCase() : ch)).join('');
  if (out === out.toLowerCase()) out = out[0]!.toUpperCase() + out.slice(1);
  return out;
}

/** A valid name of one of the categories; the stored form is what the dialect promises. */
function validName(rng: Rng, kind: Kind): Name {
  const categories = ['plain', 'duck-keyword', 'pg-reserved', 'own-word', 'mixed-unquoted', 'mixed-quoted', 'long', 'keyword-mixed-quoted'];
  if (kind !== 'column') categories.push('underscore');
  const category = rng.pick(categories);
  const unquoted = (w: string): Name => ({ written: w, stored: w.toLowerCase(), spellings: [w, w.toUpperCase(), quote(w.toLowerCase())], category });
  switch (category) {
    case 'plain': return unquoted(randomWord(rng, 1, 12));
    case 'duck-keyword': return unquoted(rng.pick(DUCK_WORDS));
    case 'own-word': return unquoted(rng.pick(OWN_WORDS));
    case 'pg-reserved': {
      const w = rng.pick(PG_RESERVED);
      return { written: quote(w), stored: w, spellings: [quote(w)], category };
    }
    case 'keyword-mixed-quoted': {
      const w = rng.pick([...PG_RESERVED, ...DUCK_WORDS]);
      const m = mixCase(rng, w);
      return { written: quote(m), stored: w, spellings: [quote(m), quote(w)], category };
    }
    case 'mixed-unquoted': {
      const m = mixCase(rng, randomWord(rng, 3, 14));
      return { written: m, stored: m.toLowerCase(), spellings: [m, m.toLowerCase(), quote(m.toLowerCase())], category };
    }
    case 'mixed-quoted': {
      const m = mixCase(rng, randomWord(rng, 3, 14));
      return { written: quote(m), stored: m.toLowerCase(), spellings: [quote(m), m.toLowerCase(), quote(m.toLowerCase())], category };
    }
    case 'long': {
      const w = randomWord(rng, rng.pick([IDENTIFIER_MAX - 1, IDENTIFIER_MAX]), IDENTIFIER_MAX);
      const padded = w.length < IDENTIFIER_MAX - 1 ? w + 'x'.repeat(IDENTIFIER_MAX - 1 - w.length) : w;
      return unquoted(padded);
    }
    default: return unquoted(`_${randomWord(rng, 1, 8)}`);
  }
}

/** A name the dialect refuses for `kind`, as written in SQL (quoted where PostgreSQL needs it). */
function invalidName(rng: Rng, kind: Kind): string {
  const quoted = ['my col', 'a"b', 'a.b', 'café', '名前', '😀', '1abc', 'a-b', 'x;y', 'a/b', '../x', 'tab\there', ' lead',
    'trail ', 'x*/y', 'Ünïcødé', 'new\nline', 'a$b', 'per%cent', 'semi;--'];
  const options = [
    ...quoted.map(quote),
    quote(`${randomWord(rng, 2, 6)}${rng.pick([' ', '.', '-', 'é', '#', '@', '!'])}${randomWord(rng, 1, 4)}`),
    'q'.repeat(IDENTIFIER_MAX + 1),
    quote('Q'.repeat(IDENTIFIER_MAX + 1)),
    'a$b',
  ];
  if (kind === 'column') options.push('_seq', '_deleted', `_${randomWord(rng, 1, 6)}`, '"_Mine"');
  if (kind === 'namespace') options.push(...RESERVED_NAMESPACES, ...RESERVED_NAMESPACES.map((n) => quote(n.toUpperCase())));
  return rng.pick(options);
}

/** A valid alias: anything PostgreSQL accepts as a quoted identifier (up to the length limit). */
function oddAlias(rng: Rng): string {
  return rng.pick(['my alias', 'Ünïcødé', 'a"b', 'x.y', 'select', '1st', '名前', '😀 smile', 'MiXeD', 'with space -- dashes',
    '*/', '/*', 'semi;colon', "it's", 'tab\there', 'm_1_live', 'kt_1', mixCase(rng, randomWord(rng, 2, 10)), ' ']);
}

// ---------------------------------------------------------------------------------------------
// Values

type ColType = 'TEXT' | 'INT' | 'BIGINT' | 'BOOLEAN' | 'DOUBLE';
const TEXTS = ['plain', "O'Brien", 'double "quote"', 'semi;colon', '-- not a comment', '/* nor this */', 'back\\slash',
  'ünïcødé', '漢字', '😀 emoji', '', ' ', 'tab\tchar', 'new\nline', "'; DROP TABLE x; --", '$1', '%_like_%'];

interface Value {
  sql: string;
  json: unknown;
}

function randomValue(rng: Rng, type: ColType): Value {
  switch (type) {
    case 'TEXT': {
      const t = rng.chance(0.7) ? rng.pick(TEXTS) : `${rng.pick(TEXTS)}-${rng.int(0, 999)}`;
      return { sql: `'${t.replace(/'/g, "''")}'`, json: t };
    }
    case 'INT': {
      const n = rng.int(-2_147_483_648, 2_147_483_647);
      return { sql: String(n), json: n };
    }
    case 'BIGINT': {
      const digits = rng.int(1, 18);
      let s = String(rng.int(1, 9));
      while (s.length < digits) s += String(rng.int(0, 9));
      const n = BigInt(s) * (rng.chance(0.3) ? -1n : 1n);
      return { sql: n.toString(), json: n.toString() };
    }
    case 'BOOLEAN': {
      const b = rng.chance(0.5);
      return { sql: String(b), json: b };
    }
    case 'DOUBLE': {
      const d = rng.int(-1_000_000, 1_000_000) / 100;
      return { sql: String(d), json: d };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Plans

interface Column {
  name: Name;
  type: ColType;
}

interface Plan {
  iteration: number;
  ns: Name;
  table: Name;
  shared: boolean;
  columns: Column[];
  /** Index of the primary key column (BIGINT). */
  pk: number;
  rows: Value[][];
  /** Later: a row to insert while subscribed (its filter column matches the subscription). */
  liveRow: Value[];
  filterColumn: number;
  filterRow: number;
  update: { row: number; column: number; value: Value };
  invalid: Array<{ kind: Kind; sql: string }>;
  rng: Rng;
}

function spell(rng: Rng, name: Name): string {
  return rng.pick(name.spellings);
}

function makePlans(seed: number): Plan[] {
  const rng = new Rng(seed);
  const plans: Plan[] = [];
  const namespaces = new Map<string, Set<string>>();
  const usedPk = new Set<string>();
  for (let iteration = 0; iteration < ITERATIONS; iteration++) {
    // Reuse a namespace now and then (CREATE NAMESPACE IF NOT EXISTS).
    const ns = validName(rng, 'namespace');
    if (RESERVED_NAMESPACES.includes(ns.stored)) { iteration--; continue; }
    const tables = namespaces.get(ns.stored) ?? new Set<string>();
    namespaces.set(ns.stored, tables);
    let table = validName(rng, 'table');
    for (let tries = 0; tables.has(table.stored) && tries < 50; tries++) table = validName(rng, 'table');
    if (tables.has(table.stored)) { iteration--; continue; }
    tables.add(table.stored);
    const columnCount = rng.int(2, 4);
    const columns: Column[] = [];
    const names = new Set<string>();
    while (columns.length < columnCount) {
      const name = validName(rng, 'column');
      if (names.has(name.stored)) continue;
      names.add(name.stored);
      columns.push({ name, type: columns.length === 0 ? 'BIGINT' : rng.pick(['TEXT', 'INT', 'BIGINT', 'BOOLEAN', 'DOUBLE'] as const) });
    }
    const order = rng.shuffle(columns.map((_, i) => i));
    const shuffled = order.map((i) => columns[i]!);
    const pk = shuffled.indexOf(columns[0]!);
    const uniquePk = (): Value => {
      for (;;) {
        const v = randomValue(rng, 'BIGINT');
        if (!usedPk.has(v.sql)) { usedPk.add(v.sql); return v; }
      }
    };
    const row = (): Value[] => shuffled.map((c, i) => (i === pk ? uniquePk() : randomValue(rng, c.type)));
    const rows = [row(), row(), row()];
    const filterable = shuffled.map((c, i) => ({ c, i })).filter(({ c, i }) => c.type !== 'DOUBLE' && i !== pk);
    if (filterable.length === 0) { iteration--; tables.delete(table.stored); continue; }
    const filterColumn = rng.pick(filterable).i;
    const filterRow = rng.int(0, rows.length - 1);
    const liveRow = row();
    liveRow[filterColumn] = rows[filterRow]![filterColumn]!;
    const nonPk = shuffled.map((_, i) => i).filter((i) => i !== pk && i !== filterColumn);
    const updateColumn = nonPk.length > 0 ? rng.pick(nonPk) : -1;
    const update = { row: rng.int(0, rows.length - 1), column: updateColumn, value: updateColumn >= 0 ? randomValue(rng, shuffled[updateColumn]!.type) : { sql: '', json: null } };
    const invalid: Array<{ kind: Kind; sql: string }> = [];
    for (let k = rng.int(1, 2); k > 0; k--) {
      const kind = rng.pick(['namespace', 'table', 'column'] as const);
      const bad = invalidName(rng, kind);
      const sql = kind === 'namespace' ? `CREATE NAMESPACE ${bad}`
        : kind === 'table' ? `CREATE USER TABLE ${ns.written}.${bad} (id BIGINT PRIMARY KEY, v TEXT)`
          : `CREATE USER TABLE ${ns.written}.bad_${iteration}_${k} (id BIGINT PRIMARY KEY, ${bad} TEXT)`;
      invalid.push({ kind, sql });
    }
    plans.push({ iteration, ns, table, shared: rng.chance(0.3), columns: shuffled, pk, rows, liveRow, filterColumn, filterRow, update, invalid, rng: new Rng(rng.int(1, 2 ** 31)) });
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------
// Running

interface Reply {
  status: number;
  body: SqlResponse | null;
  text: string;
}

async function send(server: TestServer, sql: string, auth: Auth): Promise<Reply> {
  try {
    const res = await server.fetch('/v1/api/sql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeader(auth) },
      body: JSON.stringify({ sql }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let body: SqlResponse | null = null;
    try {
      body = JSON.parse(text) as SqlResponse;
    } catch {
      body = null;
    }
    return { status: res.status, body, text };
  } catch (error) {
    return { status: 0, body: null, text: `no answer: ${(error as Error).message}` };
  }
}

function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function describePlan(p: Plan): string {
  const cols = p.columns.map((c, i) => `${c.name.written} ${c.type}${i === p.pk ? ' PRIMARY KEY' : ''}`).join(', ');
  return `#${p.iteration}: ${p.shared ? 'SHARED' : 'USER'} ${p.ns.written}.${p.table.written} (${cols})`;
}

class Failures {
  readonly list: string[] = [];

  add(plan: Plan | null, step: string, sql: string, detail: string): void {
    this.list.push(`${plan ? describePlan(plan) : ''}\n    ${step}: ${oneLine(sql, 400)}\n    → ${oneLine(detail, 500)}`);
  }

  assertNone(what: string): void {
    const shown = this.list.slice(0, 20).join('\n  ');
    const more = this.list.length > 20 ? `\n  … and ${this.list.length - 20} more` : '';
    assert.ok(this.list.length === 0,
      `${what}: ${this.list.length} failure(s) with seed ${SEED} (rerun: NAMES_SEED=${SEED} node --test packages/server/dist/test/names-property.test.js)\n  ${shown}${more}`);
  }
}

/** The row as the server encodes it, for the columns at `indexes`. */
function expectedCells(row: Value[], indexes: number[]): unknown[] {
  return indexes.map((i) => row[i]!.json);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function byPk(plan: Plan): (a: Value[], b: Value[]) => number {
  return (a, b) => {
    const x = BigInt(a[plan.pk]!.sql);
    const y = BigInt(b[plan.pk]!.sql);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

describe(`names property (seed ${SEED}, ${ITERATIONS} iterations)`, { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: { user: string; password: string };
  const plans = makePlans(SEED);
  /** Iterations whose table exists and holds `rows` (after the update). */
  const ready = new Map<number, Value[][]>();

  before(async () => {
    server = await TestServer.start();
    alice = await server.createUser('alice');
  });
  after(async () => {
    await server.dispose();
  });

  it('names the dialect refuses get a 4xx error envelope, never a 500 and never success', async () => {
    const failures = new Failures();
    await server.ok('CREATE NAMESPACE IF NOT EXISTS refusals');
    for (const plan of plans) {
      for (const { kind, sql } of plan.invalid) {
        // The namespace of a table or column attempt must exist for the refusal to be about the name.
        if (kind !== 'namespace') await send(server, `CREATE NAMESPACE IF NOT EXISTS ${plan.ns.written}`, ROOT);
        const r = await send(server, sql, ROOT);
        if (r.status === 200) failures.add(plan, `invalid ${kind} name accepted`, sql, r.text);
        else if (r.status < 400 || r.status >= 500 || r.body?.error?.code === 'INTERNAL_ERROR') failures.add(plan, `invalid ${kind} name: not a 4xx`, sql, `${r.status} ${r.text}`);
        else if (r.body?.status !== 'error' || typeof r.body.error?.code !== 'string' || !Array.isArray(r.body.results) || r.body.results.length !== 0) {
          failures.add(plan, `invalid ${kind} name: not the error envelope`, sql, `${r.status} ${r.text}`);
        }
      }
    }
    failures.assertNone('invalid names');
  });

  it('valid names round-trip through CREATE, INSERT, SELECT (WHERE, ORDER BY, aliases, point lookups) and UPDATE', async () => {
    const failures = new Failures();
    for (const plan of plans) {
      const rng = plan.rng;
      const writer = plan.shared ? ROOT : alice;
      const ok = async (step: string, sql: string, auth: Auth, check?: (b: SqlResponse) => string | null): Promise<SqlResponse | null> => {
        const r = await send(server, sql, auth);
        if (r.status !== 200 || r.body?.status !== 'success') {
          const kind = r.status >= 500 || r.body?.error?.code === 'INTERNAL_ERROR' ? `${step} (500!)` : step;
          failures.add(plan, kind, sql, `${r.status} ${r.text}`);
          return null;
        }
        const why = check?.(r.body);
        if (why) failures.add(plan, step, sql, `${why}; got ${r.text}`);
        return r.body;
      };
      const nsRef = (): string => spell(rng, plan.ns);
      const tableRef = (): string => `${nsRef()}.${spell(rng, plan.table)}`;
      const col = (i: number): string => spell(rng, plan.columns[i]!.name);
      const stored = plan.columns.map((c) => c.name.stored);
      const rows = plan.rows.map((r) => [...r]);

      if (!(await ok('CREATE NAMESPACE', `CREATE NAMESPACE IF NOT EXISTS ${plan.ns.written}`, ROOT))) continue;
      const defs = plan.columns.map((c, i) => `${c.name.written} ${c.type}${i === plan.pk ? ' PRIMARY KEY' : ''}`).join(', ');
      const create = `CREATE ${plan.shared ? 'SHARED' : 'USER'} TABLE ${plan.ns.written}.${plan.table.written} (${defs})${plan.shared ? " WITH (ACCESS_LEVEL = 'PUBLIC')" : ''}`;
      if (!(await ok('CREATE TABLE', create, ROOT))) continue;
      const described = await send(server, `DESCRIBE TABLE ${tableRef()}`, ROOT);
      if (described.status !== 200) failures.add(plan, 'DESCRIBE TABLE', `DESCRIBE TABLE ${tableRef()}`, `${described.status} ${described.text}`);

      // INSERT with the columns in a random order and spelling (or none: creation order).
      const order = rng.shuffle(plan.columns.map((_, i) => i));
      const insert = rng.chance(0.25)
        ? `INSERT INTO ${tableRef()} VALUES ${rows.map((r) => `(${r.map((v) => v.sql).join(', ')})`).join(', ')}`
        : `INSERT INTO ${tableRef()} (${order.map(col).join(', ')}) VALUES ${rows.map((r) => `(${order.map((i) => r[i]!.sql).join(', ')})`).join(', ')}`;
      if (!(await ok('INSERT', insert, writer, (b) => (b.results[0]?.row_count === 3 ? null : 'not 3 rows inserted')))) continue;

      // SELECT *: stored names in creation order, then the system columns.
      const sorted = [...rows].sort(byPk(plan));
      await ok('SELECT *', `SELECT * FROM ${tableRef()} ORDER BY ${col(plan.pk)}`, alice, (b) => {
        const res = b.results[0]!;
        const names = res.schema?.map((f) => f.name);
        if (!sameJson(names, [...stored, '_seq', '_deleted'])) return `column names ${JSON.stringify(names)}, want ${JSON.stringify([...stored, '_seq', '_deleted'])}`;
        const cells = res.rows?.map((r) => r.slice(0, stored.length));
        const want = sorted.map((r) => expectedCells(r, stored.map((_, i) => i)));
        return sameJson(cells, want) ? null : `rows ${JSON.stringify(cells)}, want ${JSON.stringify(want)}`;
      });

      // Projection with odd aliases, a table alias, WHERE on one column, ORDER BY the key.
      const f = plan.filterColumn;
      const filterValue = rows[plan.filterRow]![f]!;
      const projected = rng.shuffle(plan.columns.map((_, i) => i)).slice(0, rng.int(1, plan.columns.length));
      // Suffixed so that no two output columns share a name.
      const aliases = projected.map((_, k) => (rng.chance(0.6) ? `${oddAlias(rng)}${k}` : null));
      const tableAlias = rng.chance(0.5) ? quote(oddAlias(rng)) : null;
      const ref = (i: number): string => (tableAlias !== null ? `${tableAlias}.${col(i)}` : rng.chance(0.3) ? `${spell(rng, plan.table)}.${col(i)}` : col(i));
      const targets = projected.map((i, k) => `${ref(i)}${aliases[k] !== null ? ` AS ${quote(aliases[k]!)}` : ''}`).join(', ');
      const where = `${ref(f)} = ${filterValue.sql}`;
      const select = `SELECT ${targets} FROM ${tableRef()}${tableAlias !== null ? ` AS ${tableAlias}` : ''} WHERE ${where} ORDER BY ${ref(plan.pk)} DESC`;
      const matching = rows.filter((r) => sameJson(r[f]!.json, filterValue.json)).sort(byPk(plan)).reverse();
      await ok('SELECT with aliases and WHERE', select, alice, (b) => {
        const res = b.results[0]!;
        const names = res.schema?.map((x) => x.name);
        const wantNames = projected.map((i, k) => aliases[k] ?? stored[i]!);
        if (!sameJson(names, wantNames)) return `column names ${JSON.stringify(names)}, want ${JSON.stringify(wantNames)}`;
        const want = matching.map((r) => expectedCells(r, projected));
        return sameJson(res.rows, want) ? null : `rows ${JSON.stringify(res.rows)}, want ${JSON.stringify(want)}`;
      });

      // Point lookup by the key, and an aggregate grouped by a named column.
      const probe = rows[rng.int(0, rows.length - 1)]!;
      const other = plan.columns.findIndex((_, i) => i !== plan.pk);
      await ok('point lookup', `SELECT ${col(other)} FROM ${tableRef()} WHERE ${col(plan.pk)} = ${probe[plan.pk]!.sql}`, alice,
        (b) => (sameJson(b.results[0]!.rows, [[probe[other]!.json]]) ? null : `want ${JSON.stringify([[probe[other]!.json]])}`));
      await ok('GROUP BY', `SELECT ${col(f)}, count(*) AS n FROM ${tableRef()} GROUP BY ${col(f)} HAVING ${col(f)} = ${filterValue.sql}`, alice,
        (b) => (sameJson(b.results[0]!.rows, [[filterValue.json, String(matching.length)]]) ? null : `want ${JSON.stringify([[filterValue.json, String(matching.length)]])}`));

      // UPDATE one named column of one row, by key; then read it back.
      if (plan.update.column >= 0) {
        const target = rows[plan.update.row]!;
        const u = plan.update;
        const updated = await ok('UPDATE', `UPDATE ${tableRef()} SET ${col(u.column)} = ${u.value.sql} WHERE ${col(plan.pk)} = ${target[plan.pk]!.sql}`, writer,
          (b) => (b.results[0]!.row_count === (sameJson(target[u.column]!.json, u.value.json) ? 0 : 1) ? null : 'wrong row_count'));
        if (updated) {
          target[u.column] = u.value;
          await ok('SELECT after UPDATE', `SELECT ${col(u.column)} FROM ${tableRef()} WHERE ${col(plan.pk)} = ${target[plan.pk]!.sql}`, alice,
            (b) => (sameJson(b.results[0]!.rows, [[u.value.json]]) ? null : `want ${JSON.stringify([[u.value.json]])}`));
        }
      }

      // A column that does not exist, spelled oddly: a 4xx, not a 500.
      const missing = `SELECT ${quote(`${oddAlias(rng)} missing`)} FROM ${tableRef()}`;
      const m = await send(server, missing, alice);
      if (!(m.status >= 400 && m.status < 500) || m.body?.status !== 'error') failures.add(plan, 'unknown odd column: want a 4xx', missing, `${m.status} ${m.text}`);
      ready.set(plan.iteration, rows);
    }
    failures.assertNone('valid names');
  });

  it('a live subscription delivers initial data and a later insert keyed by the stored names', async () => {
    const failures = new Failures();
    const c = await LiveClient.connect(server.url, alice);
    try {
      for (const plan of plans) {
        const rows = ready.get(plan.iteration);
        if (rows === undefined) {
          failures.add(plan, 'skipped', '', 'the table was not created and filled in the previous test');
          continue;
        }
        const rng = plan.rng;
        const writer = plan.shared ? ROOT : alice;
        const stored = plan.columns.map((x) => x.name.stored);
        const col = (i: number): string => spell(rng, plan.columns[i]!.name);
        const table = `${spell(rng, plan.ns)}.${spell(rng, plan.table)}`;
        const f = plan.filterColumn;
        const filterValue = rows[plan.filterRow]![f]!;
        const projected = rng.chance(0.5) ? null : rng.shuffle(plan.columns.map((_, i) => i)).slice(0, rng.int(1, plan.columns.length));
        const sql = `SELECT ${projected === null ? '*' : projected.map(col).join(', ')} FROM ${table} WHERE ${col(f)} = ${filterValue.sql}`;
        const cols = projected ?? plan.columns.map((_, i) => i);
        const id = `it${plan.iteration}`;
        const keyed = (row: Value[]): Record<string, unknown> => Object.fromEntries(cols.map((i) => [stored[i]!, row[i]!.json]));
        const strip = (r: Record<string, unknown>): Record<string, unknown> => {
          const { _seq: _s, _deleted: _d, ...rest } = r;
          return rest;
        };
        const sortRows = (xs: Array<Record<string, unknown>>): string[] => xs.map((x) => JSON.stringify(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)))).sort();
        const mark = c.mark();
        const ack = await c.subscribe(id, sql, { batch_size: 2 });
        if (ack.type !== 'subscription_ack') {
          failures.add(plan, `subscribe (${ack.code ?? ack.type})`, sql, JSON.stringify(ack));
          continue;
        }
        const schemaNames = (ack.schema ?? []).map((s) => s.name).filter((n) => n !== '_seq' && n !== '_deleted');
        if (!sameJson(schemaNames, cols.map((i) => stored[i]))) failures.add(plan, 'ack schema names', sql, `${JSON.stringify(schemaNames)}, want ${JSON.stringify(cols.map((i) => stored[i]))}`);
        let initial: WsMessage[] = [];
        try {
          initial = await c.loadAll(id, mark, 3_000);
        } catch (error) {
          failures.add(plan, 'initial data', sql, (error as Error).message);
          continue;
        }
        const got = initial.flatMap((b) => b.rows ?? []);
        for (const r of got) {
          if (typeof r._seq !== 'string') failures.add(plan, 'initial row without _seq', sql, JSON.stringify(r));
        }
        const want = rows.filter((r) => sameJson(r[f]!.json, filterValue.json)).map(keyed);
        if (!sameJson(sortRows(got.map(strip)), sortRows(want))) failures.add(plan, 'initial rows', sql, `${JSON.stringify(got)}, want ${JSON.stringify(want)}`);

        // A later insert that matches the filter arrives with the same names and values.
        const liveRow = plan.liveRow.map((v, i) => (i === f ? filterValue : v));
        const insert = `INSERT INTO ${table} (${plan.columns.map((_, i) => col(i)).join(', ')}) VALUES (${liveRow.map((v) => v.sql).join(', ')})`;
        const from = c.mark();
        const r = await send(server, insert, writer);
        if (r.status !== 200) {
          failures.add(plan, 'INSERT while subscribed', insert, `${r.status} ${r.text}`);
        } else {
          try {
            const change = await c.waitFor((x) => x.subscription_id === id && (x.type === 'change' || x.type === 'error'), 3_000, from);
            const row = change.rows?.[0];
            if (change.type !== 'change' || change.change_type !== 'insert' || row === undefined) failures.add(plan, 'change', sql, JSON.stringify(change));
            else if (!sameJson(sortRows([strip(row)]), sortRows([keyed(liveRow)]))) failures.add(plan, 'change row', sql, `${JSON.stringify(row)}, want ${JSON.stringify(keyed(liveRow))}`);
          } catch (error) {
            failures.add(plan, 'change', sql, (error as Error).message);
          }
        }
        c.send({ type: 'unsubscribe', subscription_id: id });
      }
    } finally {
      c.terminate();
    }
    failures.assertNone('live subscriptions');
  });
});
