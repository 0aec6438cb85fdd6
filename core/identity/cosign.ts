/**
 * Cosign key-pair signatures of container images, the pure part (docs/adr/0016-image-signatures.md):
 * parsing the keys an AgentIdentity trusts, naming an image's repository the way cosign does, and
 * judging one signature layer — its ECDSA signature over the simple-signing payload (verified with
 * @sigstore/verify) and the payload's claims (the signed digest and repository). Fetching the
 * layer from the registry is the authority's (authority/image-signatures.ts).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { toMessageSignatureBundle } from '@sigstore/bundle';
import { toSignedEntity, VerificationError, Verifier } from '@sigstore/verify';
import { IMAGE_DIGEST, PEM_PUBLIC_KEY } from '../api/patterns.js';
import { COSIGN_SIGNATURE_TYPE } from '../constants.js';

/** One entry of spec.attestation.images.signatures.keys. */
export interface SigningKeySpec {
  name: string;
  publicKey: string;
}

/** A key ready to verify with. */
export interface SigningKey {
  readonly name: string;
  readonly key: KeyObject;
}

/** Why a running image is refused when signatures are required (constants, as in the audit detail). */
export type SignatureRefusal = 'ImageNotSigned' | 'ImageSignatureInvalid' | 'ImageSignatureUnverifiable';

/** What the authority found out about one running image's signatures. */
export type SignatureVerdict =
  | { ok: true; key: string }
  | { ok: false; reason: SignatureRefusal; message: string };

/**
 * One trusted key, or what is wrong with it (a sentence to put after its field path,
 * `spec.attestation.images.signatures.keys[0].publicKey: …`).
 */
export function parseSigningKey(
  spec: SigningKeySpec,
): { ok: true; key: SigningKey } | { ok: false; problem: string } {
  const pem = spec.publicKey;
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    return {
      ok: false,
      problem:
        'is a private key; put the public key here (cosign.pub from cosign generate-key-pair), and treat the private key as exposed: anyone who can read this AgentIdentity has it',
    };
  }
  if (!PEM_PUBLIC_KEY.re.test(pem)) {
    return { ok: false, problem: `must be ${PEM_PUBLIC_KEY.description}` };
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    return {
      ok: false,
      problem:
        'the PEM block does not hold a valid public key (damaged base64 or DER); copy cosign.pub again',
    };
  }
  const type = key.asymmetricKeyType;
  if (type !== 'ec') {
    return {
      ok: false,
      problem: `is ${type === undefined ? 'an unknown' : `an ${type.toUpperCase()}`} key; only ECDSA P-256 keys (what cosign generate-key-pair writes) are supported`,
    };
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== 'prime256v1') {
    return {
      ok: false,
      problem: `is an ECDSA key on curve ${curve ?? 'unknown'}; only P-256 (prime256v1, what cosign generate-key-pair writes) is supported`,
    };
  }
  return { ok: true, key: { name: spec.name, key } };
}

/**
 * All trusted keys, or every problem with them (each names its field path). Old objects have no
 * keys: an empty list, nothing to check.
 */
