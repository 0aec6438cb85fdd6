/**
 * A keyed work queue with its own worker pool (docs/conventions.md §3).
 *
 * - Events for the same key merge: a key waiting in the queue is not queued twice.
 * - At most one worker processes a key at a time; an add while it is being
 *   processed marks it dirty and it is processed again right after.
 * - A handler that throws is retried with per-key exponential backoff
 *   (1 s doubling to a 5 min cap, ±10 % jitter from an injected random source);
 *   a success forgets the key's failures.
 * - A 409 Conflict is retried soon, without counting as a failure: the next pass
 *   reads the fresh object.
 * - A terminal error (TerminalError, or the API server refusing the content with
 *   400/422) is reported once and not retried: retrying the same request cannot
 *   succeed, and a change to the object queues the key again anyway.
 * - `requeueAfter` from the handler schedules time-based work.
 * - Bounded concurrency; graceful shutdown stops accepting work and drains what
 *   is in flight, giving up after a deadline.
 *
 * Time comes from an injected Clock so tests never sleep.
 */
import { type Clock, type RandomSource, realClock, type TimerHandle } from './clock.js';
import { isConflict, isTerminal } from './errors.js';

/** What a handler asks for after a successful pass. */
export interface ProcessResult {
  /** Process the key again after this many milliseconds (time-based work). */
  requeueAfter?: number;
}

export interface ProcessContext {
  /** Aborted when shutdown's drain deadline passes; long I/O should stop. */
  signal: AbortSignal;
}

// biome-ignore lint/suspicious/noConfusingVoidType: most handlers return nothing; `async () => {}` is Promise<void>.
export type ProcessFn<K> = (key: K, ctx: ProcessContext) => Promise<ProcessResult | undefined | void>;

export type Outcome = 'success' | 'requeue' | 'conflict' | 'error' | 'terminal';

/** Optional metrics/log hooks; the queue works without them. */
export interface QueueObserver<K> {
  /** A pass finished. `retryInMs` is set for requeue, conflict and error. */
  processed?(
    key: K,
    outcome: Outcome,
    durationMs: number,
    detail: { error?: unknown; retryInMs?: number },
  ): void;
  /** Queue depth (ready keys) changed. */
  depth?(ready: number): void;
}

export interface BackoffOptions {
  /** First retry delay in ms. Default 1000. */
  baseMs: number;
  /** Cap in ms. Default 300 000 (5 min). */
  maxMs: number;
  /** Relative jitter: a delay d becomes d·(1 − j + 2j·random). Default 0.1. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 300_000, jitter: 0.1 };

/**
 * Delay before retry number `failures` (1 = first retry). Pure: the same inputs
 * give the same delay. Jitter spreads retries of many keys failing together.
 */
export function backoffDelay(failures: number, opts: BackoffOptions, random: RandomSource): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^(n-1) overflows to Infinity for huge n; Math.min still returns the cap.
  const raw = Math.min(opts.maxMs, opts.baseMs * 2 ** (n - 1));
  const factor = 1 - opts.jitter + 2 * opts.jitter * random();
  return Math.round(raw * factor);
}

export interface WorkQueueOptions<K> {
  process: ProcessFn<K>;
  /** Number of keys processed in parallel. Default 2. */
  concurrency?: number;
  clock?: Clock;
  random?: RandomSource;
  backoff?: Partial<BackoffOptions>;
  /** Delay before retrying a conflict, before jitter. Default 100 ms. */
  conflictDelayMs?: number;
  /** Decides which errors are conflicts. Default: ConflictError or HTTP 409. */
  isConflict?: (err: unknown) => boolean;
  /** Decides which errors are terminal (never retried). Default: TerminalError or HTTP 400/422. */
  isTerminal?: (err: unknown) => boolean;
  observer?: QueueObserver<K>;
}

export interface ShutdownResult<K> {
  /** True when every in-flight pass finished before the deadline. */
  drained: boolean;
  /** Keys still being processed when the deadline passed. */
  abandoned: K[];
}

export class WorkQueue<K = string> {
  private readonly processFn: ProcessFn<K>;
  private readonly concurrency: number;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly backoff: BackoffOptions;
  private readonly conflictDelayMs: number;
  private readonly conflictTest: (err: unknown) => boolean;
  private readonly terminalTest: (err: unknown) => boolean;
  private readonly observer: QueueObserver<K> | undefined;

