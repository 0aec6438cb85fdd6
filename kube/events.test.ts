import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REPORTING_CONTROLLER } from '../core/constants.js';
import {
  type AggregationTiming,
  ApiEventRecorder,
  aggregationKey,
  decideEventWrite,
  type EventInput,
  type SeriesState,
  TokenBucket,
} from './events.js';
import { ApiError, type KubeApi, type RequestOptions } from './kube.js';
import { FakeClock } from './testing/fake-clock.js';

const timing: AggregationTiming = { windowMs: 360_000, seriesUpdateIntervalMs: 30_000 };

function state(overrides: Partial<SeriesState> = {}): SeriesState {
  return {
    name: 'e',
    namespace: 'ns',
    count: 1,
    writtenCount: 1,
    firstSeen: 0,
    lastSeen: 0,
    lastWrite: 0,
    ...overrides,
  };
}

describe('decideEventWrite', () => {
  it.each<[string, SeriesState | undefined, number, string]>([
    ['first occurrence creates', undefined, 0, 'create'],
    ['a repeat soon after the last write is folded into the count', state(), 10_000, 'skip'],
    ['a repeat after the series interval updates the series', state(), 30_000, 'updateSeries'],
    ['a repeat after the window starts a new Event', state({ lastSeen: 0 }), 360_001, 'create'],
    [
      'the window runs from the last occurrence, not the first',
      state({ lastSeen: 300_000, lastWrite: 300_000 }),
      600_000,
      'updateSeries',
    ],
  ])('%s', (_n, prev, now, expected) => {
    expect(decideEventWrite(prev, now, timing)).toBe(expected);
  });
});

describe('aggregationKey', () => {
  const e: EventInput = {
    type: 'Warning',
    reason: 'SecretNotFound',
    action: 'Reconcile',
    note: 'Secret x not found',
  };
  const ref = { namespace: 'ns', kind: 'CredentialProvider', name: 'jira', uid: 'u1' };
  it('is equal for the same object and event', () => {
    expect(aggregationKey(ref, e)).toBe(aggregationKey({ ...ref }, { ...e }));
  });
  it.each([
    ['another object', { ...ref, name: 'github' }, e],
    ['a recreated object (new uid)', { ...ref, uid: 'u2' }, e],
    ['another reason', ref, { ...e, reason: 'SecretKeyMissing' }],
    ['another note', ref, { ...e, note: 'Secret y not found' }],
  ])('differs for %s', (_n, r, ev) => {
    expect(aggregationKey(r, ev)).not.toBe(aggregationKey(ref, e));
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then refills at the steady rate', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket(3, 1, clock);
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
    await clock.advance(999);
    expect(b.tryTake()).toBe(false);
    await clock.advance(1);
    expect(b.tryTake()).toBe(true);
    await clock.advance(60_000);
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
  });
});

/** Records writes like the API server would accept them; can answer 404 to PATCH. */
class EventSink implements KubeApi {
  readonly writes: Array<{ method: string; path: string; body: unknown; contentType?: string }> = [];
  patchNotFound = false;
  failAll = false;
  readonly watcher = { watch: () => Promise.reject(new Error('not used')) };
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    if (this.failAll) throw new ApiError(500, { message: 'etcd unavailable' }, method, path);
    if (method === 'PATCH' && this.patchNotFound)
      throw new ApiError(404, { reason: 'NotFound' }, method, path);
    this.writes.push({ method, path, body: opts.body, contentType: opts.contentType });
    return {} as T;
  }
}

const agent = {
  apiVersion: 'warden.dev/v1alpha1',
  kind: 'AgentIdentity',
  metadata: { name: 'bot', namespace: 'team-a', uid: 'uid-1', resourceVersion: '7' },
};
const notFound: EventInput = {
  type: 'Warning',
  reason: 'ServiceAccountNotFound',
  action: 'Reconcile',
  note: 'ServiceAccount team-a/bot-sa not found',
};

function recorder(opts: { burst?: number } = {}) {
  const clock = new FakeClock();
  const api = new EventSink();
  const rec = new ApiEventRecorder({
    api,
    clock,
    instance: 'warden-controller-abc',
    logger: pino({ level: 'silent' }),
    burst: opts.burst ?? 25,
    ratePerSecond: 1,
  });
  return { clock, api, rec };
}

