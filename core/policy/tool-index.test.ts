/**
 * The tool index (policy-set.ts toolRulesFor) only prunes: for any policies and any tool name,
 * the rules it returns that apply to the call are exactly the rules of the unindexed target list
 * that apply, in the same order. Checked with random globs over a small alphabet (so prefixes,
 * wildcards, `?`, case and fullwidth forms collide often) and through decide() itself.
 *
 * Deterministic: a fixed seed (override with FUZZ_SEED=<n>).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from './decide.js';
import { toolGlobGram } from './glob.js';
import { ruleAppliesTo } from './match.js';
import { buildPolicySet, rulesFor, toolRulesFor } from './policy-set.js';
import { allowPolicy, denyPolicy, MONDAY_10_UTC, mcpCall } from './testing.js';
import type { PolicyRuleLike } from './types.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_204);
const runs = (numRuns: number) => ({
  seed,
  numRuns: Math.max(1, Math.round(numRuns * Number(process.env.FUZZ_SCALE ?? 1))),
});

const AGENT = { name: 'bot', namespace: 'agents' };
const char = fc.constantFrom('a', 'b', 'A', '.', '_', 'ａ', '*', '?');
const glob = fc.array(char, { minLength: 1, maxLength: 6 }).map((c) => c.join(''));
const toolName = fc
  .array(fc.constantFrom('a', 'b', 'A', '.', '_', 'ａ'), { minLength: 1, maxLength: 7 })
  .map((c) => c.join(''));
const target = fc.constantFrom('jira', 'wiki', '*');
const rule: fc.Arbitrary<PolicyRuleLike> = fc.record(
  {
    targets: fc.array(target, { minLength: 1, maxLength: 2 }),
    tools: fc.option(fc.array(glob, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  },
  { requiredKeys: ['targets'] },
);
const policySpecs = fc.array(
  fc.record({ deny: fc.boolean(), rules: fc.array(rule, { minLength: 1, maxLength: 3 }) }),
  { minLength: 1, maxLength: 12 },
);

function setOf(specs: { deny: boolean; rules: PolicyRuleLike[] }[]) {
  return buildPolicySet(
    specs.map((p, i) => (p.deny ? denyPolicy(`p${i}`, ...p.rules) : allowPolicy(`p${i}`, ...p.rules))),
    AGENT,
  );
}

describe('tool index', () => {
  it('keeps every rule that applies to the tool, in policy order, for Deny (folded) and Allow rules', () => {
    fc.assert(
      fc.property(policySpecs, toolName, fc.constantFrom('jira', 'wiki', 'other'), (specs, tool, t) => {
        const set = setOf(specs);
        const shape = { kind: 'mcp' as const, tool };
        for (const index of [set.deny, set.allow]) {
          const indexed = toolRulesFor(index, t, tool).filter((r) => ruleAppliesTo(r.rule, shape));
          const full = rulesFor(index, t).filter((r) => ruleAppliesTo(r.rule, shape));
          expect(indexed).toEqual(full);
        }
      }),
      runs(400),
    );
  });

  it('decides every tool call as trying each rule in turn would', () => {
    fc.assert(
      fc.property(policySpecs, toolName, (specs, tool) => {
        const set = setOf(specs);
        const got = decide(set, mcpCall(tool, { time: MONDAY_10_UTC }));
        // The reference: the first applying Deny rule, else the first applying Allow rule.
        const shape = { kind: 'mcp' as const, tool };
        const deny = rulesFor(set.deny, 'jira').find((r) => ruleAppliesTo(r.rule, shape));
        const allow = rulesFor(set.allow, 'jira').find((r) => ruleAppliesTo(r.rule, shape));
        const want = deny ?? allow;
        expect([got.decision, got.policy, got.rule]).toEqual([
          deny ? 'Deny' : allow ? 'Allow' : 'Deny',
          want ? want.policy.id : null,
          want ? want.rule.index : null,
        ]);
      }),
      runs(300),
    );
  });

  it('finds a Deny glob written in another case or fullwidth form by the folded prefix', () => {
    const set = setOf([{ deny: true, rules: [{ targets: ['jira'], tools: ['ＪＩＲＡ.Delete*'] }] }]);
    const hits = toolRulesFor(set.deny, 'jira', 'jira.DELETE_issue');
    expect(hits.map((r) => r.policy.id)).toEqual(['agents/p0']);
    expect(decide(set, mcpCall('jira.DELETE_issue')).decision).toBe('Deny');
  });

  it('looks up a few prefixes, not every rule, when policies name their own tools', () => {
    const specs = Array.from({ length: 500 }, (_, i) => ({
      deny: false,
      rules: [{ targets: ['jira'], tools: [`jira.tool${i}_*`] }],
    }));
    const set = setOf(specs);
    expect(toolRulesFor(set.allow, 'jira', 'jira.tool42_get').map((r) => r.policy.id)).toEqual([
      'agents/p42',
    ]);
    expect(toolRulesFor(set.allow, 'jira', 'jira.unknown')).toEqual([]);
  });

  it('finds a Deny glob that starts with a wildcard by a piece of its literal text, in any case or width', () => {
    const specs = Array.from({ length: 200 }, (_, i) => ({
      deny: true,
      rules: [{ targets: ['*'], tools: [`*.delete_${i}*`, '*.purge'] }],
    }));
    const set = setOf(specs);
    // Not one of the 200 is tried for a name holding none of their pieces ...
    expect(toolRulesFor(set.deny, 'jira', 'jira.get_issue')).toEqual([]);
    // ... and each is found for a name it matches, written in another case or fullwidth form.
    const hits = toolRulesFor(set.deny, 'jira', 'jira.ＤＥＬＥＴＥ_42_issue').map((r) => r.policy.id);
    expect(hits).toContain('agents/p42');
    expect(decide(set, mcpCall('jira.ＤＥＬＥＴＥ_42_issue')).decision).toBe('Deny');
    expect(decide(set, mcpCall('wiki.PURGE')).policy).toBe('agents/p0');
  });
});

describe('toolGlobGram', () => {
  it.each([
    ['*.delete_*', false, 'te_'],
    ['*DELETE*', true, 'ete'],
    ['*ab?cdef*x*', false, 'def'],
    ['*abc*def*', false, 'def'],
    ['*', false, ''],
    ['*ab*cd*', false, ''],
    ['jira.*', false, 'ra.'],
  ])('%s (folded: %s) -> %j', (glob, fold, gram) => {
    expect(toolGlobGram(glob, { caseInsensitive: fold })).toBe(gram);
  });
});
