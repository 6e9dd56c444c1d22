/**
 * JWT access and refresh tokens (HS256, via jose). Access tokens carry sub (the user name), role, exp,
 * the user's token generation and `uid`, the account id, so a token of a dropped account never works
 * for a new account of the same name; refresh tokens carry `typ: refresh` and are refused as access tokens.
 * Verified tokens are cached until expiry so the hot path skips the HMAC.
 */
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { ServerError } from '../util/errors.js';
import type { Role, UserDef } from '../catalog/types.js';

export interface TokenClaims {
  /** The account the token was issued to; tokens from before account ids have none and mean the name. */
  readonly accountId: string;
  readonly userId: string;
  readonly role: Role;
  readonly generation: number;
  readonly expiresAt: number;
}

export interface IssuedTokens {
  readonly access_token: string;
  readonly refresh_token: string;
  readonly expires_at: string;
  readonly refresh_expires_at: string;
  /** As upstream's login answer: timestamps in RFC 3339. */
  readonly user: { readonly id: string; readonly role: Role; readonly email: string | null; readonly created_at: string; readonly updated_at: string };
}

/** The `user` object of the login, refresh and me answers (upstream's UserInfo). */
export function userInfo(user: UserDef): IssuedTokens['user'] {
  return {
    id: user.userId, role: user.role, email: user.email,
    created_at: new Date(user.createdAt).toISOString(), updated_at: new Date(user.updatedAt).toISOString(),
  };
}

const CACHE_ENTRIES_MAX = 50_000;
const ISSUER = 'kalamdb';

export class TokenService {
  private readonly key: Uint8Array;
  private readonly cache = new Map<string, TokenClaims>();

  constructor(secret: string, private readonly accessTtlSeconds: number, private readonly refreshTtlSeconds: number) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(user: UserDef): Promise<IssuedTokens> {
    const now = Math.floor(Date.now() / 1000);
    const accessExp = now + this.accessTtlSeconds;
    const refreshExp = now + this.refreshTtlSeconds;
    const claims = { role: user.role, gen: user.tokenGeneration, uid: user.id };
    const access = await new SignJWT({ ...claims, typ: 'access' }).setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.userId).setIssuer(ISSUER).setIssuedAt(now).setExpirationTime(accessExp).sign(this.key);
    const refresh = await new SignJWT({ ...claims, typ: 'refresh' }).setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.userId).setIssuer(ISSUER).setIssuedAt(now).setExpirationTime(refreshExp).sign(this.key);
    return {
      access_token: access,
      refresh_token: refresh,
      expires_at: new Date(accessExp * 1000).toISOString(),
      refresh_expires_at: new Date(refreshExp * 1000).toISOString(),
      user: userInfo(user),
    };
  }

  /**
   * Verifies a token of the given type: TOKEN_EXPIRED for a genuine token past its expiry (upstream's
   * clients refresh and retry on that code), INVALID_CREDENTIALS for any other failure.
   */
  async verify(token: string, type: 'access' | 'refresh'): Promise<TokenClaims> {
    const cacheKey = `${type}:${token}`;
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) {
      if (cached.expiresAt * 1000 > Date.now()) return cached;
      this.cache.delete(cacheKey);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: ISSUER }));
    } catch (error) {
      // jose checks the signature before the claims: only a token this server signed can be "expired".
      if (error instanceof joseErrors.JWTExpired) throw new ServerError('TOKEN_EXPIRED', 'Token expired');
      throw new ServerError('INVALID_CREDENTIALS', 'Invalid or expired token');
    }
    if (payload.typ !== type || typeof payload.sub !== 'string' || typeof payload.role !== 'string' || typeof payload.exp !== 'number') {
      throw new ServerError('INVALID_CREDENTIALS', `Invalid token: not ${type === 'access' ? 'an' : 'a'} ${type} token`);
    }
    if (payload.uid !== undefined && typeof payload.uid !== 'string') throw new ServerError('INVALID_CREDENTIALS', 'Invalid token: bad uid');
    // A token without uid predates account ids: it was issued to the account whose id is the name.
    const claims: TokenClaims = {
      accountId: payload.uid ?? payload.sub, userId: payload.sub, role: payload.role as Role,
      generation: Number(payload.gen ?? 0), expiresAt: payload.exp,
    };
    if (this.cache.size >= CACHE_ENTRIES_MAX) this.cache.clear();
    this.cache.set(cacheKey, claims);
    return claims;
  }
}
