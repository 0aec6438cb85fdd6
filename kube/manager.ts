/**
 * The Manager: what every Warden process that talks to the API server is built on, in the spirit
 * of controller-runtime's. It owns
 *
 * - one API client (`api`) and one Event recorder,
 * - one shared cache of API objects (`cache`, kube/cache.ts) that the webhook, the reconcilers and
 *   the authority all read,
 * - one status writer per field manager (`statusWriter`), so every status field has one writer
 *   (docs/conventions.md §5),
 * - an ordered list of Runnables: parts that start and stop. Runnables marked `leaderOnly` run
 *   only while this replica holds the Lease (the reconcilers); the others run on every replica
 *   (webhook, authority, audit writer, health endpoints).
 *
 * Order is the registration order, and it is the only order: start() starts the cache, then each
 * runnable in turn (awaiting each start, so a part may use the parts registered before it), marks
 * the manager ready, then campaigns for the Lease; a won Lease starts the leader-only runnables in
 * order, a lost one stops them in reverse. stop() stops leader-only runnables, releases the Lease,
 * stops the other runnables in reverse order, then the cache, then flushes Events. The ordering
 * itself (start in order, roll back a failed start, stop in reverse) is lifecycle/runnables.ts's
 * RunnableGroup, which the broker (no API client, no Manager) uses too.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { FIELD_MANAGER, LEADER_LEASE_NAME } from '../core/constants.js';
import { type Runnable, RunnableGroup } from '../lifecycle/runnables.js';
import { SharedCache } from './cache.js';
import { type Clock, realClock } from './clock.js';
import type { Controller } from './controller.js';
import { describeError } from './errors.js';
import { ApiEventRecorder, type EventRecorder } from './events.js';
import type { InformerLifecycleEvent } from './informer.js';
import type { KubeApi } from './kube.js';
import { LeaderElector } from './leader.js';
import { ApiStatusWriter, type StatusWriter } from './status.js';

export interface RunnableOptions {
  /** Run only while this replica holds the Lease (reconcilers). Default false. */
  leaderOnly?: boolean;
}

export interface LeaderElectionOptions {
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease. Default LEADER_LEASE_NAME. */
  name?: string | undefined;
  leaseDurationMs?: number | undefined;
  renewPeriodMs?: number | undefined;
  retryPeriodMs?: number | undefined;
}

export interface ManagerOptions {
  api: KubeApi;
  logger: Logger;
  /** This replica's identity (the pod name): Lease holder and Event reporter. Default hostname-pid. */
  identity?: string | undefined;
  /** The cache watches only this namespace (default: all). */
  namespace?: string | undefined;
  /** false: leader-only runnables start at once (one replica, tests). */
  leaderElection: LeaderElectionOptions | false;
  clock?: Clock | undefined;
  /** Overrides the Event recorder (tests). */
  recorder?: EventRecorder | undefined;
  /** Overrides the default field manager's status writer (tests). */
  statusWriter?: StatusWriter | undefined;
  resyncPeriodMs?: number | undefined;
  onInformerLifecycle?: ((informer: string, event: InformerLifecycleEvent) => void) | undefined;
  /** Called after the leader-only runnables started (true) or stopped (false). */
  onLeadershipChange?: ((leading: boolean) => void) | undefined;
}

interface Registration {
  runnable: Runnable;
  leaderOnly: boolean;
}

type State = 'new' | 'starting' | 'ready' | 'stopping' | 'stopped';

