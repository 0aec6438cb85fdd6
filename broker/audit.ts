/**
 * Audit events the broker ships to the authority (which persists them as AuditRecords). The entry
 * shape follows AuditRecord spec.entries so the authority stores them without translation. Events
 * never carry a credential, only its id.
 */
import type { Logger } from 'pino';

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
  /** Flush at this many events. */
  readonly batchSize?: number;
  /** ...or after this long. */
  readonly flushIntervalMs?: number;
  /** Queue bound while the authority is unreachable; the oldest are dropped (and counted). */
  readonly maxQueued?: number;
}

/**
 * Batches events and ships them; on failure keeps them (bounded) and retries with backoff. A
 * broker that cannot ship audit still works: decisions are not held hostage to the audit path, but
 * dropped events are counted and logged so the gap is visible.
 */
export class AuditShipper implements AuditSink {
  private queue: BrokerAuditEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private backoffMs = 0;
  dropped = 0;
  shipped = 0;

  constructor(private readonly opts: AuditShipperOptions) {}

  record(event: BrokerAuditEvent): void {
    this.queue.push(event);
    const max = this.opts.maxQueued ?? 10_000;
    if (this.queue.length > max) {
      const n = this.queue.length - max;
      this.queue.splice(0, n);
      this.dropped += n;
    }
    if (this.queue.length >= (this.opts.batchSize ?? 100) && this.backoffMs === 0) void this.flush();
    else this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void this.flush();
      },
      Math.max(this.opts.flushIntervalMs ?? 1000, this.backoffMs),
    );
    this.timer.unref();
  }

  /** Send what is queued now (one batch in flight at a time). */
  async flush(): Promise<void> {
    if (this.sending) return this.sending;
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.opts.batchSize ?? 100);
    this.sending = this.opts.transport
      .send(batch)
      .then(() => {
        this.shipped += batch.length;
        this.backoffMs = 0;
      })
      .catch((err: unknown) => {
        this.queue.unshift(...batch);
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
        if (this.queue.length > 0) this.schedule();
      });
    return this.sending;
  }

  /** Stop the timer and try one last flush. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
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
