import { describe, expect, it } from 'vitest';
import type { CompiledLimit } from '../core/policy/compiled.js';
import { type QuotaLeaseAnswer, type QuotaLeaseRequest, QuotaLeases, quotaUser } from './quota.js';

const limit = (over: Partial<CompiledLimit> = {}): CompiledLimit => ({
  index: 0,
  per: 'agent',
  calls: 10,
  window: '1m',
  windowMs: 60_000,
  ...over,
});

/** A lease source answering from a script, recording what it was asked. */
function leaser(answers: QuotaLeaseAnswer[]) {
  const asked: QuotaLeaseRequest[] = [];
  return {
    asked,
    async lease(req: QuotaLeaseRequest): Promise<QuotaLeaseAnswer> {
      asked.push(req);
      const a = answers.shift();
      if (!a) throw new Error('authority unreachable');
      return a;
    },
  };
}

describe('QuotaLeases', () => {
  it('spends a lease locally and asks again only when it is used up', async () => {
    const l = leaser([
      { granted: 2, resetInMs: 30_000 },
      { granted: 1, resetInMs: 29_000 },
    ]);
    const q = new QuotaLeases(l, () => 0);
    for (let i = 0; i < 3; i++)
      expect(await q.take('agents/p', 0, [limit()], undefined)).toEqual({ ok: true });
    expect(l.asked).toHaveLength(2);
    expect(q.requests).toBe(2);
  });

  it('denies locally, with the time left, once the authority granted nothing', async () => {
    let now = 0;
    const l = leaser([{ granted: 0, resetInMs: 12_000 }]);
    const q = new QuotaLeases(l, () => now);
    expect(await q.take('agents/p', 0, [limit()], undefined)).toMatchObject({
      ok: false,
      retryAfterMs: 12_000,
    });
    now = 2_000;
    expect(await q.take('agents/p', 0, [limit()], undefined)).toMatchObject({
      ok: false,
      retryAfterMs: 10_000,
    });
    expect(l.asked).toHaveLength(1);
  });

  it('lets a lease end when the window does, measured from when it asked', async () => {
    let now = 0;
    const l: { lease(r: QuotaLeaseRequest): Promise<QuotaLeaseAnswer> } = {
      lease: async () => {
        now += 500; // the round trip
        return { granted: 5, resetInMs: 1_000 };
      },
    };
    const q = new QuotaLeases(l, () => now);
    expect((await q.take('agents/p', 0, [limit()], undefined)).ok).toBe(true);
    now = 1_000; // window over at the authority (asked at 0, 1 000 ms left then)
    let asked = 0;
    const l2 = l.lease;
    l.lease = async (r) => {
      asked++;
      return l2(r);
    };
    await q.take('agents/p', 0, [limit()], undefined);
    expect(asked).toBe(1);
  });

  it('asks once for callers arriving together', async () => {
    const l = leaser([{ granted: 5, resetInMs: 30_000 }]);
    const q = new QuotaLeases(l, () => 0);
    const r = await Promise.all(Array.from({ length: 5 }, () => q.take('agents/p', 0, [limit()], undefined)));
    expect(r.every((x) => x.ok)).toBe(true);
    expect(l.asked).toHaveLength(1);
  });

  it('needs room in every limit; the first without room is named', async () => {
    const l = leaser([
      { granted: 1, resetInMs: 30_000 },
      { granted: 0, resetInMs: 3_000_000 },
    ]);
    const q = new QuotaLeases(l, () => 0);
    const r = await q.take('agents/p', 2, [limit(), limit({ index: 1, per: 'user', window: '1h' })], 'alice');
    expect(r).toMatchObject({ ok: false, limit: { index: 1 }, retryAfterMs: 3_000_000 });
    expect(l.asked).toEqual([
      { policy: 'agents/p', rule: 2, limit: 0 },
      { policy: 'agents/p', rule: 2, limit: 1, user: 'alice' },
    ]);
  });

  it('keeps counts of different users apart unless counted per agent', async () => {
    const l = leaser([
      { granted: 1, resetInMs: 30_000 },
      { granted: 1, resetInMs: 30_000 },
    ]);
    const q = new QuotaLeases(l, () => 0);
    await q.take('agents/p', 0, [limit({ per: 'agent+user' })], 'alice');
    await q.take('agents/p', 0, [limit({ per: 'agent+user' })], 'bob');
    expect(l.asked.map((a) => a.user)).toEqual(['alice', 'bob']);
  });

  it('throws when no lease can be had (the pipeline denies: fail closed)', async () => {
    const q = new QuotaLeases(leaser([]), () => 0);
    await expect(q.take('agents/p', 0, [limit()], undefined)).rejects.toThrow('authority unreachable');
  });
});

describe('quotaUser', () => {
  it('qualifies the subject with its issuer', () => {
    expect(quotaUser({ sub: 'alice', issuer: 'https://idp.example' })).toBe('https://idp.example#alice');
    expect(quotaUser({ sub: 'alice' })).toBe('alice');
    expect(quotaUser(null)).toBeUndefined();
  });
});
