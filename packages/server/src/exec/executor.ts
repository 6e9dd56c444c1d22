/**
 * Runs a request's statements in order, stopping at the first failure. Owns the request's
 * transaction (BEGIN ... COMMIT/ROLLBACK; an unclosed BEGIN rolls back and fails the request; a failing statement inside
 * a transaction discards all of it) and EXECUTE AS USER.
 */
import { alterStorage, checkStorage, createStorage, dropStorage, showStorages } from './storage-ddl-exec.js';
import { ack, alterTopicAddSource, clearTopic, consume, createTopic, dropTopic } from './topic-exec.js';
import { LimitError, ServerError, assertNever, denied, execError, invalidSql } from '../util/errors.js';
import { ByteBudget, Deadline } from '../util/budget.js';
import { principalOf, requireImpersonation, type Principal } from '../auth/access.js';
import type { Statement } from '../sql/statement.js';
import type { ParseCache } from '../sql/parser.js';
import { identifier } from '../sql/names.js';
import { messageResult, type CallerCheck, type RunContext, type Services, type StatementResult } from './context.js';
import { createNamespace, createTable, describeTable, dropNamespace, dropTable, showNamespaces, showTables } from './ddl-exec.js';
import { alterUser, createUser, dropUser } from './user-exec.js';
import { insert, remove, update } from './dml-exec.js';
import { select } from './select-exec.js';
import { Transaction } from './transaction.js';
import { checkTable, compactTable, compactAll, flushAll, flushTable, killJob, repairTable } from './storage-exec.js';
import { killLive, subscribe } from './live-exec.js';
import { alterTableAccess, grantOrRevoke } from './grant-exec.js';
import { alterTable } from './alter-exec.js';
import { exportUserData, showExport } from './export-exec.js';
import { SchemaChangedError } from '../storage/hot/committer.js';
import { backupDatabase, restoreDatabase, showBackup } from './backup-exec.js';

export interface SqlRequest {
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly namespace: string | null;
  /** The caller's account checked again while the request runs (HTTP requests). */
  readonly callerCheck?: CallerCheck;
}

export class Executor {
  constructor(private readonly services: Services, private readonly parser: ParseCache) {}

  /** Runs every statement; a failure is rethrown with "Statement N failed: " in batches. */
  async execute(request: SqlRequest, caller: Principal): Promise<StatementResult[]> {
    const { config } = this.services;
    if (request.sql.trim() === '') throw new ServerError('EMPTY_SQL', 'SQL is empty');
    if (Buffer.byteLength(request.sql, 'utf8') > config.sqlBytesMax) {
      throw new LimitError('PAYLOAD_TOO_LARGE', 'sql_bytes_max', `SQL text is larger than ${config.sqlBytesMax} bytes (sql_bytes_max)`);
    }
    if (request.params.length > config.paramsMax) {
      // Upstream's words and code (a 400, not a 413: the body may be small; the count is the problem).
      throw new LimitError('SQL_EXECUTION_ERROR', 'params_max',
        `Parameter count exceeded: maximum ${config.paramsMax} parameters allowed, got ${request.params.length}`);
    }
    const statements = this.parser.parse(request.sql);
    if (statements.length === 0) throw new ServerError('EMPTY_SQL', 'SQL holds no statement');
    if (request.params.length > 0 && statements.length > 1) {
      throw new ServerError('PARAMS_WITH_BATCH', 'params can only be used with a single statement');
    }
    const namespace = request.namespace === null ? 'default' : identifier(request.namespace, 'namespace_id');
    const check = request.callerCheck;
    let base = { caller, principal: caller, namespace, params: request.params, budgets: null, callerCheck: check };
    const results: StatementResult[] = [];
    // One budget for the whole response: every statement's rows travel in it together.
    const resultBytes = new ByteBudget(config.resultBytesMax);
    let tx: Transaction | null = null;
    for (let i = 0; i < statements.length; i++) {
      const st = statements[i]!;
      try {
        check?.recheck();
        if (st.kind === 'begin') {
          if (tx !== null) throw execError('A transaction is already open: COMMIT or ROLLBACK it first');
          tx = new Transaction();
          results.push(messageResult(base as RunContext, 'Transaction started'));
        } else if (st.kind === 'commit' || st.kind === 'rollback') {
          if (tx === null) throw execError(`${st.kind.toUpperCase()} without BEGIN`);
          const open: Transaction = tx;
          tx = null;
          if (st.kind === 'commit') await this.services.committer.commit(open.finalWrites());
          results.push(messageResult(base as RunContext, st.kind === 'commit' ? 'Transaction committed' : 'Transaction rolled back'));
        } else if (st.kind === 'use_namespace') {
          // Upstream's USE: unqualified table names in the following statements of this request resolve here.
          if (!this.services.catalog.namespace(st.name)) throw execError(`Namespace '${st.name}' does not exist`);
          base = { ...base, namespace: st.name };
          results.push(messageResult(base as RunContext, `Namespace switched to '${st.name}'`));
        } else {
          if (tx !== null && !isTransactional(st)) throw execError(`${st.kind.toUpperCase()} cannot run inside a transaction`);
          results.push(await this.budgeted(st, { ...base, tx }, resultBytes));
          const account = st.kind === 'execute_as' ? st.inner : st;
          if (account.kind === 'alter_user' && account.userId === caller.userId) check?.changedOwnAccount();
        }
      } catch (error) {
        throw statements.length > 1 ? prefixError(error, i + 1) : error;
      }
    }
    // An unclosed BEGIN rolls back (its writes were never handed to the committer), and the request
    // fails, as upstream: a 200 would tell the client that rows it never committed were saved.
    if (tx !== null) throw execError('Request completed with an open explicit transaction; rolled back automatically');
    return results;
  }

