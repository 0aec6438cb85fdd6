import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { STATS_FIELD_MANAGER } from '../core/constants.js';
import { ApiError, type KubeApi } from '../kube/kube.js';
import { ApiStatusWriter } from '../kube/status.js';
import { IssuanceStats, issuedPatch } from './issuance-stats.js';

/** An in-memory stand-in for the API server's two calls the counter makes (GET, PATCH /status). */
function memoryApi(initial: number | undefined, fail: { next?: number } = {}) {
  const state = { issuedCount: initial, patches: 0 };
  const api = {
    async request<T>(method: string, _path: string, opts?: { body?: unknown }): Promise<T> {
      if (method === 'PATCH' && fail.next && fail.next-- > 0) throw new ApiError(500, 'boom', method, _path);
      if (method === 'GET') return { status: { issuedCount: state.issuedCount } } as T;
      state.patches++;
      const body = opts?.body as { status: { issuedCount: number } };
      state.issuedCount = body.status.issuedCount;
      return {} as T;
    },
  } as unknown as KubeApi;
  return { api, state, status: new ApiStatusWriter(api, STATS_FIELD_MANAGER) };
}

describe('issuedPatch', () => {
  it('adds what accumulated to the current count (absent = 0)', () => {
    expect(issuedPatch(undefined, 3)).toEqual({ issuedCount: 3 });
    expect(issuedPatch(40, 2)).toEqual({ issuedCount: 42 });
  });
});

describe('IssuanceStats', () => {
  it('writes at most once per interval however many credentials are issued', async () => {
    let now = 0;
    const { api, state, status } = memoryApi(5);
    const stats = new IssuanceStats({ api, status, log: pino({ level: 'silent' }), now: () => now });
    for (let i = 0; i < 100; i++) stats.issued({ namespace: 'agents', provider: 'jira' });
    await stats.flush();
    stats.issued({ namespace: 'agents', provider: 'jira' });
    now = 1_000;
    await stats.flush(); // within 2 s of the last write: held back
    expect(state).toEqual({ issuedCount: 105, patches: 1 }); // 5 before + 100
    now = 2_000;
    await stats.flush();
    expect(state).toEqual({ issuedCount: 106, patches: 2 });
  });

  it('keeps the count when a write fails and writes it with the next one', async () => {
    let now = 0;
    const { api, state, status } = memoryApi(undefined, { next: 1 });
    const stats = new IssuanceStats({ api, status, log: pino({ level: 'silent' }), now: () => now });
    stats.issued({ namespace: 'agents', provider: 'db' });
    await stats.flush();
    expect(stats.counters.failures).toBe(1);
    now = 2_000;
    stats.issued({ namespace: 'agents', provider: 'db' });
    await stats.flush();
    expect(state.issuedCount).toBe(2);
  });
});
