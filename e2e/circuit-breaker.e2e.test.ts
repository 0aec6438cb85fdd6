/**
 * The circuit breaker end to end (AgentIdentity spec.circuitBreaker): one agent, two pods, two
 * real brokers, a real `warden controller` and API server. The agent loops on denied calls
 * through both brokers; the authority, counting the decisions both brokers ship on their audit
 * batches, suspends it as the kill switch does — spec.suspended, suspendReason naming the
 * threshold and the observed rate, status.circuitBreaker, an Event, an audit entry, revocation —
 * and `revive` resets it.
 *
 * The trip latency (the denial that crossed the threshold → the first AgentSuspended answer) is
 * printed, not asserted: tests assert behaviour.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../core/api/index.js';
import type { ObjectList } from '../kube/kube.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig } from './harness/index.js';
import { type Call, startTwoBrokers, type TwoBrokers } from './two-brokers-fixture.js';

const reasonOf = (c: Call): string | undefined => {
  try {
    return (JSON.parse(c.body) as { reason?: string }).reason;
  } catch {
    return undefined;
  }
};

interface Loop {
  /** Denials answered for policy reasons (not AgentSuspended), in order, with when they came back. */
  denials: number[];
  /** When each broker first answered AgentSuspended. */
  suspendedAt: number[];
  calls: number;
}

/**
 * Both brokers deny POSTs as fast as the agent can send them, until both answer AgentSuspended
 * (or `maxCalls` in all: the breaker never tripped).
 */
async function denialLoop(s: TwoBrokers, maxCalls: number): Promise<Loop> {
  const loop: Loop = { denials: [], suspendedAt: [], calls: 0 };
  const one = async (i: 0 | 1) => {
    while (loop.calls < maxCalls) {
      loop.calls++;
      const r = await s.call(i, 'POST');
      const reason = reasonOf(r);
      if (reason === 'AgentSuspended') {
        loop.suspendedAt[i] = Date.now();
        return;
      }
      expect(r.status).toBe(403);
      loop.denials.push(Date.now());
    }
  };
  await Promise.all([one(0), one(1)]);
  return loop;
}

