/**
 * CEL `user` for the broker's local decision, from the forwarded token's claims mapped by the
 * AgentIdentity's trusted-issuer settings in the snapshot (core/identity/user.ts).
 *
 * Why decoding suffices here (ADR 0007): the local decision only decides whether to ask for a
 * credential. The authority verifies the token's signature, issuer, audience and lifetime on
 * POST /v1/credentials before anything is issued, and the broker's credential cache is keyed by
 * the token's digest, so a forged token can never reach a credential issued for a genuine one.
 * The broker still refuses untrusted issuers, wrong audiences and expired tokens up front so the
 * agent gets a precise answer without a round trip.
 *
 * A token the Warden authority itself issued (`iss` is the authority: another agent's credential,
 * forwarded by this agent when it is an MCP server in a chain of agents) is read as a delegation
 * the same way: its `sub` and `act` claims give the human and the agents before this one. The local
 * decision and this broker's audit entry use that chain as the token states it; the authority
 * verifies the token (its own keys, typ, audience, lifetime, depth) and decides again with the
 * verified chain before any credential is issued, so a forged chain cannot obtain one.
 */
import { inboundDelegation } from '../core/identity/agent.js';
import { userFromClaims } from '../core/identity/user.js';
import { type ResolvedCaller, type UserResolver, UserTokenRejectedError } from './credentials.js';
import type { PolicySnapshot } from './snapshot.js';

/** Same leeway as the authority (USER_TOKEN_CLOCK_SKEW_SECONDS): the ±2 min budget of docs/faults.md. */
const SKEW_SECONDS = 120;

/**
 * The claims of a compact JWS, unverified (verification is the authority's, see above). A dozen
 * lines instead of jose's decodeJwt keeps jose out of the sidecar (~3 MB RSS).
 */
export function decodeClaims(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) throw new Error('not a compact JWS');
  const json = Buffer.from(parts[1], 'base64url').toString('utf8');
  const claims: unknown = JSON.parse(json);
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims))
    throw new Error('claims are not an object');
  return claims as Record<string, unknown>;
}

export class SnapshotUserResolver implements UserResolver {
  constructor(
    private readonly snapshot: () => PolicySnapshot | null,
    private readonly now: () => number = Date.now,
    /** The Warden authority's issuer (its URL): tokens from it carry a delegation chain. */
    private readonly wardenIssuer?: string,
  ) {}

  async resolve(token: string): Promise<ResolvedCaller & { validUntil: number }> {
    return resolveUser(token, this.snapshot(), this.now(), this.wardenIssuer);
  }
}

/** Pure: claims → user, or UserTokenRejectedError saying what is wrong. */
export function resolveUser(
  token: string,
  snapshot: PolicySnapshot | null,
  nowMs: number,
  wardenIssuer?: string,
): ResolvedCaller & { validUntil: number } {
  let payload: Record<string, unknown>;
  try {
    payload = decodeClaims(token);
  } catch {
    throw new UserTokenRejectedError('not a JWT (expected header.payload.signature)');
  }
  const uc = snapshot?.agent?.userContext;
  if (uc?.mode === 'Forbidden') {
    throw new UserTokenRejectedError(
      'this agent acts only on its own (userContext.mode Forbidden); send no user token',
    );
  }
  const iss = typeof payload.iss === 'string' ? payload.iss : '';
  const trusted = (uc?.trustedIssuers ?? []).find((t) => t.issuer === iss);
  if (!trusted)
    throw new UserTokenRejectedError(`issuer '${iss.slice(0, 200)}' is not a trusted issuer of this agent`);
  const aud = payload.aud;
  const auds = Array.isArray(aud) ? aud : typeof aud === 'string' ? [aud] : [];
  if (!auds.some((a) => trusted.audiences.includes(String(a)))) {
    throw new UserTokenRejectedError(`token audience is not one of ${JSON.stringify(trusted.audiences)}`);
  }
  const now = Math.floor(nowMs / 1000);
  if (typeof payload.exp !== 'number') throw new UserTokenRejectedError('token has no exp claim');
  if (payload.exp + SKEW_SECONDS < now)
    throw new UserTokenRejectedError('token has expired; get a fresh one from the identity provider');
  if (typeof payload.nbf === 'number' && payload.nbf - SKEW_SECONDS > now) {
    throw new UserTokenRejectedError('token is not valid yet (nbf)');
  }
  if (typeof payload.sub !== 'string' || payload.sub === '')
    throw new UserTokenRejectedError('token has no sub claim');
  const validUntil = Math.min((payload.exp + SKEW_SECONDS) * 1000, nowMs + 5 * 60_000);
  let chain: ResolvedCaller['chain'];
  if (wardenIssuer !== undefined && iss === wardenIssuer) {
    const d = inboundDelegation(payload);
    if (!d.ok) throw new UserTokenRejectedError(`delegation chain refused: ${d.message}`);
    chain = d.prior;
    if (d.userSub === null) return { user: null, chain, validUntil };
  }
  const u = userFromClaims(payload, iss, trusted);
  return {
    user: { sub: u.sub, issuer: u.issuer, groups: u.groups, department: u.department, claims: u.claims },
    ...(chain ? { chain } : {}),
    validUntil,
  };
}
