/**
 * Workload attestation: a broker proves which pod it runs in with the pod's projected
 * service-account token, and gets a session for the pod's AgentIdentity.
 *
 * gather (I/O): TokenReview (cached per token until its expiry), live Pod get, AgentIdentity get.
 * decide (pure): decideAttestation() over what was gathered → a session subject or an OAuthError.
 */
import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { ANNOTATION_AGENT, DEFAULT_BROKER_AUDIENCE, GATEWAY_AUDIENCE } from '../core/constants.js';
import type { PodLike } from '../core/identity/agent.js';
import {
  type AttestationConditions,
  checkAttestationConditions,
  type SignatureVerdicts,
} from '../core/identity/attestation.js';
import {
  type BrokerExpectation,
  type BrokerPodProblem,
  brokerTokenExposures,
  injectedBrokerProblems,
  withoutBroker,
} from '../core/identity/broker-pod.js';
import type { KubeApi } from '../kube/kube.js';
import {
  AGENT_RESOURCE_PREFIX,
  CLUSTER_CLOCK_SKEW_MS,
  EXTRA_NODE_NAME,
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
} from './constants.js';
import { OAuthError } from './errors.js';
import type { SessionSubject } from './session.js';

/** The AgentIdentity fields attestation reads (structural until core/api types exist). */
export interface AgentIdentityLike {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; uid?: string };
  spec?: {
    serviceAccountName?: string;
    suspended?: boolean;
    suspendReason?: string;
    attestation?: AttestationConditions & { audience?: string; tokenExpirationSeconds?: number };
    userContext?: unknown;
    maxCredentialTTL?: string;
  };
}

/** What the API server said about a token. */
export interface TokenReviewResult {
  authenticated: boolean;
  /** system:serviceaccount:<ns>:<name> */
  username?: string;
  /** Audiences the API server confirmed the token is valid for. */
  audiences?: string[];
  podName?: string;
  podUID?: string;
  nodeName?: string;
  /** API server error text: audit only, never returned to the caller. */
  error?: string;
}

export interface TokenReviewer {
  review(token: string): Promise<TokenReviewResult>;
}

const TOKEN_REVIEWS_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';

/** The parts of an authentication.k8s.io/v1 TokenReview answer that attestation reads. */
interface TokenReviewResponse {
  status?: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; extra?: Record<string, string[]> };
  };
}

function firstExtra(extra: Record<string, string[]> | undefined, key: string): string | undefined {
  return extra?.[key]?.[0];
}

/**
 * TokenReview against the API server. The review is asked for the token's own `aud` values, so
 * the answer's `status.audiences` is the set the API server *verified*; whether that includes the
 * AgentIdentity's audience is decided afterwards, once we know which AgentIdentity applies.
 */
export class ApiTokenReviewer implements TokenReviewer {
  /** `api`: the process's API client (a Manager's), so reviews share its keep-alive connections. */
  constructor(private readonly api: KubeApi) {}

  async review(token: string): Promise<TokenReviewResult> {
    const audiences = unverifiedAudiences(token);
    if (audiences.length === 0) {
      return { authenticated: false, error: 'token has no aud claim (or is not a JWT)' };
    }
    const res = await this.api.request<TokenReviewResponse>('POST', TOKEN_REVIEWS_PATH, {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
    });
    const s = res.status;
    if (!s?.authenticated) return { authenticated: false, error: s?.error ?? 'not authenticated' };
    return {
      authenticated: true,
      username: s.user?.username,
      audiences: s.audiences ?? [],
      podName: firstExtra(s.user?.extra, EXTRA_POD_NAME),
      podUID: firstExtra(s.user?.extra, EXTRA_POD_UID),
      nodeName: firstExtra(s.user?.extra, EXTRA_NODE_NAME),
    };
  }
}

/** The `aud` claim of a JWT without verifying it (only used to ask the API server the right question). */
export function unverifiedAudiences(token: string): string[] {
  try {
    const aud = decodeJwt(token).aud;
    const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    return list.filter((a): a is string => typeof a === 'string').slice(0, 8);
  } catch {
    return [];
  }
}

function unverifiedExpiry(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Caches *successful* reviews keyed by SHA-256 of the token until the token's own expiry (capped
 * by `maxAgeMs`). Safe because the key is the exact token the API server accepted, and the live
 * Pod lookup still runs on every exchange (a deleted or replaced pod is caught there). Failures
 * are not cached: the rate limiter deals with repeated failures.
 */
