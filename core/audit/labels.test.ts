import { describe, expect, it } from 'vitest';
import {
  agentLabelValue,
  auditRecordLabels,
  hourLabelValue,
  labelMismatches,
  MAX_SELECTED_HOURS,
  timeSelectors,
} from './labels.js';

const at = (iso: string) => Date.parse(iso);

describe('AuditRecord labels', () => {
  it('name the agent, the UTC hour of the end time and whether anything was denied', () => {
    expect(
      auditRecordLabels({
        agent: 'support-bot',
        endTime: '2026-12-04T19:59:59.999Z',
        entries: [
          { time: '2026-12-04T19:59:00Z', kind: 'Decision', decision: 'Allow' },
          { time: '2026-12-04T19:59:59.999Z', kind: 'Decision', decision: 'Deny' },
        ],
      }),
    ).toEqual({
      'warden.dev/agent': 'support-bot',
      'warden.dev/end-hour': '2026-12-04T19',
      'warden.dev/denied': 'true',
    });
    expect(
      auditRecordLabels({
        agent: 'a',
        endTime: '2026-12-04T20:00:00Z',
        entries: [{ time: 'x', kind: 'Session' }],
      }),
    ).toMatchObject({ 'warden.dev/end-hour': '2026-12-04T20', 'warden.dev/denied': 'false' });
  });

  it('hash long agent names into a valid label value', () => {
    expect(agentLabelValue('a'.repeat(63))).toBe('a'.repeat(63));
    expect(agentLabelValue('a'.repeat(64))).toMatch(/^h-[0-9a-f]{40}$/);
  });

  it('hour values are valid label values', () => {
    expect(hourLabelValue(at('2026-01-02T03:04:05Z'))).toMatch(/^[0-9A-Za-z]([-0-9A-Za-z_.]*[0-9A-Za-z])?$/);
  });
});

describe('timeSelectors', () => {
  it('selects the hours from --since to --until plus a day of margin, and records without the label', () => {
    const [inRange, unlabeled] = timeSelectors(at('2026-12-04T18:30:00Z'), at('2026-12-04T19:10:00Z')) ?? [];
    const hours = /in \((.*)\)$/.exec(inRange ?? '')?.[1]?.split(',') ?? [];
    expect(hours[0]).toBe('2026-12-04T18');
    expect(hours).toContain('2026-12-04T19');
    expect(hours[hours.length - 1]).toBe('2026-12-05T19');
    expect(hours).toHaveLength(2 + 24);
    expect(inRange?.startsWith('warden.dev/end-hour in (')).toBe(true);
    expect(unlabeled).toBe('!warden.dev/end-hour');
  });

  it('gives up on a range too long for one selector (the query lists without one)', () => {
    const since = at('2026-11-01T00:00:00Z');
    expect(timeSelectors(since, since + (MAX_SELECTED_HOURS - 25) * 3_600_000)).toBeDefined();
    expect(timeSelectors(since, since + MAX_SELECTED_HOURS * 3_600_000)).toBeUndefined();
  });
});

describe('labelMismatches: a relabelled record is named by whoever lists it', () => {
  const spec = {
    agent: 'support-bot',
    endTime: '2026-12-04T19:59:59.999Z',
    entries: [{ time: '2026-12-04T19:59:00Z', kind: 'Decision' as const, decision: 'Deny' as const }],
  };
  const labels = auditRecordLabels(spec);

  it('finds nothing when the labels are the ones the spec derives', () => {
    expect(labelMismatches({ metadata: { labels }, spec })).toEqual([]);
  });

  it('finds nothing on a record written before the time and denial labels existed', () => {
    expect(labelMismatches({ metadata: { labels: { 'warden.dev/agent': 'support-bot' } }, spec })).toEqual(
      [],
    );
  });

  it.each([
    ['a denial hidden from --decision Deny', 'warden.dev/denied', 'false', 'true'],
    ['a record moved out of a --since range', 'warden.dev/end-hour', '2026-01-01T00', '2026-12-04T19'],
    ['a record moved to another agent', 'warden.dev/agent', 'other-bot', 'support-bot'],
  ])('%s', (_n, label, found, derived) => {
    expect(labelMismatches({ metadata: { labels: { ...labels, [label]: found } }, spec })).toEqual([
      { label, found, derived },
    ]);
  });
});
