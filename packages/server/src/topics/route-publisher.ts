/**
 * What a topic's routes publish: which changes a route takes (its WHERE, compiled per table version),
 * the key, payload and user of each message, and its partition. Pure functions of the change: offsets,
 * chunks and the write are the service's (`TopicService.stage`).
 */
import { parseSync } from 'libpg-query';
import type { CommittedChange } from '../storage/hot/committer.js';
import { primaryKeyIndex, qualifiedName, type StoredValue, type TableDef } from '../catalog/types.js';
import { encodeCell } from '../sql/values.js';
import { compilePredicate, type Predicate } from '../live/predicate.js';
import { stringifyJson } from '../util/json.js';
import { invalidSql } from '../util/errors.js';
import type { TopicDef, TopicRoute } from './types.js';

export interface CompiledRoute extends TopicRoute {
  /** The WHERE condition compiled per schema version of the table (rows come in the writer's version). */
  readonly predicates: Map<number, Predicate>;
  readonly topic: TopicDef;
}

/** The routes of `topics` by source table id; routes of tables that no longer exist are left out. */
export function compileRoutes(topics: Iterable<TopicDef>, tableById: (id: number) => TableDef | undefined): Map<number, CompiledRoute[]> {
  const byTable = new Map<number, CompiledRoute[]>();
  for (const topic of topics) {
    for (const route of topic.routes) {
      if (tableById(route.tableId) === undefined) continue;
      const list = byTable.get(route.tableId) ?? [];
      list.push({ ...route, predicates: new Map(), topic });
      byTable.set(route.tableId, list);
    }
  }
  return byTable;
}

/** The route's WHERE for rows of `table`'s version, compiled on first use. */
export function routePredicate(route: CompiledRoute, table: TableDef): Predicate {
  let predicate = route.predicates.get(table.schemaVersion);
  if (predicate === undefined) {
    try {
      predicate = compileRouteWhere(table, route.where);
    } catch {
      // A column the condition names was dropped or renamed: the route matches nothing.
      predicate = () => false;
    }
    route.predicates.set(table.schemaVersion, predicate);
  }
  return predicate;
}

/** Compiles a route's WHERE text against the table's columns (throws INVALID_SQL on a bad condition). */
export function compileRouteWhere(table: TableDef, where: string | null): Predicate {
  if (where === null) return () => true;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let tree: any;
  try {
    tree = parseSync(`SELECT 1 FROM t WHERE ${where}`);
  } catch (error) {
    throw invalidSql(`Invalid WHERE condition for the topic source: ${(error as Error).message}`);
  }
  const whereNode = tree.stmts?.[0]?.stmt?.SelectStmt?.whereClause;
  if (whereNode === undefined || tree.stmts.length !== 1) throw invalidSql('Invalid WHERE condition for the topic source');
  const columns = [...table.columns, { name: '_seq', type: 'BigInt' as const, precision: null, scale: null }];
  return compilePredicate(whereNode, {
    columns: columns as never,
    qualifiers: new Set([table.name, qualifiedName(table)]),
    userId: null,
  });
}

function cellJson(table: TableDef, values: readonly StoredValue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  table.columns.forEach((c, i) => { out[c.name] = encodeCell(c, values[i] ?? null); });
  return out;
}

/** Per table version: `"column":` for each column, or null when a name would make an object's JSON differ. */
const rowJsonHeads = new WeakMap<TableDef, readonly string[] | null>();

/**
 * The JSON of `cellJson(table, values)` plus `_seq`, `_deleted` and `_table` (messageOf's object
 * for full payloads), written directly: building the object and running stringifyJson (a replacer
 * call per value) was most of the cost of a message. Null when an object would order or drop keys
 * differently (an array-index column name, `__proto__`, or a column named like the added keys): the
 * caller builds the object then.
 */
