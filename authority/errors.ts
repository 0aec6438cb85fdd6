/**
 * OAuth error responses (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8693 §2.2.2).
 *
 * `description` goes to the caller: precise enough to fix the request, but never naming objects or
 * details the caller could not already know. `detail` goes only to the audit trail.
 */

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'invalid_client'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'access_denied'
  | 'invalid_target'
  | 'invalid_token'
  | 'slow_down'
  | 'server_error'
  | 'temporarily_unavailable';

const STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_grant: 400,
  // RFC 6749 §5.2: 401 when the client authenticated (here: with a client assertion) and failed.
  invalid_client: 401,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  access_denied: 403,
  invalid_target: 400,
  invalid_token: 401,
  slow_down: 429,
  server_error: 500,
  temporarily_unavailable: 503,
};

export class OAuthError extends Error {
  readonly status: number;
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    /** For the audit trail only (may name objects, upstream error text). */
    readonly detail?: string,
    status?: number,
  ) {
    super(`${code}: ${description}`);
    this.name = 'OAuthError';
    this.status = status ?? STATUS[code];
  }

  /** The JSON body the caller receives. */
  body(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** Anything thrown that is not an OAuthError becomes a server_error without leaking its message. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new OAuthError('server_error', 'the authority failed to process the request; retry later', detail);
}
