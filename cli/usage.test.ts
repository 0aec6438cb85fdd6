import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecord } from '../core/api/index.js';
import { bar, formatUsage, isProtocolMessage, usageCsv, usageOf } from './usage.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const at = (h: number, m = 0) => new Date(Date.UTC(2026, 11, 4, h, m)).toISOString();

function record(agent: string, entries: AuditEntry[], ns = 'agents'): AuditRecord {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AuditRecord',
    metadata: { name: `${agent}-0`, namespace: ns },
    spec: {
      agent,
      sequence: 0,
      previousDigest: '',
      digest: 'b'.repeat(64),
      startTime: entries[0]?.time ?? '',
      endTime: entries.at(-1)?.time ?? '',
      entries,
    },
  };
}

const tool = (
  time: string,
  name: string,
  decision: 'Allow' | 'Deny',
  user = 'agent acting alone',
): AuditEntry => ({
  time,
  kind: 'Decision',
  decision,
  user,
  target: 'jira',
  tool: name,
});

const records = [
  record('support-bot', [
    {
      time: at(1),
      kind: 'Decision',
      decision: 'Allow',
      target: 'jira',
      method: 'initialize',
      user: 'agent acting alone',
    },
    // The MCP stream's GET, refused: protocol traffic, not a call.
    {
      time: at(1),
      kind: 'Decision',
      decision: 'Deny',
      target: 'jira',
      method: 'GET',
      user: 'agent acting alone',
    },
    tool(at(9, 1), 'jira.get_issue', 'Allow', 'alice'),
    tool(at(9, 2), 'jira.get_issue', 'Allow', 'bob'),
    tool(at(9, 3), 'jira.search', 'Allow', 'alice'),
    tool(at(10, 0), 'jira.delete_issue', 'Deny'),
    { time: at(10, 1), kind: 'Credential', decision: 'Allow', target: 'jira', credentialId: 'j1' },
    { time: at(10, 2), kind: 'Credential', decision: 'Deny', target: 'jira' },
    {
      time: at(11, 0),
      kind: 'Decision',
      decision: 'Allow',
      target: 'api',
      method: 'GET',
      path: '/v1/x',
      user: 'alice',
    },
    { time: at(11, 5), kind: 'Suspension', decision: 'Deny' },
  ]),
  record('ops-bot', [tool(at(11, 30), 'jira.search', 'Deny', 'unverified user')]),
];

const since = Date.UTC(2026, 11, 4, 0, 0);

describe('usageOf', () => {
  it('counts calls, denials, credentials, distinct users and hours; protocol messages apart', () => {
    const r = usageOf({ records, agentNames: [], sinceMs: since, now: NOW, by: 'tool' });
    expect(r.agents).toEqual(['ops-bot', 'support-bot']);
    expect(r.totals).toEqual({
      calls: 6,
      allowed: 4,
      denied: 2,
      credentialsIssued: 1,
      distinctUsers: 2,
      actingAlone: 1,
      protocolMessages: 2,
    });
    expect(r.rows).toEqual([
      { key: 'jira.get_issue', calls: 2, allowed: 2, denied: 0, users: 2 },
      { key: 'jira.search', calls: 2, allowed: 1, denied: 1, users: 1 },
      { key: 'api GET (HTTP)', calls: 1, allowed: 1, denied: 0, users: 1 },
      { key: 'jira.delete_issue', calls: 1, allowed: 0, denied: 1, users: 0 },
    ]);
    expect(r.hours[9]).toBe(3);
    expect(r.busiestHours).toEqual([
      { hour: 9, calls: 3 },
      { hour: 11, calls: 2 },
      { hour: 10, calls: 1 },
    ]);
  });

  it.each([
    ['user', ['alice', 'agent acting alone', 'bob', 'unverified user']],
    ['target', ['jira', 'api']],
    ['day', ['2026-12-04']],
    ['agent', ['support-bot', 'ops-bot']],
  ] as const)('groups by %s', (by, keys) => {
    expect(usageOf({ records, agentNames: [], sinceMs: since, now: NOW, by }).rows.map((x) => x.key)).toEqual(
      keys,
    );
  });

  it('keeps to the agents and the window asked for', () => {
    const r = usageOf({ records, agentNames: ['ops-bot'], sinceMs: since, now: NOW, by: 'tool' });
    expect(r.totals.calls).toBe(1);
    const late = usageOf({ records, agentNames: [], sinceMs: Date.parse(at(10, 30)), now: NOW, by: 'tool' });
    expect(late.totals.calls).toBe(2);
    expect(late.totals.credentialsIssued).toBe(0);
  });

  it('tells MCP protocol messages from refused requests', () => {
    expect(isProtocolMessage({ time: at(1), kind: 'Decision', method: 'tools/list' })).toBe(true);
    expect(isProtocolMessage({ time: at(1), kind: 'Decision', method: 'DELETE' })).toBe(false);
    // A refused GET on an MCP target (the stream) is protocol traffic; on an HTTP target a call.
    const get = {
      time: at(1),
      kind: 'Decision' as const,
      decision: 'Deny' as const,
      target: 'jira',
      method: 'GET',
    };
    expect(isProtocolMessage(get, new Set(['jira']))).toBe(true);
    expect(isProtocolMessage({ ...get, target: 'api' }, new Set(['jira']))).toBe(false);
    expect(
      isProtocolMessage({
        time: at(1),
        kind: 'Decision',
        replay: { kind: 'session', policyDecision: 'Allow' },
      }),
    ).toBe(true);
  });
});

describe('views', () => {
  it('draws bars in eighths, never empty for a non-zero value', () => {
    expect(bar(10, 10, 4)).toBe('████');
    expect(bar(5, 10, 4)).toBe('██');
    expect(bar(1, 80, 10)).toBe('▏');
    expect(bar(0, 10)).toBe('');
  });

  it('prints totals, rows with bars and the hours', () => {
    const text = formatUsage(usageOf({ records, agentNames: [], sinceMs: since, now: NOW, by: 'tool' }));
    expect(text).toContain(
      'calls 6 (allowed 4, denied 2, 33%), credentials issued 1, distinct users 2, acting alone 1, MCP protocol messages 2',
    );
    expect(text).toContain('busiest hours (UTC): 09:00 (3), 11:00 (2), 10:00 (1)');
    expect(text).toMatch(/jira\.get_issue\s+2\s+0 \(0%\)\s+2\s+█{30}/);
    expect(text).toMatch(/ {2}09:00 {2}3 {2}█{40}/);
  });

  it('writes CSV that a spreadsheet does not run', () => {
    const r = usageOf({
      records: [
        record('x', [tool(at(9), '=HYPERLINK("http://evil")', 'Allow'), tool(at(9), 'a,b', 'Allow')]),
      ],
      agentNames: [],
      sinceMs: since,
      now: NOW,
      by: 'tool',
    });
    expect(usageCsv(r).split('\n')).toEqual([
      'tool,calls,allowed,denied,users',
      '"\'=HYPERLINK(""http://evil"")",1,1,0,0',
      '"a,b",1,1,0,0',
    ]);
  });
});
