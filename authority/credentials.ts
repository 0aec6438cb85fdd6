/**
 * POST /v1/credentials — the central decision before any credential is handed out.
 *
 * The broker already decided locally from its snapshot; the authority decides again here from its
 * own watch-fed view, so a tampered broker cannot obtain a credential its policy does not allow.
 * Body (JSON): {target, kind?, tool?, args?, method?, path?, context?}; the human's token, if any,
 * in the `x-warden-user-token` header (docs/adr/0006-authority-tokens.md).
 * Allow → 200 with the decision (credential minting is added by the credentials module).
 * Deny  → 403 access_denied with the decision: policy, rule, condition, message.
 */

import { HEADER_USER_TOKEN } from '../core/constants.js';
import { type AgentContext, agentContext } from '../core/identity/agent.js';
import { auditUser, checkUserMode, type UserContext, type UserModeCheck } from '../core/identity/user.js';
import {
  type ContextInput,
  type Decision,
  decide,
  decideSessionTraffic,
  type RequestKind,
} from '../core/policy/index.js';
import type { WardenMetrics } from '../observability/metrics.js';
import { sessionJsonRequest } from './authn.js';
import { OAuthError, toOAuthError } from './errors.js';
import type { Issued } from './issuance-stats.js';
import { type IssuanceDeps, type IssuedAnswer, IssueRefused, issueCredential } from './issue.js';
import type { PodGetter } from './kube.js';
import type { PolicySource } from './policy-store.js';
import type { RequestContext } from './request.js';
import type { Sessions } from './session.js';
import { callerFromHeader, type UserContextSpec, type UserTokenVerifier } from './user-token.js';

export interface CredentialsDeps {
  /** Minting after an Allow; without it the answer is the decision alone (credential: null). */
  issuance?: IssuanceDeps;
  sessions: Sessions;
  store: PolicySource;
  pods: PodGetter;
  userTokens: UserTokenVerifier;
  now?: () => Date;
  /** Records each decision (allow/deny with its reason) and each credential issued; absent = no metrics. */
  metrics?: Pick<WardenMetrics, 'decision' | 'credentialIssued'> | undefined;
  /** Told of each credential issued (the controller counts them into CredentialProvider status.issuedCount). */
  onIssued?: ((i: Issued) => void) | undefined;
}

/** Refusals at this endpoint that are not policy decisions (observability/metrics.ts lists them as reasons). */
export type CredentialDenyReason =
  | 'AgentNotFound'
  | Extract<UserModeCheck, { ok: false }>['reason']
  | IssueRefused['reason'];

/** A credential request, validated. */
export interface CredentialRequest {
  target: string;
  kind: RequestKind;
  tool?: string;
  args?: unknown;
  method?: string;
  path?: string;
  context?: ContextInput;
  /** RFC 7638 thumbprint of the broker's DPoP key (body field `dpop_jkt`, RFC 9449 §10 spelling). */
  dpopJkt?: string;
}

/** A base64url SHA-256 digest: what an RFC 7638 JWK thumbprint is. */
const JWK_THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/** A policy denial: an OAuth access_denied whose body also carries the decision. */
export class DeniedError extends OAuthError {
  constructor(readonly decision: Decision | { reason: CredentialDenyReason; message: string }) {
    super('access_denied', decision.message);
  }
  override body(): { error: 'access_denied'; error_description: string; decision: unknown } {
    return {
      error: 'access_denied',
      error_description: this.description,
      decision: publicDecision(this.decision),
    };
  }
}

function publicDecision(d: Decision | { reason: string; message: string }) {
  const full = d as Partial<Decision>;
  return {
    decision: 'Deny',
    reason: d.reason,
    policy: full.policy ?? null,
    rule: full.rule ?? null,
    condition: full.condition ?? null,
    message: d.message,
  };
}

const KINDS: readonly RequestKind[] = ['mcp', 'http', 'postgresql'];
const CONTEXT_STRINGS = ['purpose', 'ticketId', 'model', 'geo'] as const;

function optionalString(body: Record<string, unknown>, field: string, max: number): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) {
    throw new OAuthError('invalid_request', `${field} must be a string of at most ${max} characters`);
  }
  return v;
}

