/** Session authentication of broker calls: every call carries `Authorization: Bearer <session>`. */
import { OAuthError } from './errors.js';
import { bearerToken, MAX_JSON_BYTES, mediaType, parseJsonObject, readBody } from './http.js';
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

/**
 * The start of every broker call that posts JSON under a session (/v1/credentials, /v1/audit,
 * /v1/quota): POST only (405), the session verified, `Content-Type: application/json`, and a JSON
 * object body of at most `maxBytes`. Each refusal is an OAuthError naming what was wrong.
 */
export async function sessionJsonRequest(
  ctx: RequestContext,
  sessions: Sessions,
  maxBytes = MAX_JSON_BYTES,
): Promise<{ claims: SessionClaims; body: Record<string, unknown> }> {
  if (ctx.req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', undefined, 405);
  const claims = await authenticate(ctx, sessions);
  if (mediaType(ctx.req) !== 'application/json') {
    throw new OAuthError('invalid_request', 'Content-Type must be application/json');
  }
  return { claims, body: parseJsonObject(await readBody(ctx.req, maxBytes)) };
}
