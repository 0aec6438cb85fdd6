/**
 * Human user tokens (blended identity). The broker forwards the token the agent received from its
 * human in the `x-warden-user-token` header of POST /v1/credentials (docs/adr/0006). It is
 * verified against the AgentIdentity's trusted issuers — issuer (exact match), signature by the
 * issuer's JWKS (asymmetric algorithms only), audience, exp/nbf with USER_TOKEN_CLOCK_SKEW_SECONDS
 * — and mapped to CEL `user` with only the claims policy needs (core/identity/user.ts).
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { type AgentRef, inboundDelegation } from '../core/identity/agent.js';
import { type IssuerClaimMapping, NO_USER, type UserContext, userFromClaims } from '../core/identity/user.js';
import { USER_TOKEN_CLOCK_SKEW_SECONDS } from './constants.js';
import { OAuthError } from './errors.js';
import type { FetchLike } from './fetch.js';
import type { KeySource } from './keystore.js';
import { ACCESS_TOKEN_TYP } from './mint/jwt.js';

/** spec.userContext.trustedIssuers[] */
export interface TrustedIssuer extends IssuerClaimMapping {
  issuer: string;
  jwksUri?: string;
  audiences: string[];
}

export interface UserContextSpec {
  mode?: 'Optional' | 'Required' | 'Forbidden';
  trustedIssuers?: TrustedIssuer[];
}

/** Signature algorithms accepted on user tokens: asymmetric only, so no shared-secret confusion. */
export const USER_TOKEN_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

const MAX_USER_TOKEN_CHARS = 16 * 1024;

export interface UserTokenVerifierOptions {
  /** HTTP client for discovery and JWKS (default: global fetch). */
  fetch?: FetchLike;
  now?: () => Date;
  clockSkewSeconds?: number;
  /**
   * This authority's own issuer and keys. A token it issued (another agent's credential, forwarded
   * by an agent that is an MCP server in a chain of agents) is verified with these keys, not over
   * the network, and read as a delegation: the human (or origin agent) in `sub`, the agents in `act`.
   */
  warden?: { readonly issuer: string; readonly keys: KeySource } | undefined;
}

type KeySet = JWTVerifyGetKey;

/** A verified user token: the human (NO_USER when a chain began with an agent alone) and the chain. */
export interface VerifiedCaller {
  readonly user: UserContext;
  /** The agents a Warden token says the call came through, origin first; null for an IdP token. */
  readonly prior: readonly AgentRef[] | null;
}

export class UserTokenVerifier {
  private readonly keySets = new Map<string, Promise<KeySet>>();
  private readonly fetch: FetchLike;

  constructor(private readonly opts: UserTokenVerifierOptions = {}) {
    this.fetch = opts.fetch ?? ((url, init) => fetch(url, init));
  }

  /**
   * Verifies `token` for an agent; `where` names the AgentIdentity in messages. Throws invalid_grant
   * (bad token), or temporarily_unavailable (the issuer's keys could not be fetched).
   */
  async verify(token: string, spec: UserContextSpec | undefined, where: string): Promise<UserContext> {
    return (await this.verifyCaller(token, spec, where)).user;
  }

