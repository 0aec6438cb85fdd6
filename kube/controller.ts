/**
 * A controller: informers feed keys into a WorkQueue, whose workers call
 * reconcile(key). Reconcilers read from the informer caches, decide with a pure
 * function, and write; the queue handles retries.
 *
 * - Nothing is reconciled until every watched informer has synced, so a
 *   reconciler never mistakes "not listed yet" for "does not exist".
 * - NotFound from the reconciler is success (the object is gone; nothing to do).
 * - start/stop can repeat (a replica that loses and regains leadership): each
 *   start gets a fresh queue.
 */
import type { Logger } from 'pino';
import { type Clock, type RandomSource, realClock } from './clock.js';
import { describeError, isNotFound } from './errors.js';
import type { Informer } from './informer.js';
import type { KubeObject } from './kube.js';
import {
  type BackoffOptions,
  type Outcome,
  type ProcessResult,
  type ShutdownResult,
  WorkQueue,
} from './queue.js';

export interface ObjectKey {
  namespace: string;
  name: string;
}

/** `namespace/name`, the queue key of an object. */
export function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

export function parseKey(key: string): ObjectKey {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export interface ReconcileContext {
  signal: AbortSignal;
  logger: Logger;
}

/** What a reconcile returns: nothing, or when to look again. */
// biome-ignore lint/suspicious/noConfusingVoidType: reconcilers with nothing to requeue simply return.
export type ReconcileReturn = ProcessResult | undefined | void;

export type ReconcileFn = (key: ObjectKey, ctx: ReconcileContext) => Promise<ReconcileReturn>;

/** Optional metrics hooks (prom-client adapters live with the entry point). */
export interface ControllerMetrics {
  reconciled?(controller: string, outcome: Outcome, durationMs: number): void;
  queueDepth?(controller: string, depth: number): void;
}

export interface ControllerOptions {
  /** For logs and metrics, e.g. `agentidentity`. */
  name: string;
  reconcile: ReconcileFn;
  logger: Logger;
  /** Parallel reconciles. Default 4: reconciles mostly wait on the API server, not the CPU. */
  concurrency?: number;
  clock?: Clock;
  random?: RandomSource;
  backoff?: Partial<BackoffOptions>;
  metrics?: ControllerMetrics;
}

export class Controller {
  private queue: WorkQueue<string> | undefined;
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly primaries: Informer<KubeObject>[] = [];
  private readonly log: Logger;

  constructor(private readonly o: ControllerOptions) {
    this.log = o.logger.child({ controller: o.name });
  }

  get name(): string {
    return this.o.name;
  }

  /** Reconcile the object itself on every add, update and delete. */
  watchPrimary<T extends KubeObject>(informer: Informer<T>): this {
    const inf = informer as unknown as Informer<KubeObject>;
    this.informers.push(inf);
    this.primaries.push(inf);
    informer.on({
      add: (o) => this.enqueue(keyOf(o)),
      update: (_old, o) => this.enqueue(keyOf(o)),
      delete: (o) => this.enqueue(keyOf(o)),
    });
    return this;
  }

  /**
   * Reconcile the objects `map` names whenever a related object changes (e.g. a
   * ServiceAccount → the AgentIdentities that reference it). On update both the
   * old and new versions are mapped, so a reference that moved away is rechecked too.
   */
  watchRelated<T extends KubeObject>(
    informer: Informer<T>,
    map: (obj: T) => string[],
    /**
     * Whether an update can change what the mapped objects' reconcile reads (absent: every
     * update does). E.g. a policy reads an agent's name and labels, not its status: the agents'
     * own status writes need not wake every policy selecting them.
     */
    relevant?: (old: T, obj: T) => boolean,
  ): this {
    this.informers.push(informer as unknown as Informer<KubeObject>);
    const enqueueAll = (o: T) => {
      for (const k of map(o)) this.enqueue(k);
    };
    informer.on({
      add: enqueueAll,
      update: (old, o) => {
        if (relevant && !relevant(old, o)) return;
        enqueueAll(old);
        enqueueAll(o);
      },
      delete: enqueueAll,
    });
    return this;
  }

  /** Queue a key. Ignored while the controller is stopped. */
  enqueue(key: string): void {
    this.queue?.add(key);
  }

  /** Informers this controller reads; the manager starts them. */
  watchedInformers(): readonly Informer<KubeObject>[] {
    return this.informers;
  }

  /**
   * Start processing: waits for the watched informers to sync, then queues every
   * primary object once (the informers' initial adds may have arrived earlier).
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.queue) return;
    const queue = new WorkQueue<string>({
      process: (key, ctx) => this.process(key, ctx.signal),
      concurrency: this.o.concurrency ?? 4,
      clock: this.o.clock ?? realClock,
      random: this.o.random,
      backoff: this.o.backoff,
      observer: {
        processed: (key, outcome, ms, d) => {
          this.o.metrics?.reconciled?.(this.o.name, outcome, ms);
          if (outcome === 'error') {
            this.log.warn({ key, err: describeError(d.error), retryInMs: d.retryInMs }, 'reconcile failed');
          } else if (outcome === 'terminal') {
            this.log.error(
              { key, err: describeError(d.error) },
              'reconcile failed with an error retrying cannot fix; not retried until the object changes',
            );
          } else if (outcome === 'conflict') {
            this.log.debug({ key, retryInMs: d.retryInMs }, 'reconcile hit a conflict, retrying');
          }
        },
        depth: (n) => this.o.metrics?.queueDepth?.(this.o.name, n),
      },
    });
    await Promise.race([
      Promise.all(this.informers.map((i) => i.waitForSync())),
      new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })),
    ]);
    if (signal?.aborted) return;
    this.queue = queue;
    for (const inf of this.primaries) for (const o of inf.list()) queue.add(keyOf(o));
    this.log.info({ queued: queue.stats().ready + queue.stats().processing }, 'controller started');
  }

  /** Stop taking work and drain what is in flight (up to deadlineMs). */
  async stop(deadlineMs = 10_000): Promise<ShutdownResult<string>> {
    const queue = this.queue;
    this.queue = undefined;
    if (!queue) return { drained: true, abandoned: [] };
    const result = await queue.shutdown(deadlineMs);
    if (!result.drained)
      this.log.warn({ abandoned: result.abandoned }, 'stopped before in-flight reconciles finished');
    return result;
  }

  /** Wait until nothing is queued or in flight (tests, benchmarks). */
  async whenIdle(): Promise<void> {
    await this.queue?.whenIdle();
  }

  private async process(key: string, signal: AbortSignal): Promise<ProcessResult | undefined> {
    try {
      const result = await this.o.reconcile(parseKey(key), { signal, logger: this.log.child({ key }) });
      return result ?? undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined; // gone: nothing left to reconcile
      throw err;
    }
  }
}
