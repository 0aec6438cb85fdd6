/**
 * OAuth 2.0 credentials from an upstream authorization server:
 * - OAuth2ClientCredentials (RFC 6749 §4.4): the provider's own client identity;
 * - OAuth2TokenExchange (RFC 8693): a token *for the subject* (the user, or the agent acting
 *   alone) with the agent as actor. The subject and actor are presented as short-lived
 *   Warden-signed JWTs (subject_token / actor_token of type …:jwt, audience = the token
 *   endpoint), so the upstream server trusts Warden's JWKS the same way MCP targets do; the
 *   agent's own tokens never leave the authority.
 * The client secret comes from a Secret through the injected reader; HTTP goes through an
 * injected fetch. When the provider names a revocation endpoint, `revoke` calls it (RFC 7009).
 */
import { createHash, randomBytes } from 'node:crypto';
import { agentSubject, delegation } from '../../core/identity/agent.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../constants.js';
import { signJwt } from '../jwt.js';
import type { KeySource } from '../keystore.js';
import { injectHeader } from './inject.js';
import { effectiveTtlMs } from './ttl.js';
import {
  MintError,
  type Minter,
  type MintRequest,
  type MintResult,
  providerRef,
  upstreamText,
} from './types.js';

/** JOSE typ of the subject/actor assertions sent to upstream token endpoints. */
export const ASSERTION_TYP = 'JWT';
/** Lifetime of those assertions: long enough for one token request. */
export const ASSERTION_TTL_SECONDS = 60;
export const DEFAULT_OAUTH_TIMEOUT_MS = 10_000;

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  issued_token_type?: string;
}

interface ClientConfig {
  tokenUrl: string;
  clientId: string;
  clientSecretRef: { name: string; key: string };
  scopes?: string[];
  revocationUrl?: string;
}

/** RFC 6749 §2.3.1 client_secret_basic: both parts form-urlencoded before base64. */
export function clientSecretBasic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

/** The scopes to ask for: the rule's when it names any (narrower by intent), else the provider's. */
export function requestedScopes(
  policyScopes: readonly string[] | undefined,
  providerScopes: readonly string[] | undefined,
): string[] {
  return policyScopes && policyScopes.length > 0 ? [...policyScopes] : [...(providerScopes ?? [])];
}

/** Validates a token endpoint answer; upstream text is bounded and stripped of control characters. */
export function parseTokenResponse(status: number, body: string, where: string, url: string): TokenResponse {
  const clean = (s: unknown) => upstreamText(s, 200);
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      json = parsed as Record<string, unknown>;
  } catch {
    // Handled below: not JSON.
  }
  if (status < 200 || status >= 300) {
    const detail = json?.error
      ? `${clean(json.error)}${json.error_description ? `: ${clean(json.error_description)}` : ''}`
      : 'no OAuth error body';
    throw new MintError('UpstreamRejected', `${where}: token endpoint ${url} answered ${status} (${detail})`);
  }
  if (!json || typeof json.access_token !== 'string' || json.access_token === '') {
    throw new MintError(
      'UpstreamRejected',
      `${where}: token endpoint ${url} answered without an access_token`,
    );
  }
  const tokenType = typeof json.token_type === 'string' ? json.token_type : '';
  // RFC 8693 §2.2.1 allows N_A for non-access tokens; we asked for an access token, so require Bearer.
  if (tokenType.toLowerCase() !== 'bearer') {
    throw new MintError(
      'UpstreamRejected',
      `${where}: token endpoint ${url} issued token_type '${clean(tokenType)}'; Warden injects Bearer tokens only`,
    );
  }
  const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : undefined;
  return {
    access_token: json.access_token,
    token_type: tokenType,
    ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}),
    ...(typeof json.scope === 'string' ? { scope: json.scope } : {}),
    ...(typeof json.issued_token_type === 'string' ? { issued_token_type: json.issued_token_type } : {}),
  };
}

export interface OAuth2MinterOptions {
  readonly fetch?: typeof fetch;
  readonly now?: () => Date;
  readonly timeoutMs?: number;
  /** Token exchange only: Warden's issuer and keys, to sign subject/actor assertions. */
  readonly assertions?: { readonly issuer: string; readonly keys: KeySource };
}

abstract class OAuth2Minter implements Minter {
  abstract readonly type: 'OAuth2ClientCredentials' | 'OAuth2TokenExchange';
  constructor(protected readonly opts: OAuth2MinterOptions = {}) {}

  protected abstract config(req: MintRequest): ClientConfig | undefined;
  protected abstract grantParams(req: MintRequest, cfg: ClientConfig, now: Date): Record<string, string>;

