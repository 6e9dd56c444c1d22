/**
 * The general read path: bind the parse tree, give each source exactly the rows the caller may
 * see, run the deparsed SQL on DuckDB. Table sources are read from the hot mirror (kept in sync
 * with RocksDB); inside a transaction that wrote to a partition, that partition is materialized
 * with the transaction's own writes laid over. SELECT, INSERT ... SELECT, UPDATE and DELETE all
 * read through here; only primary-key point reads take the fast path in select-exec.
 */
import { deparseSync } from 'pgsql-deparser';
import type { DuckDBValue } from '@duckdb/node-api';
import { execError } from '../util/errors.js';
import { partitionFor } from '../auth/access.js';
import { primaryKeyIndex } from '../catalog/types.js';
import type { PgNode } from '../sql/statement.js';
import type { DuckResult, TempSource } from '../storage/duck/duck-engine.js';
import type { MirrorLease } from '../storage/duck/hot-mirror.js';
import { bindQuery, type BoundSource } from './bind.js';
import type { RunContext, Services } from './context.js';
import { sourceColumns, streamColumns, withSystemColumns } from './sources.js';
import { systemRelation } from './system-tables.js';

export interface RunQueryOptions {
  /** Hold the mirrors while the query runs, so it sees exactly the commits up to `syncedSeq`. */
  readonly holdMirror?: boolean;
}

export async function runQuery(s: Services, ctx: RunContext, selectNode: PgNode): Promise<DuckResult>;
export async function runQuery(s: Services, ctx: RunContext, selectNode: PgNode, options: RunQueryOptions): Promise<{ result: DuckResult; syncedSeq: bigint | null }>;
export async function runQuery(
  s: Services, ctx: RunContext, selectNode: PgNode, options?: RunQueryOptions,
): Promise<DuckResult | { result: DuckResult; syncedSeq: bigint | null }> {
  const bound = bindQuery(selectNode, {
    catalog: s.catalog,
    principal: ctx.principal,
    namespace: ctx.namespace,
    tempName: () => s.duck.tempName(),
  });
  const temps: TempSource[] = [];
  const leases: MirrorLease[] = [];
  const relationNames = new Map<string, string>();
  const displayNames = new Map<string, string>();
  try {
    for (const source of bound.sources) {
      displayNames.set(source.tempName, source.kind === 'table' ? `${source.table.namespace}.${source.table.name}` : `system.${source.name}`);
      const mirrored = await mirrorSource(s, ctx, source, bound.includeDeleted, options?.holdMirror === true);
      if (mirrored !== null) {
        leases.push(mirrored.lease);
        relationNames.set(source.tempName, mirrored.relation);
      } else {
        temps.push(await tempSource(s, ctx, source, bound.includeDeleted));
      }
    }
    renameRelations(bound.ast, relationNames);
    for (const [placeholder, relation] of relationNames) displayNames.set(relation, displayNames.get(placeholder)!);
    const sql = deparseSync({ SelectStmt: bound.ast.SelectStmt ?? bound.ast });
    const result = await s.duck.query(sql, duckParams(ctx.params), temps);
    if (result.rows.length > s.config.resultRowsMax) {
      throw execError(`Result has more than ${s.config.resultRowsMax} rows: add a LIMIT or a narrower WHERE`);
    }
    if (options === undefined) return result;
    const synced = leases.map((l) => l.syncedSeq);
    return { result, syncedSeq: synced.length === 0 ? null : synced.reduce((a, b) => (a < b ? a : b)) };
  } catch (error) {
    if (error instanceof Error) error.message = error.message.replace(/\b(kt|m)_\d+(_live)?\b/g, (m) => displayNames.get(m) ?? m);
    throw error;
  } finally {
    for (const lease of leases) lease.release();
  }
}

async function mirrorSource(
  s: Services, ctx: RunContext, source: BoundSource, includeDeleted: boolean, hold: boolean,
): Promise<{ lease: MirrorLease; relation: string } | null> {
  if (source.kind !== 'table' || source.table.type === 'STREAM') return null;
  const partition = partitionFor(ctx.principal, source.table);
  if (ctx.tx !== null && ctx.tx.overlay(source.table, partition).length > 0) return null;
  const lease = await s.mirror.acquire(source.table, partition, hold);
  return { lease, relation: includeDeleted ? lease.allName : lease.liveName };
}

async function tempSource(s: Services, ctx: RunContext, source: BoundSource, includeDeleted: boolean): Promise<TempSource> {
  if (source.kind === 'system') {
    const rel = systemRelation(s, source.name, ctx.principal);
    return { name: source.tempName, columns: rel.columns, rows: rel.rows };
  }
  const table = source.table;
  if (table.type === 'STREAM') {
    const events = s.streams.read(table, partitionFor(ctx.principal, table));
    return { name: source.tempName, columns: streamColumns(table), rows: events.map((e) => [...e.values, e.seq]) };
  }
  const partition = partitionFor(ctx.principal, table);
  const hot = await s.sources.hotWithOverlay(table, partition, ctx.tx);
  const pk = table.columns[primaryKeyIndex(table)]!.name;
  return {
    name: source.tempName, columns: sourceColumns(table), rows: hot.map(withSystemColumns),
    merge: { coldFiles: s.cold.files(table, partition), pk, liveOnly: !includeDeleted, disjoint: s.cold.disjoint(table, partition) },
  };
}

function renameRelations(node: PgNode, names: ReadonlyMap<string, string>): void {
  if (names.size === 0) return;
  if (Array.isArray(node)) { for (const n of node) renameRelations(n, names); return; }
  if (node === null || typeof node !== 'object') return;
  if (node.RangeVar) {
    const renamed = names.get(node.RangeVar.relname);
    if (renamed !== undefined) node.RangeVar.relname = renamed;
  }
  for (const key in node) renameRelations(node[key], names);
}

/** JSON params as DuckDB values: numbers, strings, booleans and null pass through. */
function duckParams(params: readonly unknown[]): DuckDBValue[] {
  return params.map((p, i) => {
    if (p === null || typeof p === 'string' || typeof p === 'number' || typeof p === 'boolean') return p;
    throw execError(`Parameter $${i + 1}: only strings, numbers, booleans and null can be bound in queries`);
  });
}
