/**
 * JWT credentials: Warden-signed access tokens (RFC 9068 shape, typ at+jwt) for targets that
 * trust Warden's JWKS. Audience-scoped, short-lived, with the delegation chain in `act`
 * (RFC 8693 §4.1) and extra claims computed by CEL.
 *
 * Signing uses authority/jwt.ts (node:crypto ES256); claim building is pure.
 */
import { randomBytes } from 'node:crypto';
import { AUTH_SCHEME_DPOP } from '../../core/constants.js';
import { delegation } from '../../core/identity/agent.js';
import { signJwt } from '../jwt.js';
import type { KeySource } from '../keystore.js';
import { compileClaim, evaluateClaims, mintPolicyInput, type NamedExpression } from './claims.js';
import { injectHeader } from './inject.js';
import { effectiveTtlMs } from './ttl.js';
import { MintError, type Minter, type MintRequest, type MintResult, providerRef } from './types.js';

/** JOSE typ of minted access tokens (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYP = 'at+jwt';
/** CredentialProvider spec.jwt.defaultTTL default. */
export const DEFAULT_JWT_TTL = '5m';

export interface JwtPayload extends Record<string, unknown> {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  client_id: string;
  act?: { sub: string };
  scope?: string;
  /** RFC 9449 §6.1: the DPoP key the token is bound to. */
  cnf?: { jkt: string };
}

/** Builds the payload of a credential JWT (pure: time and jti are inputs). */
export function buildJwtPayload(req: MintRequest, issuer: string, now: Date, jti: string): JwtPayload {
  const spec = req.provider.spec;
  const where = providerRef(req.provider);
  const ttlMs = effectiveTtlMs({
    policy: req.policy.ttl,
    provider: { value: spec.jwt?.defaultTTL ?? DEFAULT_JWT_TTL, field: `${where} spec.jwt.defaultTTL` },
    agentMax: req.agent.maxCredentialTTL,
  });
  const expressions: NamedExpression[] = [
    ...Object.entries(spec.jwt?.claims ?? {}).flatMap(([name, source]) =>
      source === undefined
        ? []
        : [
            {
              name,
              field: `${where} spec.jwt.claims.${name}`,
              expression: compileClaim(source, `${where} spec.jwt.claims.${name}`),
            },
          ],
    ),
    ...(req.policy.claims ?? []).map((c) => ({
      ...c,
      field: `AccessPolicy ${req.policy.policy ?? '(unknown)'} credential.claims.${c.name}`,
    })),
  ];
  const extra = evaluateClaims(expressions, mintPolicyInput(req, now));
  const { sub, act } = delegation(req.agent, req.user ?? { present: false, sub: '', issuer: '' });
  const iat = Math.floor(now.getTime() / 1000);
  const scopes = req.policy.scopes ?? [];
  return {
    ...extra,
    iss: issuer,
    sub,
    aud: spec.jwt?.audience ?? spec.target.url,
    iat,
    nbf: iat,
    exp: iat + Math.max(1, Math.floor(ttlMs / 1000)),
    jti,
    client_id: delegation(req.agent, { present: false, sub: '', issuer: '' }).sub,
    ...(act ? { act } : {}),
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
  };
}

export interface JwtMinterOptions {
  /** Warden's issuer URL (the authority's; its JWKS is at /.well-known/jwks.json). */
  readonly issuer: string;
  readonly keys: KeySource;
  readonly now?: () => Date;
  /** jti source; 16 random bytes by default. */
  readonly newId?: () => string;
}

export class JwtMinter implements Minter {
  readonly type = 'JWT' as const;
  constructor(private readonly opts: JwtMinterOptions) {}

  async mint(req: MintRequest): Promise<MintResult> {
    const now = this.opts.now?.() ?? new Date();
    const jti = this.opts.newId?.() ?? randomBytes(16).toString('base64url');
    const jkt = senderKey(req);
    const payload: JwtPayload = {
      ...buildJwtPayload(req, this.opts.issuer, now, jti),
      ...(jkt ? { cnf: { jkt } } : {}),
    };
    const token = signJwt(this.opts.keys.signingKey(), ACCESS_TOKEN_TYP, payload);
    const where = providerRef(req.provider);
    return {
      credential: {
        kind: 'headers',
        // RFC 9449 §7.1: a DPoP-bound token travels as `Authorization: DPoP <token>`, whatever
        // the bearer default of spec.inject says (the CRD refuses any other header or scheme).
        headers: jkt
          ? injectHeader({ header: 'Authorization', format: `${AUTH_SCHEME_DPOP} {token}` }, token, where)
          : injectHeader(req.provider.spec.inject, token, where),
        expiresAt: new Date(payload.exp * 1000),
        id: jti,
        standing: false,
        ...(jkt ? { dpopJkt: jkt } : {}),
      },
      // No revoke: a Warden JWT is revoked by listing its jti (the authority's revocation list).
    };
  }
}

/**
 * The DPoP key thumbprint to bind the token to, or undefined for a bearer token. A provider with
 * spec.jwt.senderConstraint DPoP never falls back to a bearer token: without a thumbprint from the
 * broker it refuses (fail closed).
 */
function senderKey(req: MintRequest): string | undefined {
  if (req.provider.spec.jwt?.senderConstraint !== 'DPoP') return undefined;
  if (!req.dpopJkt) {
    throw new MintError(
      'ProofKeyMissing',
      `${providerRef(req.provider)} spec.jwt.senderConstraint is DPoP, but the broker sent no DPoP key thumbprint (dpop_jkt) with the credential request; run a broker that supports DPoP, or set senderConstraint None`,
    );
  }
  return req.dpopJkt;
}
