import { describe, expect, it } from 'vitest';
import { REVOCATION_FIELD_MANAGER } from '../core/constants.js';
import { ConflictError, TerminalError } from './errors.js';
import { ApiError, type KubeApi, type RequestOptions } from './kube.js';
import { ApiStatusWriter, jsonEqual, statusChanged } from './status.js';

const cond = (status: 'True' | 'False', t = '2026-01-01T00:00:00Z') => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'Ready' : 'ServiceAccountNotFound',
  message: 'm',
  observedGeneration: 2,
  lastTransitionTime: t,
});

describe('jsonEqual', () => {
  it.each<[string, unknown, unknown, boolean]>([
    ['equal scalars', 1, 1, true],
    ['different scalars', 1, 2, false],
    ['nested objects in any key order', { a: { b: [1, 2] }, c: 'x' }, { c: 'x', a: { b: [1, 2] } }, true],
    ['array order matters', [1, 2], [2, 1], false],
    ['undefined members are absent', { a: 1, b: undefined }, { a: 1 }, true],
    ['null is not absent', { a: null }, {}, false],
    ['array vs object', [], {}, false],
  ])('%s', (_n, a, b, expected) => {
    expect(jsonEqual(a, b)).toBe(expected);
  });
});

describe('statusChanged', () => {
  const current = { observedGeneration: 2, conditions: [cond('True')], decisions: { allowed: 5 } };
  it.each<[string, Record<string, unknown>, boolean]>([
    ['the same owned fields', { observedGeneration: 2, conditions: [cond('True')] }, false],
    ['only lastTransitionTime differs', { conditions: [cond('True', '2030-01-01T00:00:00Z')] }, false],
    ['fields owned by others are not compared', { observedGeneration: 2 }, false],
    ['a new generation', { observedGeneration: 3 }, true],
    ['a condition flips', { conditions: [cond('False')] }, true],
    ['a new field', { standingSecret: true }, true],
    ['removing a present field', { decisions: null }, true],
    ['removing an absent field', { lastSeen: null }, false],
    ['undefined desired fields are ignored', { lastSeen: undefined }, false],
    ['an object member left out of the patch is no change', { decisions: {} }, false],
    ['an object member that differs', { decisions: { allowed: 6 } }, true],
    ['a new member of an object', { decisions: { denied: 1 } }, true],
    ['removing a present member', { decisions: { allowed: null } }, true],
    ['removing an absent member', { decisions: { denied: null } }, false],
    ['a member of an absent object', { audit: { prunedThrough: '2/ab' } }, true],
  ])('%s → %s', (_n, desired, expected) => {
    expect(statusChanged(current, desired)).toBe(expected);
  });
  it('treats a missing status as empty', () => {
    expect(statusChanged(undefined, { observedGeneration: 1 })).toBe(true);
    expect(statusChanged(undefined, {})).toBe(false);
  });
});

class StatusSink implements KubeApi {
  readonly writes: Array<{ method: string; path: string; opts: RequestOptions }> = [];
  respond: ApiError | undefined;
  readonly watcher = { watch: () => Promise.reject(new Error('not used')) };
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    this.writes.push({ method, path, opts });
    if (this.respond) throw this.respond;
    return {} as T;
  }
}

const ref = { group: 'warden.dev', version: 'v1alpha1', plural: 'agentidentities' };
const obj = {
  kind: 'AgentIdentity',
  metadata: { name: 'bot', namespace: 'team-a', resourceVersion: '42' },
  status: { observedGeneration: 1 },
};

describe('ApiStatusWriter', () => {
  it('skips the write when nothing changed', async () => {
    const api = new StatusSink();
    expect(await new ApiStatusWriter(api).write(ref, obj, { observedGeneration: 1 })).toBe('unchanged');
    expect(api.writes).toHaveLength(0);
  });

  it('merge-patches only the /status subresource, with the resourceVersion read and the field manager', async () => {
    const api = new StatusSink();
    expect(await new ApiStatusWriter(api).write(ref, obj, { observedGeneration: 2 })).toBe('updated');
    expect(api.writes).toEqual([
      {
        method: 'PATCH',
        path: '/apis/warden.dev/v1alpha1/namespaces/team-a/agentidentities/bot/status',
        opts: {
          body: { metadata: { resourceVersion: '42' }, status: { observedGeneration: 2 } },
          contentType: 'application/merge-patch+json',
          query: { fieldManager: 'warden-controller' },
          signal: undefined,
        },
      },
    ]);
  });

  it('overwrite leaves the resourceVersion out and carries the field manager', async () => {
    const api = new StatusSink();
    const writer = new ApiStatusWriter(api, REVOCATION_FIELD_MANAGER);
    expect(await writer.overwrite(ref, obj, { revocation: { pending: 0 } })).toBe('updated');
    expect(api.writes.map((w) => w.opts.body)).toEqual([{ status: { revocation: { pending: 0 } } }]);
    expect(api.writes[0]?.opts.query).toEqual({ fieldManager: REVOCATION_FIELD_MANAGER });
  });

  it.each([
    [
      'write',
      (w: ApiStatusWriter) => w.write(ref, obj, { observedGeneration: 2, decisions: { allowed: 1 } }),
    ],
    ['overwrite', (w: ApiStatusWriter) => w.overwrite(ref, obj, { audit: { head: {} } })],
  ])(
    '%s refuses a field its field manager does not own, before any request, naming it and the fix',
    async (_n, act) => {
      const api = new StatusSink();
      const err = await act(new ApiStatusWriter(api)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TerminalError);
      expect((err as Error).message).toMatch(
        /^AgentIdentity status: field manager warden-controller does not own status\.(decisions|audit); .*core\/status-owners\.ts/,
      );
      expect(api.writes).toHaveLength(0);
    },
  );

  it('turns a 409 into a ConflictError naming the object', async () => {
    const api = new StatusSink();
    api.respond = new ApiError(409, { reason: 'Conflict' }, 'PATCH', '/x');
    const err = await new ApiStatusWriter(api)
      .write(ref, obj, { observedGeneration: 2 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain('AgentIdentity team-a/bot status');
  });

  it('reports an object deleted meanwhile as gone, not as an error', async () => {
    const api = new StatusSink();
    api.respond = new ApiError(404, { reason: 'NotFound' }, 'PATCH', '/x');
    expect(await new ApiStatusWriter(api).write(ref, obj, { observedGeneration: 2 })).toBe('gone');
  });

  it('passes other errors through', async () => {
    const api = new StatusSink();
    api.respond = new ApiError(422, { message: 'status.conditions[0].reason: Invalid value' }, 'PATCH', '/x');
    await expect(new ApiStatusWriter(api).write(ref, obj, { observedGeneration: 2 })).rejects.toThrow(/422/);
  });
});
