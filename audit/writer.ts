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
 *
 * Signed and anchored (docs/adr/0012-audit-signing.md): every record carries the controller's
 * signature, and after each write the chain head (sequence + digest, signed) is anchored in the
 * AgentIdentity's status.audit.head, where only the controller writes. The writer never chains
 * onto a record it did not sign: a record without a valid signature where it was about to write
 * (someone allowed to create AuditRecords, linking to the newest digest) is reported (onForged →
 * Event + status.audit.forged) and its slot skipped; the next record links to the last genuine
 * one. When the newest records were deleted, the writer continues from its anchored head.
 *
 * Acknowledged writes (recordPersisted): a broker's /v1/audit batch is answered only once every
 * entry of it is in an AuditRecord, so the broker may then delete it from its spool. Such a chain
 * is written at once (the entries that arrive while one record is being created form the next:
 * group commit), not after the flush interval. Entries carry the broker's ids: before each record
 * the writer drops the entries the chain already holds (core/audit/entry-id.ts), with the
 * watermarks learnt from the records it wrote, found (locate) or walked past (catchUp) — so a
 * batch shipped twice, to this replica or another, or to a new leader after a crash, is written once.
 *
 * One delivery per entry (admit): /v1/audit asks the writer, before anything else sees a shipped
 * batch, which of its entries the trail neither holds (the same watermarks) nor is writing (the
 * entries admitted and not yet persisted); only those are exported and counted. A chain met for the
 * first time is located first (a new leader learns what its predecessor persisted), and a batch the
 * broker marks as shipped again walks the chain past records other replicas wrote since.
 */
import type { Logger } from 'pino';
import type { AgentIdentity, AuditEntry, AuditRecord, AuditRecordSpec } from '../core/api/index.js';
import { AuditBatcher, type BatchLimits, DEFAULT_BATCH_LIMITS } from '../core/audit/batcher.js';
import { canonicalJson, GENESIS_DIGEST, recordName, sealRecord } from '../core/audit/chain.js';
import { dedupe, noteEntries, type Watermarks } from '../core/audit/entry-id.js';
import { type AuditKeys, type ChainHead, signHead, signRecord } from '../core/audit/signature.js';
import { createdBeforeSigning } from '../core/audit/verify.js';
import { API_VERSION, AUDIT_FIELD_MANAGER, GROUP, LABEL_AGENT, PLURAL, VERSION } from '../core/constants.js';
import { describeError, isTerminal } from '../kube/errors.js';
import { ApiError, type KubeApi, type ObjectList, resourcePath } from '../kube/kube.js';
import type { AuditResult } from '../observability/metrics.js';

const AUDIT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AuditRecord };
const AGENT_REF = { group: GROUP, version: VERSION, plural: PLURAL.AgentIdentity };

export { agentLabelValue } from '../core/audit/labels.js';

import { agentLabelValue, auditRecordLabels } from '../core/audit/labels.js';

/** Key of a broker entry being written: chain, pod (the session's) and id; none without an id. */
function inflightKey(chain: string, e: AuditEntry): string | undefined {
  return e.id === undefined || e.id === '' ? undefined : `${chain}\n${e.pod ?? ''}\n${e.id}`;
}

/**
 * Where a chain continues: the last genuine record (the controller's, or legacy from before
 * signing) and the next free sequence (past slots forged records took).
 */
interface ChainPosition {
  head?: ChainHead;
  next: number;
}

const after = (head: ChainHead | undefined): ChainPosition =>
  head ? { head, next: head.sequence + 1 } : { next: 0 };

