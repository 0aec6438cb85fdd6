import { describe, expect, it } from 'vitest';
import { DEFAULT_BOUNDS } from './bounds.js';
import type { CompiledPolicy } from './compiled.js';
import { couldAllowTool, decide } from './decide.js';
import { buildPolicySet, type PolicySetAgent } from './policy-set.js';
import {
  ALICE,
  allowPolicy,
  compiled,
  denyPolicy,
  httpCall,
  MONDAY_10_UTC,
  mcpCall,
  when,
} from './testing.js';
import type { PolicyInput } from './types.js';

const SUPPORT_BOT: PolicySetAgent = { name: 'support-bot', namespace: 'agents', labels: { team: 'support' } };

function decideWith(policies: CompiledPolicy[], input: PolicyInput, agent: PolicySetAgent = SUPPORT_BOT) {
  return decide(buildPolicySet(policies, agent), input);
}

const supportPolicy = compiled('support', {
  agentSelector: { names: ['support-bot'] },
  rules: [
    {
      targets: ['jira'],
      tools: ['jira.get_*', 'jira.create_issue'],
      when: when({
        'support-staff': "user.present && 'support' in user.groups",
        'ticket-referenced': "has(context.ticketId) && context.ticketId.matches('^SUP-[0-9]+$')",
      }),
    },
  ],
});
const noDeletes = denyPolicy('no-deletes', { targets: ['*'], tools: ['*.delete*'] });

describe('decide: allow, deny, deny-overrides, default deny', () => {
  it.each([
    [
      'allow when every condition holds',
      [supportPolicy],
      mcpCall('jira.create_issue', { user: ALICE, context: { ticketId: 'SUP-1' } }),
      {
        decision: 'Allow',
        reason: 'Allowed',
        policy: 'agents/support',
        rule: 0,
        condition: 'support-staff, ticket-referenced',
      },
    ],
    [
      'deny when a condition is false, naming it',
      [supportPolicy],
      mcpCall('jira.create_issue', { user: ALICE, context: { ticketId: 'OPS-1' } }),
      {
        decision: 'Deny',
        reason: 'ConditionFailed',
        policy: 'agents/support',
        rule: 0,
        condition: 'ticket-referenced',
      },
    ],
    [
      'default deny: tool matches no rule',
      [supportPolicy],
      mcpCall('jira.search', { user: ALICE, context: { ticketId: 'SUP-1' } }),
      { decision: 'Deny', reason: 'NoMatchingAllow', policy: null, rule: null, condition: null },
    ],
    [
      'default deny: target matches no rule',
      [supportPolicy],
      mcpCall('jira.get_issue', { target: 'github', user: ALICE, context: { ticketId: 'SUP-1' } }),
      { decision: 'Deny', reason: 'NoMatchingAllow' },
    ],
    [
      'default deny: no policies at all',
      [],
      mcpCall('jira.get_issue'),
      { decision: 'Deny', reason: 'NoMatchingAllow' },
    ],
    [
      'deny overrides a matching allow',
      [supportPolicy, noDeletes],
      mcpCall('jira.delete_issue', { user: ALICE, context: { ticketId: 'SUP-1' } }),
      { decision: 'Deny', reason: 'DeniedByPolicy', policy: 'agents/no-deletes', rule: 0, condition: null },
    ],
    [
      'deny overrides even an unconditional allow-all',
      [allowPolicy('everything', { targets: ['*'] }), noDeletes],
      mcpCall('jira.delete_issue'),
      { decision: 'Deny', reason: 'DeniedByPolicy', policy: 'agents/no-deletes' },
    ],
    [
      'a Deny rule whose condition is false does not deny',
      [
        allowPolicy('everything', { targets: ['*'] }),
        denyPolicy('night', { targets: ['*'], when: when({ night: "request.time.getHours('UTC') < 6" }) }),
      ],
      mcpCall('jira.get_issue'),
      { decision: 'Allow', policy: 'agents/everything' },
    ],
    [
      'a rule with neither tools nor http matches every request to its targets',
      [allowPolicy('jira-all', { targets: ['jira'] })],
      mcpCall('jira.anything'),
      { decision: 'Allow', policy: 'agents/jira-all' },
    ],
    [
      'the second rule of a policy allows; rule index is reported',
      [
        allowPolicy(
          'two',
          { targets: ['jira'], tools: ['jira.get_*'] },
          { targets: ['jira'], tools: ['jira.search'] },
        ),
      ],
      mcpCall('jira.search'),
      { decision: 'Allow', policy: 'agents/two', rule: 1 },
    ],
  ])('%s', (_name, policies, input, expected) => {
    expect(decideWith(policies, input)).toMatchObject(expected);
  });

  it('messages say who, what and why', () => {
    const d = decideWith([supportPolicy, noDeletes], mcpCall('jira.delete_issue', { user: ALICE }));
    expect(d.message).toBe(
      "support-bot acting for alice: tool 'jira.delete_issue' on 'jira' denied by AccessPolicy agents/no-deletes rule 0",
    );
    expect(d.evaluationMicros).toBeGreaterThanOrEqual(0);
  });
});

