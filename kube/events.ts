/**
 * An events.k8s.io/v1 Event recorder that cannot flood the API server.
 *
 * - The same (object, type, reason, action, note) within the aggregation window
 *   becomes one Event whose `series.count` grows, instead of a new Event each time;
 *   series updates are themselves throttled (at most one per object+reason per
 *   `seriesUpdateIntervalMs`), the rest are counted and written with the next one.
 * - A token bucket bounds writes across all objects (burst, then a steady rate);
 *   over the limit, events are dropped and counted, never queued without bound.
 * - Recording never throws and never blocks a reconcile on the API server.
 *
 * Notes are for people and must not contain secrets; callers pass names, never values.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { REPORTING_CONTROLLER } from '../core/constants.js';
import { type Clock, microTime, realClock } from './clock.js';
import { describeError, isNotFound } from './errors.js';
import type { KubeApi, KubeObject } from './kube.js';

export type EventType = 'Normal' | 'Warning';

export interface EventInput {
  type: EventType;
  /** CamelCase constant, e.g. ServiceAccountNotFound. */
  reason: string;
  /** What the controller did or was doing, e.g. Reconcile, Validate. */
  action: string;
  /** For people (≤1 kB); names only, never secret values. */
  note: string;
}

export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

/** Token bucket: `burst` writes at once, then `ratePerSecond` on average. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly ratePerSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  tryTake(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** What the recorder remembers of an Event it wrote. */
export interface SeriesState {
  /** Name of the Event object. */
  name: string;
  namespace: string;
  /** Occurrences so far (including ones not yet written). */
  count: number;
  /** Count last written to the API server. */
  writtenCount: number;
  firstSeen: number;
  lastSeen: number;
  lastWrite: number;
}

export type EventWrite = 'create' | 'updateSeries' | 'skip';

export interface AggregationTiming {
  /** Occurrences further apart than this start a new Event. Default 6 min (client-go's). */
  windowMs: number;
  /** Minimum time between series updates of one Event. Default 30 s. */
  seriesUpdateIntervalMs: number;
}

/** Pure: what to write for an occurrence at `now`, given what we wrote before for the same key. */
export function decideEventWrite(
  prev: SeriesState | undefined,
  now: number,
  timing: AggregationTiming,
): EventWrite {
  if (!prev || now - prev.lastSeen > timing.windowMs) return 'create';
  if (now - prev.lastWrite >= timing.seriesUpdateIntervalMs) return 'updateSeries';
  return 'skip';
}

/** Stable aggregation key: the same object (by uid when known), type, reason, action and note. */
export function aggregationKey(ref: ObjectReference, e: EventInput): string {
  return [
    ref.namespace ?? '',
    ref.kind ?? '',
    ref.name ?? '',
    ref.uid ?? '',
    e.type,
    e.reason,
    e.action,
    e.note,
  ].join('\u0000');
}

export function objectReference(obj: KubeObject): ObjectReference {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata?.name,
    namespace: obj.metadata?.namespace,
    uid: obj.metadata?.uid,
    resourceVersion: obj.metadata?.resourceVersion,
  };
}

const MAX_NOTE = 1024;

export interface EventRecorderOptions {
  api: KubeApi;
  /** reportingInstance: the pod name (or a stable replica identity). */
  instance: string;
  logger: Logger;
  clock?: Clock;
  /** Default 25. */
  burst?: number;
  /** Default 1 per second. */
  ratePerSecond?: number;
  timing?: Partial<AggregationTiming>;
  /** Bound on remembered series; the oldest are forgotten first. Default 4096. */
  maxSeries?: number;
}

export interface RecorderStats {
  created: number;
  seriesUpdates: number;
  aggregated: number;
  dropped: number;
  failed: number;
}

export interface EventRecorder {
  record(regarding: KubeObject, e: EventInput): void;
}

export class ApiEventRecorder implements EventRecorder {
  private readonly clock: Clock;
  private readonly bucket: TokenBucket;
  private readonly timing: AggregationTiming;
  private readonly series = new Map<string, SeriesState>();
  private readonly maxSeries: number;
  private readonly pending = new Set<Promise<void>>();
  readonly stats: RecorderStats = { created: 0, seriesUpdates: 0, aggregated: 0, dropped: 0, failed: 0 };

