/** Identifier and user-id rules shared by every parser and by the filesystem layout. */
import { invalidSql } from '../util/errors.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const IDENTIFIER_LENGTH_MAX = 64;
/** User ids become RocksDB partition ids and, later, directory names: keep them boring. */
const USER_ID = /^[a-z0-9_][a-z0-9_.@-]*$/;
export const USER_ID_LENGTH_MAX = 64;

/** Validates an identifier and returns its stored (lower-case) form. */
export function identifier(raw: string, what = 'identifier'): string {
  if (!IDENTIFIER.test(raw)) {
    throw invalidSql(`Invalid ${what} '${raw}': names must match [A-Za-z_][A-Za-z0-9_]*`);
  }
  if (raw.length > IDENTIFIER_LENGTH_MAX) {
    throw invalidSql(`Invalid ${what} '${raw.slice(0, 80)}': longer than ${IDENTIFIER_LENGTH_MAX} characters`);
  }
  return raw.toLowerCase();
}

/** Validates a user id and returns its stored (lower-case) form. */
export function userId(raw: string): string {
  const id = raw.toLowerCase();
  if (id.length === 0 || id.length > USER_ID_LENGTH_MAX || !USER_ID.test(id) || id.includes('..')) {
    throw invalidSql(
      `Invalid user name '${raw.slice(0, 80)}': 1-${USER_ID_LENGTH_MAX} characters of a-z, 0-9, '_', '.', '@', '-', not starting with '.', '@' or '-'`,
    );
  }
  return id;
}