describe('decide: user present vs absent', () => {
  const forHumansOnly = allowPolicy('humans', {
    targets: ['jira'],
    when: when({ 'has-user': 'user.present' }),
  });
  const aloneOnly = allowPolicy('alone', { targets: ['jira'], when: when({ 'no-user': '!user.present' }) });

  it.each([
    [
      'agent acting for alice, policy needs a user',
      forHumansOnly,
      { user: ALICE },
      'Allow',
      'support-bot acting for alice',
    ],
    ['agent acting alone, policy needs a user', forHumansOnly, {}, 'Deny', 'support-bot acting alone'],
    [
      'agent acting alone, policy needs no user',
      aloneOnly,
      { user: null },
      'Allow',
      'support-bot acting alone',
    ],
    [
      'agent acting for alice, policy wants the agent alone',
      aloneOnly,
      { user: ALICE },
      'Deny',
      'support-bot acting for alice',
    ],
  ] as const)('%s', (_name, policy, extra, decision, actor) => {
    const d = decideWith([policy], mcpCall('jira.get_issue', extra));
    expect(d.decision).toBe(decision);
    expect(d.message.startsWith(actor)).toBe(true);
  });

  it('groups and claims are empty (not errors) when the agent acts alone', () => {
    const policy = allowPolicy('p', {
      targets: ['jira'],
      when: when({ 'not-admin': "!('admin' in user.groups) && !has(user.claims.tier)" }),
    });
    expect(decideWith([policy], mcpCall('jira.get_issue')).decision).toBe('Allow');
  });

  it('user fields and claims are visible when present', () => {
    const policy = allowPolicy('p', {
      targets: ['jira'],
      when: when({
        dept: "user.department == 'customer-care'",
        tier: "user.claims.tier == 'gold'",
        sub: "user.sub == 'alice'",
      }),
    });
    expect(
      decideWith([policy], mcpCall('jira.get_issue', { user: { ...ALICE, claims: { tier: 'gold' } } }))
        .decision,
    ).toBe('Allow');
  });
});

