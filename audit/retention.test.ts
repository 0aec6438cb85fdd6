import { describe, expect, it } from 'vitest';
import { parseRecordLimit, parseRetention } from './retention.js';

describe('parseRetention', () => {
  it.each([
    ['whole days', '30d', 30 * 86_400_000],
    ['Go hours', '720h', 720 * 3_600_000],
    ['Go mixed', '1h30m', 90 * 60_000],
    ['exactly a minute', '1m', 60_000],
  ])('%s: %s', (_n, text, ms) => {
    expect(parseRetention(text)).toBe(ms);
  });

  it.each(['0', '', '  '])('keeps forever for %j', (text) => {
    expect(parseRetention(text)).toBeUndefined();
  });

  it.each([
    ['not a duration', 'forever', 'not a duration'],
    ['a unit Go does not have', '3w', 'not a duration'],
    ['too short to be meant', '30s', 'shorter than one minute'],
    ['negative', '-5d', 'not a duration'],
  ])('rejects %s (%s)', (_n, text, msg) => {
    expect(() => parseRetention(text)).toThrow(msg);
  });
});

describe('parseRecordLimit', () => {
  it('reads a whole number of records; 0 sets no limit', () => {
    expect(parseRecordLimit('--audit-max-records-per-agent', '1000')).toBe(1000);
    expect(parseRecordLimit('--audit-max-records-per-agent', '0')).toBeUndefined();
  });

  it.each(['-1', '1.5', '10k', '', '1e3'])('refuses %j, naming the flag', (text) => {
    expect(() => parseRecordLimit('--audit-max-records-per-namespace', text)).toThrow(
      /^--audit-max-records-per-namespace: .* is not a whole number of records/,
    );
  });
});
