import { type CelActivation, CelRequest } from './cel-env.js';
import type { CompiledRule } from './compiled.js';
import { evaluateCondition } from './condition.js';
import { ABSENT_USER, buildActivation, celUser, EMPTY_CONTEXT, EMPTY_MAP } from './input.js';
import { ruleAppliesTo } from './match.js';
import { type PolicySet, type RuleRef, rulesFor, type TargetIndex, toolRulesFor } from './policy-set.js';
import type { Decision, DecisionReason, PolicyInput, RequestInput, UserInput } from './types.js';

/**
 * decide(): deny-overrides evaluation of a policy set for one request.
 *   1. a suspended agent is denied (AgentSuspended);
 *   2. the input is bounded (InputTooLarge / InvalidInput deny);
 *   3. Deny rules for the target that apply to the request are evaluated first:
 *      all conditions true → Deny (DeniedByPolicy); an erroring condition → Deny
 *      (EvaluationError: a Deny rule that cannot be evaluated fails closed);
 *   4. Allow rules: the first whose conditions all hold → Allow. An erroring
 *      condition makes only that rule not allow;
 *   5. otherwise Deny: EvaluationError if any Allow condition errored, else
 *      ConditionFailed naming the first false condition, else NoMatchingAllow.
 * An MCP request that names no tool is session traffic (initialize, tools/list, a GET stream):
 * the same steps, except that every Allow rule serving MCP requests to the target (tool globs, or
 * neither tools nor http) applies, and a Deny rule only when it covers the whole target. Its
 * conditions are evaluated like any other: the session's credential is the one of the rule that
 * allowed it, so a rule whose `when` does not hold for this agent, user and context never lends it.
 * Each evaluated condition spends its estimated worst-case cost from the
 * per-decision budget; an exhausted budget denies (CostExceeded).
 */

export interface DecideOptions {
  /** Monotonic microsecond clock for evaluationMicros (injectable for tests). */
  readonly nowMicros?: () => number;
}

const defaultNowMicros = (): number => performance.now() * 1000;

function actor(set: PolicySet, user: UserInput | null | undefined): string {
  return user ? `${set.agent.name} acting for ${user.sub}` : `${set.agent.name} acting alone`;
}

function describeRequest(r: RequestInput | undefined): string {
  // Robust to malformed input: the description is built before the input is validated.
  if (!r) return 'request';
  switch (r.kind) {
    case 'mcp':
      if (r.tool === undefined) return `MCP session traffic (no tool named) to '${String(r.target)}'`;
      return `tool '${String(r.tool)}' on '${String(r.target)}'`;
    case 'http':
      return `${String(r.method ?? '?').toUpperCase()} ${String(r.path ?? '?')} on '${String(r.target)}'`;
    default:
      return `${String(r.kind)} access to '${String(r.target)}'`;
  }
}

/** The rules that can apply to the request: looked up by tool for MCP calls, else by target. */
function candidates(index: TargetIndex, request: RequestInput): readonly RuleRef[] {
  return request.kind === 'mcp' && typeof request.tool === 'string'
    ? toolRulesFor(index, request.target, request.tool)
    : rulesFor(index, request.target);
}

/** MCP traffic that names no tool (initialize, tools/list, notifications, a GET stream). */
function isSessionTraffic(request: RequestInput): boolean {
  return request.kind === 'mcp' && request.tool === undefined;
}

/**
 * Does an Allow rule apply? For session traffic, every rule that serves MCP requests to the
 * target (tool globs, or neither tools nor http): reaching the server is what each of them needs.
 */
function allowApplies(rule: CompiledRule, request: RequestInput, session: boolean): boolean {
  return session ? rule.toolMatchers !== null || rule.http === null : ruleAppliesTo(rule, request);
}

/** Appended to a session denial caused by a condition: session traffic has no tool or arguments. */
const SESSION_HINT =
  '; MCP session traffic (initialize, tools/list) names no tool, so request.tool and request.args are absent: a rule serves the session only when its conditions hold without them (guard tool conditions with !has(request.tool) || …)';

