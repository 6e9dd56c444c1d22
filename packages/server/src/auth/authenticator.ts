/**
 * Turns an Authorization header into a principal: Bearer access tokens (checked against the
 * user's current role and token generation, so dropped users and changed passwords lock out at
 * once) or Basic user:password.
 */
import { ServerError } from '../util/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import type { UserDef } from '../catalog/types.js';
import type { Principal } from './access.js';
import type { PasswordHasher } from './passwords.js';
import type { TokenService } from './tokens.js';

export class Authenticator {
  constructor(private readonly catalog: Catalog, private readonly tokens: TokenService, private readonly passwords: PasswordHasher) {}

  async fromHeader(header: string | undefined): Promise<Principal> {
    if (header === undefined || header.trim() === '') {
      throw new ServerError('MISSING_AUTHORIZATION', 'Missing Authorization header: use Bearer <token> or Basic credentials');
    }
    const space = header.indexOf(' ');
    const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
    const value = space === -1 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer') return this.fromToken(value, 'access');
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw new ServerError('INVALID_CREDENTIALS', 'Malformed Basic credentials');
      const user = await this.checkPassword(decoded.slice(0, colon), decoded.slice(colon + 1));
      return { userId: user.userId, role: user.role };
    }
    throw new ServerError('MISSING_AUTHORIZATION', `Unsupported authorization scheme '${scheme}'`);
  }

  async fromToken(token: string, type: 'access' | 'refresh'): Promise<Principal> {
    const claims = await this.tokens.verify(token, type);
    const user = this.catalog.user(claims.userId);
    if (user === undefined || user.tokenGeneration !== claims.generation) {
      throw new ServerError('INVALID_CREDENTIALS', 'Token is no longer valid');
    }
    return { userId: user.userId, role: user.role };
  }

  /** The user for a name and password, or INVALID_CREDENTIALS (same error and timing for unknown users). */
  async checkPassword(name: string, password: string): Promise<UserDef> {
    const user = this.catalog.user(name.toLowerCase());
    const ok = await this.passwords.verify(user?.passwordHash ?? null, name.toLowerCase(), password);
    if (!ok || user === undefined) throw new ServerError('INVALID_CREDENTIALS', 'Invalid credentials');
    return user;
  }
}
