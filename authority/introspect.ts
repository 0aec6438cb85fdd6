/**
 * POST /v1/introspect — RFC 7662 token introspection for Warden-minted JWT credentials
 * (CredentialProvider type JWT, typ at+jwt).
 *
 * Revocation is a stateless rule, so every authority replica answers the same without a shared
 * revocation list: a token is inactive when
 *   - its signature, typ, issuer or expiry do not check out;
 *   - its agent (client_id = system:warden:agent:<ns>:<name>) no longer exists or is suspended;
 *   - it was issued at or before the agent's latest revocation (iat ≤ status.revocation.requestedAt),
 *     which keeps every token minted before a kill dead after a revive.
 * Targets that check call this endpoint (form body `token=...`, RFC 7662 §2.1) and cache the
 * answer for at most a few seconds.
 *
 * Caller authentication: RFC 7662 §2.1 asks for it to stop token scanning. Warden's tokens are
 * signed and self-describing, so scanning learns nothing a holder could not read; the answer adds
 * only "active". The endpoint is therefore open, and a caller that sends garbage spends its
 * failure budget (the server's rate limiter) like any other bad request.
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { AgentIdentity } from '../core/api/index.js';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { parseAgentSubject } from '../core/identity/agent.js';
import { ApiError, type KubeApi, resourcePath } from '../kube/kube.js';
import { OAuthError } from './errors.js';
import { MAX_FORM_BYTES, mediaType, parseForm, readBody } from './http.js';
import type { KeySource } from './keystore.js';
import { ACCESS_TOKEN_TYP } from './mint/jwt.js';
import type { RequestContext } from './request.js';

const AGENT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };

/** What introspection needs to know about an agent now. */
export interface AgentRevocationState {
  suspended: boolean;
  /** status.revocation.requestedAt, epoch seconds; undefined when never revoked. */
  revokedAt?: number;
}

export type AgentStateGetter = (namespace: string, name: string) => Promise<AgentRevocationState | null>;

/** Reads the agent live (a consistent read: a kill a moment ago must count). */
export function liveAgentState(api: KubeApi): AgentStateGetter {
  return async (namespace, name) => {
    try {
      const obj = await api.request<AgentIdentity>('GET', resourcePath(AGENT_REF, namespace, name));
      return agentRevocationState(obj);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return null;
      throw err;
    }
  };
}

/** Pure: the fields of an AgentIdentity the rule uses. */
export function agentRevocationState(obj: Pick<AgentIdentity, 'spec' | 'status'>): AgentRevocationState {
  const at = obj.status?.revocation?.requestedAt;
  const ms = at ? Date.parse(at) : Number.NaN;
  return {
    suspended: obj.spec?.suspended === true,
    ...(Number.isFinite(ms) ? { revokedAt: Math.floor(ms / 1000) } : {}),
  };
}

/** Verified claims of a Warden JWT credential. */
export interface CredentialClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti: string;
  client_id: string;
  scope?: string;
  act?: { sub: string };
}

/** Pure: whether verified claims are still active for the agent's state. */
export function isActive(claims: Pick<CredentialClaims, 'iat'>, agent: AgentRevocationState | null): boolean {
  if (!agent || agent.suspended) return false;
  // iat has one-second resolution: a token minted in the same second as the revocation is revoked.
  return agent.revokedAt === undefined || claims.iat > agent.revokedAt;
}

export interface IntrospectDeps {
  issuer: string;
  keys: KeySource;
  agentState: AgentStateGetter;
  now?: () => Date;
}

const INACTIVE = { active: false } as const;

export async function handleIntrospect(
  ctx: RequestContext,
  deps: IntrospectDeps,
): Promise<Record<string, unknown>> {
  ctx.audit.kind = 'Credential';
  if (ctx.req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', undefined, 405);
  if (mediaType(ctx.req) !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(
      'invalid_request',
      'Content-Type must be application/x-www-form-urlencoded (RFC 7662 §2.1)',
    );
  }
  const params = parseForm(await readBody(ctx.req, MAX_FORM_BYTES));
  const token = params.get('token');
  if (!token) throw new OAuthError('invalid_request', 'missing required parameter token');
  ctx.noStore = true;
  let claims: CredentialClaims;
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(deps.keys.jwks()), {
      algorithms: ['ES256'],
      issuer: deps.issuer,
      typ: ACCESS_TOKEN_TYP,
      currentDate: (deps.now ?? (() => new Date()))(),
      requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
    });
    claims = payload as unknown as CredentialClaims;
  } catch {
    // RFC 7662 §2.2: an invalid, expired or foreign token is simply inactive.
    ctx.audit.message = 'introspection: token not valid';
    return { ...INACTIVE };
  }
  const agent = parseAgentSubject(String(claims.client_id));
  ctx.audit.credentialId = claims.jti;
  if (!agent) return { ...INACTIVE };
  // Log-only (no namespace/agent on the event): targets introspect far more often than agents
  // act, and those lookups are not the agent's actions.
  const who = `agent ${agent.namespace}/${agent.name}`;
  const state = await deps.agentState(agent.namespace, agent.name);
  if (!isActive(claims, state)) {
    ctx.audit.message = !state
      ? `introspection: ${who} no longer exists`
      : state.suspended
        ? `introspection: ${who} is suspended`
        : `introspection: token issued before ${who} was revoked`;
    return { ...INACTIVE };
  }
  ctx.audit.message = `introspection: active (${who})`;
  return {
    active: true,
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    iat: claims.iat,
    exp: claims.exp,
    jti: claims.jti,
    client_id: claims.client_id,
    token_type: 'Bearer',
    ...(claims.scope ? { scope: claims.scope } : {}),
    ...(claims.act ? { act: claims.act } : {}),
  };
}
