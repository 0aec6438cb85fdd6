import { describe, expect, it } from 'vitest';
import { buildPolicySet, type PolicySetAgent } from '../core/policy/policy-set.js';
import { allowPolicy, compiled, denyPolicy } from '../core/policy/testing.js';
import { protocolDecision, ruleCredential } from './issue.js';

const BOT: PolicySetAgent = { name: 'support-bot', namespace: 'agents', labels: {} };
const jiraTools = compiled('jira-tools', { rules: [{ targets: ['jira'], tools: ['jira.get_*'] }] });
const httpOnly = compiled('tickets-http', {
  rules: [{ targets: ['tickets'], http: { methods: ['GET'], paths: ['/**'] } }],
});

describe('protocolDecision (MCP traffic that names no tool)', () => {
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
    const d = protocolDecision(buildPolicySet([...policies], agent as PolicySetAgent), target);
    expect(d).toMatchObject({ decision, reason });
    if (decision === 'Allow') expect(d.policy).toBe('agents/jira-tools');
  });
});

describe('ruleCredential', () => {
  it('takes ttl, scopes and compiled claims from the deciding rule', () => {
    const p = allowPolicy('with-cred', {
      targets: ['jira'],
      tools: ['*'],
      credential: { ttl: '2m', scopes: ['read'], claims: { dept: 'user.department' } },
    });
    const set = buildPolicySet([p], BOT);
    const c = ruleCredential(set, {
      decision: 'Allow',
      policy: p.id,
      rule: 0,
      condition: null,
      reason: 'Allowed',
      message: '',
      evaluationMicros: 0,
    });
    expect(c).toMatchObject({ policy: p.id, ttl: '2m', scopes: ['read'] });
    expect(c.claims?.map((x) => x.name)).toEqual(['dept']);
  });

  it('carries only the policy when the rule has no credential block', () => {
    const set = buildPolicySet([jiraTools], BOT);
    expect(
      ruleCredential(set, {
        decision: 'Allow',
        policy: jiraTools.id,
        rule: 0,
        condition: null,
        reason: 'Allowed',
        message: '',
        evaluationMicros: 0,
      }),
    ).toEqual({ policy: jiraTools.id });
  });
});
