import { describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../../core/api/index.js';
import { ANNOTATION_REVOKED_FOR, decideRevocation, suspendedBy } from './revocation.js';

const NOW = new Date('2026-11-29T12:00:00.000Z');

function agent(over: {
  suspended?: boolean;
  reason?: string;
  revocation?: Record<string, unknown>;
  marker?: string;
  managedFields?: unknown[];
}): AgentIdentity {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: {
      name: 'bot',
      namespace: 'agents',
      ...(over.marker ? { annotations: { [ANNOTATION_REVOKED_FOR]: over.marker } } : {}),
      ...(over.managedFields ? { managedFields: over.managedFields } : {}),
    } as AgentIdentity['metadata'],
    spec: {
      serviceAccountName: 'bot',
      ...(over.suspended !== undefined ? { suspended: over.suspended } : {}),
      ...(over.reason ? { suspendReason: over.reason } : {}),
    },
    ...(over.revocation ? { status: { revocation: over.revocation } } : {}),
  } as AgentIdentity;
}

const T1 = '2026-11-29T11:00:00.000Z';

describe('decideRevocation', () => {
  it.each([
    ['an active agent never revoked', agent({}), 'none'],
    [
      'an active agent with a past revocation and no marker',
      agent({ revocation: { requestedAt: T1, completedAt: T1 } }),
      'none',
    ],
    ['a suspended agent never revoked', agent({ suspended: true }), 'start'],
    [
      'a suspended agent whose last revocation belongs to an earlier suspension',
      agent({ suspended: true, revocation: { requestedAt: T1, completedAt: T1 } }),
      'start',
    ],
    [
      'a suspended agent whose revocation for this suspension is done',
      agent({ suspended: true, revocation: { requestedAt: T1, completedAt: T1 }, marker: T1 }),
      'none',
    ],
    [
      'a revocation in progress (a previous leader crashed mid-way)',
      agent({ suspended: true, revocation: { requestedAt: T1 } }),
      'revoke',
    ],
    [
      'a revocation in progress when the agent was revived meanwhile (finish it)',
      agent({ suspended: false, revocation: { requestedAt: T1 } }),
      'revoke',
    ],
    [
      'a revived agent still carrying the marker',
      agent({ revocation: { requestedAt: T1, completedAt: T1 }, marker: T1 }),
      'clear-marker',
    ],
  ])('%s → %s', (_name, a, kind) => {
    expect(decideRevocation(a, NOW).kind).toBe(kind);
  });

  it('a new revocation records when, who and why', () => {
    const d = decideRevocation(
      agent({
        suspended: true,
        reason: '  incident 42  ',
        managedFields: [
          {
            manager: 'kubectl-warden',
            operation: 'Update',
            time: T1,
            fieldsV1: { 'f:spec': { 'f:suspended': {} } },
          },
        ],
      }),
      NOW,
    );
    expect(d).toEqual({
      kind: 'start',
      revocation: {
        requestedAt: NOW.toISOString(),
        requestedBy: `kubectl-warden (Update at ${T1})`,
        reason: 'incident 42',
        credentialsRevoked: 0,
      },
    });
  });

  it('says when no reason was given', () => {
    const d = decideRevocation(agent({ suspended: true }), NOW);
    expect(d.kind === 'start' && d.revocation.reason).toBe('no reason given');
  });
});

describe('suspendedBy', () => {
  it('picks the newest manager that owns spec.suspended, ignoring status writers and other fields', () => {
    expect(
      suspendedBy([
        {
          manager: 'kubectl-create',
          operation: 'Update',
          time: '2026-01-01T00:00:00Z',
          fieldsV1: { 'f:spec': { 'f:suspended': {}, 'f:serviceAccountName': {} } },
        },
        {
          manager: 'security-bot',
          operation: 'Apply',
          time: '2026-11-29T10:00:00Z',
          fieldsV1: { 'f:spec': { 'f:suspended': {} } },
        },
        {
          manager: 'warden-controller',
          operation: 'Update',
          time: '2026-11-29T11:00:00Z',
          subresource: 'status',
          fieldsV1: {},
        },
        {
          manager: 'labeler',
          operation: 'Update',
          time: '2026-11-29T11:30:00Z',
          fieldsV1: { 'f:spec': { 'f:maxCredentialTTL': {} } },
        },
      ]),
    ).toBe('security-bot (Apply at 2026-11-29T10:00:00Z)');
  });

  it.each([
    ['no managedFields', undefined],
    [
      'none owning spec.suspended',
      [{ manager: 'x', fieldsV1: { 'f:spec': { 'f:serviceAccountName': {} } } }],
    ],
  ])('says it does not know with %s', (_n, mf) => {
    expect(suspendedBy(mf)).toContain('unknown');
  });
});