describe('decide: time windows across time zones', () => {
  const berlinBusinessHours = allowPolicy('berlin-hours', {
    targets: ['jira'],
    when: when({
      'berlin-business-hours':
        "request.time.getHours('Europe/Berlin') >= 9 && request.time.getHours('Europe/Berlin') < 17",
      weekday:
        "request.time.getDayOfWeek('Europe/Berlin') >= 1 && request.time.getDayOfWeek('Europe/Berlin') <= 5",
    }),
  });
  const newYorkBusinessHours = allowPolicy('ny-hours', {
    targets: ['jira'],
    when: when({
      'ny-business-hours':
        "request.time.getHours('America/New_York') >= 9 && request.time.getHours('America/New_York') < 17",
    }),
  });

  it.each([
    [
      'Monday 10:00 UTC is 11:00 in Berlin (winter, UTC+1)',
      berlinBusinessHours,
      '2026-01-05T10:00:00Z',
      'Allow',
    ],
    ['Monday 07:30 UTC is 08:30 in Berlin: too early', berlinBusinessHours, '2026-01-05T07:30:00Z', 'Deny'],
    [
      'Monday 15:30 UTC is 17:30 in Berlin in summer (UTC+2): too late',
      berlinBusinessHours,
      '2026-07-06T15:30:00Z',
      'Deny',
    ],
    [
      'Monday 15:30 UTC is 16:30 in Berlin in winter: allowed',
      berlinBusinessHours,
      '2026-01-05T15:30:00Z',
      'Allow',
    ],
    ['Saturday noon in Berlin', berlinBusinessHours, '2026-01-10T11:00:00Z', 'Deny'],
    [
      'Sunday 23:30 UTC is Monday 00:30 in Berlin, but outside hours',
      berlinBusinessHours,
      '2026-01-04T23:30:00Z',
      'Deny',
    ],
    ['Monday 10:00 UTC is 05:00 in New York', newYorkBusinessHours, '2026-01-05T10:00:00Z', 'Deny'],
    ['Monday 15:00 UTC is 10:00 in New York', newYorkBusinessHours, '2026-01-05T15:00:00Z', 'Allow'],
  ] as const)('%s', (_name, policy, time, decision) => {
    expect(decideWith([policy], mcpCall('jira.get_issue', { time: new Date(time) })).decision).toBe(decision);
  });
});

describe('decide: argument-based conditions', () => {
  const policy = allowPolicy('args', {
    targets: ['jira'],
    tools: ['jira.create_issue'],
    when: when({
      'support-project': "request.args.project == 'SUP'",
      'small-batch': '!has(request.args.count) || request.args.count <= 10',
      'safe-labels': "!has(request.args.labels) || request.args.labels.all(l, l.startsWith('sup-'))",
      'internal-ip': "!has(request.args.callbackIp) || inCidr(request.args.callbackIp, '10.0.0.0/8')",
    }),
  });

  it.each([
    ['minimal valid args', { project: 'SUP' }, 'Allow', null],
    [
      'all optional args valid',
      { project: 'SUP', count: 3, labels: ['sup-a', 'sup-b'], callbackIp: '10.1.2.3' },
      'Allow',
      null,
    ],
    ['wrong project', { project: 'OPS' }, 'Deny', 'support-project'],
    ['count too high', { project: 'SUP', count: 11 }, 'Deny', 'small-batch'],
    ['a bad label', { project: 'SUP', labels: ['sup-a', 'ops-b'] }, 'Deny', 'safe-labels'],
    ['public callback IP', { project: 'SUP', callbackIp: '8.8.8.8' }, 'Deny', 'internal-ip'],
    [
      '__proto__ key is just data',
      JSON.parse('{"project":"SUP","__proto__":{"project":"OPS"}}'),
      'Allow',
      null,
    ],
  ] as const)('%s', (_name, args, decision, condition) => {
    const d = decideWith([policy], mcpCall('jira.create_issue', { args }));
    expect(d.decision).toBe(decision);
    if (condition) expect(d.condition).toBe(condition);
  });
});

