/** Kubernetes reads the authority needs, behind small interfaces so handlers stay testable. */
import type { Logger } from 'pino';
import { LABEL_AGENT } from '../core/constants.js';
import type { PodLike } from '../core/identity/agent.js';
import { type Informer, resourceInformer } from '../kube/informer.js';
import { type KubeApi, type KubeObject, resourcePath } from '../kube/kube.js';
import { AGENT_IDENTITIES } from '../kube/resources.js';
import type { AgentIdentityLike } from './attest.js';
import { apiStatus } from './keystore.js';

const PODS = { group: '', version: 'v1', plural: 'pods' };

export interface PodGetter {
  /** The pod, or null when it does not exist. */
  getPod(namespace: string, name: string): Promise<PodLike | null>;
}

export interface AgentIdentityGetter {
  /** The AgentIdentity, or null when it does not exist. */
  getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null>;
}

/**
 * The hot-path reads (a Pod GET on every exchange) as raw JSON over the process's API client
 * (kube/kube.ts KubeConfigApi: one keep-alive agent per process). client-node's generated clients
 * open a connection and run their object serializer per call: measured ~20x slower
 * (bench/authority.bench.ts) — the difference between 100 and 2,000 exchanges/s. AgentIdentities
 * come from the watch-fed store first (`cached`), a live GET only on a miss (just created, watch
 * not caught up yet).
 */
export class ApiKube implements PodGetter, AgentIdentityGetter {
  constructor(
    private readonly api: KubeApi,
    private readonly cached?: (namespace: string, name: string) => AgentIdentityLike | null,
  ) {}

  getPod(namespace: string, name: string): Promise<PodLike | null> {
    // A quorum read (no resourceVersion): a pod deleted a moment ago is gone. Reading from the
    // API server's watch cache (resourceVersion=0) measured no faster here, so it is not offered.
    return this.getJson<PodLike>(resourcePath(PODS, namespace, name));
  }

  async getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null> {
    const hit = this.cached?.(namespace, name);
    if (hit) return hit;
    return this.getJson<AgentIdentityLike>(resourcePath(AGENT_IDENTITIES, namespace, name));
  }

  /** GET → parsed JSON, null on 404, the API error (naming the path) otherwise. */
  private async getJson<T>(path: string): Promise<T | null> {
    try {
      return await this.api.request<T>('GET', path, { timeoutMs: 10_000 });
    } catch (err) {
      if (apiStatus(err) === 404) return null;
      throw err;
    }
  }
}

/**
 * Pods from a watch of agent pods (label `warden.dev/agent`, set by the webhook), falling back to
 * a live GET on a miss (a pod created a moment ago, or one without the label). The API server's
 * own bound-token validation reads pods from an informer the same way; the price is that a pod
 * deleted within the watch latency (milliseconds) may still be found. `podLookup: 'live'` in
 * createAuthority() avoids even that window at one GET per exchange.
 */
export class WatchedPods implements PodGetter {
  private readonly informer: Informer<PodLike & KubeObject>;

  constructor(
    api: KubeApi,
    private readonly live: PodGetter,
    log: Logger,
    namespace?: string,
  ) {
    this.informer = resourceInformer<PodLike & KubeObject>(api, PODS, namespace, {
      logger: log,
      labelSelector: LABEL_AGENT,
      resyncPeriodMs: 0,
    });
  }

  async start(): Promise<void> {
    this.informer.start();
    await this.informer.waitForSync();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  async getPod(namespace: string, name: string): Promise<PodLike | null> {
    return this.informer.get(name, namespace) ?? this.live.getPod(namespace, name);
  }

  /** Whether the watch currently holds the pod (tests wait on this instead of sleeping). */
  has(namespace: string, name: string): boolean {
    return this.informer.get(name, namespace) !== undefined;
  }
}
