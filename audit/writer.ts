/**
 * The AuditRecord writer: the authority's audit events become immutable, hash-chained
 * AuditRecord objects, batched per agent (core/audit/batcher.ts).
 *
 * Nothing is lost silently: a failed write puts its batch back and is retried with
 * backoff (e.g. while the API server is down); past `maxBuffered` entries the oldest
 * are shed, counted in `stats().dropped` and logged. Several authority replicas may
 * write the same agent's chain: a record's name is derived from its sequence, so
 * `create` is the compare-and-set — the loser of a race gets 409, re-reads the
 * chain's head and writes its batch at the next sequence.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEntry, AuditRecord, AuditRecordSpec } from '../core/api/index.js';
import { AuditBatcher, type BatchLimits, DEFAULT_BATCH_LIMITS } from '../core/audit/batcher.js';
import { canonicalJson, recordName, sealRecord } from '../core/audit/chain.js';
import { API_VERSION, GROUP, LABEL_AGENT, PLURAL, VERSION } from '../core/constants.js';
import { ApiError, type KubeApi, type ObjectList, resourcePath } from '../operator/core/kube.js';

const AUDIT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AuditRecord };

/** Label values are at most 63 characters; long agent names are hashed. */
export function agentLabelValue(agent: string): string {
  return agent.length <= 63 ? agent : `h-${createHash('sha256').update(agent).digest('hex').slice(0, 40)}`;
}

interface ChainHead {
  sequence: number;
  digest: string;
  /** Canonical JSON of the head's entries, when read from the API (see writeChain). */
  entries?: string;
}

export interface AuditWriterOptions {
  api: KubeApi;
  log: Logger;
  limits?: BatchLimits;
  /** Entries kept in memory while the API server is unreachable before the oldest are shed. */
  maxBuffered?: number;
  /** How often due batches are flushed. */
  flushIntervalMs?: number;
  now?: () => number;
  /** Told which chain lost how many entries when the buffer overflowed (for an Event per agent). */
  onDropped?: (namespace: string, agent: string, count: number) => void;
}

export interface AuditWriterStats {
  buffered: number;
  written: number;
  records: number;
  dropped: number;
  failures: number;
}

export class AuditWriter {
  private readonly batcher: AuditBatcher;
  private readonly heads = new Map<string, ChainHead>();
  private readonly inFlight = new Set<string>();
  private readonly retryAt = new Map<string, { at: number; delay: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly counters = { written: 0, records: 0, dropped: 0, failures: 0 };
  private readonly now: () => number;

  constructor(private readonly opts: AuditWriterOptions) {
    this.batcher = new AuditBatcher(opts.limits ?? DEFAULT_BATCH_LIMITS);
    this.now = opts.now ?? Date.now;
  }

  /** Queues one entry for an agent's chain. Never throws; never blocks. */
  record(namespace: string, agent: string, entry: AuditEntry): void {
    const key = `${namespace}/${agent}`;
    const full = this.batcher.add(key, entry, this.now());
    const max = this.opts.maxBuffered ?? 100_000;
    if (this.batcher.size() > max) {
      const lost = this.batcher.shedByChain(max);
      let dropped = 0;
      for (const [chain, n] of lost) {
        dropped += n;
        const [ns = '', name = ''] = chain.split('/');
        this.opts.onDropped?.(ns, name, n);
      }
      this.counters.dropped += dropped;
      this.opts.log.error(
        { dropped, totalDropped: this.counters.dropped },
        'audit buffer full: dropped oldest entries',
      );
    }
    if (full) void this.flush();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.opts.flushIntervalMs ?? 500);
    this.timer.unref();
  }