export class Manager {
  readonly api: KubeApi;
  readonly cache: SharedCache;
  readonly recorder: EventRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly identity: string;
  private readonly log: Logger;
  private readonly registrations: Registration[] = [];
  private readonly statusWriters = new Map<string, StatusWriter>();
  private state: State = 'new';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly stopAbort = new AbortController();
  /** Every replica's runnables (lifecycle/runnables.ts: order, start failure, stop in reverse). */
  private readonly everyReplica: RunnableGroup;
  /** The leader-only runnables of the current leadership term, if leading. */
  private term: RunnableGroup | undefined;
  private elector: LeaderElector | undefined;
  private leading = false;
  private leaderAbort = new AbortController();
  private transitions: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ManagerOptions) {
    this.api = opts.api;
    this.clock = opts.clock ?? realClock;
    this.identity = opts.identity ?? `${hostname()}-${process.pid}`;
    this.logger = opts.logger;
    this.log = opts.logger.child({ component: 'manager', identity: this.identity });
    this.everyReplica = new RunnableGroup({
      logger: this.log,
      signal: this.stopAbort.signal,
      describe: describeError,
    });
    this.cache = new SharedCache({
      api: opts.api,
      logger: opts.logger,
      namespace: opts.namespace,
      clock: opts.clock,
      resyncPeriodMs: opts.resyncPeriodMs,
      onLifecycle: opts.onInformerLifecycle,
    });
    this.recorder =
      opts.recorder ??
      new ApiEventRecorder({ api: opts.api, instance: this.identity, logger: this.log, clock: this.clock });
    if (opts.statusWriter) this.statusWriters.set(FIELD_MANAGER, opts.statusWriter);
  }

  /** The one status writer of `fieldManager` (docs/conventions.md §5 names what each may write). */
  statusWriter(fieldManager: string = FIELD_MANAGER): StatusWriter {
    let w = this.statusWriters.get(fieldManager);
    if (!w) {
      w = new ApiStatusWriter(this.api, fieldManager);
      this.statusWriters.set(fieldManager, w);
    }
    return w;
  }

  /** Registers a runnable after those registered before it. Only before start(). */
  add(runnable: Runnable, opts: RunnableOptions = {}): this {
    if (this.state !== 'new')
      throw new Error(
        `manager: cannot add runnable '${runnable.name}' after start; register every part first`,
      );
    if (this.registrations.some((r) => r.runnable.name === runnable.name))
      throw new Error(
        `manager: a runnable named '${runnable.name}' is already registered; names must be unique`,
      );
    const leaderOnly = opts.leaderOnly === true;
    if (!leaderOnly) this.everyReplica.add(runnable);
    this.registrations.push({ runnable, leaderOnly });
    return this;
  }

  /** Registered runnables in order (for tests and the docs). */
  runnables(): readonly { name: string; leaderOnly: boolean }[] {
    return this.registrations.map((r) => ({ name: r.runnable.name, leaderOnly: r.leaderOnly }));
  }

  /** True from the moment every non-leader runnable started until stop() begins. */
  ready(): boolean {
    return this.state === 'ready';
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Resolves when the leadership change under way (if any) has finished starting or stopping runnables. */
  async settled(): Promise<void> {
    await this.transitions;
  }

  /**
   * Starts the cache and every runnable in order, then campaigns for the Lease. Resolves when ready
   * (leader-only runnables start later, when the Lease is won). A runnable that fails to start stops
   * the ones started before it, in reverse, and the error is raised.
   */
  start(): Promise<void> {
    if (this.state !== 'new') return this.starting ?? Promise.resolve();
    this.state = 'starting';
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.cache.start();
    try {
      await this.everyReplica.start();
    } catch (err) {
      await this.cache.stop();
      this.state = 'stopped';
      throw new Error(`manager: ${describeError(err)}`, { cause: err });
    }
    if (this.stopAbort.signal.aborted) return;
    this.state = 'ready';
    this.log.info({ runnables: this.everyReplica.running() }, 'manager ready');
    const election = this.opts.leaderElection;
    if (election === false) {
      void this.setLeading(true);
      return;
    }
    this.elector = new LeaderElector({
      api: this.api,
      namespace: election.namespace,
      name: election.name ?? LEADER_LEASE_NAME,
      identity: this.identity,
      logger: this.log,
      clock: this.clock,
      leaseDurationMs: election.leaseDurationMs,
      renewPeriodMs: election.renewPeriodMs,
      retryPeriodMs: election.retryPeriodMs,
      // Not awaited: the elector must keep renewing while the caches sync.
      onStartedLeading: () => {
        void this.setLeading(true);
      },
      onStoppedLeading: () => {
        void this.setLeading(false);
      },
    });
    this.elector.start();
  }

  /** Serialized, so a quick lose/regain never runs two sets of leader-only runnables. */
  private setLeading(want: boolean): Promise<void> {
    if (!want) this.leaderAbort.abort(); // a start still waiting for caches gives up at once
    this.transitions = this.transitions.then(async () => {
      if (want === this.leading) return;
      if (want && this.stopAbort.signal.aborted) return;
      this.leading = want;
      if (want) {
        this.leaderAbort = new AbortController();
        // A fresh group per term; a reconciler that cannot start must not take the others down
        // with it: it is logged at error level and retried at the next leadership.
        const term = new RunnableGroup({
          logger: this.log,
          signal: this.leaderAbort.signal,
          onStartFailure: 'continue',
          describe: describeError,
        });
        for (const r of this.registrations) if (r.leaderOnly) term.add(r.runnable);
        this.term = term;
        this.log.info('leading: starting leader-only runnables');
        await term.start();
      } else {
        this.log.info('not leading: stopping leader-only runnables');
        await this.term?.stop();
        this.term = undefined;
      }
      try {
        this.opts.onLeadershipChange?.(want);
      } catch (err) {
        this.log.error({ err: describeError(err) }, 'onLeadershipChange threw');
      }
    });
    return this.transitions;
  }

  /**
   * Graceful shutdown: leader-only runnables (draining), the Lease (released, so another replica
   * takes over at once), the other runnables in reverse order, the cache, pending Events.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('manager stopping');
      this.state = 'stopping';
      this.stopAbort.abort();
      this.leaderAbort.abort();
      await this.starting?.catch(() => undefined);
      await this.setLeading(false);
      await this.elector?.stop();
      await this.transitions;
      await this.everyReplica.stop();
      await this.cache.stop();
      if (this.recorder instanceof ApiEventRecorder) await this.recorder.flush();
      this.state = 'stopped';
      this.log.info('manager stopped');
    })();
    return this.stopping;
  }
}

/** A reconciler as a runnable (register it leaderOnly); stop drains in-flight reconciles up to deadlineMs. */
export function controllerRunnable(
  controller: Controller,
  name: string,
  deadlineMs = () => 10_000,
): Runnable {
  return {
    name,
    start: (ctx) => controller.start(ctx.signal),
    stop: async () => {
      await controller.stop(deadlineMs());
    },
  };
}
