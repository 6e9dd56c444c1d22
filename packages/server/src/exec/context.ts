/** What every statement handler gets: the catalog, storage, engine and the request's state. */
import type { Metrics } from '../util/metrics.js';
import type { LiveTraffic } from '../live/traffic.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Principal } from '../auth/access.js';
import type { Committer } from '../storage/hot/committer.js';
import type { HotStore } from '../storage/hot/hot-store.js';
import type { DuckEngine } from '../storage/duck/duck-engine.js';
import type { HotMirror } from '../storage/duck/hot-mirror.js';
import type { ColdStore } from '../storage/cold/cold-store.js';
import type { FlushService } from '../jobs/flush-service.js';
import type { JobStore } from '../jobs/job-store.js';
import type { UserPurgeService } from '../jobs/user-purge.js';
import type { SnowflakeGenerator } from '../util/snowflake.js';
import type { Mutex } from '../util/mutex.js';
import type { Config } from '../config/config.js';
import type { SchemaField } from './duck-cells.js';
import type { RowSources } from './sources.js';
import type { Transaction } from './transaction.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { StoredValue, TableDef } from '../catalog/types.js';
import type { StreamStore } from '../storage/stream/stream-store.js';
import type { AuditLog } from '../auth/audit-log.js';
import type { Logger } from '../util/log.js';
import type { Budgets } from '../util/budget.js';
import type { TopicService } from '../topics/topic-service.js';
import type { UserExportService } from '../jobs/user-export.js';

export interface Services {
  readonly config: Config;
  readonly catalog: Catalog;
  readonly hot: HotStore;
  readonly committer: Committer;
  readonly duck: DuckEngine;
  readonly mirror: HotMirror;
  readonly cold: ColdStore;
  readonly jobs: JobStore;
  readonly flush: FlushService;
  /** Purges dropped accounts after the grace period; DROP USER wakes it. */
  readonly userPurge: UserPurgeService;
  readonly sources: RowSources;
  readonly seqs: SnowflakeGenerator;
  readonly ddl: Mutex;
  readonly passwords: PasswordHasher;
  /** Failed password checks (logins and ALTER USER ... OLD PASSWORD) throttled together. */
  readonly loginThrottle: LoginThrottle;
  readonly streams: StreamStore;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly topics: TopicService;
  /** Statement latency for /metrics (absent in tools that run the executor without a server). */
  readonly metrics?: Metrics;
  /** EXPORT USER DATA jobs and their archives. */
  readonly exports: UserExportService;
  /** The live-query server; absent until it is attached at start-up. */
  live: LiveControl | null;
  /** The port the server listens on (known once listening; the config may say 0). */
  listenPort: number;
}

/** A row of system.live. */
export interface LiveRow {
  readonly live_id: string;
  readonly connection_id: string;
  readonly subscription_id: string;
  readonly user_id: string;
  readonly namespace_id: string;
  readonly table_name: string;
  readonly query: string;
  readonly options: string | null;
  readonly created_at: number;
  readonly last_change_at: number | null;
  readonly changes: number;
  readonly node_id: string;
}

/** What statements need of the live-query server (set once it is running). */
/** A row of system.sessions: one open WebSocket connection. */
export interface SessionRow {
  readonly session_id: string;
  /** Null until the connection has authenticated. */
  readonly user_id: string | null;
  readonly role: string | null;
  readonly client_address: string;
  readonly connected_at: number;
  readonly subscriptions: number;
  readonly node_id: string;
}

export interface LiveControl {
  /** Messages and bytes sent, slow consumers closed (/metrics, system.stats). */
  readonly traffic: LiveTraffic;
  liveRows(): LiveRow[];
  sessionRows(): SessionRow[];
  /** Hands a STREAM INSERT's events (rows of `table`'s current schema and their `_seq`s) to subscribers, at the end of the event-loop turn. */
  publishStream(table: TableDef, partition: string, seqs: readonly bigint[], rows: readonly (readonly StoredValue[])[]): void;
  /** Whether any subscription covers a partition (EPHEMERAL stream tables drop events otherwise). */
  hasSubscribers(tableId: number, partition: string): boolean;
  /** The user who owns a subscription, or undefined when there is none with that id. */
  liveOwner(liveId: string): string | undefined;
  killLive(liveId: string): boolean;
  /**
   * The live ids (system.live) of the open subscriptions on table `tableId` whose SQL names any of
   * `columnNames` (select list or WHERE; a `*` alone names none): what ALTER TABLE ... DROP/RENAME
   * COLUMN ... RESTRICT refuses to break. Subscriptions not named here follow the change.
   */
  subscriptionsUsingColumns(tableId: number, columnNames: readonly string[]): string[];
}

export interface RunContext {
  /** Who sent the request (audit, impersonation checks). */
  readonly caller: Principal;
  /** Whose rights and partitions the statement uses (differs under EXECUTE AS USER). */
  readonly principal: Principal;
  readonly namespace: string;
  readonly params: readonly unknown[];
  readonly tx: Transaction | null;
  /** The statement's deadline and the request's result bytes; null outside a request (live initial data, jobs). */
  readonly budgets: Budgets | null;
  /** The caller's account checked again while the request runs; absent outside HTTP requests. */
  readonly callerCheck?: CallerCheck;
}

/** How a request's caller is checked again while it runs (the SQL route's; Authenticator.requireUnchanged). */
export interface CallerCheck {
  /** Throws when the caller may no longer act: before each statement and under the DDL lock. */
  recheck(): void;
  /** A statement of this request changed the caller's own account (ALTER USER ... SET PASSWORD): not a reason to stop. */
  changedOwnAccount(): void;
}

/**
 * Runs `fn` under the DDL lock, after checking again that the caller may still act: a statement can
 * wait for the lock behind a long DDL statement, and what it waited behind may be a DROP USER of its
 * caller or a password change (a review of decision 0039).
 */
export function underDdlLock<T>(s: Services, ctx: RunContext, fn: () => Promise<T>): Promise<T> {
  return s.ddl.run(async () => {
    ctx.callerCheck?.recheck();
    return fn();
  });
}

export interface StatementResult {
  readonly schema?: SchemaField[];
  readonly rows?: unknown[][];
  readonly row_count: number;
  readonly message?: string;
  readonly as_user: string;
}

export function messageResult(ctx: RunContext, message: string, rowCount = 0): StatementResult {
  return { row_count: rowCount, message, as_user: ctx.principal.userId };
}

export function rowsResult(ctx: RunContext, schema: SchemaField[], rows: unknown[][]): StatementResult {
  return { schema, rows, row_count: rows.length, as_user: ctx.principal.userId };
}
