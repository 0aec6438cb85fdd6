/**
 * POST /v1/token — RFC 8693 token exchange, and the client credentials grant for agents.
 *
 * Brokers (sidecars):
 * - subject_token_type jwt: the broker's projected service-account token → a new session.
 * - subject_token_type access_token: a still-valid Warden session token → a fresh session
 *   (refresh), after re-checking the pod and AgentIdentity live.
 * Agents without a sidecar (the shared gateway, docs/gateway.md):
 * - subject_token_type jwt with a token whose audience is warden.dev/gateway → an agent token
 *   (audience the gateway; never usable as a session). The same for grant_type client_credentials
 *   with that token as an RFC 7523 client assertion — what an MCP client's OAuth support sends.
 * - the gateway, authenticated by actor_token (its own projected token, its service account listed
 *   in `gateway.serviceAccounts`), exchanges an agent's token (agent token or gateway-audience SA
 *   token) for a session it holds for that agent: the pod is attested without an injected broker.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_AGENT, DEFAULT_BROKER_AUDIENCE, GATEWAY_AUDIENCE } from '../core/constants.js';
import { signatureChecks } from '../core/identity/attestation.js';
import { type BrokerExpectation, withoutBroker } from '../core/identity/broker-pod.js';
import type { SignatureVerdict } from '../core/identity/cosign.js';
import type { WardenMetrics } from '../observability/metrics.js';
import {
  type AttestationFacts,
  type CachedTokenReviewer,
  decideAttestation,
  type TokenReviewer,
  unverifiedAudiences,
} from './attest.js';
import {
  AGENT_RESOURCE_PREFIX,
  CLIENT_ASSERTION_TYPE_JWT_BEARER,
  GRANT_CLIENT_CREDENTIALS,
  GRANT_TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_AGENT,
  TOKEN_TYPE_JWT,
} from './constants.js';
import { OAuthError, toOAuthError } from './errors.js';
import { MAX_FORM_BYTES, mediaType, parseForm, readBody } from './http.js';
import type { ImageSignatureVerifier } from './image-signatures.js';
import type { AgentIdentityGetter, PodGetter } from './kube.js';
import type { RequestContext } from './request.js';
import type { IssuedSession, SessionSubject, Sessions } from './session.js';

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
  /**
   * The shared gateway: the service accounts (`system:serviceaccount:<ns>:<name>`) whose projected
   * token (audience warden.dev/broker) may act as actor_token to hold sessions for agents without
   * a sidecar. Absent or empty: no gateway sessions are issued.
   */
  gateway?: { readonly serviceAccounts: readonly string[] } | undefined;
  /**
   * Verifies running images' signatures (spec.attestation.images.signatures). Absent: a pod whose
   * AgentIdentity requires signatures is refused (ImageSignatureUnverifiable), never let through.
   */
  imageSignatures?: ImageSignatureVerifier | undefined;
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
  if (grantType === GRANT_CLIENT_CREDENTIALS) return clientCredentials(ctx, deps, params);
  if (grantType !== GRANT_TOKEN_EXCHANGE) {
    throw new OAuthError(
      'unsupported_grant_type',
      `grant_type must be ${GRANT_TOKEN_EXCHANGE} or ${GRANT_CLIENT_CREDENTIALS}`,
    );
  }
  const subjectToken = required(params, 'subject_token');
  const subjectTokenType = required(params, 'subject_token_type');
  checkLength('subject_token', subjectToken);
  const requestedType = params.get('requested_token_type');
  if (
    requestedType !== undefined &&
    requestedType !== TOKEN_TYPE_ACCESS_TOKEN &&
    requestedType !== TOKEN_TYPE_JWT
  ) {
    throw new OAuthError('invalid_request', `requested_token_type must be ${TOKEN_TYPE_ACCESS_TOKEN}`);
  }
  const resource = params.get('resource');
  if (params.has('actor_token') || params.has('actor_token_type')) {
    return gatewaySession(ctx, deps, params, subjectToken, subjectTokenType, resource);
  }

  let facts: AttestationFacts;
  if (subjectTokenType === TOKEN_TYPE_JWT) {
    // A token meant for the gateway buys an agent token, never a session (the agent holds it).
    if (unverifiedAudiences(subjectToken).includes(GATEWAY_AUDIENCE)) {
      const subject = await attestGatewayCaller(ctx, deps, subjectToken, TOKEN_TYPE_JWT, resource);
      return { body: agentTokenBody(ctx, deps, subject, true), refresh: false };
    }
    // A source over its failure budget is only served when its token is already known good:
    // that costs no TokenReview.
    if (ctx.limited && !deps.reviewer.knownGood?.(subjectToken)) throw ctx.slowDown();
    const review = await deps.reviewer.review(subjectToken);
    facts = { review, pod: null, identity: null, resource, broker: deps.broker };
    if (review.authenticated && review.username && review.podName) {
      const ns = review.username.split(':')[2] ?? '';
      Object.assign(ctx.audit, { namespace: ns, pod: review.podName, podUID: review.podUID });
      facts.pod = await deps.pods.getPod(ns, review.podName, review.podUID);
    }
  } else if (subjectTokenType === TOKEN_TYPE_ACCESS_TOKEN) {
    const claims = await deps.sessions.verify(subjectToken);
    facts = await sessionFacts(ctx, deps, claims.warden, resource);
  } else {
    throw new OAuthError(
      'invalid_request',
      `subject_token_type must be ${TOKEN_TYPE_JWT} (a projected service-account token) or ${TOKEN_TYPE_ACCESS_TOKEN} (a Warden session token, to refresh)`,
    );
  }
  await lookUpIdentity(ctx, deps, facts);
  const decision = decideAttestation(facts);
  if (!decision.ok) throw decision.error;
  return {
    body: sessionBody(ctx, deps, decision.subject, facts.refresh === true),
    refresh: facts.refresh === true,
  };
}