  /**
   * Runs a statement under its budgets: data statements (SELECT, INSERT, UPDATE, DELETE) get the
   * time limit, as a whole (query and building the writes); DDL and admin statements run to the end.
   */
  private async budgeted(st: Statement, ctx: RunContext, resultBytes: ByteBudget): Promise<StatementResult> {
    const metrics = this.services.metrics;
    if (metrics === undefined) return this.budgetedRun(st, ctx, resultBytes);
    const started = performance.now();
    let ok = false;
    try {
      const result = await this.budgetedRun(st, ctx, resultBytes);
      ok = true;
      return result;
    } finally {
      metrics.observeStatement(st.kind === 'execute_as' ? st.inner.kind : st.kind, ok, (performance.now() - started) / 1000);
    }
  }

  private async budgetedRun(st: Statement, ctx: RunContext, resultBytes: ByteBudget): Promise<StatementResult> {
    const deadline = isTransactional(st) ? new Deadline(this.services.config.queryTimeoutMs) : null;
    const mark = resultBytes.used;
    const run = (): StatementResult | Promise<StatementResult> => this.audited(st, { ...ctx, budgets: { deadline, resultBytes } });
    let result: StatementResult;
    for (let attempt = 1; ; attempt++) {
      try {
        result = await run();
        break;
      } catch (error) {
        // An ALTER TABLE committed between binding and commit: the statement (nothing of it was
        // written) binds again against the new schema. Inside a transaction the client retries.
        if (!(error instanceof SchemaChangedError) || ctx.tx !== null || attempt >= SCHEMA_RETRIES) throw error;
      }
    }
    // Only rows kept for the response hold bytes; what a write read is gone once it is applied.
    if (result.rows === undefined) resultBytes.releaseTo(mark);
    return result;
  }

  /** Runs a statement; the ones that change schema, users or rights are recorded in the audit log. */
  private audited(st: Statement, ctx: RunContext): StatementResult | Promise<StatementResult> {
    const target = auditTarget(st);
    // Not async: most statements (reads, DML) are not audited, and an async pass-through costs a
    // promise and extra microtask turns per statement.
    return target === null ? this.run(st, ctx) : this.auditedRun(st, target, ctx);
  }

  /**
   * The record is written after the statement: what the caller is told is what happened to the
   * statement. A record that cannot be written (a full disk) is logged as lost; it must not turn an
   * applied write into a reported failure (a client would retry it) or refuse a read that was served.
   */
  private async auditedRun(st: Statement, target: string, ctx: RunContext): Promise<StatementResult> {
    const record = async (status: 'ok' | 'denied' | 'failed', details: string | null): Promise<void> => {
      const entry = { actor: ctx.caller.userId, effective_user: ctx.principal.userId, action: st.kind, target, status, client_address: null, details };
      try {
        await this.services.audit.record(entry);
      } catch (error) {
        this.services.log.error('audit record lost', { ...entry, details: undefined, error: (error as Error).message });
      }
    };
    let result: StatementResult;
    try {
      result = await this.run(st, ctx);
    } catch (error) {
      const denied = error instanceof ServerError && error.code === 'PERMISSION_DENIED';
      await record(denied ? 'denied' : 'failed', (error as Error).message);
      throw error;
    }
    await record('ok', result.message ?? null);
    return result;
  }

