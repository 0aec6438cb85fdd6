import { DEFAULT_BOUNDS, type PolicyBounds } from './bounds.js';
import type { CelAgent } from './cel-env.js';
import type { CompiledPolicy, CompiledRule } from './compiled.js';
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
}

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

function indexRules(policies: readonly CompiledPolicy[]): TargetIndex {
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
  return { byTarget, wildcard: refs.filter(({ rule }) => rule.targets.includes('*')) };
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
    deny: indexRules(denyPolicies),
    allow: indexRules(allowPolicies),
  };
}
