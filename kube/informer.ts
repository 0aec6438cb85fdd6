/**
 * A list+watch informer with a local cache (docs/conventions.md §4).
 *
 * It uses client-node's Watch for the stream but not its ListWatch/makeInformer,
 * which (in 1.4.0 and still in 2.0.1) stops for good on any watch error other than
 * 410, keeps watching when stop() is called during the initial list, and turns an
 * error thrown while opening a watch into an unhandled rejection (which ends the Node
 * process). docs/adr/0004-controller-core.md has the details.
 *
 * Behaviour:
 * - list, then watch from the list's resourceVersion with bookmarks on, resuming
 *   every reconnect from the last resourceVersion seen;
 * - 410 Gone (as an HTTP status or an ERROR event) → relist at once; objects that
 *   disappeared meanwhile are reported as deletes;
 * - any other error → retry with exponential backoff (0.5 s → 30 s, jittered),
 *   forever, until stop(); never exits the process;
 * - a watch the server ends normally (its timeout) is resumed at once;
 * - periodic resync re-delivers every cached object as an update, so a missed
 *   edge (a bug, a dropped side effect) heals by itself.
 */
import type { Logger } from 'pino';
import { type Clock, type RandomSource, realClock, sleep, type TimerHandle } from './clock.js';
import { describeError, isGone } from './errors.js';
import {
  type KubeApi,
  type KubeObject,
  type ObjectList,
  type ResourceRef,
  resourcePath,
  type WatchLike,
} from './kube.js';
import { backoffDelay } from './queue.js';

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T extends KubeObject> {
  /** For logs: the kind and scope, e.g. `AgentIdentity in team-a`. */
  name: string;
  /** Collection path to watch, e.g. `/apis/warden.dev/v1alpha1/namespaces/team-a/agentidentities`. */
  path: string;
  list: (signal: AbortSignal) => Promise<ObjectList<T>>;
  watch: WatchLike;
  logger: Logger;
  clock?: Clock;
  random?: RandomSource;
  /** Re-deliver the whole cache as updates this often. 0 disables. Default 10 min. */
  resyncPeriodMs?: number;
  /** Reconnect backoff. Default 500 ms → 30 s. */
  backoff?: { baseMs: number; maxMs: number };
  labelSelector?: string;
  /** Server-side watch timeout in seconds; default 5-10 min (random), like client-go. */
  watchTimeoutSeconds?: number;
  /**
   * Applied to every object before it is cached or handed to handlers, e.g. to
   * keep only a Secret's key names so secret values never sit in the cache.
   */
  transform?: (obj: T) => T;
  /** Observability hook: every (re)list and watch (re)connect or failure. */
  onLifecycle?: (event: InformerLifecycleEvent) => void;
}

export type InformerLifecycleEvent =
  | { type: 'listed'; count: number; resourceVersion: string }
  | { type: 'watching'; resourceVersion: string }
  | { type: 'gone' }
  | { type: 'error'; error: unknown; retryInMs: number };

/** Status object the API server sends in a watch ERROR event. */
interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

/** Raised internally for an ERROR event so the retry logic sees its code. */
class WatchEventError extends Error {
  constructor(
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** How long past its server-side timeout a watch may stay open before we assume the connection is dead. */
const WATCHDOG_GRACE_S = 30;

/** Watches shorter than this that end without delivering anything count as failures (no tight reconnect loop). */
const MIN_HEALTHY_WATCH_MS = 1_000;

export class Informer<T extends KubeObject> {
  private readonly opts: InformerOptions<T>;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly handlers: InformerHandlers<T>[] = [];
  private cache = new Map<string, Map<string, T>>();
  private readonly indexes = new Map<string, ObjectIndex<T>>();
  private resourceVersion = '';
  private stopController = new AbortController();
  private running = false;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private resyncTimer: TimerHandle | undefined;
  private currentWatch: AbortController | undefined;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
  }

  /**
   * Register handlers; they see every later event and, at the first list, every object as an add.
   * Handlers registered after the first list get every cached object as an add at once (a shared
   * cache is started before all its readers exist, as controller-runtime's AddEventHandler does).
   */
  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
    if (!this.synced || !handlers.add) return;
    for (const obj of this.list()) {
      try {
        handlers.add(obj);
      } catch (err) {
        this.opts.logger.error(
          { informer: this.opts.name, err: describeError(err) },
          'informer handler threw',
        );
      }
    }
  }