function checkLength(name: string, token: string): void {
  if (token.length > MAX_TOKEN_CHARS) {
    throw new OAuthError('invalid_request', `${name} is longer than ${MAX_TOKEN_CHARS} characters`);
  }
}

/** Facts for a subject Warden already attested (a session to refresh, an agent token): re-checked live. */
async function sessionFacts(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  w: SessionSubject,
  resource: string | undefined,
): Promise<AttestationFacts> {
  Object.assign(ctx.audit, { namespace: w.namespace, pod: w.pod, podUID: w.podUID, agent: w.agent });
  return {
    review: {
      authenticated: true,
      username: `system:serviceaccount:${w.namespace}:${w.serviceAccount}`,
      podName: w.pod,
      podUID: w.podUID,
    },
    pod: await deps.pods.getPod(w.namespace, w.pod, w.podUID),
    identity: null,
    resource,
    refresh: true,
    broker: deps.broker,
    mode: w.via === 'gateway' ? 'gateway' : 'broker',
  };
}

async function lookUpIdentity(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  facts: AttestationFacts,
): Promise<void> {
  const agentName = facts.pod?.metadata?.annotations?.[ANNOTATION_AGENT];
  if (agentName && facts.pod?.metadata?.uid === facts.review.podUID) {
    const ns = facts.review.username?.split(':')[2] ?? '';
    ctx.audit.agent = agentName;
    facts.identity = await deps.identities.getAgentIdentity(ns, agentName);
    // spec.attestation.images (digests, signatures) is judged on the pod's status (what runs), the
    // part of a pod that changes at every container (re)start: read live, never from the pod
    // watch, so a re-pointed tag is refused (and a just-started container accepted) without a
    // watch delay.
    const images = facts.identity?.spec?.attestation?.images;
    if ((images?.digests?.length || images?.signatures?.keys?.length) && deps.pods.getLivePod) {
      facts.pod = await deps.pods.getLivePod(ns, facts.review.podName ?? '');
    }
    await verifyImageSignatures(deps, facts);
  }
}

/**
 * Gathers the signature verdicts decideAttestation needs when the AgentIdentity requires signed
 * images: one registry check per running image (cached by the verifier), all at once. Only for a
 * token the API server authenticated, bound to this live pod, whose AgentIdentity exists.
 */