/** Validates the JSON body; each error names the field. */
export function parseCredentialRequest(body: Record<string, unknown>): CredentialRequest {
  const target = optionalString(body, 'target', 253);
  if (!target) throw new OAuthError('invalid_request', 'target (a CredentialProvider name) is required');
  const tool = optionalString(body, 'tool', 256);
  const method = optionalString(body, 'method', 16)?.toUpperCase();
  const path = optionalString(body, 'path', 4096);
  const kindRaw = optionalString(body, 'kind', 16);
  if (kindRaw !== undefined && !KINDS.includes(kindRaw as RequestKind)) {
    throw new OAuthError('invalid_request', `kind must be one of ${KINDS.join(', ')}`);
  }
  const kind = (kindRaw as RequestKind | undefined) ?? (tool ? 'mcp' : method ? 'http' : 'postgresql');
  // kind mcp without a tool: protocol traffic (initialize, tools/list), decided by core/policy's decideSessionTraffic().
  if (kind === 'http' && (!method || !path)) {
    throw new OAuthError('invalid_request', 'method and path are required when kind is http');
  }
  let context: ContextInput | undefined;
  if (body.context !== undefined && body.context !== null) {
    const c = body.context as Record<string, unknown>;
    if (typeof c !== 'object' || Array.isArray(c))
      throw new OAuthError('invalid_request', 'context must be an object');
    const out: Record<string, unknown> = {};
    for (const f of CONTEXT_STRINGS) {
      const v = optionalString(c, f, 1024);
      if (v !== undefined) out[f] = v;
    }
    if (c.chainStep !== undefined) {
      if (!Number.isSafeInteger(c.chainStep) || (c.chainStep as number) < 0) {
        throw new OAuthError('invalid_request', 'context.chainStep must be a non-negative integer');
      }
      out.chainStep = c.chainStep;
    }
    context = out as ContextInput;
  }
  const dpopJkt = optionalString(body, 'dpop_jkt', 43);
  if (dpopJkt !== undefined && !JWK_THUMBPRINT.test(dpopJkt)) {
    throw new OAuthError(
      'invalid_request',
      "dpop_jkt must be the RFC 7638 SHA-256 thumbprint of the broker's DPoP public key: 43 base64url characters",
    );
  }
  return { target, kind, tool, args: body.args, method, path, context, ...(dpopJkt ? { dpopJkt } : {}) };
}

/**
 * The endpoint: the decision below, plus one `warden_decisions_total{component="authority"}` sample
 * per request — the policy reason of an allow or a denial, or the OAuth error code of a request
 * refused before any decision (bad session, bad body, our own failure).
 */
export async function handleCredentials(
  ctx: RequestContext,
  deps: CredentialsDeps,
): Promise<Record<string, unknown>> {
  if (!deps.metrics) return decideCredentials(ctx, deps);
  const metrics = deps.metrics;
  // The provider's type is known only inside issuance: observe it on the way out of the
  // provider lookup, per request, rather than widen the issuance API for a metric label.
  let providerType: string | undefined;
  const base = deps.issuance;
  const issuance: IssuanceDeps | undefined = base && {
    ...base,
    providers: {
      getProvider: async (namespace, name) => {
        const cp = await base.providers.getProvider(namespace, name);
        providerType = cp?.spec.type;
        return cp;
      },
    },
  };
  try {
    const body = await decideCredentials(ctx, { ...deps, ...(issuance ? { issuance } : {}) });
    metrics.decision('authority', 'allow', String(body.reason));
    if (body.credential) metrics.credentialIssued(providerType ?? 'other');
    return body;
  } catch (err) {
    metrics.decision(
      'authority',
      'deny',
      err instanceof DeniedError ? err.decision.reason : toOAuthError(err).code,
    );
    throw err;
  }
}

