/**
 * Quotas (AccessPolicy rules[].limits): the authority keeps the shared counts, brokers hold
 * leases of the budget (broker/quota.ts), so a broker's hot path stays local and asks here once
 * per lease.
 *
 * POST /v1/quota  {"policy": "ns/name", "rule": 0, "limit": 0, "user": "alice"?}
 *   → 200 {"granted": n, "resetInMs": ms, "calls": N, "window": "1m"}
 *
 * Windows are fixed and aligned to this process's clock (the count resets at every multiple of the
 * window). A lease is at most leaseSize(N) calls and never more than what is left in the window, so
 * the calls granted per window never exceed N on one replica; the broker lets a lease expire
 * `resetInMs` after it SENT the request, i.e. no later than the window ends here. Slack is the
 * other way round: calls leased to one broker and not used there are not available to another
 * broker until the window resets (at most leaseSize(N) − 1 per other broker and limit).
 *
 * What is counted is looked up here, not taken from the broker: the limit must be on an Allow rule
 * of a policy that currently selects the session's agent. The agent comes from the session; the
 * user is the broker's word (it verified the user token, as it does for the audit trail).
 *
 * Several replicas: each counts the leases it grants, so with R replicas serving one agent's
 * brokers up to R × N calls are allowed per window (docs/policy.md, quotas).
 */
import type { CompiledLimit } from '../core/policy/compiled.js';
import type { PolicySet } from '../core/policy/policy-set.js';
import { sessionJsonRequest } from './authn.js';
import { OAuthError } from './errors.js';
import type { RequestContext } from './request.js';
import type { Sessions } from './session.js';

/** Counts the ledger holds at once (keys × windows); past it, expired windows are swept. */
export const MAX_QUOTA_KEYS = 100_000;

/** Pure: how many calls one lease holds — a tenth of the budget, 1 to 100. */
export function leaseSize(calls: number): number {
  return Math.max(1, Math.min(100, Math.floor(calls / 10)));
}

/** Pure: the count a limit's call falls in, for this agent and user. */
export function bucketKey(
  namespace: string,
  agent: string,
  policy: string,
  rule: number,
  limit: Pick<CompiledLimit, 'index' | 'per'>,
  user: string | undefined,
): string {
  const base = `${policy}#${rule}#${limit.index}`;
  const u = user ?? '-';
  if (limit.per === 'user') return `${base}|u:${u}`;
  const a = `a:${namespace}/${agent}`;
  return limit.per === 'agent' ? `${base}|${a}` : `${base}|${a}|u:${u}`;
}

interface Count {
  windowStart: number;
  windowMs: number;
  granted: number;
}

export interface Lease {
  granted: number;
  /** Time until the window this lease belongs to ends. */
  resetInMs: number;
}

/** The shared counts: fixed windows, leases of at most leaseSize(calls). */
export class QuotaLedger {
  private readonly counts = new Map<string, Count>();
  /** Leases refused because the ledger was full (never silent: logged by the caller, tested). */
  refusedFull = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = MAX_QUOTA_KEYS,
  ) {}

  lease(key: string, calls: number, windowMs: number): Lease {
    const now = this.now();
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const resetInMs = windowStart + windowMs - now;
    let c = this.counts.get(key);
    if (!c || c.windowStart !== windowStart || c.windowMs !== windowMs) {
      if (!c && this.counts.size >= this.maxKeys) this.sweep(now);
      // Still full of live windows: refusing is safe (fail closed); forgetting one would not be.
      if (!c && this.counts.size >= this.maxKeys) {
        this.refusedFull++;
        return { granted: 0, resetInMs };
      }
      c = { windowStart, windowMs, granted: 0 };
      this.counts.set(key, c);
    }
    const granted = Math.max(0, Math.min(leaseSize(calls), calls - c.granted));
    c.granted += granted;
    return { granted, resetInMs };
  }

  get size(): number {
    return this.counts.size;
  }

  private sweep(now: number): void {
    for (const [k, c] of this.counts) if (c.windowStart + c.windowMs <= now) this.counts.delete(k);
  }
}

export interface QuotaEndpointDeps {
  sessions: Sessions;
  /** The policies that currently select an agent (the authority's policy store). */
  policySet(namespace: string, agent: string): PolicySet | null;
  ledger: QuotaLedger;
}

/** Pure: the limit a lease request names, if it is one of the agent's Allow rules' limits. */
export function findLimit(
  set: PolicySet | null,
  policy: string,
  rule: number,
  limit: number,
): CompiledLimit | undefined {
  const p = set?.policies.find((x) => x.id === policy && x.effect === 'Allow');
  return p?.rules.find((r) => r.index === rule)?.limits.find((l) => l.index === limit);
}

function int(body: Record<string, unknown>, field: string): number {
  const v = body[field];
  if (!Number.isSafeInteger(v) || (v as number) < 0)
    throw new OAuthError('invalid_request', `${field}: must be a non-negative integer`);
  return v as number;
}

export async function handleQuota(
  ctx: RequestContext,
  deps: QuotaEndpointDeps,
): Promise<Record<string, unknown>> {
  ctx.audit.kind = 'Session';
  const { claims, body } = await sessionJsonRequest(ctx, deps.sessions);
  const policy = body.policy;
  if (typeof policy !== 'string' || policy === '' || policy.length > 512)
    throw new OAuthError('invalid_request', 'policy: must be the namespace/name of an AccessPolicy');
  const rule = int(body, 'rule');
  const index = int(body, 'limit');
  const user = body.user;
  if (user !== undefined && (typeof user !== 'string' || user.length > 512))
    throw new OAuthError('invalid_request', 'user: must be a string of at most 512 characters');
  const { namespace, agent } = claims.warden;
  const limit = findLimit(deps.policySet(namespace, agent), policy, rule, index);
  if (!limit) {
    throw new OAuthError(
      'invalid_request',
      `no limit ${policy} rules[${rule}].limits[${index}] applies to agent ${namespace}/${agent} (the policy changed?); the broker retries with its next snapshot`,
      undefined,
      409,
    );
  }
  const key = bucketKey(namespace, agent, policy, rule, limit, user as string | undefined);
  const lease = deps.ledger.lease(key, limit.calls, limit.windowMs);
  return { granted: lease.granted, resetInMs: lease.resetInMs, calls: limit.calls, window: limit.window };
}
