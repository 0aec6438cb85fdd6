/**
 * JWT credentials: Warden-signed access tokens (RFC 9068 shape, typ at+jwt) for targets that
 * trust Warden's JWKS. Audience-scoped, short-lived, with the delegation chain in `act`
 * (RFC 8693 §4.1) and extra claims computed by CEL.
 *
 * Signing uses authority/jwt.ts (node:crypto ES256); claim building is pure.
 */
import { randomFillSync } from 'node:crypto';
import { AUTH_SCHEME_DPOP } from '../../core/constants.js';
import { type ActClaim, delegation } from '../../core/identity/agent.js';
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
  act?: ActClaim;
  scope?: string;
  /** RFC 9449 §6.1: the DPoP key the token is bound to. */
  cnf?: { jkt: string };
}

/** What buildJwtPayload derives from a provider spec alone: compiled claims and its TTL bound. */
interface ProviderPlan {
  readonly claims: readonly NamedExpression[];
  readonly ttl: { readonly value: string; readonly field: string };
  readonly audience: string;
}

// Keyed by the spec object: the authority's cache replaces the object on every change, so a plan
// can never outlive the spec it was derived from, and a dropped provider frees its plan.
const plans = new WeakMap<object, ProviderPlan>();

function providerPlan(provider: MintRequest['provider']): ProviderPlan {
  const spec = provider.spec;
  const hit = plans.get(spec);
  if (hit) return hit;
  const where = providerRef(provider);
  const claims: NamedExpression[] = [];
  for (const [name, source] of Object.entries(spec.jwt?.claims ?? {})) {
    if (source === undefined) continue;
    const field = `${where} spec.jwt.claims.${name}`;
    claims.push({ name, field, expression: compileClaim(source, field) });
  }
  const plan: ProviderPlan = {
    claims,
    ttl: { value: spec.jwt?.defaultTTL ?? DEFAULT_JWT_TTL, field: `${where} spec.jwt.defaultTTL` },
    audience: spec.jwt?.audience ?? spec.target.url,
  };
  plans.set(spec, plan);
  return plan;
}

/** Builds the payload of a credential JWT (pure: time and jti are inputs). */
export function buildJwtPayload(req: MintRequest, issuer: string, now: Date, jti: string): JwtPayload {
  const plan = providerPlan(req.provider);
  const ttlMs = effectiveTtlMs({
    policy: req.policy.ttl,
    provider: plan.ttl,
    agentMax: req.agent.maxCredentialTTL,
  });
  const policyClaims = req.policy.claims ?? [];
  let expressions = plan.claims;
  if (policyClaims.length > 0) {
    const from = `AccessPolicy ${req.policy.policy ?? '(unknown)'} credential.claims.`;
    expressions = [...plan.claims, ...policyClaims.map((c) => ({ ...c, field: `${from}${c.name}` }))];
  }
  const payload = evaluateClaims(expressions, mintPolicyInput(req, now)) as JwtPayload;
  // The agents before this one (a delegated call, request.chain): nested act claims.
  const { sub, act } = delegation(req.agent, req.user ?? NO_USER, req.request?.chain);
  const iat = Math.floor(now.getTime() / 1000);
  // Warden's claims are assigned after the CEL ones, so they win (evaluateClaims also refuses
  // the reserved names outright). Assignment rather than object spread: this is the mint's hot
  // path and spreads into a literal cost more than the rest of the payload together.
  payload.iss = issuer;
  payload.sub = sub;
  payload.aud = plan.audience;
  payload.iat = iat;
  payload.nbf = iat;
  payload.exp = iat + Math.max(1, Math.floor(ttlMs / 1000));
  payload.jti = jti;
  payload.client_id = delegation(req.agent, NO_USER).sub;
  if (act) payload.act = act;
  const scopes = req.policy.scopes ?? [];
  if (scopes.length > 0) payload.scope = scopes.join(' ');
  return payload;
}

const NO_USER = { present: false, sub: '', issuer: '' } as const;

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
    const jti = this.opts.newId?.() ?? newJti();
    const jkt = senderKey(req);
    const payload = buildJwtPayload(req, this.opts.issuer, now, jti);
    if (jkt) payload.cnf = { jkt };
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

// 16 random bytes per jti, drawn from a refilled pool: one getrandom call per 256 tokens instead
// of one per token (the same trick node:crypto's randomUUID uses). Bytes are never reused.
const JTI_BYTES = 16;
const pool = Buffer.alloc(JTI_BYTES * 256);
let poolOffset = pool.length;

function newJti(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + JTI_BYTES);
  poolOffset += JTI_BYTES;
  return id;
}
