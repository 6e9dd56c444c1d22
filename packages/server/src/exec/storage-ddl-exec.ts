/**
 * CREATE / ALTER / DROP STORAGE, SHOW STORAGES, STORAGE CHECK <id> and the rows of system.storages.
 * A storage is accepted only after its health check passes (write, read, list, delete), so a table
 * never points at a place its flushes cannot reach. Secrets (CREDENTIALS, and CONFIG's keys and
 * tokens) are shown to the system role only.
 */
import { join, resolve } from 'node:path';
import { isWithin } from '../util/paths.js';
import { denied, execError, invalidSql } from '../util/errors.js';
import { requireAdmin, type Principal } from '../auth/access.js';
import { LOCAL_STORAGE_ID, isAdminRole, tableStorageId, type StorageDef } from '../catalog/types.js';
import type { Statement } from '../sql/statement.js';
import { PROBE_DEADLINE_MS, probeStorage, type StorageHealth } from '../storage/storages/storage-probe.js';
import { s3Settings } from '../storage/storages/s3-object-store.js';
import { validateTemplate } from '../storage/storages/templates.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult, underDdlLock } from './context.js';
import type { SchemaField } from './duck-cells.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

/** Keys of CONFIG/CREDENTIALS JSON whose values are secrets. */
const SECRET_KEY = /secret|password|token|access_key|private|credential/i;
/** System directories a filesystem storage may not live in (upstream's list, plus the obvious ones). */
const SYSTEM_DIRS = ['/etc', '/root', '/var/log', '/proc', '/sys', '/dev', '/boot', '/bin', '/sbin', '/usr', '/lib'];

const field = (name: string, data_type: SchemaField['data_type'], index: number): SchemaField => ({ name, data_type, index });

/** system.storages / SHOW STORAGES columns (upstream's, in its order). */
export const STORAGE_COLUMNS = [
  ['storage_id', 'Text'], ['storage_name', 'Text'], ['description', 'Text'], ['storage_type', 'Text'], ['base_directory', 'Text'],
  ['credentials', 'Json'], ['config_json', 'Json'], ['shared_tables_template', 'Text'], ['user_tables_template', 'Text'],
  ['created_at', 'Timestamp'], ['updated_at', 'Timestamp'],
] as const;

/** Every storage, the built-in 'local' first, as rows of system.storages for `viewer`. */
export function storageRows(s: Pick<Services, 'catalog' | 'cold'>, viewer: Principal): (string | number | boolean | null)[][] {
  const all = [s.cold.locations.storage(LOCAL_STORAGE_ID)!, ...s.catalog.listStorages().filter((d) => d.storageId !== LOCAL_STORAGE_ID)];
  const system = viewer.role === 'system';
  // The server's own paths are for administrators (an attack review: a plain user read the data dir's location).
  const paths = isAdminRole(viewer.role);
  return all.map((d) => [
    d.storageId, d.storageName, d.description, d.storageType, paths || d.storageType !== 'filesystem' ? d.baseDirectory : null,
    d.credentials === null ? null : JSON.stringify(system ? d.credentials : masked(d.credentials)),
    d.config === null ? null : JSON.stringify(system ? d.config : masked(d.config)),
    d.sharedTablesTemplate, d.userTablesTemplate, d.createdAt * 1000, d.updatedAt * 1000,
  ]);
}

function masked(json: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) out[k] = SECRET_KEY.test(k) && v !== null && v !== '' ? '***' : v;
  return out;
}

export function showStorages(s: Services, ctx: RunContext): StatementResult {
  const schema = STORAGE_COLUMNS.map(([name, type], i) => field(name, type, i));
  return rowsResult(ctx, schema, storageRows(s, ctx.principal));
}

export async function createStorage(s: Services, ctx: RunContext, st: Of<'create_storage'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'CREATE STORAGE');
  const exists = (): boolean => st.storageId === LOCAL_STORAGE_ID || s.catalog.storage(st.storageId) !== undefined;
  if (exists()) throw execError(`Storage '${st.storageId}' already exists`);
  let config = jsonObject(st.config, 'CONFIG');
  if (st.region !== null) config = { ...(config ?? {}), region: st.region };
  const now = Date.now();
  const def: StorageDef = {
    storageId: st.storageId,
    storageName: st.storageName ?? st.storageId,
    description: st.description,
    storageType: st.storageType,
    baseDirectory: st.storageType === 'filesystem' ? filesystemDirectory(s, st.baseDirectory) : st.baseDirectory.replace(/\/+$/, ''),
    credentials: jsonObject(st.credentials, 'Credentials'),
    config,
    sharedTablesTemplate: validateTemplate(st.sharedTablesTemplate ?? '{namespace}/{tableName}', false),
    userTablesTemplate: validateTemplate(st.userTablesTemplate ?? '{namespace}/{tableName}/{userId}', true),
    createdAt: now,
    updatedAt: now,
  };
  if (def.storageType === 's3') requireCredentialRules(ctx, def, null);
  // The probe runs outside the DDL lock: a slow storage holds this statement only (PROBE_DEADLINE_MS).
  await requireHealthy(def);
  return underDdlLock(s, ctx, async () => {
    if (exists()) throw execError(`Storage '${st.storageId}' already exists`);
    if (def.storageType === 'filesystem') {
      // Again under the lock: a storage created while this one probed may overlap its directory.
      filesystemDirectory(s, st.baseDirectory);
      // The file engine reads and writes segments only where it was told it may.
      await s.cold.fileEngine.allowDirectories([def.baseDirectory]);
    }
    await s.catalog.putStorage(def);
    return messageResult(ctx, `Storage '${st.storageId}' created successfully`);
  });
}

