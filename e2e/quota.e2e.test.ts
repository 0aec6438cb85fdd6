/**
 * Quotas end to end (AccessPolicy rules[].limits): one agent, two pods, two real brokers sharing
 * one budget that the authority counts; each broker spends leases of it locally. Both brokers are
 * driven until each answers 429; the calls allowed in the window must not exceed the limit.
 *
 * The precision (allowed calls vs the limit, lease requests) is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig } from './harness/index.js';
import { type Call, startTwoBrokers, type TwoBrokers } from './two-brokers-fixture.js';

const LIMIT = 50;
const WINDOW_MS = 60_000;

interface Run {
  allowed: number;
  refused: Call[];
}

/** Calls through broker `i` until it answers 429 (or `max` calls: the quota never applied). */
async function untilRefused(s: TwoBrokers, i: 0 | 1, run: Run, max: number): Promise<void> {
  for (let n = 0; n < max; n++) {
    const r = await s.call(i, 'GET');
    if (r.status === 200) {
      run.allowed++;
      continue;
    }
    run.refused.push(r);
    return;
  }
}

describe('quota shared by two brokers', () => {
  let s: TwoBrokers;

  beforeAll(async () => {
    const ns = await freshNamespace('quota');
    s = await startTwoBrokers({ kubeConfig: kubeConfig(), namespace: ns });
    await s.waitReady();
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('allows at most the limit across both brokers, then answers 429 with Retry-After', async () => {
    await s.api.request(
      'PATCH',
      `/apis/${API_VERSION}/namespaces/${s.namespace}/${PLURAL.AccessPolicy}/${s.agent}-read`,
      {
        body: {
          spec: {
            rules: [
              {
                targets: ['api'],
                http: { methods: ['GET'], paths: ['/**'] },
                limits: [{ per: 'agent', calls: LIMIT, window: '1m' }],
              },
            ],
          },
        },
        contentType: 'application/merge-patch+json',
      },
    );
    await eventually('both brokers to hold the policy with the limit', async () =>
      s.brokers.every((b) => {
        const cur = b.broker.decider.current();
        return cur.ok && cur.snapshot.set.policies.some((p) => p.rules.some((r) => r.limits.length > 0));
      }),
    );
    // Windows are fixed (aligned to the authority's clock, this machine's): start early in one,
    // so the whole run falls inside it.
    const into = Date.now() % WINDOW_MS;
    if (into > WINDOW_MS / 2) await new Promise((r) => setTimeout(r, WINDOW_MS - into + 200));
    const windowStart = Date.now() - (Date.now() % WINDOW_MS);

    const run: Run = { allowed: 0, refused: [] };
    await Promise.all([untilRefused(s, 0, run, 10 * LIMIT), untilRefused(s, 1, run, 10 * LIMIT)]);
    const windowEnd = windowStart + WINDOW_MS;
    expect(Date.now()).toBeLessThan(windowEnd); // the run stayed in one window (else rerun)

    const requests = s.brokers.map((b) => b.broker.quotas?.requests);
    console.log(
      `quota: limit ${LIMIT} per 1m per agent, two brokers: ${run.allowed} calls allowed, then 429 on both; ` +
        `lease requests ${requests.join(' + ')}`,
    );
    expect(run.allowed).toBeLessThanOrEqual(LIMIT);
    // Both brokers ran until refused, so no leased call was left unused.
    expect(run.allowed).toBe(LIMIT);
    expect(run.refused).toHaveLength(2);
    for (const r of run.refused) {
      expect(r.status).toBe(429);
      const retryAfter = Number(r.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      const body = JSON.parse(r.body) as { reason: string; message: string; retryAfterSeconds: number };
      expect(body.reason).toBe('QuotaExceeded');
      expect(body.retryAfterSeconds).toBe(retryAfter);
      expect(body.message).toMatch(
        new RegExp(
          `^quota exceeded: AccessPolicy ${s.namespace}/${s.agent}-read rules\\[0\\]\\.limits\\[0\\] allows ${LIMIT} call\\(s\\) per 1m per agent; the window resets in \\d+ s$`,
        ),
      );
    }
    // Still refused on both while the window lasts, without asking the authority again.
    const before = requests;
    expect((await s.call(0, 'GET')).status).toBe(429);
    expect((await s.call(1, 'GET')).status).toBe(429);
    expect(s.brokers.map((b) => b.broker.quotas?.requests)).toEqual(before);

    // The denials are in the trail with their reason.
    const denied = await eventually('QuotaExceeded denials in the audit trail', async () => {
      const entries = (await s.auditRecords()).flatMap((rec) => rec.spec.entries);
      const q = entries.filter((e) => e.message?.startsWith('QuotaExceeded'));
      return q.length >= 4 ? q : null;
    });
    expect(denied[0]?.decision).toBe('Deny');
  });
});