export interface AuditWriterOptions {
  api: KubeApi;
  log: Logger;
  /** Signs records and heads; verifies records found in the chain (audit/keyset.ts). */
  keys: AuditKeys;
  /**
   * Told of a record without the controller's valid signature found where the writer was about to
   * write (once per record and process), for an Event and status.audit.forged.
   */
  onForged?: (namespace: string, agent: string, record: string, reason: string) => void;
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

/**
 * One waiter for a set of entries: resolved when the last of them is settled — true when every one
 * is in an AuditRecord, false when any was refused by the API server as invalid (dropped, counted).
 */
interface Ticket {
  left: number;
  refused: boolean;
  resolve(written: boolean): void;
}

/** Sources remembered per chain (one per broker process); the oldest are forgotten past this. */
const MAX_SOURCES_PER_CHAIN = 4096;
/** Newest records of a chain whose entry ids a writer learns when it first meets the chain. */
const DEDUPE_RECORDS = 256;
/** How long a chain with waiters is written eagerly after the last waiter arrived. */
const URGENT_MS = 30_000;

export class AuditWriter {
  private readonly batcher: AuditBatcher;
  /** Where each chain continues, as far as this writer knows. */
  private readonly positions = new Map<string, ChainPosition>();
  /** Heads to anchor in AgentIdentity status, per chain (the newest wins). */
  private readonly anchorWanted = new Map<string, ChainHead>();
  private readonly anchoring = new Map<string, Promise<void>>();
  /** Forged records already reported by this process. */
  private readonly reported = new Set<string>();
  /** Chains whose cached head may be behind (a contested or failed write): caught up before writing. */
  private readonly unsure = new Set<string>();
  /** Chains being drained, each by one loop (drain) that writes one record at a time. */
  private readonly draining = new Map<string, Promise<void>>();
  private readonly retryAt = new Map<string, { at: number; delay: number }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly counters = { written: 0, records: 0, dropped: 0, failures: 0 };
  /** Entries in the batcher, kept here so record() does not count every chain's queue per entry. */
  private buffered = 0;
  /** Per chain: the highest entry sequence of each broker source the trail holds. */
  private readonly marks = new Map<string, Watermarks>();
  /** Who waits for an entry to be persisted (recordPersisted); weak, so a shed entry leaks nothing. */
  private readonly tickets = new WeakMap<AuditEntry, Ticket>();
  /** Chains someone waits on, until when: written at once rather than when due. */
  private readonly urgentUntil = new Map<string, number>();
  /**
   * Broker entries admitted and not yet persisted (or shed), by chain, pod and id, each with the
   * promise of its acknowledged write: a copy shipped again meanwhile waits for it instead of being
   * delivered twice. Bounded by the buffer (maxBuffered).
   */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Chains being located (their newest records listed) for the first time, shared by callers. */
  private readonly locating = new Map<string, Promise<void>>();
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
      // A shed broker entry is no longer being written: a copy shipped again is admitted afresh.
      const lost = this.batcher.shedByChain(max, (chain, e) => {
        const id = inflightKey(chain, e);
        if (id !== undefined) this.inflight.delete(id);
      });
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

  /**
   * Queues entries of one chain and resolves once all of them are settled: true when every one is
   * in an AuditRecord (written now, or found already there by id), false when the API server
   * refused one as invalid (its batch is dropped and counted; shipping it again cannot help). Never
   * rejects: an entry that cannot be written keeps its waiter waiting, and the caller gives up after
   * its own deadline (the broker ships it again; the authority answers 503). A waiter holds no
   * timer; its ticket is weakly tied to the entry, so an entry shed from the buffer (maxBuffered)
   * frees it: the memory held for waiters is bounded by the buffer.
   */
  recordPersisted(namespace: string, agent: string, entries: readonly AuditEntry[]): Promise<boolean> {
    if (entries.length === 0) return Promise.resolve(true);
    const key = `${namespace}/${agent}`;
    const done = new Promise<boolean>((resolve) => {
      const ticket: Ticket = { left: entries.length, refused: false, resolve };
      for (const e of entries) this.tickets.set(e, ticket);
    });
    this.urgentUntil.set(key, this.now() + URGENT_MS);
    for (const e of entries) this.record(namespace, agent, e);
    if (!this.draining.has(key) && (this.retryAt.get(key)?.at ?? 0) <= this.now())
      void this.drain(key, false);
    return done;
  }

