/** Kubernetes reads the authority needs, behind small interfaces so handlers stay testable. */
import { Agent, type RequestOptions, request } from 'node:https';
import type { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, LABEL_AGENT, PLURAL, VERSION } from '../core/constants.js';
import type { PodLike } from '../core/identity/agent.js';
import { type Informer, resourceInformer } from '../kube/informer.js';
import type { KubeApi, KubeObject } from '../kube/kube.js';
import type { AgentIdentityLike } from './attest.js';
import { apiStatus } from './keystore.js';

export interface PodGetter {
  /** The pod, or null when it does not exist. */
  getPod(namespace: string, name: string): Promise<PodLike | null>;
}

export interface AgentIdentityGetter {
  /** The AgentIdentity, or null when it does not exist. */
  getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null>;
}

/** Live GETs: every attestation sees the pod as the API server has it now. */
export class LiveKube implements PodGetter, AgentIdentityGetter {
  constructor(
    private readonly core: CoreV1Api,
    private readonly custom: CustomObjectsApi,
  ) {}

  async getPod(namespace: string, name: string): Promise<PodLike | null> {
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (apiStatus(err) === 404) return null;
      throw err;
    }
  }

  async getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL.AgentIdentity,
        name,
      })) as AgentIdentityLike;
    } catch (err) {
      if (apiStatus(err) === 404) return null;
      throw err;
    }
  }
}

/**
 * The hot-path reads (a Pod GET on every exchange) as raw JSON over a dedicated keep-alive agent.
 * client-node's generated clients open a connection and run its object serializer per call:
 * measured ~20x slower (bench/authority.bench.ts) — the difference between 100 and 2,000
 * exchanges/s. AgentIdentities come from the watch-fed store first (`cached`), a live GET only on
 * a miss (just created, watch not caught up yet).
 */
export class FastKube implements PodGetter, AgentIdentityGetter {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });

  constructor(
    private readonly kc: KubeConfig,
    private readonly cached?: (namespace: string, name: string) => AgentIdentityLike | null,
  ) {}

  getPod(namespace: string, name: string): Promise<PodLike | null> {
    // A quorum read (no resourceVersion): a pod deleted a moment ago is gone. Reading from the
    // API server's watch cache (resourceVersion=0) measured no faster here, so it is not offered.
    return this.getJson<PodLike>(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
    );
  }

  async getAgentIdentity(namespace: string, name: string): Promise<AgentIdentityLike | null> {
    const hit = this.cached?.(namespace, name);
    if (hit) return hit;
    return this.getJson<AgentIdentityLike>(
      `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL.AgentIdentity}/${encodeURIComponent(name)}`,
    );
  }

  close(): void {
    this.agent.destroy();
  }

  /** GET → parsed JSON, null on 404, an Error naming the path otherwise. */
  private async getJson<T>(path: string): Promise<T | null> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const opts: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    return new Promise<T | null>((resolve, reject) => {
      const req = request(
        new URL(cluster.server + path),
        { ...opts, agent: this.agent, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            if (res.statusCode === 404) return resolve(null);
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200)
              return reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            try {
              resolve(JSON.parse(text) as T);
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
      req.on('error', reject);
      req.end();
    });
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
    this.informer = resourceInformer<PodLike & KubeObject>(
      api,
      { group: '', version: 'v1', plural: 'pods' },
      namespace,
      {
        logger: log,
        labelSelector: LABEL_AGENT,
        resyncPeriodMs: 0,
      },
    );
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
