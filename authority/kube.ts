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
  /**
   * The pod, or null when it does not exist. `uid` is the UID the caller's token is bound to: a
   * cache may answer only for that exact pod (WatchedPods), anything else is read live.
   */
  getPod(namespace: string, name: string, uid?: string): Promise<PodLike | null>;
  /** The pod read from the API server, never from a cache (absent: getPod already reads live). */
  getLivePod?(namespace: string, name: string): Promise<PodLike | null>;
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
 * Whether a pod from the watch may answer for a token bound to `uid` without a live read: the
 * watch is connected, holds the pod, with that exact UID, and the pod is not terminating. Anything
 * else — a miss (just created, or not labelled), another UID (the name was reused: the cache may
 * hold the old pod or the new one), a deletionTimestamp (the pod is going away: from here on every
 * exchange checks the live pod, so its final removal is seen at once), or a watch that is
 * reconnecting (the cache may be behind by the backoff, not milliseconds) — is read live.
 * docs/adr/0006-authority-tokens.md, "Pod lookup".
 */
export function watchedPodAnswers(
  pod: PodLike | undefined,
  uid: string | undefined,
  watching: boolean,
): pod is PodLike {
  return (
    watching &&
    pod !== undefined &&
    uid !== undefined &&
    uid !== '' &&
    pod.metadata?.uid === uid &&
    pod.metadata.deletionTimestamp === undefined
  );
}

/**
 * Pods from a watch of agent pods (label `warden.dev/agent`, set by the webhook), with a live GET
 * whenever the watched copy may not answer (watchedPodAnswers). The default pod lookup: the API
 * server's own bound-token validation reads pods from an informer the same way. What remains is
 * a pod force-deleted (grace period 0) within the watch latency (milliseconds): still found, as
 * its containers may also still be running; the security argument is in docs/adr/0006.
 */
export class WatchedPods implements PodGetter {
  private readonly informer: Informer<PodLike & KubeObject>;
  private watching = false;
  /** Exchanges answered from the watch / by a live read (tests and benchmarks read these). */
  cacheAnswers = 0;
  liveReads = 0;

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
      // Only a connected watch keeps the cache within milliseconds of the API server; between a
      // failure and the next successful watch, reads go live.
      onLifecycle: (e) => {
        if (e.type === 'watching') this.watching = true;
        else if (e.type === 'error' || e.type === 'gone') this.watching = false;
      },
    });
  }

  async start(): Promise<void> {
    this.informer.start();
    await this.informer.waitForSync();
  }

  async stop(): Promise<void> {
    this.watching = false;
    await this.informer.stop();
  }

  async getPod(namespace: string, name: string, uid?: string): Promise<PodLike | null> {
    const cached = this.informer.get(name, namespace);
    if (watchedPodAnswers(cached, uid, this.watching)) {
      this.cacheAnswers++;
      return cached;
    }
    this.liveReads++;
    return this.live.getPod(namespace, name, uid);
  }

  getLivePod(namespace: string, name: string): Promise<PodLike | null> {
    this.liveReads++;
    return this.live.getPod(namespace, name);
  }

  /** Whether the watch currently holds the pod (tests wait on this instead of sleeping). */
  has(namespace: string, name: string): boolean {
    return this.informer.get(name, namespace) !== undefined;
  }

  /** The watched copy of the pod, if any (tests wait on its state instead of sleeping). */
  peek(namespace: string, name: string): PodLike | undefined {
    return this.informer.get(name, namespace);
  }
}
