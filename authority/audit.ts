/**
 * Audit events of the authority. Every success and every failure of an authority endpoint produces
 * one event; the AuditRecord writer (later) batches them into the CRD-backed, hash-chained log.
 */
import type { Logger } from 'pino';

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
  /** The user subject, or "agent acting alone". */
  user?: string;
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
  record(event: AuditEvent): void;
}

/** Writes each event as one structured log line (until the AuditRecord writer exists). */
export class PinoAuditSink implements AuditSink {
  constructor(private readonly log: Logger) {}
  record(event: AuditEvent): void {
    this.log.info({ audit: event }, 'audit');
  }
}

/** Keeps events in memory, for tests and for the status counters. Bounded. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  constructor(private readonly max = 10_000) {}
  record(event: AuditEvent): void {
    this.events.push(event);
    if (this.events.length > this.max) this.events.shift();
  }
}

/** Fans one event out to several sinks. */
export class TeeAuditSink implements AuditSink {
  constructor(private readonly sinks: AuditSink[]) {}
  record(event: AuditEvent): void {
    for (const s of this.sinks) s.record(event);
  }
}
