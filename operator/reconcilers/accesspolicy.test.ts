import { describe, expect, it } from 'vitest';
import type { AccessPolicy } from '../../core/api/index.js';
import { getCondition } from '../../core/conditions.js';
import { compileAccessPolicy } from '../../core/policy/compile.js';
import { type AgentRef, decideAccessPolicy, selects, toSpecLike } from './accesspolicy.js';

const T1 = new Date('2026-02-01T09:00:00Z');

function policy(spec: Partial<AccessPolicy['spec']> = {}, status?: AccessPolicy['status']): AccessPolicy {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: 'support', namespace: 'team-a', generation: 5 },
    spec: {
      agentSelector: { names: ['support-bot'] },
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.get_*'],
          when: [
            { name: 'support-staff', expression: "user.present && 'support' in user.groups" },
            { name: 'ticket-referenced', expression: 'has(context.ticketId)' },
          ],
        },
      ],
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const agents: AgentRef[] = [
  { name: 'support-bot', labels: { team: 'support' } },
  { name: 'billing-bot', labels: { team: 'billing' } },
];

function decide(p: AccessPolicy, as: AgentRef[] = agents) {
  const compiled = compileAccessPolicy({ namespace: 'team-a', name: 'support', spec: toSpecLike(p.spec) });
  return decideAccessPolicy({ policy: p, compiled, agents: as }, T1);
}

describe('selects', () => {
  const bot = { name: 'support-bot', labels: { team: 'support', tier: 'prod' } };
  it.each<[string, AccessPolicy['spec']['agentSelector'], boolean]>([
    ['absent selects all', undefined, true],
    ['empty selects all', {}, true],
    ['by name', { names: ['support-bot'] }, true],
    ['another name', { names: ['other'] }, false],
    ['by labels', { matchLabels: { team: 'support' } }, true],
    ['a label mismatch', { matchLabels: { team: 'support', tier: 'dev' } }, false],
    ['names and labels must both hold', { names: ['support-bot'], matchLabels: { team: 'billing' } }, false],
  ])('%s', (_n, sel, expected) => {
    expect(selects(sel, bot)).toBe(expected);
  });
});

describe('decideAccessPolicy', () => {
  it('a valid policy is Ready and lists the agents it selects', () => {
    const d = decide(policy());
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Ready',
      message: 'compiled 1 rule; selects 1 AgentIdentity',
      observedGeneration: 5,
    });
    expect(d.status.matchedAgents).toEqual(['support-bot']);
    expect(d.status.observedGeneration).toBe(5);
    expect(d.events.map((e) => `${e.type}/${e.reason}`)).toEqual(['Normal/Ready']);
  });

  it('invalid CEL: Ready=False InvalidExpression naming the rule, condition index and name, and position; Warning Event', () => {
    const p = policy({
      rules: [
        {
          targets: ['jira'],
          when: [
            { name: 'ok', expression: 'true' },
            { name: 'typo', expression: 'usr.present' },
          ],
        },
      ],
    });
    const d = decide(p);
    const ready = getCondition(d.status.conditions, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'InvalidExpression' });
    expect(ready?.message).toBe(
      `spec.rules[0].when[1].expression (rule 0, condition 1 "typo"): undeclared reference to 'usr' at 1:1 (did you mean 'user'?)`,
    );
    expect(d.events).toEqual([
      { type: 'Warning', reason: 'InvalidExpression', action: 'Validate', note: ready?.message },
    ]);
  });

  it('lists at most five problems and counts the rest', () => {
    const when = Array.from({ length: 8 }, (_, i) => ({ name: `c${i}`, expression: 'nope' }));
    const d = decide(policy({ rules: [{ targets: ['jira'], when }] }));
    expect(getCondition(d.status.conditions, 'Ready')?.message).toMatch(/; and 3 more$/);
  });

  it('a policy selecting no agent is still Ready but says so and warns once', () => {
    const p = policy({ agentSelector: { names: ['nobody'] } });
    const d = decide(p);
    expect(d.status.matchedAgents).toEqual([]);
    expect(getCondition(d.status.conditions, 'Ready')?.message).toBe(
      'compiled 1 rule; selects no AgentIdentity in team-a yet',
    );
    expect(d.events.map((e) => e.reason)).toEqual(['Ready', 'NoMatchingAgents']);
    const again = decide({ ...p, status: d.status });
    expect(again.events).toEqual([]);
  });

  it('an empty selector selects every agent in the namespace, sorted', () => {
    const d = decide(policy({ agentSelector: {} }));
    expect(d.status.matchedAgents).toEqual(['billing-bot', 'support-bot']);
  });

  it('agents coming and going change matchedAgents without an Event unless none are left', () => {
    const first = decide(policy({ agentSelector: {} }));
    const p = policy({ agentSelector: {} }, first.status);
    expect(decide(p, [agents[0] as AgentRef]).events).toEqual([]);
    expect(decide(p, []).events.map((e) => e.reason)).toEqual(['NoMatchingAgents']);
  });

  it('fixing the expression flips Ready back with a Normal Event', () => {
    const bad = decide(policy({ rules: [{ targets: ['jira'], when: [{ name: 'x', expression: '1 +' }] }] }));
    const fixed = decide(policy({}, bad.status));
    expect(getCondition(fixed.status.conditions, 'Ready')?.status).toBe('True');
    expect(fixed.events.map((e) => `${e.type}/${e.reason}`)).toEqual(['Normal/Ready']);
  });
});