  /**
   * The one dedupe of a broker's shipped batch (core/ports/audit.ts BrokerAuditTrail): returns the
   * entries met for the first time, queued for writing now, and a promise that resolves once every
   * entry of the batch is in AuditRecords. Entries the trail holds (at or below their source's
   * watermark) or that this writer is writing (admitted before, not yet persisted) are not returned:
   * their caller must not export or count them again. `resent` (the broker may have shipped some of
   * them before) walks the chain past records other writers created since this one last looked.
   * Rejects when the chain cannot be read the first time it is met (the API server unreachable):
   * nothing is queued, and the broker ships the batch again.
   */
  async admit(
    namespace: string,
    agent: string,
    entries: readonly AuditEntry[],
    opts: { resent?: boolean } = {},
  ): Promise<{ fresh: AuditEntry[]; persisted: Promise<void> }> {
    const key = `${namespace}/${agent}`;
    await this.meet(key, namespace, agent);
    if (opts.resent) await this.refresh(key, namespace, agent);
    // From here on synchronous: two admissions of the same entries cannot both see them as new.
    const { fresh: unheld } = dedupe(this.marksOf(key), entries);
    const fresh: AuditEntry[] = [];
    const earlier = new Set<Promise<void>>();
    for (const e of unheld) {
      const id = inflightKey(key, e);
      const writing = id === undefined ? undefined : this.inflight.get(id);
      if (writing) earlier.add(writing);
      else fresh.push(e);
    }
    // Settled either way: a batch refused as invalid is dropped (counted), not shipped forever.
    const done = this.recordPersisted(namespace, agent, fresh).then(() => undefined);
    const ids: string[] = [];
    for (const e of fresh) {
      const id = inflightKey(key, e);
      if (id === undefined) continue;
      this.inflight.set(id, done);
      ids.push(id);
    }
    if (ids.length > 0) {
      void done.then(() => {
        for (const id of ids) if (this.inflight.get(id) === done) this.inflight.delete(id);
      });
    }
    const persisted = earlier.size === 0 ? done : Promise.all([done, ...earlier]).then(() => undefined);
    return { fresh, persisted };
  }

  /** Broker entries being written, admitted and not yet persisted (for tests and metrics). */
  get admittedUnpersisted(): number {
    return this.inflight.size;
  }

  /**
   * Learns where a chain continues and what it holds (the newest records' entry ids) the first time
   * this writer meets it; one list per chain, shared by concurrent callers.
   */
  private meet(key: string, namespace: string, agent: string): Promise<void> {
    if (this.positions.has(key)) return Promise.resolve();
    let p = this.locating.get(key);
    if (!p) {
      p = this.locate(namespace, agent)
        .then((found) => {
          if (this.positions.has(key)) return;
          this.positions.set(key, found.position);
          // Walk past the base before the first write: records written since, or forged ones.
          this.unsure.add(key);
        })
        .finally(() => this.locating.delete(key));
      this.locating.set(key, p);
    }
    return p;
  }

  /**
   * Reads records other writers created past this writer's position (usually one GET answered 404)
   * and learns their entry ids; the position itself is left to the chain's drain loop, which
   * catches up before its next write when this found anything.
   */
  private async refresh(key: string, namespace: string, agent: string): Promise<void> {
    const from = this.positions.get(key);
    if (!from) return;
    const caught = await this.catchUp(namespace, agent, from, '');
    if (caught.position.next !== from.next) this.unsure.add(key);
  }

  /** Entries of a batch are in the trail (or, `refused`, dropped as invalid): their waiters are told. */
  private persisted(entries: readonly AuditEntry[], refused = false): void {
    for (const e of entries) {
      const t = this.tickets.get(e);
      if (!t) continue;
      this.tickets.delete(e);
      if (refused) t.refused = true;
      if (--t.left === 0) t.resolve(!t.refused);
    }
  }

