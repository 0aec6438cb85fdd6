import { describe, expect, it } from 'vitest';
import { buildPolicySet, explain } from '../core/policy/index.js';
import { allowPolicy, denyPolicy, when } from '../core/policy/testing.js';
import { CliError } from './command.js';
import {
  explainInput,
  formatExplainJson,
  formatExplainTable,
  resolveTarget,
  userFromClaims,
} from './explain-view.js';

const NOW = new Date('2026-01-05T10:00:00Z');

describe('explain flags → input', () => {
  it.each([
    ['explicit target wins', { target: 'tickets', tool: 'jira.get' }, 'tickets'],
    ['tool prefix', { tool: 'jira.create_issue' }, 'jira'],
  ])('%s', (_name, flags, target) => {
    expect(resolveTarget(flags)).toBe(target);
  });

  it('needs a target when the tool has no prefix', () => {
    expect(() => resolveTarget({ tool: 'search' })).toThrow(CliError);
  });

  it('maps user claims like a verified token', () => {
    expect(
      userFromClaims({
        sub: 'alice',
        iss: 'https://idp',
        groups: ['support'],
        department: 'cc',
        tier: 'gold',
      }),
    ).toEqual({
      sub: 'alice',
      issuer: 'https://idp',
      groups: ['support'],
      department: 'cc',
      claims: { tier: 'gold' },
    });
    expect(userFromClaims(undefined)).toBeNull();
    expect(() => userFromClaims({ groups: 'support' })).toThrow('"groups" must be a list of strings');
  });

  it.each([
    ['MCP', { agent: 'a', tool: 'jira.get' }, 'mcp'],
    ['HTTP', { agent: 'a', target: 'api', method: 'get', path: '/x' }, 'http'],
    ['connection', { agent: 'a', target: 'db' }, 'postgresql'],
  ] as const)('request kind for %s', (_name, flags, kind) => {
    expect(explainInput(flags, NOW).request.kind).toBe(kind);
  });

  it.each([
    ['nothing requested', { agent: 'a' }, 'say what is requested'],
    ['bad time', { agent: 'a', tool: 'jira.x', time: 'noon' }, "--time: 'noon' is not an RFC 3339 time"],
  ])('rejects %s', (_name, flags, message) => {
    expect(() => explainInput(flags, NOW)).toThrow(message);
  });
});

describe('explain output', () => {
  const set = buildPolicySet(
    [
      allowPolicy('support', {
        targets: ['jira'],
        tools: ['jira.*'],
        when: when({ staff: "'support' in user.groups", ticket: 'has(context.ticketId)' }),
      }),
      denyPolicy('no-deletes', { targets: ['*'], tools: ['*.delete*'] }),
    ],
    { name: 'support-bot', namespace: 'agents' },
  );
  const explanation = explain(
    set,
    explainInput(
      { agent: 'support-bot', tool: 'jira.get_issue', userClaims: { sub: 'alice', groups: ['support'] } },
      NOW,
    ),
    {
      nowMicros: () => 0,
    },
  );

  it('prints a table with every policy, rule and condition', () => {
    expect(
      formatExplainTable(explanation, [{ policy: 'agents/broken', errors: ['spec.rules[0]...: bad'] }]),
    ).toBe(
      [
        'DECISION  DENY (ConditionFailed)',
        "WHY       support-bot acting for alice: tool 'jira.get_issue' on 'jira' denied: condition 'ticket' of AccessPolicy agents/support rule 0 is false",
        'DECIDED   agents/support rule 0, condition ticket',
        'TOOK      0.0 µs',
        '',
        'POLICY             EFFECT  RULE  MATCH                                                    CONDITION  RESULT',
        `agents/no-deletes  Deny    0     no: tool 'jira.get_issue' matches none of ["*.delete*"]  (none)`,
        'agents/support     Allow   0     yes                                                      staff      true',
        '                                                                                          ticket     false',
        'agents/broken      ?       -     invalid, not evaluated                                              spec.rules[0]...: bad',
      ].join('\n'),
    );
  });

  it('prints JSON with the explanation and invalid policies', () => {
    const parsed = JSON.parse(formatExplainJson(explanation, []));
    expect(parsed.decision.reason).toBe('ConditionFailed');
    expect(parsed.policies).toHaveLength(2);
    expect(parsed.invalidPolicies).toEqual([]);
  });
});
