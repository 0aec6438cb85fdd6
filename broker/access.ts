/**
 * The broker's request pipeline, one module for the MCP gateway, the HTTP proxy and the PostgreSQL
 * endpoint (thin protocol adapters on it, all built by composeBroker):
 *
 *   admission    recordRefusal: what an adapter refuses before any decision (method, body, path,
 *                header, start-up option) is audited and counted like a denial
 *   admit hooks  AccessHooks.admit: a request-level check before the gate
 *   gate         snapshot fresh, agent not suspended, target known (decider.gate)
 *   user         the forwarded user token verified (UserCache)
 *   decision     the adapter's policy question (AccessRequest.decide)
 *   quota        rules[].limits leases (checkQuota)
 *   allow hooks  AccessHooks.afterAllow: checks after an Allow, before a credential is asked for
 *   credential   from the authority (CredentialCache)
 *   audit        the decision's entry kept by the AuditSink (the spool) before the answer
 *   in flight    the allowed request registers how to end it (AccessOutcome.track); the kill
 *                switch (suspension.ts) ends everything registered, in each protocol's terms
 *
 * Every failure is a Deny BrokerDecision with a reason constant and a message that says what to do.
 *
 * Durable before answered: the audit entry of every decision (and of every refusal before one) is
 * kept by the audit sink — the spool on disk, in an injected broker — before authorize() or
 * recordRefusal() return, so no adapter can answer the agent ahead of its audit entry.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { HEADER_DPOP } from '../core/constants.js';
import type { AgentRefInput, UserInput } from '../core/policy/types.js';
import type { WardenMetrics } from '../observability/metrics.js';
import { type AuditSink, AuditUnavailableError, type BrokerAuditEvent } from './audit.js';
import { BrokerDenyReason } from './constants.js';
import {
  AuthorityUnavailableError,
  type CredentialCache,
  CredentialDeniedError,
  type CredentialRequest,
  type IssuedCredential,
  issuedSecrets,
  type UserCache,
  UserTokenRejectedError,
} from './credentials.js';
import { type BrokerDecision, brokerDeny, type Decider, keepReplay } from './decider.js';
import type { AbortInFlight, InFlightRegistry } from './in-flight.js';
import { type QuotaCheck, type QuotaLeases, quotaUser } from './quota.js';
import type { RequestMeta } from './request-meta.js';
import type { CompiledSnapshot, Provider } from './snapshot.js';

export const AGENT_ACTING_ALONE = 'agent acting alone';

/** What the broker records: decisions, and per request its duration by kind and decision. */
export type BrokerMetrics = Pick<
  WardenMetrics,
  'decision' | 'brokerRequestDuration' | 'startTimer' | 'auditSpool'
>;

export interface AccessDeps {
  readonly decider: Decider;
  readonly credentials: CredentialCache;
  /** Null when the broker has no way to verify user tokens: a forwarded token is then refused. */
  readonly users: UserCache | null;
  readonly audit: AuditSink;
  readonly podName?: string | undefined;
  readonly wallClock?: () => Date;
  /** Absent = no metrics. The gateway and the proxy time their requests with it too. */
  readonly metrics?: BrokerMetrics | undefined;
  /** Where a decision whose audit entry could not be kept is logged. */
  readonly log?: Pick<Logger, 'error'> | undefined;
  /** Leases of the quota budgets (rules[].limits); absent = a rule with limits is denied (fail closed). */
  readonly quotas?: Pick<QuotaLeases, 'take'> | undefined;
  /**
   * Every allowed request in flight, of every protocol: the kill switch (suspension.ts) ends what
   * is registered here. Adapters register through AccessOutcome.track, never on their own.
   */
  readonly inFlight: InFlightRegistry;
  /** Further per-request steps (seams for new checks); absent = none. */
  readonly hooks?: AccessHooks | undefined;
}

/** What a pipeline hook sees of a request. */
export interface AccessHookRequest {
  readonly meta: RequestMeta;
  readonly target: string;
  readonly protocol: Provider['protocol'];
}

/**
 * A per-request step plugged into the pipeline: null lets the request go on; a Deny decision stops
 * it, and is audited and answered like any denial, in every protocol. A hook that throws denies
 * (the pipeline fails closed) with reason CheckFailed.
 */
export type AccessCheck<C> = (c: C) => BrokerDecision | null | Promise<BrokerDecision | null>;

