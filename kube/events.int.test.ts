/**
 * The event recorder against the real API server: the Event it creates and the
 * series update it sends are accepted by events.k8s.io/v1 validation.
 */
import { describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { corePath, create, eventsFor, eventually, testLogger } from '../operator/testing/int.js';
import { ApiEventRecorder } from './events.js';
import { KubeConfigApi } from './kube.js';
import { FakeClock } from './testing/fake-clock.js';

const api = new KubeConfigApi(kubeConfig());

describe('ApiEventRecorder (real API server)', () => {
  it('creates an Event and folds repeats into its series count', async () => {
    const ns = await freshNamespace('op-events');
    const sa = await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'subject' } });
    const regarding = { ...sa, apiVersion: 'v1', kind: 'ServiceAccount' };
    // Real API server, but time under test control so the series interval passes instantly.
    const clock = new FakeClock(Date.now());
    const rec = new ApiEventRecorder({ api, clock, instance: 'test-instance', logger: testLogger });
    const e = {
      type: 'Warning' as const,
      reason: 'TestReason',
      action: 'Reconcile',
      note: 'something happened',
    };

    rec.record(regarding, e);
    await rec.flush();
    for (let i = 0; i < 3; i++) {
      await clock.advance(10_000);
      rec.record(regarding, e);
    }
    await rec.flush();
    expect(rec.stats).toMatchObject({ created: 1, seriesUpdates: 1, failed: 0 });

    const [event, ...others] = await eventually('the Event', async () => {
      const list = await eventsFor(api, ns, 'subject');
      return list.length > 0 && list;
    });
    expect(others).toEqual([]);
    expect(event).toMatchObject({
      type: 'Warning',
      reason: 'TestReason',
      note: 'something happened',
      regarding: { kind: 'ServiceAccount', name: 'subject' },
      series: { count: 4 },
    });
  });
});
