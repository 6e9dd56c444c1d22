/**
 * The general read path: bind the parse tree (the bind layer resolves, checks and writes the engine
 * SQL), give each relation slot exactly the rows the caller may see, have the engine's own parser
 * confirm the statement reads nothing else, run it. Table sources are read from the hot mirror
 * (kept in sync with RocksDB); inside a transaction that wrote to a partition, that partition is
 * materialized with the transaction's own writes laid over. SELECT, INSERT ... SELECT, UPDATE and
 * DELETE all read through here; only primary-key point reads take the fast path in select-exec.
 */
import type { SelectStmt } from '@pgsql/types';
import type { DuckDBValue } from '@duckdb/node-api';
import { execError } from '../util/errors.js';
import { partitionFor } from '../auth/access.js';
import { primaryKeyIndex } from '../catalog/types.js';
import type { DuckResult, TempSource } from '../storage/duck/duck-engine.js';
import type { MirrorLease } from '../storage/duck/hot-mirror.js';
import { bindSelect, engineSql, type BoundQuery, type BoundSource } from '../sql/bind/bind-select.js';
import { checkEngineSql, EngineCheckError, VerifiedTemplates, slotPlaceholder } from '../sql/bind/engine-check.js';
import type { RunContext, Services } from './context.js';
import { sourceColumns, streamColumns, withSystemColumns } from './sources.js';
import { systemRelation } from './system-tables.js';

export interface RunQueryOptions {
  /** Hold the mirrors while the query runs, so it sees exactly the commits up to `syncedSeq`. */
  readonly holdMirror?: boolean;
}

/** Binds a SELECT for the request's principal (the only way a parse tree reaches the engine). */
export function bindForRequest(s: Services, ctx: RunContext, select: SelectStmt): BoundQuery {
  return bindSelect(select, {
    catalog: s.catalog,
    principal: ctx.principal,
    namespace: ctx.namespace,
    tableFunctionRowsMax: s.config.resultRowsMax,
    generatedValuesMax: s.config.generatedValuesMax,
  });
}

export async function runQuery(s: Services, ctx: RunContext, select: SelectStmt): Promise<DuckResult>;
export async function runQuery(s: Services, ctx: RunContext, select: SelectStmt, options: RunQueryOptions): Promise<{ result: DuckResult; syncedSeq: bigint | null }>;
export async function runQuery(
  s: Services, ctx: RunContext, select: SelectStmt, options?: RunQueryOptions,
): Promise<DuckResult | { result: DuckResult; syncedSeq: bigint | null }> {
  return runBound(s, ctx, bindForRequest(s, ctx, select), options);
}

export async function runBound(s: Services, ctx: RunContext, bound: BoundQuery): Promise<DuckResult>;
export async function runBound(s: Services, ctx: RunContext, bound: BoundQuery, options?: RunQueryOptions): Promise<DuckResult | { result: DuckResult; syncedSeq: bigint | null }>;
export async function runBound(
  s: Services, ctx: RunContext, bound: BoundQuery, options?: RunQueryOptions,
): Promise<DuckResult | { result: DuckResult; syncedSeq: bigint | null }> {
  await verifyBound(s, ctx, bound);
  const temps: TempSource[] = [];
  const leases: MirrorLease[] = [];
  const relations: string[] = [];
  /** Engine relation name → what the user called it, for error messages. */
  const displayNames = new Map<string, string>();
  try {
    for (const source of bound.sources) {
      const shown = source.kind === 'table' ? `${source.table.namespace}.${source.table.name}` : `system.${source.name}`;
      const relation = await resolveSource(s, ctx, source, bound.includeDeleted, options?.holdMirror === true, leases, temps);
      relations.push(relation);
      displayNames.set(relation, shown);
      displayNames.set(relation.split('.').pop()!, shown);
    }
    const result = await s.duck.query(engineSql(bound, relations), duckParams(ctx.params), temps, ctx.budgets, ctx.caller.id);
    if (result.rows.length > s.config.resultRowsMax) {
      throw execError(`Result has more than ${s.config.resultRowsMax} rows: add a LIMIT or a narrower WHERE`);
    }
    if (options === undefined) return result;
    const synced = leases.map((l) => l.syncedSeq);
    return { result, syncedSeq: synced.length === 0 ? null : synced.reduce((a, b) => (a < b ? a : b)) };
  } catch (error) {
    if (error instanceof Error) error.message = internalNamesHidden(error.message, displayNames, bound.cteNames);
    throw error;
  } finally {
    for (const lease of leases) lease.release();
  }
}