export async function alterStorage(s: Services, ctx: RunContext, st: Of<'alter_storage'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'ALTER STORAGE');
  const current = s.cold.locations.storage(st.storageId);
  if (current === undefined) throw execError(`Storage '${st.storageId}' not found`);
  const c = st.changes;
  const touchesPlace = c.sharedTablesTemplate !== undefined || c.userTablesTemplate !== undefined || c.config !== undefined || c.credentials !== undefined;
  if (st.storageId === LOCAL_STORAGE_ID && touchesPlace) throw execError("Storage 'local' is built in: only its NAME and DESCRIPTION can be changed");
  const templatesUsed = (): void => {
    const users = tablesUsing(s, st.storageId);
    // Existing partitions were placed by the old templates: new ones would lose sight of them.
    if ((c.sharedTablesTemplate !== undefined || c.userTablesTemplate !== undefined) && users > 0) {
      throw execError(`Cannot change the templates of storage '${st.storageId}': ${users} table(s) use it`);
    }
  };
  templatesUsed();
  const next: StorageDef = {
    ...current,
    storageName: c.storageName ?? current.storageName,
    description: c.description ?? current.description,
    sharedTablesTemplate: c.sharedTablesTemplate === undefined ? current.sharedTablesTemplate : validateTemplate(c.sharedTablesTemplate, false),
    userTablesTemplate: c.userTablesTemplate === undefined ? current.userTablesTemplate : validateTemplate(c.userTablesTemplate, true),
    config: c.config === undefined ? current.config : jsonObject(c.config, 'CONFIG'),
    credentials: c.credentials === undefined ? current.credentials : jsonObject(c.credentials, 'Credentials'),
    updatedAt: Math.max(Date.now(), current.updatedAt + 1),
  };
  if (next.storageType === 's3') {
    if (c.config !== undefined || c.credentials !== undefined) requireCredentialRules(ctx, next, c.credentials === undefined ? current : null);
    else s3Settings(next.baseDirectory, next.config, next.credentials);
  }
  // New connection settings must reach the same place before tables start using them; the probe
  // runs outside the DDL lock (see createStorage).
  if (touchesPlace) await requireHealthy(next);
  return underDdlLock(s, ctx, async () => {
    // Another statement may have changed the storage while this one probed: its change must not be lost.
    if (s.cold.locations.storage(st.storageId)?.updatedAt !== current.updatedAt) {
      throw execError(`Storage '${st.storageId}' was changed by another statement meanwhile: run the ALTER STORAGE again`);
    }
    templatesUsed();
    await s.catalog.putStorage(next);
    return messageResult(ctx, `Storage '${st.storageId}' altered successfully`);
  });
}

/**
 * Validates an S3 storage's settings and who may direct credentials at its endpoint. Stored
 * credentials are shown to role system only; a new CONFIG (endpoint, bucket, region) with the stored
 * CREDENTIALS (`keptFrom`) would send them, signed, wherever a dba points it (an attack review received
 * a system-only session token that way). Without credentials the SDK signs with the server's own
 * environment credentials, which are the operator's. Both need role system; a dba gives the
 * credentials with the new CONFIG.
 */
function requireCredentialRules(ctx: RunContext, def: StorageDef, keptFrom: StorageDef | null): void {
  const settings = s3Settings(def.baseDirectory, def.config, def.credentials);
  if (ctx.principal.role === 'system') return;
  if (settings.accessKeyId === null) {
    throw denied("Permission denied: an S3 storage without access_key_id signs with the server's environment credentials: only role system may create or point one");
  }
  if (keptFrom !== null && keptFrom.credentials !== null) {
    throw denied('Permission denied: a new CONFIG with the stored CREDENTIALS would send them to its endpoint: give CREDENTIALS again in the same statement (or run it as role system)');
  }
}

