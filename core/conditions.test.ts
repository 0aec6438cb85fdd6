import { describe, expect, it } from 'vitest';
import {
  type Condition,
  conditionEqual,
  conditionFlipped,
  conditionsEqual,
  type DesiredCondition,
  formatTime,
  getCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
  setConditions,
} from './conditions.js';

const T1 = new Date('2026-03-01T10:00:00.456Z');
const T2 = new Date('2026-03-01T11:00:00Z');

function ready(
  status: Condition['status'],
  reason = 'Ready',
  extra: Partial<DesiredCondition> = {},
): DesiredCondition {
  return { type: 'Ready', status, reason, message: `${reason} message`, observedGeneration: 1, ...extra };
}

describe('formatTime', () => {
  it('drops milliseconds like metav1.Time', () => {
    expect(formatTime(T1)).toBe('2026-03-01T10:00:00Z');
  });
});

describe('setCondition', () => {
  it('adds a new condition with now as its transition time', () => {
    expect(setCondition(undefined, ready('True'), T1)).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Ready',
        message: 'Ready message',
        observedGeneration: 1,
        lastTransitionTime: '2026-03-01T10:00:00Z',
      },
    ]);
  });

  it('keeps lastTransitionTime when only reason, message or generation change', () => {
    const before = setCondition(undefined, ready('False', 'ServiceAccountNotFound'), T1);
    const after = setCondition(before, ready('False', 'Other', { observedGeneration: 2 }), T2);
    expect(after[0]).toMatchObject({
      reason: 'Other',
      observedGeneration: 2,
      lastTransitionTime: '2026-03-01T10:00:00Z',
    });
  });

  it('moves lastTransitionTime when the status flips', () => {
    const before = setCondition(undefined, ready('False', 'ServiceAccountNotFound'), T1);
    expect(setCondition(before, ready('True'), T2)[0]?.lastTransitionTime).toBe('2026-03-01T11:00:00Z');
  });

  it('does not modify its input and keeps the order of other conditions', () => {
    const input = setConditions(
      undefined,
      [ready('True'), { type: 'Suspended', status: 'False', reason: 'Active', message: '' }],
      T1,
    );
    const frozen = structuredClone(input);
    const out = setCondition(input, ready('False', 'X'), T2);
    expect(input).toEqual(frozen);
    expect(out.map((c) => c.type)).toEqual(['Ready', 'Suspended']);
  });

  it('is idempotent: setting the same condition twice gives an equal list', () => {
    const once = setCondition(undefined, ready('True'), T1);
    expect(setCondition(once, ready('True'), T2)).toEqual(once);
  });

  it('omits observedGeneration when not given rather than writing undefined', () => {
    const [c] = setCondition(
      undefined,
      { type: 'Ready', status: 'Unknown', reason: 'Pending', message: '' },
      T1,
    );
    expect(c && 'observedGeneration' in c).toBe(false);
  });
});

describe('comparisons', () => {
  const a = setConditions(
    undefined,
    [ready('True'), { type: 'Suspended', status: 'False', reason: 'Active', message: 'm' }],
    T1,
  );

  it.each<[string, Condition[] | undefined, Condition[] | undefined, boolean]>([
    ['identical lists', a, structuredClone(a), true],
    ['different order', a, [...a].reverse(), true],
    ['only transition times differ', a, a.map((c) => ({ ...c, lastTransitionTime: 'x' })), true],
    ['a reason differs', a, setCondition(a, ready('True', 'Other'), T1), false],
    [
      'a generation differs',
      a,
      setCondition(a, ready('True', 'Ready', { observedGeneration: 9 }), T1),
      false,
    ],
    ['one list is shorter', a, removeCondition(a, 'Suspended'), false],
    ['both absent', undefined, undefined, true],
    ['absent vs empty', undefined, [], true],
  ])('conditionsEqual: %s', (_n, x, y, expected) => {
    expect(conditionsEqual(x, y)).toBe(expected);
  });

  it('conditionEqual ignores lastTransitionTime', () => {
    const [c] = a;
    if (!c) throw new Error('fixture');
    expect(conditionEqual(c, { ...c, lastTransitionTime: 'other' })).toBe(true);
    expect(conditionEqual(c, { ...c, message: 'other' })).toBe(false);
  });

  it('getCondition / isConditionTrue / conditionFlipped', () => {
    expect(getCondition(a, 'Suspended')?.reason).toBe('Active');
    expect(getCondition(a, 'Missing')).toBeUndefined();
    expect(isConditionTrue(a, 'Ready')).toBe(true);
    expect(isConditionTrue(a, 'Suspended')).toBe(false);
    expect(isConditionTrue(undefined, 'Ready')).toBe(false);
    expect(conditionFlipped(a, setCondition(a, ready('False', 'X'), T2), 'Ready')).toBe(true);
    expect(conditionFlipped(a, setCondition(a, ready('True', 'X'), T2), 'Ready')).toBe(false);
    expect(conditionFlipped(undefined, a, 'Ready')).toBe(true);
  });
});
