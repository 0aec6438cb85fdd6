import { describe, expect, it } from 'vitest';
import { compileAccessPolicy, formatCompileError } from './compile.js';
import type { AccessPolicySpecLike, PolicyCompileError } from './types.js';

function errorsOf(spec: AccessPolicySpecLike): readonly PolicyCompileError[] {
  const result = compileAccessPolicy({ namespace: 'agents', name: 'support', spec });
  return result.ok ? [] : result.errors;
}

function conditionErrors(expression: string): readonly PolicyCompileError[] {
  return errorsOf({ rules: [{ targets: ['jira'], tools: ['jira.*'], when: [{ name: 'c', expression }] }] });
}

describe('compileAccessPolicy: valid policies', () => {
  it('compiles the DESIGN.md example', () => {
    const result = compileAccessPolicy({
      namespace: 'agents',
      name: 'support',
      spec: {
        agentSelector: { names: ['support-bot'] },
        effect: 'Allow',
        rules: [
          {
            targets: ['jira'],
            tools: ['jira.get_*', 'jira.create_issue'],
            when: [
              { name: 'support-staff', expression: "user.present && 'support' in user.groups" },
              {
                name: 'ticket-referenced',
                expression: "has(context.ticketId) && context.ticketId.matches('^SUP-[0-9]+$')",
              },
            ],
            credential: { ttl: '5m', claims: { ticket: 'context.ticketId' } },
          },
        ],
      },
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.compiled.id).toBe('agents/support');
    expect(result.compiled.effect).toBe('Allow');
    expect(result.compiled.rules[0]?.conditions.map((c) => c.name)).toEqual([
      'support-staff',
      'ticket-referenced',
    ]);
    expect(result.compiled.rules[0]?.credential?.claims.map((c) => c.name)).toEqual(['ticket']);
  });

  it.each([
    [
      'business hours in Berlin',
      "request.time.getHours('Europe/Berlin') >= 9 && request.time.getHours('Europe/Berlin') < 17",
    ],
    ['weekday', 'request.time.getDayOfWeek("America/New_York") in [1, 2, 3, 4, 5]'],
    ['duration arithmetic', 'request.time - duration("1h") < timestamp("2030-01-01T00:00:00Z")'],
    ['args map access', "has(request.args.project) && request.args.project == 'SUP'"],
    ['args numeric comparison', 'request.args.limit <= 100'],
    ['args list macro', "request.args.labels.all(l, l.startsWith('sup-'))"],
    ['glob helper (receiver)', "request.tool.glob('jira.get_*')"],
    ['glob helper (function)', "glob('jira.*', request.tool)"],
    ['cidr helper', "inCidr(request.args.ip, '10.0.0.0/8') || request.args.ip.inCidr('2001:db8::/32')"],
    ['agent labels', "agent.labels['team'] == 'support'"],
    ['pod images', "agent.pod.images.all(i, i.startsWith('ghcr.io/acme/'))"],
    ['user claims', "has(user.claims.tier) && user.claims.tier == 'gold'"],
    ['context chain step', 'has(context.chainStep) && context.chainStep < 5'],
    ['multi-line expression', "user.present &&\n  user.department == 'support'"],
  ])('accepts %s', (_name, expression) => {
    expect(conditionErrors(expression)).toEqual([]);
  });
});

describe('compileAccessPolicy: expression errors name the problem, the position and a hint', () => {
  it.each([
    [
      'undeclared variable',
      'usr.present',
      'unknown_variable',
      1,
      1,
      "undeclared reference to 'usr' at 1:1 (did you mean 'user'?)",
    ],
    [
      'unknown field',
      "user.grops.exists(g, g == 'x')",
      'unknown_field',
      1,
      6,
      "undefined field 'grops' at 1:6 (did you mean 'groups'?)",
    ],
    [
      'unknown method',
      "user.present &&\n  context.purpose.startsWit('x')",
      'no_matching_overload',
      2,
      3,
      "(did you mean 'startsWith'?)",
    ],
    ['type error', 'user.present + 1', 'no_such_overload', 1, 1, 'no such overload: bool + int at 1:1'],
    ['non-bool condition', 'context.purpose', 'not_bool', 1, 1, "has type 'string'"],
    ['syntax error', 'user.present &&', 'unexpected_token', 1, 16, 'Unexpected token'],
    ['unsafe regex', "context.ticketId.matches('^(a+)+$')", 'unsafe_regex', 1, 26, 'nested quantifier'],
    ['dynamic regex', 'request.tool.matches(request.args.pattern)', 'dynamic_regex', 1, 22, 'string literal'],
    [
      'unknown time zone',
      "request.time.getHours('Europe/Berln') > 9",
      'invalid_time_zone',
      1,
      23,
      "unknown time zone 'Europe/Berln'",
    ],
    ['bad CIDR', "inCidr(request.args.ip, '10.0.0.0/33')", 'invalid_cidr', 1, 25, 'invalid prefix length'],
    ['empty expression', '  ', 'empty_expression', 1, 1, 'expression is empty'],
    [
      'cost over budget (triple nested comprehension)',
      'request.args.a.all(x, request.args.b.all(y, request.args.c.all(z, x == y && y == z)))',
      'cost_exceeded',
      1,
      1,
      'estimated worst-case cost',
    ],
  ])('%s', (_name, expression, code, line, column, fragment) => {
    const errors = conditionErrors(expression);
    expect(errors).toHaveLength(1);
    const [error] = errors;
    expect(error).toMatchObject({ path: 'spec.rules[0].when[0].expression', code, line, column });
    expect(error?.message).toContain(fragment);
  });

  it('rejects over-long expressions', () => {
    const errors = conditionErrors(`user.present${' && user.present'.repeat(300)}`);
    expect(errors[0]?.code).toBe('expression_too_long');
  });

  it('formats an error for status conditions and CLI output', () => {
    const [error] = conditionErrors('usr.present');
    expect(formatCompileError({ namespace: 'agents', name: 'support' }, error as PolicyCompileError)).toBe(
      "AccessPolicy agents/support: spec.rules[0].when[0].expression: undeclared reference to 'usr' at 1:1 (did you mean 'user'?)",
    );
  });
});

describe('compileAccessPolicy: structural errors carry field paths, and all are reported', () => {
  it('reports every problem, not just the first', () => {
    const errors = errorsOf({
      rules: [
        { targets: ['jira'], when: [{ name: 'a', expression: 'usr' }] },
        { targets: [], tools: [''], http: { methods: ['FETCH'], paths: ['api/*'] } },
        {
          targets: ['db'],
          when: [
            { name: 'dup', expression: 'true' },
            { name: 'dup', expression: 'true' },
            { name: '', expression: 'true' },
          ],
          credential: { ttl: 'five minutes', claims: { ticket: 'contxt.ticketId' } },
        },
      ],
    });
    expect(errors.map((e) => [e.path, e.code])).toEqual([
      ['spec.rules[0].when[0].expression', 'unknown_variable'],
      ['spec.rules[1].targets', 'no_targets'],
      ['spec.rules[1].tools[0]', 'invalid_glob'],
      ['spec.rules[1].http.methods[0]', 'invalid_method'],
      ['spec.rules[1].http.paths[0]', 'invalid_glob'],
      ['spec.rules[2].when[1].name', 'duplicate_name'],
      ['spec.rules[2].when[2].name', 'missing_name'],
      ['spec.rules[2].credential.ttl', 'invalid_duration'],
      ['spec.rules[2].credential.claims.ticket', 'unknown_variable'],
    ]);
  });

  it.each([
    ['no rules', { rules: [] }, 'spec.rules', 'no_rules'],
    [
      'invalid effect',
      { effect: 'Maybe' as 'Allow', rules: [{ targets: ['x'] }] },
      'spec.effect',
      'invalid_effect',
    ],
    [
      'empty selector name',
      { agentSelector: { names: [''] }, rules: [{ targets: ['x'] }] },
      'spec.agentSelector.names[0]',
      'invalid_name',
    ],
    [
      'too many conditions',
      {
        rules: [
          {
            targets: ['x'],
            when: Array.from({ length: 17 }, (_, i) => ({ name: `c${i}`, expression: 'true' })),
          },
        ],
      },
      'spec.rules[0].when',
      'too_many_conditions',
    ],
  ])('%s', (_name, spec, path, code) => {
    expect(errorsOf(spec as AccessPolicySpecLike)).toContainEqual(expect.objectContaining({ path, code }));
  });
});

describe('compileAccessPolicy: rule limits (quotas)', () => {
  it('compiles limits with their windows in milliseconds', () => {
    const r = compileAccessPolicy({
      namespace: 'agents',
      name: 'support',
      spec: {
        rules: [
          {
            targets: ['jira'],
            limits: [
              { per: 'agent', calls: 100, window: '1m' },
              { per: 'agent+user', calls: 5, window: '24h' },
            ],
          },
        ],
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.compiled.rules[0]?.limits).toEqual([
      { index: 0, per: 'agent', calls: 100, window: '1m', windowMs: 60_000 },
      { index: 1, per: 'agent+user', calls: 5, window: '24h', windowMs: 86_400_000 },
    ]);
  });

  it('a rule without limits has none', () => {
    const r = compileAccessPolicy({
      namespace: 'agents',
      name: 'p',
      spec: { rules: [{ targets: ['jira'] }] },
    });
    expect(r.ok && r.compiled.rules[0]?.limits).toEqual([]);
  });

  it.each([
    [{ per: 'pod', calls: 1, window: '1m' }, 'spec.rules[0].limits[0].per', 'invalid_scope'],
    [{ per: 'agent', calls: 0, window: '1m' }, 'spec.rules[0].limits[0].calls', 'invalid_calls'],
    [{ per: 'agent', calls: 1.5, window: '1m' }, 'spec.rules[0].limits[0].calls', 'invalid_calls'],
    [{ per: 'agent', calls: 1, window: '500ms' }, 'spec.rules[0].limits[0].window', 'invalid_window'],
    [{ per: 'agent', calls: 1, window: '25h' }, 'spec.rules[0].limits[0].window', 'invalid_window'],
    [{ per: 'agent', calls: 1, window: 'soon' }, 'spec.rules[0].limits[0].window', 'invalid_window'],
  ])('refuses %j, naming %s', (limit, path, code) => {
    const errors = errorsOf({ rules: [{ targets: ['jira'], limits: [limit] }] });
    expect(errors).toContainEqual(expect.objectContaining({ path, code }));
  });

  it('refuses limits on a Deny rule', () => {
    const errors = errorsOf({
      effect: 'Deny',
      rules: [{ targets: ['jira'], limits: [{ per: 'agent', calls: 1, window: '1m' }] }],
    });
    expect(errors).toContainEqual(
      expect.objectContaining({ path: 'spec.rules[0].limits', code: 'limits_on_deny' }),
    );
  });
});
