import type { CompiledPolicy } from './compiled.js';
import { evaluateCondition } from './condition.js';
import { type DecideOptions, decide } from './decide.js';
import { buildActivation } from './input.js';
import { requestMismatch, ruleTargets } from './match.js';
import type { PolicySet } from './policy-set.js';
import type { Decision, Effect, PolicyInput } from './types.js';

/**
 * explain(): the decision plus everything that led to it — every policy
 * considered (and why others were not), each rule's match against target and
 * request, and each condition's value or error. Unlike decide(), it evaluates
 * every condition of every applicable rule, so a reader sees all of them.
 */

export type ConditionResult = 'true' | 'false' | 'error' | 'not-evaluated';

export interface ConditionExplanation {
  readonly name: string;
  readonly expression: string;
  readonly result: ConditionResult;
  readonly error?: string;
}

export type RuleOutcome = 'not-applicable' | 'holds' | 'condition-false' | 'error' | 'not-evaluated';

export interface RuleExplanation {
  readonly index: number;
  readonly targets: readonly string[];
  readonly tools: readonly string[] | null;
  readonly targetMatched: boolean;
  /** Why the rule does not apply (target or tool/method/path), when it does not. */
  readonly mismatch: string | null;
  readonly outcome: RuleOutcome;
  readonly conditions: readonly ConditionExplanation[];
}

export interface PolicyExplanation {
  /** `namespace/name`. */
  readonly policy: string;
  readonly effect: Effect;
  readonly selected: boolean;
  /** Why the policy does not select the agent. */
  readonly notSelectedReason: string | null;
  readonly rules: readonly RuleExplanation[];
}

export interface Explanation {
  readonly decision: Decision;
  readonly agent: { readonly name: string; readonly namespace: string; readonly suspended: boolean };
  /** "agent acting alone" or "agent acting for alice". */
  readonly actingFor: string;
  readonly policies: readonly PolicyExplanation[];
}

function explainRules(
  policy: CompiledPolicy,
  input: PolicyInput,
  activation: ReturnType<typeof buildActivation>,
): RuleExplanation[] {
  return policy.rules.map((rule) => {
    const targetMatched = ruleTargets(rule, input.request.target);
    const mismatch = targetMatched
      ? requestMismatch(rule, input.request)
      : `target '${input.request.target}' is not in ${JSON.stringify(rule.targets)}`;
    const base = { index: rule.index, targets: rule.targets, tools: rule.tools, targetMatched, mismatch };
    if (mismatch !== null || !activation.ok) {
      return {
        ...base,
        outcome: mismatch !== null ? 'not-applicable' : 'not-evaluated',
        conditions: rule.conditions.map((c) => ({
          name: c.name,
          expression: c.expression.source,
          result: 'not-evaluated' as const,
        })),
      };
    }
    const conditions: ConditionExplanation[] = rule.conditions.map((c) => {
      const outcome = evaluateCondition(c, activation.activation);
      if (typeof outcome === 'string')
        return { name: c.name, expression: c.expression.source, result: 'error', error: outcome };
      return { name: c.name, expression: c.expression.source, result: outcome ? 'true' : 'false' };
    });
    const outcome: RuleOutcome = conditions.some((c) => c.result === 'error')
      ? 'error'
      : conditions.some((c) => c.result === 'false')
        ? 'condition-false'
        : 'holds';
    return { ...base, outcome, conditions };
  });
}

export function explain(set: PolicySet, input: PolicyInput, options: DecideOptions = {}): Explanation {
  const decision = decide(set, input, options);
  const activation = buildActivation(input, set.celAgent, set.bounds);
  const policies: PolicyExplanation[] = [
    ...set.policies.map((policy) => ({
      policy: policy.id,
      effect: policy.effect,
      selected: true,
      notSelectedReason: null,
      rules: explainRules(policy, input, activation),
    })),
    ...set.skipped.map(({ policy, reason }) => ({
      policy: policy.id,
      effect: policy.effect,
      selected: false,
      notSelectedReason: reason,
      rules: [],
    })),
  ];
  return {
    decision,
    agent: { name: set.agent.name, namespace: set.agent.namespace, suspended: set.agent.suspended === true },
    actingFor: input.user
      ? `${set.agent.name} acting for ${input.user.sub}`
      : `${set.agent.name} acting alone`,
    policies,
  };
}
