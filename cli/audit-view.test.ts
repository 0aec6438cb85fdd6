import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { type ChainProblem, recordName, sealRecord } from '../core/audit/chain.js';
import {
  auditSelectors,
  filterEntries,
  formatTable,
  formatVerify,
  parseDecision,
  parseSince,
  VERIFY_EXIT,
  VERIFY_EXIT_HELP,
  verifyExitCode,
  verifyRecords,
} from './audit-view.js';

const e = (sec: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  time: new Date(Date.UTC(2026, 10, 29, 12, 0, sec)).toISOString(),
  kind: 'Decision',
  decision: 'Allow',
  user: 'agent acting alone',
  target: 'jira',
  tool: 'jira.get_issue',
  ...over,
});

function records(agent: string, batches: AuditEntry[][]): AuditRecord[] {
  let prev = '';
  return batches.map((entries, sequence) => {
    const spec = sealRecord({ agent, sequence, previousDigest: prev, entries });
    prev = spec.digest;
    return {
      apiVersion: 'warden.dev/v1alpha1',
      kind: 'AuditRecord',
      metadata: { name: recordName(agent, sequence), namespace: 'agents' },
      spec,
    };
  });
}

const denied = e(2, {
  decision: 'Deny',
  user: 'alice',
  tool: 'jira.delete_issue',
  reasons: [
    { policy: 'agents/no-deletes', rule: 0, condition: 'not-delete', message: 'deletes are not allowed' },
  ],
});
const bot = records('bot', [[e(1), denied], [e(3, { tool: 'jira.search' })]]);
const other = records('other', [[e(4, { user: 'bob' })]]);

describe('filterEntries', () => {
  it.each([
    ['everything, oldest first', {}, ['1', '2', '3', '4']],
    ['one agent', { agent: 'bot' }, ['1', '2', '3']],
    ['denials', { decision: 'Deny' as const }, ['2']],
    ['a user', { user: 'alice' }, ['2']],
    ['a user glob', { user: 'b*' }, ['4']],
    ['a tool glob', { tool: 'jira.*' }, ['1', '2', '3', '4']],
    ['an exact tool', { tool: 'jira.search' }, ['3']],
    ['a target', { tool: 'jira' }, ['1', '2', '3', '4']],
    ['a time', { sinceMs: Date.UTC(2026, 10, 29, 12, 0, 3) }, ['3', '4']],
  ])('%s', (_n, f, secs) => {
    expect(filterEntries([...other, ...bot], f).map((r) => String(new Date(r.time).getUTCSeconds()))).toEqual(
      secs,
    );
  });

  it('says which record an entry came from', () => {
    expect(filterEntries(bot, { decision: 'Deny' })[0]).toMatchObject({
      agent: 'bot',
      record: recordName('bot', 0),
    });
  });
});

describe('--user: one spelling for the broker, the authority and old records', () => {
  const IDP = 'https://idp.example';
  const trail = records('bot', [
    [
      e(1, { user: 'alice', userIssuer: IDP }),
      e(2, { kind: 'Credential', user: 'alice', userIssuer: IDP }),
      // Written before userIssuer: the authority's entry spelled the issuer into user.
      e(3, { kind: 'Credential', user: `alice (${IDP})` }),
      e(4, { user: 'alice', userIssuer: 'https://other-idp.example' }),
      e(5, { user: 'alicia', userIssuer: IDP }),
    ],
  ]);
  const secs = (f: Parameters<typeof filterEntries>[1]) =>
    filterEntries(trail, f).map((r) => new Date(r.time).getUTCSeconds());

  it.each([
    ['the subject finds broker, authority and old authority entries of every issuer', 'alice', [1, 2, 3, 4]],
    ["the subject with its issuer finds only that issuer's", `alice (${IDP})`, [1, 2, 3]],
    ['a glob on the subject', 'ali*', [1, 2, 3, 4, 5]],
    ['a glob on the issuer', '* (https://other-idp.example)', [4]],
  ])('%s', (_n, user, want) => {
    expect(secs({ user })).toEqual(want);
  });

  it('views show the subject and the issuer apart, old records split the same way', () => {
    const rows = filterEntries(trail, { user: 'alice' });
    expect(rows.map((r) => [r.user, r.userIssuer])).toEqual([
      ['alice', IDP],
      ['alice', IDP],
      ['alice', IDP],
      ['alice', 'https://other-idp.example'],
    ]);
    const wide = formatTable(rows, { wide: true });
    expect(wide).toContain(`alice (${IDP})`);
    expect(formatTable(rows)).not.toContain(IDP);
  });
});

describe('formatTable', () => {
  it('shows the deciding policy, rule, condition and message of a denial', () => {
    const t = formatTable(filterEntries(bot, {}));
    expect(t.split('\n')[0]).toMatch(/^TIME\s+AGENT\s+KIND\s+DECISION\s+USER\s+TARGET\/TOOL\s+REASON$/);
    expect(t).toContain('agents/no-deletes rule 0 not-delete: deletes are not allowed');
    expect(t).toContain('2026-11-29T12:00:02Z');
  });
  it('says so when nothing matches', () => {
    expect(formatTable([])).toBe('No audit entries match.');
  });
});

