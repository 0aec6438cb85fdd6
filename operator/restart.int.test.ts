/**
 * Fault tests on a PRIVATE control plane (restarting the shared one would break
 * the other test files): the informer and the whole operator keep running while
 * the API server goes away and comes back, and converge afterwards.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, installCrds, startControlPlane } from '../e2e/harness/index.js';
import type { InformerLifecycleEvent } from '../kube/informer.js';
import { resourceInformer } from '../kube/informer.js';
import { KubeConfigApi, type KubeObject } from '../kube/kube.js';
import { type RunningOperator, runOperator } from './main.js';
import { condition, corePath, create, eventually, get, testLogger, wardenPath } from './testing/int.js';

let cp: ControlPlane;
let kc: KubeConfig;
let api: KubeConfigApi;

beforeAll(async () => {
  cp = await startControlPlane();
  await installCrds(cp.kubeconfigPath);
  kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  api = new KubeConfigApi(kc);
}, 180_000);

afterAll(async () => {
  await cp?.stop();
});

async function namespace(name: string): Promise<string> {
  await create(api, '/api/v1/namespaces', { metadata: { name } });
  return name;
}

describe('API server restarts', () => {
  it('the informer survives the API server going away and sees changes made after it returns', async () => {
    const ns = await namespace('restart-informer');
    const lifecycle: InformerLifecycleEvent[] = [];
    const seen: string[] = [];
    const inf = resourceInformer<KubeObject>(
      api,
      { group: '', version: 'v1', plural: 'serviceaccounts' },
      ns,
      {
        logger: testLogger,
        resyncPeriodMs: 0,
        onLifecycle: (e) => lifecycle.push(e),
      },
    );
    inf.on({ add: (o) => seen.push(o.metadata?.name ?? '') });
    inf.start();
    try {
      await inf.waitForSync();
      await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'before' } });
      await eventually('before seen', async () => seen.includes('before'));

      await cp.stopApiServer();
      await eventually('a watch error', async () => lifecycle.some((e) => e.type === 'error'), 20_000);
      await delay(3_000); // a few failed reconnects while it is down
      await cp.startApiServer();

      await eventually(
        'a write after the restart',
        async () => create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'after' } }),
        30_000,
        500,
      );
      await eventually('after seen', async () => seen.includes('after'), 30_000);
      expect(seen.filter((n) => n === 'before')).toHaveLength(1);
      expect(
        inf
          .list(ns)
          .map((o) => o.metadata?.name)
          .sort(),
      ).toEqual(['after', 'before']);
    } finally {
      await inf.stop();
    }
  }, 90_000);

  it('the operator recovers from an API server outage longer than its renew deadline and converges', async () => {
    const ns = await namespace('restart-operator');
    const leadership: boolean[] = [];
    let op: RunningOperator | undefined = runOperator({
      kubeConfig: kc,
      namespace: ns,
      leaseNamespace: ns,
      identity: 'restart-replica',
      logger: testLogger,
      onLeadershipChange: (l) => leadership.push(l),
    });
    try {
      await eventually('leading', async () => op?.isLeader());
      await create(api, wardenPath(ns, 'agentidentities'), {
        apiVersion: 'warden.dev/v1alpha1',
        kind: 'AgentIdentity',
        metadata: { name: 'bot' },
        spec: { serviceAccountName: 'bot-sa' },
      });
      await eventually('ServiceAccountNotFound', async () => {
        const a = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
        return condition(a, 'Ready')?.reason === 'ServiceAccountNotFound';
      });

      // Down for longer than the renew deadline (8 s): the operator steps down, then must come back.
      await cp.stopApiServer();
      await eventually('stepped down', async () => leadership.includes(false), 30_000);
      await cp.startApiServer();

      await eventually(
        'the ServiceAccount created after the restart',
        async () => create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'bot-sa' } }),
        30_000,
        500,
      );
      await eventually('leading again', async () => op?.isLeader(), 30_000);
      const agent = await eventually(
        'Ready after recovery',
        async () => {
          const a = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
          return condition(a, 'Ready')?.status === 'True' && a;
        },
        30_000,
      );
      expect(agent.status?.observedGeneration).toBe(1);
      // The callback fires once every controller has started (all caches synced again).
      await eventually('leadership callbacks', async () => leadership.length === 3, 60_000);
      expect(leadership).toEqual([true, false, true]);
    } finally {
      await op?.stop(5_000);
      op = undefined;
    }
  }, 120_000);
});
