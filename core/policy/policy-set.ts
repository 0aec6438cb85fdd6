import { DEFAULT_BOUNDS, type PolicyBounds } from './bounds.js';
import type { CelAgent } from './cel-env.js';
import type { CompiledPolicy, CompiledRule } from './compiled.js';
import { foldToolName } from './glob.js';
import { celAgent } from './input.js';
import { type PolicySetAgent, selectorMismatch } from './match.js';

export type { PolicySetAgent } from './match.js';

/** A rule together with the policy it belongs to. */
export interface RuleRef {
  readonly policy: CompiledPolicy;
  readonly rule: CompiledRule;
}

/** Rules indexed by target: the lookup for a target already includes the "*" rules, in policy order. */
export interface TargetIndex {
  readonly byTarget: ReadonlyMap<string, readonly RuleRef[]>;
  readonly wildcard: readonly RuleRef[];
  /** The same lists indexed by tool, for MCP requests (toolRulesFor). */
  readonly toolsByTarget: ReadonlyMap<string, ToolIndex>;
  readonly toolsWildcard: ToolIndex;
}

/**
 * One target's rules indexed by the literal prefix of their tool globs. A rule whose globs all
 * start with literal text sits under each of those prefixes; every other rule (no tool globs, a
 * glob starting with a wildcard, or compiled without prefixes) is in `always`. Positions keep the
 * policy order when lists are merged.
 */
export interface ToolIndex {
  readonly always: readonly Positioned[];
  readonly byPrefix: ReadonlyMap<string, readonly Positioned[]>;
  /** Distinct prefix lengths, ascending: the only lengths worth looking up. */
  readonly lengths: readonly number[];
  /** Deny rules compare folded names (foldToolName), Allow rules exact ones. */
  readonly fold: boolean;
}

interface Positioned {
  readonly pos: number;
  readonly ref: RuleRef;
}

function indexTools(refs: readonly RuleRef[], fold: boolean): ToolIndex {
  const always: Positioned[] = [];
  const byPrefix = new Map<string, Positioned[]>();
  refs.forEach((ref, pos) => {
    const prefixes = ref.rule.toolMatchers ? ref.rule.toolPrefixes : null;
    if (!prefixes || prefixes.length === 0 || prefixes.some((p) => p === '')) {
      always.push({ pos, ref });
      return;
    }
    for (const prefix of new Set(prefixes)) {
      const list = byPrefix.get(prefix);
      if (list) list.push({ pos, ref });
      else byPrefix.set(prefix, [{ pos, ref }]);
    }
  });
  const lengths = [...new Set([...byPrefix.keys()].map((k) => k.length))].sort((a, b) => a - b);
  return { always, byPrefix, lengths, fold };
}

/**
 * The rules of `index` for `target` that can apply to MCP tool `tool`, in policy order: a subset of
 * rulesFor(index, target) that keeps every rule whose tool globs could match (each is still checked
 * with ruleAppliesTo). With many policies, each naming its own tools, a decision then looks at the
 * few rules for its tool instead of all of them.
 */
export function toolRulesFor(index: TargetIndex, target: string, tool: string): readonly RuleRef[] {
  const ti = index.toolsByTarget.get(target) ?? index.toolsWildcard;
  const name = ti.fold ? foldToolName(tool) : tool;
  const found: (readonly Positioned[])[] = [];
  for (const length of ti.lengths) {
    if (length > name.length) break;
    const list = ti.byPrefix.get(name.slice(0, length));
    if (list) found.push(list);
  }
  if (ti.always.length > 0) found.push(ti.always);
  if (found.length === 1) return (found[0] ?? []).map(refOf);
  // Several lists (a rule can sit in more than one): merge by position, each rule once.
  const merged = found.flat().sort((a, b) => a.pos - b.pos);
  const out: RuleRef[] = [];
  let last = -1;
  for (const e of merged) {
    if (e.pos !== last) out.push(e.ref);
    last = e.pos;
  }
  return out;
}

const refOf = (e: Positioned): RuleRef => e.ref;

/** The compiled policies that apply to one agent, indexed for evaluation. Immutable; rebuild on change. */
export interface PolicySet {
  readonly agent: PolicySetAgent;
  /** The agent as CEL sees it, built once. */
  readonly celAgent: CelAgent;
  readonly bounds: PolicyBounds;
  /** Policies selecting the agent, Deny policies first, each group sorted by id for a stable order. */
  readonly policies: readonly CompiledPolicy[];
  /** Policies that do not select the agent, with the reason (for explain). */
  readonly skipped: readonly { readonly policy: CompiledPolicy; readonly reason: string }[];
  readonly deny: TargetIndex;
  readonly allow: TargetIndex;
}

export interface PolicySetOptions {
  readonly bounds?: PolicyBounds;
}

function indexRules(policies: readonly CompiledPolicy[], fold: boolean): TargetIndex {
  const refs: RuleRef[] = [];
  for (const policy of policies) for (const rule of policy.rules) refs.push({ policy, rule });
  const targets = new Set<string>();
  for (const { rule } of refs) for (const t of rule.targets) if (t !== '*') targets.add(t);
  const byTarget = new Map<string, RuleRef[]>();
  for (const t of targets)
    byTarget.set(
      t,
      refs.filter(({ rule }) => rule.targets.includes(t) || rule.targets.includes('*')),
    );
  const wildcard = refs.filter(({ rule }) => rule.targets.includes('*'));
  const toolsByTarget = new Map<string, ToolIndex>();
  for (const [t, list] of byTarget) toolsByTarget.set(t, indexTools(list, fold));
  return { byTarget, wildcard, toolsByTarget, toolsWildcard: indexTools(wildcard, fold) };
}

export function rulesFor(index: TargetIndex, target: string): readonly RuleRef[] {
  return index.byTarget.get(target) ?? index.wildcard;
}

/**
 * Select the policies that apply to `agent` (same namespace; agentSelector
 * names and matchLabels both satisfied; an empty selector selects every agent)
 * and index their rules by target.
 */
export function buildPolicySet(
  compiledPolicies: readonly CompiledPolicy[],
  agent: PolicySetAgent,
  options: PolicySetOptions = {},
): PolicySet {
  const selected: CompiledPolicy[] = [];
  const skipped: { policy: CompiledPolicy; reason: string }[] = [];
  for (const policy of compiledPolicies) {
    const reason = selectorMismatch(policy, agent);
    if (reason === null) selected.push(policy);
    else skipped.push({ policy, reason });
  }
  const byId = (a: CompiledPolicy, b: CompiledPolicy): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const denyPolicies = selected.filter((p) => p.effect === 'Deny').sort(byId);
  const allowPolicies = selected.filter((p) => p.effect === 'Allow').sort(byId);
  return {
    agent,
    celAgent: celAgent({
      name: agent.name,
      namespace: agent.namespace,
      serviceAccount: agent.serviceAccount,
      labels: agent.labels,
    }),
    bounds: options.bounds ?? DEFAULT_BOUNDS,
    policies: [...denyPolicies, ...allowPolicies],
    skipped,
    deny: indexRules(denyPolicies, true),
    allow: indexRules(allowPolicies, false),
  };
}
