/**
 * The informer against the real API server (shared control plane, own namespace).
 * API server restarts are covered in operator/restart.int.test.ts on a private
 * control plane.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { corePath, create, del, eventually, testLogger } from '../operator/testing/int.js';
import { type Informer, type InformerLifecycleEvent, resourceInformer } from './informer.js';
import { KubeConfigApi, type KubeObject, resourcePath } from './kube.js';

const api = new KubeConfigApi(kubeConfig());
const SA = { group: '', version: 'v1', plural: 'serviceaccounts' };
const informers: Informer<KubeObject>[] = [];

afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
});

function track(namespace: string, opts: { watchTimeoutSeconds?: number } = {}) {
  const log: string[] = [];
  const lifecycle: InformerLifecycleEvent[] = [];
  const inf = resourceInformer<KubeObject & { metadata: { labels?: Record<string, string> } }>(
    api,
    SA,
    namespace,
    {
      logger: testLogger,
      resyncPeriodMs: 0,
      watchTimeoutSeconds: opts.watchTimeoutSeconds,
      onLifecycle: (e) => lifecycle.push(e),
    },
  );
  inf.on({
    add: (o) => log.push(`add ${o.metadata?.name}`),
    update: (_old, o) => log.push(`update ${o.metadata?.name} ${o.metadata?.labels?.v ?? ''}`.trim()),
    delete: (o) => log.push(`delete ${o.metadata?.name}`),
  });
  informers.push(inf as unknown as Informer<KubeObject>);
  return { inf, log, lifecycle };
}

describe('Informer (real API server)', () => {
  it('lists existing objects, then sees adds, updates and deletes, keeping its cache in step', async () => {
    const ns = await freshNamespace('op-informer');
    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'before' } });
    const { inf, log } = track(ns);
    inf.start();
    await inf.waitForSync();
    expect(log).toEqual(['add before']);

    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'later' } });
    await api.request('PATCH', resourcePath(SA, ns, 'later'), {
      body: { metadata: { labels: { v: '2' } } },
      contentType: 'application/merge-patch+json',
    });
    await del(api, corePath(ns, 'serviceaccounts', 'before'));
    await eventually('all three events', async () => log.length >= 4);
    expect(log).toEqual(['add before', 'add later', 'update later 2', 'delete before']);
    expect(inf.list(ns).map((o) => o.metadata?.name)).toEqual(['later']);
    expect(inf.get('later', ns)?.metadata?.labels?.v).toBe('2');
    expect(inf.get('before', ns)).toBeUndefined();
  });

  it('resumes from its resourceVersion when the server ends the watch, without relisting or missing changes', async () => {
    const ns = await freshNamespace('op-informer-resume');
    // The server closes each watch after 1 s; changes keep coming across the reconnects.
    const { inf, log, lifecycle } = track(ns, { watchTimeoutSeconds: 1 });
    inf.start();
    await inf.waitForSync();
    for (let i = 0; i < 6; i++) {
      await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: `sa-${i}` } });
      await new Promise((r) => setTimeout(r, 500));
    }
    await eventually('every add seen', async () => log.length === 6);
    expect(log).toEqual(Array.from({ length: 6 }, (_, i) => `add sa-${i}`));
    expect(lifecycle.filter((e) => e.type === 'listed')).toHaveLength(1);
    expect(lifecycle.filter((e) => e.type === 'watching').length).toBeGreaterThan(1);
    expect(lifecycle.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('keeps retrying, without throwing, when it may not list (a 404 for a resource that does not exist)', async () => {
    const ns = await freshNamespace('op-informer-404');
    const lifecycle: InformerLifecycleEvent[] = [];
    const inf = resourceInformer<KubeObject>(
      api,
      { group: 'nope.example.com', version: 'v1', plural: 'ghosts' },
      ns,
      {
        logger: testLogger,
        resyncPeriodMs: 0,
        backoff: { baseMs: 50, maxMs: 200 },
        onLifecycle: (e) => lifecycle.push(e),
      },
    );
    informers.push(inf);
    inf.start();
    await eventually(
      'three failed attempts',
      async () => lifecycle.filter((e) => e.type === 'error').length >= 3,
    );
    expect(inf.hasSynced()).toBe(false);
  });
});
