/**
 * Admission checks: pure functions from the pod (and the AgentIdentity it names,
 * if found) to "inject", "leave alone" or a rejection whose message says what is
 * wrong, where (field path) and what to do.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_AGENT,
  ANNOTATION_INJECT,
  ANNOTATION_INJECTED,
  BROKER_CONTAINER_NAME,
  BROKER_SPOOL_VOLUME,
  BROKER_TOKEN_VOLUME,
  DEFAULT_BROKER_AUDIENCE,
  LABEL_AGENT,
} from '../core/constants.js';
import { checkAttestationConditions } from '../core/identity/attestation.js';
import {
  type BrokerExpectation,
  type BrokerPodReason,
  brokerContainerProblems,
  brokerTokenExposures,
  spoolVolumeProblems,
  withoutBroker,
} from '../core/identity/broker-pod.js';
import { type AgentIdentityView, attestationOf } from './types.js';

/** Machine-readable reasons; they end up in Events and logs. */
export type RejectionReason =
  | 'InvalidAgentName'
  | 'AgentLabelMismatch'
  | 'AgentIdentityNotFound'
  | 'AgentSuspended'
  | 'ServiceAccountMismatch'
  | 'HostNetwork'
  | 'NoContainers'
  | 'ReservedContainerName'
  | 'ReservedVolumeName'
  | 'PodLabelMismatch'
  | 'ImageNotAllowed'
  | BrokerPodReason;

export interface Problem {
  reason: RejectionReason;
  /** Field path in the pod (or AgentIdentity) the problem is about. */
  field: string;
  message: string;
}

