/**
 * Per-source token bucket for *failed* attempts. A source that keeps failing (a token guesser,
 * a misconfigured broker in a crash loop) is slowed down before it costs the API server a
 * TokenReview, while successful callers—from other sources, or presenting a token already known
 * good—are still answered. Memory is bounded: the least recently seen sources are forgotten first.
 */

export interface RateLimitOptions {
  /** Failures a source may burst before it is limited. */
  burst: number;
  /** Failures per second a source earns back. */
  refillPerSecond: number;
  /** Sources remembered at most (LRU). */
  maxSources: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { burst: 20, refillPerSecond: 2, maxSources: 10_000 };

interface Bucket {
  tokens: number;
  at: number;
}

export class FailureRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly opts: RateLimitOptions = DEFAULT_RATE_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  private refreshed(source: string): Bucket {
    const t = this.now();
    const b = this.buckets.get(source);
    if (!b) return { tokens: this.opts.burst, at: t };
    const tokens = Math.min(this.opts.burst, b.tokens + ((t - b.at) / 1000) * this.opts.refillPerSecond);
    return { tokens, at: t };
  }

  /** True when the source has used up its failures; the caller should answer 429 without work. */
  limited(source: string): boolean {
    return this.refreshed(source).tokens < 1;
  }

  /** Seconds until the source may fail once more (for Retry-After). */
  retryAfterSeconds(source: string): number {
    const b = this.refreshed(source);
    return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / this.opts.refillPerSecond);
  }

  /** Charges one failure to the source. */
  fail(source: string): void {
    const b = this.refreshed(source);
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.delete(source); // re-insert: Map order is the LRU order
    this.buckets.set(source, b);
    if (this.buckets.size > this.opts.maxSources) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }

  /** Number of sources currently remembered. */
  get size(): number {
    return this.buckets.size;
  }
}