describe('verifyRecords / formatVerify', () => {
  it('reports an intact chain', () => {
    const v = verifyRecords([...bot, ...other], {});
    expect(formatVerify('agents', v)).toBe(
      'audit trail OK in namespace agents: 3 record(s), 4 entries; no forged, missing, altered or truncated record',
    );
    expect(verifyExitCode(v)).toBe(0);
  });

  it('names the deleted and the edited record', () => {
    const three = records('bot', [[e(1)], [e(2)], [e(3)]]);
    const edited = structuredClone(three[2]!);
    edited.spec.entries[0]!.decision = 'Deny';
    const v = verifyRecords([three[0]!, edited], {});
    const text = formatVerify('agents', v);
    expect(v.ok).toBe(false);
    expect(text).toMatch(new RegExp(`\\n  ALTERED +auditrecord/${recordName('bot', 2)}: `));
    expect(text).toMatch(/\n {2}GAP +auditrecord\/bot-0000000002: records 1\.\.1 of agent bot are missing/);
    expect(text.split('\n').at(-1)).toBe('exit status 24 (GAP 8 + ALTERED 16)');
    expect(verifyExitCode(v)).toBe(VERIFY_EXIT.gap + VERIFY_EXIT.altered);
  });

  it.each<[ChainProblem['kind'], number]>([
    ['forged', 4],
    ['duplicate', 4],
    ['gap', 8],
    ['missing-start', 8],
    ['altered', 16],
    ['broken-link', 16],
    ['truncated', 32],
  ])('a %s problem exits with %i', (kind, code) => {
    const v = {
      ok: false,
      records: 1,
      entries: 1,
      notes: [],
      problems: [{ kind, agent: 'bot', sequence: 1, message: 'm' }],
    };
    expect(verifyExitCode(v)).toBe(code);
  });

  it('prints notes (legacy, unanchored) on their own lines without failing', () => {
    const v = {
      ok: true,
      records: 2,
      entries: 2,
      problems: [],
      notes: [{ kind: 'legacy' as const, agent: 'bot', message: 'records 0..1 of agent bot are unsigned' }],
    };
    expect(formatVerify('agents', v).split('\n')[1]).toBe(
      '  LEGACY     agent bot: records 0..1 of agent bot are unsigned',
    );
  });

  it('documents every exit bit in --help', () => {
    for (const [cls, bit] of Object.entries(VERIFY_EXIT)) {
      expect(VERIFY_EXIT_HELP).toMatch(new RegExp(`\\n  ${bit} +${cls.toUpperCase()} `));
    }
  });

  it('accepts records pruned by retention', () => {
    const three = records('bot', [[e(1)], [e(2)], [e(3)]]);
    const v = verifyRecords(three.slice(1), { bot: { sequence: 0, digest: three[0]!.spec.digest } });
    expect(v.ok).toBe(true);
  });
});

describe('flags', () => {
  const now = Date.UTC(2026, 10, 29, 12);
  it.each([
    ['30m', now - 30 * 60_000],
    ['2h', now - 2 * 3_600_000],
    ['1d', now - 86_400_000],
    ['2026-11-29T11:00:00Z', Date.UTC(2026, 10, 29, 11)],
  ])('--since %s', (v, ms) => {
    expect(parseSince(v, now)).toBe(ms);
  });
  it.each(['yesterday', '5w', '11:00'])('--since rejects %s', (v) => {
    expect(() => parseSince(v, now)).toThrow('--since');
  });
  it('--decision is case-insensitive and strict', () => {
    expect(parseDecision('deny')).toBe('Deny');
    expect(() => parseDecision('maybe')).toThrow('must be Allow or Deny');
  });
});

describe('time range', () => {
  it('--until keeps entries at or before it; with --since, only those in between', () => {
    const t = (sec: number) => Date.UTC(2026, 10, 29, 12, 0, sec);
    expect(filterEntries([...bot, ...other], { untilMs: t(2) }).map((r) => r.time)).toEqual([
      e(1).time,
      denied.time,
    ]);
    expect(filterEntries([...bot, ...other], { sinceMs: t(2), untilMs: t(3) }).map((r) => r.time)).toEqual([
      denied.time,
      e(3).time,
    ]);
  });

  it('parses --until like --since and names the flag in errors', () => {
    expect(() => parseSince('yesterday', 0, '--until')).toThrow(/^--until: "yesterday" is neither/);
  });
});

describe('auditSelectors', () => {
  const now = Date.parse('2026-12-04T19:30:00Z');
  it('lists everything without a narrowing filter', () => {
    expect(auditSelectors({ user: 'alice', tool: 'jira.*', decision: 'Allow' }, now)).toEqual(['']);
  });

  it('selects by agent and, for denials, records that hold one or predate the label', () => {
    expect(auditSelectors({ agent: 'bot', decision: 'Deny' }, now)).toEqual([
      'warden.dev/agent=bot,warden.dev/denied!=false',
    ]);
  });

  it('adds the end-hour selectors for a time range, one list per selector', () => {
    const s = auditSelectors({ agent: 'bot', sinceMs: now - 3_600_000 }, now);
    expect(s).toHaveLength(2);
    expect(s[0]).toMatch(/^warden\.dev\/agent=bot,warden\.dev\/end-hour in \(2026-12-04T18,2026-12-04T19,/);
    expect(s[1]).toBe('warden.dev/agent=bot,!warden.dev/end-hour');
  });

  it('lists without a time selector when the range is too long', () => {
    expect(auditSelectors({ sinceMs: now - 90 * 86_400_000 }, now)).toEqual(['']);
  });
});
