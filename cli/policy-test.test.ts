import { describe, expect, it } from 'vitest';
import { formatReport, runPolicyTests } from './policy-test.js';

const NOW = new Date('2026-01-05T10:00:00Z');

const POLICIES = `
apiVersion: warden.dev/v1alpha1
kind: AccessPolicy
metadata: {name: support, namespace: agents}
spec:
  agentSelector: {matchLabels: {team: support}}
  rules:
    - targets: [jira]
      tools: ["jira.get_*"]
      when:
        - {name: support-staff, expression: "user.present && 'support' in user.groups"}
        - {name: business-hours, expression: "request.time.getHours('Europe/Berlin') >= 9 && request.time.getHours('Europe/Berlin') < 17"}
---
apiVersion: warden.dev/v1alpha1
kind: AgentIdentity
metadata: {name: support-bot, namespace: agents, labels: {team: support}}
spec: {serviceAccountName: support-bot}
---
apiVersion: warden.dev/v1alpha1
kind: AgentIdentity
metadata: {name: stopped-bot, namespace: agents, labels: {team: support}}
spec: {serviceAccountName: stopped-bot, suspended: true, suspendReason: incident}
---
apiVersion: warden.dev/v1alpha1
kind: CredentialProvider
metadata: {name: jira, namespace: agents}
spec: {type: JWT, target: {url: "https://jira.example"}}
`;

const CASES = `
kind: PolicyTest
cases:
  - name: alice in support during Berlin hours
    agent: support-bot
    user: {sub: alice, groups: [support]}
    request: {target: jira, tool: jira.get_issue}
    expect: {decision: Allow, policy: agents/support, rule: 0}
  - name: after hours in Berlin
    agent: support-bot
    user: {sub: alice, groups: [support]}
    request: {target: jira, tool: jira.get_issue, time: "2026-01-05T17:30:00Z"}
    expect: {decision: Deny, reason: ConditionFailed, condition: business-hours}
  - name: agent without the label is not selected
    agent: other-bot
    user: {sub: alice, groups: [support]}
    request: {target: jira, tool: jira.get_issue}
    expect: {decision: Deny, reason: NoMatchingAllow, policy: null}
  - name: suspended agent
    agent: stopped-bot
    user: {sub: alice, groups: [support]}
    request: {target: jira, tool: jira.get_issue}
    expect: {decision: Deny, reason: AgentSuspended}
`;

describe('runPolicyTests', () => {
  it('passes cases that match, reading agents (labels, suspension) from AgentIdentity documents', () => {
    const report = runPolicyTests(
      [
        { path: 'policies/support.yaml', text: POLICIES },
        { path: 'policies/support.test.yaml', text: CASES },
      ],
      NOW,
    );
    expect(report.problems).toEqual([]);
    expect(report.cases.map((c) => [c.name, c.passed])).toEqual([
      ['alice in support during Berlin hours', true],
      ['after hours in Berlin', true],
      ['agent without the label is not selected', true],
      ['suspended agent', true],
    ]);
    expect(formatReport(report).passed).toBe(true);
  });

  it('reports what differed and why the engine decided so', () => {
    const cases = `
kind: PolicyTest
cases:
  - name: wrong expectation
    agent: support-bot
    request: {target: jira, tool: jira.get_issue}
    expect: {decision: Allow, policy: agents/support, condition: support-staff}
`;
    const report = runPolicyTests(
      [
        { path: 'p.yaml', text: POLICIES },
        { path: 't.yaml', text: cases },
      ],
      NOW,
    );
    const { text, passed } = formatReport(report);
    expect(passed).toBe(false);
    expect(text).toBe(
      [
        't.yaml',
        '  FAIL wrong expectation',
        '       decision: expected Allow, got Deny',
        "       why: support-bot acting alone: tool 'jira.get_issue' on 'jira' denied: condition 'support-staff' of AccessPolicy agents/support rule 0 is false",
        '',
        '0 passed, 1 failed, 0 errors (1 policy)',
      ].join('\n'),
    );
  });

  it.each([
    [
      'an invalid policy expression',
      'kind: AccessPolicy\nmetadata: {name: bad, namespace: agents}\nspec: {rules: [{targets: [jira], when: [{name: a, expression: "usr.present"}]}]}',
      "p.yaml: AccessPolicy agents/bad: spec.rules[0].when[0].expression: undeclared reference to 'usr' at 1:1 (did you mean 'user'?)",
    ],
    ['broken YAML', 'kind: [unclosed', 'p.yaml (document 1): invalid YAML'],
    [
      'a malformed test case',
      'kind: PolicyTest\ncases: [{name: x, agent: a, request: {target: jira}, expect: {decision: Maybe}}]',
      'p.yaml (document 1): PolicyTest cases[0].expect.decision',
    ],
    [
      'a misspelt test field',
      'kind: PolicyTest\ncases: [{name: x, agnt: a, request: {target: j}, expect: {decision: Deny}}]',
      'PolicyTest cases[0]',
    ],
    [
      'no test documents at all',
      'kind: AccessPolicy\nmetadata: {name: ok}\nspec: {rules: [{targets: [x]}]}',
      'no PolicyTest documents found',
    ],
  ])('fails the run on %s', (_name, text, fragment) => {
    const report = runPolicyTests([{ path: 'p.yaml', text }], NOW);
    expect(report.problems.some((p) => p.includes(fragment))).toBe(true);
    expect(formatReport(report).passed).toBe(false);
  });

  it('infers the request kind: tool → mcp, method/path → http, neither → postgresql', () => {
    const policies = `
kind: AccessPolicy
metadata: {name: mixed, namespace: agents}
spec:
  rules:
    - {targets: [api], http: {methods: [GET], paths: ["/v1/**"]}}
    - {targets: [db]}
---
kind: PolicyTest
cases:
  - {name: http, agent: a, request: {target: api, method: GET, path: /v1/x}, expect: {decision: Allow, rule: 0}}
  - {name: http wrong method, agent: a, request: {target: api, method: POST, path: /v1/x}, expect: {decision: Deny}}
  - {name: db, agent: a, request: {target: db}, expect: {decision: Allow, rule: 1}}
  - {name: bad time, agent: a, request: {target: db, time: yesterday}, expect: {decision: Allow}}
`;
    const report = runPolicyTests([{ path: 'p.yaml', text: policies }], NOW);
    expect(report.cases.map((c) => c.passed)).toEqual([true, true, true, false]);
    expect(report.cases[3]?.mismatches).toEqual(["request.time: 'yesterday' is not an RFC 3339 time"]);
  });
});
