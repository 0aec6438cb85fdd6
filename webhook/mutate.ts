/**
 * The mutation: a pure function from (pod, AgentIdentity, broker config) to the
 * mutated pod. Built only from the idempotent helpers in patch-helpers.ts, so
 * mutate(mutate(p)) deep-equals mutate(p) and the reinvocation patch is empty.
 */
import type { V1Container, V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import {
  ANNOTATION_INJECTED,
  BROKER_CONTAINER_NAME,
  BROKER_TOKEN_VOLUME,
  ENV_HTTP_BASE,
  ENV_MCP_BASE,
  ENV_PG_BASE,
  ENV_USER_TOKEN_HEADER,
  LABEL_AGENT,
} from '../core/constants.js';
import {
  ANNOTATION_AUTHORITY_CA,
  agentEnv,
  brokerContainer,
  brokerSpoolVolume,
  brokerTokenVolume,
} from './broker-sidecar.js';
import {
  addAnnotationIfMissing,
  addContainerIfMissing,
  addEnvIfMissing,
  addLabelIfMissing,
  addVolumeIfMissing,
} from './patch-helpers.js';
import { type AgentIdentityView, attestationOf, type BrokerConfig } from './types.js';

/** Content of the `warden.dev/injected` annotation: what was injected, by which version. */
export interface InjectedRecord {
  version: string;
  agent: string;
  brokerImage: string;
  container: string;
  volume: string;
  audience: string;
  expirationSeconds: number;
  env: string[];
}

export function injectedRecord(
  agentName: string,
  agent: AgentIdentityView,
  config: BrokerConfig,
): InjectedRecord {
  const { audience, expirationSeconds } = attestationOf(agent);
  return {
    version: config.version,
    agent: agentName,
    brokerImage: config.image,
    container: BROKER_CONTAINER_NAME,
    volume: BROKER_TOKEN_VOLUME,
    audience,
    expirationSeconds,
    env: [ENV_MCP_BASE, ENV_HTTP_BASE, ENV_PG_BASE, ENV_USER_TOKEN_HEADER],
  };
}

/**
 * Copies exactly the parts of the pod the helpers write to (maps, lists and
 * the containers whose env may grow); everything else is shared with the
 * input, which is never modified. Cheaper than a deep copy on the hot path.
 */
function copyForMutation(pod: V1Pod): V1Pod & { metadata: V1ObjectMeta; spec: V1PodSpec } {
  const copyContainer = (c: V1Container): V1Container => {
    const copy = { ...c };
    if (c.env) copy.env = [...c.env];
    return copy;
  };
  const meta: V1ObjectMeta = { ...pod.metadata };
  if (meta.labels) meta.labels = { ...meta.labels };
  if (meta.annotations) meta.annotations = { ...meta.annotations };
  // A spec-less pod is rejected by checks before we get here; keep the types honest anyway.
  const spec: V1PodSpec = { ...(pod.spec ?? { containers: [] }) };
  spec.containers = (spec.containers ?? []).map(copyContainer);
  if (spec.initContainers) spec.initContainers = spec.initContainers.map(copyContainer);
  if (spec.volumes) spec.volumes = [...spec.volumes];
  return { ...pod, metadata: meta, spec };
}

/** Returns a mutated copy of `pod`; the input is not modified. */
export function mutatePod(
  pod: V1Pod,
  agentName: string,
  agent: AgentIdentityView,
  config: BrokerConfig,
): V1Pod {
  const out = copyForMutation(pod);
  const meta = out.metadata;
  const spec = out.spec;

  const { audience, expirationSeconds } = attestationOf(agent);
  const env = agentEnv(config);

  // Every container except the broker learns where the broker is: the agent
  // containers, and regular init containers too, because the broker starts
  // first and an init step (e.g. fetching config through the HTTP proxy) may
  // need it. Do this before adding the broker so it does not get these vars.
  for (const c of spec.containers) addEnvIfMissing(c, env);
  for (const c of spec.initContainers ?? []) {
    if (c.name !== BROKER_CONTAINER_NAME) addEnvIfMissing(c, env);
  }

  // First among init containers: later init containers and the agent start only
  // after its startup probe has passed, i.e. after the broker has attested.
  spec.initContainers = addContainerIfMissing(spec.initContainers ?? [], brokerContainer(config), 'first');
  const withCa = config.authorityCaBundlePem !== undefined && config.authorityCaBundlePem !== '';
  spec.volumes = addVolumeIfMissing(
    spec.volumes ?? [],
    brokerTokenVolume(audience, expirationSeconds, withCa),
  );
  spec.volumes = addVolumeIfMissing(spec.volumes, brokerSpoolVolume(config));
  if (withCa) addAnnotationIfMissing(meta, ANNOTATION_AUTHORITY_CA, config.authorityCaBundlePem as string);

  addLabelIfMissing(meta, LABEL_AGENT, agentName);
  addAnnotationIfMissing(meta, ANNOTATION_INJECTED, JSON.stringify(injectedRecord(agentName, agent, config)));
  return out;
}
