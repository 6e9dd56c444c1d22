/**
 * Turns an Authorization header into a principal: Bearer access tokens (checked against the
 * account's current state and token generation, so dropped users and changed passwords lock out at
 * once) or Basic user:password (live accounts only).
 */
import { ServerError } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import type { UserDef } from '../catalog/types.js';
import { principalOf, type Principal } from './access.js';
import type { PasswordHasher } from './passwords.js';
import type { TokenService } from './tokens.js';
import { LoginThrottle } from './login-throttle.js';
import { activeUser } from './reauthorize.js';

export class Authenticator {
  readonly throttle: LoginThrottle;
  /** Called with every failed password check (the audit log records them). */
  onFailedLogin: ((userId: string, address: string) => void) | null = null;

  constructor(private readonly catalog: Catalog, private readonly tokens: TokenService, private readonly passwords: PasswordHasher, throttle = new LoginThrottle()) {
    this.throttle = throttle;
  }

  async fromHeader(header: string | undefined, address = 'unknown'): Promise<Principal> {
    return principalOf(await this.userFromHeader(header, address));
  }

  /**
   * The user an Authorization header proves, as the catalog held it when the proof was checked:
   * a caller that acts later compares its tokenGeneration with the catalog's to catch a password
   * or role change that happened in between.
   */
  async userFromHeader(header: string | undefined, address = 'unknown'): Promise<UserDef> {
    if (header === undefined || header.trim() === '') {
      throw new ServerError('MISSING_AUTHORIZATION', 'Authentication required');
    }
    const space = header.indexOf(' ');
    const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
    const value = space === -1 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer') return this.userFromToken(value, 'access');
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw new ServerError('INVALID_CREDENTIALS', 'Malformed Basic credentials');
      return this.checkPassword(decoded.slice(0, colon), decoded.slice(colon + 1), address);
    }
    // Not named: a header without its space ("Bearer<token>", "Basic<base64>") would put the
    // credential itself into the answer (and the request log).
    throw new ServerError('MISSING_AUTHORIZATION', "Unsupported authorization scheme: use 'Bearer <token>' or 'Basic <base64 user:password>'");
  }

  /**
   * Throws INVALID_CREDENTIALS when `user`, as an Authorization header proved it, is no longer the
   * catalog's: dropped, or its password or role changed since (either moves the token generation on).
   * A request acts long after its header was checked (a body read for up to http_body_timeout_ms, a
   * batch, a topic long-poll of up to 300 s): it calls this before each step, so a password rotation
   * or DROP USER stops it too (an attack review created an account with a request begun before the
   * password change).
   */
  requireUnchanged(user: UserDef): void {
    const current = activeUser(this.catalog, user);
    if (current === undefined || current.tokenGeneration !== user.tokenGeneration || current.role !== user.role) {
      throw new ServerError('INVALID_CREDENTIALS', 'The account changed while this request ran (password, role or DROP USER): authenticate again');
    }
  }

  async fromToken(token: string, type: 'access' | 'refresh'): Promise<Principal> {
    return principalOf(await this.userFromToken(token, type));
  }

  /** The user a token was issued to, if the token is still valid for them. */
  async userFromToken(token: string, type: 'access' | 'refresh'): Promise<UserDef> {
    const claims = await this.tokens.verify(token, type);
    const user = this.catalog.account(claims.accountId);
    if (user === undefined || user.deletedAt !== null || user.userId !== claims.userId || user.tokenGeneration !== claims.generation) {
      throw new ServerError('INVALID_CREDENTIALS', 'Token is no longer valid');
    }
    return user;
  }

  /**
   * The user for a name and password, or INVALID_CREDENTIALS: the same error and the same argon2 work
   * for unknown users, so timing does not reveal which names exist. Throttled per name and address.
   */
  async checkPassword(name: string, password: string, address = 'unknown'): Promise<UserDef> {
    const userId = name.toLowerCase().slice(0, 128);
    const user = this.catalog.user(userId);
    // The same argon2 work for an unknown name (a dummy hash), so timing does not tell which names exist.
    const ok = await this.throttle.verify(userId, address, async () => (await this.passwords.verify(user?.passwordHash ?? null, userId, password)) && user !== undefined);
    if (!ok || user === undefined) {
      this.onFailedLogin?.(userId, address);
      throw new ServerError('INVALID_CREDENTIALS', 'Invalid credentials');
    }
    return user;
  }
}