  /** Start list+watch in the background. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopController = new AbortController();
    this.loopDone = this.loop(this.stopController.signal);
    this.scheduleResync();
  }

  /** Stop watching and retrying. The cache keeps its last contents. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController.abort();
    this.currentWatch?.abort();
    this.currentWatch = undefined;
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    await this.loopDone;
  }

  /** True once the first list has been applied to the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first successful list (or immediately if already synced). */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(namespace ?? '')?.get(name);
  }

  /** Cached objects, in one namespace or all. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.cache.get(namespace)?.values() ?? [])];
    return [...this.cache.values()].flatMap((m) => [...m.values()]);
  }

  /**
   * Adds an index (client-go's Indexer): `keysOf` names the keys an object is found under, and
   * byIndex(name, key) returns the cached objects with that key without scanning the rest. Kept
   * current on every add, update, delete and relist. The first definition of a name wins, so
   * readers sharing this informer can each declare the index they need.
   */
  addIndex(name: string, keysOf: (obj: T) => readonly string[]): void {
    if (this.indexes.has(name)) return;
    const index = new ObjectIndex<T>(keysOf);
    for (const [ns, m] of this.cache) for (const [n, obj] of m) index.set(`${ns}/${n}`, obj);
    this.indexes.set(name, index);
  }

  /** The cached objects `name`'s keysOf put under `key` (none for an unknown index or key). */
  byIndex(name: string, key: string): T[] {
    return this.indexes.get(name)?.get(key) ?? [];
  }

  /** How many objects are cached (in one namespace, or all), without copying them. */
  count(namespace?: string): number {
    if (namespace !== undefined) return this.cache.get(namespace)?.size ?? 0;
    let n = 0;
    for (const m of this.cache.values()) n += m.size;
    return n;
  }

  /** The resourceVersion the next watch resumes from ('' = relist). */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async loop(stop: AbortSignal): Promise<void> {
    let failures = 0;
    const backoff = { baseMs: 500, maxMs: 30_000, jitter: 0.2, ...this.opts.backoff };
    while (!stop.aborted) {
      try {
        if (!this.resourceVersion) await this.relist(stop);
        if (stop.aborted) break;
        const { delivered, durationMs } = await this.watchOnce(stop);
        if (!delivered && durationMs < MIN_HEALTHY_WATCH_MS && !stop.aborted) {
          throw new Error('watch closed immediately without delivering events');
        }
        failures = 0;
      } catch (err) {
        if (stop.aborted) break;
        if (isGone(err)) {
          // Our resourceVersion is older than etcd's compaction window: start over.
          this.resourceVersion = '';
          this.opts.logger.info(
            { informer: this.opts.name },
            'watch resourceVersion expired (410 Gone), relisting',
          );
          this.opts.onLifecycle?.({ type: 'gone' });
          continue;
        }
        failures++;
        const retryInMs = backoffDelay(failures, backoff, this.random);
        this.opts.logger.warn(
          { informer: this.opts.name, err: describeError(err), failures, retryInMs },
          'list/watch failed, retrying',
        );
        this.opts.onLifecycle?.({ type: 'error', error: err, retryInMs });
        await sleep(this.clock, retryInMs, stop);
      }
    }
  }

  private async relist(stop: AbortSignal): Promise<void> {
    const list = await this.opts.list(stop);
    if (stop.aborted) return; // stopped while listing: do not touch the cache or open a watch
    const fresh = new Map<string, Map<string, T>>();
    for (const raw of list.items ?? []) {
      const obj = this.opts.transform ? this.opts.transform(raw) : raw;
      const ns = obj.metadata?.namespace ?? '';
      let m = fresh.get(ns);
      if (!m) {
        m = new Map();
        fresh.set(ns, m);
      }
      m.set(obj.metadata?.name ?? '', obj);
    }
    const old = this.cache;
    this.cache = fresh;
    for (const index of this.indexes.values()) {
      index.clear();
      for (const [ns, m] of fresh) for (const [n, obj] of m) index.set(`${ns}/${n}`, obj);
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    // Objects gone since the last list were deleted while we were not watching.
    for (const [ns, m] of old) {
      for (const [name, obj] of m) if (!fresh.get(ns)?.has(name)) this.emit('delete', obj);
    }
    for (const [ns, m] of fresh) {
      for (const [name, obj] of m) {
        const before = old.get(ns)?.get(name);
        if (!before) this.emit('add', obj);
        else if (before.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
          this.emit('update', obj, before);
      }
    }
    this.opts.logger.debug(
      { informer: this.opts.name, count: list.items?.length ?? 0, resourceVersion: this.resourceVersion },
      'listed',
    );
    this.opts.onLifecycle?.({
      type: 'listed',
      count: list.items?.length ?? 0,
      resourceVersion: this.resourceVersion,
    });
    if (!this.synced) {
      this.synced = true;
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** One watch connection; resolves when it ends cleanly, rejects with its error. */
  private watchOnce(stop: AbortSignal): Promise<{ delivered: boolean; durationMs: number }> {
    const started = this.clock.now();
    let delivered = false;
    let finished = false;
    return new Promise((resolve, reject) => {
      const onStop = () => finish(null);
      const finish = (err: unknown) => {
        if (finished) return;
        finished = true;
        stop.removeEventListener('abort', onStop);
        if (watchdog !== undefined) this.clock.clearTimeout(watchdog);
        controllerRef?.abort();
        if (this.currentWatch === controllerRef) this.currentWatch = undefined;
        if (err) reject(err);
        else resolve({ delivered, durationMs: this.clock.now() - started });
      };
      let controllerRef: AbortController | undefined;
      const timeoutSeconds = this.opts.watchTimeoutSeconds ?? Math.floor(300 + 300 * this.random()); // 5-10 min
      // The server ends the watch after timeoutSeconds. If it has not by then plus a grace
      // period, the connection is dead without having told us (a peer gone without FIN/RST):
      // give up on it rather than wait for TCP keepalive (~11 min on Linux defaults).
      const watchdog: TimerHandle | undefined = this.clock.setTimeout(
        () =>
          finish(
            new Error(
              `watch still open ${timeoutSeconds + WATCHDOG_GRACE_S} s after its ${timeoutSeconds} s timeout; reconnecting`,
            ),
          ),
        (timeoutSeconds + WATCHDOG_GRACE_S) * 1000,
      );
      const params: Record<string, string | number | boolean | undefined> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.opts.labelSelector,
      };
      this.opts.onLifecycle?.({ type: 'watching', resourceVersion: this.resourceVersion });
      // Leave promptly on stop() even if the aborted stream never reports back.
      stop.addEventListener('abort', onStop, { once: true });
      const onEvent = (phase: string, obj: unknown) => {
        if (finished || stop.aborted) return; // late event from a watch we already left
        delivered = true;
        if (phase === 'ERROR') {
          const status = (obj ?? {}) as WatchStatus;
          finish(
            new WatchEventError(
              status.code,
              `watch ERROR event: ${status.reason ?? ''} ${status.message ?? ''}`,
            ),
          );
          return;
        }
        const typed = obj as T;
        this.applyWatchEvent(
          phase,
          this.opts.transform && phase !== 'BOOKMARK' ? this.opts.transform(typed) : typed,
        );
      };
      const onDone = (err: unknown) => {
        if (stop.aborted) {
          finish(null);
          return;
        }
        finish(err ?? null);
      };
      // Watch.watch can also throw before it connects (auth plugin, kubeconfig):
      // that is a rejection here, handled by the retry loop, never unhandled.
      this.opts.watch.watch(this.opts.path, params, onEvent, onDone).then(
        (controller) => {
          controllerRef = controller;
          if (finished || stop.aborted) {
            controller.abort();
            finish(null);
            return;
          }
          this.currentWatch = controller;
        },
        (err: unknown) => finish(err),
      );
    });
  }

  private applyWatchEvent(phase: string, obj: T): void {
    const rv = obj?.metadata?.resourceVersion;
    if (phase === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const ns = obj?.metadata?.namespace ?? '';
    const name = obj?.metadata?.name;
    if (name === undefined) return;
    let m = this.cache.get(ns);
    if (phase === 'ADDED' || phase === 'MODIFIED') {
      if (!m) {
        m = new Map();
        this.cache.set(ns, m);
      }
      const before = m.get(name);
      m.set(name, obj);
      for (const index of this.indexes.values()) index.set(`${ns}/${name}`, obj);
      if (!before) this.emit('add', obj);
      else if (before.metadata?.resourceVersion !== rv) this.emit('update', obj, before);
    } else if (phase === 'DELETED') {
      const before = m?.get(name);
      m?.delete(name);
      if (m && m.size === 0) this.cache.delete(ns);
      for (const index of this.indexes.values()) index.delete(`${ns}/${name}`);
      // Deliver the delete even if we never saw the object: handlers only enqueue keys.
      this.emit('delete', before ?? obj);
    }
    if (rv) this.resourceVersion = rv;
  }

  private emit(kind: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.add?.(obj);
        else if (kind === 'update') h.update?.(old ?? obj, obj);
        else h.delete?.(obj);
      } catch (err) {
        // A handler bug must not stop the stream for everyone else.
        this.opts.logger.error(
          { informer: this.opts.name, err: describeError(err) },
          'informer handler threw',
        );
      }
    }
  }

  private scheduleResync(): void {
    const period = this.opts.resyncPeriodMs ?? 600_000;
    if (period <= 0) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      if (this.synced) for (const obj of this.list()) this.emit('update', obj, obj);
      this.scheduleResync();
    }, period);
  }
}

