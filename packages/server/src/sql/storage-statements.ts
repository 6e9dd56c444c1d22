/**
 * Storage DDL in upstream's grammar: CREATE STORAGE (clauses in any order), ALTER STORAGE ... SET,
 * DROP STORAGE [IF EXISTS], STORAGE CHECK id [EXTENDED]. Values are quoted strings; TYPE may be
 * quoted or bare. JSON, templates and reachability are the executor's business.
 */
import { invalidSql } from '../util/errors.js';
import type { Cursor } from './parser.js';
import type { AlterStorageSpec, Statement } from './statement.js';

/** A storage id becomes a directory name (the remote cache) and a catalog key. */
const STORAGE_ID = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;

const CREATE_CLAUSES = [
  'TYPE', 'NAME', 'DESCRIPTION', 'PATH', 'BASE_DIRECTORY', 'BUCKET', 'REGION', 'CREDENTIALS', 'CONFIG',
  'SHARED_TABLES_TEMPLATE', 'USER_TABLES_TEMPLATE',
] as const;
type CreateClause = typeof CREATE_CLAUSES[number];

const ALTER_CLAUSES: Readonly<Record<string, keyof AlterStorageSpec>> = {
  NAME: 'storageName', DESCRIPTION: 'description', SHARED_TABLES_TEMPLATE: 'sharedTablesTemplate',
  USER_TABLES_TEMPLATE: 'userTablesTemplate', CONFIG: 'config', CREDENTIALS: 'credentials',
};

function storageId(c: Cursor): string {
  const id = c.nameOrString('storage id');
  if (!STORAGE_ID.test(id)) throw invalidSql(`Invalid storage id '${id}': letters, digits, '_' and '-', at most 64`);
  return id;
}

export function parseCreateStorage(c: Cursor): Statement {
  c.expectWord('CREATE'); c.expectWord('STORAGE');
  const id = storageId(c);
  const clauses = new Map<CreateClause, string>();
  while (!c.atEnd()) {
    const word = c.peekWord(0);
    const clause = CREATE_CLAUSES.find((k) => k === word);
    if (clause === undefined) {
      const t = c.peek()!;
      throw invalidSql(`Unexpected '${t.value}' at position ${t.start + 1} in CREATE STORAGE (clauses: ${CREATE_CLAUSES.join(', ')})`);
    }
    c.next();
    if (clauses.has(clause)) throw invalidSql(`${clause} given twice in CREATE STORAGE`);
    clauses.set(clause, clause === 'TYPE' ? c.nameOrString('storage type') : c.string(clause));
  }
  const type = clauses.get('TYPE');
  if (type === undefined) throw invalidSql('CREATE STORAGE needs TYPE filesystem or TYPE s3');
  const storageType = type.toLowerCase();
  if (storageType === 'gcs' || storageType === 'azure') throw invalidSql(`Storage type '${type}' is not supported by this server (filesystem, s3)`);
  if (storageType !== 'filesystem' && storageType !== 's3') throw invalidSql(`Invalid storage type '${type}'. Must be 'filesystem', 's3', 'gcs', or 'azure'`);
  let baseDirectory: string | undefined;
  if (storageType === 'filesystem') {
    baseDirectory = clauses.get('PATH') ?? clauses.get('BASE_DIRECTORY');
    if (baseDirectory === undefined) throw invalidSql('CREATE STORAGE ... TYPE filesystem needs PATH or BASE_DIRECTORY');
  } else {
    const bucket = clauses.get('BUCKET');
    baseDirectory = bucket === undefined ? clauses.get('BASE_DIRECTORY') : bucket.startsWith('s3://') ? bucket : `s3://${bucket}`;
    if (baseDirectory === undefined) throw invalidSql('CREATE STORAGE ... TYPE s3 needs BUCKET or BASE_DIRECTORY \'s3://bucket/prefix\'');
  }
  return {
    kind: 'create_storage',
    storageId: id,
    storageType,
    storageName: clauses.get('NAME') ?? null,
    description: clauses.get('DESCRIPTION') ?? null,
    baseDirectory,
    region: clauses.get('REGION') ?? null,
    credentials: clauses.get('CREDENTIALS') ?? null,
    config: clauses.get('CONFIG') ?? null,
    sharedTablesTemplate: clauses.get('SHARED_TABLES_TEMPLATE') ?? null,
    userTablesTemplate: clauses.get('USER_TABLES_TEMPLATE') ?? null,
  };
}

export function parseAlterStorage(c: Cursor): Statement {
  c.expectWord('ALTER'); c.expectWord('STORAGE');
  const id = storageId(c);
  const changes: Record<string, string> = {};
  while (!c.atEnd()) {
    if (c.peek()?.value === ',') c.next();
    c.expectWord('SET');
    const word = c.peekWord(0) ?? '';
    const field = ALTER_CLAUSES[word];
    if (field === undefined) throw invalidSql(`ALTER STORAGE can SET ${Object.keys(ALTER_CLAUSES).join(', ')}; found '${c.peek()?.value ?? 'end of statement'}'`);
    c.next();
    if (field in changes) throw invalidSql(`SET ${word} given twice in ALTER STORAGE`);
    changes[field] = c.string(word);
  }
  if (Object.keys(changes).length === 0) throw invalidSql('ALTER STORAGE needs at least one SET clause');
  return { kind: 'alter_storage', storageId: id, changes };
}

export function parseDropStorage(c: Cursor): Statement {
  c.expectWord('DROP'); c.expectWord('STORAGE');
  const ifExists = c.acceptWords('IF', 'EXISTS');
  const id = storageId(c);
  c.end();
  return { kind: 'drop_storage', storageId: id, ifExists };
}

export function parseCheckStorage(c: Cursor): Statement {
  c.expectWord('STORAGE'); c.expectWord('CHECK');
  const id = storageId(c);
  const extended = c.acceptWords('EXTENDED');
  c.end();
  return { kind: 'check_storage', storageId: id, extended };
}