  /**
   * verify(), and for a token this authority issued (opts.warden) the delegation chain it carries:
   * its typ must be at+jwt (a credential Warden minted, not a session), its `act` nesting only
   * Warden agents, at most MAX_CHAIN_DEPTH deep with the receiving agent; otherwise invalid_grant
   * saying which. A chain is only ever read from a token whose signature, issuer, audience and
   * lifetime were verified here.
   */
  async verifyCaller(
    token: string,
    spec: UserContextSpec | undefined,
    where: string,
  ): Promise<VerifiedCaller> {
    if (token.length > MAX_USER_TOKEN_CHARS) {
      throw new OAuthError('invalid_request', `user token is longer than ${MAX_USER_TOKEN_CHARS} characters`);
    }
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new OAuthError(
        'invalid_grant',
        'user token is not a JWT (expected a compact JWS ID or access token)',
      );
    }
    const trusted = (spec?.trustedIssuers ?? []).find((t) => t.issuer === iss);
    if (!trusted) {
      throw new OAuthError(
        'invalid_grant',
        `user token issuer is not trusted by ${where} (spec.userContext.trustedIssuers)`,
        `iss ${JSON.stringify(String(iss).slice(0, 200))}`,
      );
    }
    const own = this.opts.warden?.issuer === trusted.issuer ? this.opts.warden : undefined;
    const keySet = own ? this.ownKeySet(own.keys) : await this.keySetFor(trusted);
    let payload: Record<string, unknown>;
    let typ: string | undefined;
    try {
      let protectedHeader: { typ?: string | undefined };
      ({ payload, protectedHeader } = await jwtVerify(token, keySet, {
        issuer: trusted.issuer,
        audience: trusted.audiences,
        algorithms: USER_TOKEN_ALGORITHMS,
        clockTolerance: this.opts.clockSkewSeconds ?? USER_TOKEN_CLOCK_SKEW_SECONDS,
        currentDate: this.opts.now?.(),
        requiredClaims: ['exp', 'sub'],
      }));
      typ = protectedHeader.typ;
    } catch (err) {
      throw userTokenError(err, where);
    }
    // jose accepts an iat in the future; a token "issued" later than now (beyond the skew) is
    // not valid yet, whether or not the IdP also set nbf.
    const nowS = (this.opts.now?.() ?? new Date()).getTime() / 1000;
    if (
      typeof payload.iat === 'number' &&
      payload.iat > nowS + (this.opts.clockSkewSeconds ?? USER_TOKEN_CLOCK_SKEW_SECONDS)
    ) {
      throw new OAuthError(
        'invalid_grant',
        'user token was issued in the future (iat); check the clocks',
        `iat ${payload.iat}`,
      );
    }
    if (!own) return { user: userFromClaims(payload, trusted.issuer, trusted), prior: null };
    if (typ !== ACCESS_TOKEN_TYP) {
      throw new OAuthError(
        'invalid_grant',
        `a Warden token forwarded as the caller must be a credential Warden minted for this agent (typ ${ACCESS_TOKEN_TYP}), not a session or agent token`,
        `typ ${String(typ)}`,
      );
    }
    const chain = inboundDelegation(payload);
    if (!chain.ok) {
      throw new OAuthError(
        'invalid_grant',
        `the delegation chain of the Warden token is refused: ${chain.message}`,
      );
    }
    const user = chain.userSub === null ? NO_USER : userFromClaims(payload, trusted.issuer, trusted);
    return { user, prior: chain.prior };
  }

  private ownKeys: { jwks: string; keySet: KeySet } | undefined;

  /** This authority's published keys (current and previous: rotation), as a local key set. */
  private ownKeySet(keys: KeySource): KeySet {
    const jwks = keys.jwks();
    const id = jwks.keys.map((k) => k.kid).join(',');
    if (!this.ownKeys || this.ownKeys.jwks !== id) {
      this.ownKeys = { jwks: id, keySet: createLocalJWKSet(jwks) };
    }
    return this.ownKeys.keySet;
  }

  /** The key set of an issuer: its jwksUri, or the one its discovery document names. Cached. */
  private keySetFor(t: TrustedIssuer): Promise<KeySet> {
    const cacheKey = `${t.issuer}\u0000${t.jwksUri ?? ''}`;
    let p = this.keySets.get(cacheKey);
    if (!p) {
      p = this.resolveKeySet(t);
      this.keySets.set(cacheKey, p);
      // A failed discovery must not be remembered: drop it so the next call retries.
      p.catch(() => this.keySets.delete(cacheKey));
    }
    return p;
  }

  private async resolveKeySet(t: TrustedIssuer): Promise<KeySet> {
    let jwksUri = t.jwksUri;
    if (!jwksUri) {
      const url = `${t.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      let doc: { issuer?: unknown; jwks_uri?: unknown };
      try {
        const res = await this.fetch(url, { method: 'GET', signal: AbortSignal.timeout(5000) });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        doc = (await res.json()) as typeof doc;
      } catch (err) {
        throw new OAuthError(
          'temporarily_unavailable',
          `could not fetch the OpenID configuration of trusted issuer ${t.issuer}; retry later`,
          String(err),
        );
      }
      // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
      if (doc.issuer !== t.issuer || typeof doc.jwks_uri !== 'string') {
        throw new OAuthError(
          'temporarily_unavailable',
          `the OpenID configuration of ${t.issuer} names another issuer or no jwks_uri`,
          `issuer ${String(doc.issuer)}`,
        );
      }
      jwksUri = doc.jwks_uri;
    }
    return createRemoteJWKSet(new URL(jwksUri), {
      [customFetch]: (url, init) => this.fetch(url, init),
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
    });
  }
}

/** Verifies the optional user token and enforces nothing else; absent token → NO_USER. */
export async function userFromHeader(
  verifier: UserTokenVerifier,
  header: string | string[] | undefined,
  spec: UserContextSpec | undefined,
  where: string,
): Promise<UserContext> {
  return (await callerFromHeader(verifier, header, spec, where)).user;
}

/** userFromHeader with the delegation chain of a forwarded Warden token (prior null otherwise). */
export async function callerFromHeader(
  verifier: UserTokenVerifier,
  header: string | string[] | undefined,
  spec: UserContextSpec | undefined,
  where: string,
): Promise<VerifiedCaller> {
  if (header === undefined || header === '') return { user: NO_USER, prior: null };
  if (Array.isArray(header))
    throw new OAuthError('invalid_request', 'send at most one x-warden-user-token header');
  const token = header.replace(/^Bearer\s+/i, '').trim();
  return verifier.verifyCaller(token, spec, where);
}

function userTokenError(err: unknown, where: string): OAuthError {
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const cfg = `${where} spec.userContext.trustedIssuers`;
  if (err instanceof joseErrors.JWTExpired)
    return new OAuthError('invalid_grant', 'user token expired; have the user sign in again', detail);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const why: Record<string, string> = {
      nbf: 'user token is not valid yet (nbf in the future)',
      iat: 'user token was issued in the future (iat)',
      aud: `user token audience is not one of the audiences in ${cfg}`,
      iss: `user token issuer does not match ${cfg}`,
      sub: 'user token has no sub claim',
      exp: 'user token has no exp claim',
    };
    return new OAuthError(
      'invalid_grant',
      why[err.claim] ?? `user token claim ${err.claim} is invalid`,
      detail,
    );
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return new OAuthError(
      'invalid_grant',
      `user token must be signed with one of ${USER_TOKEN_ALGORITHMS.join(', ')}`,
      detail,
    );
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return new OAuthError(
      'invalid_grant',
      "user token is signed with a key (kid) the issuer's JWKS does not contain",
      detail,
    );
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new OAuthError('invalid_grant', 'user token signature is invalid', detail);
  }
  if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) {
    return new OAuthError(
      'temporarily_unavailable',
      "could not fetch the trusted issuer's JWKS; retry later",
      detail,
    );
  }
  return new OAuthError('invalid_grant', 'user token is malformed', detail);
}
