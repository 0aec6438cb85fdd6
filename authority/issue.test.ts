import { describe, expect, it } from 'vitest';
import { buildPolicySet, type PolicySetAgent } from '../core/policy/policy-set.js';
import { allowPolicy, compiled } from '../core/policy/testing.js';
import { ruleCredential } from './issue.js';

const BOT: PolicySetAgent = { name: 'support-bot', namespace: 'agents', labels: {} };
const jiraTools = compiled('jira-tools', { rules: [{ targets: ['jira'], tools: ['jira.get_*'] }] });

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
