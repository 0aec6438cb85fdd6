/**
 * Audit events of the authority. Every success and every failure of an authority endpoint produces
 * one event; the AuditRecord writer (later) batches them into the CRD-backed, hash-chained log.
 */
import type { Logger } from 'pino';

export type { AuditEvent, AuditKind, AuditSink } from '../core/ports/audit.js';

import type { AuditEvent, AuditSink } from '../core/ports/audit.js';

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
  /** True once every sink that keeps a trail has the entry (see AuditSink.persist). */
  persist(event: AuditEvent): Promise<boolean> {
    const kept: Promise<boolean>[] = [];
    for (const s of this.sinks) {
      if (s.persist) kept.push(s.persist(event));
      else s.record(event);
    }
    return Promise.all(kept).then((all) => all.every(Boolean));
  }
}
