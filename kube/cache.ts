/**
 * One cache of the API objects a process reads: one informer per resource (and namespace), shared
 * by every reader — the webhook's AgentIdentity lookup, the reconcilers, the authority's policy
 * store. Two informers of the same objects in one process would cost two watches and, worse, let
 * two readers see different versions during watch lag (#16).
 *
 * Informers are created on first ask. The cache starts every informer it holds when started and
 * starts a later one at once, so a reader registered after start still gets a live informer (its
 * handlers get the cached objects as adds: kube/informer.ts).
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { type Informer, type InformerLifecycleEvent, resourceInformer } from './informer.js';
import { type KubeApi, type KubeObject, type ResourceRef, resourcePath } from './kube.js';

export interface SharedCacheOptions {
  api: KubeApi;
  logger: Logger;
  /** Watch only this namespace (default: all namespaces). */
  namespace?: string | undefined;
  clock?: Clock | undefined;
  /** Informer resync period (default: the informer's, 10 min). */
  resyncPeriodMs?: number | undefined;
  /** Every informer's (re)list and watch (re)connect, named by the resource's plural. */
  onLifecycle?: ((informer: string, event: InformerLifecycleEvent) => void) | undefined;
}

export class SharedCache {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private started = false;

  constructor(private readonly opts: SharedCacheOptions) {}

  /** The namespace informers watch by default (undefined: all). */
  get namespace(): string | undefined {
    return this.opts.namespace;
  }

  /** The one informer of `ref` in `namespace` (default: the cache's), created on first ask. */
  informer<T extends KubeObject>(
    ref: ResourceRef,
    namespace: string | undefined = this.opts.namespace,
  ): Informer<T> {
    const key = resourcePath(ref, namespace);
    let inf = this.informers.get(key);
    if (!inf) {
      inf = resourceInformer<KubeObject>(this.opts.api, ref, namespace, {
        logger: this.opts.logger,
        clock: this.opts.clock,
        resyncPeriodMs: this.opts.resyncPeriodMs,
        onLifecycle: (e) => this.opts.onLifecycle?.(ref.plural, e),
      });
      this.informers.set(key, inf);
      if (this.started) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  /** How many informers (watches) the cache holds. */
  size(): number {
    return this.informers.size;
  }

  /** Starts every informer (list+watch in the background). Idempotent. */
  start(): void {
    this.started = true;
    for (const inf of this.informers.values()) inf.start();
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  /** Resolves when every informer held now has listed once. */
  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }
}
