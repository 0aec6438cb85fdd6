/**
 * Connects the authority's audit events to the audit trail: every event is one audit line
 * (audit/export.ts: JSON on stdout, optionally OTLP) for any log pipeline, and events that belong to an
 * agent also go into that agent's AuditRecord chain. Events with no attributable agent
 * (e.g. a token that failed verification before the pod was known) stay log-only:
 * there is no chain to put them in, and an attacker must not be able to grow one.
 */
import type { AuditEntry } from '../core/api/index.js';
import type {
  AuditEvent,
  AuditSink,
  AuditSubject,
  BrokerAuditAdmission,
  BrokerAuditTrail,
  BrokerEvent,
  ControllerAuditSink,
} from '../core/ports/audit.js';
import { type AuditExporter, type AuditLine, toLine } from './export.js';
import type { AuditWriter } from './writer.js';

const KIND: Record<AuditEvent['kind'], AuditEntry['kind']> = {
  Session: 'Session',
  Decision: 'Decision',
  Credential: 'Credential',
  Stream: 'Session',
};

const clip = (s: string | undefined, max: number) => (s === undefined ? undefined : s.slice(0, max));

/**
 * Endpoints whose successful calls are not entries of their own: a /v1/audit request carries the
 * broker's entries (each recorded), so an entry for the shipping itself would make "N decisions →
 * N entries" false and grow the chain with noise.
 */
// A quota lease is bookkeeping: the calls it covers reach the trail as the brokers' decisions.
const LOG_ONLY_ON_ALLOW = new Set(['/v1/audit', '/v1/quota']);

/**
 * The entry kind of an authority event. The central decision on /v1/credentials is a credential
 * issuance decision (kind Credential): Decision entries are the brokers' per-call decisions, so
 * each tool call is counted once.
 */
export function entryKind(e: AuditEvent): AuditEntry['kind'] {
  if (e.endpoint === '/v1/credentials') return 'Credential';
  return KIND[e.kind];
}

/** Maps an authority audit event to an AuditRecord entry, bounded to the schema's limits. */
export function toEntry(e: AuditEvent): AuditEntry {
  const entry: AuditEntry = { time: e.time, kind: entryKind(e), decision: e.decision };
  const set = <K extends keyof AuditEntry>(k: K, v: AuditEntry[K] | undefined) => {
    if (v !== undefined && v !== '') entry[k] = v;
  };
  set('pod', clip(e.pod, 253));
  set('user', clip(e.user, 512));
  set('userIssuer', clip(e.userIssuer, 512));
  if (e.chain?.length) {
    entry.chain = e.chain
      .slice(0, 8)
      .map((a) => ({ name: clip(a.name, 253) ?? '', namespace: clip(a.namespace, 63) ?? '' }));
  }
  set('target', clip(e.target, 253));
  set('tool', clip(e.tool, 256));
  set('requestId', clip(e.requestId, 128));
  set('credentialId', clip(e.credentialId, 256));
  set('message', clip(e.message ?? e.error, 1024));
  set(
    'reasons',
    e.reasons?.slice(0, 16).map((r) => ({
      policy: clip(r.policy, 253),
      // A decision without a rule (AgentSuspended, NoMatchingAllow) is reported as rule -1; the
      // schema allows 0..63 only, and one rejected entry would hold back the agent's whole chain.
      ...(Number.isInteger(r.rule) && r.rule >= 0 && r.rule <= 63 ? { rule: r.rule } : {}),
      ...(r.condition ? { condition: clip(r.condition, 63) } : {}),
      message: clip(r.message, 1024),
    })),
  );
  set('policy', clip(e.reasons?.[0]?.policy, 253));
  return entry;
}

/** What the controller itself records (suspensions, revocations): already an entry. */
export type { ControllerAuditSink } from '../core/ports/audit.js';

export class TrailAuditSink implements AuditSink, BrokerAuditTrail, ControllerAuditSink {
  constructor(
    private readonly writer: AuditWriter,
    /** Every event leaves as one audit line on each (stdout, OTLP): audit/export.ts. */
    private readonly exporters: readonly AuditExporter[] = [],
  ) {}

  private emit(line: AuditLine): void {
    for (const x of this.exporters) x.export(line);
  }

  /** One authority event: an audit line, and an entry of its agent's chain when it has one. */
  record(event: AuditEvent): void {
    this.handle(event, false);
  }

  /**
   * An event whose answer waits for its entry (an issuance): the entry is written at once and the
   * promise resolves true once it is in an AuditRecord (false: the API server refused its record as
   * invalid and it was dropped). An event that belongs to no chain is exported only: true at once.
   */
  persist(event: AuditEvent): Promise<boolean> {
    return this.handle(event, true) ?? Promise.resolve(true);
  }

  private handle(event: AuditEvent, persisted: boolean): Promise<boolean> | undefined {
    // A batch not persisted in time (503) is shipped again by the broker: no entry of its own either.
    const shipping =
      LOG_ONLY_ON_ALLOW.has(event.endpoint) &&
      (event.decision === 'Allow' || event.error === 'temporarily_unavailable');
    const trail = !shipping && Boolean(event.namespace && event.agent);
    const entry = toEntry(event);
    this.emit(
      toLine(
        'authority',
        entry,
        { namespace: event.namespace, agent: event.agent, podUID: event.podUID },
        { endpoint: event.endpoint, remoteAddress: event.source, detail: event.detail, trail },
      ),
    );
    if (!trail || !event.namespace || !event.agent) return undefined;
    if (persisted) return this.writer.recordPersisted(event.namespace, event.agent, [entry]);
    this.writer.record(event.namespace, event.agent, entry);
    return undefined;
  }

  /**
   * Broker events arriving on /v1/audit: the writer admits them (the one dedupe, by entry id, over
   * what the trail holds or is writing); each event met for the first time becomes one audit line
   * and one chain entry. `persisted` resolves once all are in AuditRecords — the authority
   * acknowledges the batch only then (ack after persist). The export is at least once only across
   * a process that died between exporting and persisting (docs/faults.md): lines carry the id.
   */
  async admitBrokerEvents(
    who: AuditSubject,
    events: readonly BrokerEvent[],
    opts: { resent: boolean },
  ): Promise<BrokerAuditAdmission> {
    const { fresh, persisted } = await this.writer.admit(
      who.namespace,
      who.agent,
      events.map((e) => e.entry),
      opts,
    );
    const first = new Set(fresh);
    const delivered = first.size === events.length ? events : events.filter((e) => first.has(e.entry));
    for (const e of delivered) {
      this.emit(
        toLine(
          'broker',
          e.entry,
          { namespace: who.namespace, agent: who.agent, podUID: who.podUID, session: who.session },
          { reason: e.reason, stripped: e.stripped, trail: true },
        ),
      );
    }
    return { fresh: delivered, persisted };
  }

  /**
   * An entry the controller records itself (a suspension, a revocation), after the status write it
   * accompanies: written at once rather than after the flush interval, so a controller killed right
   * after the status write loses it only if killed within that one record write (docs/faults.md).
   */
  recordEntry(namespace: string, agent: string, entry: AuditEntry): void {
    this.emit(toLine('controller', entry, { namespace, agent }, { trail: true }));
    // Nobody waits: recordPersisted only resolves (never rejects), so nothing is swallowed here;
    // an entry that cannot be written stays queued and is retried like any other.
    void this.writer.recordPersisted(namespace, agent, [entry]);
  }
}
