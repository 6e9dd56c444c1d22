/** WITH (...) options of CREATE TABLE → validated TableOptions for a table type. */
import { invalidSql } from '../util/errors.js';
import { LOCAL_STORAGE_ID, type AccessLevel, type FlushPolicy, type TableOptions, type TableType } from '../catalog/types.js';
import type { OptionValue } from '../sql/statement.js';

const KNOWN = ['type', 'flush_policy', 'access_level', 'ttl_seconds', 'max_buffer', 'ephemeral', 'deleted_retention_hours', 'storage_id'];
const ACCESS_LEVELS: readonly AccessLevel[] = ['PUBLIC', 'PRIVATE', 'RESTRICTED', 'DBA'];
export const DEFAULT_FLUSH_POLICY: FlushPolicy = Object.freeze({ rows: 10_000, intervalSeconds: 300 });

export function tableTypeOption(options: Readonly<Record<string, OptionValue>>): TableType | null {
  const raw = options.type;
  if (raw === undefined) return null;
  const type = String(raw).toUpperCase();
  if (type !== 'USER' && type !== 'SHARED' && type !== 'STREAM') throw invalidSql(`Unknown table TYPE '${raw}' (USER, SHARED, STREAM)`);
  return type;
}

/**
 * `storageExists` answers for STORAGE_ID (system.storages; 'local' always exists). The option is
 * recorded only when it names another storage, so tables on 'local' keep their stored form.
 */
export function tableOptions(type: TableType, options: Readonly<Record<string, OptionValue>>, storageExists: (id: string) => boolean): TableOptions {
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) throw invalidSql(`Unknown table option '${key.toUpperCase()}' (known: ${KNOWN.map((k) => k.toUpperCase()).join(', ')})`);
  }
  const storageRaw = options.storage_id === undefined ? LOCAL_STORAGE_ID : String(options.storage_id);
  const storageId = storageRaw.toLowerCase() === LOCAL_STORAGE_ID ? LOCAL_STORAGE_ID : storageRaw;
  if (storageId !== LOCAL_STORAGE_ID && !storageExists(storageId)) throw invalidSql(`Storage '${storageRaw}' does not exist`);
  if (type === 'STREAM' && storageId !== LOCAL_STORAGE_ID) throw invalidSql('STREAM tables are never written to storage: STORAGE_ID does not apply');
  const accessRaw = options.access_level;
  if (accessRaw !== undefined && type !== 'SHARED') throw invalidSql('ACCESS_LEVEL applies to SHARED tables only');
  const accessLevel = accessRaw === undefined ? (type === 'SHARED' ? 'PRIVATE' : null) : parseAccessLevel(accessRaw);
  const ttl = optionalPositiveInt(options.ttl_seconds, 'TTL_SECONDS');
  const maxBuffer = optionalPositiveInt(options.max_buffer, 'MAX_BUFFER');
  const ephemeral = options.ephemeral === undefined ? false : parseBool(options.ephemeral, 'EPHEMERAL');
  if (type === 'STREAM' && ttl === null) throw invalidSql('STREAM tables need TTL_SECONDS');
  if (type !== 'STREAM' && (ttl !== null || maxBuffer !== null || options.ephemeral !== undefined)) {
    throw invalidSql('TTL_SECONDS, MAX_BUFFER and EPHEMERAL apply to STREAM tables only');
  }
  if (type === 'STREAM' && options.flush_policy !== undefined) throw invalidSql('STREAM tables are never flushed: FLUSH_POLICY does not apply');
  const flushPolicy = options.flush_policy === undefined ? DEFAULT_FLUSH_POLICY : parseFlushPolicy(String(options.flush_policy));
  const retention = optionalPositiveInt(options.deleted_retention_hours, 'DELETED_RETENTION_HOURS') ?? 168;
  return {
    flushPolicy, accessLevel, ttlSeconds: ttl, maxBuffer, ephemeral, deletedRetentionHours: retention,
    ...(storageId === LOCAL_STORAGE_ID ? {} : { storageId }),
  };
}

function parseAccessLevel(raw: OptionValue): AccessLevel {
  const level = String(raw).toUpperCase() as AccessLevel;
  if (!ACCESS_LEVELS.includes(level)) throw invalidSql(`Unknown ACCESS_LEVEL '${raw}' (${ACCESS_LEVELS.join(', ')})`);
  return level;
}

export function parseFlushPolicy(text: string): FlushPolicy {
  let rows: number | null = null;
  let intervalSeconds: number | null = null;
  for (const part of text.split(',')) {
    const [key, value] = part.split(':').map((s) => s.trim().toLowerCase());
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw invalidSql(`Invalid FLUSH_POLICY '${text}': expected rows:N and/or interval:S with positive integers`);
    if (key === 'rows') rows = n;
    else if (key === 'interval') intervalSeconds = n;
    else throw invalidSql(`Invalid FLUSH_POLICY '${text}': unknown part '${key}'`);
  }
  return { rows, intervalSeconds };
}

function optionalPositiveInt(raw: OptionValue | undefined, name: string): number | null {
  if (raw === undefined) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw invalidSql(`${name} must be a positive integer, got '${raw}'`);
  return n;
}

function parseBool(raw: OptionValue, name: string): boolean {
  if (typeof raw === 'boolean') return raw;
  const text = String(raw).toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw invalidSql(`${name} must be true or false, got '${raw}'`);
}

export function formatFlushPolicy(policy: FlushPolicy): string {
  const parts: string[] = [];
  if (policy.rows !== null) parts.push(`rows:${policy.rows}`);
  if (policy.intervalSeconds !== null) parts.push(`interval:${policy.intervalSeconds}`);
  return parts.join(',');
}