async function verifyImageSignatures(deps: TokenEndpointDeps, facts: AttestationFacts): Promise<void> {
  const pod = facts.pod;
  if (!pod || pod.metadata?.uid !== facts.review.podUID || !facts.identity || !facts.review.authenticated)
    return;
  const checks = signatureChecks(withoutBroker(pod as V1Pod), facts.identity.spec?.attestation);
  const verifier = deps.imageSignatures;
  if (checks.length === 0 || !verifier) return;
  const verdicts = await Promise.all(
    checks.map(async (c): Promise<[string, SignatureVerdict]> => [c.container, await verifier.verify(c)]),
  );
  facts.imageSignatures = new Map(verdicts);
}

/**
 * An agent without a sidecar, attested in gateway mode: from its projected token (audience
 * warden.dev/gateway, TokenReview) or from an agent token this authority issued (re-checked live).
 * `resource`: an RFC 8707 resource an MCP client names (the gateway's https URL) is accepted; a
 * Warden agent URN must name this agent.
 */
async function attestGatewayCaller(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  token: string,
  type: string,
  resource: string | undefined,
): Promise<SessionSubject> {
  if (
    resource !== undefined &&
    !resource.startsWith(AGENT_RESOURCE_PREFIX) &&
    !/^https?:\/\//.test(resource)
  ) {
    throw new OAuthError(
      'invalid_target',
      `resource must be the gateway's URL (https://…) or ${AGENT_RESOURCE_PREFIX}<namespace>:<agent>`,
    );
  }
  const agentResource = resource?.startsWith(AGENT_RESOURCE_PREFIX) ? resource : undefined;
  let facts: AttestationFacts;
  if (type === TOKEN_TYPE_JWT) {
    if (ctx.limited && !deps.reviewer.knownGood?.(token)) throw ctx.slowDown();
    const review = await deps.reviewer.review(token);
    facts = {
      review,
      pod: null,
      identity: null,
      resource: agentResource,
      broker: deps.broker,
      mode: 'gateway',
    };
    if (review.authenticated && review.username && review.podName) {
      const ns = review.username.split(':')[2] ?? '';
      Object.assign(ctx.audit, { namespace: ns, pod: review.podName, podUID: review.podUID });
      facts.pod = await deps.pods.getPod(ns, review.podName, review.podUID);
    }
  } else if (type === TOKEN_TYPE_AGENT) {
    const claims = await deps.sessions.verifyAgentToken(token);
    facts = await sessionFacts(ctx, deps, { ...claims.warden, via: 'gateway' }, agentResource);
  } else {
    throw new OAuthError(
      'invalid_request',
      `subject_token_type must be ${TOKEN_TYPE_JWT} (a projected service-account token, audience ${GATEWAY_AUDIENCE}) or ${TOKEN_TYPE_AGENT} (a Warden agent token)`,
    );
  }
  await lookUpIdentity(ctx, deps, facts);
  const decision = decideAttestation(facts);
  if (!decision.ok) throw decision.error;
  return decision.subject;
}

/**
 * RFC 6749 §4.4 client credentials for registered workloads: the client authenticates with its
 * projected service-account token (audience warden.dev/gateway) as an RFC 7523 client assertion —
 * what an MCP client's OAuth support (a private_key_jwt provider with a prepared assertion)
 * sends. `client_id`, when sent, must be the token's subject (system:serviceaccount:<ns>:<name>).
 */
async function clientCredentials(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  params: Map<string, string>,
): Promise<{ body: Record<string, unknown>; refresh: boolean }> {
  const assertionType = required(params, 'client_assertion_type');
  if (assertionType !== CLIENT_ASSERTION_TYPE_JWT_BEARER) {
    throw new OAuthError(
      'invalid_client',
      `client_assertion_type must be ${CLIENT_ASSERTION_TYPE_JWT_BEARER}`,
    );
  }
  const assertion = required(params, 'client_assertion');
  checkLength('client_assertion', assertion);
  if (!unverifiedAudiences(assertion).includes(GATEWAY_AUDIENCE)) {
    throw new OAuthError(
      'invalid_client',
      `client_assertion must be a projected service-account token with audience ${GATEWAY_AUDIENCE}`,
    );
  }
  const subject = await attestGatewayCaller(ctx, deps, assertion, TOKEN_TYPE_JWT, params.get('resource'));
  const clientId = params.get('client_id');
  const expected = `system:serviceaccount:${subject.namespace}:${subject.serviceAccount}`;
  if (clientId !== undefined && clientId !== expected) {
    throw new OAuthError(
      'invalid_client',
      `client_id must be the assertion's subject (${expected})`,
      `client_id ${clientId}`,
    );
  }
  return { body: agentTokenBody(ctx, deps, subject, false), refresh: false };
}