async function decideCredentials(
  ctx: RequestContext,
  deps: CredentialsDeps,
): Promise<Record<string, unknown>> {
  ctx.audit.kind = 'Decision';
  const { claims, body } = await sessionJsonRequest(ctx, deps.sessions);
  const request = parseCredentialRequest(body);
  Object.assign(ctx.audit, { target: request.target, tool: request.tool ?? request.path });
  const { namespace, agent, pod: podName, podUID } = claims.warden;
  const where = `AgentIdentity ${namespace}/${agent}`;

  const identity = deps.store.identity(namespace, agent);
  if (!identity) throw new DeniedError({ reason: 'AgentNotFound', message: `${where} no longer exists` });
  const pod = await deps.pods.getPod(namespace, podName, podUID);
  if (!pod || pod.metadata?.uid !== podUID) {
    throw new OAuthError('invalid_token', 'the pod this session is bound to no longer exists');
  }

  const userHeader = ctx.req.headers[HEADER_USER_TOKEN];
  // Forbidden is decided on presence alone: no point verifying a token that may not be used.
  const forbidden = checkUserMode(
    identity.spec.userContext?.mode,
    userHeader !== undefined && userHeader !== '',
  );
  if (!forbidden.ok && forbidden.reason === 'UserForbidden') {
    throw new DeniedError({ reason: forbidden.reason, message: `${where}: ${forbidden.message}` });
  }
  const caller = await callerFromHeader(
    deps.userTokens,
    userHeader,
    identity.spec.userContext as UserContextSpec | undefined,
    where,
  );
  const user: UserContext = caller.user;
  Object.assign(ctx.audit, auditUser(user));
  // A delegated call (a verified Warden token from the agent that called this one): the chain
  // policy sees as request.chain, the minted credential nests in act, and the audit entry records.
  const prior = caller.prior ?? undefined;
  if (prior) ctx.audit.chain = [...prior, { namespace, name: agent }].map((a) => ({ ...a }));
  const mode = checkUserMode(identity.spec.userContext?.mode, user.present);
  if (!mode.ok) throw new DeniedError({ reason: mode.reason, message: `${where}: ${mode.message}` });

  const set = deps.store.policySet(namespace, agent);
  if (!set) throw new DeniedError({ reason: 'AgentNotFound', message: `${where} no longer exists` });
  const agentInput: AgentContext = agentContext(
    { name: agent, namespace, labels: identity.labels, serviceAccountName: identity.spec.serviceAccountName },
    pod,
  );
  const requestInput = {
    kind: request.kind,
    target: request.target,
    tool: request.tool,
    args: request.args,
    method: request.method,
    path: request.path,
    time: (deps.now ?? (() => new Date()))(),
    ...(prior ? { chain: prior } : {}),
  };
  const input = {
    agent: agentInput,
    user: user.present ? user : null,
    request: requestInput,
    context: request.context,
  };
  // Session traffic is decided with the same input: its credential is the allowing rule's.
  const decision =
    request.kind === 'mcp' && request.tool === undefined
      ? decideSessionTraffic(set, input)
      : decide(set, input);
  ctx.audit.reasons = [
    {
      policy: decision.policy ?? '',
      rule: decision.rule ?? -1,
      condition: decision.condition ?? undefined,
      message: decision.message,
    },
  ];
  if (decision.decision !== 'Allow') throw new DeniedError(decision);
  let credential: IssuedAnswer | null = null;
  if (deps.issuance) {
    try {
      credential = await issueCredential(deps.issuance, {
        namespace,
        agent: { ...agentInput, maxCredentialTTL: identity.spec.maxCredentialTTL },
        user: user.present ? user : null,
        set,
        decision,
        target: request.target,
        request: requestInput,
        ...(request.context ? { context: request.context } : {}),
        ...(request.dpopJkt ? { dpopJkt: request.dpopJkt } : {}),
      });
    } catch (err) {
      if (err instanceof IssueRefused) {
        // An unreachable upstream (the database, a token endpoint) is unavailability: 503, so the
        // broker tells its client to retry (PostgreSQL: SQLSTATE class 08) instead of "denied".
        if (err.retryable) throw new OAuthError('temporarily_unavailable', err.message, undefined, 503);
        throw new DeniedError({ reason: err.reason, message: err.message });
      }
      throw err;
    }
    ctx.audit.credentialId = credential.id;
    deps.onIssued?.({ namespace, provider: request.target });
  }
  return {
    decision: 'Allow',
    reason: decision.reason,
    policy: decision.policy,
    rule: decision.rule,
    condition: decision.condition,
    message: decision.message,
    user: user.present ? { sub: user.sub, issuer: user.issuer } : null,
    ...(prior ? { chain: ctx.audit.chain } : {}),
    credential,
  };
}
