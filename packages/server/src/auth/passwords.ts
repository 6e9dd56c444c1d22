/**
 * Password hashing with argon2id on libuv's thread pool (never on the event loop). Verified Basic
 * credentials are remembered briefly (keyed by a salted SHA-256 of the pair) so scripts using Basic
 * auth do not pay ~10 ms of argon2 per request; a password change invalidates the entry.
 */
import { hash, verify } from '@node-rs/argon2';

// Algorithm.Argon2id; the package's const enum cannot be imported under verbatimModuleSyntax.
const ARGON2ID = 2;
import { createHash, randomBytes } from 'node:crypto';
import { invalidSql } from '../util/errors.js';
import { PASSWORD_LENGTH_MIN } from '../config/config.js';

export { PASSWORD_LENGTH_MIN };
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_ENTRIES_MAX = 10_000;

export class PasswordHasher {
  private readonly salt = randomBytes(16);
  private readonly verified = new Map<string, number>();

  async hash(password: string): Promise<string> {
    if (password.length < PASSWORD_LENGTH_MIN) {
      throw invalidSql(`Password too short: at least ${PASSWORD_LENGTH_MIN} characters`);
    }
    return hash(password, { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 });
  }

  /** Checks a password against a stored hash (or against a dummy hash, to keep timing uniform). */
  async verify(storedHash: string | null, userId: string, password: string): Promise<boolean> {
    const cacheKey = storedHash === null ? null : this.cacheKey(storedHash, userId, password);
    if (cacheKey !== null) {
      const until = this.verified.get(cacheKey);
      if (until !== undefined && until > Date.now()) return true;
    }
    const ok = await verify(storedHash ?? (await this.dummyHash()), password).catch(() => false);
    if (ok && cacheKey !== null && storedHash !== null) {
      if (this.verified.size >= VERIFIED_ENTRIES_MAX) this.verified.clear();
      this.verified.set(cacheKey, Date.now() + VERIFIED_TTL_MS);
    }
    return ok && storedHash !== null;
  }

  private dummy: Promise<string> | null = null;
  private dummyHash(): Promise<string> {
    this.dummy ??= hash(randomBytes(16).toString('hex'), { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    return this.dummy;
  }

  private cacheKey(storedHash: string, userId: string, password: string): string {
    return createHash('sha256').update(this.salt).update(storedHash).update('\0').update(userId).update('\0').update(password).digest('base64');
  }
}
