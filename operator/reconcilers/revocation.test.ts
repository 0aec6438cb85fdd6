import { describe, expect, it } from 'vitest';
import type { AgentIdentity } from '../../core/api/index.js';
import { ANNOTATION_SUSPENDED_BY } from '../../core/constants.js';
import { decideRevocation, requestPatch, revocationDone, suspendedBy, suspendedSince } from './revocation.js';

const NOW = new Date('2026-11-29T12:00:00.000Z');
const T0 = '2026-11-29T10:00:00Z';
/** When the current suspension began (Suspended condition flipped to True), second resolution. */
const SINCE = '2026-11-29T11:00:00Z';
const T1 = '2026-11-29T11:00:00.250Z';

function agent(over: {
  suspended?: boolean;
  reason?: string;
  revocation?: Record<string, unknown>;
  /** The Suspended condition: status and the generation it was observed at (default: current). */
  condition?: { status: 'True' | 'False'; observedGeneration?: number; since?: string };
  generation?: number;
  managedFields?: unknown[];
}): AgentIdentity {
  const generation = over.generation ?? 3;
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: {
      name: 'bot',
      namespace: 'agents',
      generation,
      ...(over.managedFields ? { managedFields: over.managedFields } : {}),
    } as AgentIdentity['metadata'],
    spec: {
      serviceAccountName: 'bot',
      ...(over.suspended !== undefined ? { suspended: over.suspended } : {}),
      ...(over.reason ? { suspendReason: over.reason } : {}),
    },
    status: {
      ...(over.revocation ? { revocation: over.revocation } : {}),
      ...(over.condition
        ? {
            conditions: [
              {
                type: 'Suspended',
                status: over.condition.status,
                reason: 'Suspended',
                message: '',
                observedGeneration: over.condition.observedGeneration ?? generation,
                lastTransitionTime: over.condition.since ?? SINCE,
              },
            ],
          }
        : {}),
    },
  } as AgentIdentity;
}

const killed = { suspended: true, condition: { status: 'True' as const } };

describe('suspendedBy with the admission-recorded user', () => {
  const fields = [
    {
      manager: 'kubectl-warden',
      operation: 'Update',
      time: '2026-06-01T10:00:00Z',
      fieldsV1: { 'f:spec': { 'f:suspended': {} } },
    },
  ];
  it('names the Kubernetes user from warden.dev/suspended-by, then the manager and time', () => {
    expect(suspendedBy(fields, { [ANNOTATION_SUSPENDED_BY]: 'alice@example.com' })).toBe(
      'alice@example.com via kubectl-warden (Update at 2026-06-01T10:00:00Z)',
    );
  });
  it('falls back to the manager alone without the annotation (policy not installed)', () => {
    expect(suspendedBy(fields, {})).toBe('kubectl-warden (Update at 2026-06-01T10:00:00Z)');
  });
  it('names the user even without a managedFields entry', () => {
    expect(suspendedBy([], { [ANNOTATION_SUSPENDED_BY]: 'alice' })).toBe('alice');
  });
});

describe('decideRevocation', () => {
  it.each([
    ['an active agent never revoked', agent({}), 'none'],
    [
      'an active agent with a past revocation',
      agent({ revocation: { requestedAt: T0, completedAt: T0 } }),
      'none',
    ],
    [
      'a suspended agent whose suspension is not reported yet (condition pending)',
      agent({ suspended: true }),
      'none',
    ],
    [
      'a suspended agent whose condition is from an older generation',
      agent({ suspended: true, condition: { status: 'True', observedGeneration: 2 } }),
      'none',
    ],
    ['a suspended agent never revoked', agent(killed), 'start'],
    [
      'a suspended agent whose last revocation belongs to an earlier suspension',
      agent({ ...killed, revocation: { requestedAt: T0, completedAt: T0 } }),
      'start',
    ],
    [
      'a suspended agent whose revocation for this suspension is done',
      agent({ ...killed, revocation: { requestedAt: T1, completedAt: T1 } }),
      'none',
    ],
    [
      'a revocation requested in the same second the condition flipped (second vs millisecond resolution)',
      agent({ ...killed, revocation: { requestedAt: '2026-11-29T11:00:00.000Z', completedAt: T1 } }),
      'none',
    ],
    [
      'a revocation in progress (a previous leader crashed mid-way)',
      agent({ ...killed, revocation: { requestedAt: T1 } }),
      'revoke',
    ],
    [
      'a revocation in progress when the agent was revived meanwhile (finish it)',
      agent({ suspended: false, condition: { status: 'False' }, revocation: { requestedAt: T1 } }),
      'revoke',
    ],
  ])('%s → %s', (_name, a, kind) => {
    expect(decideRevocation(a, NOW).kind).toBe(kind);
  });

  it('a new revocation records when, who and why', () => {
    const d = decideRevocation(
      agent({
        ...killed,
        reason: '  incident 42  ',
        managedFields: [
          {
            manager: 'kubectl-warden',
            operation: 'Update',
            time: SINCE,
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
        requestedBy: `kubectl-warden (Update at ${SINCE})`,
        reason: 'incident 42',
        credentialsRevoked: 0,
      },
    });
  });

  it('never dates a revocation before the suspension began (a leader whose clock lags)', () => {
    const d = decideRevocation(agent(killed), new Date('2026-11-29T10:59:58Z'));
    expect(d.kind === 'start' && d.revocation.requestedAt).toBe('2026-11-29T11:00:00.000Z');
    const after = agent({
      ...killed,
      revocation: { requestedAt: '2026-11-29T11:00:00.000Z', completedAt: T1 },
    });
    expect(decideRevocation(after, new Date('2026-11-29T10:59:59Z')).kind).toBe('none');
  });

  it('says when no reason was given', () => {
    const d = decideRevocation(agent(killed), NOW);
    expect(d.kind === 'start' && d.revocation.reason).toBe('no reason given');
  });
});

/** RFC 7386 merge patch of a JSON object (what the API server does with the status write). */
function mergePatch(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

describe('requestPatch', () => {
  it("a new revocation removes the previous one's completedAt and pending, so a crash before its outcome does not look complete", () => {
    const previous = { requestedAt: T0, completedAt: T0, credentialsRevoked: 3, pending: 1 };
    const before = agent({ ...killed, revocation: previous });
    const action = decideRevocation(before, NOW);
    expect(action.kind).toBe('start');
    if (action.kind !== 'start') return;
    const written = mergePatch(previous, requestPatch(action.revocation));
    expect(written).toEqual({ ...action.revocation });
    const after = agent({ ...killed, revocation: written });
    expect(revocationDone(after)).toBe(false);
    // The next leader finds it in progress and revokes.
    expect(decideRevocation(after, NOW)).toEqual({ kind: 'revoke', revocation: written });
  });
});

describe('suspendedSince / revocationDone', () => {
  it('reads the current suspension start and whether its revocation completed', () => {
    expect(suspendedSince(agent(killed))).toBe(SINCE);
    expect(suspendedSince(agent({ ...killed, suspended: false }))).toBeUndefined();
    expect(revocationDone(agent({ ...killed, revocation: { requestedAt: T1, completedAt: T1 } }))).toBe(true);
    expect(revocationDone(agent({ ...killed, revocation: { requestedAt: T1 } }))).toBe(false);
    expect(revocationDone(agent({ ...killed, revocation: { requestedAt: T0, completedAt: T0 } }))).toBe(
      false,
    );
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