export async function dropStorage(s: Services, ctx: RunContext, st: Of<'drop_storage'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'DROP STORAGE');
  return underDdlLock(s, ctx, async () => {
    if (st.storageId === LOCAL_STORAGE_ID) throw execError("Storage 'local' is built in and cannot be dropped");
    if (s.catalog.storage(st.storageId) === undefined) {
      if (st.ifExists) return messageResult(ctx, `Storage '${st.storageId}' does not exist (skipped)`);
      throw execError(`Storage '${st.storageId}' not found`);
    }
    const users = tablesUsing(s, st.storageId);
    if (users > 0) throw execError(`Cannot drop storage '${st.storageId}': ${users} table(s) still using it`);
    await s.catalog.dropStorage(st.storageId);
    s.cold.locations.forget(st.storageId);
    return messageResult(ctx, `Storage '${st.storageId}' dropped successfully`);
  });
}

export async function checkStorage(s: Services, ctx: RunContext, st: Of<'check_storage'>): Promise<StatementResult> {
  requireAdmin(ctx.principal, 'STORAGE CHECK');
  const def = s.cold.locations.storage(st.storageId);
  if (def === undefined) throw execError(`Storage '${st.storageId}' not found`);
  const h = await probeStorage(def, st.extended);
  const schema: SchemaField[] = [
    field('storage_id', 'Text', 0), field('status', 'Text', 1), field('readable', 'Boolean', 2), field('writable', 'Boolean', 3),
    field('listable', 'Boolean', 4), field('deletable', 'Boolean', 5), field('latency_ms', 'BigInt', 6), field('total_bytes', 'BigInt', 7),
    field('used_bytes', 'BigInt', 8), field('error', 'Text', 9), field('tested_at', 'Timestamp', 10),
  ];
  return rowsResult(ctx, schema, [[st.storageId, h.status, h.readable, h.writable, h.listable, h.deletable, h.latencyMs,
    h.totalBytes, h.usedBytes, h.error, h.testedAt * 1000]]);
}

/** Upstream's refusal texts, with the probe's findings. */
async function requireHealthy(def: StorageDef): Promise<StorageHealth> {
  const h = await probeStorage(def, false, PROBE_DEADLINE_MS);
  if (h.status === 'healthy') return h;
  if (!h.writable && !h.readable && !h.listable) {
    throw execError(`Storage connectivity check failed (latency ${h.latencyMs} ms): ${h.error ?? 'Unknown connectivity error'}`);
  }
  throw execError(`Storage health check failed (status ${h.status}, readable=${h.readable}, writable=${h.writable}, listable=${h.listable}, `
    + `deletable=${h.deletable}, latency ${h.latencyMs} ms): ${h.error ?? 'Unknown storage health error'}`);
}

function tablesUsing(s: Services, storageId: string): number {
  return s.catalog.tablesIn(null).filter((t) => t.type !== 'STREAM' && tableStorageId(t) === storageId).length;
}

function jsonObject(text: string | null, what: string): Record<string, unknown> | null {
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidSql(`Invalid ${what} JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidSql(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * A filesystem storage's directory, absolute (relative ones are resolved against the server's
 * working directory when the storage is created, and stored so). Refused: NUL, system directories,
 * anything inside the data directory (RocksDB, the remote cache and the secrets live there; its
 * `storage/` is the local storage's), and a directory inside another filesystem storage's or
 * containing it.
 */
function filesystemDirectory(s: Services, raw: string): string {
  if (raw.trim() === '') throw invalidSql('Storage PATH cannot be empty');
  if (raw.includes('\0')) throw invalidSql('Storage PATH cannot contain null bytes');
  const dir = resolve(raw);
  for (const sys of SYSTEM_DIRS) {
    if (dir === sys || dir.startsWith(`${sys}/`)) throw invalidSql(`Storage PATH cannot be in the system directory ${sys}`);
  }
  if (isWithin(dir, s.config.dataDir) && !isWithin(dir, join(s.config.dataDir, 'storage'))) {
    throw invalidSql(`Storage PATH cannot be inside the data directory ${s.config.dataDir} (except below its storage/ directory)`);
  }
  // Two storages over one tree could put two tables' segments and manifests in one directory, and a
  // flush of one would overwrite the other's (an attack review destroyed a user's rows that way).
  const others = [s.cold.locations.storage(LOCAL_STORAGE_ID)!, ...s.catalog.listStorages().filter((d) => d.storageId !== LOCAL_STORAGE_ID)];
  for (const other of others) {
    if (other.storageType !== 'filesystem') continue;
    const base = resolve(other.baseDirectory);
    if (isWithin(dir, base) || isWithin(base, dir)) {
      throw invalidSql(`Storage PATH ${dir} overlaps storage '${other.storageId}' (${base}): a storage's directory may not be inside another's, or contain it`);
    }
  }
  return dir;
}
