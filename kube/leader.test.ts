import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ApiError, type KubeApi, type RequestOptions } from './kube.js';
import {
  decide,
  LEADER_DEFAULTS,
  LeaderElector,
  type Lease,
  microTime,
  type Observation,
  observe,
  releasedSpec,
  renewDeadlinePassed,
} from './leader.js';
import { FakeClock, flushPromises } from './testing/fake-clock.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const timing = { leaseDurationMs: 15_000 };

function lease(holder: string, renewMs: number, extra: Partial<NonNullable<Lease['spec']>> = {}): Lease {
  return {
    metadata: { name: 'l', namespace: 'ns', resourceVersion: '1' },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      renewTime: microTime(renewMs),
      leaseTransitions: 3,
      ...extra,
    },
  };
}

describe('microTime', () => {
  it('formats with exactly six fractional digits, as Kubernetes MicroTime requires', () => {
    expect(microTime(T0 + 123)).toBe('2026-01-01T00:00:00.123000Z');
  });
});

describe('observe', () => {
  it('records when a holder+renewTime was first seen and keeps that time while it does not change', () => {
    const l = lease('b', T0);
    const first = observe(undefined, l, T0 + 1_000);
    expect(first).toEqual({ holder: 'b', renewTime: microTime(T0), observedAt: T0 + 1_000 });
    expect(observe(first, l, T0 + 9_000)).toBe(first);
  });
  it('restarts the local clock when the holder renews', () => {
    const first = observe(undefined, lease('b', T0), T0) as Observation;
    expect(observe(first, lease('b', T0 + 2_000), T0 + 2_500)?.observedAt).toBe(T0 + 2_500);
  });
  it('has nothing to observe without a Lease', () => {
    expect(observe(undefined, undefined, T0)).toBeUndefined();
  });
});

describe('decide', () => {
  const base = { now: T0, identity: 'a', isLeader: false, timing, observation: undefined };

  it('creates the Lease when there is none', () => {
    const d = decide({ ...base, lease: undefined });
    expect(d).toMatchObject({
      kind: 'acquire',
      create: true,
      spec: { holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 },
    });
  });

  it('takes a Lease that exists without a spec', () => {
    expect(decide({ ...base, lease: { metadata: { name: 'l' } } })).toMatchObject({
      kind: 'acquire',
      create: false,
    });
  });

  it('renews its own Lease, keeping acquireTime and moving renewTime to now', () => {
    const l = lease('a', T0 - 2_000, { acquireTime: microTime(T0 - 60_000) });
    const d = decide({ ...base, lease: l, isLeader: true });
    expect(d).toEqual({
      kind: 'renew',
      spec: { ...l.spec, renewTime: microTime(T0), acquireTime: microTime(T0 - 60_000) },
    });
  });

  it('renews its own Lease after a restart with the same identity', () => {
    expect(decide({ ...base, lease: lease('a', T0 - 2_000) }).kind).toBe('renew');
  });

  it('takes over a released Lease at once and counts the transition', () => {
    const d = decide({ ...base, lease: lease('', T0) });
    expect(d).toMatchObject({
      kind: 'acquire',
      create: false,
      spec: { holderIdentity: 'a', leaseTransitions: 4 },
    });
  });

  it('waits while another holder is within its lease duration, measured from our own observation', () => {
    const observation = { holder: 'b', renewTime: microTime(T0), observedAt: T0 };
    const d = decide({ ...base, lease: lease('b', T0), observation, now: T0 + 14_999 });
    expect(d).toEqual({ kind: 'wait', holder: 'b', expiresAt: T0 + 15_000 });
  });

  it('takes over once the holder has not renewed for a whole lease duration', () => {
    const observation = { holder: 'b', renewTime: microTime(T0), observedAt: T0 };
    const d = decide({ ...base, lease: lease('b', T0), observation, now: T0 + 15_000 });
    expect(d).toMatchObject({ kind: 'acquire', spec: { holderIdentity: 'a', leaseTransitions: 4 } });
  });

  it('ignores the renewTime written by another machine (clock skew): a stale-looking renewTime seen just now is not expired', () => {
    const l = lease('b', T0 - 3_600_000);
    const observation = observe(undefined, l, T0);
    expect(decide({ ...base, lease: l, observation, now: T0 + 1_000 }).kind).toBe('wait');
  });

  it('reports leadership lost when it believed it led but another replica holds the Lease', () => {
    const observation = { holder: 'b', renewTime: microTime(T0), observedAt: T0 };
    expect(decide({ ...base, lease: lease('b', T0), observation, isLeader: true })).toEqual({
      kind: 'lost',
      holder: 'b',
    });
  });

  it('uses the holder’s own leaseDurationSeconds to judge expiry', () => {
    const l = lease('b', T0, { leaseDurationSeconds: 60 });
    const observation = observe(undefined, l, T0);
    expect(decide({ ...base, lease: l, observation, now: T0 + 30_000 }).kind).toBe('wait');
    expect(decide({ ...base, lease: l, observation, now: T0 + 60_000 }).kind).toBe('acquire');
  });
});

describe('renewDeadlinePassed / releasedSpec', () => {
  it('steps down once renewals have failed for the whole renew deadline', () => {
    expect(renewDeadlinePassed(T0, T0 + 9_999, 10_000)).toBe(false);
    expect(renewDeadlinePassed(T0, T0 + 10_000, 10_000)).toBe(true);
  });
  it('a released Lease has no holder and a one-second duration', () => {
    expect(releasedSpec({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 2 }, T0)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      leaseTransitions: 2,
      renewTime: microTime(T0),
    });
  });
});

/**
 * An in-memory Lease store with the API server's optimistic concurrency (a write
 * with a stale resourceVersion gets 409), so two electors can race for real.
 */
