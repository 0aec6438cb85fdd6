/**
 * Process lifecycle: the parts of a process as an ordered list of Runnables (`start(ctx)`,
 * `stop()`), started in registration order and stopped in reverse. Both long-running processes use
 * it: `warden controller` through the Manager (kube/manager.ts, which adds the API client, the
 * shared cache and leader election around two groups: every replica's parts and the leader-only
 * ones) and `warden broker` (broker/main.ts), which has no API client. Order, readiness, start
 * failure and shutdown are therefore one piece of code, tested once (lifecycle/runnables.test.ts).
 *
 * No Kubernetes and no I/O here: this room sits below kube/ so the broker can use it without
 * loading the Kubernetes client.
 */
import type { Logger } from 'pino';

/** What a runnable's start gets: aborted when its group stops (or, leader-only, leadership is lost). */
export interface RunContext {
  signal: AbortSignal;
}

/** A part of the process that starts and stops. */
export interface Runnable {
  /** For logs and errors: what this part is. */
  readonly name: string;
  /** Resolves once the part serves (or its loops run). Throwing fails the group's start. */
  start(ctx: RunContext): Promise<void> | void;
  /** Stops the part; called once, only after its start resolved. */
  stop(): Promise<void> | void;
}

/** A runnable around a value built at start (a server, an authority) that later parts may use. */
export interface ValueRunnable<T> extends Runnable {
  /** The started value; throws before start (a registration-order mistake). */
  get(): T;
}

export function runnableValue<T>(
  name: string,
  start: (ctx: RunContext) => Promise<T> | T,
  stop: (value: T) => Promise<void> | void,
): ValueRunnable<T> {
  let value: { v: T } | undefined;
  return {
    name,
    async start(ctx) {
      value = { v: await start(ctx) };
    },
    async stop() {
      if (value) await stop(value.v);
    },
    get() {
      if (!value) throw new Error(`${name} is not started: register it before the parts that use it`);
      return value.v;
    },
  };
}

/** A part with nothing to start: it only has to be stopped at its place in the order. */
export function stopOnly(name: string, stop: () => Promise<void> | void): Runnable {
  return { name, start: () => {}, stop };
}

/** An error's message for logs and start failures (an Error's message, else its string form). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface RunnableGroupOptions {
  logger: Logger;
  /** Aborts a start in progress from outside (the Manager's stop, a lost Lease). */
  signal?: AbortSignal | undefined;
  /**
   * What a runnable that fails to start does to the group. `rollback` (default): the ones started
   * before it are stopped in reverse and start() rejects naming it — a process must not run
   * half-built. `continue`: it is logged at error level and skipped, the others start (reconcilers:
   * one that cannot start must not take the others down; it is retried at the next leadership).
   */
  onStartFailure?: 'rollback' | 'continue';
  /** Describes a start/stop error for the log and the rejection (default errorMessage). */
  describe?: ((err: unknown) => string) | undefined;
}

type State = 'new' | 'starting' | 'ready' | 'stopping' | 'stopped';

/**
 * Runnables started one after the other in registration order (each after the previous one's start
 * resolved, so a part may use the parts registered before it) and stopped in reverse. Started once
 * and stopped once: start() after stop() does nothing.
 */
export class RunnableGroup {
  private readonly list: Runnable[] = [];
  private readonly started: Runnable[] = [];
  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;
  private readonly describe: (err: unknown) => string;
  private state: State = 'new';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: RunnableGroupOptions) {
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.abort.signal]) : this.abort.signal;
    this.describe = opts.describe ?? errorMessage;
  }

  /** Registers a runnable after those registered before it. Only before start(). */
  add(runnable: Runnable): this {
    if (this.state !== 'new')
      throw new Error(`cannot add runnable '${runnable.name}' after start; register every part first`);
    if (this.list.some((r) => r.name === runnable.name))
      throw new Error(`a runnable named '${runnable.name}' is already registered; names must be unique`);
    this.list.push(runnable);
    return this;
  }

  /** Registered runnables' names, in order. */
  names(): string[] {
    return this.list.map((r) => r.name);
  }

  /** Names of the runnables that started and are not stopped, in start order. */
  running(): string[] {
    return this.started.map((r) => r.name);
  }

  /** True from the moment every runnable started until stop() begins. */
  ready(): boolean {
    return this.state === 'ready';
  }

  /**
   * Starts every runnable in order. Resolves when all started, or early (having started only some)
   * when the group is stopped or its signal aborted meanwhile. See onStartFailure for a failure.
   */
  start(): Promise<void> {
    if (this.state !== 'new') return this.starting ?? Promise.resolve();
    this.state = 'starting';
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const ctx: RunContext = { signal: this.signal };
    for (const runnable of this.list) {
      if (this.signal.aborted) return;
      try {
        await runnable.start(ctx);
      } catch (err) {
        this.opts.logger.error(
          { runnable: runnable.name, err: this.describe(err) },
          'runnable failed to start',
        );
        if (this.opts.onStartFailure === 'continue') continue;
        await this.stopAll();
        this.state = 'stopped';
        throw new Error(`${runnable.name} failed to start: ${this.describe(err)}`, { cause: err });
      }
      this.started.push(runnable);
    }
    if (!this.signal.aborted && this.state === 'starting') this.state = 'ready';
  }

  /** Stops the started runnables in reverse (aborting a start in progress first). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopping';
      this.abort.abort();
      await this.starting?.catch(() => undefined);
      await this.stopAll();
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    for (const r of this.started.splice(0).reverse()) {
      try {
        await r.stop();
      } catch (err) {
        // Keep stopping the rest: one part's failure must not leave the others running.
        this.opts.logger.error({ runnable: r.name, err: this.describe(err) }, 'runnable failed to stop');
      }
    }
  }
}

/**
 * Stops the process on SIGTERM or SIGINT (once, however many signals arrive): runs `stop`, then
 * exits 0, or 1 when stopping failed. Returns a function that removes the handlers.
 */
export function stopOnSignals(
  stop: () => Promise<void>,
  log: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop().then(
      () => exit(0),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
