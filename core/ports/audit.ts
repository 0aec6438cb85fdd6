/**
 * Ports of the audit trail: what the authority, the reconcilers and the broker-event
 * endpoint hand audit events to. Implemented by audit/ (the AuditRecord trail) and by
 * in-memory sinks in tests; wired by controller/. docs/conventions.md §1.
 */
import type { AuditEntry } from '../api/index.js';

export type AuditKind = 'Session' | 'Decision' | 'Credential' | 'Stream';

export interface AuditEvent {
  time: string;
  kind: AuditKind;
  decision: 'Allow' | 'Deny';
  /** Endpoint path, e.g. /v1/token. */
  endpoint: string;
  /** Remote address of the caller. */
  source: string;
  requestId?: string;
  namespace?: string;
  agent?: string;
  pod?: string;
  podUID?: string;
  /** The user subject, or "agent acting alone" (core/audit/user.ts: one spelling for every producer). */
  user?: string;
  /** The trusted issuer that vouched for the user. */
  userIssuer?: string;
  /** The agents a delegated call came through, origin first, this agent last (verified Warden token). */
  chain?: Array<{ name: string; namespace: string }>;
  target?: string;
  tool?: string;
  /** OAuth error code when denied. */
  error?: string;
  /** What the caller was told. */
  message?: string;
  /** What only the audit trail sees (e.g. the API server's rejection text). Never a token. */
  detail?: string;
  reasons?: Array<{ policy: string; rule: number; condition?: string; message: string }>;
  /** Session / credential id (jti). */
  credentialId?: string;
}

export interface AuditSink {
  /** Records one event; never throws, never blocks. */
  record(event: AuditEvent): void;
  /**
   * Records one event whose answer waits for it (an issuance): a sink that keeps the trail writes
   * its entry at once and resolves true once it is in an AuditRecord, false when the API server
   * refused the record as invalid and the entry was dropped (counted; the issuance is not handed
   * out). Never rejects: the caller gives up after its own deadline. Sinks without it are recorded
   * with `record`.
   */
  persist?(event: AuditEvent): Promise<boolean>;
}

export interface AuditSubject {
  namespace: string;
  agent: string;
  pod: string;
  podUID: string;
  /** The session's jti. */
  session: string;
}

/** One broker event, validated and clipped; `entry` is ready for an AuditRecord. */
export interface BrokerEvent {
  entry: AuditEntry;
  /** The broker's reason constant (e.g. AgentSuspended, NoMatchingRule), for counters and Events. */
  reason?: string;
  /** Header names the broker stripped from the agent's request (never values). */
  stripped?: string[];
}

/**
 * Who counts validated broker events (decision stats, circuit breaker, tool usage): given only the
 * events the trail admitted as new (BrokerAuditTrail), after it did. Synchronous: the /v1/audit
 * answer waits for the trail's persistence, never for a counter.
 */
export interface BrokerEventSink {
  recordBrokerEvents(who: AuditSubject, events: readonly BrokerEvent[]): void;
}

/** What the trail made of a shipped batch (BrokerAuditTrail.admitBrokerEvents). */
export interface BrokerAuditAdmission {
  /** The events met for the first time: exported and queued now; the counters get these only. */
  fresh: readonly BrokerEvent[];
  /** Resolves once every event of the batch (fresh or met before) is persisted in AuditRecords. */
  persisted: Promise<void>;
}

/**
 * The one place a broker's shipped batch is deduplicated, by entry id (docs/faults.md, "One
 * delivery per entry"): the audit trail (audit/sink.ts over the writer's persisted ids) says which
 * entries it meets for the first time; /v1/audit hands only those to the export and the counters.
 */
export interface BrokerAuditTrail {
  /**
   * `resent`: the broker says some of these may have reached an authority before (a request that
   * failed, a restarted broker's spool) — the trail then reads what other writers wrote since.
   * Rejects when it cannot tell (the chain unreadable): the caller answers 503, the broker keeps them.
   */
  admitBrokerEvents(
    who: AuditSubject,
    events: readonly BrokerEvent[],
    opts: { resent: boolean },
  ): Promise<BrokerAuditAdmission>;
}

/** Entries the controller itself records (suspensions, revocations), per agent chain. */
export interface ControllerAuditSink {
  recordEntry(namespace: string, agent: string, entry: AuditEntry): void;
}