/**
 * The gateway holding a session for an agent without a sidecar. actor_token is the gateway's own
 * projected token (audience warden.dev/broker), its service account one of gateway.serviceAccounts;
 * subject_token is what the agent presented to the gateway.
 */
async function gatewaySession(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  params: Map<string, string>,
  subjectToken: string,
  subjectTokenType: string,
  resource: string | undefined,
): Promise<{ body: Record<string, unknown>; refresh: boolean }> {
  const actorToken = required(params, 'actor_token');
  if (required(params, 'actor_token_type') !== TOKEN_TYPE_JWT) {
    throw new OAuthError('invalid_request', `actor_token_type must be ${TOKEN_TYPE_JWT}`);
  }
  checkLength('actor_token', actorToken);
  const allowed = deps.gateway?.serviceAccounts ?? [];
  if (allowed.length === 0) {
    throw new OAuthError(
      'unauthorized_client',
      'actor_token is accepted only from the shared gateway, and no gateway is configured (controller --gateway-service-account)',
    );
  }
  if (ctx.limited && !deps.reviewer.knownGood?.(actorToken)) throw ctx.slowDown();
  const actor = await deps.reviewer.review(actorToken);
  if (
    !actor.authenticated ||
    !actor.username ||
    !allowed.includes(actor.username) ||
    !(actor.audiences ?? []).includes(DEFAULT_BROKER_AUDIENCE)
  ) {
    throw new OAuthError(
      'unauthorized_client',
      `actor_token must be the shared gateway's projected service-account token (audience ${DEFAULT_BROKER_AUDIENCE})`,
      `actor ${actor.username ?? 'unauthenticated'} ${actor.error ?? ''}`.trim(),
    );
  }
  const subject = await attestGatewayCaller(ctx, deps, subjectToken, subjectTokenType, resource);
  return { body: sessionBody(ctx, deps, { ...subject, via: 'gateway' }, false), refresh: false };
}

function sessionBody(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  subject: SessionSubject,
  refresh: boolean,
): Record<string, unknown> {
  return issuedBody(ctx, deps, 'Session', deps.sessions.issue(subject), refresh, TOKEN_TYPE_ACCESS_TOKEN);
}

function agentTokenBody(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  subject: SessionSubject,
  exchanged: boolean,
): Record<string, unknown> {
  const issued = deps.sessions.issueAgentToken(subject);
  return issuedBody(ctx, deps, 'AgentToken', issued, false, exchanged ? TOKEN_TYPE_AGENT : undefined);
}

/** The answer carrying an issued session or agent token: counted, audited by id, never cached. */
function issuedBody(
  ctx: RequestContext,
  deps: TokenEndpointDeps,
  kind: 'Session' | 'AgentToken',
  issued: IssuedSession,
  refresh: boolean,
  issuedTokenType: string | undefined,
): Record<string, unknown> {
  deps.metrics?.credentialIssued(kind);
  ctx.audit.credentialId = issued.claims.jti;
  ctx.noStore = true;
  attested(ctx, deps, refresh);
  return {
    access_token: issued.token,
    ...(issuedTokenType ? { issued_token_type: issuedTokenType } : {}),
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
  };
}

function attested(ctx: RequestContext, deps: TokenEndpointDeps, refresh: boolean): void {
  if (!refresh && deps.onAttested && ctx.audit.agent && ctx.audit.pod) {
    deps.onAttested({
      namespace: ctx.audit.namespace ?? '',
      agent: ctx.audit.agent,
      pod: ctx.audit.pod,
      podUID: ctx.audit.podUID ?? '',
      time: new Date().toISOString(),
    });
  }
}
