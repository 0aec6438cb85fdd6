import { describe, expect, it } from 'vitest';
import type { BrokerEvent } from '../core/ports/audit.js';
import {
  counts,
  emptyWindow,
  evaluate,
  observe,
  rates,
  sinceRevive,
  suspendedChangedAt,
  toolKey,
  tripReason,
} from './circuit-breaker.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');

const ev = (
  decision: 'Allow' | 'Deny',
  over: Partial<BrokerEvent['entry']> = {},
  reason?: string,
): BrokerEvent => ({
  entry: { time: '2026-12-04T12:00:00Z', kind: 'Decision', decision, target: 'api', ...over },
  ...(reason ? { reason } : decision === 'Deny' ? { reason: 'NoMatchingAllow' } : {}),
});

describe('what counts', () => {
  it('counts broker decisions but not denials of an already suspended agent nor other entry kinds', () => {
    expect(counts(ev('Deny'))).toBe(true);
    expect(counts(ev('Allow'))).toBe(true);
    expect(counts(ev('Deny', {}, 'AgentSuspended'))).toBe(false);
    expect(counts(ev('Allow', { kind: 'Credential' }))).toBe(false);
  });

  it('names an MCP tool by target and tool, an HTTP or PostgreSQL call by its target', () => {
    expect(toolKey(ev('Allow', { target: 'jira', tool: 'get_issue' }))).toBe('jira/get_issue');
    expect(toolKey(ev('Allow', { target: 'orders-db' }))).toBe('orders-db');
  });
});

describe('the 60 s window', () => {
  it('adds calls and denials across batches and seconds', () => {
    const w = emptyWindow();
    observe(w, [ev('Deny'), ev('Allow')], T0);
    observe(w, [ev('Deny')], T0 + 30_000);
    expect(rates(w, T0 + 30_000)).toEqual({ calls: 3, denials: 2, tools: 1 });
  });

  it('forgets what is older than 60 s', () => {
    const w = emptyWindow();
    observe(w, [ev('Deny'), ev('Deny', { target: 'db' })], T0);
    observe(w, [ev('Deny')], T0 + 59_000);
    expect(rates(w, T0 + 59_999)).toEqual({ calls: 3, denials: 3, tools: 2 });
    expect(rates(w, T0 + 60_000)).toEqual({ calls: 1, denials: 1, tools: 1 });
    expect(rates(w, T0 + 200_000)).toEqual({ calls: 0, denials: 0, tools: 0 });
  });

  it('reuses a slot a minute later without carrying its old counts', () => {
    const w = emptyWindow();
    observe(w, [ev('Deny'), ev('Deny')], T0);
    observe(w, [ev('Allow')], T0 + 60_000);
    expect(rates(w, T0 + 60_000)).toEqual({ calls: 1, denials: 0, tools: 1 });
  });

  it('counts distinct tools, each once however often it is called', () => {
    const w = emptyWindow();
    const batch = ['a', 'b', 'c', 'a', 'b'].map((t) => ev('Allow', { target: 'mcp', tool: t }));
    observe(w, batch, T0);
    expect(rates(w, T0).tools).toBe(3);
  });
});

describe('evaluate', () => {
  it('trips only when a threshold is exceeded, not reached', () => {
    const w = emptyWindow();
    observe(
      w,
      Array.from({ length: 5 }, () => ev('Deny')),
      T0,
    );
    expect(evaluate({ maxDenialsPerMinute: 5 }, w, T0)).toBeNull();
    observe(w, [ev('Deny')], T0 + 1);
    expect(evaluate({ maxDenialsPerMinute: 5 }, w, T0 + 1)).toEqual({
      threshold: 'maxDenialsPerMinute',
      limit: 5,
      observed: 6,
    });
  });

  it('checks calls (allowed ones too) and distinct tools', () => {
    const w = emptyWindow();
    observe(
      w,
      ['a', 'b', 'c'].map((t) => ev('Allow', { tool: t })),
      T0,
    );
    expect(evaluate({ maxCallsPerMinute: 2 }, w, T0)?.threshold).toBe('maxCallsPerMinute');
    expect(evaluate({ maxDistinctToolsPerMinute: 2 }, w, T0)).toEqual({
      threshold: 'maxDistinctToolsPerMinute',
      limit: 2,
      observed: 3,
    });
    expect(evaluate({ maxDenialsPerMinute: 1, maxCallsPerMinute: 3 }, w, T0)).toBeNull();
  });

  it('ignores denials of a suspended agent', () => {
    const w = emptyWindow();
    observe(
      w,
      Array.from({ length: 10 }, () => ev('Deny', {}, 'AgentSuspended')),
      T0,
    );
    expect(evaluate({ maxDenialsPerMinute: 1, maxCallsPerMinute: 1 }, w, T0)).toBeNull();
  });
});

describe('tripReason', () => {
  it('names the reason constant, the threshold, its limit and the observed rate', () => {
    const t = { threshold: 'maxDenialsPerMinute', limit: 20, observed: 23 } as const;
    expect(tripReason(t, 'Suspend')).toBe(
      'CircuitBreakerTripped: maxDenialsPerMinute 20 exceeded: 23 denied calls in the last 60 s; agent suspended by the Warden circuit breaker (revive: kubectl warden revive)',
    );
    expect(tripReason(t, 'Alert')).toMatch(
      /^CircuitBreakerTripped: .* \(action Alert: the agent was not suspended\)$/,
    );
  });
});

describe('after a revive', () => {
  const at = (iso: string) => ({ ...ev('Deny'), entry: { ...ev('Deny').entry, time: iso } });
  const revivedAt = Date.parse('2026-12-04T12:00:10Z');

  it('leaves out decisions made before the revive that arrive late, for a grace period only', () => {
    const late = at('2026-12-04T12:00:09.500Z');
    const after = at('2026-12-04T12:00:10.200Z');
    expect(sinceRevive([late, after], revivedAt, revivedAt + 1_000)).toEqual([after]);
    expect(sinceRevive([late, after], revivedAt, revivedAt + 10_000)).toEqual([late, after]);
    expect(sinceRevive([late], undefined, revivedAt)).toEqual([late]);
  });

  it('reads when spec.suspended last changed from managedFields (not from status writes)', () => {
    const agent = {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: {
        name: 'bot',
        managedFields: [
          {
            manager: 'kubectl-warden',
            time: '2026-12-04T12:00:10Z',
            fieldsV1: { 'f:spec': { 'f:suspended': {} } },
          },
          { manager: 'old', time: '2026-12-04T11:00:00Z', fieldsV1: { 'f:spec': { 'f:suspended': {} } } },
          {
            manager: 'status',
            time: '2026-12-04T12:30:00Z',
            subresource: 'status',
            fieldsV1: { 'f:spec': { 'f:suspended': {} } },
          },
          {
            manager: 'other',
            time: '2026-12-04T12:40:00Z',
            fieldsV1: { 'f:spec': { 'f:serviceAccountName': {} } },
          },
        ],
      },
      spec: { serviceAccountName: 'bot', suspended: false },
    };
    expect(suspendedChangedAt(agent as never)).toBe(revivedAt);
    expect(suspendedChangedAt({ ...agent, metadata: { name: 'bot' } } as never)).toBeUndefined();
  });
});
