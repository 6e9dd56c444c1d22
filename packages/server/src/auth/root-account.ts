/**
 * The administrator account `root`: created on the first start, checked against
 * KALAMDB_ROOT_PASSWORD on later ones, and reset offline by `reset-root-password`.
 */
import { randomBytes } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import type { Logger } from '../util/log.js';
import type { SnowflakeGenerator } from '../util/snowflake.js';
import type { PasswordHasher } from './passwords.js';

export const ROOT_USER = 'root';

/**
 * Creates root if it does not exist. When it exists and a root password is configured that no
 * longer matches, says so: the setting only applies to the first start, and silently ignoring it
 * would leave the operator believing it was applied. The password is never changed here.
 */
export async function ensureRoot(catalog: Catalog, passwords: PasswordHasher, seqs: SnowflakeGenerator, rootPassword: string | null, log: Logger): Promise<void> {
  const root = catalog.user(ROOT_USER);
  if (root !== undefined) {
    if (rootPassword !== null && !(await passwords.verify(root.passwordHash, ROOT_USER, rootPassword))) {
      log.warn("KALAMDB_ROOT_PASSWORD (root_password) does not match root's password and was not applied: it only sets the password "
        + 'when root is created. To change it, stop the server and run reset-root-password', {});
    }
    return;
  }
  let password = rootPassword;
  if (password === null) {
    password = randomBytes(18).toString('base64url');
    // Printed once, on the terminal only; the data dir keeps nothing but the hash.
    process.stderr.write(`\nGenerated password for user 'root': ${password}\nSet KALAMDB_ROOT_PASSWORD on first start to choose it.\n\n`);
  }
  await createRoot(catalog, passwords, seqs, password);
  log.info('created root user', {});
}

/**
 * Sets root's password (creating root if it is missing). Tokens issued before stop working: the
 * token generation moves on, as with ALTER USER ... SET PASSWORD.
 */
export async function setRootPassword(catalog: Catalog, passwords: PasswordHasher, seqs: SnowflakeGenerator, password: string): Promise<'created' | 'changed'> {
  const root = catalog.user(ROOT_USER);
  if (root === undefined) {
    await createRoot(catalog, passwords, seqs, password);
    return 'created';
  }
  const passwordHash = await passwords.hash(password);
  await catalog.replaceUser({ ...root, passwordHash, updatedAt: Date.now(), tokenGeneration: root.tokenGeneration + 1 });
  return 'changed';
}

async function createRoot(catalog: Catalog, passwords: PasswordHasher, seqs: SnowflakeGenerator, password: string): Promise<void> {
  const now = Date.now();
  await catalog.createUser({
    userId: ROOT_USER, role: 'system', passwordHash: await passwords.hash(password), email: null, createdAt: now, updatedAt: now, tokenGeneration: 1,
  }, seqs.next());
}
