import { describe, expect, it } from 'vitest';
import { describeLimit, type PruneChain, planRetention, retentionEnabled } from './retention.js';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-29T12:00:00Z');
/** A chain whose records were created `hoursAgo[i]` hours ago, at sequences from `from`. */
const chain = (agent: string, hoursAgo: number[], from = 0, cut?: number): PruneChain => ({
  agent,
  ...(cut !== undefined ? { previousCut: { sequence: cut, digest: 'a'.repeat(64) } } : {}),
  records: hoursAgo.map((h, i) => ({
    name: `${agent}-${from + i}`,
    sequence: from + i,
    createdMs: NOW - h * HOUR,
  })),
});

describe('planRetention by age', () => {
  const age = { maxAgeMs: 24 * HOUR };

  it('prunes the old prefix and cuts at its last record', () => {
    expect(planRetention([chain('bot', [50, 40, 10, 1])], age, NOW)).toEqual([
      { agent: 'bot', cutSequence: 1, reason: 'MaxAge', delete: ['bot-0', 'bot-1'] },
    ]);
  });

  it('never prunes the newest record, however old', () => {
    expect(planRetention([chain('bot', [50, 40])], age, NOW)[0]?.delete).toEqual(['bot-0']);
  });

  it('stops at a gap: a missing record is evidence, not retention', () => {
    const c = chain('bot', [50, 45, 40, 1]);
    const records = c.records.filter((r) => r.sequence !== 1);
    expect(planRetention([{ ...c, records }], age, NOW)).toEqual([
      { agent: 'bot', cutSequence: 0, reason: 'MaxAge', delete: ['bot-0'] },
    ]);
  });

  it('does not prune a chain whose start is missing without a cut', () => {
    expect(planRetention([chain('bot', [50, 40, 1], 3)], age, NOW)).toEqual([{ agent: 'bot', delete: [] }]);
  });

  it('continues after a previous cut and deletes leftovers at or below it (crash mid-prune)', () => {
    expect(planRetention([chain('bot', [60, 50, 40, 1], 2, 2)], age, NOW)).toEqual([
      { agent: 'bot', cutSequence: 4, reason: 'MaxAge', delete: ['bot-2', 'bot-3', 'bot-4'] },
    ]);
  });

  it('deletes leftovers without moving the cut when nothing else is old', () => {
    expect(planRetention([chain('bot', [60, 2, 1], 2, 2)], age, NOW)).toEqual([
      { agent: 'bot', delete: ['bot-2'] },
    ]);
  });

  it('keeps everything young, whatever order the records are listed in', () => {
    const c = chain('bot', [50, 2, 1]);
    expect(planRetention([{ ...c, records: [...c.records].reverse() }], age, NOW)[0]?.delete).toEqual([
      'bot-0',
    ]);
    expect(planRetention([chain('bot', [2, 1])], age, NOW)).toEqual([{ agent: 'bot', delete: [] }]);
  });
});

describe('planRetention by records per agent', () => {
  it('keeps the newest N of each agent', () => {
    const plans = planRetention(
      [chain('a', [5, 4, 3, 2, 1]), chain('b', [2, 1])],
      { maxRecordsPerAgent: 2 },
      NOW,
    );
    expect(plans).toEqual([
      { agent: 'a', cutSequence: 2, reason: 'MaxRecordsPerAgent', delete: ['a-0', 'a-1', 'a-2'] },
      { agent: 'b', delete: [] },
    ]);
  });

  it('counts only records after the cut, and keeps the newest even with a limit of 1', () => {
    expect(planRetention([chain('a', [9, 3, 2, 1], 4, 4)], { maxRecordsPerAgent: 1 }, NOW)).toEqual([
      { agent: 'a', cutSequence: 6, reason: 'MaxRecordsPerAgent', delete: ['a-4', 'a-5', 'a-6'] },
    ]);
  });

  it('names the limit that moved the cut last when age and size both prune', () => {
    const [plan] = planRetention(
      [chain('a', [50, 40, 3, 2, 1])],
      { maxAgeMs: 24 * HOUR, maxRecordsPerAgent: 2 },
      NOW,
    );
    expect(plan).toEqual({
      agent: 'a',
      cutSequence: 2,
      reason: 'MaxRecordsPerAgent',
      delete: ['a-0', 'a-1', 'a-2'],
    });
  });
});

