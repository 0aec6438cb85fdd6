import { describe, expect, it } from 'vitest';
import { type PruneRecord, planPrune } from './audit-retention.js';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-29T12:00:00Z');
const rec = (sequence: number, hoursAgo: number): PruneRecord => ({
  name: `bot-${sequence}`,
  sequence,
  digest: String(sequence).repeat(64).slice(0, 64),
  endTime: new Date(NOW - hoursAgo * HOUR).toISOString(),
});

describe('planPrune', () => {
  it('prunes the old prefix and records the cut at its last record', () => {
    const p = planPrune([rec(0, 50), rec(1, 40), rec(2, 10), rec(3, 1)], undefined, NOW, 24 * HOUR);
    expect(p).toEqual({ cut: { sequence: 1, digest: rec(1, 0).digest }, delete: ['bot-0', 'bot-1'] });
  });

  it('never prunes the newest record, however old', () => {
    const p = planPrune([rec(0, 50), rec(1, 40)], undefined, NOW, 24 * HOUR);
    expect(p.delete).toEqual(['bot-0']);
  });

  it('stops at a gap: a missing record is evidence, not retention', () => {
    const p = planPrune([rec(0, 50), rec(2, 45), rec(3, 40), rec(4, 1)], undefined, NOW, 24 * HOUR);
    expect(p.delete).toEqual(['bot-0']);
    expect(p.cut?.sequence).toBe(0);
  });

  it('does not prune a chain whose start is missing without a cut', () => {
    expect(planPrune([rec(3, 50), rec(4, 40), rec(5, 1)], undefined, NOW, 24 * HOUR)).toEqual({ delete: [] });
  });

  it('continues after a previous cut, and deletes leftovers at or below it (crash mid-prune)', () => {
    const p = planPrune(
      [rec(2, 60), rec(3, 50), rec(4, 40), rec(5, 1)],
      { sequence: 2, digest: 'x' },
      NOW,
      24 * HOUR,
    );
    expect(p).toEqual({
      cut: { sequence: 4, digest: rec(4, 0).digest },
      delete: ['bot-2', 'bot-3', 'bot-4'],
    });
  });

  it('keeps records that are young enough, even behind an old one out of order in the list', () => {
    const p = planPrune([rec(2, 1), rec(0, 50), rec(1, 2)], undefined, NOW, 24 * HOUR);
    expect(p.delete).toEqual(['bot-0']);
  });

  it('keeps everything when nothing is old', () => {
    expect(planPrune([rec(0, 2), rec(1, 1)], undefined, NOW, 24 * HOUR)).toEqual({ delete: [] });
  });
});