/** An informer for one resource type, in one namespace or (namespace undefined) all of them. */
/** One index of an informer: key → objects, and each object's keys so an update can move it. */
class ObjectIndex<T> {
  private readonly byKey = new Map<string, Map<string, T>>();
  private readonly keysByObject = new Map<string, readonly string[]>();

  constructor(private readonly keysOf: (obj: T) => readonly string[]) {}

  set(objectKey: string, obj: T): void {
    this.delete(objectKey);
    const keys = [...new Set(this.keysOf(obj))];
    this.keysByObject.set(objectKey, keys);
    for (const k of keys) {
      let bucket = this.byKey.get(k);
      if (!bucket) {
        bucket = new Map();
        this.byKey.set(k, bucket);
      }
      bucket.set(objectKey, obj);
    }
  }

  delete(objectKey: string): void {
    const keys = this.keysByObject.get(objectKey);
    if (!keys) return;
    this.keysByObject.delete(objectKey);
    for (const k of keys) {
      const bucket = this.byKey.get(k);
      bucket?.delete(objectKey);
      if (bucket && bucket.size === 0) this.byKey.delete(k);
    }
  }

  get(key: string): T[] {
    const bucket = this.byKey.get(key);
    return bucket ? [...bucket.values()] : [];
  }

  clear(): void {
    this.byKey.clear();
    this.keysByObject.clear();
  }
}

export function resourceInformer<T extends KubeObject>(
  api: KubeApi,
  ref: ResourceRef,
  namespace: string | undefined,
  opts: Omit<InformerOptions<T>, 'path' | 'list' | 'watch' | 'name'> & { name?: string },
): Informer<T> {
  const path = resourcePath(ref, namespace);
  return new Informer<T>({
    ...opts,
    name: opts.name ?? `${ref.plural}${namespace ? ` in ${namespace}` : ''}`,
    path,
    watch: api.watcher,
    list: (signal) =>
      api.request<ObjectList<T>>('GET', path, {
        signal,
        query: { labelSelector: opts.labelSelector },
        timeoutMs: 60_000,
      }),
  });
}