describe('planRetention by records per namespace', () => {
  it('prunes the oldest records of any agent until the namespace is within its limit', () => {
    // a: created 10, 8, 6 h ago; b: 9, 7, 1 h ago → 6 records, limit 3: a-0, b-0, a-1 go.
    const plans = planRetention(
      [chain('a', [10, 8, 6]), chain('b', [9, 7, 1])],
      { maxRecordsPerNamespace: 3 },
      NOW,
    );
    expect(plans).toEqual([
      { agent: 'a', cutSequence: 1, reason: 'MaxRecordsPerNamespace', delete: ['a-0', 'a-1'] },
      { agent: 'b', cutSequence: 0, reason: 'MaxRecordsPerNamespace', delete: ['b-0'] },
    ]);
  });

  it('counts records of chains it cannot prune, and never takes a chain’s newest record', () => {
    const plans = planRetention(
      [chain('a', [10, 8]), chain('b', [9])],
      { maxRecordsPerNamespace: 1 },
      NOW,
      5,
    );
    expect(plans).toEqual([
      { agent: 'a', cutSequence: 0, reason: 'MaxRecordsPerNamespace', delete: ['a-0'] },
      { agent: 'b', delete: [] },
    ]);
  });

  it('does nothing within the limit', () => {
    expect(planRetention([chain('a', [10, 8])], { maxRecordsPerNamespace: 2 }, NOW)).toEqual([
      { agent: 'a', delete: [] },
    ]);
  });
});

describe('planRetention with a list that lags behind the anchored head (API server cache)', () => {
  it('counts the records up to the head and may prune the last listed record: it is not the newest', () => {
    const c = { ...chain('a', [5, 4, 3]), head: 6 };
    // 3 listed (0..2) + 4 beyond the list (3..6) = 7 records; keep 3 → prune 4, but only 0..2 are listed.
    expect(planRetention([c], { maxRecordsPerAgent: 3 }, NOW)).toEqual([
      { agent: 'a', cutSequence: 2, reason: 'MaxRecordsPerAgent', delete: ['a-0', 'a-1', 'a-2'] },
    ]);
  });

  it('counts them against the namespace limit too', () => {
    const plans = planRetention(
      [{ ...chain('a', [9, 8]), head: 3 }, chain('b', [7])],
      { maxRecordsPerNamespace: 4 },
      NOW,
    );
    expect(plans[0]).toEqual({
      agent: 'a',
      cutSequence: 0,
      reason: 'MaxRecordsPerNamespace',
      delete: ['a-0'],
    });
  });

  it('a head not ahead of the list changes nothing', () => {
    expect(
      planRetention([{ ...chain('a', [5, 4]), head: 1 }], { maxRecordsPerAgent: 1 }, NOW)[0]?.delete,
    ).toEqual(['a-0']);
  });
});

describe('retention limits', () => {
  it('is enabled by any limit, and describes each in words', () => {
    expect(retentionEnabled({})).toBe(false);
    expect(retentionEnabled({ maxRecordsPerNamespace: 10 })).toBe(true);
    expect(describeLimit({ maxAgeMs: 30 * 24 * HOUR }, 'MaxAge')).toBe('older than 30d');
    expect(describeLimit({ maxAgeMs: 36 * HOUR }, 'MaxAge')).toBe('older than 36h');
    expect(describeLimit({ maxRecordsPerAgent: 1000 }, 'MaxRecordsPerAgent')).toBe(
      'more than 1000 records per agent',
    );
    expect(describeLimit({ maxRecordsPerNamespace: 5 }, 'MaxRecordsPerNamespace')).toBe(
      'more than 5 records in the namespace',
    );
  });
});
