/**
 * AgentIdentity reconciler: gather → decide → act.
 *
 * gather: the AgentIdentity and its ServiceAccount, from informer caches;
 * decide:  decideAgentIdentity (pure) → the status fields we own + Events;
 * act:     write status through /status if it changed, then record the Events.
 *
 * ServiceAccounts are watched too and mapped back to the AgentIdentities that
 * reference them, so an agent whose ServiceAccount is created later becomes Ready
 * without anyone touching the agent.
 */

import type { Logger } from 'pino';
import type { AgentIdentity, Condition } from '../../core/api/index.js';
import { type DesiredCondition, getCondition, setConditions } from '../../core/conditions.js';
import { ANNOTATION_REVIVED_BY } from '../../core/constants.js';
import { parseSigningKeys } from '../../core/identity/cosign.js';
import type { Clock } from '../../kube/clock.js';
import { Controller, type ControllerMetrics, keyOf, type ReconcileFn } from '../../kube/controller.js';
import type { EventInput, EventRecorder } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import type { KubeObject } from '../../kube/kube.js';
import { AGENT_IDENTITIES } from '../../kube/resources.js';
import type { StatusWriter } from '../../kube/status.js';
import { ACTION, CONDITION, REASON } from './reasons.js';

/** What decide needs to know. */
export interface AgentIdentityFacts {
  agent: AgentIdentity;
  /** Whether spec.serviceAccountName exists in the agent's namespace. */
  serviceAccountExists: boolean;
}

/** The status fields this reconciler owns (others — decisions, revocation — belong to the authority). */
// A type alias (not an interface) so it is assignable to the status writer's Record<string, unknown>.
export type AgentIdentityOwnedStatus = {
  observedGeneration?: number;
  conditions: Condition[];
};

export interface AgentIdentityDecision {
  status: AgentIdentityOwnedStatus;
  /** Events to record once the status is written (transitions only). */
  events: EventInput[];
}

/** Pure: the desired Ready and Suspended conditions and the Events for what changed. */
export function decideAgentIdentity(facts: AgentIdentityFacts, now: Date): AgentIdentityDecision {
  const { agent, serviceAccountExists } = facts;
  const ns = agent.metadata?.namespace ?? '';
  const sa = agent.spec?.serviceAccountName ?? '';
  const generation = agent.metadata?.generation;
  const suspended = agent.spec?.suspended === true;
  const why = agent.spec?.suspendReason?.trim() || 'no reason given';
  const signing = parseSigningKeys(agent.spec?.attestation?.images?.signatures?.keys ?? []);
  const keyProblems = signing.ok ? [] : signing.problems;

  let ready: DesiredCondition;
  if (!serviceAccountExists) {
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.ServiceAccountNotFound,
      message: `spec.serviceAccountName: ServiceAccount ${ns}/${sa} not found; create it or name an existing ServiceAccount`,
      observedGeneration: generation,
    };
  } else if (suspended) {
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.Suspended,
      message: `suspended (spec.suspended is true): ${why}`,
      observedGeneration: generation,
    };
  } else if (keyProblems.length > 0) {
    // The CRD admits any PEM-shaped key; what is inside (valid DER, ECDSA P-256) only code checks.
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.InvalidSpec,
      message: `${keyProblems.join('; ')}; pods whose images need a signature are refused attestation (ImageSignatureUnverifiable) until it is fixed`,
      observedGeneration: generation,
    };
  } else {
    ready = {
      type: CONDITION.Ready,
      status: 'True',
      reason: REASON.Ready,
      message: `ServiceAccount ${ns}/${sa} exists; pods running as it can attest as this agent`,
      observedGeneration: generation,
    };
  }
  const suspendedCond: DesiredCondition = suspended
    ? {
        type: CONDITION.Suspended,
        status: 'True',
        reason: REASON.Suspended,
        message: `spec.suspended is true: ${why}`,
        observedGeneration: generation,
      }
    : {
        type: CONDITION.Suspended,
        status: 'False',
        reason: REASON.Active,
        message: 'spec.suspended is false',
        observedGeneration: generation,
      };

  const before = agent.status?.conditions;
  const conditions = setConditions(before, [ready, suspendedCond], now);
  return {
    status: { ...(generation !== undefined ? { observedGeneration: generation } : {}), conditions },
    events: transitionEvents(
      before,
      ready,
      suspendedCond,
      agent.metadata?.annotations?.[ANNOTATION_REVIVED_BY],
    ),
  };
}