describe('ApiEventRecorder', () => {
  it('creates an events.k8s.io/v1 Event regarding the object', async () => {
    const { api, rec } = recorder();
    rec.record(agent, notFound);
    await rec.flush();
    expect(api.writes).toHaveLength(1);
    const w = api.writes[0];
    expect(w?.method).toBe('POST');
    expect(w?.path).toBe('/apis/events.k8s.io/v1/namespaces/team-a/events');
    expect(w?.body).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: 'team-a' },
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: 'warden-controller-abc',
      type: 'Warning',
      reason: 'ServiceAccountNotFound',
      action: 'Reconcile',
      note: 'ServiceAccount team-a/bot-sa not found',
      regarding: {
        apiVersion: 'warden.dev/v1alpha1',
        kind: 'AgentIdentity',
        name: 'bot',
        namespace: 'team-a',
        uid: 'uid-1',
      },
    });
    expect((w?.body as { eventTime?: string } | undefined)?.eventTime).toMatch(/\.\d{6}Z$/);
    expect((w?.body as { metadata?: { name?: string } } | undefined)?.metadata?.name).toMatch(/^bot\./);
  });

  it('aggregates repeats into one Event with a growing series count', async () => {
    const { api, rec, clock } = recorder();
    rec.record(agent, notFound);
    for (let i = 0; i < 10; i++) {
      await clock.advance(1_000);
      rec.record(agent, notFound);
    }
    await rec.flush();
    expect(api.writes).toHaveLength(1);
    await clock.advance(30_000);
    rec.record(agent, notFound);
    await rec.flush();
    expect(api.writes).toHaveLength(2);
    const patch = api.writes[1];
    expect(patch?.method).toBe('PATCH');
    expect(patch?.contentType).toBe('application/merge-patch+json');
    expect(patch?.body).toMatchObject({ series: { count: 12 } });
    expect(rec.stats).toMatchObject({ created: 1, seriesUpdates: 1, aggregated: 10 });
  });

  it('starts a new Event when the old one is gone (404 on the series update)', async () => {
    const { api, rec, clock } = recorder();
    rec.record(agent, notFound);
    await rec.flush();
    api.patchNotFound = true;
    await clock.advance(60_000);
    rec.record(agent, notFound);
    await rec.flush();
    expect(api.writes.map((w) => w.method)).toEqual(['POST', 'POST']);
  });

  it('drops events beyond the rate limit instead of flooding the API server', async () => {
    const { api, rec, clock } = recorder({ burst: 5 });
    for (let i = 0; i < 100; i++) {
      rec.record({ ...agent, metadata: { ...agent.metadata, name: `bot-${i}`, uid: `u-${i}` } }, notFound);
    }
    await rec.flush();
    expect(api.writes).toHaveLength(5);
    expect(rec.stats.dropped).toBe(95);
    await clock.advance(3_000);
    rec.record({ ...agent, metadata: { ...agent.metadata, name: 'late', uid: 'late' } }, notFound);
    await rec.flush();
    expect(api.writes).toHaveLength(6);
  });

  it('never throws when the API server fails, and counts the failure', async () => {
    const { api, rec } = recorder();
    api.failAll = true;
    expect(() => rec.record(agent, notFound)).not.toThrow();
    await rec.flush();
    expect(rec.stats.failed).toBe(1);
  });

  it('truncates long notes to 1 kB', async () => {
    const { api, rec } = recorder();
    rec.record(agent, { ...notFound, note: 'x'.repeat(5_000) });
    await rec.flush();
    expect((api.writes[0]?.body as { note?: string } | undefined)?.note).toHaveLength(1024);
  });

  it('keeps Event names within 253 characters for long object names', async () => {
    const { api, rec } = recorder();
    rec.record({ ...agent, metadata: { ...agent.metadata, name: 'a'.repeat(253) } }, notFound);
    await rec.flush();
    const name = (api.writes[0]?.body as { metadata?: { name?: string } } | undefined)?.metadata?.name ?? '';
    expect(name.length).toBeLessThanOrEqual(253);
  });

  it('ignores objects without a namespace or name', async () => {
    const { api, rec } = recorder();
    rec.record({ kind: 'Namespace', metadata: { name: 'x' } }, notFound);
    await rec.flush();
    expect(api.writes).toHaveLength(0);
  });
});
