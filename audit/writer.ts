/**
 * The AuditRecord writer: the authority's audit events become immutable, hash-chained
 * AuditRecord objects, batched per agent (core/audit/batcher.ts).
 *
 * Nothing is lost silently: a failed write puts its batch back and is retried with
 * backoff (e.g. while the API server is down); past `maxBuffered` entries the oldest
 * are shed, counted in `stats().dropped` and logged. Several authority replicas may
 * write the same agent's chain: a record's name is derived from its sequence, so
 * `create` is the compare-and-set — the loser of a race gets 409, catches up with
 * the chain (a GET by name per record written since) and writes its batch at the next
 * sequence. A write whose response was lost is found the same way and not written twice.
 *
 * Throughput: each chain drains on its own — a write that finishes with a full batch (or, when
 * flushing everything, any entry) still pending starts the next at once, without waiting for the
 * flush timer or for other chains' writes. One write per chain is in flight at a time: a record
 * links to the digest of the previous one, which must exist before the next can claim to follow
 * it (another replica may take the sequence).
 */
import type { Logger } from 'pino';
import type { AuditEntry, AuditRecord, AuditRecordSpec } from '../core/api/index.js';
import { AuditBatcher, type BatchLimits, DEFAULT_BATCH_LIMITS } from '../core/audit/batcher.js';
import { canonicalJson, recordName, sealRecord } from '../core/audit/chain.js';
import { API_VERSION, GROUP, LABEL_AGENT, PLURAL, VERSION } from '../core/constants.js';
import { describeError, isTerminal } from '../kube/errors.js';
import { ApiError, type KubeApi, type ObjectList, resourcePath } from '../kube/kube.js';
import type { AuditResult } from '../observability/metrics.js';

const AUDIT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AuditRecord };

export { agentLabelValue } from '../core/audit/labels.js';

import { agentLabelValue } from '../core/audit/labels.js';

interface ChainHead {
  sequence: number;
  digest: string;
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
  /** Counts entries written and dropped (warden_audit_entries_total, docs/adr/0010-metrics.md). */
  metrics?: { auditEntries(result: AuditResult, count?: number): void };
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
  /** The last record written per chain, as far as this writer knows. */
  private readonly heads = new Map<string, ChainHead>();
  /** Chains whose cached head may be behind (a contested or failed write): caught up before writing. */
  private readonly unsure = new Set<string>();
  /** Chains being drained, each by one loop (drain) that writes one record at a time. */
  private readonly draining = new Map<string, Promise<void>>();
  private readonly retryAt = new Map<string, { at: number; delay: number }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly counters = { written: 0, records: 0, dropped: 0, failures: 0 };
  /** Entries in the batcher, kept here so record() does not count every chain's queue per entry. */
  private buffered = 0;
  private readonly now: () => number;

  constructor(private readonly opts: AuditWriterOptions) {
    this.batcher = new AuditBatcher(opts.limits ?? DEFAULT_BATCH_LIMITS);
    this.now = opts.now ?? Date.now;
  }

  /** Queues one entry for an agent's chain. Never throws; never blocks. */
  record(namespace: string, agent: string, entry: AuditEntry): void {
    const key = `${namespace}/${agent}`;
    const full = this.batcher.add(key, entry, this.now());
    this.buffered++;
    const max = this.opts.maxBuffered ?? 100_000;
    if (this.buffered > max) {
      const lost = this.batcher.shedByChain(max);
      let dropped = 0;
      for (const [chain, n] of lost) {
        dropped += n;
        const [ns = '', name = ''] = chain.split('/');
        this.opts.onDropped?.(ns, name, n);
      }
      this.buffered -= dropped;
      this.dropped(dropped);
      this.opts.log.error(
        { dropped, totalDropped: this.counters.dropped },
        'audit buffer full: dropped oldest entries',
      );
    }
    // A chain already draining picks the new batch up when its write finishes.
    if (full && !this.draining.has(key) && (this.retryAt.get(key)?.at ?? 0) <= this.now()) {
      void this.drain(key, false);
    }
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
    while (this.buffered > 0 && this.now() < deadline) {
      await this.flush(true);
      if (this.buffered > 0) await new Promise((r) => setTimeout(r, 200));
    }
    await Promise.all(this.draining.values());
    const left = this.buffered;
    if (left > 0) {
      this.dropped(left);
      this.opts.log.error({ dropped: left }, 'audit writer stopped with unwritten entries');
    }
  }

  stats(): AuditWriterStats {
    return { buffered: this.buffered, ...this.counters };
  }

  /**
   * Writes every due batch (or everything pending, when `all`, regardless of retry backoff);
   * resolves when those chains are drained or a write of theirs failed.
   */
  async flush(all = false): Promise<void> {
    const now = this.now();
    // Chains being written count as pending: their batch left the batcher when the write began.
    const keys = all
      ? [...new Set([...this.batcher.keys(), ...this.draining.keys()])]
      : this.batcher.due(now);
    await Promise.all(
      keys
        .filter((k) => all || (this.retryAt.get(k)?.at ?? 0) <= now)
        .map(async (k) => {
          // A drain already running may stop at a batch that is not due; `all` goes on after it.
          const running = this.draining.get(k);
          if (running) await running;
          if (all || !running) await this.drain(k, all);
        }),
    );
  }

