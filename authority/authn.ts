/** Session authentication of broker calls: every call carries `Authorization: Bearer <session>`. */
import { OAuthError } from './errors.js';
import { bearerToken } from './http.js';
import type { RequestContext } from './request.js';
import type { SessionClaims, Sessions } from './session.js';

/**
 * Verifies the caller's session and records who it is in the audit event. A source over its
 * failure budget gets 429 instead of a precise invalid_token (a valid session still passes:
 * verifying it costs no API call).
 */
export async function authenticate(ctx: RequestContext, sessions: Sessions): Promise<SessionClaims> {
  try {
    const claims = await sessions.verify(bearerToken(ctx.req));
    const w = claims.warden;
    Object.assign(ctx.audit, { namespace: w.namespace, agent: w.agent, pod: w.pod, podUID: w.podUID });
    return claims;
  } catch (err) {
    if (ctx.limited && err instanceof OAuthError) throw ctx.slowDown();
    throw err;
  }
}
