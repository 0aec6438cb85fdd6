import { describe, expect, it } from 'vitest';
import { buildPolicySet, type PolicySetAgent } from './policy-set.js';
import { decideSessionTraffic } from './session.js';
import { compiled, denyPolicy } from './testing.js';

const BOT: PolicySetAgent = { name: 'support-bot', namespace: 'agents', labels: {} };
const jiraTools = compiled('jira-tools', { rules: [{ targets: ['jira'], tools: ['jira.get_*'] }] });
const httpOnly = compiled('tickets-http', {
  rules: [{ targets: ['tickets'], http: { methods: ['GET'], paths: ['/**'] } }],
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
    const d = decideSessionTraffic(buildPolicySet([...policies], agent as PolicySetAgent), target);
    expect(d).toMatchObject({ decision, reason });
    if (decision === 'Allow') expect(d.policy).toBe('agents/jira-tools');
  });
});
