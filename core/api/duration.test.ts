import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    { text: '5m', ms: 300_000 },
    { text: '1h', ms: 3_600_000 },
    { text: '1h30m', ms: 5_400_000 },
    { text: '90s', ms: 90_000 },
    { text: '250ms', ms: 250 },
    { text: '1.5h', ms: 5_400_000 },
    { text: '0s', ms: 0 },
  ])('$text is $ms ms', ({ text, ms }) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '5', 'm', '5 m', '-5m', '1d', '5M', 'PT5M', '1h 30m'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    { ms: 0, text: '0s' },
    { ms: 250, text: '250ms' },
    { ms: 90_000, text: '1m30s' },
    { ms: 5_400_000, text: '1h30m' },
    { ms: 3_600_000, text: '1h' },
    { ms: 1_500, text: '1.5s' },
  ])('$ms ms is $text', ({ ms, text }) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 1000, 61_000, 3_600_000, 86_400_000, 90_061_000])
      expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects %d', (ms) => {
    expect(() => formatDuration(ms)).toThrow(RangeError);
  });
});
