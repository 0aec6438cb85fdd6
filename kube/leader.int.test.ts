/**
 * Leader election between two operator replicas against the real control plane.
 * Takeover times are measured and printed (they go into the report), not asserted
 * beyond "it happened".
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { type RunningOperator, runOperator } from '../operator/main.js';
import {
  condition,
  corePath,
  create,
  eventually,
  get,
  testLogger,
  wardenPath,
} from '../operator/testing/int.js';
import { type KubeApi, KubeConfigApi, type RequestOptions } from './kube.js';

const api = new KubeConfigApi(kubeConfig());
const replicas: RunningOperator[] = [];

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop(5_000)));
});

/** One replica's connection to the API server, which the test can cut (a crash or partition). */
class Link implements KubeApi {
  cut = false;
  readonly watcher = api.watcher;
  request<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    if (this.cut) return Promise.reject(new Error('connect ETIMEDOUT (link cut by test)'));
    return api.request<T>(method, path, opts);
  }
}

function replica(ns: string, identity: string, link?: Link): RunningOperator {
  const r = runOperator({
    kubeConfig: kubeConfig(),
    namespace: ns,
    leaseNamespace: ns,
    identity,
    logger: testLogger,
    api: link,
  });
  replicas.push(r);
  return r;
}

async function lease(
  ns: string,
): Promise<{ holderIdentity?: string; leaseTransitions?: number } | undefined> {
  const l = await get(api, `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/warden-controller-leader`);
  return (l as { spec?: { holderIdentity?: string; leaseTransitions?: number } } | undefined)?.spec;
}

describe('leader election', () => {
  it('exactly one replica leads; when it stops gracefully the other takes over and reconciles', async () => {
    const ns = await freshNamespace('op-leader');
    const a = replica(ns, 'replica-a');
    await eventually('replica-a leads', async () => a.isLeader());
    const b = replica(ns, 'replica-b');
    await eventually('replica-b campaigning', async () => (await lease(ns))?.holderIdentity === 'replica-a');
    expect(b.isLeader()).toBe(false);

    const stoppedAt = Date.now();
    await a.stop();
    await eventually('replica-b leads', async () => b.isLeader(), 30_000, 20);
    const takeoverMs = Date.now() - stoppedAt;
    // The new leader reconciles: an AgentIdentity created now becomes Ready.
    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'sa' } });
    await create(api, wardenPath(ns, 'agentidentities'), {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: { name: 'bot' },
      spec: { serviceAccountName: 'sa' },
    });
    await eventually('reconciled by replica-b', async () => {
      const x = await get(api, wardenPath(ns, 'agentidentities', 'bot'));
      return condition(x, 'Ready')?.status === 'True';
    });
    const l = await lease(ns);
    expect(l?.holderIdentity).toBe('replica-b');
    expect(l?.leaseTransitions).toBe(1);
    console.log(`[measure] leader takeover after graceful stop (lease released): ${takeoverMs} ms`);
  });

  it('when the leader is cut off without releasing, it steps down and the other takes over after the lease expires', async () => {
    const ns = await freshNamespace('op-leader-crash');
    const linkA = new Link();
    const a = replica(ns, 'replica-a', linkA);
    await eventually('replica-a leads', async () => a.isLeader());
    const b = replica(ns, 'replica-b');
    await eventually(
      'replica-b sees the lease',
      async () => (await lease(ns))?.holderIdentity === 'replica-a',
    );

    const cutAt = Date.now();
    linkA.cut = true;
    let stepDownMs: number | undefined;
    await eventually(
      'replica-b leads',
      async () => {
        if (stepDownMs === undefined && !a.isLeader()) stepDownMs = Date.now() - cutAt;
        return b.isLeader();
      },
      45_000,
      20,
    );
    const takeoverMs = Date.now() - cutAt;
    await eventually('replica-a stopped its controllers', async () => !a.isLeader());
    stepDownMs ??= Date.now() - cutAt;
    expect((await lease(ns))?.holderIdentity).toBe('replica-b');
    // Never two leaders: the cut-off replica gave up before the other could take over.
    expect(stepDownMs).toBeLessThanOrEqual(takeoverMs);
    console.log(
      `[measure] leader cut off: old leader stepped down after ${stepDownMs} ms, new leader took over after ${takeoverMs} ms`,
    );
  }, 90_000);
});