function rowJson(table: TableDef, values: readonly StoredValue[], seq: bigint, deleted: boolean): string | null {
  let heads = rowJsonHeads.get(table);
  if (heads === undefined) {
    const plain = table.columns.every((c) => !/^(0|[1-9]\d*)$/.test(c.name) && !['__proto__', '_seq', '_deleted', '_table'].includes(c.name));
    heads = plain ? table.columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`) : null;
    rowJsonHeads.set(table, heads);
  }
  if (heads === null) return null;
  let out = '';
  for (let i = 0; i < heads.length; i++) {
    const v = encodeCell(table.columns[i]!, values[i] ?? null);
    out += heads[i]! + (v === null ? 'null'
      : typeof v === 'string' ? JSON.stringify(v)
        : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null')
          : typeof v === 'boolean' ? String(v) : stringifyJson(v));
  }
  return `${out},"_seq":"${seq}","_deleted":${deleted},"_table":${JSON.stringify(qualifiedName(table))}}`;
}

/**
 * The partition of a message key: FNV-1a (32 bits) over the key's UTF-8 bytes, modulo the partition
 * count. Stable across restarts and versions (it places stored messages); it replaced a SHA-1 per
 * message (the first 4 bytes of SHA-1 of the key) in the topics benchmark of issue 14, when no
 * deployed data depended on the old placement.
 */
export function keyPartition(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return fnv1aBytes(Buffer.from(key, 'utf8')) % partitions;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

function fnv1aBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function sameCell(a: unknown, b: unknown): boolean {
  return stringifyJson(a) === stringifyJson(b);
}

/** What a route publishes for one change, before it is given an offset. */
export interface MessageFields {
  readonly key: string | null;
  /** JSON text. */
  readonly payload: string;
  readonly user: string | null;
}

/**
 * The message `route` publishes for `change` (`row`: the new values, the old ones for a delete).
 * `userName` names the owner of a USER table's partition (its account id when it has no name).
 */
export function messageOf(route: CompiledRoute, change: CommittedChange, row: readonly StoredValue[],
  userName: (accountId: string) => string | undefined): MessageFields {
  const table = change.table;
  const pkIdx = primaryKeyIndex(table);
  const pkCol = table.columns[pkIdx]!;
  const pkValue = encodeCell(pkCol, row[pkIdx] ?? null);
  const key = pkValue === null ? null : typeof pkValue === 'string' ? pkValue : stringifyJson(pkValue);
  const user = table.type === 'USER' ? (userName(change.partition) ?? change.partition) : null;
  if (route.payload === 'full' || (route.payload === 'diff' && change.kind === 'insert')) {
    const text = rowJson(table, row, change.row.seq, change.kind === 'delete');
    if (text !== null) return { key, payload: text, user };
  }
  let payload: Record<string, unknown>;
  if (route.payload === 'key' || (route.payload === 'diff' && change.kind === 'delete')) payload = { [pkCol.name]: pkValue };
  else if (route.payload === 'full' || change.kind !== 'update' || change.old === null) payload = cellJson(table, row);
  else {
    const after = cellJson(table, row);
    const before = cellJson(table, change.old.values);
    payload = { [pkCol.name]: pkValue };
    const old: Record<string, unknown> = {};
    for (const name of Object.keys(after)) {
      if (name === pkCol.name || sameCell(after[name], before[name])) continue;
      payload[name] = after[name];
      old[name] = before[name];
    }
    payload.old_values = old;
  }
  if (route.payload !== 'key') {
    // As upstream: full and diff payloads carry the row's _seq and _deleted, and name their source
    // table (one topic can have many).
    payload._seq = encodeCell({ type: 'BigInt' }, change.row.seq);
    payload._deleted = change.kind === 'delete';
    payload._table = qualifiedName(table);
  }
  return { key, payload: stringifyJson(payload), user };
}

/** The partition of a message: by its key, or 0 (no key, or a single partition). */
export function partitionOf(topic: TopicDef, key: string | null): number {
  if (topic.partitions <= 1 || key === null) return 0;
  return keyPartition(key, topic.partitions);
}