  async mint(req: MintRequest): Promise<MintResult> {
    const where = providerRef(req.provider);
    const cfg = this.config(req);
    const block = this.type === 'OAuth2ClientCredentials' ? 'oauth2ClientCredentials' : 'oauth2TokenExchange';
    if (!cfg)
      throw new MintError('InvalidProvider', `${where}: spec.${block} is required for type ${this.type}`);
    const now = this.opts.now?.() ?? new Date();
    const secret = await req.secrets.read(
      req.provider.namespace,
      cfg.clientSecretRef.name,
      cfg.clientSecretRef.key,
    );
    const auth = clientSecretBasic(cfg.clientId, secret);
    const scopes = requestedScopes(req.policy.scopes, cfg.scopes);
    const form = new URLSearchParams({
      ...this.grantParams(req, cfg, now),
      ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    });
    const res = await this.post(cfg.tokenUrl, auth, form, where);
    const token = parseTokenResponse(res.status, res.body, where, cfg.tokenUrl);
    // The upstream decides the token's real lifetime; Warden caps how long the broker uses it.
    const capMs = effectiveTtlMs({ policy: req.policy.ttl, agentMax: req.agent.maxCredentialTTL });
    const lifeMs = Math.min(capMs, token.expires_in !== undefined ? token.expires_in * 1000 : capMs);
    const revocationUrl = cfg.revocationUrl;
    const result: MintResult = {
      credential: {
        kind: 'headers',
        headers: injectHeader(
          req.provider.spec.inject,
          token.access_token,
          where,
          'the upstream access token',
        ),
        expiresAt: new Date(now.getTime() + lifeMs),
        id: `oauth2:${createHash('sha256').update(token.access_token).digest('hex').slice(0, 16)}`,
        standing: false,
      },
      ...(revocationUrl
        ? {
            revoke: async () => {
              const form = new URLSearchParams({
                token: token.access_token,
                token_type_hint: 'access_token',
              });
              const r = await this.post(revocationUrl, auth, form, where);
              // RFC 7009 §2.2: 200 for success, also for tokens already invalid.
              if (r.status !== 200) {
                throw new MintError(
                  'UpstreamRejected',
                  `${where}: revocation endpoint ${revocationUrl} answered ${r.status}`,
                );
              }
            },
          }
        : {}),
    };
    return result;
  }

  private async post(
    url: string,
    authorization: string,
    form: URLSearchParams,
    where: string,
  ): Promise<{ status: number; body: string }> {
    const doFetch = this.opts.fetch ?? fetch;
    try {
      const res = await doFetch(url, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: form.toString(),
        redirect: 'error',
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? DEFAULT_OAUTH_TIMEOUT_MS),
      });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      const cause = (err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message;
      throw new MintError('UpstreamUnreachable', `${where}: ${url} unreachable: ${cause}`);
    }
  }
}

export class ClientCredentialsMinter extends OAuth2Minter {
  readonly type = 'OAuth2ClientCredentials' as const;
  protected config(req: MintRequest): ClientConfig | undefined {
    return req.provider.spec.oauth2ClientCredentials;
  }
  protected grantParams(): Record<string, string> {
    return { grant_type: 'client_credentials' };
  }
}

/** Builds the subject and (with a human) actor assertions for a token exchange (pure but for signing). */
export function exchangeAssertions(
  req: MintRequest,
  audience: string,
  issuer: string,
  now: Date,
  newId: () => string = () => randomBytes(16).toString('base64url'),
): { subject: Record<string, unknown>; actor?: Record<string, unknown> } {
  const iat = Math.floor(now.getTime() / 1000);
  const base = { iss: issuer, aud: audience, iat, nbf: iat, exp: iat + ASSERTION_TTL_SECONDS };
  const { sub, act } = delegation(
    req.agent,
    req.user ?? { present: false, sub: '', issuer: '' },
    req.request?.chain,
  );
  const subject = { ...base, sub, jti: newId(), ...(act ? { act } : {}) };
  if (!act) return { subject };
  return {
    subject,
    actor: { ...base, sub: agentSubject(req.agent.namespace, req.agent.name), jti: newId() },
  };
}

export class TokenExchangeMinter extends OAuth2Minter {
  readonly type = 'OAuth2TokenExchange' as const;
  protected config(req: MintRequest): ClientConfig | undefined {
    return req.provider.spec.oauth2TokenExchange;
  }
  protected grantParams(req: MintRequest, cfg: ClientConfig, now: Date): Record<string, string> {
    const signer = this.opts.assertions;
    if (!signer)
      throw new Error(
        'TokenExchangeMinter needs options.assertions (issuer and keys) to sign subject tokens',
      );
    const key = signer.keys.signingKey();
    const { subject, actor } = exchangeAssertions(req, cfg.tokenUrl, signer.issuer, now);
    const audience = req.provider.spec.oauth2TokenExchange?.audience;
    return {
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: signJwt(key, ASSERTION_TYP, subject),
      subject_token_type: TOKEN_TYPE_JWT,
      requested_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      ...(actor ? { actor_token: signJwt(key, ASSERTION_TYP, actor), actor_token_type: TOKEN_TYPE_JWT } : {}),
      ...(audience ? { audience } : {}),
    };
  }
}
