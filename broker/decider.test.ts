import { describe, expect, it } from 'vitest';
import { BrokerDenyReason } from './constants.js';
import { Decider, StaticSnapshotSource } from './decider.js';
import { provider, snapshot } from './testing.js';

const supportPolicy = {
  name: 'support',
  spec: {
    effect: 'Allow',
    rules: [
      {
        targets: ['jira'],
        tools: ['jira.get_*'],
        when: [{ name: 'support-staff', expression: "user.present && 'support' in user.groups" }],
      },
      { targets: ['jira'], tools: ['jira.search'] },
      { targets: ['tickets'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } },
    ],
  },
};
const noDelete = {
  name: 'no-delete',
  spec: { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*.delete_*'] }] },
};
const providers = [
  provider('jira', 'http://127.0.0.1:1/mcp'),
  provider('tickets', 'http://127.0.0.1:1/', 'HTTP'),
];
const supportUser = { sub: 'alice', groups: ['support'] };

function setup(o: Parameters<typeof snapshot>[0] = {}) {
  let now = 1_000;
  const source = new StaticSnapshotSource(() => now);
  const decider = new Decider(source, {
    now: () => now,
    wallClock: () => new Date('2026-01-01T00:00:00Z'),
    staleAfterMs: 30_000,
  });
  source.set(snapshot({ policies: [supportPolicy, noDelete], providers, ...o }));
  return { decider, source, advance: (ms: number) => (now += ms) };
}

describe('Decider fail-closed gates', () => {
  it('denies everything before the first snapshot', () => {
    const source = new StaticSnapshotSource();
    const d = new Decider(source).decideTool('jira', 'jira.search', {}, null, null);
    expect(d).toMatchObject({ decision: 'Deny', reason: BrokerDenyReason.PolicySnapshotMissing });
    expect(d.reasons).toEqual([{ policy: null, rule: null, condition: null, message: d.message }]);
  });

  it('denies when nothing was heard for longer than the bound, and recovers on a heartbeat', () => {
    const { decider, source, advance } = setup();
    advance(30_001);
    const d = decider.decideTool('jira', 'jira.search', {}, null, null);
    expect(d.reason).toBe(BrokerDenyReason.PolicySnapshotStale);
    expect(d.message).toMatch(/nothing heard from the Warden authority for 30 s \(limit 30 s\)/);
    source.heartbeat();
    expect(decider.decideTool('jira', 'jira.search', {}, null, null).decision).toBe('Allow');
  });

  it('denies a suspended agent, naming the reason', () => {
    const { decider } = setup({ suspended: true, suspendReason: 'leaked prompt' });
    const d = decider.decideTool('jira', 'jira.search', {}, null, null);
    expect(d).toMatchObject({ decision: 'Deny', reason: BrokerDenyReason.AgentSuspended });
    expect(d.message).toBe('agent team-a/support-bot is suspended: leaked prompt');
    expect(decider.couldAllowTool('jira', 'jira.search', null)).toBe(false);
    expect(decider.blocked()?.reason).toBe(BrokerDenyReason.AgentSuspended);
  });

  it('denies when the AgentIdentity is gone', () => {
    const { decider, source } = setup();
    source.set({ ...snapshot({ providers }), agent: null });
    expect(decider.decideSession('jira', null, null).reason).toBe(BrokerDenyReason.AgentIdentityMissing);
  });

  it('a Deny policy that does not compile blocks everything; a broken Allow policy is skipped', () => {
    const broken = (effect: string) => ({
      name: `broken-${effect}`,
      spec: {
        effect,
        rules: [{ targets: ['jira'], tools: ['*'], when: [{ name: 'x', expression: 'usr.present' }] }],
      },
    });
    const deny = setup({ policies: [supportPolicy, broken('Deny')] });
    const d = deny.decider.decideTool('jira', 'jira.search', {}, null, null);
    expect(d.reason).toBe(BrokerDenyReason.PolicySnapshotInvalid);
    expect(d.message).toMatch(/AccessPolicy team-a\/broken-Deny: spec\.rules\[0\]\.when\[0\]/);
    const allow = setup({ policies: [supportPolicy, broken('Allow')] });
    expect(allow.decider.decideTool('jira', 'jira.search', {}, null, null).decision).toBe('Allow');
  });

  it('denies unknown targets and targets of the other protocol', () => {
    const { decider } = setup();
    expect(decider.decideTool('github', 'x', {}, null, null)).toMatchObject({
      reason: BrokerDenyReason.UnknownTarget,
    });
    expect(decider.decideTool('tickets', 'x', {}, null, null).message).toMatch(
      /speaks HTTP, not MCP; use the \/http\/ endpoint/,
    );
  });

  it('knows targets from the snapshot alone, without configured providers', () => {
    const { decider } = setup();
    expect(decider.decideTool('jira', 'jira.search', {}, null, null).decision).toBe('Allow');
  });

  it('follows the snapshot provider over a configured one of the same name', () => {
    const source = new StaticSnapshotSource();
    source.set(
      snapshot({ policies: [supportPolicy], providers: [provider('jira', 'http://127.0.0.1:1/', 'HTTP')] }),
    );
    const d = new Decider(source, { providers });
    // The flag says jira speaks MCP; the snapshot (source of truth) says HTTP.
    expect(d.decideTool('jira', 'jira.search', {}, null, null)).toMatchObject({
      reason: BrokerDenyReason.UnknownTarget,
      message: expect.stringMatching(/speaks HTTP, not MCP/),
    });
  });

  it('points a PostgreSQL target reached over MCP to the PostgreSQL endpoint', () => {
    const { decider } = setup({
      providers: [...providers, provider('db', 'postgres://db.example/orders', 'PostgreSQL')],
    });
    expect(decider.decideTool('db', 'x', {}, null, null)).toMatchObject({
      reason: BrokerDenyReason.UnknownTarget,
      message: expect.stringMatching(
        /speaks PostgreSQL, not MCP; connect through the broker's PostgreSQL endpoint/,
      ),
    });
  });

  it('takes providers from configuration when the snapshot has none', () => {
    const source = new StaticSnapshotSource();
    source.set(snapshot({ policies: [supportPolicy] }));
    const d = new Decider(source, { providers });
    expect(d.decideTool('jira', 'jira.search', {}, null, null).decision).toBe('Allow');
  });
});

describe('Decider policy decisions', () => {
  it('allows a tool, naming the deciding policy and rule', () => {
    const { decider } = setup();
    expect(decider.decideTool('jira', 'jira.get_issue', { key: 'SUP-1' }, supportUser, null)).toMatchObject({
      decision: 'Allow',
      reason: 'Allowed',
      policy: 'team-a/support',
      rule: 0,
      snapshotVersion: 'v1',
    });
  });

  it('denies with the failed condition as a structured reason', () => {
    const { decider } = setup();
    const d = decider.decideTool('jira', 'jira.get_issue', {}, null, null);
    expect(d).toMatchObject({ decision: 'Deny', reason: 'ConditionFailed' });
    expect(d.reasons).toEqual([
      { policy: 'team-a/support', rule: 0, condition: 'support-staff', message: d.message },
    ]);
  });

  it('deny overrides allow', () => {
    const { decider } = setup({
      policies: [{ name: 'all', spec: { rules: [{ targets: ['jira'], tools: ['*'] }] } }, noDelete],
    });
    expect(decider.decideTool('jira', 'jira.delete_issue', {}, null, null)).toMatchObject({
      reason: 'DeniedByPolicy',
      policy: 'team-a/no-delete',
    });
  });

  it('carries what the engine decided on for the audit entry, without secret-looking arguments', () => {
    const { decider } = setup();
    const d = decider.decideTool(
      'jira',
      'jira.get_issue',
      { key: 'SUP-1', password: 'hunter2' },
      supportUser,
      { ticketId: 'SUP-1' },
    );
    expect(d.replay).toEqual({
      kind: 'mcp',
      policyDecision: 'Allow',
      policyReason: 'Allowed',
      args: '{"key":"SUP-1","password":"[REDACTED]"}',
      withheld: ['request.args.password'],
      user: { sub: 'alice', groups: ['support'] },
      context: { ticketId: 'SUP-1' },
    });
    expect(JSON.stringify(d)).not.toContain('hunter2');
    expect(decider.decideHttp('tickets', 'GET', '/api/v1/tickets/7', null, null).replay).toEqual({
      kind: 'http',
      policyDecision: 'Allow',
      policyReason: 'Allowed',
    });
    expect(decider.decideSession('jira', supportUser, { ticketId: 'SUP-1' }, []).replay).toEqual({
      kind: 'session',
      policyDecision: 'Allow',
      policyReason: 'Allowed',
      user: { sub: 'alice', groups: ['support'] },
      context: { ticketId: 'SUP-1' },
    });
  });

  it('carries no replay data for a refusal before the engine decided', () => {
    const { decider } = setup();
    expect(decider.decideTool('nowhere', 'x.y', {}, null, null).replay).toBeUndefined();
  });

  it('denies oversized arguments (policy input bounds)', () => {
    const { decider } = setup();
    const d = decider.decideTool('jira', 'jira.search', { q: 'x'.repeat(100_000) }, null, null);
    expect(d).toMatchObject({ decision: 'Deny', reason: 'InputTooLarge' });
  });

  it('decides HTTP by method and path', () => {
    const { decider } = setup();
    expect(decider.decideHttp('tickets', 'GET', '/api/v1/tickets/7', null, null).decision).toBe('Allow');
    expect(decider.decideHttp('tickets', 'DELETE', '/api/v1/tickets/7', null, null).decision).toBe('Deny');
    expect(decider.decideHttp('tickets', 'GET', '/api/v1/admin', null, null).decision).toBe('Deny');
  });

  it('session traffic needs some Allow rule on the target', () => {
    const { decider } = setup({ providers: [...providers, provider('wiki', 'http://127.0.0.1:1/mcp')] });
    expect(decider.decideSession('jira', null, null).decision).toBe('Allow');
    expect(decider.decideSession('wiki', null, null)).toMatchObject({
      decision: 'Deny',
      reason: 'NoMatchingAllow',
    });
  });

  it('session traffic is allowed by the first rule whose when holds for this user, not the first rule', () => {
    const { decider } = setup();
    // Rule 0 needs a support user; rule 1 has no condition: the session's credential is its rule's.
    expect(decider.decideSession('jira', supportUser, null)).toMatchObject({
      decision: 'Allow',
      policy: 'team-a/support',
      rule: 0,
    });
    expect(decider.decideSession('jira', null, null)).toMatchObject({
      decision: 'Allow',
      policy: 'team-a/support',
      rule: 1,
    });
  });

  it('filters tools by what could be allowed for this user', () => {
    const { decider } = setup();
    const visible = (user: typeof supportUser | null) =>
      ['jira.get_issue', 'jira.search', 'jira.delete_issue', 'jira.admin'].filter((t) =>
        decider.couldAllowTool('jira', t, user),
      );
    expect(visible(supportUser)).toEqual(['jira.get_issue', 'jira.search']);
    expect(visible(null)).toEqual(['jira.search']);
  });
});
