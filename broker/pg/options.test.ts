import { describe, expect, it } from 'vitest';
import { FORWARDED_SETTINGS, sessionSettings, splitOptions } from './options.js';

describe('splitOptions (libpq options word splitting)', () => {
  it('splits on whitespace and honours backslash escapes', () => {
    expect(splitOptions('  -c a=1\t-c b=x\\ y  --c=\\\\z ')).toEqual(['-c', 'a=1', '-c', 'b=x y', '--c=\\z']);
  });

  it('handles empty input and a trailing backslash', () => {
    expect(splitOptions('')).toEqual([]);
    expect(splitOptions('a\\')).toEqual(['a\\']);
  });
});

const base = { user: 'agent', database: 'orders' };

describe('sessionSettings', () => {
  it('reads the user token and context in every option form, and never forwards them', () => {
    expect(
      sessionSettings({
        ...base,
        options: '-c warden.user_token=eyJ.a.b -cwarden.context={"ticketId":"CHG-1"} -c search_path=x',
      }),
    ).toEqual({
      ok: true,
      userToken: 'eyJ.a.b',
      context: '{"ticketId":"CHG-1"}',
      forward: { search_path: 'x' },
    });
    expect(sessionSettings({ ...base, options: '--warden.context={"purpose":"month\\ end"}' })).toEqual({
      ok: true,
      context: '{"purpose":"month end"}',
      forward: {},
    });
  });

  it('forwards the listed settings from start-up parameters and options, names in lower case', () => {
    expect(
      sessionSettings({
        ...base,
        application_name: 'psql',
        client_encoding: 'UTF8',
        DateStyle: 'ISO, MDY',
        options: '-c statement_timeout=5s --Search_Path=app,public -cTimeZone=UTC',
      }),
    ).toEqual({
      ok: true,
      forward: {
        application_name: 'psql',
        client_encoding: 'UTF8',
        datestyle: 'ISO, MDY',
        statement_timeout: '5s',
        search_path: 'app,public',
        timezone: 'UTC',
      },
    });
  });

  it('is empty without options', () => {
    expect(sessionSettings(base)).toEqual({ ok: true, forward: {} });
  });

  it('leaves out the protocol parameters and protocol extensions (_pq_.*)', () => {
    expect(sessionSettings({ ...base, replication: 'false', '_pq_.command_trace': 'on' })).toEqual({
      ok: true,
      forward: {},
    });
  });

  it.each([
    ['-c warden.user=alice', /unknown Warden setting 'warden.user'/, false],
    ['-c warden.user_token', /warden.user_token: expected warden.user_token=<value>/, false],
    ['-c warden.context={} -c warden.context={}', /warden.context: set it once/, false],
    [
      '-c work_mem=1GB',
      /connection option -c 'work_mem' is not forwarded by the Warden broker; .*search_path/,
      true,
    ],
    ['-c role=postgres', /connection option -c 'role' is not forwarded/, true],
    ['--session_authorization=postgres', /'session_authorization' is not forwarded/, true],
    ['-B 100', /connection option '-B' is not a setting/, true],
    ['-c search_path=a -c SEARCH_PATH=b', /setting 'search_path': set it once/, false],
  ])('refuses the option %s with a message that names it', (options, message, unsupported) => {
    const r = sessionSettings({ ...base, options });
    expect(r).toMatchObject({ ok: false, unsupported });
    expect(r.ok ? '' : r.message).toMatch(message);
  });

  it.each([
    [{ geqo: 'off' }, /start-up parameter 'geqo' is not forwarded/, true],
    [{ 'warden.user_token': 'x' }, /send Warden settings as connection options/, false],
    [{ search_path: 'a', options: '-c search_path=b' }, /set it once/, false],
  ])('refuses the start-up parameters %j', (params, message, unsupported) => {
    const r = sessionSettings({ ...base, ...params });
    expect(r).toMatchObject({ ok: false, unsupported });
    expect(r.ok ? '' : r.message).toMatch(message);
  });

  it('lists only lower-case names, none of which changes identity', () => {
    for (const n of FORWARDED_SETTINGS) expect(n).toBe(n.toLowerCase());
    expect(FORWARDED_SETTINGS).not.toContain('role');
    expect(FORWARDED_SETTINGS).not.toContain('session_authorization');
  });
});