/**
 * The seams of the pipeline, run once for MCP, HTTP and PostgreSQL alike (composeBroker's `hooks`),
 * in the order listed:
 * - `admit`: before the gate, with the request as the adapter read it — a request-level refusal
 *   (the agent itself was authenticated before its broker was reached: loopback in the sidecar,
 *   the caller's token in the shared gateway, broker/gateway/);
 * - `afterAllow`: after the policy allowed and the quotas passed, before the credential is asked
 *   for — where further budgets or circuit-breaker checks refuse an allowed call.
 * The audit spool is the AuditSink (broker/audit.ts): record() resolves once the entry is kept.
 */
export interface AccessHooks {
  readonly admit?: readonly AccessCheck<AccessHookRequest>[];
  readonly afterAllow?: readonly AccessCheck<
    AccessHookRequest & { readonly decision: BrokerDecision; readonly user: UserInput | null }
  >[];
}

/** Runs hooks in order: the first Deny stops; a throwing hook denies (fail closed). */
async function runHooks<C>(
  hooks: readonly AccessCheck<C>[] | undefined,
  c: C,
  snapshotVersion?: string,
): Promise<BrokerDecision | null> {
  for (const hook of hooks ?? []) {
    let d: BrokerDecision | null;
    try {
      d = await hook(c);
    } catch (err) {
      return brokerDeny(
        BrokerDenyReason.CheckFailed,
        `a broker check failed (${err instanceof Error ? err.message : 'error'}); the broker fails closed`,
        snapshotVersion,
      );
    }
    if (d && d.decision === 'Deny') return d;
  }
  return null;
}

/** Marks the request a timer covers as allowed; until then it counts as denied. */
export interface RequestTiming {
  allow(): void;
}

/** A request timer its adapter ends (idempotent). */
export interface RequestTimer extends RequestTiming {
  end(): void;
}

/**
 * Times one agent request from now until end() and records it once as `kind` with the decision
 * (warden_broker_request_duration_seconds). Requests refused before a decision (bad body, bad
 * method, bad start-up option) count as denied: the agent got a refusal, not the upstream.
 */
export function startRequestTimer(
  metrics: BrokerMetrics | undefined,
  kind: 'mcp' | 'http' | 'postgresql',
): RequestTimer {
  if (!metrics) return { allow: () => {}, end: () => {} };
  let allowed = false;
  let ended = false;
  const stop = metrics.startTimer((s) => metrics.brokerRequestDuration(kind, allowed ? 'allow' : 'deny', s));
  return {
    allow: () => {
      allowed = true;
    },
    end: () => {
      if (ended) return;
      ended = true;
      stop();
    },
  };
}

/** An HTTP request's timer: ends when its response closes (finished, or cut by the agent or the kill switch). */
export function timeRequest(
  metrics: BrokerMetrics | undefined,
  kind: 'mcp' | 'http',
  res: ServerResponse,
): RequestTiming {
  const timer = startRequestTimer(metrics, kind);
  res.once('close', () => timer.end());
  return timer;
}

export type AccessOutcome =
  | {
      readonly ok: true;
      readonly decision: BrokerDecision;
      readonly provider: Provider;
      /** What to inject upstream: per request through upstreamCredentialHeaders (DPoP proofs are per request). */
      readonly credential: IssuedCredential;
      /** Every form of the credential the scrubber must remove from responses. */
      readonly secrets: readonly string[];
      readonly user: UserInput | null;
      /**
       * Registers the allowed request as in flight until the returned release is called
       * (idempotent): `abort` ends it in the adapter's protocol when the kill switch fires.
       */
      readonly track: (abort: AbortInFlight) => () => void;
    }
  | { readonly ok: false; readonly decision: BrokerDecision };

export interface AccessRequest {
  readonly meta: RequestMeta;
  readonly target: string;
  readonly protocol: Provider['protocol'];
  readonly credential: Omit<CredentialRequest, 'userToken' | 'context' | 'requestId' | 'target'>;
  /**
   * The policy decision, given the verified user (gate already passed) and, for a call another
   * agent delegated, the agents before this one (request.chain without this agent). May be
   * asynchronous: the MCP gateway checks a tool against the upstream's advertised list.
   */
  readonly decide: (
    user: UserInput | null,
    chain: readonly AgentRefInput[] | undefined,
  ) => BrokerDecision | Promise<BrokerDecision>;
  /** Extra audit fields (tool, method, path, stripped header names). */
  readonly auditFields?: Partial<BrokerAuditEvent>;
  /**
   * Protocol traffic, not a call (MCP initialize, tools/list, notifications): the rule's limits
   * (quotas) do not count it. Every tools/call, HTTP request and PostgreSQL session counts.
   */
  readonly notACall?: boolean;
}

