import { describe, expect, it } from 'vitest';
import { credentialFor } from './credential.js';
import { buildPolicySet, type PolicySetAgent } from './policy-set.js';
import { decideSessionTraffic } from './session.js';
import { ALICE, allowPolicy, compiled, denyPolicy, MONDAY_10_UTC, when } from './testing.js';
import type { PolicyInput, UserInput } from './types.js';

const BOT: PolicySetAgent = { name: 'support-bot', namespace: 'agents', labels: {} };
const jiraTools = compiled('jira-tools', { rules: [{ targets: ['jira'], tools: ['jira.get_*'] }] });
const httpOnly = compiled('tickets-http', {
  rules: [{ targets: ['tickets'], http: { methods: ['GET'], paths: ['/**'] } }],
});

const sessionTo = (target: string, extra: Partial<Omit<PolicyInput, 'request'>> = {}): PolicyInput => ({
  ...extra,
  request: { kind: 'mcp', target, time: MONDAY_10_UTC },
});

describe('decideSessionTraffic (MCP traffic that names no tool)', () => {
  it.each([
    ['allowed when a rule serves MCP tools of the target', [jiraTools], 'jira', BOT, 'Allow', 'Allowed'],
    ['denied for a target no rule names', [jiraTools], 'github', BOT, 'Deny', 'NoMatchingAllow'],
    ['denied when the only rule is HTTP', [httpOnly], 'tickets', BOT, 'Deny', 'NoMatchingAllow'],
    [
      'denied by an unconditional Deny covering every request (namespace-wide stop)',
      [jiraTools, denyPolicy('stop-all', { targets: ['*'] })],
      'jira',
      BOT,
      'Deny',
      'DeniedByPolicy',
    ],
    [
      'still allowed when the Deny covers only some tools',
      [jiraTools, denyPolicy('no-deletes', { targets: ['*'], tools: ['*.delete_*'] })],
      'jira',
      BOT,
      'Allow',
      'Allowed',
    ],
    [
      'denied when the agent is suspended',
      [jiraTools],
      'jira',
      { ...BOT, suspended: true },
      'Deny',
      'AgentSuspended',
    ],
  ] as const)('%s', (_name, policies, target, agent, decision, reason) => {
    const d = decideSessionTraffic(buildPolicySet([...policies], agent as PolicySetAgent), sessionTo(target));
    expect(d).toMatchObject({ decision, reason });
    if (decision === 'Allow') expect(d.policy).toBe('agents/jira-tools');
  });
});

describe('decideSessionTraffic evaluates when: the session credential is the rule that applies', () => {
  // Two Allow rules for the same target, different credential scopes, different conditions.
  const twoRules = buildPolicySet(
    [
      allowPolicy(
        'jira',
        {
          targets: ['jira'],
          tools: ['jira.*'],
          when: when({ admins: "user.present && 'admins' in user.groups" }),
          credential: { scopes: ['jira:admin'] },
        },
        {
          targets: ['jira'],
          tools: ['jira.get_*'],
          when: when({ support: "user.present && 'support' in user.groups" }),
          credential: { scopes: ['jira:read'] },
        },
      ),
    ],
    BOT,
  );
  const scopesFor = (user: UserInput | null): readonly string[] | string => {
    const input = sessionTo('jira', { user });
    const d = decideSessionTraffic(twoRules, input);
    if (d.decision !== 'Allow') return `${d.reason}: ${d.message}`;
    const c = credentialFor(twoRules, d, input);
    return c.ok && c.credential ? c.credential.scopes : 'no credential';
  };

  it('a support user gets the rule whose when holds (read), never the first rule (admin)', () => {
    expect(scopesFor(ALICE)).toEqual(['jira:read']);
  });

  it('an admin gets the admin rule', () => {
    expect(scopesFor({ sub: 'root', groups: ['admins'] })).toEqual(['jira:admin']);
  });

  it('no rule applies: denied (no credential), naming the first condition that failed', () => {
    const d = decideSessionTraffic(twoRules, sessionTo('jira', { user: { sub: 'eve', groups: [] } }));
    expect(d).toMatchObject({ decision: 'Deny', reason: 'ConditionFailed', policy: 'agents/jira', rule: 0 });
    expect(d.condition).toBe('admins');
    expect(d.message).toContain(
      "support-bot acting for eve: MCP session traffic (no tool named) to 'jira' denied: condition 'admins' of AccessPolicy agents/jira rule 0 is false",
    );
    expect(d.message).toContain('request.tool and request.args are absent');
  });

  it('a condition on the tool cannot hold for session traffic unless guarded with has(request.tool)', () => {
    const bare = buildPolicySet(
      [
        allowPolicy('p', {
          targets: ['jira'],
          tools: ['jira.*'],
          when: when({ t: "request.tool == 'jira.x'" }),
        }),
      ],
      BOT,
    );
    expect(decideSessionTraffic(bare, sessionTo('jira'))).toMatchObject({
      decision: 'Deny',
      reason: 'EvaluationError',
      condition: 't',
    });
    const guarded = buildPolicySet(
      [
        allowPolicy('p', {
          targets: ['jira'],
          tools: ['jira.*'],
          when: when({ t: "!has(request.tool) || request.tool == 'jira.x'" }),
        }),
      ],
      BOT,
    );
    expect(decideSessionTraffic(guarded, sessionTo('jira')).decision).toBe('Allow');
  });

  it('the context and the chain of the request are seen', () => {
    const set = buildPolicySet(
      [
        allowPolicy('p', {
          targets: ['jira'],
          tools: ['jira.*'],
          when: when({ ticket: 'has(context.ticketId)', direct: 'size(request.chain) == 1' }),
        }),
      ],
      BOT,
    );
    expect(decideSessionTraffic(set, sessionTo('jira', { context: { ticketId: 'SUP-1' } })).decision).toBe(
      'Allow',
    );
    expect(decideSessionTraffic(set, sessionTo('jira')).condition).toBe('ticket');
    const delegated: PolicyInput = {
      context: { ticketId: 'SUP-1' },
      request: {
        kind: 'mcp',
        target: 'jira',
        time: MONDAY_10_UTC,
        chain: [{ name: 'planner', namespace: 'agents' }],
      },
    };
    expect(decideSessionTraffic(set, delegated).condition).toBe('direct');
  });

  it('a conditional Deny covering the whole target denies the session when it holds', () => {
    const set = buildPolicySet(
      [
        jiraTools,
        denyPolicy('contractors', { targets: ['jira'], when: when({ c: "'contractors' in user.groups" }) }),
      ],
      BOT,
    );
    expect(
      decideSessionTraffic(set, sessionTo('jira', { user: { sub: 'c', groups: ['contractors'] } })),
    ).toMatchObject({ decision: 'Deny', reason: 'DeniedByPolicy', policy: 'agents/contractors' });
    expect(decideSessionTraffic(set, sessionTo('jira', { user: ALICE })).decision).toBe('Allow');
  });

  it('ignores a tool and arguments passed in: session traffic has none', () => {
    const d = decideSessionTraffic(twoRules, {
      user: { sub: 'eve' },
      request: { kind: 'mcp', target: 'jira', tool: 'jira.get_issue', args: {}, time: MONDAY_10_UTC },
    });
    expect(d.decision).toBe('Deny');
  });
});
