/**
 * The Manager against the real control plane: the authority's policy store, the webhook's lookup
 * and the reconcilers read one cache (one watch per resource), and leader-only runnables run on
 * exactly one of two replicas, moving to the other when the leader stops.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SIGNING_KEYS_SECRET } from '../authority/constants.js';
import { createAuthority } from '../authority/index.js';
import type { AgentIdentity } from '../core/api/index.js';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { type Runnable, runnableValue } from '../lifecycle/runnables.js';
import { addOperator } from '../operator/main.js';
import {
  condition,
  corePath,
  create,
  eventually,
  get,
  testLogger,
  wardenPath,
} from '../operator/testing/int.js';
import { apiLookup, cachedLookup } from '../webhook/lookup.js';
import { type KubeApi, KubeConfigApi, type RequestOptions, type WatchLike } from './kube.js';
import { Manager } from './manager.js';
import { AGENT_IDENTITIES } from './resources.js';

const real = new KubeConfigApi(kubeConfig());
const managers: Manager[] = [];

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
});

/** The real API client, counting the watches opened per path (the number under test) and the requests. */
class CountingApi implements KubeApi {
  readonly watches = new Map<string, number>();
  readonly requests: string[] = [];
  readonly watcher: WatchLike = {
    watch: (path, params, cb, done) => {
      this.watches.set(path, (this.watches.get(path) ?? 0) + 1);
      return real.watcher.watch(path, params, cb, done);
    },
  };
  request<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    this.requests.push(`${method} ${path}`);
    return real.request<T>(method, path, opts);
  }
}

function marker(name: string, running: Set<string>): Runnable {
  return {
    name,
    start: () => {
      running.add(name);
    },
    stop: () => {
      running.delete(name);
    },
  };
}

describe('Manager', () => {
  it('one cache: the reconcilers, the authority and the webhook lookup read the same informers, one watch each', async () => {
    const ns = await freshNamespace('mgr-cache');
    const api = new CountingApi();
    const mgr = new Manager({
      api,
      logger: testLogger,
      identity: 'mgr-0',
      namespace: ns,
      leaderElection: false,
    });
    managers.push(mgr);
    const agents = mgr.cache.informer<AgentIdentity>(AGENT_IDENTITIES);
    const lookup = cachedLookup(agents, apiLookup(api));
    const authority = runnableValue(
      'authority',
      () =>
        // No kubeConfig: the authority cannot make an API client of its own, only use the Manager's.
        createAuthority({
          kube: { api, cache: mgr.cache },
          namespace: ns,
          issuer: 'http://127.0.0.1:1',
          trustedBrokerImages: ['ghcr.io/warden/broker:test'],
          log: testLogger,
          watchNamespace: ns,
        }),
      (a) => a.close(),
    );
    mgr.add(authority);
    addOperator(mgr);
    await mgr.start();

    await create(api, corePath(ns, 'serviceaccounts'), { metadata: { name: 'sa' } });
    await create(api, wardenPath(ns, 'agentidentities'), {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: { name: 'bot' },
      spec: { serviceAccountName: 'sa' },
    });
    await eventually('the reconciler marks it Ready', async () => {
      return condition(await get(api, wardenPath(ns, 'agentidentities', 'bot')), 'Ready')?.status === 'True';
    });
    await eventually('the authority sees it', async () => authority.get().store.identity(ns, 'bot') !== null);
    const requestsBefore = api.watches.size;
    expect(await lookup(ns, 'bot')).toMatchObject({ metadata: { name: 'bot' } });
    expect(agents.get('bot', ns)).toBeDefined();

    // AgentIdentity, AccessPolicy, CredentialProvider, ServiceAccount: one informer each, one watch each.
    expect(mgr.cache.size()).toBe(4);
    const watched = [...api.watches.entries()];
    // And the authority's pod lookup (ADR 0006, the default podLookup: watch): one watch of the pods
    // labelled as agents, outside the shared cache (no other part reads pods).
    expect(watched.map(([p]) => p.split('/').at(-1)).sort()).toEqual([
      'accesspolicies',
      'agentidentities',
      'credentialproviders',
      'pods',
      'serviceaccounts',
    ]);
    for (const [path, n] of watched) expect(n, `watches of ${path}`).toBe(1);
    expect(api.watches.size).toBe(requestsBefore);
    // The authority's own reads went through the Manager's client: its signing-key Secret.
    expect(api.requests).toContain(`GET /api/v1/namespaces/${ns}/secrets/${SIGNING_KEYS_SECRET}`);
  });

  it('runs leader-only runnables on one replica only, and on the other once the leader stops', async () => {
    const ns = await freshNamespace('mgr-leader');
    const running = new Map<string, Set<string>>();
    const replica = (identity: string): Manager => {
      const set = new Set<string>();
      running.set(identity, set);
      const mgr = new Manager({
        api: real,
        logger: testLogger,
        identity,
        namespace: ns,
        leaderElection: { namespace: ns },
      });
      mgr.add(marker('serve', set)).add(marker('reconcile', set), { leaderOnly: true });
      managers.push(mgr);
      return mgr;
    };
    const a = replica('replica-a');
    await a.start();
    await eventually('replica-a leads', async () => a.isLeader());
    const b = replica('replica-b');
    await b.start();
    await eventually('replica-b sees the Lease held', async () => {
      const l = await get(
        real,
        `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/warden-controller-leader`,
      );
      return (l as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity === 'replica-a';
    });
    expect(a.ready() && b.ready()).toBe(true);
    expect([...(running.get('replica-a') ?? [])].sort()).toEqual(['reconcile', 'serve']);
    expect([...(running.get('replica-b') ?? [])]).toEqual(['serve']);

    await a.stop();
    expect([...(running.get('replica-a') ?? [])]).toEqual([]);
    await eventually('replica-b leads', async () => b.isLeader(), 30_000, 20);
    await b.settled();
    expect([...(running.get('replica-b') ?? [])].sort()).toEqual(['reconcile', 'serve']);
  });
});
