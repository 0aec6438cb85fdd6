import { describe, expect, it } from 'vitest';
import { CallerRateLimiter, callerKey } from './rate-limit.js';

function limiter(perSecond: number, burst: number, maxKeys?: number) {
  let now = 1_000_000;
  const l = new CallerRateLimiter({
    perSecond,
    burst,
    now: () => now,
    ...(maxKeys !== undefined ? { maxKeys } : {}),
  });
  return { l, advance: (ms: number) => (now += ms) };
}

describe('CallerRateLimiter', () => {
  it('lets a burst through, then refuses with the seconds until the next request fits', () => {
    const { l } = limiter(2, 3);
    expect([l.take('a'), l.take('a'), l.take('a')].every((d) => d.ok)).toBe(true);
    expect(l.take('a')).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it('refills at the sustained rate', () => {
    const { l, advance } = limiter(2, 1);
    expect(l.take('a').ok).toBe(true);
    expect(l.take('a').ok).toBe(false);
    advance(500);
    expect(l.take('a').ok).toBe(true);
    expect(l.take('a').ok).toBe(false);
  });

  it('a flooding caller does not spend another caller’s budget', () => {
    const { l } = limiter(1, 2);
    for (let i = 0; i < 50; i++) l.take('flood');
    expect(l.take('flood').ok).toBe(false);
    expect(l.take('quiet')).toEqual({ ok: true });
    expect(l.take('quiet')).toEqual({ ok: true });
  });

  it('says a longer wait when the rate is below one per second', () => {
    const { l } = limiter(0.25, 1);
    expect(l.take('a').ok).toBe(true);
    expect(l.take('a')).toEqual({ ok: false, retryAfterSeconds: 4 });
  });

  it('keeps at most maxKeys buckets, dropping the one unused longest', () => {
    const { l } = limiter(1, 1, 2);
    l.take('a');
    l.take('b');
    l.take('a'); // refused, but a is now the most recently used
    l.take('c'); // drops b
    expect(l.size).toBe(2);
    expect(l.take('a').ok).toBe(false); // a kept its (empty) bucket
    expect(l.take('b').ok).toBe(true); // b comes back full
  });

  it.each([
    [{ perSecond: 0, burst: 1 }, /perSecond must be > 0/],
    [{ perSecond: 1, burst: 0 }, /burst must be >= 1/],
    [{ perSecond: Number.NaN, burst: 1 }, /perSecond must be > 0/],
  ])('refuses a configuration %j', (o, message) => {
    expect(() => new CallerRateLimiter(o)).toThrow(message);
  });
});

describe('callerKey', () => {
  const agents = {
    acceptedAgent: (token: string) => (token === 'accepted-token' ? { key: 'ns/bot/uid-1' } : null),
  };

  it('spends the budget of the agent a token was accepted for, wherever it comes from', () => {
    expect(callerKey(agents, 'accepted-token', '10.0.0.1')).toBe('agent:ns/bot/uid-1');
    expect(callerKey(agents, 'accepted-token', '10.0.0.2')).toBe('agent:ns/bot/uid-1');
  });

  it('spends the source address budget for a token not (or no longer) accepted — never a name the caller chose', () => {
    expect(callerKey(agents, 'forged-token', '10.0.0.1')).toBe('address:10.0.0.1');
    expect(callerKey(agents, 'another-forged-token', '10.0.0.1')).toBe('address:10.0.0.1');
    expect(callerKey(agents, 'forged-token', undefined)).toBe('address:unknown');
  });
});
