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
  return { ok: true };
}