const verified = new VerifiedTemplates(4096);

/**
 * The proof step: DuckDB's own parser reads the statement, its relation slots under placeholder
 * names, and it runs only if it reads nothing but those slots and its generated CTEs. The slots are
 * then filled with relation names (plain identifiers) in exactly the positions that were checked.
 */
async function verifyBound(s: Services, ctx: RunContext, bound: BoundQuery): Promise<void> {
  const slots = bound.sources.map((_, i) => slotPlaceholder(i));
  const text = engineSql(bound, slots);
  if (verified.has(text)) return;
  try {
    checkEngineSql(await s.duck.serialize(text), { relations: new Set(slots), cteNames: bound.cteNames });
  } catch (error) {
    if (error instanceof EngineCheckError) {
      s.log.warn('security: engine check refused a statement', { user: ctx.caller.userId, as_user: ctx.principal.userId, reason: error.reason });
    }
    throw error;
  }
  verified.add(text);
}

/** The engine relation for one slot: a mirror view, or a temp table made for this statement. */
async function resolveSource(
  s: Services, ctx: RunContext, source: BoundSource, includeDeleted: boolean, hold: boolean, leases: MirrorLease[], temps: TempSource[],
): Promise<string> {
  if (source.kind === 'system') {
    const rel = systemRelation(s, source.name, ctx.principal);
    return pushTemp(s, temps, { columns: rel.columns, rows: rel.load === undefined ? rel.rows : await rel.load() });
  }
  const table = source.table;
  const partition = partitionFor(ctx.principal, table);
  if (table.type === 'STREAM') {
    const events = s.streams.read(table, partition);
    return pushTemp(s, temps, { columns: streamColumns(table), rows: events.map((e) => [...e.values, e.seq]) });
  }
  const lease = await s.mirror.acquire(table, partition, hold);
  leases.push(lease);
  if (ctx.tx === null || ctx.tx.overlay(table, partition).length === 0) return includeDeleted ? lease.allName : lease.liveName;
  // The transaction wrote here: its writes laid over the hot rows, merged with the mirror's cold rows.
  const hot = await s.sources.hotWithOverlay(table, partition, ctx.tx);
  const pk = table.columns[primaryKeyIndex(table)]!.name;
  return pushTemp(s, temps, {
    columns: sourceColumns(table), rows: hot.map(withSystemColumns),
    merge: { coldRelation: lease.coldName, pk, liveOnly: !includeDeleted },
  });
}

function pushTemp(s: Services, temps: TempSource[], source: Omit<TempSource, 'name'>): string {
  const name = s.duck.tempName();
  temps.push({ ...source, name });
  return `temp.main.${name}`;
}

/** Engine relation names (`memory.main.m_3_live`, `kt_7`) never reach a client: they say which table instead. */
function internalNamesHidden(message: string, displayNames: ReadonlyMap<string, string>, cteNames: ReadonlyMap<string, string>): string {
  return message
    .replace(/\b(?:(?:memory|temp)\.main\.)?((?:kt|m)_\d+(?:_live|_hot|_cold|_h)?)\b/g, (m, bare: string) => displayNames.get(m) ?? displayNames.get(bare) ?? 'relation')
    .replace(/\bkalam_cte_\d+\b/g, (m) => cteNames.get(m) ?? 'cte');
}

/** JSON params as DuckDB values: numbers, strings, booleans and null pass through (integers past 2^53 as bigints). */
function duckParams(params: readonly unknown[]): DuckDBValue[] {
  return params.map((p, i) => {
    if (p === null || typeof p === 'string' || typeof p === 'number' || typeof p === 'boolean' || typeof p === 'bigint') return p;
    throw execError(`Parameter $${i + 1}: only strings, numbers, booleans and null can be bound in queries`);
  });
}
