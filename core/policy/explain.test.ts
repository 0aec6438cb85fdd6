import { describe, expect, it } from 'vitest';
import { explain } from './explain.js';
import { buildPolicySet } from './policy-set.js';
import { ALICE, allowPolicy, compiled, denyPolicy, mcpCall, when } from './testing.js';

const agent = { name: 'support-bot', namespace: 'agents' };
const support = allowPolicy('support', {
  targets: ['jira'],
  tools: ['jira.get_*'],
  when: when({
    'support-staff': "user.present && 'support' in user.groups",
    'ticket-referenced': "context.ticketId.matches('^SUP-[0-9]+$')",
  }),
});
const noDeletes = denyPolicy('no-deletes', { targets: ['*'], tools: ['*.delete*'] });
const opsOnly = compiled('ops-only', {
  agentSelector: { names: ['ops-bot'] },
  rules: [{ targets: ['jira'] }],
});

describe('explain', () => {
  const set = buildPolicySet([support, noDeletes, opsOnly], agent);
  const result = explain(set, mcpCall('jira.get_issue', { user: ALICE }));

  it('carries the same decision as decide()', () => {
    expect(result.decision).toMatchObject({
      decision: 'Deny',
      reason: 'EvaluationError',
      condition: 'ticket-referenced',
    });
    expect(result.actingFor).toBe('support-bot acting for alice');
  });

  it('lists every policy, selected ones first, with the reason others do not apply', () => {
    expect(result.policies.map((p) => [p.policy, p.selected])).toEqual([
      ['agents/no-deletes', true],
      ['agents/support', true],
      ['agents/ops-only', false],
    ]);
    expect(result.policies[2]?.notSelectedReason).toBe("agentSelector.names does not include 'support-bot'");
  });

  it("shows each rule's match and each condition's value or error", () => {
    const [deny, allow] = result.policies;
    expect(deny?.rules[0]).toMatchObject({
      outcome: 'not-applicable',
      mismatch: `tool 'jira.get_issue' matches none of ["*.delete*"]`,
    });
    expect(allow?.rules[0]).toMatchObject({ outcome: 'error', targetMatched: true, mismatch: null });
    expect(allow?.rules[0]?.conditions).toEqual([
      { name: 'support-staff', expression: "user.present && 'support' in user.groups", result: 'true' },
      {
        name: 'ticket-referenced',
        expression: "context.ticketId.matches('^SUP-[0-9]+$')",
        result: 'error',
        error: 'No such key: ticketId',
      },
    ]);
  });

  it('evaluates every condition, not only up to the first false one', () => {
    const r = explain(set, mcpCall('jira.get_issue', { context: { ticketId: 'SUP-9' } }));
    expect(r.policies[1]?.rules[0]?.conditions.map((c) => c.result)).toEqual(['false', 'true']);
    expect(r.policies[1]?.rules[0]?.outcome).toBe('condition-false');
  });

  it('marks conditions not evaluated when the input is rejected', () => {
    const r = explain(set, mcpCall('jira.get_issue', { args: ['not-an-object'] }));
    expect(r.decision.reason).toBe('InvalidInput');
    expect(r.policies[1]?.rules[0]?.conditions.every((c) => c.result === 'not-evaluated')).toBe(true);
  });

  it('reports a target mismatch', () => {
    const r = explain(set, mcpCall('github.get_issue', { target: 'github' }));
    expect(r.policies[1]?.rules[0]?.mismatch).toBe(`target 'github' is not in ["jira"]`);
  });
});
