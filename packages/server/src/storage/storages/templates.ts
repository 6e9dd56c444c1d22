/**
 * Path templates of a storage (upstream's SHARED_TABLES_TEMPLATE / USER_TABLES_TEMPLATE): where a
 * table's partition lives below the storage's base directory. Validated when a storage is created,
 * rendered for every partition. Rendered paths become directory names and object keys, so the
 * literal parts are restricted to a safe alphabet and every placeholder's value is validated by its
 * owner (identifiers by the catalog, account ids by `isPartitionDirName`).
 */
import { invalidSql } from '../../util/errors.js';

export const DEFAULT_SHARED_TEMPLATE = '{namespace}/{tableName}';
export const DEFAULT_USER_TEMPLATE = '{namespace}/{tableName}/{userId}';

// Upstream accepts these spellings and rewrites them to the canonical ones.
const LEGACY: readonly (readonly [string, string])[] = [
  ['{table_name}', '{tableName}'], ['{table-id}', '{tableName}'], ['{namespace_id}', '{namespace}'],
  ['{namespaceId}', '{namespace}'], ['{namespace-id}', '{namespace}'], ['{user_id}', '{userId}'],
  ['{user-id}', '{userId}'], ['{shard_id}', '{shard}'], ['{shard-id}', '{shard}'],
];
const LITERAL = /^[A-Za-z0-9_.\-/]*$/;
const PLACEHOLDER = /\{[^}]*\}/g;

/** The canonical form of a template (legacy placeholder spellings rewritten, no leading/trailing '/'). */
export function normalizeTemplate(raw: string): string {
  let t = raw.trim();
  for (const [from, to] of LEGACY) t = t.split(from).join(to);
  return t.replace(/^\/+|\/+$/g, '');
}

/**
 * Upstream's rules ({namespace} before {tableName}; for USER tables {userId} required, after
 * {tableName}), plus ours, because a template that let two partitions share a directory would let
 * their manifests overwrite each other: both {namespace} and {tableName} are required for USER
 * tables too, and {userId} must be in the last path segment, {tableName} in an earlier one. {shard} is refused: upstream never
 * substitutes it.
 */
export function validateTemplate(raw: string, forUserTables: boolean): string {
  const t = normalizeTemplate(raw);
  const kind = forUserTables ? 'User table template' : 'Shared table template';
  const allowed = forUserTables ? ['{namespace}', '{tableName}', '{userId}'] : ['{namespace}', '{tableName}'];
  for (const p of t.match(PLACEHOLDER) ?? []) {
    if (p === '{shard}') throw invalidSql(`${kind}: {shard} is not supported`);
    if (!allowed.includes(p)) throw invalidSql(`${kind}: unknown placeholder ${p} (allowed: ${allowed.join(', ')})`);
  }
  const literal = t.replace(PLACEHOLDER, '');
  if (!LITERAL.test(literal)) throw invalidSql(`${kind}: only letters, digits, '_', '-', '.' and '/' may appear outside placeholders`);
  if (t.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw invalidSql(`${kind}: empty, '.' and '..' path segments are not allowed`);
  }
  const ns = t.indexOf('{namespace}');
  const tn = t.indexOf('{tableName}');
  if (ns < 0 && tn < 0) throw invalidSql(`${kind}: Both {namespace} and {tableName} are required`);
  if (ns < 0) throw invalidSql(`${kind}: {namespace} is required`);
  if (tn < 0) throw invalidSql(`${kind}: {tableName} is required`);
  if (ns > tn) throw invalidSql(`${kind}: {namespace} must appear before {tableName}`);
  if (forUserTables) {
    const uid = t.indexOf('{userId}');
    if (uid < 0) throw invalidSql(`${kind}: {userId} is required`);
    if (tn > uid) throw invalidSql(`${kind}: {tableName} must appear before {userId}`);
    // The directory above the users' partitions is the table's own (DROP TABLE removes it whole).
    if (t.indexOf('/', uid) >= 0 || t.lastIndexOf('/') < tn) throw invalidSql(`${kind}: {userId} must be in the last path segment, after the one holding {tableName}`);
  }
  return t;
}

/** The template with the table's names filled in ({userId} left for `userSegment`). */
export function renderTablePath(template: string, namespace: string, tableName: string): string {
  return template.split('{namespace}').join(namespace).split('{tableName}').join(tableName);
}

/**
 * A USER table's rendered template split at the last '/': the directory holding every user's
 * partition, and the last segment's text around {userId} (so partitions can be listed back).
 */
export interface UserPathShape {
  readonly parent: string;
  readonly prefix: string;
  readonly suffix: string;
}

export function userPathShape(renderedUserTemplate: string): UserPathShape {
  const slash = renderedUserTemplate.lastIndexOf('/');
  const parent = slash < 0 ? '' : renderedUserTemplate.slice(0, slash);
  const leaf = renderedUserTemplate.slice(slash + 1);
  const at = leaf.indexOf('{userId}');
  return { parent, prefix: leaf.slice(0, at), suffix: leaf.slice(at + '{userId}'.length) };
}

/** The account id a partition directory name holds, or null when the name does not fit the shape. */
export function userIdOfLeaf(shape: UserPathShape, leaf: string): string | null {
  if (leaf.length <= shape.prefix.length + shape.suffix.length) return null;
  if (!leaf.startsWith(shape.prefix) || !leaf.endsWith(shape.suffix)) return null;
  return leaf.slice(shape.prefix.length, leaf.length - shape.suffix.length);
}