describe('decide: evaluation errors deny', () => {
  it.each([
    [
      'missing arg in an Allow rule (no has() guard)',
      [
        allowPolicy('p', {
          targets: ['jira'],
          when: when({ 'needs-project': "request.args.project == 'SUP'" }),
        }),
      ],
      mcpCall('jira.create_issue', { args: {} }),
      { decision: 'Deny', reason: 'EvaluationError', policy: 'agents/p', condition: 'needs-project' },
    ],
    [
      'missing optional context field',
      [
        allowPolicy('p', {
          targets: ['jira'],
          when: when({ ticket: "context.ticketId.startsWith('SUP-')" }),
        }),
      ],
      mcpCall('jira.get_issue'),
      { decision: 'Deny', reason: 'EvaluationError', condition: 'ticket' },
    ],
    [
      'wrong arg type',
      [allowPolicy('p', { targets: ['jira'], when: when({ count: 'request.args.count < 5' }) })],
      mcpCall('jira.get_issue', { args: { count: 'many' } }),
      { decision: 'Deny', reason: 'EvaluationError', condition: 'count' },
    ],
    [
      'an erroring Deny rule denies even when an Allow matches',
      [
        allowPolicy('all', { targets: ['*'] }),
        denyPolicy('d', { targets: ['*'], when: when({ flagged: 'request.args.flagged == true' }) }),
      ],
      mcpCall('jira.get_issue', { args: {} }),
      { decision: 'Deny', reason: 'EvaluationError', policy: 'agents/d', condition: 'flagged' },
    ],
    [
      'an erroring Allow rule does not block another Allow rule',
      [
        allowPolicy('a-broken', { targets: ['jira'], when: when({ x: "request.args.x == 'y'" }) }),
        allowPolicy('b-fine', { targets: ['jira'] }),
      ],
      mcpCall('jira.get_issue', { args: {} }),
      { decision: 'Allow', policy: 'agents/b-fine' },
    ],
    [
      'dyn condition that is not a bool',
      [allowPolicy('p', { targets: ['jira'], when: when({ flag: 'request.args.flag' }) })],
      mcpCall('jira.get_issue', { args: { flag: 'yes' } }),
      { decision: 'Deny', reason: 'EvaluationError', condition: 'flag' },
    ],
  ])('%s', (_name, policies, input, expected) => {
    const d = decideWith(policies, input);
    expect(d).toMatchObject(expected);
  });

  it('a non-bool result is reported by type, never by value (values may be secrets)', () => {
    const d = decideWith(
      [allowPolicy('p', { targets: ['jira'], when: when({ flag: 'request.args.flag' }) })],
      mcpCall('jira.get_issue', { args: { flag: 'hunter2' } }),
    );
    expect(d.message).toContain('evaluated to a string, not a bool');
    expect(d.message).not.toContain('hunter2');
  });

  it('the error message says what failed and how to fix it', () => {
    const d = decideWith(
      [
        allowPolicy('p', {
          targets: ['jira'],
          when: when({ ticket: "context.ticketId.startsWith('SUP-')" }),
        }),
      ],
      mcpCall('jira.get_issue'),
    );
    expect(d.message).toContain(
      "condition 'ticket' of AccessPolicy agents/p rule 0 could not be evaluated (No such key: ticketId)",
    );
    expect(d.message).toContain('has()');
  });
});

describe('decide: HTTP and PostgreSQL requests', () => {
  const api = allowPolicy('api', {
    targets: ['api'],
    http: { methods: ['GET'], paths: ['/api/v1/tickets/*', '/api/v1/search/**'] },
  });
  const mcpOnly = allowPolicy('mcp-only', { targets: ['api', 'db'], tools: ['*'] });
  const dbAny = allowPolicy('db', { targets: ['db'] });

  it.each([
    ['GET on an allowed path', [api], httpCall('GET', '/api/v1/tickets/42'), 'Allow'],
    ['method is case-insensitive', [api], httpCall('get', '/api/v1/tickets/42'), 'Allow'],
    ['POST is not allowed', [api], httpCall('POST', '/api/v1/tickets/42'), 'Deny'],
    ['deeper path under *', [api], httpCall('GET', '/api/v1/tickets/42/comments'), 'Deny'],
    ['deeper path under **', [api], httpCall('GET', '/api/v1/search/a/b/c'), 'Allow'],
    ['a tools-only rule does not match HTTP', [mcpOnly], httpCall('GET', '/x'), 'Deny'],
    ['an http-only rule does not match MCP', [api], mcpCall('x', { target: 'api' }), 'Deny'],
    [
      'a rule without tools/http matches PostgreSQL',
      [dbAny],
      { request: { kind: 'postgresql', target: 'db', time: MONDAY_10_UTC } },
      'Allow',
    ],
    [
      'a tools rule does not match PostgreSQL',
      [mcpOnly],
      { request: { kind: 'postgresql', target: 'db', time: MONDAY_10_UTC } },
      'Deny',
    ],
  ] as const)('%s', (_name, policies, input, decision) => {
    expect(decideWith([...policies], input as PolicyInput).decision).toBe(decision);
  });
});

