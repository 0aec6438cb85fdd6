import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AuditShipper, type AuditTransport, type BrokerAuditEvent } from './audit.js';

const ev = (n: number): BrokerAuditEvent => ({
  time: new Date(0).toISOString(),
  kind: 'Decision',
  decision: 'Allow',
  user: 'agent acting alone',
  requestId: String(n),
});

/** An in-memory authority: accepts batches, or refuses while `down`. */
class MemoryTransport implements AuditTransport {
  down = false;
  readonly batches: BrokerAuditEvent[][] = [];
  async send(events: readonly BrokerAuditEvent[]): Promise<void> {
    if (this.down) throw new Error('authority unreachable');
    this.batches.push([...events]);
  }
}

describe('AuditShipper', () => {
  it('batches, keeps events while the authority is down, and ships them later in order', async () => {
    const t = new MemoryTransport();
    const s = new AuditShipper({
      transport: t,
      log: pino({ level: 'silent' }),
      batchSize: 2,
      flushIntervalMs: 60_000,
    });
    t.down = true;
    s.record(ev(1));
    s.record(ev(2));
    await s.flush();
    expect(t.batches).toEqual([]);
    t.down = false;
    s.record(ev(3));
    await s.flush();
    await s.close();
    expect(t.batches.flat().map((e) => e.requestId)).toEqual(['1', '2', '3']);
    expect(s.shipped).toBe(3);
  });

  it('drops the oldest beyond the bound and counts them', async () => {
    const t = new MemoryTransport();
    t.down = true;
    const s = new AuditShipper({
      transport: t,
      log: pino({ level: 'silent' }),
      batchSize: 100,
      maxQueued: 3,
      flushIntervalMs: 60_000,
    });
    for (let i = 1; i <= 5; i++) s.record(ev(i));
    expect(s.dropped).toBe(2);
    t.down = false;
    await s.close();
    expect(t.batches.flat().map((e) => e.requestId)).toEqual(['3', '4', '5']);
  });
});