/** Do all the rule's conditions hold? Errors count as "no" (the caller re-examines to say why). */
function allHold(rule: CompiledRule, activation: CelActivation): boolean {
  if (rule.allConditions !== null) {
    try {
      return rule.allConditions(activation) === true;
    } catch {
      return false;
    }
  }
  const only = rule.conditions[0];
  return only === undefined || evaluateCondition(only, activation) === true;
}

interface Pending {
  ref: RuleRef;
  condition: string;
  error: string | null;
}

type MutableDecision = { -readonly [K in keyof Decision]: Decision[K] };

function verdict(
  decision: 'Allow' | 'Deny',
  reason: DecisionReason,
  ref: RuleRef | null,
  condition: string | null,
  message: string,
): MutableDecision {
  return {
    decision,
    policy: ref ? ref.policy.id : null,
    rule: ref ? ref.rule.index : null,
    condition,
    reason,
    message,
    evaluationMicros: 0,
  };
}

export function decide(set: PolicySet, input: PolicyInput, options: DecideOptions = {}): Decision {
  const now = options.nowMicros ?? defaultNowMicros;
  const started = now();
  const decision = decideUntimed(set, input);
  decision.evaluationMicros = now() - started;
  return decision;
}

function decideUntimed(set: PolicySet, input: PolicyInput): MutableDecision {
  const result = verdict;
  const who = actor(set, input.user);
  const what = describeRequest(input.request);

  if (set.agent.suspended) {
    const why = set.agent.suspendReason ? `: ${set.agent.suspendReason}` : '';
    return result(
      'Deny',
      'AgentSuspended',
      null,
      null,
      `${who}: ${what} denied: agent ${set.agent.namespace}/${set.agent.name} is suspended${why}`,
    );
  }

  const built = buildActivation(input, set.celAgent, set.bounds);
  if (!built.ok) {
    const reason = built.problem.reason === 'InputTooLarge' ? 'InputTooLarge' : 'InvalidInput';
    return result('Deny', reason, null, null, `${who}: ${what} denied: ${built.problem.message}`);
  }
  const activation = built.activation;
  const budget = set.bounds.maxDecisionCost;
  let spent = 0;
  const request = input.request;
  const session = isSessionTraffic(request);
  const hint = session ? SESSION_HINT : '';

  // Deny rules: any that holds wins; one that cannot be evaluated fails closed.
  for (const ref of candidates(set.deny, request)) {
    if (!ruleAppliesTo(ref.rule, request)) continue;
    let holds = true;
    for (const condition of ref.rule.conditions) {
      spent += condition.expression.cost;
      if (spent > budget) return costExceeded(result, ref, condition.name, who, what, budget);
      const outcome = evaluateCondition(condition, activation);
      if (outcome === true) continue;
      if (outcome === false) {
        holds = false;
        break;
      }
      return result(
        'Deny',
        'EvaluationError',
        ref,
        condition.name,
        `${who}: ${what} denied: condition '${condition.name}' of Deny policy ${ref.policy.id} rule ${ref.rule.index} could not be evaluated (${outcome}); a Deny rule that errors denies — guard optional fields with has()${hint}`,
      );
    }
    if (holds) {
      const names = ref.rule.conditionNames;
      return result(
        'Deny',
        'DeniedByPolicy',
        ref,
        names,
        `${who}: ${what} denied by AccessPolicy ${ref.policy.id} rule ${ref.rule.index}${names ? ` (conditions held: ${names})` : ''}`,
      );
    }
  }

  // Allow rules: the first whose conditions all hold allows. Each rule is tried as one
  // program (one library call); only when nothing allows are the rules that did not hold
  // re-examined condition by condition, to say why.
  const notHeld: RuleRef[] = [];
  for (const ref of candidates(set.allow, request)) {
    if (!allowApplies(ref.rule, request, session)) continue;
    spent += ref.rule.conditionsCost;
    if (spent > budget)
      return costExceeded(result, ref, ref.rule.conditions[0]?.name ?? '', who, what, budget);
    if (allHold(ref.rule, activation)) {
      const names = ref.rule.conditionNames;
      return result(
        'Allow',
        'Allowed',
        ref,
        names,
        `${who}: ${what} allowed by AccessPolicy ${ref.policy.id} rule ${ref.rule.index}${names ? ` (conditions held: ${names})` : ''}`,
      );
    }
    notHeld.push(ref);
  }

  // The re-examination spends nothing from the budget: each rule's conditions were
  // charged in full above (conditionsCost), and this pass evaluates at most those same
  // conditions again, so its work is bounded by what was already charged. Charging
  // them twice turned a request within budget into CostExceeded.
  let firstFailure: Pending | null = null;
  let firstError: Pending | null = null;
  for (const ref of notHeld) {
    for (const condition of ref.rule.conditions) {
      const outcome = evaluateCondition(condition, activation);
      if (outcome === true) continue;
      if (outcome === false) firstFailure ??= { ref, condition: condition.name, error: null };
      else firstError ??= { ref, condition: condition.name, error: outcome };
      break;
    }
  }

  if (firstError) {
    const { ref, condition, error } = firstError;
    return result(
      'Deny',
      'EvaluationError',
      ref,
      condition,
      `${who}: ${what} denied: condition '${condition}' of AccessPolicy ${ref.policy.id} rule ${ref.rule.index} could not be evaluated (${error}); guard optional fields with has()${hint}`,
    );
  }
  if (firstFailure) {
    const { ref, condition } = firstFailure;
    return result(
      'Deny',
      'ConditionFailed',
      ref,
      condition,
      `${who}: ${what} denied: condition '${condition}' of AccessPolicy ${ref.policy.id} rule ${ref.rule.index} is false${hint}`,
    );
  }
  return result(
    'Deny',
    'NoMatchingAllow',
    null,
    null,
    `${who}: ${what} denied: no AccessPolicy rule allows it (${set.policies.length} ${set.policies.length === 1 ? 'policy applies' : 'policies apply'} to this agent)`,
  );
}

