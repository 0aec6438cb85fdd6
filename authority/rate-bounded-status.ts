/**
 * The write-rate bound shared by the authority's status counters (decision-stats.ts for
 * AgentIdentity, issuance-stats.ts for CredentialProvider): what arrives accumulates in memory per
 * object (`namespace/name`), and each object's status is written at most once per `minIntervalMs`
 * (default 2 s), however much arrives. A failed write keeps what it carried for the next attempt;
 * an object that is gone (404) is forgotten; an object idle for a whole interval is forgotten, so
 * the map holds only recently active objects and the bound holds under steady traffic too.
 */
import type { Logger } from 'pino';
import { ApiError } from '../kube/kube.js';

export interface RateBoundedStatusOptions<P> {
  /** Nothing pending. */
  empty(): P;
  isEmpty(pending: P): boolean;
  /** What a failed write carried, merged with what arrived while it was in flight. */
  merge(failed: P, arrived: P): P;
  /** Writes one object's status; throws on failure (an ApiError 404 forgets the object). */
  write(namespace: string, name: string, pending: P): Promise<void>;
  log: Logger;
  /** Names the counters in the retry log line, e.g. `decision counters`. */
  what: string;
  /** Log field of the object key, e.g. `agent`. */
  keyField: string;
  /** Minimum time between two status writes of one object. Default 2 s. */
  minIntervalMs?: number;
  now?: () => number;
}

interface Entry<P> {
  pending: P;
  lastWrite: number;
  writing: boolean;
}

export class RateBoundedStatus<P> {
  private readonly entries = new Map<string, Entry<P>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly minInterval: number;
  /** Status writes done and failed (tests, metrics, the benchmark). */
  readonly counters = { writes: 0, failures: 0 };

  constructor(private readonly opts: RateBoundedStatusOptions<P>) {
    this.now = opts.now ?? Date.now;
    this.minInterval = opts.minIntervalMs ?? 2_000;
  }

  /** Adds to what is pending for namespace/name. */
  update(namespace: string, name: string, change: (pending: P) => P): void {
    const key = `${namespace}/${name}`;
    const entry = this.entries.get(key) ?? {
      pending: this.opts.empty(),
      lastWrite: Number.NEGATIVE_INFINITY,
      writing: false,
    };
    entry.pending = change(entry.pending);
    this.entries.set(key, entry);
  }

  start(intervalMs = 500): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is pending (ignoring the rate bound). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush(true);
  }

  /** Writes every object with something pending whose interval has passed. */
  async flush(force = false): Promise<void> {
    const now = this.now();
    for (const [key, e] of this.entries)
      if (this.opts.isEmpty(e.pending) && !e.writing && now - e.lastWrite >= this.minInterval)
        this.entries.delete(key);
    const due = [...this.entries.entries()].filter(
      ([, e]) =>
        !this.opts.isEmpty(e.pending) && !e.writing && (force || now - e.lastWrite >= this.minInterval),
    );
    await Promise.all(due.map(([key, e]) => this.write(key, e)));
  }

  private async write(key: string, entry: Entry<P>): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const pending = entry.pending;
    entry.pending = this.opts.empty();
    entry.writing = true;
    entry.lastWrite = this.now();
    try {
      await this.opts.write(namespace, name, pending);
      this.counters.writes++;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) {
        this.entries.delete(key); // the object is gone: nothing to count on
        return;
      }
      this.counters.failures++;
      entry.pending = this.opts.merge(pending, entry.pending);
      this.opts.log.warn(
        { [this.opts.keyField]: key, err: err instanceof Error ? err.message : String(err) },
        `${this.opts.what}: status write failed; will retry`,
      );
    } finally {
      entry.writing = false;
    }
  }
}
