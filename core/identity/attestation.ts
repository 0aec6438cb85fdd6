/**
 * Attestation conditions of an AgentIdentity (spec.attestation) checked against a pod.
 * Pure: the caller fetches the pod; this says whether it qualifies and, if not, exactly why.
 */
import { BROKER_CONTAINER_NAME } from '../constants.js';
import type { PodLike } from './agent.js';

/** spec.attestation, as far as pod checks go. */
export interface AttestationConditions {
  /** `string | undefined` values so the generated CRD types (index signatures) fit as they are. */
  requiredPodLabels?: Record<string, string | undefined>;
  allowedImages?: string[];
  /** Conditions on the running images (pod status), not the spec's references. */
  images?: { digests?: string[] | undefined } | undefined;
}

export type ConditionCheck = { ok: true } | { ok: false; reason: string; message: string };

/**
 * The images allowedImages applies to: every container's, except the broker the webhook injected —
 * Warden's own image, not the agent's. The broker is recognised by name *and* by the image the
 * controller injects (`brokerImage`): a container merely named like the broker, with any other
 * image, is checked like the rest.
 */
export function agentImages(pod: PodLike, brokerImage?: string): string[] {
  const images: string[] = [];
  for (const c of pod.spec?.initContainers ?? []) {
    if (
      c.image &&
      !(brokerImage !== undefined && c.name === BROKER_CONTAINER_NAME && c.image === brokerImage)
    ) {
      images.push(c.image);
    }
  }
  for (const c of pod.spec?.containers ?? []) if (c.image) images.push(c.image);
  return images;
}

/**
 * Image glob: `*` matches any run of characters except `/` and `@`, `**` matches anything.
 * So "ghcr.io/acme/*@sha256:*" accepts any acme repository pinned by digest but neither a nested
 * path nor a tag-only reference.
 */
export function imageGlobToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        source += '.*';
        i++;
      } else {
        source += '[^/@]*';
      }
    } else if (ch === '?') {
      source += '[^/@]';
    } else {
      source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

export function imageAllowed(image: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => imageGlobToRegExp(p).test(image));
}

/** The digest in a container status imageID (`repo@sha256:…`, `docker-pullable://…@sha256:…`, `sha256:…`). */
export function runningDigest(imageID: string): string | undefined {
  return /(?:^|@)(sha256:[a-f0-9]{64})$/.exec(imageID)?.[1];
}

/**
 * spec.attestation.images.digests: every container in `pod` (the caller leaves the injected broker
 * out) must be running, per the pod's status, an image whose digest is listed. A container with no
 * status yet (not started) fails: what it will run is not known.
 */
function checkRunningDigests(pod: PodLike, digests: readonly string[]): ConditionCheck {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const status = statuses.find((s) => s.name === c.name);
    const digest = status?.imageID ? runningDigest(status.imageID) : undefined;
    if (!digest) {
      return {
        ok: false,
        reason: 'ImageNotRunning',
        message: `container ${c.name} reports no running image digest yet (pod status.containerStatuses[].imageID${status?.imageID ? ` is "${status.imageID.slice(0, 200)}"` : ' is empty'}); spec.attestation.images.digests is checked against what runs, so the pod attests once the container runs`,
      };
    }
    if (!digests.includes(digest)) {
      return {
        ok: false,
        reason: 'ImageDigestNotAllowed',
        message: `container ${c.name} runs image ${digest} (${(c.image ?? '').slice(0, 200)}), which is not one of spec.attestation.images.digests`,
      };
    }
  }
  return { ok: true };
}

/** Checks required labels and allowed images; the message names the first failing label/image. */
export function checkAttestationConditions(
  pod: PodLike,
  conditions: AttestationConditions | undefined,
  brokerImage?: string,
): ConditionCheck {
  const labels = pod.metadata?.labels ?? {};
  for (const [key, want] of Object.entries(conditions?.requiredPodLabels ?? {})) {
    if (want !== undefined && labels[key] !== want) {
      return {
        ok: false,
        reason: 'PodLabelMismatch',
        message: `pod label ${key} must be "${want}" (spec.attestation.requiredPodLabels)`,
      };
    }
  }
  const allowed = conditions?.allowedImages ?? [];
  if (allowed.length > 0) {
    for (const image of agentImages(pod, brokerImage)) {
      if (!imageAllowed(image, allowed)) {
        return {
          ok: false,
          reason: 'ImageNotAllowed',
          message: `container image ${image} matches none of spec.attestation.allowedImages`,
        };
      }
    }
  }
  const digests = conditions?.images?.digests ?? [];
  if (digests.length > 0) return checkRunningDigests(pod, digests);
  return { ok: true };
}
