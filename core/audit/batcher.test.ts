import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../api/index.js';
import { AuditBatcher } from './batcher.js';

const e = (i: number, pad = 0): AuditEntry => ({
  time: new Date(1_000 * i).toISOString(),
  kind: 'Decision',
  decision: 'Allow',
  message: 'x'.repeat(pad),
  requestId: String(i),
});

describe('AuditBatcher', () => {
  it('signals a full batch at maxEntries and takes entries oldest first', () => {
    const b = new AuditBatcher({ maxEntries: 3, maxBytes: 1 << 20, maxAgeMs: 60_000 });
    expect(b.add('ns/a', e(1), 0)).toBe(false);
    expect(b.add('ns/a', e(2), 0)).toBe(false);
    expect(b.add('ns/a', e(3), 0)).toBe(true);
    b.add('ns/a', e(4), 0);
    expect(b.due(0)).toEqual(['ns/a']);
    expect(b.take('ns/a', 0).map((x) => x.requestId)).toEqual(['1', '2', '3']);
    expect(b.take('ns/a', 0).map((x) => x.requestId)).toEqual(['4']);
    expect(b.size()).toBe(0);
  });

  it('flushes a partial batch once its oldest entry waited maxAgeMs', () => {
    const b = new AuditBatcher({ maxEntries: 100, maxBytes: 1 << 20, maxAgeMs: 5_000 });
    b.add('ns/a', e(1), 1_000);
    b.add('ns/b', e(2), 3_000);
    expect(b.due(5_999)).toEqual([]);
    expect(b.due(6_000)).toEqual(['ns/a']);
    expect(b.due(8_000).sort()).toEqual(['ns/a', 'ns/b']);
  });

  it('bounds a batch by bytes so a record stays well under the etcd object limit', () => {
    const b = new AuditBatcher({ maxEntries: 500, maxBytes: 10_000, maxAgeMs: 60_000 });
    let full = false;
    for (let i = 0; i < 10 && !full; i++) full = b.add('ns/a', e(i, 3_000), 0);
    expect(full).toBe(true);
    const batch = b.take('ns/a', 0);
    expect(Buffer.byteLength(JSON.stringify(batch))).toBeLessThanOrEqual(10_000 + 100);
    expect(batch.length).toBe(3);
  });

  it('puts a failed batch back in front, keeping order', () => {
    const b = new AuditBatcher({ maxEntries: 2, maxBytes: 1 << 20, maxAgeMs: 1 });
    for (const i of [1, 2, 3]) b.add('ns/a', e(i), 0);
    const batch = b.take('ns/a', 0);
    b.putBack('ns/a', batch, 10);
    expect(b.take('ns/a', 10).map((x) => x.requestId)).toEqual(['1', '2']);
    expect(b.take('ns/a', 10).map((x) => x.requestId)).toEqual(['3']);
  });

  it('sheds the oldest entries of the largest chain and reports how many', () => {
    const b = new AuditBatcher({ maxEntries: 500, maxBytes: 1 << 20, maxAgeMs: 1 });
    for (let i = 0; i < 6; i++) b.add('ns/big', e(i), 0);
    b.add('ns/small', e(100), 0);
    expect(b.shed(4)).toBe(3);
    expect(b.size()).toBe(4);
    expect(b.take('ns/big', 0).map((x) => x.requestId)).toEqual(['3', '4', '5']);
    expect(b.take('ns/small', 0)).toHaveLength(1);
  });

  it('rejects limits the AuditRecord schema cannot hold', () => {
    expect(() => new AuditBatcher({ maxEntries: 501, maxBytes: 1, maxAgeMs: 1 })).toThrow(/1\.\.500/);
  });

  it('says which chains lost entries when shedding', () => {
    const b = new AuditBatcher({ maxEntries: 10, maxBytes: 1e6, maxAgeMs: 1000 });
    for (let i = 0; i < 5; i++) b.add('ns/big', { time: 't', kind: 'Decision', decision: 'Allow' }, 0);
    b.add('ns/small', { time: 't', kind: 'Decision', decision: 'Allow' }, 0);
    expect([...b.shedByChain(3)]).toEqual([['ns/big', 3]]);
    expect(b.size()).toBe(3);
  });

  it('tells which entries it shed, oldest first (the writer forgets they were being written)', () => {
    const b = new AuditBatcher({ maxEntries: 10, maxBytes: 1e6, maxAgeMs: 1000 });
    for (let i = 0; i < 4; i++) b.add('ns/big', e(i), 0);
    const shed: string[] = [];
    b.shedByChain(2, (key, entry) => shed.push(`${key}:${entry.requestId}`));
    expect(shed).toEqual(['ns/big:0', 'ns/big:1']);
  });
});
