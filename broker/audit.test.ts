import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  AuditShipper,
  type AuditTransport,
  AuditUnavailableError,
  type BrokerAuditEvent,
  nextBatchLength,
} from './audit.js';

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

/** Lets pending sends settle (a bounded number of event-loop turns; no clock involved). */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setImmediate(r));
}

describe('nextBatchLength', () => {
  const q = (...bytes: number[]) => bytes.map((b) => ({ bytes: b }));
  it.each([
    ['an empty queue', q(), 0],
    ['everything when under both bounds', q(10, 10, 10), 3],
    ['at most maxBatch events', q(1, 1, 1, 1, 1, 1), 4],
    ['no more bytes than maxBatchBytes', q(40, 40, 40), 2],
    ['exactly maxBatchBytes', q(50, 50, 1), 2],
    ['the first event even when it alone exceeds the bytes', q(500, 1), 1],
  ])('%s', (_name, queue, expected) => {
    expect(nextBatchLength(queue, 4, 100)).toBe(expected);
  });
});

describe('AuditShipper', () => {
  it('drains a backlog request after request in batches up to maxBatch, without waiting for the timer', async () => {
    const t = new MemoryTransport();
    const s = new AuditShipper({
      transport: t,
      log: pino({ level: 'silent' }),
      batchSize: 100,
      maxBatch: 500,
      flushIntervalMs: 3_600_000,
    });
    // The 100th event starts a request; the rest pile up behind it.
    for (let i = 0; i < 1150; i++) s.record(ev(i));
    await settle(() => s.shipped >= 1100);
    // 50 stay queued: fewer than a batch, they wait for the timer (or close()).
    expect(t.batches.map((b) => b.length)).toEqual([100, 500, 500]);
    expect(s.queued).toBe(50);
    await s.close();
    expect(t.batches.flat().map((e) => e.requestId)).toEqual(
      Array.from({ length: 1150 }, (_, i) => String(i)),
    );
    expect(s.dropped).toBe(0);
  });

  it('keeps each request under maxBatchBytes', async () => {
    const t = new MemoryTransport();
    const size = Buffer.byteLength(JSON.stringify({ ...ev(100), id: '0123456789abcdef-10' }));
    const s = new AuditShipper({
      transport: t,
      log: pino({ level: 'silent' }),
      batchSize: 1000,
      maxBatchBytes: size * 3,
      flushIntervalMs: 3_600_000,
    });
    for (let i = 100; i < 110; i++) s.record(ev(i));
    await s.close();
    expect(t.batches.map((b) => b.length)).toEqual([3, 3, 3, 1]);
  });

  it('drops (and counts) an event too large to ship, and ships the others', async () => {
    const t = new MemoryTransport();
    const s = new AuditShipper({
      transport: t,
      log: pino({ level: 'silent' }),
      maxBatchBytes: 1024,
      flushIntervalMs: 3_600_000,
    });
    void s.record(ev(1));
    await expect(s.record({ ...ev(2), message: 'x'.repeat(2048) })).rejects.toThrow(AuditUnavailableError);
    void s.record(ev(3));
    await s.close();
    expect(t.batches.flat().map((e) => e.requestId)).toEqual(['1', '3']);
    expect(s.dropped).toBe(1);
  });

  it('stops at the first failure on close, keeping what it could not ship', async () => {
    const t = new MemoryTransport();
    const s = new AuditShipper({ transport: t, log: pino({ level: 'silent' }), flushIntervalMs: 3_600_000 });
    t.down = true;
    s.record(ev(1));
    await s.close();
    expect(s.queued).toBe(1);
    expect(s.shipped).toBe(0);
  });

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
