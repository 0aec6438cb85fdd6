/**
 * The broker's side of quotas (AccessPolicy rules[].limits): leases of the budget the authority
 * counts (authority/quota.ts). A call an Allow rule with limits allowed takes one call from the
 * broker's lease of each limit; only when a lease is used up does the broker ask the authority for
 * the next (one request in flight per limit, callers wait on it), so the hot path stays local.
 *
 * A lease expires `resetInMs` after the broker SENT its request — never after the authority's
 * window ended, so calls leased for one window are never spent in the next. A limit the authority
 * says is used up (granted 0) denies locally until the window resets, with the time left.
 *
 * Fails closed: if no lease can be had (authority unreachable, limit unknown), the call is denied.
 */
import type { CompiledLimit } from '../core/policy/compiled.js';

export interface QuotaLeaseRequest {
  /** `namespace/name` of the AccessPolicy. */
  readonly policy: string;
  /** Index of the rule in spec.rules. */
  readonly rule: number;
  /** Index of the limit in the rule's limits. */
  readonly limit: number;
  /** The verified user (issuer-qualified subject), absent when the agent acts alone. */
  readonly user?: string | undefined;
}

export interface QuotaLeaseAnswer {
  readonly granted: number;
  readonly resetInMs: number;
}

/** Where leases come from: the authority client (POST /v1/quota), or a local ledger in tests. */
export interface QuotaLeaser {
  lease(req: QuotaLeaseRequest): Promise<QuotaLeaseAnswer>;
}

export type QuotaCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly limit: CompiledLimit; readonly retryAfterMs: number };

interface Held {
  remaining: number;
  /** Monotonic time the lease (and the window it belongs to) ends. */
  expiresAt: number;
  /** The authority granted nothing: denied locally until expiresAt. */
  exhausted: boolean;
}

/** Leases kept at once before expired ones are swept. */
const MAX_LEASES = 10_000;

export class QuotaLeases {
  private readonly held = new Map<string, Held>();
  private readonly asking = new Map<string, Promise<void>>();
  /** Lease requests sent (tests, the precision measurement). */
  requests = 0;

  constructor(
    private readonly leaser: QuotaLeaser,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Takes one call from every limit of the rule that allowed the request (in order; the first
   * without room denies). Throws when a lease cannot be had (the caller denies: fail closed).
   */
  async take(
    policy: string,
    rule: number,
    limits: readonly CompiledLimit[],
    user: string | undefined,
  ): Promise<QuotaCheck> {
    for (const limit of limits) {
      const r = await this.takeOne({ policy, rule, limit: limit.index, user }, limit);
      if (!r.ok) return r;
    }
    return { ok: true };
  }

  private async takeOne(req: QuotaLeaseRequest, limit: CompiledLimit): Promise<QuotaCheck> {
    // The agent is implicit (a broker serves one); the user matters unless counted per agent.
    const request: QuotaLeaseRequest =
      limit.per === 'agent' ? { policy: req.policy, rule: req.rule, limit: req.limit } : req;
    const key = `${req.policy}#${req.rule}#${req.limit}|${request.user ?? '-'}`;
    // Bounded: a lease arriving while others queue for it may be used up before they get one.
    for (let attempt = 0; attempt < 8; attempt++) {
      const now = this.now();
      const h = this.held.get(key);
      if (h && now < h.expiresAt) {
        if (h.remaining > 0) {
          h.remaining--;
          return { ok: true };
        }
        if (h.exhausted) return { ok: false, limit, retryAfterMs: Math.max(0, h.expiresAt - now) };
      }
      await this.ask(key, request);
    }
    const h = this.held.get(key);
    return { ok: false, limit, retryAfterMs: Math.max(0, (h?.expiresAt ?? this.now()) - this.now()) };
  }

  /** One lease request per key at a time; the others wait for its answer. */
  private ask(key: string, req: QuotaLeaseRequest): Promise<void> {
    const pending = this.asking.get(key);
    if (pending) return pending;
    const sentAt = this.now();
    this.requests++;
    const p = this.leaser
      .lease(req)
      .then((a) => {
        if (this.held.size >= MAX_LEASES) this.sweep();
        this.held.set(key, {
          remaining: a.granted,
          expiresAt: sentAt + a.resetInMs,
          exhausted: a.granted === 0,
        });
      })
      .finally(() => this.asking.delete(key));
    this.asking.set(key, p);
    return p;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, h] of this.held) if (h.expiresAt <= now) this.held.delete(k);
  }
}

/** The user a quota counts: issuer-qualified, so two issuers' `sub` values never share a count. */
export function quotaUser(user: { sub: string; issuer?: string | undefined } | null): string | undefined {
  if (!user) return undefined;
  return user.issuer ? `${user.issuer}#${user.sub}` : user.sub;
}