  /** Ready keys in FIFO order, and the same keys as a set for de-duplication. */
  private readonly ready: K[] = [];
  private readonly readySet = new Set<K>();
  private readonly processing = new Set<K>();
  /** Keys added while being processed: processed again when the current pass ends. */
  private readonly dirty = new Set<K>();
  private readonly delayed = new Map<K, { at: number; handle: TimerHandle }>();
  private readonly failures = new Map<K, number>();
  private readonly abort = new AbortController();
  private shuttingDown = false;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: WorkQueueOptions<K>) {
    this.processFn = opts.process;
    this.concurrency = Math.max(1, opts.concurrency ?? 2);
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.conflictDelayMs = opts.conflictDelayMs ?? 100;
    this.conflictTest = opts.isConflict ?? isConflict;
    this.terminalTest = opts.isTerminal ?? isTerminal;
    this.observer = opts.observer;
  }

  /** Queue key for processing now. Merges with a queued copy; marks dirty if in flight. */
  add(key: K): void {
    if (this.shuttingDown) return;
    this.cancelDelayed(key);
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.readySet.has(key)) return;
    this.ready.push(key);
    this.readySet.add(key);
    this.observer?.depth?.(this.ready.length);
    this.pump();
  }

  /**
   * Queue key after ms. If the key is already waiting, the earlier deadline wins,
   * so a short requeue is never postponed by a longer one.
   */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.handle);
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** Record a failure for key and queue it after its backoff delay. Returns the delay. */
  addRateLimited(key: K): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = backoffDelay(n, this.backoff, this.random);
    this.addAfter(key, delay);
    return delay;
  }

  /** Reset key's backoff (called after a successful pass). */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** Consecutive failures recorded for key. */
  numFailures(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Counts for metrics and tests. */
  stats(): { ready: number; processing: number; delayed: number; dirty: number } {
    return {
      ready: this.ready.length,
      processing: this.processing.size,
      delayed: this.delayed.size,
      dirty: this.dirty.size,
    };
  }

  /** Whether key is ready, in flight or waiting for a timer. */
  has(key: K): boolean {
    return this.readySet.has(key) || this.processing.has(key) || this.delayed.has(key);
  }

  /** Resolves when nothing is ready or in flight (delayed keys may remain). */
  whenIdle(): Promise<void> {
    if (this.ready.length === 0 && this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stop accepting work, drop queued and delayed keys, and wait for in-flight
   * passes up to deadlineMs. After the deadline the handlers' signal is aborted.
   */
  async shutdown(deadlineMs: number): Promise<ShutdownResult<K>> {
    this.shuttingDown = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    this.ready.length = 0;
    this.readySet.clear();
    this.dirty.clear();
    if (this.processing.size === 0) return { drained: true, abandoned: [] };
    let timer: TimerHandle | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const outcome = await Promise.race([this.whenIdle().then(() => 'idle' as const), deadline]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    if (outcome === 'idle') return { drained: true, abandoned: [] };
    const abandoned = [...this.processing];
    this.abort.abort(new Error('work queue shutdown deadline passed'));
    return { drained: false, abandoned };
  }

  private cancelDelayed(key: K): void {
    const existing = this.delayed.get(key);
    if (existing) {
      this.clock.clearTimeout(existing.handle);
      this.delayed.delete(key);
    }
  }

  private pump(): void {
    while (!this.shuttingDown && this.processing.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift() as K;
      this.readySet.delete(key);
      this.processing.add(key);
      this.observer?.depth?.(this.ready.length);
      void this.run(key);
    }
  }

  private async run(key: K): Promise<void> {
    const started = this.clock.now();
    let outcome: Outcome;
    let error: unknown;
    let retryInMs: number | undefined;
    try {
      const result = await this.processFn(key, { signal: this.abort.signal });
      this.forget(key);
      const after = result?.requeueAfter;
      if (after !== undefined && after > 0) {
        outcome = 'requeue';
        retryInMs = after;
      } else {
        outcome = 'success';
      }
    } catch (err) {
      error = err;
      if (this.conflictTest(err)) {
        outcome = 'conflict';
        retryInMs = Math.round(this.conflictDelayMs * (1 + this.random()));
      } else if (this.terminalTest(err)) {
        outcome = 'terminal';
        this.forget(key);
      } else {
        outcome = 'error';
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        retryInMs = backoffDelay(n, this.backoff, this.random);
      }
    }
    this.processing.delete(key);
    if (this.dirty.delete(key)) {
      // A change arrived while we worked: look at it now rather than after the
      // retry delay (the failure count is kept, so repeated errors still back off).
      this.add(key);
    } else if (retryInMs !== undefined) {
      this.addAfter(key, retryInMs);
    }
    try {
      this.observer?.processed?.(key, outcome, this.clock.now() - started, { error, retryInMs });
    } catch {
      // An observer bug must not wedge the queue.
    }
    this.pump();
    if (this.ready.length === 0 && this.processing.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