/** The audit event of one decision, in AuditRecord entry shape. */
function decisionEvent(
  deps: AccessDeps,
  e: DecisionRecord,
  decision: BrokerDecision,
  time: string,
): BrokerAuditEvent {
  const first = decision.reasons[0];
  return {
    time,
    kind: 'Decision',
    decision: decision.decision,
    ...(deps.podName ? { pod: deps.podName } : {}),
    user: e.user,
    ...(e.userIssuer ? { userIssuer: e.userIssuer } : {}),
    target: e.target,
    requestId: e.requestId,
    reason: decision.reason,
    message: decision.message,
    ...(decision.policy ? { policy: decision.policy } : {}),
    ...(decision.decision === 'Deny' && first
      ? {
          reasons: decision.reasons.map((x) => ({
            ...(x.policy !== null ? { policy: x.policy } : {}),
            ...(x.rule !== null ? { rule: x.rule } : {}),
            ...(x.condition !== null ? { condition: x.condition } : {}),
            message: x.message,
          })),
        }
      : {}),
    // The chain is the token's claim until the authority verified the token for this call.
    ...(e.chain
      ? {
          [e.verified ? 'chain' : 'claimedChain']: e.chain.map((a) => ({
            name: a.name,
            namespace: a.namespace,
          })),
        }
      : {}),
    ...(e.credentialId && decision.decision === 'Allow' ? { credentialId: e.credentialId } : {}),
    ...(decision.replay ? { replay: decision.replay } : {}),
    ...e.auditFields,
  };
}

interface DecisionRecord {
  readonly user: string;
  /** The issuer of the user token the decision read (the authority records the same pair). */
  readonly userIssuer?: string | undefined;
  readonly target: string;
  readonly requestId: string;
  readonly decision: BrokerDecision;
  readonly credentialId?: string | undefined;
  readonly auditFields?: Partial<BrokerAuditEvent> | undefined;
  /** The whole delegation chain, origin first, this agent last; absent = not delegated. */
  readonly chain?: readonly AgentRefInput[] | undefined;
  /**
   * Did the authority verify the caller's token for this call? Only then is the chain recorded as
   * `chain`; before (every Deny ahead of the credential, and a refused credential) it is the
   * token's unverified claim and recorded as `claimedChain` — a forged token can claim any chain.
   */
  readonly verified?: boolean;
}

/**
 * Audits and counts one decision of the broker: every allow and every deny, including refusals
 * before a decision (recordRefusal), passes here exactly once, with the injected wall clock.
 * Resolves once the entry is kept (spooled), with the decision the agent gets. When the sink
 * cannot keep it: audit mode BestEffort answers as decided and counts the loss; Required turns
 * the call into a denial with reason AuditUnavailable, which the authority still hears of (not
 * durably) for its counters and Event.
 */
async function recordDecision(deps: AccessDeps, e: DecisionRecord): Promise<BrokerDecision> {
  const count = (d: BrokerDecision): BrokerDecision => {
    deps.metrics?.decision('broker', d.decision === 'Allow' ? 'allow' : 'deny', d.reason);
    return d;
  };
  const time = (deps.wallClock ?? (() => new Date()))().toISOString();
  try {
    await deps.audit.record(decisionEvent(deps, e, e.decision, time));
    deps.metrics?.auditSpool('spooled');
    return count(e.decision);
  } catch (err) {
    if (!(err instanceof AuditUnavailableError)) throw err;
    if (deps.decider.auditMode() !== 'Required') {
      deps.metrics?.auditSpool('lost');
      deps.log?.error(
        { requestId: e.requestId, target: e.target, decision: e.decision.decision, err: err.message },
        'audit entry not recorded (audit mode BestEffort: answered anyway)',
      );
      return count(e.decision);
    }
    const denied = brokerDeny(
      BrokerDenyReason.AuditUnavailable,
      `the broker could not record this call in its audit spool (${err.message}); the agent's AgentIdentity requires every call to be audited (spec.audit.mode: Required), so it is denied. Retry later: the spool frees up as the Warden authority acknowledges entries`,
      e.decision.snapshotVersion,
    );
    deps.metrics?.auditSpool('denied');
    deps.log?.error(
      { requestId: e.requestId, target: e.target, decided: e.decision.decision, err: err.message },
      'audit entry not recorded: call denied (audit mode Required)',
    );
    deps.audit.notice?.(decisionEvent(deps, e, denied, time));
    return count(denied);
  }
}