describe('buildPolicySet: agent selection', () => {
  const byName = compiled('by-name', {
    agentSelector: { names: ['support-bot'] },
    rules: [{ targets: ['jira'] }],
  });
  const byLabel = compiled('by-label', {
    agentSelector: { matchLabels: { team: 'support' } },
    rules: [{ targets: ['jira'] }],
  });
  const both = compiled('both', {
    agentSelector: { names: ['support-bot'], matchLabels: { team: 'ops' } },
    rules: [{ targets: ['jira'] }],
  });
  const everyone = compiled('everyone', { rules: [{ targets: ['jira'] }] });
  const otherNamespace = compiled('elsewhere', { rules: [{ targets: ['jira'] }] }, 'other');

  it.each([
    ['names', byName, true],
    ['matchLabels', byLabel, true],
    ['names and matchLabels must both hold', both, false],
    ['empty selector selects everyone', everyone, true],
    ['policies of another namespace never apply', otherNamespace, false],
  ] as const)('%s', (_name, policy, selected) => {
    const set = buildPolicySet([policy], SUPPORT_BOT);
    expect(set.policies.includes(policy)).toBe(selected);
    expect(set.skipped.some((s) => s.policy === policy)).toBe(!selected);
  });

  it('explains why a policy is skipped', () => {
    const set = buildPolicySet([both], SUPPORT_BOT);
    expect(set.skipped[0]?.reason).toBe(
      'agentSelector.matchLabels requires team=ops; the agent has team=support',
    );
  });
});