  /** A chain's watermarks, created on first use; bounded per chain. */
  private marksOf(key: string): Watermarks {
    let m = this.marks.get(key);
    if (!m) {
      m = new Map();
      this.marks.set(key, m);
    }
    if (m.size > MAX_SOURCES_PER_CHAIN) {
      for (const k of [...m.keys()].slice(0, m.size - MAX_SOURCES_PER_CHAIN)) m.delete(k);
    }
    return m;
  }

  /** Chains to write now: full or old batches, and chains someone waits on. */
  private dueKeys(now: number): string[] {
    const due = new Set(this.batcher.due(now));
    for (const [key, until] of this.urgentUntil) {
      if (until <= now) this.urgentUntil.delete(key);
      else due.add(key);
    }
    const pending = new Set(this.batcher.keys());
    return [...due].filter((k) => pending.has(k));
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
    this.retryAnchors();
    await Promise.all(this.anchoring.values());
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
    this.retryAnchors();
    const now = this.now();
    // Chains being written count as pending: their batch left the batcher when the write began.
    const keys = all ? [...new Set([...this.batcher.keys(), ...this.draining.keys()])] : this.dueKeys(now);
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
          const pending = all ? this.batcher.keys() : this.dueKeys(this.now());
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
      const batchJson = canonicalJson(batch);
      for (let attempt = 0; attempt < 5; attempt++) {
        await this.meet(key, namespace, agent);
        let position = this.positions.get(key) as ChainPosition;
        if (this.unsure.has(key)) {
          // A write whose response was lost (API server stopping mid-request) may have landed.
          const caught = await this.catchUp(namespace, agent, position, batchJson);
          position = caught.position;
          this.positions.set(key, position);
          this.unsure.delete(key);
          if (caught.landed) {
            this.written(batch);
            this.persisted(batch);
            this.retryAt.delete(key);
            return true;
          }
        }
        // Entries the chain already holds (a batch shipped again) are not written twice.
        const marks = this.marksOf(key);
        const { fresh, duplicates } = dedupe(marks, batch);
        if (duplicates.length > 0) {
          this.persisted(duplicates);
          this.opts.log.debug(
            { chain: key, duplicates: duplicates.length },
            'audit entries already in the trail',
          );
        }
        if (fresh.length === 0) {
          this.retryAt.delete(key);
          return true;
        }
        const sealed = sealRecord({
          agent,
          sequence: position.next,
          // Above 0 with no genuine record before it, every earlier slot holds a forgery.
          previousDigest: position.head?.digest ?? (position.next === 0 ? '' : GENESIS_DIGEST),
          entries: fresh,
        });
        const spec: AuditRecordSpec = {
          ...sealed,
          signature: signRecord(namespace, sealed, this.opts.keys.signingKey()),
        };
        try {
          await this.create(namespace, spec);
          const head = { sequence: spec.sequence, digest: spec.digest };
          this.positions.set(key, after(head));
          this.anchor(key, head);
          noteEntries(marks, fresh);
          this.written(fresh);
          this.persisted(batch);
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
        // Told as settled: shipping the same entries again would be refused again and hold the
        // broker's spool forever. The loss is counted (status.audit.dropped, an Event, the log), and
        // a waiter learns it (the authority does not hand out an issuance whose entry was dropped).
        this.persisted(batch, true);
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
   * Walks the chain forward from a position, one GET by name per record written since (by
   * another replica, or by us when a response was lost), rather than listing the whole chain:
   * a chain of a busy agent holds hundreds of records of hundreds of entries, and listing it
   * after every contested or failed write stalled the writer under load. A record that is not
   * the controller's is reported and its slot skipped, never chained onto. `landed` says whether
   * one of the genuine records holds exactly `batchJson`.
   */
  private async catchUp(
    namespace: string,
    agent: string,
    from: ChainPosition,
    batchJson: string,
  ): Promise<{ position: ChainPosition; landed: boolean }> {
    let position = from;
    let landed = false;
    for (;;) {
      const sequence = position.next;
      const name = recordName(agent, sequence);
      let next: AuditRecord;
      try {
        next = await this.opts.api.request<AuditRecord>('GET', resourcePath(AUDIT_REF, namespace, name));
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) return { position, landed };
        throw err;
      }
      const misplaced =
        next.spec?.agent !== agent || next.spec?.sequence !== sequence
          ? `it is named for record ${sequence} of agent ${agent} but claims agent ${next.spec?.agent}, sequence ${next.spec?.sequence}`
          : undefined;
      const forged = misplaced ?? (await this.notGenuine(namespace, next));
      if (forged) {
        this.reportForged(namespace, agent, name, forged);
        position = { ...position, next: sequence + 1 };
        continue;
      }
      position = after({ sequence, digest: next.spec.digest });
      noteEntries(this.marksOf(`${namespace}/${agent}`), next.spec.entries);
      if (!landed && canonicalJson(next.spec.entries) === batchJson) landed = true;
    }
  }

  /**
   * Where a chain continues when this writer knows nothing of it yet: its newest genuine record
   * (one list, once per chain), or the anchored head when that is newer (the newest records were
   * deleted: the chain goes on from the controller's own head, and the gap stays visible).
   */
  private async locate(namespace: string, agent: string): Promise<{ position: ChainPosition }> {
    const list = await this.opts.api.request<ObjectList<AuditRecord>>(
      'GET',
      resourcePath(AUDIT_REF, namespace),
      {
        query: { labelSelector: `${LABEL_AGENT}=${agentLabelValue(agent)}` },
      },
    );
    const newestFirst = list.items
      .filter((r) => r.spec?.agent === agent && r.metadata?.name === recordName(agent, r.spec.sequence))
      .sort((a, b) => b.spec.sequence - a.spec.sequence);
    let head: ChainHead | undefined;
    // What the newest genuine records hold of each broker source: a new writer (after a restart or
    // a leader change) does not write again what its predecessor wrote. A broker ships again only
    // what its spool still holds (at most --audit-spool-max-bytes), far fewer entries than this.
    const marks = this.marksOf(`${namespace}/${agent}`);
    let genuine = 0;
    // Forged records above the newest genuine one are reported by the walk (catchUp) that follows.
    for (const r of newestFirst) {
      if (genuine >= DEDUPE_RECORDS) break;
      if (await this.notGenuine(namespace, r)) continue;
      genuine++;
      noteEntries(marks, r.spec.entries);
      if (head) continue;
      head = { sequence: r.spec.sequence, digest: r.spec.digest };
    }
    const anchored = await this.readAnchor(namespace, agent);
    if (anchored && (!head || anchored.sequence > head.sequence)) {
      this.opts.log.error(
        { chain: `${namespace}/${agent}`, anchored: anchored.sequence, newest: head?.sequence ?? null },
        'audit chain is missing its newest records (truncated tail): continuing from the anchored head',
      );
      return { position: after(anchored) };
    }
    return { position: after(head) };
  }

  /** Why a record is not the controller's, or undefined when it is (signed, or legacy). */
  private async notGenuine(namespace: string, r: AuditRecord): Promise<string | undefined> {
    const verdict = await this.opts.keys.keySet().verifyRecord(namespace, r.spec);
    if (verdict.ok) return undefined;
    // Written before audit signing began (an upgrade): the first signed record vouches for it.
    const created = r.metadata?.creationTimestamp ? String(r.metadata.creationTimestamp) : undefined;
    if (verdict.problem === 'missing' && createdBeforeSigning(created, this.opts.keys.signingSince())) {
      return undefined;
    }
    return verdict.message;
  }

  private reportForged(namespace: string, agent: string, name: string, reason: string): void {
    const id = `${namespace}/${name}`;
    if (this.reported.has(id)) return;
    if (this.reported.size >= 10_000) this.reported.clear();
    this.reported.add(id);
    this.opts.log.error(
      { chain: `${namespace}/${agent}`, record: name, reason },
      'forged AuditRecord in the chain: skipped, not chained onto',
    );
    this.opts.onForged?.(namespace, agent, name, reason);
  }

  /** The signed head anchored in the AgentIdentity status, when it verifies. */
  private async readAnchor(namespace: string, agent: string): Promise<ChainHead | undefined> {
    let identity: AgentIdentity;
    try {
      identity = await this.opts.api.request<AgentIdentity>('GET', resourcePath(AGENT_REF, namespace, agent));
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
    const head = identity.status?.audit?.head;
    if (!head) return undefined;
    const verdict = await this.opts.keys.keySet().verifyHead(namespace, agent, head);
    if (!verdict.ok) {
      this.opts.log.error(
        { chain: `${namespace}/${agent}`, reason: verdict.message },
        'anchored audit head is not the controller’s: ignored',
      );
      return undefined;
    }
    return { sequence: head.sequence, digest: head.digest };
  }

  /** Restarts anchoring of heads whose last attempt failed. */
  private retryAnchors(): void {
    for (const [key, head] of this.anchorWanted) if (!this.anchoring.has(key)) this.anchor(key, head);
  }

  /** Anchors a chain's new head in its AgentIdentity status; one write per chain in flight, the newest wins. */
  private anchor(key: string, head: ChainHead): void {
    const wanted = this.anchorWanted.get(key);
    if (!wanted || wanted.sequence < head.sequence) this.anchorWanted.set(key, head);
    if (this.anchoring.has(key)) return;
    const loop = (async () => {
      const [namespace = '', agent = ''] = key.split('/');
      try {
        for (;;) {
          const next = this.anchorWanted.get(key);
          if (!next) return;
          this.anchorWanted.delete(key);
          try {
            await this.writeAnchor(namespace, agent, next);
          } catch (err) {
            // Kept for the next write or flush; the records themselves are written.
            if (!this.anchorWanted.has(key)) this.anchorWanted.set(key, next);
            this.opts.log.warn(
              { chain: key, sequence: next.sequence, err: err instanceof Error ? err.message : String(err) },
              'could not anchor the audit chain head; will retry',
            );
            return;
          }
        }
      } finally {
        this.anchoring.delete(key);
      }
    })();
    this.anchoring.set(key, loop);
  }

  /**
   * Read-modify-write of status.audit.head with a resourceVersion precondition, never moving it
   * back: replicas anchoring the same chain race, and an older head landing last would hide the
   * deletion of the newest records.
   */
  private async writeAnchor(namespace: string, agent: string, head: ChainHead): Promise<void> {
    const path = resourcePath(AGENT_REF, namespace, agent);
    for (let attempt = 0; attempt < 5; attempt++) {
      let identity: AgentIdentity;
      try {
        identity = await this.opts.api.request<AgentIdentity>('GET', path);
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) return; // no AgentIdentity: nothing to anchor in
        throw err;
      }
      const current = identity.status?.audit?.head;
      if (
        current &&
        current.sequence >= head.sequence &&
        (await this.opts.keys.keySet().verifyHead(namespace, agent, current)).ok
      ) {
        return;
      }
      const signed = signHead(namespace, agent, head, this.opts.keys.signingKey());
      try {
        await this.opts.api.request('PATCH', `${path}/status`, {
          body: {
            metadata: { resourceVersion: identity.metadata?.resourceVersion },
            status: { audit: { head: signed } },
          },
          contentType: 'application/merge-patch+json',
          query: { fieldManager: AUDIT_FIELD_MANAGER },
        });
        return;
      } catch (err) {
        if (err instanceof ApiError && err.code === 409) continue;
        if (err instanceof ApiError && err.code === 404) return;
        throw err;
      }
    }
    throw new Error(
      `AgentIdentity ${namespace}/${agent}: status changed 5 times while anchoring the audit head`,
    );
  }

  private async create(namespace: string, spec: AuditRecordSpec): Promise<void> {
    const body: AuditRecord = {
      apiVersion: API_VERSION,
      kind: 'AuditRecord',
      metadata: {
        name: recordName(spec.agent, spec.sequence),
        namespace,
        labels: auditRecordLabels(spec),
      },
      spec,
    };
    await this.opts.api.request('POST', resourcePath(AUDIT_REF, namespace), { body });
  }
}
