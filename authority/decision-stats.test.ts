import { describe, expect, it } from 'vitest';
import type { BrokerEvent } from './audit-endpoint.js';
import { accumulate, statusPatch } from './decision-stats.js';

const ev = (time: string, decision: 'Allow' | 'Deny', over: Partial<BrokerEvent> = {}): BrokerEvent => ({
  entry: {
    time,
    kind: 'Decision',
    decision,
    ...(decision === 'Deny' ? { message: 'no rule allows it' } : {}),
  },
  ...(decision === 'Deny' ? { reason: 'NoMatchingRule' } : {}),
  ...over,
});

describe('accumulate', () => {
  it('counts decisions and keeps the latest decision, denial reason and last-seen time', () => {
    const p = accumulate({ allowed: 1, denied: 0 }, [
      ev('2026-11-29T12:00:01Z', 'Deny'),
      ev('2026-11-29T12:00:03Z', 'Allow'),
      ev('2026-11-29T12:00:02Z', 'Allow'),
    ]);
    expect(p).toEqual({
      allowed: 3,
      denied: 1,
      lastDecision: 'Allow',
      lastDecisionTime: '2026-11-29T12:00:03Z',
      lastDenialReason: 'NoMatchingRule: no rule allows it',
      lastSeen: '2026-11-29T12:00:03Z',
    });
  });

  it('counts only Decision entries, but any entry means the agent was seen', () => {
    const p = accumulate({ allowed: 0, denied: 0 }, [
      { entry: { time: '2026-11-29T12:00:05Z', kind: 'Credential', decision: 'Allow' } },
    ]);
    expect(p).toEqual({ allowed: 0, denied: 0, lastSeen: '2026-11-29T12:00:05Z' });
  });
});

describe('statusPatch', () => {
  it('adds to the current counters', () => {
    const patch = statusPatch(
      { allowed: 10, denied: 2, lastDecision: 'Deny', lastDecisionTime: '2026-11-29T11:00:00Z' },
      {
        allowed: 3,
        denied: 1,
        lastDecision: 'Allow',
        lastDecisionTime: '2026-11-29T12:00:00Z',
        lastSeen: '2026-11-29T12:00:00Z',
      },
    );
    expect(patch).toEqual({
      decisions: { allowed: 13, denied: 3, lastDecision: 'Allow', lastDecisionTime: '2026-11-29T12:00:00Z' },
      lastSeen: '2026-11-29T12:00:00Z',
    });
  });

  it('does not move lastDecision backwards (another replica wrote a newer one)', () => {
    const patch = statusPatch(
      { allowed: 1, lastDecision: 'Deny', lastDecisionTime: '2026-11-29T12:00:09Z' },
      { allowed: 1, denied: 0, lastDecision: 'Allow', lastDecisionTime: '2026-11-29T12:00:01Z' },
    );
    expect(patch.decisions).toEqual({ allowed: 2, denied: 0 });
  });

  it('starts from zero on a fresh agent', () => {
    expect(statusPatch(undefined, { allowed: 0, denied: 2 }).decisions).toEqual({ allowed: 0, denied: 2 });
  });

  it('carries the last attestation, and leaves it out when none happened', () => {
    const lastAttestation = { pod: 'bot-0', podUID: 'u-1', time: '2026-11-29T12:00:00Z' };
    expect(statusPatch(undefined, { allowed: 0, denied: 0, lastAttestation })).toEqual({
      decisions: { allowed: 0, denied: 0 },
      lastAttestation,
    });
    expect(statusPatch(undefined, { allowed: 1, denied: 0 })).not.toHaveProperty('lastAttestation');
  });

  it('adds dropped audit entries to status.audit.dropped', () => {
    expect(statusPatch({ allowed: 4 }, { allowed: 1, denied: 0, dropped: 3 }, 5)).toEqual({
      decisions: { allowed: 5, denied: 0 },
      audit: { dropped: 8 },
    });
  });

  it('writes only status.audit.dropped when a drop is all there is (decision counters untouched)', () => {
    expect(statusPatch(undefined, { allowed: 0, denied: 0, dropped: 2 })).toEqual({ audit: { dropped: 2 } });
  });

  it('leaves status.audit alone when nothing was dropped', () => {
    expect(statusPatch(undefined, { allowed: 1, denied: 0 }, 7)).not.toHaveProperty('audit');
  });
});