/** Which AgentIdentity, if any, the pod asks for. */
export type AgentSelection =
  | { kind: 'none' }
  | { kind: 'opted-out' }
  | { kind: 'agent'; name: string }
  | { kind: 'invalid'; problem: Problem };

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Reads the agent annotation (the app team's opt-in) and the agent label
 * (which the webhook adds, but a pod may carry it already, e.g. so a Deployment
 * selector can use it). The annotation names the AgentIdentity; when only the
 * label is present it is used as the name.
 */
export function selectAgent(pod: V1Pod): AgentSelection {
  const annotations = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  if (annotations[ANNOTATION_INJECT] === 'false') return { kind: 'opted-out' };
  const fromAnnotation = annotations[ANNOTATION_AGENT];
  const fromLabel = labels[LABEL_AGENT];
  const name = fromAnnotation ?? fromLabel;
  if (name === undefined) return { kind: 'none' };
  const field =
    fromAnnotation !== undefined
      ? `metadata.annotations[${ANNOTATION_AGENT}]`
      : `metadata.labels[${LABEL_AGENT}]`;
  if (name.length === 0 || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return {
      kind: 'invalid',
      problem: {
        reason: 'InvalidAgentName',
        field,
        message: `${JSON.stringify(name)} is not a valid AgentIdentity name (lowercase DNS-1123 subdomain, at most 253 characters); set it to the name of an AgentIdentity in this namespace`,
      },
    };
  }
  if (fromAnnotation !== undefined && fromLabel !== undefined && fromAnnotation !== fromLabel) {
    return {
      kind: 'invalid',
      problem: {
        reason: 'AgentLabelMismatch',
        field: `metadata.labels[${LABEL_AGENT}]`,
        message: `label ${JSON.stringify(fromLabel)} differs from annotation ${ANNOTATION_AGENT}=${JSON.stringify(fromAnnotation)}; make them equal or drop the label (the webhook sets it)`,
      },
    };
  }
  return { kind: 'agent', name };
}

/** The service account the pod will run as (the API server defaults it to "default"). */
export function podServiceAccount(pod: V1Pod): string {
  const spec = pod.spec;
  return spec?.serviceAccountName || spec?.serviceAccount || 'default';
}

/** True when an earlier pass of this webhook (or a copy of its output) already injected the broker. */
export function alreadyInjected(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[ANNOTATION_INJECTED] !== undefined;
}

/**
 * Every problem that prevents injecting `agent` into `pod`, each with its field
 * path. An empty list means the pod may be admitted and mutated. `broker` is
 * what the webhook injects: a broker container the pod already carries (a
 * reinvocation, or a hand-written copy) must match it.
 */
export function checkPod(
  pod: V1Pod,
  namespace: string,
  agentName: string,
  agent: AgentIdentityView | undefined,
  broker?: BrokerExpectation,
): Problem[] {
  const problems: Problem[] = [];
  if (agent === undefined) {
    problems.push({
      reason: 'AgentIdentityNotFound',
      field: `metadata.annotations[${ANNOTATION_AGENT}]`,
      message: `AgentIdentity "${agentName}" not found in namespace "${namespace}"; create it (kubectl get agentidentities -n ${namespace}) or correct the annotation`,
    });
  } else {
    if (agent.spec.suspended === true) {
      const why = agent.spec.suspendReason ? ` (reason: ${agent.spec.suspendReason})` : '';
      problems.push({
        reason: 'AgentSuspended',
        field: `AgentIdentity ${namespace}/${agentName} spec.suspended`,
        message: `the agent is suspended${why}; its pods cannot start until it is revived (kubectl warden revive ${agentName} -n ${namespace})`,
      });
    }
    // The same conditions the authority applies at attestation, checked early so
    // the app team sees them at `kubectl apply` rather than as a broker that never
    // becomes ready. The injected broker is Warden's image, not the agent's, so
    // it is left out (it is only present on reinvocation).
    const att = agent.spec.attestation;
    const requiredPodLabels = Object.fromEntries(
      Object.entries(att?.requiredPodLabels ?? {}).filter((e): e is [string, string] => e[1] !== undefined),
    );
    const conditions = checkAttestationConditions(withoutBroker(pod), {
      requiredPodLabels,
      allowedImages: att?.allowedImages,
    });
    if (!conditions.ok) {
      problems.push({
        reason: conditions.reason === 'ImageNotAllowed' ? 'ImageNotAllowed' : 'PodLabelMismatch',
        field: conditions.reason === 'ImageNotAllowed' ? 'spec.containers[*].image' : 'metadata.labels',
        message: `${conditions.message} of AgentIdentity "${agentName}"`,
      });
    }
    const sa = podServiceAccount(pod);
    if (sa !== agent.spec.serviceAccountName) {
      problems.push({
        reason: 'ServiceAccountMismatch',
        field: 'spec.serviceAccountName',
        message: `pod runs as service account "${sa}" but AgentIdentity "${agentName}" requires "${agent.spec.serviceAccountName}"; set spec.serviceAccountName: ${agent.spec.serviceAccountName}`,
      });
    }
  }
  if (pod.spec?.hostNetwork === true) {
    problems.push({
      reason: 'HostNetwork',
      field: 'spec.hostNetwork',
      message:
        "agent pods cannot use the host network: the broker's loopback endpoints would be reachable by every process on the node; remove spec.hostNetwork",
    });
  }
  problems.push(...structuralProblems(pod));
  // The broker's token must stay the broker's: no other container mounts it, no other volume
  // projects a token for the audience the authority accepts, no shared process namespace.
  const audiences = new Set([DEFAULT_BROKER_AUDIENCE]);
  if (agent) audiences.add(attestationOf(agent).audience);
  problems.push(...brokerTokenExposures(pod, [...audiences]));
  // The audit spool is the broker's alone too.
  problems.push(...spoolVolumeProblems(pod));
  // The webhook keeps a broker container it finds (add-if-missing): one written by the pod's
  // author instead must be indistinguishable from ours, or it is refused here, not at attestation.
  const init = pod.spec?.initContainers ?? [];
  const b = init.findIndex((c) => c.name === BROKER_CONTAINER_NAME);
  if (broker && b !== -1 && alreadyInjected(pod)) {
    problems.push(...brokerContainerProblems(init[b] as V1Container, b, broker));
  }
  return problems;
}

/** Problems with the pod's own shape: missing containers, names Warden reserves. */
function structuralProblems(pod: V1Pod): Problem[] {
  const problems: Problem[] = [];
  const containers = pod.spec?.containers ?? [];
  const initContainers = pod.spec?.initContainers ?? [];
  const volumes = pod.spec?.volumes ?? [];
  const injected = alreadyInjected(pod);

  if (containers.length === 0) {
    problems.push({
      reason: 'NoContainers',
      field: 'spec.containers',
      message: 'the pod has no containers; an agent pod needs at least one container for the agent',
    });
  }
  const reservedContainer = (list: string, i: number) => ({
    reason: 'ReservedContainerName' as const,
    field: `spec.${list}[${i}].name`,
    message: `"${BROKER_CONTAINER_NAME}" is reserved for the Warden broker sidecar; rename this container`,
  });
  containers.forEach((c, i) => {
    // Never legitimate: the broker is always an init container (native sidecar).
    if (c.name === BROKER_CONTAINER_NAME) problems.push(reservedContainer('containers', i));
  });
  if (!injected) {
    initContainers.forEach((c, i) => {
      if (c.name === BROKER_CONTAINER_NAME) problems.push(reservedContainer('initContainers', i));
    });
    volumes.forEach((v, i) => {
      if (v.name === BROKER_TOKEN_VOLUME || v.name === BROKER_SPOOL_VOLUME) {
        const what = v.name === BROKER_TOKEN_VOLUME ? 'service-account token' : 'audit spool';
        problems.push({
          reason: 'ReservedVolumeName',
          field: `spec.volumes[${i}].name`,
          message: `"${v.name}" is reserved for the broker's ${what}; rename this volume`,
        });
      }
    });
  }
  return problems;
}

/** One line for the API server to show the user: every problem, with its field path. */
export function rejectionMessage(
  podName: string,
  agentName: string | undefined,
  problems: readonly Problem[],
): string {
  const parts = problems.map((p) => `${p.field}: ${p.message}`);
  const agent = agentName === undefined ? '' : ` (agent "${agentName}")`;
  return `warden: pod ${podName}${agent} rejected: ${parts.join('; ')}`;
}
