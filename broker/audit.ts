/**
 * Audit events the broker ships to the authority (which persists them as AuditRecords). The entry
 * shape follows AuditRecord spec.entries so the authority stores them without translation. Events
 * never carry a credential, only its id. Kept in a queue — the spool on disk (broker/spool.ts) in
 * an injected broker — until the authority acknowledges them persisted.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditReplay } from '../core/api/index.js';
import { formatEntryId } from '../core/audit/entry-id.js';

export interface BrokerAuditEvent {
  time: string;
  kind: 'Decision' | 'Credential' | 'Suspension';
  decision: 'Allow' | 'Deny';
  pod?: string;
  /** The user subject, or "agent acting alone". */
  user: string;
  /** The trusted issuer of the verified user (core/audit/user.ts: the authority records the same pair). */
  userIssuer?: string;
  /**
   * A delegated call: the agents it came through, origin first, this agent last — once the
   * authority verified the caller's token for this call (it issued the call's credential).
   */
  chain?: Array<{ name: string; namespace: string }>;
  /** The same, as the token claims it, when nobody verified the token for this call (a Deny before). */
  claimedChain?: Array<{ name: string; namespace: string }>;
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

/** The decision could not be recorded (spool full or unwritable, event too large). */
export class AuditUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditUnavailableError';
  }
}

export interface AuditSink {
  /**
   * Records one decision. A returned promise resolves once the entry is kept where it survives a
   * crash of the broker (the spool), and rejects with AuditUnavailableError when it cannot be:
   * the access pipeline answers the agent only after it settled (broker/access.ts).
   */
  record(event: BrokerAuditEvent): void | Promise<void>;
  /**
   * Tells the authority of an event that could not be recorded (a call denied AuditUnavailable):
   * shipped from memory, best effort, without an id — for its counters and Event, not the proof.
   */
  notice?(event: BrokerAuditEvent): void;
}

/** Where batches go (the authority client in production). */
export interface AuditTransport {
  /**
   * Resolves once the authority acknowledged them: persisted in AuditRecords. `resent`: some of them
   * may have reached an authority before (a request that failed or went unanswered, an earlier
   * process's spool), so the authority reads what other replicas wrote before it admits them.
   */
  send(events: readonly BrokerAuditEvent[], opts?: { resent?: boolean }): Promise<void>;
}

/** An entry with its id (core/audit/entry-id.ts): the authority writes a shipped-again entry once. */
export type SpooledEvent = BrokerAuditEvent & { id: string };

/**
 * Where the shipper keeps entries until the authority acknowledges them: the spool on disk
 * (broker/spool.ts) or, without one, memory (MemoryAuditQueue). Oldest first.
 */
export interface AuditQueue {
  /**
   * Keeps one entry; resolves once it is kept (on disk for the spool). `json`: the entry as
   * JSON.stringify wrote it, when the caller has it already.
   */
  append(event: SpooledEvent, json?: string): void | Promise<void>;
  /** The oldest entries: at most `maxEvents` and `maxBytes` (at least one); `count` to ack them. */
  peek(maxEvents: number, maxBytes: number): Promise<{ events: SpooledEvent[]; count: number }>;
  /** The `count` oldest entries were acknowledged: they go. */
  ack(count: number): void | Promise<void>;
  readonly length: number;
}

export interface AuditShipperOptions {
  readonly transport: AuditTransport;
  readonly log: Logger;
  /** Where entries wait for the authority's acknowledgement (default: memory, maxQueued). */
  readonly queue?: AuditQueue;
  /** This process's id source (16 hex digits; default random). */
  readonly source?: string;
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
  /** Memory queue bound while the authority is unreachable; the oldest are dropped (and counted). */
  readonly maxQueued?: number;
}

/** Notices kept in memory for the authority; the oldest are given up past this. */
const MAX_NOTICES = 100;

/** Defaults of AuditShipperOptions. */
export const SHIPPER_DEFAULTS = {
  batchSize: 100,
  flushIntervalMs: 1000,
  maxBatch: 500,
  maxBatchBytes: 512 * 1024,
  maxQueued: 10_000,
} as const;