export function parseSigningKeys(
  specs: readonly SigningKeySpec[],
  base = 'spec.attestation.images.signatures.keys',
): { ok: true; keys: SigningKey[] } | { ok: false; problems: string[] } {
  const keys: SigningKey[] = [];
  const problems: string[] = [];
  specs.forEach((s, i) => {
    const r = parseSigningKey(s);
    if (r.ok) keys.push(r.key);
    else problems.push(`${base}[${i}].publicKey: ${r.problem}`);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, keys };
}

/** A stable name for a set of keys: verdicts are cached per key set, so a rotation re-verifies. */
export function keySetId(specs: readonly SigningKeySpec[]): string {
  const h = createHash('sha256');
  for (const k of specs.map((s) => `${s.name}\0${s.publicKey.trim()}`).sort()) h.update(k).update('\0');
  return h.digest('hex').slice(0, 32);
}

/** Where an image lives: the registry's API host and the repository path in it. */
export interface ImageRepository {
  /** Registry host[:port] as written in references (`docker.io` for Docker Hub). */
  readonly registry: string;
  /** Repository path (`acme/agent`, `library/busybox`). */
  readonly path: string;
  /** `registry/path`: what cosign writes as the payload's critical.identity.docker-reference. */
  readonly name: string;
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const REPOSITORY_PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * The repository of an image reference (`host:5000/acme/agent:v1`, `busybox@sha256:…`,
 * `docker-pullable://…`), normalised as the container runtime and cosign do: no registry means
 * Docker Hub, and a one-part Docker Hub path is under `library/`. Undefined when it is not one.
 */
export function imageRepository(reference: string): ImageRepository | undefined {
  let ref = reference.replace(/^[a-z-]+:\/\//, '');
  // A bare digest (some runtimes' imageID) names no repository.
  if (IMAGE_DIGEST.re.test(ref)) return undefined;
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) ref = ref.slice(0, colon);
  const parts = ref.split('/');
  const first = parts[0] ?? '';
  let registry = 'docker.io';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first.toLowerCase();
    parts.shift();
  }
  if (DOCKER_HUB_ALIASES.has(registry)) {
    registry = 'docker.io';
    if (parts.length === 1) parts.unshift('library');
  }
  const path = parts.join('/');
  if (!path || !REPOSITORY_PATH.test(path) || !/^[A-Za-z0-9.[\]:-]+$/.test(registry)) return undefined;
  return { registry, path, name: `${registry}/${path}` };
}

/** The tag cosign stores an image's signatures under: `sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** What one signature layer says about the image, once checked. */
export type LayerJudgement =
  | { ok: true; key: string }
  | {
      ok: false;
      /** 'key': no trusted key made this signature; 'claims': a trusted key did, for another image. */
      why: 'key' | 'claims' | 'malformed';
      message: string;
    };

function verifier(key: SigningKey): Verifier {
  // A bare cosign key-pair signature has no transparency-log entry, certificate or timestamp
  // (cosign sign --key --tlog-upload=false, or one whose Rekor entry we do not check yet): the
  // thresholds are 0 and the only trust material is the AgentIdentity's key.
  return new Verifier(
    {
      certificateAuthorities: [],
      timestampAuthorities: [],
      tlogs: [],
      ctlogs: [],
      publicKey: () => ({ publicKey: key.key, validFor: () => true }),
    },
    { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
  );
}

/** The name of the first key whose signature over `payload` verifies, if any. */
export function signedBy(
  payload: Buffer,
  signature: Buffer,
  keys: readonly SigningKey[],
): string | undefined {
  const bundle = {
    digest: createHash('sha256').update(payload).digest(),
    signature,
  };
  for (const key of keys) {
    const entity = toSignedEntity(toMessageSignatureBundle({ ...bundle, keyHint: key.name }), payload);
    try {
      verifier(key).verify(entity);
      return key.name;
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
    }
  }
  return undefined;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/**
 * Judges one signature layer of the image `repository@digest`: a trusted key signed `payload`
 * (the signature first — nothing in an unverified payload is believed), and the payload is a
 * cosign image signature for exactly this digest and repository.
 */
export function judgeSignatureLayer(
  layer: { payload: Buffer; signature: string },
  image: { repository: ImageRepository; digest: string },
  keys: readonly SigningKey[],
): LayerJudgement {
  const signature = Buffer.from(layer.signature, 'base64');
  if (signature.length === 0 || signature.length > 1024) {
    return {
      ok: false,
      why: 'malformed',
      message: 'its signature annotation is not a base64 ECDSA signature',
    };
  }
  const key = signedBy(layer.payload, signature, keys);
  if (key === undefined) {
    return {
      ok: false,
      why: 'key',
      message: `it is signed by none of the keys in spec.attestation.images.signatures.keys (${keys.map((k) => k.name).join(', ')})`,
    };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(layer.payload.toString('utf8'));
  } catch {
    return { ok: false, why: 'malformed', message: `key ${key} signed a payload that is not JSON` };
  }
  const critical = record(record(payload)?.critical);
  const type = critical?.type;
  const signedDigest = record(critical?.image)?.['docker-manifest-digest'];
  const reference = record(critical?.identity)?.['docker-reference'];
  if (type !== COSIGN_SIGNATURE_TYPE) {
    return {
      ok: false,
      why: 'claims',
      message: `key ${key} signed a payload of type ${JSON.stringify(type)}, not "${COSIGN_SIGNATURE_TYPE}"`,
    };
  }
  if (signedDigest !== image.digest) {
    return {
      ok: false,
      why: 'claims',
      message: `key ${key} signed image ${typeof signedDigest === 'string' ? signedDigest.slice(0, 80) : '(no digest)'}, not the running ${image.digest} (a signature copied to another image)`,
    };
  }
  const signedRepo = typeof reference === 'string' ? imageRepository(reference) : undefined;
  if (signedRepo?.name !== image.repository.name) {
    return {
      ok: false,
      why: 'claims',
      message: `key ${key} signed this digest as ${typeof reference === 'string' ? reference.slice(0, 200) : '(no docker-reference)'}, not as ${image.repository.name}`,
    };
  }
  return { ok: true, key };
}
