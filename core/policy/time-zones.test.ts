import { describe, expect, it } from 'vitest';
import { celTimestamp, wallClock, zoneOffsetMs } from './time-zones.js';

describe('time zones', () => {
  it.each([
    ['Berlin in winter (UTC+1)', 'Europe/Berlin', '2026-01-05T10:00:00Z', 60],
    ['Berlin in summer (UTC+2)', 'Europe/Berlin', '2026-07-06T10:00:00Z', 120],
    ['Berlin just before the spring transition', 'Europe/Berlin', '2026-03-29T00:59:59Z', 60],
    ['Berlin at the spring transition', 'Europe/Berlin', '2026-03-29T01:00:00Z', 120],
    ['New York in winter', 'America/New_York', '2026-01-05T10:00:00Z', -300],
    ['Kolkata (half-hour offset)', 'Asia/Kolkata', '2026-01-05T10:00:00Z', 330],
    ['Kathmandu (quarter-hour offset)', 'Asia/Kathmandu', '2026-01-05T10:00:00Z', 345],
    [
      'St. Johns after its 2:00 local transition (04:30 UTC)',
      'America/St_Johns',
      '2026-03-08T05:30:00Z',
      -150,
    ],
    ['UTC', 'UTC', '2026-01-05T10:00:00Z', 0],
  ])('%s', (_name, zone, iso, offsetMinutes) => {
    expect(zoneOffsetMs(zone, Date.parse(iso)) / 60_000).toBe(offsetMinutes);
  });

  it('wall clock has whole seconds, like the native en-US string', () => {
    expect(wallClock(Date.parse('2026-01-05T10:00:00.123Z'), 'Europe/Berlin')).toBe('2026-01-05T11:00:00');
  });

  it('answers the library call the same way as the native implementation (at whole seconds)', () => {
    const t = celTimestamp(new Date('2026-07-06T21:45:10.250Z'));
    for (const timeZone of ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Lord_Howe']) {
      const native = new Date(new Date(t.getTime()).toLocaleString('en-US', { timeZone }));
      expect(new Date(t.toLocaleString('en-US', { timeZone })).getTime()).toBe(native.getTime());
    }
  });

  it('leaves other toLocaleString calls alone', () => {
    const t = celTimestamp(new Date('2026-01-05T10:00:00Z'));
    expect(t.toLocaleString('de-DE', { timeZone: 'UTC' })).toBe(
      new Date('2026-01-05T10:00:00Z').toLocaleString('de-DE', { timeZone: 'UTC' }),
    );
  });

  it('is still a Date to the CEL library (constructor lookup) and to instanceof', () => {
    const t = celTimestamp(new Date('2026-01-05T10:00:00Z'));
    expect(t.constructor).toBe(Date);
    expect(t).toBeInstanceOf(Date);
    expect(t.getTime()).toBe(Date.parse('2026-01-05T10:00:00Z'));
  });

  it('rejects an unknown zone like the native call', () => {
    expect(() => celTimestamp(new Date()).toLocaleString('en-US', { timeZone: 'Mars/Olympus' })).toThrow(
      RangeError,
    );
  });
});
