/**
 * The agent side of an identity: who the workload is, as policy (CEL `agent`) and minted tokens see it.
 * Pure functions over already-fetched objects.
 */

/** The CEL `agent` variable. */
export interface AgentContext {
  name: string;
  namespace: string;
  serviceAccount: string;
  /** Labels of the AgentIdentity (what AccessPolicy agentSelector.matchLabels selects on). */
  labels: Record<string, string>;
  pod: { name: string; uid: string; node: string; images: string[] };
}

/** The few Pod fields identity needs (structural, so it accepts client-node's V1Pod). */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: Date | string;
  };
  spec?: {
    serviceAccountName?: string;
    nodeName?: string;
    containers?: Array<{ name?: string; image?: string }>;
    initContainers?: Array<{ name?: string; image?: string }>;
  };
  status?: { phase?: string };
}

/** Images of every container the pod runs, init (and native sidecar) containers included. */
export function podImages(pod: PodLike): string[] {
  const images: string[] = [];
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    if (c.image) images.push(c.image);
  }
  return images;
}

/** Builds CEL `agent` from the AgentIdentity's name/labels and the attested pod. */
export function agentContext(
  identity: { name: string; namespace: string; labels?: Record<string, string>; serviceAccountName: string },
  pod: PodLike,
): AgentContext {
  return {
    name: identity.name,
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccountName,
    labels: { ...(identity.labels ?? {}) },
    pod: {
      name: pod.metadata?.name ?? '',
      uid: pod.metadata?.uid ?? '',
      node: pod.spec?.nodeName ?? '',
      images: podImages(pod),
    },
  };
}

/**
 * The subject Warden gives an agent in tokens it mints, shaped like Kubernetes' own
 * `system:serviceaccount:<ns>:<name>` so it reads the same way in logs and audit.
 */
export function agentSubject(namespace: string, name: string): string {
  return `system:warden:agent:${namespace}:${name}`;
}

/** Parses agentSubject() back; undefined for anything else. */
export function parseAgentSubject(subject: string): { namespace: string; name: string } | undefined {
  const m = /^system:warden:agent:([a-z0-9][-a-z0-9]{0,62}):([a-z0-9][-.a-z0-9]{0,252})$/.exec(subject);
  return m ? { namespace: m[1]!, name: m[2]! } : undefined;
}

/** RFC 8693 §4.1 `act` claim: the current actor, nesting prior actors. */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/**
 * Subject and delegation chain for a token minted for a call (RFC 8693 §4.1): with a human the
 * token is *about* the user and the agent is the actor; alone, the agent is the subject.
 */
export function delegation(
  agent: { namespace: string; name: string },
  user: { present: boolean; sub: string; issuer: string },
): { sub: string; act?: ActClaim; userIssuer?: string } {
  const agentSub = agentSubject(agent.namespace, agent.name);
  if (!user.present) return { sub: agentSub };
  return { sub: user.sub, act: { sub: agentSub }, userIssuer: user.issuer };
}
