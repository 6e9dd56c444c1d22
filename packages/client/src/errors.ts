/** Every failure the SDK reports: the server's error code and message, and the HTTP status if any. */
export class KalamError extends Error {
  readonly code: string;
  readonly status: number | null;

  constructor(code: string, message: string, status: number | null = null) {
    super(message);
    this.name = 'KalamError';
    this.code = code;
    this.status = status;
  }
}
