/**
 * Per-caller request rate limit of the shared gateway (pure, clock injected): a token bucket per
 * caller key, refilled at `perSecond` up to `burst`. The gateway keys a request by the agent its
 * token was already accepted for, or else by the source address (an unknown token costs an
 * exchange at the authority): one caller flooding the gateway — with a valid token or with forged
 * ones — is answered 429 with Retry-After, and every other caller keeps its own budget.
 *
 * Bounded: at most `maxKeys` buckets; beyond that the bucket unused longest is dropped (a dropped
 * bucket comes back full, which only ever favours the caller — never a refusal of another).
 */

export interface RateLimitOptions {
  /** Sustained requests per second per caller (> 0). */
  readonly perSecond: number;
  /** Requests a caller may send at once after being idle (>= 1). */
  readonly burst: number;
  readonly maxKeys?: number;
  readonly now?: () => number;
}

export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class CallerRateLimiter {
  /** Insertion order = least recently used first (a take re-inserts). */
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(private readonly o: RateLimitOptions) {
    if (!(o.perSecond > 0)) throw new Error(`rate limit: perSecond must be > 0, got ${o.perSecond}`);
    if (!(o.burst >= 1)) throw new Error(`rate limit: burst must be >= 1, got ${o.burst}`);
    this.now = o.now ?? Date.now;
    this.maxKeys = o.maxKeys ?? 100_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes one request from `key`'s bucket, or says how long until one is there. */
  take(key: string): RateDecision {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.o.burst, at: now };
    this.buckets.delete(key);
    b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.o.perSecond)) };
  }
}

/**
 * Whose budget a request spends: the agent its token was already accepted for, or else its source
 * address (a token not accepted yet costs an exchange at the authority, whoever sends it).
 */
export function callerKey(
  agents: { acceptedAgent(token: string): { readonly key: string } | null },
  token: string,
  remoteAddress: string | undefined,
): string {
  const agent = agents.acceptedAgent(token);
  return agent ? `agent:${agent.key}` : `address:${remoteAddress ?? 'unknown'}`;
}
