/**
 * AccessPolicy reconciler: gather → decide → act.
 *
 * Compiles every CEL expression (core/policy's compileAccessPolicy, with the
 * declared policy variables) and reports the first problems in a Ready=False
 * InvalidExpression condition naming the rule, the condition (index and name)
 * and the position, with a Warning Event; lists the AgentIdentities the selector
 * matches in status.matchedAgents.
 *
 * Compiling is pure but not free, so results are memoized per (uid, generation):
 * an agent coming or going re-runs the selector, not the CEL compiler.
 */
import type { Logger } from 'pino';
import type { AccessPolicy, AgentIdentity, Condition } from '../../core/api/index.js';
import { type DesiredCondition, getCondition, setConditions } from '../../core/conditions.js';
import { type CompilePolicyResult, compileAccessPolicy } from '../../core/policy/compile.js';
import type { AccessPolicySpecLike, PolicyCompileError } from '../../core/policy/types.js';
import type { Clock } from '../../kube/clock.js';
import { Controller, type ControllerMetrics, keyOf, type ReconcileFn } from '../../kube/controller.js';
import type { EventInput, EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import { ACCESS_POLICIES } from '../../kube/resources.js';
import type { StatusWriter } from '../../kube/status.js';
import { ACTION, CONDITION, REASON } from './reasons.js';

/** The agent facts the selector looks at. */
export interface AgentRef {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** Pure: names (if given) and matchLabels (if given) must both hold; empty or absent selects all. */
export function selects(selector: AccessPolicy['spec']['agentSelector'], agent: AgentRef): boolean {
  if (!selector) return true;
  if (selector.names && selector.names.length > 0 && !selector.names.includes(agent.name)) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (agent.labels[k] !== v) return false;
  return true;
}

const MAX_MATCHED = 10_000;
/** Problems spelled out in the condition message; the rest are counted. */
const MAX_PROBLEMS_LISTED = 5;

/** `spec.rules[0].when[1].expression (condition "ticket-referenced"): message` */
export function describeCompileError(policy: AccessPolicy, e: PolicyCompileError): string {
  const m = /^spec\.rules\[(\d+)\]\.when\[(\d+)\]/.exec(e.path);
  let where = e.path;
  if (m) {
    const cond = policy.spec?.rules?.[Number(m[1])]?.when?.[Number(m[2])];
    if (cond?.name) where = `${e.path} (rule ${m[1]}, condition ${m[2]} "${cond.name}")`;
  }
  return `${where}: ${e.message}`;
}

export interface AccessPolicyFacts {
  policy: AccessPolicy;
  compiled: CompilePolicyResult;
  agents: readonly AgentRef[];
}

// A type alias so it is assignable to the status writer's Record<string, unknown>.
export type AccessPolicyOwnedStatus = {
  observedGeneration?: number;
  conditions: Condition[];
  matchedAgentCount: number;
  matchedAgents: string[];
};

export interface AccessPolicyDecision {
  status: AccessPolicyOwnedStatus;
  events: EventInput[];
}

/** Pure: Ready from the compile result, matchedAgents from the selector, Events on transitions. */
export function decideAccessPolicy(facts: AccessPolicyFacts, now: Date): AccessPolicyDecision {
  const { policy, compiled, agents } = facts;
  const ns = policy.metadata?.namespace ?? '';
  const generation = policy.metadata?.generation;
  const matchedAgents = agents
    .filter((a) => selects(policy.spec?.agentSelector, a))
    .map((a) => a.name)
    .sort()
    .slice(0, MAX_MATCHED);
  let ready: DesiredCondition;
  if (!compiled.ok) {
    const listed = compiled.errors.slice(0, MAX_PROBLEMS_LISTED).map((e) => describeCompileError(policy, e));
    const more = compiled.errors.length - listed.length;
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.InvalidExpression,
      message: listed.join('; ') + (more > 0 ? `; and ${more} more` : ''),
      observedGeneration: generation,
    };
  } else {
    const rules = policy.spec?.rules?.length ?? 0;
    ready = {
      type: CONDITION.Ready,
      status: 'True',
      reason: REASON.Ready,
      message:
        `compiled ${rules} rule${rules === 1 ? '' : 's'}; ` +
        (matchedAgents.length
          ? `selects ${matchedAgents.length} AgentIdentit${matchedAgents.length === 1 ? 'y' : 'ies'}`
          : `selects no AgentIdentity in ${ns} yet`),
      observedGeneration: generation,
    };
  }
  const before = policy.status?.conditions;
  const conditions = setConditions(before, [ready], now);
  const old = getCondition(before, CONDITION.Ready);
  const events: EventInput[] = [];
  if (old?.status !== ready.status || old?.reason !== ready.reason) {
    events.push({
      type: ready.status === 'True' ? 'Normal' : 'Warning',
      reason: ready.reason,
      action: ACTION.Validate,
      note: ready.message,
    });
  }
  const previouslyMatched = policy.status?.matchedAgents;
  if (matchedAgents.length === 0 && (previouslyMatched === undefined || previouslyMatched.length > 0)) {
    events.push({
      type: 'Warning',
      reason: REASON.NoMatchingAgents,
      action: ACTION.Reconcile,
      note: `spec.agentSelector selects no AgentIdentity in namespace ${ns}; the policy has no effect until one matches`,
    });
  }
  return {
    status: {
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      conditions,
      matchedAgentCount: matchedAgents.length,
      matchedAgents,
    },
    events,
  };
}

/** Drop map entries whose value is undefined (the generated types allow them; JSON never has them). */
function definedEntries(
  m: Readonly<Record<string, string | undefined>> | undefined,
): Record<string, string> | undefined {
  if (!m) return undefined;
  return Object.fromEntries(Object.entries(m).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * The generated AccessPolicySpec types map values as `string | undefined`; the
 * policy engine's structural types want `string`. Same data, narrower type.
 */
export function toSpecLike(spec: AccessPolicy['spec']): AccessPolicySpecLike {
  return {
    ...spec,
    agentSelector: spec.agentSelector && {
      ...spec.agentSelector,
      matchLabels: definedEntries(spec.agentSelector.matchLabels),
    },
    rules: (spec.rules ?? []).map((r) => ({
      ...r,
      credential: r.credential && { ...r.credential, claims: definedEntries(r.credential.claims) },
    })),
  };
}

export interface AccessPolicyDeps {
  policies: Informer<AccessPolicy>;
  agents: Informer<AgentIdentity>;
  status: StatusWriter;
  recorder: EventRecorder;
  clock: Clock;
}

function agentRef(a: AgentIdentity): AgentRef {
  return { name: a.metadata?.name ?? '', labels: a.metadata?.labels ?? {} };
}

// Informer indexes, so neither a policy's reconcile nor an agent's event scans every object of
// the namespace: with N agents and N policies that made a cold start O(N²) (#20).
/** AgentIdentities by each label: `<ns>\0<key>=<value>`. */
export const AGENTS_BY_LABEL = 'warden.dev/agents-by-label';
/** AccessPolicies by the agent names their selector lists, or `<ns>\0*` when it lists none. */
export const POLICIES_BY_SELECTED_AGENT = 'warden.dev/policies-by-selected-agent';
/** AccessPolicies by the agents their status.matchedAgents lists. */
export const POLICIES_BY_LISTED_AGENT = 'warden.dev/policies-by-listed-agent';

const SEP = '\u0000';
const ANY_NAME = '*';

export function indexAgents(agents: Informer<AgentIdentity>): void {
  agents.addIndex(AGENTS_BY_LABEL, (a) =>
    Object.entries(a.metadata?.labels ?? {}).map(([k, v]) => `${a.metadata?.namespace ?? ''}${SEP}${k}=${v}`),
  );
}

export function indexPolicies(policies: Informer<AccessPolicy>): void {
  policies.addIndex(POLICIES_BY_SELECTED_AGENT, (p) => {
    const ns = p.metadata?.namespace ?? '';
    const names = p.spec?.agentSelector?.names ?? [];
    return names.length > 0 ? names.map((n) => `${ns}${SEP}${n}`) : [`${ns}${SEP}${ANY_NAME}`];
  });
  policies.addIndex(POLICIES_BY_LISTED_AGENT, (p) =>
    (p.status?.matchedAgents ?? []).map((n) => `${p.metadata?.namespace ?? ''}${SEP}${n}`),
  );
}

/**
 * The agents of `namespace` a selector can match, found through the cache's indexes: the named
 * ones, or those carrying one of its labels, or (empty selector) all. A superset: `selects` decides.
 */
export function candidateAgents(
  agents: Informer<AgentIdentity>,
  namespace: string,
  selector: AccessPolicy['spec']['agentSelector'],
): AgentIdentity[] {
  const names = selector?.names ?? [];
  if (names.length > 0) {
    const found: AgentIdentity[] = [];
    for (const n of new Set(names)) {
      const a = agents.get(n, namespace);
      if (a) found.push(a);
    }
    return found;
  }
  const [label] = Object.entries(selector?.matchLabels ?? {});
  indexAgents(agents);
  if (label) return agents.byIndex(AGENTS_BY_LABEL, `${namespace}${SEP}${label[0]}=${label[1]}`);
  return agents.list(namespace);
}

export function reconcileAccessPolicy(deps: AccessPolicyDeps): ReconcileFn {
  // uid → {generation, result}. Bounded by the number of policies; entries of deleted policies are dropped below.
  const memo = new Map<string, { generation: number | undefined; result: CompilePolicyResult }>();
  return async (key, ctx) => {
    // gather
    const policy = deps.policies.get(key.name, key.namespace);
    if (!policy || policy.metadata?.deletionTimestamp) {
      const live = new Set(deps.policies.list().map((p) => p.metadata?.uid));
      for (const uid of memo.keys()) if (!live.has(uid)) memo.delete(uid);
      return;
    }
    const uid = policy.metadata?.uid ?? `${key.namespace}/${key.name}`;
    let entry = memo.get(uid);
    if (!entry || entry.generation !== policy.metadata?.generation) {
      entry = {
        generation: policy.metadata?.generation,
        result: compileAccessPolicy({
          namespace: key.namespace,
          name: key.name,
          spec: toSpecLike(policy.spec),
        }),
      };
      memo.set(uid, entry);
    }
    const agents = candidateAgents(deps.agents, key.namespace, policy.spec?.agentSelector).map(agentRef);
    // decide
    const decision = decideAccessPolicy(
      { policy, compiled: entry.result, agents },
      new Date(deps.clock.now()),
    );
    // act
    const written = await deps.status.write(ACCESS_POLICIES, policy, decision.status, ctx.signal);
    if (written === 'updated') {
      for (const e of decision.events) deps.recorder.record(policy, e);
      ctx.logger.info(
        {
          ready: getCondition(decision.status.conditions, CONDITION.Ready)?.reason,
          matchedAgents: decision.status.matchedAgents.length,
        },
        'access policy status updated',
      );
    }
  };
}

/**
 * Policies whose matchedAgents an agent change can affect: those that select it
 * now or listed it before. Others are left alone, so a thousand agents arriving
 * do not trigger a thousand passes over every policy.
 */
export function policiesAffectedByAgent(policies: Informer<AccessPolicy>, agent: AgentIdentity): string[] {
  const ns = agent.metadata?.namespace;
  if (!ns) return [];
  indexPolicies(policies);
  const ref = agentRef(agent);
  const keys = new Set<string>();
  const selecting = [
    ...policies.byIndex(POLICIES_BY_SELECTED_AGENT, `${ns}${SEP}${ref.name}`),
    ...policies.byIndex(POLICIES_BY_SELECTED_AGENT, `${ns}${SEP}${ANY_NAME}`),
  ];
  for (const p of selecting) if (selects(p.spec?.agentSelector, ref)) keys.add(keyOf(p));
  for (const p of policies.byIndex(POLICIES_BY_LISTED_AGENT, `${ns}${SEP}${ref.name}`)) keys.add(keyOf(p));
  return [...keys];
}

export function accessPolicyController(
  deps: AccessPolicyDeps & { logger: Logger; concurrency?: number; metrics?: ControllerMetrics },
): Controller {
  return new Controller({
    name: 'accesspolicy',
    reconcile: reconcileAccessPolicy(deps),
    logger: deps.logger,
    clock: deps.clock,
    concurrency: deps.concurrency,
    metrics: deps.metrics,
  })
    .watchPrimary(deps.policies)
    .watchRelated(
      deps.agents,
      (a) => policiesAffectedByAgent(deps.policies, a),
      (old, agent) => agentSelectionChanged(old, agent),
    );
}

/**
 * Whether an AgentIdentity update can change which policies select it: its labels (the name never
 * changes; creation and deletion always count). Its status — written by the operator and the
 * authority, often — does not, and waking every selecting policy on each status write was one
 * reconcile per agent write at cold start.
 */
export function agentSelectionChanged(old: AgentIdentity, agent: AgentIdentity): boolean {
  const a = old.metadata?.labels ?? {};
  const b = agent.metadata?.labels ?? {};
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return true;
  return keys.some((k) => a[k] !== b[k]);
}