  constructor(private readonly o: EventRecorderOptions) {
    this.clock = o.clock ?? realClock;
    this.bucket = new TokenBucket(o.burst ?? 25, o.ratePerSecond ?? 1, this.clock);
    this.timing = { windowMs: 6 * 60_000, seriesUpdateIntervalMs: 30_000, ...o.timing };
    this.maxSeries = o.maxSeries ?? 4096;
  }

  /** Record an occurrence. Returns at once; the write happens in the background. */
  record(regarding: KubeObject, e: EventInput): void {
    const ref = objectReference(regarding);
    if (!ref.name || !ref.namespace) return; // only namespaced objects get Events here
    const now = this.clock.now();
    const key = aggregationKey(ref, e);
    const prev = this.series.get(key);
    const write = decideEventWrite(prev, now, this.timing);
    if (write === 'skip' && prev) {
      prev.count++;
      prev.lastSeen = now;
      this.stats.aggregated++;
      return;
    }
    if (!this.bucket.tryTake()) {
      this.stats.dropped++;
      if (prev && write === 'updateSeries') {
        prev.count++;
        prev.lastSeen = now;
      }
      this.o.logger.debug(
        { reason: e.reason, object: `${ref.namespace}/${ref.name}` },
        'event rate limit: dropped',
      );
      return;
    }
    const p =
      write === 'create' || !prev ? this.create(key, ref, e, now) : this.updateSeries(key, prev, ref, e, now);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Wait for writes in flight (graceful shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async create(key: string, ref: ObjectReference, e: EventInput, now: number): Promise<void> {
    // Object names may be 253 characters; leave room for the suffix.
    const name = `${(ref.name ?? '').slice(0, 220)}.${now.toString(16)}${randomBytes(3).toString('hex')}`;
    const state: SeriesState = {
      name,
      namespace: ref.namespace ?? '',
      count: 1,
      writtenCount: 1,
      firstSeen: now,
      lastSeen: now,
      lastWrite: now,
    };
    this.remember(key, state);
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: ref.namespace },
      eventTime: microTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.o.instance,
      action: e.action.slice(0, 128),
      reason: e.reason.slice(0, 128),
      type: e.type,
      note: e.note.length > MAX_NOTE ? `${e.note.slice(0, MAX_NOTE - 1)}…` : e.note,
      regarding: ref,
    };
    try {
      await this.o.api.request('POST', `/apis/events.k8s.io/v1/namespaces/${ref.namespace}/events`, {
        body,
        timeoutMs: 10_000,
      });
      this.stats.created++;
    } catch (err) {
      this.stats.failed++;
      this.series.delete(key);
      this.o.logger.warn(
        { reason: e.reason, object: `${ref.namespace}/${ref.name}`, err: describeError(err) },
        'could not record event',
      );
    }
  }

  private async updateSeries(
    key: string,
    prev: SeriesState,
    ref: ObjectReference,
    e: EventInput,
    now: number,
  ): Promise<void> {
    prev.count++;
    prev.lastSeen = now;
    prev.lastWrite = now;
    const count = prev.count;
    try {
      await this.o.api.request(
        'PATCH',
        `/apis/events.k8s.io/v1/namespaces/${prev.namespace}/events/${encodeURIComponent(prev.name)}`,
        {
          body: { series: { count, lastObservedTime: microTime(now) } },
          contentType: 'application/merge-patch+json',
          timeoutMs: 10_000,
        },
      );
      prev.writtenCount = count;
      this.stats.seriesUpdates++;
    } catch (err) {
      if (isNotFound(err)) {
        // The Event expired (the API server's event TTL) or was deleted: start a new one.
        this.series.delete(key);
        await this.create(key, ref, e, now);
        return;
      }
      this.stats.failed++;
      this.o.logger.warn(
        { reason: e.reason, event: prev.name, err: describeError(err) },
        'could not update event series',
      );
    }
  }

  private remember(key: string, state: SeriesState): void {
    this.series.delete(key);
    this.series.set(key, state);
    while (this.series.size > this.maxSeries) {
      const oldest = this.series.keys().next().value;
      if (oldest === undefined) break;
      this.series.delete(oldest);
    }
  }
}

/** A recorder that keeps events in memory (tests, dry runs). */
export class MemoryEventRecorder implements EventRecorder {
  readonly events: Array<{ regarding: ObjectReference } & EventInput> = [];
  record(regarding: KubeObject, e: EventInput): void {
    this.events.push({ regarding: objectReference(regarding), ...e });
  }
}
