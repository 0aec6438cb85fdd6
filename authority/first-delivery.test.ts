import { describe, expect, it } from 'vitest';
import type { AuditSubject, BrokerEvent, BrokerEventSink } from '../core/ports/audit.js';
import { FirstDelivery } from './first-delivery.js';

const pod = (podUID: string): AuditSubject => ({
  namespace: 'ns',
  agent: 'bot',
  pod: 'p',
  podUID,
  session: 's',
});
const event = (id?: string): BrokerEvent => ({
  entry: { time: '2026-12-04T12:00:00Z', kind: 'Decision', decision: 'Deny', ...(id ? { id } : {}) },
});

class Counting implements BrokerEventSink {
  ids: (string | undefined)[] = [];
  recordBrokerEvents(_who: AuditSubject, events: readonly BrokerEvent[]): void {
    for (const e of events) this.ids.push(e.entry.id);
  }
}

describe('FirstDelivery', () => {
  it('hands a batch shipped again to the counters once, and only its new entries', () => {
    const c = new Counting();
    const d = new FirstDelivery([c]);
    d.recordBrokerEvents(pod('u1'), [event('a-1'), event('a-2')]);
    d.recordBrokerEvents(pod('u1'), [event('a-1'), event('a-2'), event('a-3')]);
    expect(c.ids).toEqual(['a-1', 'a-2', 'a-3']);
  });

  it('tells pods apart and always passes entries without an id', () => {
    const c = new Counting();
    const d = new FirstDelivery([c]);
    d.recordBrokerEvents(pod('u1'), [event('x-1'), event()]);
    d.recordBrokerEvents(pod('u2'), [event('x-1'), event()]);
    expect(c.ids).toEqual(['x-1', undefined, 'x-1', undefined]);
  });

  it('forgets the oldest ids beyond its bound, so memory stays bounded', () => {
    const c = new Counting();
    const d = new FirstDelivery([c], 2);
    d.recordBrokerEvents(pod('u'), [event('1'), event('2'), event('3')]);
    d.recordBrokerEvents(pod('u'), [event('1'), event('3')]);
    expect(c.ids).toEqual(['1', '2', '3', '1']);
  });
});
