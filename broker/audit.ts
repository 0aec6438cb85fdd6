/**
 * Audit events the broker ships to the authority (which persists them as AuditRecords). The entry
 * shape follows AuditRecord spec.entries so the authority stores them without translation. Events
 * never carry a credential, only its id.
 */
import type { Logger } from 'pino';
import type { AuditReplay } from '../core/api/index.js';

export interface BrokerAuditEvent {
  time: string;
  kind: 'Decision' | 'Credential' | 'Suspension';
  decision: 'Allow' | 'Deny';
  pod?: string;
  /** The user subject, or "agent acting alone". */
  user: string;
  target?: string;
  tool?: string;
  method?: string;
  path?: string;
  reasons?: Array<{ policy?: string; rule?: number; condition?: string; message: string }>;
  credentialId?: string;
  requestId?: string;
  policy?: string;
  /** core/policy or broker reason constant. */
  reason?: string;
  message?: string;
  /** Names (never values) of credential headers the agent sent and the broker stripped. */
  stripped?: string[];
  /** What the policy engine decided on, scrubbed and bounded (core/audit/replay.ts). */
  replay?: AuditReplay;
}

export interface AuditSink {
  record(event: BrokerAuditEvent): void;
}

/** Where batches go (the authority client in production). */
export interface AuditTransport {
  send(events: readonly BrokerAuditEvent[]): Promise<void>;
}

export interface AuditShipperOptions {
  readonly transport: AuditTransport;
  readonly log: Logger;
  /** Ship as soon as this many events are queued (default 100)... */
  readonly batchSize?: number;
  /** ...or after this long (default 1 s). */
  readonly flushIntervalMs?: number;
  /**
   * Most events in one request (default 500, the authority's limit, MAX_AUDIT_EVENTS): while one
   * request is in flight events pile up, and the next request takes them all, so the rate shipped
   * follows the rate decided however slow a round trip is.
   */
  readonly maxBatch?: number;
  /** Most bytes of events in one request (default 512 KiB, half the authority's 1 MiB body limit). */
  readonly maxBatchBytes?: number;
  /** Queue bound while the authority is unreachable; the oldest are dropped (and counted). */
  readonly maxQueued?: number;
}

/** Defaults of AuditShipperOptions. */
export const SHIPPER_DEFAULTS = {
  batchSize: 100,
  flushIntervalMs: 1000,
  maxBatch: 500,
  maxBatchBytes: 512 * 1024,
  maxQueued: 10_000,
} as const;

interface Queued {
  event: BrokerAuditEvent;
  /** Serialized size, so a request stays under the authority's body limit. */
  bytes: number;
}

/**
 * Pure: how many of the queue's first events go into the next request — at least one, at most
 * `maxBatch` events and `maxBatchBytes` bytes.
 */
export function nextBatchLength(
  queue: readonly { bytes: number }[],
  maxBatch: number,
  maxBatchBytes: number,
): number {
  let n = 0;
  let bytes = 0;
  while (n < queue.length && n < maxBatch) {
    const size = (queue[n] as { bytes: number }).bytes;
    if (n > 0 && bytes + size > maxBatchBytes) break;
    bytes += size;
    n++;
  }
  return n;
}

/**
 * Batches events and ships them, one request in flight at a time (the authority appends them to
 * the agent's chain in the order received); on failure keeps them (bounded) and retries with
 * backoff. A broker that cannot ship audit still works: decisions are not held hostage to the audit
 * path, but dropped events are counted and logged so the gap is visible.
 *
 * Throughput: a request that finishes with a batch's worth still queued is followed at once by
 * the next (not after the flush interval), and takes up to `maxBatch` events, so a backlog drains
 * at maxBatch per round trip.
 */
export class AuditShipper implements AuditSink {
  private queue: Queued[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private backoffMs = 0;
  private closed = false;
  private readonly o: Required<Omit<AuditShipperOptions, 'transport' | 'log'>>;
  dropped = 0;
  shipped = 0;

  constructor(private readonly opts: AuditShipperOptions) {
    this.o = {
      batchSize: opts.batchSize ?? SHIPPER_DEFAULTS.batchSize,
      flushIntervalMs: opts.flushIntervalMs ?? SHIPPER_DEFAULTS.flushIntervalMs,
      maxBatch: opts.maxBatch ?? SHIPPER_DEFAULTS.maxBatch,
      maxBatchBytes: opts.maxBatchBytes ?? SHIPPER_DEFAULTS.maxBatchBytes,
      maxQueued: opts.maxQueued ?? SHIPPER_DEFAULTS.maxQueued,
    };
  }

  /** Events waiting to be shipped. */
  get queued(): number {
    return this.queue.length;
  }

  record(event: BrokerAuditEvent): void {
    const bytes = Buffer.byteLength(JSON.stringify(event));
    if (bytes > this.o.maxBatchBytes) {
      // The authority would refuse every request carrying it, and the events behind it with it.
      this.dropped++;
      this.opts.log.error(
        { bytes, limit: this.o.maxBatchBytes, requestId: event.requestId, dropped: this.dropped },
        'audit event too large to ship; dropped',
      );
      return;
    }
    this.queue.push({ event, bytes });
    if (this.queue.length > this.o.maxQueued) {
      const n = this.queue.length - this.o.maxQueued;
      this.queue.splice(0, n);
      this.dropped += n;
    }
    // A request in flight continues with the queue when it finishes.
    if (this.sending) return;
    if (this.queue.length >= this.o.batchSize && this.backoffMs === 0) void this.flush();
    else this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void this.flush();
      },
      Math.max(this.o.flushIntervalMs, this.backoffMs),
    );
    this.timer.unref();
  }

  /** Send what is queued now (one request in flight at a time). */
  async flush(): Promise<void> {
    if (this.sending) return this.sending;
    if (this.queue.length === 0) return;
    const taken = this.queue.splice(0, nextBatchLength(this.queue, this.o.maxBatch, this.o.maxBatchBytes));
    this.sending = this.opts.transport
      .send(taken.map((q) => q.event))
      .then(() => {
        this.shipped += taken.length;
        this.backoffMs = 0;
      })
      .catch((err: unknown) => {
        this.queue.unshift(...taken);
        this.backoffMs = Math.min(30_000, Math.max(1000, this.backoffMs * 2));
        this.opts.log.warn(
          {
            err: err instanceof Error ? err.message : String(err),
            queued: this.queue.length,
            dropped: this.dropped,
          },
          'audit shipping failed; will retry',
        );
      })
      .finally(() => {
        this.sending = null;
        if (this.backoffMs === 0 && this.queue.length >= this.o.batchSize) void this.flush();
        else if (this.queue.length > 0) this.schedule();
      });
    return this.sending;
  }

  /** Stop the timer and ship what is queued, until done or a request fails. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length > 0 || this.sending) {
      await this.flush();
      if (this.backoffMs > 0) return;
    }
  }
}

/** Keeps events in memory (tests; also the in-process view for counters). Bounded. */
export class MemoryAuditSink implements AuditSink {
  readonly events: BrokerAuditEvent[] = [];
  constructor(private readonly max = 10_000) {}
  record(event: BrokerAuditEvent): void {
    this.events.push(event);
    if (this.events.length > this.max) this.events.shift();
  }
}
