import { DEFAULT_BOUNDS, type PolicyBounds } from './bounds.js';
import type { CelAgent } from './cel-env.js';
import type { CompiledPolicy, CompiledRule } from './compiled.js';
import { foldToolName, TOOL_GRAM } from './glob.js';
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
 * One target's rules indexed by what their tool globs require of a name. A glob that starts with
 * literal text puts its rule under that prefix; a glob that starts with a wildcard but holds a
 * literal run of TOOL_GRAM characters or more puts it under TOOL_GRAM characters of that run
 * (`byGram`, looked up with every TOOL_GRAM-long piece of the name). A rule with a glob that
 * requires neither (`*`, `*a*`), no tool globs, or compiled without this index is in `always`.
 * Positions keep the policy order when lists are merged.
 */
export interface ToolIndex {
  readonly always: Bucket;
  readonly byPrefix: ReadonlyMap<string, Bucket>;
  readonly byGram: ReadonlyMap<string, Bucket>;
  /** Distinct prefix lengths, ascending: the only lengths worth looking up. */
  readonly lengths: readonly number[];
  /** Deny rules compare folded names (foldToolName), Allow rules exact ones. */
  readonly fold: boolean;
}

/** Rules in policy order, with each one's position in the target's list (to merge buckets). */
interface Bucket {
  readonly refs: RuleRef[];
  readonly pos: number[];
}

function indexTools(refs: readonly RuleRef[], fold: boolean): ToolIndex {
  const always: Bucket = { refs: [], pos: [] };
  const byPrefix = new Map<string, Bucket>();
  const byGram = new Map<string, Bucket>();
  const bucket = (map: Map<string, Bucket>, key: string): Bucket => {
    let b = map.get(key);
    if (!b) {
      b = { refs: [], pos: [] };
      map.set(key, b);
    }
    return b;
  };
  refs.forEach((ref, pos) => {
    const { toolMatchers, toolPrefixes: prefixes, toolGrams: grams } = ref.rule;
    // Per glob: its literal prefix, else TOOL_GRAM characters it requires, else nothing to index by.
    const keys =
      toolMatchers && prefixes && prefixes.length > 0
        ? prefixes.map((p, i) => ({ prefix: p, gram: grams?.[i] ?? '' }))
        : [];
    const buckets =
      keys.length === 0 || keys.some((k) => k.prefix === '' && k.gram.length !== TOOL_GRAM)
        ? [always]
        : [
            ...new Set(
              keys.map((k) => (k.prefix !== '' ? bucket(byPrefix, k.prefix) : bucket(byGram, k.gram))),
            ),
          ];
    for (const b of buckets) {
      b.refs.push(ref);
      b.pos.push(pos);
    }
  });
  const lengths = [...new Set([...byPrefix.keys()].map((k) => k.length))].sort((a, b) => a - b);
  return { always, byPrefix, byGram, lengths, fold };
}

/**
 * The rules of `index` for `target` that can apply to MCP tool `tool`, in policy order: a subset of
 * rulesFor(index, target) that keeps every rule whose tool globs could match (each is still checked
 * with ruleAppliesTo). With many policies, each naming its own tools, a decision then looks at the
 * few rules for its tool instead of all of them. One bucket (the common case) is returned as it is.
 */
export function toolRulesFor(index: TargetIndex, target: string, tool: string): readonly RuleRef[] {
  const ti = index.toolsByTarget.get(target) ?? index.toolsWildcard;
  const name = ti.fold ? foldToolName(tool) : tool;
  const found: Bucket[] = [];
  for (const length of ti.lengths) {
    if (length > name.length) break;
    const b = ti.byPrefix.get(name.slice(0, length));
    if (b) found.push(b);
  }
  if (ti.byGram.size > 0) {
    for (let i = 0; i + TOOL_GRAM <= name.length; i++) {
      const b = ti.byGram.get(name.slice(i, i + TOOL_GRAM));
      if (b && !found.includes(b)) found.push(b);
    }
  }
  if (ti.always.refs.length > 0) found.push(ti.always);
  if (found.length === 0) return [];
  if (found.length === 1) return (found[0] as Bucket).refs;
  // Several buckets (a rule can sit in more than one): merge by position, each rule once.
  const byPos = new Map<number, RuleRef>();
  for (const b of found) {
    for (let i = 0; i < b.pos.length; i++) byPos.set(b.pos[i] as number, b.refs[i] as RuleRef);
  }
  return [...byPos.keys()].sort((a, b) => a - b).map((p) => byPos.get(p) as RuleRef);
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
