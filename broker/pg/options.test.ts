import { describe, expect, it } from 'vitest';
import { splitOptions, wardenSettings } from './options.js';

describe('splitOptions (libpq options word splitting)', () => {
  it('splits on whitespace and honours backslash escapes', () => {
    expect(splitOptions('  -c a=1\t-c b=x\\ y  --c=\\\\z ')).toEqual(['-c', 'a=1', '-c', 'b=x y', '--c=\\z']);
  });

  it('handles empty input and a trailing backslash', () => {
    expect(splitOptions('')).toEqual([]);
    expect(splitOptions('a\\')).toEqual(['a\\']);
  });
});

describe('wardenSettings', () => {
  it('reads the user token and context in every option form', () => {
    expect(
      wardenSettings('-c warden.user_token=eyJ.a.b -cwarden.context={"ticketId":"CHG-1"} -c search_path=x'),
    ).toEqual({ ok: true, userToken: 'eyJ.a.b', context: '{"ticketId":"CHG-1"}' });
    expect(wardenSettings('--warden.context={"purpose":"month\\ end"}')).toEqual({
      ok: true,
      context: '{"purpose":"month end"}',
    });
  });

  it('is empty without options, or with only other server settings', () => {
    expect(wardenSettings(undefined)).toEqual({ ok: true });
    expect(wardenSettings('-c statement_timeout=5s --geqo=off')).toEqual({ ok: true });
  });

  it.each([
    ['-c warden.user=alice', /unknown Warden setting 'warden.user'/],
    ['-c warden.user_token', /warden.user_token: expected warden.user_token=<value>/],
    ['-c warden.context={} -c warden.context={}', /warden.context: set it once/],
  ])('refuses %s with a message that says what to fix', (options, message) => {
    const r = wardenSettings(options);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(message);
  });
});
