import { describe, expect, it } from 'vitest';
import type { AgentIdentity, AuditRecord, CredentialProvider } from '../core/api/index.js';
import { ANNOTATION_SUSPENDED_BY } from '../core/constants.js';
import { age, agentStatuses, formatAgents, namespaceOverviews } from './status-view.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');

function agent(name: string, extra: Partial<AgentIdentity> = {}): AgentIdentity {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name, namespace: 'agents' },
    spec: { serviceAccountName: name, maxCredentialTTL: '1h' },
    ...extra,
  } as AgentIdentity;
}

function record(agentName: string, entries: AuditRecord['spec']['entries']): AuditRecord {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AuditRecord',
    metadata: { name: `${agentName}-0`, namespace: 'agents' },
    spec: { agent: agentName, sequence: 0, entries },
  } as AuditRecord;
}

const issued = (time: string, id: string) => ({
  time,
  kind: 'Decision' as const,
  decision: 'Allow' as const,
  credentialId: id,
});

describe('agentStatuses', () => {
  it('counts credentials issued within maxCredentialTTL as possibly live, older ones not', () => {
    const [s] = agentStatuses(
      {
        agents: [agent('a')],
        policies: [],
        providers: [],
        records: [
          record('a', [issued('2026-06-01T10:00:00Z', 'old'), issued('2026-06-01T11:30:00Z', 'new')]),
        ],
      },
      NOW,
    );
    expect(s?.activeCredentials).toBe(1);
  });

  it('counts none issued before the last revocation, and none once a suspension is fully revoked', () => {
    const revoked = agent('a', {
      spec: { serviceAccountName: 'a', maxCredentialTTL: '1h', suspended: true },
      status: {
        revocation: {
          requestedAt: '2026-06-01T11:45:00Z',
          completedAt: '2026-06-01T11:45:01Z',
          credentialsRevoked: 3,
        },
      },
      metadata: {
        name: 'a',
        namespace: 'agents',
        annotations: { [ANNOTATION_SUSPENDED_BY]: 'alice@example.com' },
      },
    });
    const [s] = agentStatuses(
      {
        agents: [revoked],
        policies: [],
        providers: [],
        records: [record('a', [issued('2026-06-01T11:30:00Z', 'x')])],
      },
      NOW,
    );
    expect(s).toMatchObject({
      suspended: true,
      suspendedBy: 'alice@example.com',
      activeCredentials: 0,
      revocation: 'done: 3 revoked',
    });
  });

  it('names the circuit breaker and the threshold that tripped when it suspended the agent', () => {
    const tripped = agent('a', {
      spec: {
        serviceAccountName: 'a',
        maxCredentialTTL: '1h',
        suspended: true,
        suspendReason:
          'CircuitBreakerTripped: maxDenialsPerMinute 10 exceeded: 97 denied calls in the last 60 s',
      },
      status: {
        circuitBreaker: {
          trips: 1,
          lastTrip: {
            time: '2026-06-01T11:45:00Z',
            threshold: 'maxDenialsPerMinute',
            limit: 10,
            observed: 97,
            action: 'Suspend',
          },
        },
      },
      metadata: {
        name: 'a',
        namespace: 'agents',
        annotations: { [ANNOTATION_SUSPENDED_BY]: 'system:serviceaccount:warden:warden' },
      },
    });
    const [s] = agentStatuses({ agents: [tripped], policies: [], providers: [], records: [] }, NOW);
    expect(s?.suspendedBy).toBe(
      'system:serviceaccount:warden:warden, circuit breaker: maxDenialsPerMinute 97 > 10',
    );
  });

  it('reports a truncated tail (anchored head ahead of the newest record) and forged records the controller found', () => {
    const only = record('a', [issued('2026-06-01T11:30:00Z', 'x')]);
    const head = { sequence: 4, digest: 'a'.repeat(64), keyId: 'k', jws: 'h..s' };
    const forged = { count: 2, lastRecord: 'a-0000000005' };
    const [s] = agentStatuses(
      {
        agents: [agent('a', { status: { audit: { head, forged } } })],
        policies: [],
        providers: [],
        records: [only],
      },
      NOW,
    );
    expect(s?.audit.healthy).toBe(false);
    // (The bare test record has no digest, so it is also reported as altered.)
    expect(s?.audit.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^truncated: records 1\.\.4 of agent a are missing/),
        expect.stringMatching(
          /^forged: the controller skipped 2 AuditRecord\(s\) it did not write, the last a-0000000005/,
        ),
      ]),
    );
  });

  it('reports a broken audit chain and dropped entries as unhealthy', () => {
    const broken = record('a', [issued('2026-06-01T11:30:00Z', 'x')]);
    broken.spec.sequence = 3; // records 0..2 missing and no retention cut
    const [s] = agentStatuses(
      {
        agents: [agent('a', { status: { audit: { dropped: 2 } } })],
        policies: [],
        providers: [],
        records: [broken],
      },
      NOW,
    );
    expect(s?.audit.healthy).toBe(false);
    expect(s?.audit.dropped).toBe(2);
    expect(s?.audit.problems.length).toBeGreaterThan(0);
    expect(
      formatAgents(
        agentStatuses({ agents: [agent('b')], policies: [], providers: [], records: [] }, NOW),
        { namespaces: false, wide: false },
        NOW,
      ),
    ).toMatch(
      /^AGENT\s+READY\s+SUSPENDED\s+ALLOWED\s+DENIED\s+LAST SEEN\s+CREDENTIALS\s+REVOCATION\s+AUDIT\nb\s+Unknown\s+no\s+0\s+0\s+<never>\s+0\s+-\s+ok \(0 entries\)$/,
    );
  });
});

describe('namespaceOverviews', () => {
  it('sums providers issued counts and agents per namespace', () => {
    const provider = {
      metadata: { name: 'jira', namespace: 'agents' },
      spec: {},
      status: {
        issuedCount: 12,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: '', lastTransitionTime: '' }],
      },
    } as unknown as CredentialProvider;
    const input = { agents: [agent('a')], policies: [], providers: [provider], records: [] };
    expect(namespaceOverviews(input, agentStatuses(input, NOW))).toEqual([
      expect.objectContaining({
        namespace: 'agents',
        agents: 1,
        providers: 1,
        providersReady: 1,
        credentialsIssued: 12,
      }),
    ]);
  });
});

describe('age', () => {
  it.each([
    ['2026-06-01T11:59:50Z', '10s'],
    ['2026-06-01T11:50:00Z', '10m'],
    ['2026-06-01T09:00:00Z', '3h'],
    ['2026-05-20T12:00:00Z', '12d'],
    [undefined, '<never>'],
  ])('%s → %s', (t, want) => expect(age(t, NOW)).toBe(want));
});
