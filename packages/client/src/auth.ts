/**
 * Credentials → access tokens: a fixed token, an async provider, or user and password (logged in,
 * refreshed before expiry with the refresh token, logged in again when that fails).
 */
import { KalamError } from './errors.js';

export type AuthOptions =
  | { readonly user: string; readonly password: string }
  | { readonly token: string }
  | { readonly authProvider: () => Promise<string> };

interface Tokens {
  access: string;
  refresh: string;
  accessExpiresAt: number;
  refreshExpiresAt: number;
}

const REFRESH_MARGIN_MS = 30_000;

export class TokenSource {
  private tokens: Tokens | null = null;
  private pending: Promise<string> | null = null;

  constructor(private readonly baseUrl: string, private readonly auth: AuthOptions, private readonly fetchImpl: typeof fetch) {}

  /** A valid access token (cached; concurrent callers share one login/refresh). */
  token(): Promise<string> {
    if ('token' in this.auth) return Promise.resolve(this.auth.token);
    if ('authProvider' in this.auth) return this.auth.authProvider();
    if (this.tokens !== null && this.tokens.accessExpiresAt - REFRESH_MARGIN_MS > Date.now()) return Promise.resolve(this.tokens.access);
    this.pending ??= this.renew().finally(() => { this.pending = null; });
    return this.pending;
  }

  /** Whether a refused token can be replaced by a fresh one (user and password, or a provider). */
  get renewable(): boolean {
    return !('token' in this.auth);
  }

  /** Forgets the current access token (after the server refused it). */
  invalidate(): void {
    if (this.tokens !== null) this.tokens.accessExpiresAt = 0;
  }

  private async renew(): Promise<string> {
    const auth = this.auth as { user: string; password: string };
    if (this.tokens !== null && this.tokens.refreshExpiresAt - REFRESH_MARGIN_MS > Date.now()) {
      const refreshed = await this.post('/v1/api/auth/refresh', undefined, this.tokens.refresh).catch(() => null);
      if (refreshed !== null) return this.store(refreshed);
    }
    return this.store(await this.post('/v1/api/auth/login', { user: auth.user, password: auth.password }, null));
  }

  private store(body: Record<string, unknown>): string {
    this.tokens = {
      access: String(body.access_token), refresh: String(body.refresh_token),
      accessExpiresAt: Date.parse(String(body.expires_at)), refreshExpiresAt: Date.parse(String(body.refresh_expires_at)),
    };
    return this.tokens.access;
  }

  private async post(path: string, body: unknown, bearer: string | null): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer !== null ? { authorization: `Bearer ${bearer}` } : {}) },
        body: body === undefined ? '{}' : JSON.stringify(body),
      });
    } catch (error) {
      throw new KalamError('CONNECTION_FAILED', `Cannot reach ${this.baseUrl}: ${(error as Error).message}`);
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status !== 200) {
      const code = res.status === 401 ? 'INVALID_CREDENTIALS' : res.status === 429 ? 'RATE_LIMIT_EXCEEDED' : 'AUTH_FAILED';
      throw new KalamError(code, String(json.message ?? `Authentication failed (${res.status})`), res.status);
    }
    return json;
  }
}