export class CachedTokenReviewer implements TokenReviewer {
  private readonly cache = new Map<string, { result: TokenReviewResult; until: number }>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly inner: TokenReviewer,
    private readonly opts: { maxEntries?: number; maxAgeMs?: number; now?: () => number } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Whether this exact token is known good right now (used to let valid callers past the rate limiter). */
  knownGood(token: string): boolean {
    const entry = this.cache.get(tokenHash(token));
    return entry !== undefined && entry.until > this.now();
  }

  async review(token: string): Promise<TokenReviewResult> {
    const key = tokenHash(token);
    const now = this.now();
    const entry = this.cache.get(key);
    if (entry && entry.until > now) {
      this.hits++;
      return entry.result;
    }
    if (entry) this.cache.delete(key);
    this.misses++;
    const result = await this.inner.review(token);
    const exp = unverifiedExpiry(token);
    // Until the token's expiry minus the skew budget, on our clock: the API server judges `exp` on
    // its own, which may be ahead of ours.
    const until =
      exp === undefined ? 0 : Math.min(exp - CLUSTER_CLOCK_SKEW_MS, now + (this.opts.maxAgeMs ?? 3600_000));
    if (result.authenticated && until > now) {
      this.cache.set(key, { result, until });
      const max = this.opts.maxEntries ?? 50_000;
      if (this.cache.size > max) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
    }
    return result;
  }
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Everything decideAttestation needs, gathered by the caller. */
export interface AttestationFacts {
  review: TokenReviewResult;
  /** The live pod named by the token, or null when it does not exist. */
  pod: PodLike | null;
  /** The AgentIdentity named by the pod's annotation, or null when it does not exist. */
  identity: AgentIdentityLike | null;
  /** RFC 8693 `resource` the broker sent, if any (must name the same agent). */
  resource?: string;
  /** True when refreshing with a session token: the audience was checked at the first exchange. */
  refresh?: boolean;
  /** The broker this Warden injects: only a pod carrying it attests (docs/threat-model.md). */
  broker: BrokerExpectation;
  /**
   * 'gateway': an agent pod without a sidecar, served by the shared gateway. Its token's audience
   * must be GATEWAY_AUDIENCE (not the broker's), and no injected broker is expected: nothing in
   * the pod ever holds a session or a credential (docs/threat-model.md, "Shared gateway").
   */
  mode?: 'broker' | 'gateway';
  /** Verdicts on the running images' signatures, per container (token.ts gathers them when required). */
  imageSignatures?: SignatureVerdicts;
}

/** At most this many problems are spelled out to the caller (all reasons go to the audit detail). */
const MAX_SHAPE_PROBLEMS = 4;

function shapeRefusal(lead: string, problems: readonly BrokerPodProblem[]): OAuthError {
  const shown = problems.slice(0, MAX_SHAPE_PROBLEMS).map((p) => `${p.field}: ${p.message}`);
  const more =
    problems.length > MAX_SHAPE_PROBLEMS ? ` (and ${problems.length - MAX_SHAPE_PROBLEMS} more)` : '';
  return new OAuthError(
    'unauthorized_client',
    `${lead}, so it gets no session: ${shown.join('; ')}${more}`,
    `reasons ${[...new Set(problems.map((p) => p.reason))].join(',')}`,
  );
}

const SA_PREFIX = 'system:serviceaccount:';

/** Parses system:serviceaccount:<ns>:<name>. */
export function parseServiceAccountUsername(
  username: string | undefined,
): { namespace: string; name: string } | undefined {
  if (!username?.startsWith(SA_PREFIX)) return undefined;
  const [namespace, name, ...rest] = username.slice(SA_PREFIX.length).split(':');
  if (!namespace || !name || rest.length > 0) return undefined;
  return { namespace, name };
}

const FRESH_TOKEN = 'mount a projected service-account token (audience from the AgentIdentity) and retry';

/**
 * The attestation decision. Descriptions tell the caller what to fix without revealing objects it
 * could not see anyway; `detail` (audit only) carries the specifics.
 */
export function decideAttestation(
  f: AttestationFacts,
): { ok: true; subject: SessionSubject } | { ok: false; error: OAuthError } {
  const fail = (code: ConstructorParameters<typeof OAuthError>[0], description: string, detail?: string) => ({
    ok: false as const,
    error: new OAuthError(code, description, detail),
  });
  const r = f.review;
  if (!r.authenticated) {
    return fail(
      'invalid_grant',
      `subject_token was rejected by the Kubernetes API server (bad signature, expired, not yet valid, or its pod is gone); ${FRESH_TOKEN}`,
      r.error,
    );
  }
  const sa = parseServiceAccountUsername(r.username);
  if (!sa)
    return fail('invalid_grant', 'subject_token is not a service-account token', `username ${r.username}`);
  if (!r.podName || !r.podUID) {
    return fail(
      'invalid_grant',
      `subject_token is not bound to a pod; ${FRESH_TOKEN}`,
      `username ${r.username}`,
    );
  }
  const pod = f.pod;
  if (!pod) {
    return fail(
      'invalid_grant',
      'the pod this token is bound to no longer exists',
      `pod ${sa.namespace}/${r.podName}`,
    );
  }
  if (pod.metadata?.uid !== r.podUID) {
    return fail(
      'invalid_grant',
      'the pod this token is bound to no longer exists (a pod with the same name has a different UID)',
      `pod ${sa.namespace}/${r.podName}: token UID ${r.podUID}, live UID ${pod.metadata?.uid}`,
    );
  }
  if (
    (pod.metadata?.namespace ?? sa.namespace) !== sa.namespace ||
    pod.spec?.serviceAccountName !== sa.name
  ) {
    return fail(
      'invalid_grant',
      'the pod does not run as the service account the token was issued for',
      `pod SA ${pod.spec?.serviceAccountName}, token SA ${sa.name}`,
    );
  }
  const agentName = pod.metadata?.annotations?.[ANNOTATION_AGENT];
  if (!agentName) {
    return fail('unauthorized_client', `the pod is not an agent: it has no ${ANNOTATION_AGENT} annotation`);
  }
  const id = f.identity;
  if (!id) {
    return fail(
      'unauthorized_client',
      `the pod's ${ANNOTATION_AGENT} annotation names AgentIdentity "${agentName}", which does not exist in namespace ${sa.namespace}`,
    );
  }
  if (id.spec?.serviceAccountName !== sa.name) {
    return fail(
      'unauthorized_client',
      `AgentIdentity "${agentName}" requires service account "${id.spec?.serviceAccountName}", but the pod runs as "${sa.name}"`,
    );
  }
  const gateway = f.mode === 'gateway';
  const audience = gateway ? GATEWAY_AUDIENCE : id.spec?.attestation?.audience || DEFAULT_BROKER_AUDIENCE;
  if (!f.refresh && !(r.audiences ?? []).includes(audience)) {
    return fail(
      'invalid_grant',
      gateway
        ? `subject_token audience must include "${GATEWAY_AUDIENCE}" (a projected service-account token for the shared gateway)`
        : `subject_token audience must include "${audience}" (AgentIdentity spec.attestation.audience)`,
      `verified audiences ${JSON.stringify(r.audiences)}`,
    );
  }
  // Only Warden's broker may hold a session: the pod must carry the broker the webhook injects,
  // and nothing else in it may read that broker's token. Checked on refresh too, against the live
  // pod, so a pod changed after admission (an ephemeral container, a new broker image) loses it.
  // The pod getter returns the API server's whole Pod; PodLike only names what identity reads.
  const livePod = pod as V1Pod;
  // Gateway mode: the pod has no broker to check; the gateway holds the session for it instead.
  const injected = gateway ? [] : injectedBrokerProblems(livePod, agentName, audience, f.broker);
  if (injected.length > 0) {
    return { ok: false, error: shapeRefusal('the pod does not carry the broker Warden injects', injected) };
  }
  const exposed = gateway
    ? []
    : brokerTokenExposures(livePod, [...new Set([audience, DEFAULT_BROKER_AUDIENCE])]);
  if (exposed.length > 0) {
    return {
      ok: false,
      error: shapeRefusal("a container other than Warden's broker can read the broker's token", exposed),
    };
  }
  if (f.resource !== undefined) {
    const expected = `${AGENT_RESOURCE_PREFIX}${sa.namespace}:${agentName}`;
    if (f.resource !== expected) {
      return fail(
        'invalid_target',
        `resource names a different agent than the pod this token is bound to (the pod is annotated for ${expected})`,
        `requested ${f.resource}`,
      );
    }
  }
  // The broker was verified above: allowedImages judge the agent's own containers.
  const conditions = checkAttestationConditions(
    withoutBroker(livePod),
    id.spec?.attestation,
    undefined,
    f.imageSignatures,
  );
  if (!conditions.ok) {
    return fail(
      'unauthorized_client',
      `pod does not meet AgentIdentity "${agentName}" attestation: ${conditions.message}`,
      conditions.reason,
    );
  }
  if (id.spec?.suspended) {
    return fail(
      'access_denied',
      `AgentIdentity "${agentName}" is suspended (spec.suspended: true); no session is issued`,
      id.spec.suspendReason,
    );
  }
  return {
    ok: true,
    subject: {
      namespace: sa.namespace,
      agent: agentName,
      serviceAccount: sa.name,
      pod: r.podName,
      podUID: r.podUID,
      ...(gateway ? { via: 'gateway' as const } : {}),
    },
  };
}