  /** Not async (a pass-through): a callee's synchronous throw reaches the caller's try, which awaits it. */
  private run(st: Statement, ctx: RunContext): StatementResult | Promise<StatementResult> {
    const s = this.services;
    switch (st.kind) {
      case 'create_namespace': return createNamespace(s, ctx, st);
      case 'drop_namespace': return dropNamespace(s, ctx, st);
      case 'show_namespaces': return showNamespaces(s, ctx);
      case 'show_tables': return showTables(s, ctx, st);
      case 'describe_table': return describeTable(s, ctx, st);
      case 'create_table': return createTable(s, ctx, st);
      case 'drop_table': return dropTable(s, ctx, st);
      case 'create_user': return createUser(s, ctx, st);
      case 'alter_user': return alterUser(s, ctx, st);
      case 'drop_user': return dropUser(s, ctx, st);
      case 'select': return select(s, ctx, st);
      case 'insert': return insert(s, ctx, st);
      case 'update': return update(s, ctx, st);
      case 'delete': return remove(s, ctx, st);
      case 'execute_as': return this.executeAs(st, ctx);
      case 'flush_table': return flushTable(s, ctx, st);
      case 'create_storage': return createStorage(s, ctx, st);
      case 'alter_storage': return alterStorage(s, ctx, st);
      case 'drop_storage': return dropStorage(s, ctx, st);
      case 'show_storages': return showStorages(s, ctx);
      case 'check_storage': return checkStorage(s, ctx, st);
      case 'flush_all': return flushAll(s, ctx, st);
      case 'compact_table': return compactTable(s, ctx, st);
      case 'compact_all': return compactAll(s, ctx, st);
      case 'check_table': return checkTable(s, ctx, st);
      case 'repair_table': return repairTable(s, ctx, st);
      case 'kill_job': return killJob(s, ctx, st);
      case 'backup_database': return backupDatabase(s, ctx, st);
      case 'restore_database': return restoreDatabase(s, ctx, st);
      case 'show_backup': return showBackup(s, ctx, st);
      case 'kill_live': return killLive(s, ctx, st);
      case 'subscribe': return subscribe(s, ctx, st);
      case 'grant': case 'revoke': return grantOrRevoke(s, ctx, st);
      case 'alter_table_access': return alterTableAccess(s, ctx, st);
      case 'alter_table': return alterTable(s, ctx, st);
      case 'create_topic': return createTopic(s, ctx, st);
      case 'drop_topic': return dropTopic(s, ctx, st);
      case 'clear_topic': return clearTopic(s, ctx, st);
      case 'alter_topic_add_source': return alterTopicAddSource(s, ctx, st);
      case 'consume': return consume(s, ctx, st);
      case 'ack': return ack(s, ctx, st);
      case 'export_user_data': return exportUserData(s, ctx, st);
      case 'show_export': return showExport(s, ctx, st);
      case 'begin': case 'commit': case 'rollback': case 'use_namespace':
        throw invalidSql(`${st.kind.toUpperCase()} is handled by the request loop`);
      default: return assertNever(st, 'statement');
    }
  }

  private async executeAs(st: Extract<Statement, { kind: 'execute_as' }>, ctx: RunContext): Promise<StatementResult> {
    // Role user may execute only as itself: refused before the lookup, with the same words whether
    // the name exists or not (an attack review listed accounts and found the dba ones through the difference).
    if (ctx.principal.role === 'user' && st.userId !== ctx.principal.userId) {
      throw denied(`Permission denied: role user cannot execute as user '${st.userId}' (only as itself)`);
    }
    const target = this.services.catalog.user(st.userId);
    if (target === undefined) {
      // Same wording whether the user is missing or forbidden would leak less, but admins need the reason.
      throw execError(`User '${st.userId}' does not exist`);
    }
    const principal = principalOf(target);
    requireImpersonation(ctx.principal, principal);
    if (ctx.tx !== null && !isTransactional(st.inner)) throw execError('EXECUTE AS USER with DDL cannot run inside a transaction');
    return this.audited(st.inner, { ...ctx, principal });
  }
}

/** What an audited statement acts on; null for statements that are not audited (reads, DML). */
function auditTarget(st: Statement): string | null {
  const table = (t: { namespace: string | null; name: string }): string => `${t.namespace ?? 'default'}.${t.name}`;
  switch (st.kind) {
    case 'create_namespace': case 'drop_namespace': return st.name;
    case 'create_table': case 'drop_table': case 'alter_table_access': case 'alter_table': case 'repair_table': return table(st.table);
    case 'grant': case 'revoke': return `${table(st.table)} to ${st.userId}`;
    case 'create_topic': case 'drop_topic': case 'clear_topic': case 'alter_topic_add_source': return table(st.topic);
    case 'create_user': case 'drop_user': return st.userId;
    case 'alter_user': return `${st.userId} (${st.field})`;
    case 'execute_as': return st.userId;
    case 'create_storage': case 'alter_storage': case 'drop_storage': return st.storageId;
    case 'kill_job': return st.jobId;
    case 'export_user_data': return 'user data';
    case 'backup_database': case 'restore_database': return st.path;
    case 'kill_live': return st.liveId;
    default: return null;
  }
}

/** Autocommit statements that lost a race with ALTER TABLE run again this many times at most. */
const SCHEMA_RETRIES = 5;

function isTransactional(st: Statement): boolean {
  if (st.kind === 'execute_as') return isTransactional(st.inner);
  return st.kind === 'select' || st.kind === 'insert' || st.kind === 'update' || st.kind === 'delete';
}

function prefixError(error: unknown, n: number): unknown {
  if (error instanceof ServerError) return error.withMessage(`Statement ${n} failed: ${error.message}`);
  return error;
}