/**
 * Admission: a request the protocol adapter refuses before any decision (bad method, body, path,
 * header, startup parameter or connection option). Audited and counted exactly like a denial of
 * the pipeline — the same for MCP, HTTP and PostgreSQL — and returned as a Deny decision for the
 * adapter to answer in its protocol. The user is not verified this early.
 */
export async function recordRefusal(
  deps: AccessDeps,
  r: {
    readonly meta: Pick<RequestMeta, 'userToken' | 'requestId'>;
    readonly target: string;
    readonly message: string;
    readonly reason?: string;
    readonly auditFields?: Partial<BrokerAuditEvent>;
  },
): Promise<BrokerDecision> {
  const decision = brokerDeny(r.reason ?? BrokerDenyReason.InvalidRequest, r.message);
  return recordDecision(deps, {
    user: r.meta.userToken ? 'unverified user' : AGENT_ACTING_ALONE,
    target: r.target,
    requestId: r.meta.requestId,
    decision,
    auditFields: r.auditFields,
  });
}

export async function authorize(deps: AccessDeps, r: AccessRequest): Promise<AccessOutcome> {
  let userName = r.meta.userToken ? 'unverified user' : AGENT_ACTING_ALONE;
  let userIssuer: string | undefined;
  let chain: readonly AgentRefInput[] | undefined;
  // Set once the authority issued (or had issued, for this very token: the cache is keyed by its
  // digest) the call's credential, which it does only after verifying the caller's token.
  let verified = false;
  const audit = (decision: BrokerDecision, credentialId?: string): Promise<BrokerDecision> =>
    recordDecision(deps, {
      user: userName,
      userIssuer,
      verified,
      target: r.target,
      requestId: r.meta.requestId,
      decision,
      credentialId,
      auditFields: r.auditFields,
      chain,
    });
  const deny = async (decision: BrokerDecision): Promise<AccessOutcome> => ({
    ok: false,
    decision: await audit(decision),
  });

  const hookRequest: AccessHookRequest = { meta: r.meta, target: r.target, protocol: r.protocol };
  // No hooks (the usual case): no await, so the call does not wait a microtask turn for nothing.
  const refused = deps.hooks?.admit?.length ? await runHooks(deps.hooks.admit, hookRequest) : null;
  if (refused) return deny(refused);

  const gate = deps.decider.gate(r.target, r.protocol);
  if (!gate.ok) return deny(gate.decision);
  const version = gate.snapshot.version;

  let user: UserInput | null = null;
  let prior: readonly AgentRefInput[] | undefined;
  if (r.meta.userToken !== null) {
    if (!deps.users) {
      return deny(
        brokerDeny(
          BrokerDenyReason.UserTokenInvalid,
          'this broker cannot verify user tokens; send the request without x-warden-user-token',
          version,
        ),
      );
    }
    try {
      const caller = await deps.users.get(r.meta.userToken);
      user = caller.user;
      userName = user ? user.sub : AGENT_ACTING_ALONE;
      userIssuer = user?.issuer;
      prior = caller.chain;
      if (prior) {
        const self = gate.snapshot.set.celAgent;
        chain = [...prior, { name: self.name, namespace: self.namespace }];
      }
    } catch (err) {
      if (err instanceof UserTokenRejectedError) {
        return deny(
          brokerDeny(BrokerDenyReason.UserTokenInvalid, `user token rejected: ${err.message}`, version),
        );
      }
      return deny(
        brokerDeny(
          BrokerDenyReason.AuthorityUnreachable,
          `could not verify the user token with the Warden authority (${errorText(err)}); retry later`,
          version,
        ),
      );
    }
  }

  const decision = await r.decide(user, prior);
  if (decision.decision === 'Deny') return deny(decision);

  const limits = r.notACall ? NO_LIMITS : ruleLimits(gate.snapshot, decision);
  const quota = limits.length > 0 ? await checkQuota(deps, gate.snapshot, decision, user, limits) : null;
  if (quota) return deny(keepReplay(quota, decision));
  const checked = deps.hooks?.afterAllow?.length
    ? await runHooks(deps.hooks.afterAllow, { ...hookRequest, decision, user }, version)
    : null;
  if (checked) return deny(keepReplay(checked, decision));

  const scope = decision.policy !== null ? `${decision.policy}#${decision.rule}` : 'session';
  let credential: IssuedCredential;
  try {
    credential = await deps.credentials.get(
      {
        ...r.credential,
        target: r.target,
        userToken: r.meta.userToken,
        context: r.meta.context,
        requestId: r.meta.requestId,
      },
      scope,
    );
  } catch (err) {
    if (err instanceof CredentialDeniedError) {
      const d: BrokerDecision = {
        ...brokerDeny(
          BrokerDenyReason.CredentialDenied,
          `the Warden authority refused the credential: ${err.message}`,
          version,
        ),
        ...(err.reasons.length ? { reasons: err.reasons } : {}),
      };
      return deny(keepReplay(d, decision));
    }
    return deny(
      keepReplay(
        brokerDeny(
          BrokerDenyReason.AuthorityUnreachable,
          `could not obtain a credential for '${r.target}' from the Warden authority (${errorText(err)}); the broker fails closed`,
          version,
        ),
        decision,
      ),
    );
  }
  verified = true;
  // Audit mode Required and the entry could not be kept: denied (AuditUnavailable), the credential unused.
  const answered = await audit(decision, credential.id);
  if (answered.decision === 'Deny') return { ok: false, decision: answered };
  return {
    ok: true,
    decision,
    provider: gate.provider,
    credential,
    secrets: issuedSecrets(credential),
    user,
    track: (abort) => deps.inFlight.add(abort),
  };
}