class LeaseStore implements KubeApi {
  lease: Lease | undefined;
  private rv = 0;
  failing = false;
  readonly watcher = {
    watch: () => Promise.reject(new Error('not used')),
  };

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    if (this.failing) throw new Error('connect ECONNREFUSED');
    const body = opts.body as Lease | undefined;
    if (method === 'GET') {
      if (!this.lease) throw new ApiError(404, { reason: 'NotFound' }, method, path);
      return structuredClone(this.lease) as T;
    }
    if (method === 'POST') {
      if (this.lease) throw new ApiError(409, { reason: 'AlreadyExists' }, method, path);
    } else if (method === 'PUT') {
      if (body?.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) {
        throw new ApiError(409, { reason: 'Conflict' }, method, path);
      }
    }
    this.rv++;
    this.lease = {
      ...structuredClone(body),
      metadata: { ...body?.metadata, resourceVersion: String(this.rv) },
    };
    return structuredClone(this.lease) as T;
  }
}

/** One replica's connection to the store, which a test can cut (a network partition). */
class Link implements KubeApi {
  cut = false;
  readonly watcher: KubeApi['watcher'];
  constructor(private readonly store: KubeApi) {
    this.watcher = store.watcher;
  }
  request<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    if (this.cut) return Promise.reject(new Error('connect ETIMEDOUT'));
    return this.store.request<T>(method, path, opts);
  }
}

function elector(store: KubeApi, clock: FakeClock, identity: string, log: string[]) {
  return new LeaderElector({
    // Explicit undefined must mean "default" (runOperator passes its options through).
    leaseDurationMs: undefined,
    renewPeriodMs: undefined,
    api: store,
    namespace: 'ns',
    name: 'warden',
    identity,
    clock,
    logger: pino({ level: 'silent' }),
    onStartedLeading: () => {
      log.push(`${identity} leads`);
    },
    onStoppedLeading: () => {
      log.push(`${identity} stops`);
    },
  });
}

describe('LeaderElector against an in-memory Lease store', () => {
  it('one of two replicas leads; after a graceful stop the other takes over on its next retry', async () => {
    const clock = new FakeClock(T0);
    const store = new LeaseStore();
    const log: string[] = [];
    const a = elector(store, clock, 'a', log);
    const b = elector(store, clock, 'b', log);
    a.start();
    await flushPromises();
    b.start();
    await clock.advance(6_000);
    expect(log).toEqual(['a leads']);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);

    await a.stop();
    expect(log).toEqual(['a leads', 'a stops']);
    expect(store.lease?.spec?.holderIdentity).toBe('');
    await clock.advance(2_000);
    expect(log).toEqual(['a leads', 'a stops', 'b leads']);
    expect(store.lease?.spec?.leaseTransitions).toBe(1);
    await b.stop();
  });

  it('when the leader vanishes without releasing, the other takes over one lease duration after the last renewal', async () => {
    const clock = new FakeClock(T0);
    const store = new LeaseStore();
    const log: string[] = [];
    const aLink = new Link(store);
    const a = elector(aLink, clock, 'a', log);
    a.start();
    await flushPromises();
    const b = elector(store, clock, 'b', log);
    b.start();
    await clock.advance(4_000);
    // Cut a off from the API server: it can neither renew nor release.
    aLink.cut = true;
    const lastRenewal = clock.now();
    let tookOverAt: number | undefined;
    for (let i = 0; i < 20 && tookOverAt === undefined; i++) {
      await clock.advance(1_000);
      if (b.isLeader()) tookOverAt = clock.now();
    }
    expect(tookOverAt).toBeDefined();
    // b judges expiry from when it first saw the last renewal (up to one retry period late).
    expect((tookOverAt ?? 0) - lastRenewal).toBeGreaterThanOrEqual(LEADER_DEFAULTS.leaseDurationMs);
    expect((tookOverAt ?? 0) - lastRenewal).toBeLessThanOrEqual(
      LEADER_DEFAULTS.leaseDurationMs + LEADER_DEFAULTS.retryPeriodMs,
    );
    // a stepped down on its own before b took over: no two leaders at once.
    expect(log).toEqual(['a leads', 'a stops', 'b leads']);
    await a.stop();
    await b.stop();
  });

  it('a leader that cannot reach the API server steps down within the renew deadline', async () => {
    const clock = new FakeClock(T0);
    const store = new LeaseStore();
    const log: string[] = [];
    const a = elector(store, clock, 'a', log);
    a.start();
    await flushPromises();
    expect(a.isLeader()).toBe(true);
    store.failing = true;
    await clock.advance(LEADER_DEFAULTS.renewDeadlineMs - LEADER_DEFAULTS.renewPeriodMs);
    expect(a.isLeader()).toBe(true);
    await clock.advance(LEADER_DEFAULTS.renewPeriodMs);
    expect(a.isLeader()).toBe(false);
    expect(log).toEqual(['a leads', 'a stops']);
    store.failing = false;
    await clock.advance(2_000);
    expect(a.isLeader()).toBe(true);
    await a.stop();
  });

  it('a leader whose Lease was taken by another replica stops its controllers', async () => {
    const clock = new FakeClock(T0);
    const store = new LeaseStore();
    const log: string[] = [];
    const a = elector(store, clock, 'a', log);
    a.start();
    await flushPromises();
    // An operator (or a split brain) hands the Lease to "z".
    store.lease = {
      ...store.lease,
      spec: { ...store.lease?.spec, holderIdentity: 'z', renewTime: microTime(clock.now()) },
    };
    await clock.advance(2_000);
    expect(a.isLeader()).toBe(false);
    expect(log).toEqual(['a leads', 'a stops']);
    await a.stop();
  });
});
