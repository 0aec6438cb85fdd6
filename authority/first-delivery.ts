/**
 * Counters that read broker audit batches (decision stats, the circuit breaker, tool usage) see
 * each entry once. A broker ships a batch again when its answer was lost or came too late (503
 * while the writer persists, a broker restarted on its spool); the trail's writer drops entries it
 * already holds by id, but a counter fed the retried batch would count it twice — and a circuit
 * breaker would trip on denials that happened once (#18, #21).
 *
 * Remembers the ids of recent entries per pod, bounded (oldest forgotten first). Entries without
 * an id (brokers before the spool, a Required-mode refusal sent from memory) always pass. Per
 * replica: a retry that reaches another authority replica is counted there, as that replica's
 * counts are its own (docs/policy.md, replicas).
 */
import type { AuditSubject, BrokerEvent, BrokerEventSink } from '../core/ports/audit.js';

export const DEFAULT_REMEMBERED_IDS = 200_000;

export class FirstDelivery implements BrokerEventSink {
  private readonly seen = new Set<string>();

  constructor(
    private readonly sinks: readonly BrokerEventSink[],
    private readonly maxIds = DEFAULT_REMEMBERED_IDS,
  ) {}

  recordBrokerEvents(who: AuditSubject, events: readonly BrokerEvent[]): void {
    const fresh = events.filter((e) => {
      const id = e.entry.id;
      if (id === undefined || id === '') return true;
      const key = `${who.podUID}/${id}`;
      if (this.seen.has(key)) return false;
      this.seen.add(key);
      if (this.seen.size > this.maxIds) {
        // A Set iterates in insertion order: the first key is the oldest.
        const oldest = this.seen.values().next().value;
        if (oldest !== undefined) this.seen.delete(oldest);
      }
      return true;
    });
    if (fresh.length === 0) return;
    for (const s of this.sinks) void s.recordBrokerEvents(who, fresh);
  }
}