  /** Stops the timer and writes everything pending, giving up after `deadlineMs`. */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const deadline = this.now() + deadlineMs;
    while (this.batcher.size() > 0 && this.now() < deadline) {
      await this.flush(true);
      if (this.batcher.size() > 0) await new Promise((r) => setTimeout(r, 200));
    }
    const left = this.batcher.size();
    if (left > 0) {
      this.counters.dropped += left;
      this.opts.log.error({ dropped: left }, 'audit writer stopped with unwritten entries');
    }
  }

  stats(): AuditWriterStats {
    return { buffered: this.batcher.size(), ...this.counters };
  }

  /** Writes every due batch (or all, when `all`). Serialised: one flush at a time. */
  flush(all = false): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce(all));
    return this.flushing;
  }

  private async flushOnce(all: boolean): Promise<void> {
    const now = this.now();
    const keys = all ? this.batcher.keys() : this.batcher.due(now);
    await Promise.all(
      keys
        .filter((k) => !this.inFlight.has(k) && (all || (this.retryAt.get(k)?.at ?? 0) <= now))
        .map((k) => this.writeChain(k)),
    );
  }

  private async writeChain(key: string): Promise<void> {
    this.inFlight.add(key);
    const [namespace = '', agent = ''] = key.split('/');
    const batch = this.batcher.take(key, this.now());
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const head = this.heads.get(key) ?? (await this.readHead(namespace, agent));
        // A write whose response was lost (API server stopping mid-request) may have
        // landed: if the head already holds exactly this batch, it is written.
        if (head?.entries !== undefined && head.entries === canonicalJson(batch)) {
          this.heads.set(key, { sequence: head.sequence, digest: head.digest });
          this.counters.written += batch.length;
          this.counters.records++;
          this.retryAt.delete(key);
          return;
        }
        const spec = sealRecord({
          agent,
          sequence: head ? head.sequence + 1 : 0,
          previousDigest: head?.digest ?? '',
          entries: batch,
        });
        try {
          await this.create(namespace, spec);
          this.heads.set(key, { sequence: spec.sequence, digest: spec.digest });
          this.counters.written += batch.length;
          this.counters.records++;
          this.retryAt.delete(key);
          return;
        } catch (err) {
          // Another writer took this sequence: forget the cached head and try the next one.
          if (err instanceof ApiError && err.code === 409) {
            this.heads.delete(key);
            continue;
          }
          throw err;
        }
      }
      throw new Error(`audit chain ${key}: lost the create race 5 times in a row`);
    } catch (err) {
      this.counters.failures++;
      this.heads.delete(key);
      this.batcher.putBack(key, batch, this.now());
      const prev = this.retryAt.get(key)?.delay ?? 0;
      const delay = Math.min(prev ? prev * 2 : 500, 30_000);
      this.retryAt.set(key, { at: this.now() + delay, delay });
      this.opts.log.warn(
        {
          chain: key,
          entries: batch.length,
          retryInMs: delay,
          err: err instanceof Error ? err.message : String(err),
        },
        'audit write failed; will retry',
      );
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async readHead(namespace: string, agent: string): Promise<ChainHead | undefined> {
    const list = await this.opts.api.request<ObjectList<AuditRecord>>(
      'GET',
      resourcePath(AUDIT_REF, namespace),
      {
        query: { labelSelector: `${LABEL_AGENT}=${agentLabelValue(agent)}` },
      },
    );
    let head: ChainHead | undefined;
    for (const r of list.items) {
      if (r.spec.agent !== agent) continue;
      if (!head || r.spec.sequence > head.sequence)
        head = { sequence: r.spec.sequence, digest: r.spec.digest };
    }
    return head;
  }

  private async create(namespace: string, spec: AuditRecordSpec): Promise<void> {
    const body: AuditRecord = {
      apiVersion: API_VERSION,
      kind: 'AuditRecord',
      metadata: {
        name: recordName(spec.agent, spec.sequence),
        namespace,
        labels: { [LABEL_AGENT]: agentLabelValue(spec.agent) },
      },
      spec,
    };
    await this.opts.api.request('POST', resourcePath(AUDIT_REF, namespace), { body });
  }
}