function transitionEvents(
  before: readonly Condition[] | undefined,
  ready: DesiredCondition,
  suspended: DesiredCondition,
  /** warden.dev/revived-by: the Kubernetes user who cleared spec.suspended (written at admission). */
  revivedBy?: string,
): EventInput[] {
  const events: EventInput[] = [];
  const oldReady = getCondition(before, CONDITION.Ready);
  const oldSuspended = getCondition(before, CONDITION.Suspended);
  const suspendedFlipped = oldSuspended?.status !== suspended.status;
  if (suspendedFlipped && suspended.status === 'True') {
    events.push({
      type: 'Warning',
      reason: REASON.Suspended,
      action: ACTION.Reconcile,
      note: suspended.message,
    });
  } else if (suspendedFlipped && oldSuspended?.status === 'True') {
    events.push({
      type: 'Normal',
      reason: REASON.Resumed,
      action: ACTION.Reconcile,
      note: `spec.suspended is false again${revivedBy ? ` (set by ${revivedBy})` : ''}`,
    });
  }
  const readyChanged = oldReady?.status !== ready.status || oldReady?.reason !== ready.reason;
  // Ready=False because of the kill switch is already told by the Suspended event.
  const toldBySuspended = ready.reason === REASON.Suspended && suspendedFlipped;
  if (readyChanged && !toldBySuspended) {
    events.push({
      type: ready.status === 'True' ? 'Normal' : 'Warning',
      reason: ready.reason,
      action: ACTION.Reconcile,
      note: ready.message,
    });
  }
  return events;
}

export interface AgentIdentityDeps {
  agents: Informer<AgentIdentity>;
  serviceAccounts: Informer<KubeObject>;
  status: StatusWriter;
  recorder: EventRecorder;
  clock: Clock;
}

export function reconcileAgentIdentity(deps: AgentIdentityDeps): ReconcileFn {
  return async (key, ctx) => {
    // gather
    const agent = deps.agents.get(key.name, key.namespace);
    if (!agent || agent.metadata?.deletionTimestamp) return; // gone or going: nothing to report
    const serviceAccountExists =
      deps.serviceAccounts.get(agent.spec?.serviceAccountName ?? '', key.namespace) !== undefined;
    // decide
    const decision = decideAgentIdentity({ agent, serviceAccountExists }, new Date(deps.clock.now()));
    // act
    const written = await deps.status.write(AGENT_IDENTITIES, agent, decision.status, ctx.signal);
    if (written === 'updated') {
      for (const e of decision.events) deps.recorder.record(agent, e);
      ctx.logger.info(
        {
          ready: getCondition(decision.status.conditions, CONDITION.Ready)?.reason,
          events: decision.events.length,
        },
        'agent identity status updated',
      );
    }
  };
}

/** AgentIdentities in sa's namespace that reference sa (the related-object mapping). */
export function agentsUsingServiceAccount(agents: Informer<AgentIdentity>, sa: KubeObject): string[] {
  const ns = sa.metadata?.namespace;
  const name = sa.metadata?.name;
  if (!ns || !name) return [];
  return agents
    .list(ns)
    .filter((a) => a.spec?.serviceAccountName === name)
    .map((a) => keyOf(a));
}

export function agentIdentityController(
  deps: AgentIdentityDeps & { logger: Logger; concurrency?: number; metrics?: ControllerMetrics },
): Controller {
  return new Controller({
    name: 'agentidentity',
    reconcile: reconcileAgentIdentity(deps),
    logger: deps.logger,
    clock: deps.clock,
    concurrency: deps.concurrency,
    metrics: deps.metrics,
  })
    .watchPrimary(deps.agents)
    .watchRelated(deps.serviceAccounts, (sa) => agentsUsingServiceAccount(deps.agents, sa));
}
