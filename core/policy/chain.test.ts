import { describe, expect, it } from 'vitest';
import { MAX_CHAIN_DEPTH } from '../constants.js';
import { decide } from './decide.js';
import { buildPolicySet, type PolicySetAgent } from './policy-set.js';
import { ALICE, compiled, mcpCall, when } from './testing.js';

const RESEARCHER: PolicySetAgent = { name: 'researcher', namespace: 'agents' };
const PLANNER = { name: 'planner', namespace: 'agents' };

const set = buildPolicySet(
  [
    compiled('chain-rules', {
      agentSelector: { names: ['researcher'] },
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.search'],
          when: when({
            'via-planner': "request.chain.exists(a, a.name == 'planner' && a.namespace == 'agents')",
            'short-chain': 'size(request.chain) <= 2',
          }),
        },
        {
          targets: ['jira'],
          tools: ['jira.get_issue'],
          when: when({
            'not-delegated': 'size(request.chain) == 1',
            'self-last': 'request.chain[size(request.chain) - 1].name == agent.name',
          }),
        },
        {
          targets: ['jira'],
          tools: ['jira.create_issue'],
          when: when({ 'no-intruder': "!request.chain.exists(a, a.name == 'intruder')" }),
        },
      ],
    }),
  ],
  RESEARCHER,
);

const call = (tool: string, chain?: Array<{ name: string; namespace: string }>) => {
  const input = mcpCall(tool, { user: ALICE });
  return decide(set, { ...input, request: { ...input.request, ...(chain ? { chain } : {}) } });
};

describe('request.chain', () => {
  it('is the calling agent alone for a call no agent delegated', () => {
    expect(call('jira.get_issue').decision).toBe('Allow');
    const d = call('jira.search');
    expect(d).toMatchObject({ decision: 'Deny', condition: 'via-planner' });
  });

  it('lists the prior agents and then the calling agent', () => {
    expect(call('jira.search', [PLANNER]).decision).toBe('Allow');
    expect(call('jira.get_issue', [PLANNER])).toMatchObject({ decision: 'Deny', condition: 'not-delegated' });
  });

  it('bounds the depth with size()', () => {
    const d = call('jira.search', [{ name: 'intake', namespace: 'agents' }, PLANNER]);
    expect(d).toMatchObject({ decision: 'Deny', condition: 'short-chain' });
  });

  it('can require that an agent is not in it', () => {
    expect(call('jira.create_issue', [PLANNER]).decision).toBe('Allow');
    const d = call('jira.create_issue', [{ name: 'intruder', namespace: 'x' }, PLANNER]);
    expect(d).toMatchObject({ decision: 'Deny', condition: 'no-intruder' });
  });

  it(`refuses input with a chain deeper than ${MAX_CHAIN_DEPTH} agents as too large`, () => {
    const prior = Array.from({ length: MAX_CHAIN_DEPTH }, (_, i) => ({ name: `a${i}`, namespace: 'ns' }));
    const d = call('jira.create_issue', prior);
    expect(d.decision).toBe('Deny');
    expect(d.reason).toBe('InputTooLarge');
    expect(d.message).toContain('request.chain');
  });

  it('refuses a malformed chain entry as invalid input', () => {
    const d = call('jira.create_issue', [
      { name: 'planner' } as unknown as { name: string; namespace: string },
    ]);
    expect(d).toMatchObject({ decision: 'Deny', reason: 'InvalidInput' });
    expect(d.message).toContain('request.chain[0]');
  });
});
