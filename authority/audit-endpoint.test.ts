import { describe, expect, it } from 'vitest';
import { MAX_AUDIT_EVENTS, parseAuditBatch, parseBrokerEvent } from './audit-endpoint.js';

const NOW = new Date('2026-11-29T12:00:00.000Z');
const ok = {
  time: '2026-11-29T11:59:59.000Z',
  kind: 'Decision',
  decision: 'Deny',
  pod: 'someone-elses-pod',
  user: 'alice',
  target: 'jira',
  tool: 'jira.delete_issue',
  requestId: 'r-1',
  reason: 'NoMatchingRule',
  policy: 'agents/support',
  message: 'no rule allows it',
  reasons: [{ policy: 'agents/support', rule: 0, condition: 'ticket', message: 'no ticket' }],
  stripped: ['authorization'],
};

describe('parseBrokerEvent', () => {
  it('keeps what an auditor needs and drops the pod the body claims (the session decides it)', () => {
    const e = parseBrokerEvent(ok, 0, NOW);
    expect(e.entry).toEqual({
      time: ok.time,
      kind: 'Decision',
      decision: 'Deny',
      user: 'alice',
      target: 'jira',
      tool: 'jira.delete_issue',
      requestId: 'r-1',
      policy: 'agents/support',
      message: 'NoMatchingRule: no rule allows it',
      reasons: [{ policy: 'agents/support', rule: 0, condition: 'ticket', message: 'no ticket' }],
    });
    expect(e.entry.pod).toBeUndefined();
    expect(e.reason).toBe('NoMatchingRule');
    expect(e.stripped).toEqual(['authorization']);
  });

  it.each([
    ['an unparsable time', 'yesterday'],
    ['a time far in the future', '2030-01-01T00:00:00Z'],
  ])('replaces %s with the receive time', (_n, time) => {
    expect(parseBrokerEvent({ ...ok, time }, 0, NOW).entry.time).toBe(NOW.toISOString());
  });

  it('clips long fields to the schema limits', () => {
    const e = parseBrokerEvent({ ...ok, message: 'm'.repeat(5000), tool: 't'.repeat(999) }, 0, NOW);
    expect(e.entry.message).toHaveLength(1024);
    expect(e.entry.tool).toHaveLength(256);
  });

  it('keeps the replay data as the schema takes it', () => {
    const replay = {
      kind: 'mcp',
      policyDecision: 'Deny',
      policyReason: 'NoMatchingAllow',
      args: '{"project":"SUP"}',
      user: { sub: 'alice', groups: ['support'] },
      context: { ticketId: 'SUP-1' },
    };
    expect(parseBrokerEvent({ ...ok, replay }, 0, NOW).entry.replay).toEqual(replay);
    expect(parseBrokerEvent(ok, 0, NOW).entry.replay).toBeUndefined();
  });

  it.each([
    ['not an object', 'x', 'events[3]: must be an object'],
    [
      'replay of an unknown kind',
      { ...ok, replay: { kind: 'grpc', policyDecision: 'Allow' } },
      'events[3].replay.kind',
    ],
    [
      'replay args beyond the schema limit',
      { ...ok, replay: { kind: 'mcp', policyDecision: 'Allow', args: 'x'.repeat(3000) } },
      'events[3].replay.args',
    ],
    [
      'replay with an unknown field',
      { ...ok, replay: { kind: 'mcp', policyDecision: 'Allow', token: 'x' } },
      'events[3].replay',
    ],
    [
      'replay over the byte bound',
      {
        ...ok,
        replay: {
          kind: 'mcp',
          policyDecision: 'Allow',
          args: 'a'.repeat(2048),
          withheld: Array.from({ length: 16 }, () => 'p'.repeat(256)),
          user: {
            sub: 's'.repeat(256),
            claims: 'c'.repeat(512),
            groups: Array.from({ length: 32 }, () => 'g'.repeat(128)),
          },
        },
      },
      'events[3].replay: ',
    ],
    ['an unknown kind', { ...ok, kind: 'Whatever' }, 'events[3].kind'],
    ['no decision', { ...ok, decision: undefined }, 'events[3].decision: must be Allow or Deny'],
    ['a non-string user', { ...ok, user: 7 }, 'events[3].user: must be a string'],
    ['reasons not a list', { ...ok, reasons: {} }, 'events[3].reasons: must be a list'],
    ['a fractional rule', { ...ok, reasons: [{ rule: 1.5, message: 'x' }] }, 'events[3].reasons[0].rule'],
  ])('rejects %s, naming the event and field', (_n, raw, msg) => {
    expect(() => parseBrokerEvent(raw, 3, NOW)).toThrow(msg);
  });
});

describe('parseAuditBatch', () => {
  it('parses every event', () => {
    expect(parseAuditBatch({ events: [ok, { ...ok, decision: 'Allow' }] }, NOW)).toHaveLength(2);
  });
  it('rejects a body without an events list', () => {
    expect(() => parseAuditBatch({ event: [] }, NOW)).toThrow('events: must be a list');
  });
  it('rejects an oversized batch with what to do', () => {
    const events = Array.from({ length: MAX_AUDIT_EVENTS + 1 }, () => ok);
    expect(() => parseAuditBatch({ events }, NOW)).toThrow('ship smaller batches');
  });
});

describe('parseBrokerEvent: the delegation chain', () => {
  const chain = [
    { name: 'planner', namespace: 'agents' },
    { name: 'researcher', namespace: 'agents' },
  ];
  it('keeps it', () => {
    expect(parseBrokerEvent({ ...ok, chain }, 0, NOW).entry.chain).toEqual(chain);
  });
  it('refuses more than 8 agents', () => {
    const long = Array.from({ length: 9 }, (_, i) => ({ name: `a${i}`, namespace: 'agents' }));
    expect(() => parseBrokerEvent({ ...ok, chain: long }, 0, NOW)).toThrow('has 9 agents; at most 8');
  });
  it('refuses an agent without a namespace', () => {
    expect(() => parseBrokerEvent({ ...ok, chain: [{ name: 'planner' }] }, 0, NOW)).toThrow(
      'chain[0]: needs name and namespace',
    );
  });
  it('refuses a chain that is not a list', () => {
    expect(() => parseBrokerEvent({ ...ok, chain: 'planner' }, 0, NOW)).toThrow('must be a list');
  });
  it('keeps a claimed (unverified) chain apart from a chain', () => {
    const entry = parseBrokerEvent({ ...ok, decision: 'Deny', claimedChain: chain }, 0, NOW).entry;
    expect(entry.claimedChain).toEqual(chain);
    expect(entry.chain).toBeUndefined();
  });
  it('checks a claimed chain as strictly, naming the field', () => {
    const long = Array.from({ length: 9 }, (_, i) => ({ name: `a${i}`, namespace: 'agents' }));
    expect(() => parseBrokerEvent({ ...ok, claimedChain: long }, 0, NOW)).toThrow(
      'events[0].claimedChain: has 9 agents; at most 8',
    );
    expect(() => parseBrokerEvent({ ...ok, claimedChain: [{ name: 'x' }] }, 0, NOW)).toThrow(
      'claimedChain[0]: needs name and namespace',
    );
  });
});