describe('circuit breaker across two brokers', () => {
  let s: TwoBrokers;

  beforeAll(async () => {
    const ns = await freshNamespace('breaker');
    s = await startTwoBrokers({ kubeConfig: kubeConfig(), namespace: ns });
    await s.waitReady();
  });

  afterAll(async () => {
    await s?.stop();
  });

  const LIMIT = 20;

  it('suspends an agent looping on denied calls, naming the threshold and the rate', async () => {
    await s.patchAgent({ circuitBreaker: { maxDenialsPerMinute: LIMIT } });
    await eventually('the brokers to see the breaker-enabled snapshot', async () =>
      Boolean((await s.call(0, 'GET')).status === 200),
    );

    const loop = await denialLoop(s, 5_000);
    expect(loop.suspendedAt.filter(Boolean)).toHaveLength(2);
    // The first denial past the threshold (as the agent saw it), and the first suspended answer.
    const crossed = loop.denials[LIMIT] as number;
    const firstSuspended = Math.min(...loop.suspendedAt);
    console.log(
      `circuit breaker: threshold maxDenialsPerMinute ${LIMIT}; ${loop.denials.length} denials before the suspension; ` +
        `trip latency (denial ${LIMIT + 1} answered → first AgentSuspended answer) ${firstSuspended - crossed} ms`,
    );

    const agent = await s.getAgent();
    expect(agent.spec.suspended).toBe(true);
    const reason = agent.spec.suspendReason ?? '';
    const m =
      /^CircuitBreakerTripped: maxDenialsPerMinute 20 exceeded: (\d+) denied calls in the last 60 s/.exec(
        reason,
      );
    expect(m, reason).not.toBeNull();
    const observed = Number(m?.[1]);
    expect(observed).toBeGreaterThan(LIMIT);
    expect(observed).toBeLessThanOrEqual(loop.denials.length);

    // status.circuitBreaker, the revocation (who: the breaker's field manager), Event, audit entry.
    const tripped = await eventually('status.circuitBreaker and the revocation', async () => {
      const a = await s.getAgent();
      return a.status?.circuitBreaker?.lastTrip && a.status.revocation?.completedAt ? a : null;
    });
    expect(tripped.status?.circuitBreaker?.lastTrip).toMatchObject({
      threshold: 'maxDenialsPerMinute',
      limit: LIMIT,
      observed,
      action: 'Suspend',
    });
    expect(tripped.status?.circuitBreaker?.trips).toBe(1);
    expect(tripped.status?.revocation?.requestedBy).toContain('warden-circuit-breaker');
    expect(tripped.status?.revocation?.reason).toBe(reason);

    const events = await eventually('the CircuitBreakerTripped Event', async () => {
      const list = await s.api.request<ObjectList<{ reason?: string; note?: string; type?: string }>>(
        'GET',
        `/apis/events.k8s.io/v1/namespaces/${s.namespace}/events`,
      );
      const found = list.items.filter((e) => e.reason === 'CircuitBreakerTripped');
      return found.length > 0 ? found : null;
    });
    expect(events[0]?.type).toBe('Warning');
    expect(events[0]?.note).toContain('maxDenialsPerMinute 20 exceeded');

    const entry = await eventually('the CircuitBreaker audit entry', async () => {
      const records = await s.auditRecords();
      return records.flatMap((r) => r.spec.entries).find((e) => e.kind === 'CircuitBreaker');
    });
    expect(entry).toMatchObject({ decision: 'Deny', user: 'warden-circuit-breaker' });
    expect(entry.message).toBe(reason);
  });

  it('revive resets it: the agent calls again, and denials below the threshold do not trip it', async () => {
    await s.patchAgent({ suspended: false, suspendReason: null });
    await eventually('both brokers to allow again', async () => {
      const [a, b] = await Promise.all([s.call(0, 'GET'), s.call(1, 'GET')]);
      return a.status === 200 && b.status === 200;
    });
    // Well under the threshold counted from the revive (the minute before held many more).
    const ids: string[] = [];
    for (let i = 0; i < LIMIT / 2; i++) {
      const r = await s.call((i % 2) as 0 | 1, 'POST');
      expect(r.status).toBe(403);
      ids.push(r.requestId);
    }
    // Once the trail holds them the authority has counted them (every sink sees a batch at once).
    await eventually('the denials in the audit trail', async () => {
      const seen = new Set((await s.auditRecords()).flatMap((r) => r.spec.entries.map((e) => e.requestId)));
      return ids.every((id) => seen.has(id));
    });
    await new Promise((r) => setTimeout(r, 500)); // a suspension patch would be in flight by now
    const later = await s.getAgent();
    expect(later.spec.suspended).toBe(false);
    expect(later.status?.circuitBreaker?.trips).toBe(1);
  });
});

describe('circuit breaker with action Alert', () => {
  let s: TwoBrokers;

  beforeAll(async () => {
    const ns = await freshNamespace('breaker-alert');
    s = await startTwoBrokers({ kubeConfig: kubeConfig(), namespace: ns });
    await s.waitReady();
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('tells (status, Event, audit) but does not suspend', async () => {
    await s.patchAgent({ circuitBreaker: { maxCallsPerMinute: 10, action: 'Alert' } });
    await eventually('the brokers to see the breaker-enabled snapshot', async () =>
      Boolean((await s.call(0, 'GET')).status === 200),
    );
    for (let i = 0; i < 15; i++) await s.call((i % 2) as 0 | 1, i % 3 === 0 ? 'POST' : 'GET');
    const a = await eventually('status.circuitBreaker.lastTrip', async () => {
      const x: AgentIdentity = await s.getAgent();
      return x.status?.circuitBreaker?.lastTrip ? x : null;
    });
    expect(a.status?.circuitBreaker?.lastTrip).toMatchObject({
      threshold: 'maxCallsPerMinute',
      limit: 10,
      action: 'Alert',
    });
    expect(a.spec.suspended).toBe(false);
    expect((await s.call(1, 'GET')).status).toBe(200);
    const entry = await eventually('the CircuitBreaker audit entry', async () => {
      const records = await s.auditRecords();
      return records.flatMap((r) => r.spec.entries).find((e) => e.kind === 'CircuitBreaker');
    });
    expect(entry).toMatchObject({ decision: 'Allow', user: 'warden-circuit-breaker' });
    expect(entry.message).toMatch(
      /^CircuitBreakerTripped: maxCallsPerMinute 10 exceeded: \d+ calls in the last 60 s \(action Alert/,
    );
  });
});
