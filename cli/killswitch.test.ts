import { describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../core/api/index.js';
import { breakerResetNote, killProgress, parseTimeout, reviveProgress } from './killswitch.js';

const T0 = '2026-11-29T11:00:00Z';
const T1 = '2026-11-29T12:00:00Z';

function agent(status: AgentIdentity['status'], generation = 2): AgentIdentity {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name: 'bot', namespace: 'agents', generation },
    spec: { serviceAccountName: 'bot', suspended: true },
    status,
  } as AgentIdentity;
}

const suspendedCond = (gen: number) => ({
  type: 'Suspended',
  status: 'True' as const,
  reason: 'Suspended',
  message: 'spec.suspended is true: incident',
  observedGeneration: gen,
  lastTransitionTime: T1,
});

describe('killProgress', () => {
  it('is not done while the previous (completed) revocation is all there is', () => {
    const p = killProgress(
      agent({ conditions: [suspendedCond(2)], revocation: { requestedAt: T0, completedAt: T0 } }),
      T0,
    );
    expect(p.done).toBe(false);
    expect(p.milestones.map((m) => m.key)).toEqual(['suspended']);
  });

  it('reports request, failures and completion of this revocation', () => {
    const pending = killProgress(
      agent({
        conditions: [suspendedCond(2)],
        revocation: { requestedAt: T1, requestedBy: 'kubectl-warden', pending: 1, credentialsRevoked: 2 },
      }),
      T0,
    );
    expect(pending.done).toBe(false);
    expect(pending.milestones.map((m) => m.text)).toEqual([
      'Suspended=True: spec.suspended is true: incident',
      `revocation requested at ${T1} by kubectl-warden`,
      'revoked 2 credential(s), 1 source(s) failing — retrying (see Events)',
    ]);
    const done = killProgress(
      agent({
        conditions: [suspendedCond(2)],
        revocation: { requestedAt: T1, completedAt: T1, credentialsRevoked: 3 },
      }),
      T0,
    );
    expect(done.done).toBe(true);
    expect(done.milestones.at(-1)?.text).toBe(`revocation completed at ${T1}: 3 credential(s) revoked`);
  });

  it('waits for the Suspended condition of the current generation', () => {
    const p = killProgress(
      agent({ conditions: [suspendedCond(1)], revocation: { requestedAt: T1, completedAt: T1 } }, 2),
      undefined,
    );
    expect(p.milestones.map((m) => m.key)).not.toContain('suspended');
  });
});

describe('reviveProgress', () => {
  it('is done once Suspended=False is observed for the current generation', () => {
    const cond = { ...suspendedCond(3), status: 'False' as const, message: 'spec.suspended is false' };
    expect(reviveProgress(agent({ conditions: [cond] }, 3)).done).toBe(true);
    expect(reviveProgress(agent({ conditions: [{ ...cond, observedGeneration: 2 }] }, 3)).done).toBe(false);
  });
});

describe('breakerResetNote', () => {
  const reason =
    'CircuitBreakerTripped: maxDenialsPerMinute 20 exceeded: 23 denied calls in the last 60 s; agent suspended by the Warden circuit breaker (revive: kubectl warden revive)';
  it('tells that reviving resets a breaker that suspended the agent, with when and why', () => {
    const a = agent({
      circuitBreaker: {
        trips: 1,
        lastTrip: { time: T1, threshold: 'maxDenialsPerMinute', limit: 20, observed: 23, action: 'Suspend' },
      },
    });
    a.spec.suspendReason = reason;
    expect(breakerResetNote(a)).toBe(
      `circuit breaker reset: it tripped at ${T1} (CircuitBreakerTripped: maxDenialsPerMinute 20 exceeded: 23 denied calls in the last 60 s); it counts again from now`,
    );
  });

  it('says nothing for a suspension by a person, or an agent that is not suspended', () => {
    const person = agent({});
    person.spec.suspendReason = 'incident 42';
    expect(breakerResetNote(person)).toBeUndefined();
    const active = agent({});
    active.spec = { serviceAccountName: 'bot', suspended: false, suspendReason: reason };
    expect(breakerResetNote(active)).toBeUndefined();
  });
});

describe('parseTimeout', () => {
  it.each([
    ['60s', 60_000],
    ['2m', 120_000],
    ['90', 90_000],
    ['500ms', 500],
  ])('%s', (v, ms) => {
    expect(parseTimeout(v)).toBe(ms);
  });
  it('rejects garbage, naming the flag', () => {
    expect(() => parseTimeout('soon')).toThrow('--timeout');
  });
});