describe('decide: bounds', () => {
  const open = allowPolicy('open', { targets: ['jira'] });
  const deep = (n: number): unknown => (n === 0 ? 'x' : { d: deep(n - 1) });

  it.each([
    [
      'string longer than maxStringLength',
      { s: 'x'.repeat(DEFAULT_BOUNDS.maxStringLength + 1) },
      'InputTooLarge',
      'request.args.s',
    ],
    [
      'list longer than maxListLength',
      { l: Array.from({ length: DEFAULT_BOUNDS.maxListLength + 1 }, () => 1) },
      'InputTooLarge',
      'request.args.l',
    ],
    [
      'nesting deeper than maxDepth',
      deep(DEFAULT_BOUNDS.maxDepth + 1),
      'InputTooLarge',
      'nesting deeper than 16',
    ],
    [
      'total size over maxInputBytes',
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'x'.repeat(4000)])),
      'InputTooLarge',
      '65536 bytes',
    ],
    [
      'too many values',
      { a: Array.from({ length: 200 }, () => Array.from({ length: 30 }, () => 1)) },
      'InputTooLarge',
      'more than 4096 values',
    ],
    ['args that are not an object', ['a'], 'InvalidInput', 'request.args: must be an object'],
    ['non-JSON values', { f: () => 1 }, 'InvalidInput', 'only JSON values'],
    ['non-finite numbers', { n: Number.POSITIVE_INFINITY }, 'InvalidInput', 'not finite'],
  ] as const)('%s → %s', (_name, args, reason, fragment) => {
    const d = decideWith([open], mcpCall('jira.get_issue', { args }));
    expect(d).toMatchObject({ decision: 'Deny', reason, policy: null });
    expect(d.message).toContain(fragment);
  });

  it('input at the limits is accepted', () => {
    const args = {
      s: 'x'.repeat(DEFAULT_BOUNDS.maxStringLength),
      d: deep(DEFAULT_BOUNDS.maxDepth - 1),
      l: Array.from({ length: DEFAULT_BOUNDS.maxListLength }, () => 1),
    };
    expect(decideWith([open], mcpCall('jira.get_issue', { args })).decision).toBe('Allow');
  });

  it('user claims are bounded too', () => {
    const d = decideWith(
      [open],
      mcpCall('jira.get_issue', {
        user: { sub: 'alice', claims: { big: 'x'.repeat(DEFAULT_BOUNDS.maxStringLength + 1) } },
      }),
    );
    expect(d).toMatchObject({ decision: 'Deny', reason: 'InputTooLarge' });
    expect(d.message).toContain('user.claims.big');
  });

  it('the per-decision cost budget denies with CostExceeded', () => {
    const policies = Array.from({ length: 5 }, (_, i) =>
      allowPolicy(`p${i}`, {
        targets: ['jira'],
        when: when({ scan: "request.args.items.exists(i, i == 'never')" }),
      }),
    );
    const perCondition = policies[0]?.rules[0]?.conditions[0]?.expression.cost ?? 0;
    expect(perCondition).toBeGreaterThan(0);
    const bounds = { ...DEFAULT_BOUNDS, maxDecisionCost: perCondition * 3 };
    const set = buildPolicySet(policies, SUPPORT_BOT, { bounds });
    const d = decide(set, mcpCall('jira.get_issue', { args: { items: ['a'] } }));
    expect(d).toMatchObject({ decision: 'Deny', reason: 'CostExceeded', policy: 'agents/p3' });
    // With the default budget the same request is evaluated fully (and denied on the conditions).
    expect(decideWith(policies, mcpCall('jira.get_issue', { args: { items: ['a'] } })).reason).toBe(
      'ConditionFailed',
    );
  });

  it('Allow rules that did not hold are charged once: within budget the reason is ConditionFailed', () => {
    // Three rules whose conditions are false spend 3 × cost; the budget allows exactly that.
    // The re-examination that names the failed condition must not charge them a second time.
    const policies = Array.from({ length: 3 }, (_, i) =>
      allowPolicy(`q${i}`, {
        targets: ['jira'],
        when: when({ scan: "request.args.items.exists(i, i == 'never')" }),
      }),
    );
    const perCondition = policies[0]?.rules[0]?.conditions[0]?.expression.cost ?? 0;
    expect(perCondition).toBeGreaterThan(0);
    const bounds = { ...DEFAULT_BOUNDS, maxDecisionCost: perCondition * 3 };
    const set = buildPolicySet(policies, SUPPORT_BOT, { bounds });
    const d = decide(set, mcpCall('jira.get_issue', { args: { items: ['a'] } }));
    expect(d).toMatchObject({
      decision: 'Deny',
      reason: 'ConditionFailed',
      policy: 'agents/q0',
      condition: 'scan',
    });
  });

  it('a catastrophic regex cannot be written, so 50 a + ! is decided immediately', () => {
    // ^(a+)+$ is rejected at compile time (see compile.test.ts); the accepted equivalent runs linearly.
    const policy = allowPolicy('re', {
      targets: ['jira'],
      when: when({ re: "request.args.s.matches('^a+$')" }),
    });
    const d = decideWith([policy], mcpCall('jira.get_issue', { args: { s: `${'a'.repeat(50)}!` } }));
    expect(d).toMatchObject({ decision: 'Deny', reason: 'ConditionFailed' });
  });
});

describe('decide: kill switch', () => {
  it('a suspended agent is denied before any policy is evaluated', () => {
    const set = buildPolicySet([allowPolicy('all', { targets: ['*'] })], {
      ...SUPPORT_BOT,
      suspended: true,
      suspendReason: 'incident 42',
    });
    expect(decide(set, mcpCall('jira.get_issue'))).toMatchObject({
      decision: 'Deny',
      reason: 'AgentSuspended',
      message:
        "support-bot acting alone: tool 'jira.get_issue' on 'jira' denied: agent agents/support-bot is suspended: incident 42",
    });
  });
});

