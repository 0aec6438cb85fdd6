import { describe, expect, it } from 'vitest';
import { DEFAULT_BOUNDS } from './bounds.js';
import { CACHED_MATCHES } from './cel-env.js';
import { compileExpression } from './expression.js';
import { buildActivation, celAgent } from './input.js';
import { MONDAY_10_UTC } from './testing.js';

function compile(source: string) {
  const r = compileExpression(source, true, DEFAULT_BOUNDS);
  if (!r.ok) throw new Error(r.problem.summary);
  return r.expression;
}

const activation = (() => {
  const built = buildActivation(
    {
      request: {
        kind: 'mcp',
        target: 'jira',
        tool: 'jira.get_issue',
        args: { a: 'SUP-1', b: 'x!' },
        time: MONDAY_10_UTC,
      },
    },
    celAgent({ name: 'bot', namespace: 'agents' }),
    DEFAULT_BOUNDS,
  );
  if (!built.ok) throw new Error(built.problem.message);
  return built.activation;
})();

describe('matches() runs with a cached RegExp', () => {
  it.each([
    ["request.args.a.matches('^SUP-[0-9]+$')", true, 1],
    ["request.args.a.matches('^SUP') && request.args.b.matches('!$')", true, 2],
    ["request.args.a . matches ( '^OPS' )", false, 1],
    ["[request.args.a].exists(x, x.matches('SUP'))", true, 1],
    ["request.tool.matches(request.args.a.matches('S') ? 'jira' : 'x')", false, 0], // dynamic pattern: rejected below
  ])('%s', (source, expected, rewrites) => {
    if (rewrites === 0) {
      expect(compileExpression(source, true, DEFAULT_BOUNDS).ok).toBe(false);
      return;
    }
    const e = compile(source);
    expect(e.source).toBe(source);
    expect(e.programSource.split(CACHED_MATCHES).length - 1).toBe(rewrites);
    expect(e.evaluate(activation)).toBe(expected);
  });

  it('policies cannot call the internal function directly (it would skip the regex checks)', () => {
    const r = compileExpression(`request.tool.${CACHED_MATCHES}(request.args.a)`, true, DEFAULT_BOUNDS);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem.hint).toBe("did you mean 'matches'?");
  });
});