type RuleLimits = NonNullable<CompiledSnapshot['set']['policies'][number]['rules'][number]['limits']>;
const NO_LIMITS: RuleLimits = [];

/** The limits of the rule that allowed a call (none for a session decision or a rule without limits). */
function ruleLimits(snapshot: CompiledSnapshot, decision: BrokerDecision): RuleLimits {
  if (decision.policy === null || decision.rule === null) return NO_LIMITS;
  const rule = snapshot.set.policies
    .find((p) => p.id === decision.policy)
    ?.rules.find((x) => x.index === decision.rule);
  return rule?.limits ?? NO_LIMITS;
}

/**
 * Quota step (after an Allow): one call from each limit of the rule that allowed it, from the
 * broker's leases of the budget the authority counts (quota.ts). Null when the call may go on;
 * otherwise the denial — QuotaExceeded with the time until the window resets, or
 * AuthorityUnreachable when no lease could be had (fail closed).
 */
async function checkQuota(
  deps: AccessDeps,
  snapshot: CompiledSnapshot,
  decision: BrokerDecision,
  user: UserInput | null,
  limits: RuleLimits,
): Promise<BrokerDecision | null> {
  if (decision.policy === null || decision.rule === null || limits.length === 0) return null;
  const where = `AccessPolicy ${decision.policy} rules[${decision.rule}]`;
  if (!deps.quotas) {
    return brokerDeny(
      BrokerDenyReason.AuthorityUnreachable,
      `${where} has limits but this broker has no quota source; the broker fails closed`,
      snapshot.version,
    );
  }
  let check: QuotaCheck;
  try {
    check = await deps.quotas.take(decision.policy, decision.rule, limits, quotaUser(user));
  } catch (err) {
    return brokerDeny(
      BrokerDenyReason.AuthorityUnreachable,
      `could not obtain a quota lease for ${where} from the Warden authority (${errorText(err)}); the broker fails closed`,
      snapshot.version,
    );
  }
  if (check.ok) return null;
  const l = check.limit;
  const seconds = Math.max(1, Math.ceil(check.retryAfterMs / 1000));
  return {
    ...brokerDeny(
      BrokerDenyReason.QuotaExceeded,
      `quota exceeded: ${where}.limits[${l.index}] allows ${l.calls} call(s) per ${l.window} per ${l.per}; the window resets in ${seconds} s`,
      snapshot.version,
    ),
    policy: decision.policy,
    rule: decision.rule,
    retryAfterMs: check.retryAfterMs,
  };
}

/**
 * The headers to set on one upstream request: the credential's, and for a sender-constrained
 * credential a fresh DPoP proof (RFC 9449) for exactly this method and URL — a proof is never
 * reused, so each request gets its own jti and iat.
 */
export function upstreamCredentialHeaders(
  credential: IssuedCredential,
  method: string,
  url: URL,
): Array<readonly [string, string]> {
  const headers: Array<readonly [string, string]> = Object.entries(credential.headers);
  if (credential.dpop) headers.push([HEADER_DPOP, credential.dpop.proof(method, url)]);
  return headers;
}

/** Error text safe to show: our own error classes carry curated messages; others only their class. */
function errorText(err: unknown): string {
  if (err instanceof AuthorityUnavailableError || err instanceof UserTokenRejectedError) return err.message;
  if (err instanceof Error) return err.name;
  return 'unknown error';
}