interface Queued {
  event: SpooledEvent;
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
 * The queue of a broker without a spool (local runs, tests): in memory, lost with the process,
 * bounded — past `max` the oldest entries are dropped and counted.
 */
export class MemoryAuditQueue implements AuditQueue {
  private readonly queue: Queued[] = [];
  dropped = 0;
  constructor(private readonly max: number = SHIPPER_DEFAULTS.maxQueued) {}
  get length(): number {
    return this.queue.length;
  }
  append(event: SpooledEvent): void {
    this.queue.push({ event, bytes: Buffer.byteLength(JSON.stringify(event)) });
    if (this.queue.length > this.max) {
      const n = this.queue.length - this.max;
      this.queue.splice(0, n);
      this.dropped += n;
    }
  }
  async peek(maxEvents: number, maxBytes: number): Promise<{ events: SpooledEvent[]; count: number }> {
    const n = nextBatchLength(this.queue, maxEvents, maxBytes);
    return { events: this.queue.slice(0, n).map((q) => q.event), count: n };
  }
  ack(count: number): void {
    this.queue.splice(0, count);
  }
}

/**
 * Gives every event an id, keeps it in the queue (the spool: on disk before the answer goes out)
 * and ships batches, one request in flight at a time (the authority appends them to the agent's
 * chain in the order received). An entry leaves the queue only once the authority acknowledged
 * it (persisted); on failure the same entries are shipped again with backoff, and their ids make
 * that idempotent. A full or broken queue rejects record() with AuditUnavailableError: the access
 * pipeline then denies (audit mode Required) or answers and counts the loss (BestEffort).
 *
 * Throughput: a request that finishes with a batch's worth still queued is followed at once by
 * the next (not after the flush interval), and takes up to `maxBatch` events, so a backlog drains
 * at maxBatch per round trip.
 */
export class AuditShipper implements AuditSink {
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private backoffMs = 0;
  private closed = false;
  private sequence = 0;
  /** The queue's head may have reached an authority already (a failed request, a spool found). */
  private resent = false;
  private readonly queue: AuditQueue;
  private readonly source: string;
  private readonly o: Required<Omit<AuditShipperOptions, 'transport' | 'log' | 'queue' | 'source'>>;
  /** Events refused before they were queued (too large for any request). */
  tooLarge = 0;
  shipped = 0;
  /** Notices (calls denied AuditUnavailable) waiting, in memory, bounded; and those given up. */
  private readonly notices: BrokerAuditEvent[] = [];
  noticesDropped = 0;

  constructor(private readonly opts: AuditShipperOptions) {
    this.o = {
      batchSize: opts.batchSize ?? SHIPPER_DEFAULTS.batchSize,
      flushIntervalMs: opts.flushIntervalMs ?? SHIPPER_DEFAULTS.flushIntervalMs,
      maxBatch: opts.maxBatch ?? SHIPPER_DEFAULTS.maxBatch,
      maxBatchBytes: opts.maxBatchBytes ?? SHIPPER_DEFAULTS.maxBatchBytes,
      maxQueued: opts.maxQueued ?? SHIPPER_DEFAULTS.maxQueued,
    };
    this.queue = opts.queue ?? new MemoryAuditQueue(this.o.maxQueued);
    this.source = opts.source ?? randomBytes(8).toString('hex');
    // An earlier process's entries (a restarted broker on the same spool) go out first.
    if (this.queue.length > 0) {
      this.resent = true;
      this.schedule();
    }
  }

  /** Events waiting to be shipped. */
  get queued(): number {
    return this.queue.length;
  }

  /** Events the memory queue dropped (the spool refuses instead: record() rejects). */
  get dropped(): number {
    return this.tooLarge + (this.queue instanceof MemoryAuditQueue ? this.queue.dropped : 0);
  }

  async record(event: BrokerAuditEvent): Promise<void> {
    const spooled: SpooledEvent = { ...event, id: formatEntryId(this.source, ++this.sequence) };
    const json = JSON.stringify(spooled);
    const bytes = Buffer.byteLength(json);
    if (bytes > this.o.maxBatchBytes) {
      // The authority would refuse every request carrying it, and the events behind it with it.
      this.tooLarge++;
      this.opts.log.error(
        { bytes, limit: this.o.maxBatchBytes, requestId: event.requestId, dropped: this.dropped },
        'audit event too large to ship; dropped',
      );
      throw new AuditUnavailableError(`the audit entry is ${bytes} bytes, more than ${this.o.maxBatchBytes}`);
    }
    const kept = this.queue.append(spooled, json);
    this.trigger();
    await kept;
  }

  notice(event: BrokerAuditEvent): void {
    this.notices.push(event);
    if (this.notices.length > MAX_NOTICES) this.noticesDropped += this.notices.splice(0, 1).length;
    this.trigger();
  }

  private trigger(): void {
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
    if (this.queue.length === 0 && this.notices.length === 0) return;
    this.sending = this.ship().finally(() => {
      this.sending = null;
      if (this.backoffMs === 0 && this.queue.length >= this.o.batchSize) void this.flush();
      else if (this.queue.length > 0 || this.notices.length > 0) this.schedule();
    });
    return this.sending;
  }

  private async ship(): Promise<void> {
    try {
      if (this.queue.length > 0) {
        const { events, count } = await this.queue.peek(this.o.maxBatch, this.o.maxBatchBytes);
        if (events.length > 0) {
          // Marked before the answer: a request that fails may still have been persisted or exported.
          const resent = this.resent;
          this.resent = true;
          await this.opts.transport.send(events, resent ? { resent } : undefined);
          this.resent = false;
        }
        await this.queue.ack(count);
        this.shipped += events.length;
      }
      this.backoffMs = 0;
      if (this.notices.length > 0) {
        // One attempt each: a notice shipped twice would be counted twice (it has no id).
        const taken = this.notices.splice(0, this.o.maxBatch);
        await this.opts.transport.send(taken).catch(() => {
          this.noticesDropped += taken.length;
        });
      }
    } catch (err) {
      this.backoffMs = Math.min(30_000, Math.max(1000, this.backoffMs * 2));
      this.opts.log.warn(
        {
          err: err instanceof Error ? err.message : String(err),
          queued: this.queue.length,
          dropped: this.dropped,
        },
        'audit shipping failed; will retry',
      );
    }
  }

  /** Stop the timer and ship what is queued, until done or a request fails. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length > 0 || this.notices.length > 0 || this.sending) {
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
