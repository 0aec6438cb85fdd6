/**
 * POST /v1/token — RFC 8693 token exchange.
 *
 * - subject_token_type jwt: the broker's projected service-account token → a new session.
 * - subject_token_type access_token: a still-valid Warden session token → a fresh session
 *   (refresh), after re-checking the pod and AgentIdentity live.
 */
import { ANNOTATION_AGENT } from '../core/constants.js';
import type { BrokerExpectation } from '../core/identity/broker-pod.js';
import type { WardenMetrics } from '../observability/metrics.js';
import {
  type AttestationFacts,
  type CachedTokenReviewer,
  decideAttestation,
  type TokenReviewer,
} from './attest.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from './constants.js';
import { OAuthError, toOAuthError } from './errors.js';
import { MAX_FORM_BYTES, mediaType, parseForm, readBody } from './http.js';
import type { AgentIdentityGetter, PodGetter } from './kube.js';
import type { RequestContext } from './request.js';
import type { Sessions } from './session.js';

export interface TokenEndpointDeps {
  reviewer: TokenReviewer & Partial<Pick<CachedTokenReviewer, 'knownGood'>>;
  pods: PodGetter;
  identities: AgentIdentityGetter;
  sessions: Sessions;
  /** Records each exchange's outcome and each session issued; absent = no metrics. */
  metrics?: Pick<WardenMetrics, 'tokenExchange' | 'credentialIssued'> | undefined;
  /** Told of every successful attestation (not of refreshes): AgentIdentity status.lastAttestation. */
  onAttested?: ((a: Attested) => void) | undefined;
  /** The broker a pod must carry to attest (trusted images, this authority's URL). */
  broker: BrokerExpectation;
}

/** A pod that attested as an agent: what `status.lastAttestation` shows. */
export interface Attested {
  readonly namespace: string;
  readonly agent: string;
  readonly pod: string;
  readonly podUID: string;
  /** RFC 3339. */
  readonly time: string;
}

/** Largest token we pass to the API server (projected tokens are ~1 KiB). */
const MAX_TOKEN_CHARS = 8192;

function required(params: Map<string, string>, name: string): string {
  const v = params.get(name);
  if (v === undefined || v === '')
    throw new OAuthError('invalid_request', `missing required parameter ${name}`);
  return v;
}

/**
 * The endpoint: the exchange below, plus one `warden_token_exchanges_total` sample per request —
 * `issued`, `refreshed`, or the OAuth error code it was refused with (the same code the caller and
 * the audit event get, since the server turns thrown errors into OAuth errors the same way).
 */
export async function handleTokenExchange(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
): Promise<Record<string, unknown>> {
  try {
    const { body, refresh } = await exchange(ctx, deps);
    deps.metrics?.tokenExchange(refresh ? 'refreshed' : 'issued');
    return body;
  } catch (err) {
    deps.metrics?.tokenExchange(toOAuthError(err).code);
    throw err;
  }
}

async function exchange(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
): Promise<{ body: Record<string, unknown>; refresh: boolean }> {
  ctx.audit.kind = 'Session';
  if (ctx.req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', undefined, 405);
  if (mediaType(ctx.req) !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(
      'invalid_request',
      'Content-Type must be application/x-www-form-urlencoded (RFC 8693 §2.1)',
    );
  }
  const params = parseForm(await readBody(ctx.req, MAX_FORM_BYTES));
  const grantType = required(params, 'grant_type');
  if (grantType !== GRANT_TOKEN_EXCHANGE) {
    throw new OAuthError('unsupported_grant_type', `grant_type must be ${GRANT_TOKEN_EXCHANGE}`);
  }
  const subjectToken = required(params, 'subject_token');
  const subjectTokenType = required(params, 'subject_token_type');
  if (subjectToken.length > MAX_TOKEN_CHARS) {
    throw new OAuthError('invalid_request', `subject_token is longer than ${MAX_TOKEN_CHARS} characters`);
  }
  for (const unsupported of ['actor_token', 'actor_token_type']) {
    if (params.has(unsupported)) {
      throw new OAuthError(
        'invalid_request',
        `${unsupported} is not accepted here; send user tokens on /v1/credentials`,
      );
    }
  }
  const requestedType = params.get('requested_token_type');
  if (
    requestedType !== undefined &&
    requestedType !== TOKEN_TYPE_ACCESS_TOKEN &&
    requestedType !== TOKEN_TYPE_JWT
  ) {
    throw new OAuthError('invalid_request', `requested_token_type must be ${TOKEN_TYPE_ACCESS_TOKEN}`);
  }
  const resource = params.get('resource');

  let facts: AttestationFacts;
  if (subjectTokenType === TOKEN_TYPE_JWT) {
    // A source over its failure budget is only served when its token is already known good:
    // that costs no TokenReview.
    if (ctx.limited && !deps.reviewer.knownGood?.(subjectToken)) throw ctx.slowDown();
    const review = await deps.reviewer.review(subjectToken);
    facts = { review, pod: null, identity: null, resource, broker: deps.broker };
    if (review.authenticated && review.username && review.podName) {
      const ns = review.username.split(':')[2] ?? '';
      Object.assign(ctx.audit, { namespace: ns, pod: review.podName, podUID: review.podUID });
      facts.pod = await deps.pods.getPod(ns, review.podName);
    }
  } else if (subjectTokenType === TOKEN_TYPE_ACCESS_TOKEN) {
    const claims = await deps.sessions.verify(subjectToken);
    const w = claims.warden;
    Object.assign(ctx.audit, { namespace: w.namespace, pod: w.pod, podUID: w.podUID, agent: w.agent });
    facts = {
      review: {
        authenticated: true,
        username: `system:serviceaccount:${w.namespace}:${w.serviceAccount}`,
        podName: w.pod,
        podUID: w.podUID,
      },
      pod: await deps.pods.getPod(w.namespace, w.pod),
      identity: null,
      resource,
      refresh: true,
      broker: deps.broker,
    };
  } else {
    throw new OAuthError(
      'invalid_request',
      `subject_token_type must be ${TOKEN_TYPE_JWT} (a projected service-account token) or ${TOKEN_TYPE_ACCESS_TOKEN} (a Warden session token, to refresh)`,
    );
  }
  const agentName = facts.pod?.metadata?.annotations?.[ANNOTATION_AGENT];
  if (agentName && facts.pod?.metadata?.uid === facts.review.podUID) {
    const ns = facts.review.username?.split(':')[2] ?? '';
    ctx.audit.agent = agentName;
    facts.identity = await deps.identities.getAgentIdentity(ns, agentName);
  }
  const decision = decideAttestation(facts);
  if (!decision.ok) throw decision.error;
  const session = deps.sessions.issue(decision.subject);
  deps.metrics?.credentialIssued('Session');
  ctx.audit.credentialId = session.claims.jti;
  ctx.noStore = true;
  if (!facts.refresh && deps.onAttested && ctx.audit.agent && ctx.audit.pod) {
    deps.onAttested({
      namespace: ctx.audit.namespace ?? '',
      agent: ctx.audit.agent,
      pod: ctx.audit.pod,
      podUID: ctx.audit.podUID ?? '',
      time: new Date().toISOString(),
    });
  }
  return {
    body: {
      access_token: session.token,
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: session.expiresIn,
    },
    refresh: facts.refresh === true,
  };
}
