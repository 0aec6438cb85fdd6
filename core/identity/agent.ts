/**
 * The agent side of an identity: who the workload is, as policy (CEL `agent`) and minted tokens see it.
 * Pure functions over already-fetched objects.
 */
import { MAX_CHAIN_DEPTH } from '../constants.js';

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
  status?: {
    phase?: string;
    /** What the runtime runs: imageID is the resolved image, `<repo>@sha256:<digest>` or similar. */
    containerStatuses?: Array<{ name?: string; imageID?: string }>;
    initContainerStatuses?: Array<{ name?: string; imageID?: string }>;
  };
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

/** One agent of a delegation chain (CEL `request.chain[i]`). */
export interface AgentRef {
  readonly name: string;
  readonly namespace: string;
}

export { MAX_CHAIN_DEPTH };

/**
 * Subject and delegation chain for a token minted for a call (RFC 8693 §4.1): with a human the
 * token is *about* the user and the agents are the actors, the current agent outermost; alone,
 * the first agent of the chain is the subject. `prior`: the agents the call came through before
 * this one (from a verified Warden token, see inboundDelegation), origin first.
 */
export function delegation(
  agent: { namespace: string; name: string },
  user: { present: boolean; sub: string; issuer: string },
  prior: readonly AgentRef[] = [],
): { sub: string; act?: ActClaim; userIssuer?: string } {
  // Actors most recent first: this agent, then the earlier ones back to the origin.
  const actors = [agentSubject(agent.namespace, agent.name)];
  for (let i = prior.length - 1; i >= 0; i--) actors.push(agentSubject(prior[i]!.namespace, prior[i]!.name));
  const sub = user.present ? user.sub : (actors.pop() as string);
  let act: ActClaim | undefined;
  for (let i = actors.length - 1; i >= 0; i--) act = act ? { sub: actors[i]!, act } : { sub: actors[i]! };
  if (!user.present) return act ? { sub, act } : { sub };
  return { sub, ...(act ? { act } : {}), userIssuer: user.issuer };
}

/** What a verified Warden token says about who a call is made for and which agents it came through. */
export type InboundDelegation =
  | {
      readonly ok: true;
      /** The human's subject, or null when the chain started with an agent acting alone. */
      readonly userSub: string | null;
      /** The agents before the one receiving the token, origin first. */
      readonly prior: readonly AgentRef[];
    }
  | { readonly ok: false; readonly message: string };

/**
 * Reads the chain from the claims of a Warden-issued token another agent's broker injected (only
 * ever call it on a token whose signature, issuer, audience and lifetime were verified): `sub` is
 * the human or, for an agent acting alone, the origin agent; `act` nests the agents, most recent
 * outermost. Every actor must be a Warden agent subject; the chain including the receiving agent
 * may be at most MAX_CHAIN_DEPTH long.
 */
export function inboundDelegation(claims: Record<string, unknown>): InboundDelegation {
  const fail = (message: string): InboundDelegation => ({ ok: false, message });
  const actors: AgentRef[] = []; // most recent first
  let act: unknown = claims.act;
  while (act !== undefined) {
    if (act === null || typeof act !== 'object' || Array.isArray(act)) {
      return fail('the act claim must be an object {sub, act?} (RFC 8693 §4.1)');
    }
    const node = act as Record<string, unknown>;
    const sub = typeof node.sub === 'string' ? parseAgentSubject(node.sub) : undefined;
    if (!sub) {
      return fail(
        `act.sub at depth ${actors.length + 1} is not a Warden agent (expected system:warden:agent:<namespace>:<name>)`,
      );
    }
    actors.push(sub);
    if (actors.length >= MAX_CHAIN_DEPTH) break; // the depth check below refuses it
    act = node.act;
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') return fail('the token has no sub claim');
  const origin = parseAgentSubject(claims.sub);
  const prior = [...(origin ? [origin] : []), ...actors.reverse()];
  if (prior.length === 0) return fail('the token names no agent (no act claim and sub is not an agent)');
  if (prior.length + 1 > MAX_CHAIN_DEPTH) {
    return fail(
      `the delegation chain would be more than ${MAX_CHAIN_DEPTH} agents deep with this agent (Warden's limit); shorten the chain of agents calling agents`,
    );
  }
  return { ok: true, userSub: origin ? null : claims.sub, prior };
}

/** How audit entries write a chain: `ns/a > ns/b > ns/c`, origin first. */
export function chainText(chain: readonly AgentRef[]): string {
  return chain.map((a) => `${a.namespace}/${a.name}`).join(' > ');
}