function costExceeded(
  result: typeof verdict,
  ref: RuleRef,
  condition: string,
  who: string,
  what: string,
  budget: number,
): Decision {
  return result(
    'Deny',
    'CostExceeded',
    ref,
    condition,
    `${who}: ${what} denied: evaluation budget of ${budget} exhausted at condition '${condition}' of AccessPolicy ${ref.policy.id} rule ${ref.rule.index}; simplify the policies that apply to this agent`,
  );
}

/**
 * Could some Allow rule permit `tool` on `target` for this agent and user? Used
 * to filter MCP tools/list. Sound (never hides a tool that a later call could
 * be allowed to use) and simple:
 *   - a suspended agent can use nothing;
 *   - an unconditional Deny rule matching the tool hides it;
 *   - an Allow rule matching target and tool could allow unless one of its
 *     conditions reads only `agent` and `user` (known now) and is false or errors.
 * Conditions reading `request` or `context` are assumed satisfiable.
 */
export function couldAllowTool(
  set: PolicySet,
  target: string,
  tool: string,
  user: UserInput | null | undefined,
): boolean {
  if (set.agent.suspended) return false;
  const shape = { kind: 'mcp' as const, tool };
  for (const ref of rulesFor(set.deny, target)) {
    if (ref.rule.conditions.length === 0 && ruleAppliesTo(ref.rule, shape)) return false;
  }
  let activation: CelActivation | null = null;
  for (const ref of rulesFor(set.allow, target)) {
    if (!ruleAppliesTo(ref.rule, shape)) continue;
    let possible = true;
    for (const condition of ref.rule.conditions) {
      const vars = condition.expression.variables;
      if (vars.has('request') || vars.has('context')) continue;
      activation ??= knownOnlyActivation(set, target, tool, user);
      if (activation === null) return true; // user data too large to check here; the call itself will be bounded
      if (evaluateCondition(condition, activation) !== true) {
        possible = false;
        break;
      }
    }
    if (possible) return true;
  }
  return false;
}

function knownOnlyActivation(
  set: PolicySet,
  target: string,
  tool: string,
  user: UserInput | null | undefined,
): CelActivation | null {
  try {
    return {
      agent: set.celAgent,
      user: user ? celUser(user, set.bounds, { bytes: 0, nodes: 0 }) : ABSENT_USER,
      // Never read by the conditions evaluated here (they reference only agent and user).
      request: new CelRequest('mcp', target, tool, EMPTY_MAP, undefined, undefined, new Date(0), []),
      context: EMPTY_CONTEXT,
    };
  } catch {
    return null;
  }
}
