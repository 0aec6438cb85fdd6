/**
 * Attestation conditions of an AgentIdentity (spec.attestation) checked against a pod.
 * Pure: the caller fetches the pod; this says whether it qualifies and, if not, exactly why.
 */
import { BROKER_CONTAINER_NAME } from '../constants.js';
import type { PodLike } from './agent.js';
import type { SignatureVerdict, SigningKeySpec } from './cosign.js';

/** spec.attestation, as far as pod checks go. */
export interface AttestationConditions {
  /** `string | undefined` values so the generated CRD types (index signatures) fit as they are. */
  requiredPodLabels?: Record<string, string | undefined>;
  allowedImages?: string[];
  /** Conditions on the running images (pod status), not the spec's references. */
  images?:
    | {
        digests?: string[] | undefined;
        /** Cosign key-pair signatures the running image must carry (docs/adr/0016-image-signatures.md). */
        signatures?: { keys?: SigningKeySpec[] | undefined } | undefined;
      }
    | undefined;
}

/**
 * Verdicts on the running images' signatures, keyed by container name: gathered by the caller
 * (the authority fetches them from the registry, see signatureChecks) before deciding.
 */
export type SignatureVerdicts = ReadonlyMap<string, SignatureVerdict>;

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

/** One container of the pod with what its status says it runs. */
interface RunningContainer {
  name: string;
  image: string;
  imageID: string | undefined;
  digest: string | undefined;
}

function runningContainers(pod: PodLike): RunningContainer[] {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => {
    const imageID = statuses.find((s) => s.name === c.name)?.imageID;
    return {
      name: c.name ?? '',
      image: c.image ?? '',
      imageID: imageID || undefined,
      digest: imageID ? runningDigest(imageID) : undefined,
    };
  });
}

/**
 * The running images whose signatures must be verified before deciding: every container (the
 * caller leaves the injected broker out) that runs a digest not listed in images.digests, when
 * images.signatures.keys is set. `reference` names the repository the signature lives in: the
 * spec's image (what the pod asked for and the runtime pulled), else the status imageID.
 */
export function signatureChecks(
  pod: PodLike,
  conditions: AttestationConditions | undefined,
): Array<{ container: string; reference: string; digest: string; keys: SigningKeySpec[] }> {
  const keys = conditions?.images?.signatures?.keys ?? [];
  if (keys.length === 0) return [];
  const digests = conditions?.images?.digests ?? [];
  return runningContainers(pod)
    .filter(
      (c): c is RunningContainer & { digest: string } =>
        c.digest !== undefined && !digests.includes(c.digest),
    )
    .map((c) => ({ container: c.name, reference: c.image || (c.imageID ?? ''), digest: c.digest, keys }));
}

/**
 * spec.attestation.images: every container in `pod` (the caller leaves the injected broker out)
 * must be running, per the pod's status, an image whose digest is listed in `digests` or — when
 * `signatures.keys` is set — that carries a valid signature by one of the keys (`verdicts`). A
 * container with no status yet (not started) fails: what it will run is not known.
 */
function checkRunningImages(
  pod: PodLike,
  images: NonNullable<AttestationConditions['images']>,
  verdicts: SignatureVerdicts | undefined,
): ConditionCheck {
  const digests = images.digests ?? [];
  const signed = (images.signatures?.keys ?? []).length > 0;
  for (const c of runningContainers(pod)) {
    if (!c.digest) {
      return {
        ok: false,
        reason: 'ImageNotRunning',
        message: `container ${c.name} reports no running image digest yet (pod status.containerStatuses[].imageID${c.imageID ? ` is "${c.imageID.slice(0, 200)}"` : ' is empty'}); spec.attestation.images is checked against what runs, so the pod attests once the container runs`,
      };
    }
    if (digests.includes(c.digest)) continue;
    if (!signed) {
      return {
        ok: false,
        reason: 'ImageDigestNotAllowed',
        message: `container ${c.name} runs image ${c.digest} (${c.image.slice(0, 200)}), which is not one of spec.attestation.images.digests`,
      };
    }
    const verdict = verdicts?.get(c.name);
    if (!verdict) {
      return {
        ok: false,
        reason: 'ImageSignatureUnverifiable',
        message: `container ${c.name} runs image ${c.digest} (${c.image.slice(0, 200)}), whose signature was not verified (this authority has no image signature verifier)`,
      };
    }
    if (!verdict.ok) {
      return {
        ok: false,
        reason: verdict.reason,
        message: `container ${c.name} runs image ${c.digest} (${c.image.slice(0, 200)})${digests.length > 0 ? ', not one of spec.attestation.images.digests,' : ''} without a valid signature by spec.attestation.images.signatures.keys: ${verdict.message}`,
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
  signatures?: SignatureVerdicts,
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
  const images = conditions?.images;
  if ((images?.digests ?? []).length > 0 || (images?.signatures?.keys ?? []).length > 0) {
    return checkRunningImages(pod, images ?? {}, signatures);
  }
  return { ok: true };
}