// Issue 15 item 5: with Allow * and Deny *delete*, jira.DELETE_ISSUE reached an upstream.
describe('decide: Deny tool globs are case-insensitive after Unicode normalisation', () => {
  const set = buildPolicySet(
    [
      allowPolicy('everything', { targets: ['*'], tools: ['*'] }),
      denyPolicy('no-delete', { targets: ['*'], tools: ['*delete*'] }),
      allowPolicy('readers', { targets: ['jira'], tools: ['jira.get_*'] }),
    ],
    SUPPORT_BOT,
  );
  const readersOnly = buildPolicySet(
    [allowPolicy('readers', { targets: ['jira'], tools: ['jira.get_*'] })],
    SUPPORT_BOT,
  );

  it.each([
    'jira.delete_issue',
    'jira.DELETE_ISSUE',
    'jira.Delete_Issue',
    'ｊｉｒａ．ＤＥＬＥＴＥ＿ＩＳＳＵＥ',
    'jira.de\u00ADlete_issue',
    'jira.𝐝𝐞𝐥𝐞𝐭𝐞_issue',
  ])('%s is denied by the Deny rule', (tool) => {
    expect(decide(set, mcpCall(tool))).toMatchObject({
      decision: 'Deny',
      reason: 'DeniedByPolicy',
      policy: 'agents/no-delete',
    });
    expect(couldAllowTool(set, 'jira', tool, null)).toBe(false);
  });

  it('Allow globs keep exact case: JIRA.GET_ISSUE is not jira.get_*', () => {
    expect(decide(readersOnly, mcpCall('jira.get_issue')).decision).toBe('Allow');
    expect(decide(readersOnly, mcpCall('JIRA.GET_ISSUE'))).toMatchObject({
      decision: 'Deny',
      reason: 'NoMatchingAllow',
    });
  });
});

describe('couldAllowTool (tools/list filtering)', () => {
  const set = buildPolicySet(
    [
      supportPolicy,
      noDeletes,
      allowPolicy('ops', {
        targets: ['jira'],
        tools: ['jira.admin_*'],
        when: when({ ops: "'ops' in user.groups" }),
      }),
    ],
    SUPPORT_BOT,
  );

  it.each([
    ['allowed tool, conditions on request/context unknown yet', 'jira.get_issue', ALICE, true],
    ['tool no rule mentions', 'jira.search', ALICE, false],
    ['tool behind an unconditional Deny', 'jira.delete_issue', ALICE, false],
    ['user-only condition already false', 'jira.admin_reset', ALICE, false],
    ['user-only condition true', 'jira.admin_reset', { sub: 'bob', groups: ['ops'] }, true],
    ['agent acting alone cannot meet user.present', 'jira.get_issue', null, false],
  ] as const)('%s', (_name, tool, user, expected) => {
    expect(couldAllowTool(set, 'jira', tool, user)).toBe(expected);
  });

  it('a suspended agent sees no tools', () => {
    expect(
      couldAllowTool(
        buildPolicySet([supportPolicy], { ...SUPPORT_BOT, suspended: true }),
        'jira',
        'jira.get_issue',
        ALICE,
      ),
    ).toBe(false);
  });
});

describe('decide: malformed input from untyped callers fails closed', () => {
  it.each([
    ['no request', {}],
    ['target not a string', { request: { kind: 'mcp', target: 42, tool: 'x', time: MONDAY_10_UTC } }],
    [
      'method not a string',
      { request: { kind: 'http', target: 'api', method: 1, path: '/', time: MONDAY_10_UTC } },
    ],
    ['time not a Date', { request: { kind: 'mcp', target: 'jira', tool: 'x', time: '2026-01-05' } }],
  ])('%s', (_name, input) => {
    const d = decide(
      buildPolicySet([allowPolicy('all', { targets: ['*'] })], SUPPORT_BOT),
      input as unknown as PolicyInput,
    );
    expect(d).toMatchObject({ decision: 'Deny', reason: 'InvalidInput' });
  });
});