  /** The one loop writing a chain: record after record while a batch is due (any, when `all`). */
  private drain(key: string, all: boolean): Promise<void> {
    const running = this.draining.get(key);
    if (running) return running;
    const loop = (async () => {
      try {
        for (;;) {
          if (!(await this.writeChain(key))) return;
          const pending = all ? this.batcher.keys() : this.batcher.due(this.now());
          if (!pending.includes(key)) return;
        }
      } finally {
        this.draining.delete(key);
      }
    })();
    this.draining.set(key, loop);
    return loop;
  }

  private written(batch: readonly AuditEntry[]): void {
    this.counters.written += batch.length;
    this.counters.records++;
    this.opts.metrics?.auditEntries('written', batch.length);
  }

  private dropped(n: number): void {
    if (n <= 0) return;
    this.counters.dropped += n;
    this.opts.metrics?.auditEntries('dropped', n);
  }

  /** Writes the chain's next batch as one record; false when it failed (the batch is put back). */
  private async writeChain(key: string): Promise<boolean> {
    const [namespace = '', agent = ''] = key.split('/');
    const batch = this.batcher.take(key, this.now());
    if (batch.length === 0) return false;
    this.buffered -= batch.length;
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        let head = this.heads.get(key);
        let headEntries: string | undefined;
        if (!head) {
          const read = await this.readHead(namespace, agent);
          head = read && { sequence: read.sequence, digest: read.digest };
          headEntries = read?.entries;
        }
        if (this.unsure.has(key)) {
          const batchJson = canonicalJson(batch);
          const caught = await this.catchUp(namespace, agent, head, batchJson);
          head = caught.head;
          if (head) this.heads.set(key, head);
          this.unsure.delete(key);
          // A write whose response was lost (API server stopping mid-request) may have landed.
          if (caught.landed || headEntries === batchJson) {
            this.written(batch);
            this.retryAt.delete(key);
            return true;
          }
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
          this.written(batch);
          this.retryAt.delete(key);
          return true;
        } catch (err) {
          // Another writer took this sequence: catch up with the chain and try the next one.
          if (err instanceof ApiError && err.code === 409) {
            this.unsure.add(key);
            continue;
          }
          throw err;
        }
      }
      throw new Error(`audit chain ${key}: lost the create race 5 times in a row`);
    } catch (err) {
      this.counters.failures++;
      if (isTerminal(err)) {
        // The API server refused the record's content (schema or validation rule): retrying the
        // same batch can never succeed and would hold back every later entry of this agent.
        // Drop it, count it and say so loudly; the chain continues with the next batch.
        this.retryAt.delete(key);
        this.dropped(batch.length);
        this.opts.onDropped?.(namespace, agent, batch.length);
        this.opts.log.error(
          { chain: key, entries: batch.length, err: describeError(err) },
          'audit record refused by the API server as invalid: its entries are dropped',
        );
        return false;
      }
      // The write may have landed without our hearing of it: check before the next one.
      this.unsure.add(key);
      this.batcher.putBack(key, batch, this.now());
      this.buffered += batch.length;
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
      return false;
    }
  }

  /**
   * Walks the chain forward from a cached head, one GET by name per record written since (by
   * another replica, or by us when a response was lost), rather than listing the whole chain:
   * a chain of a busy agent holds hundreds of records of hundreds of entries, and listing it
   * after every contested or failed write stalled the writer under load. `landed` says whether
   * one of those records holds exactly `batchJson`.
   */
  private async catchUp(
    namespace: string,
    agent: string,
    from: ChainHead | undefined,
    batchJson: string,
  ): Promise<{ head: ChainHead | undefined; landed: boolean }> {
    let head = from;
    let landed = false;
    for (;;) {
      const sequence = head ? head.sequence + 1 : 0;
      const name = recordName(agent, sequence);
      let next: AuditRecord;
      try {
        next = await this.opts.api.request<AuditRecord>('GET', resourcePath(AUDIT_REF, namespace, name));
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) return { head, landed };
        throw err;
      }
      if (next.spec.agent !== agent || next.spec.sequence !== sequence) {
        throw new Error(
          `audit chain ${namespace}/${agent}: ${name} is not record ${sequence} of this agent (agent ${next.spec.agent}, sequence ${next.spec.sequence})`,
        );
      }
      head = { sequence, digest: next.spec.digest };
      if (!landed && canonicalJson(next.spec.entries) === batchJson) landed = true;
    }
  }

  /** The newest record of a chain from a list (once per chain, when no head is cached), with its entries' canonical JSON. */
  private async readHead(
    namespace: string,
    agent: string,
  ): Promise<(ChainHead & { entries: string }) | undefined> {
    const list = await this.opts.api.request<ObjectList<AuditRecord>>(
      'GET',
      resourcePath(AUDIT_REF, namespace),
      {
        query: { labelSelector: `${LABEL_AGENT}=${agentLabelValue(agent)}` },
      },
    );
    let newest: AuditRecord | undefined;
    for (const r of list.items) {
      if (r.spec.agent !== agent) continue;
      if (!newest || r.spec.sequence > newest.spec.sequence) newest = r;
    }
    return (
      newest && {
        sequence: newest.spec.sequence,
        digest: newest.spec.digest,
        entries: canonicalJson(newest.spec.entries),
      }
    );
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
