/**
 * Warden's signing keys: ES256 key pairs kept in one Secret so every authority replica signs with
 * the same key and publishes the same JWKS.
 *
 * Lifecycle (all decided by the pure functions below from timestamps in the Secret):
 * - a new key is *published* (in the JWKS) `prepublish` before it becomes the signing key, so
 *   verifiers that cache the JWKS already know it when the first token signed by it arrives;
 * - it *signs* from `activateAt` until the next key activates (`rotationPeriod` later);
 * - it stays *published* until every token it signed has expired (`maxTokenLifetime` after it
 *   stopped signing), then it is deleted.
 * Replicas race benignly: the Secret is created with create-if-absent and updated with
 * resourceVersion preconditions; the loser of a race re-reads and adopts the winner's keys.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';

export interface StoredKey {
  kid: string;
  /** ISO time the key was generated. */
  createdAt: string;
  /** ISO time from which it signs. */
  activateAt: string;
  /** PKCS#8 PEM of the P-256 private key. */
  privateKeyPem: string;
}

export interface KeyRing {
  keys: StoredKey[];
}

export interface RotationPolicy {
  rotationPeriodMs: number;
  prepublishMs: number;
  /** Longest lifetime of any token signed by these keys (sessions, minted credentials). */
  maxTokenLifetimeMs: number;
}

export const DEFAULT_ROTATION: RotationPolicy = {
  rotationPeriodMs: 24 * 3600_000,
  prepublishMs: 3600_000,
  maxTokenLifetimeMs: 24 * 3600_000,
};

export type KeyGenerator = (now: Date, activateAt: Date) => StoredKey;

/** Generates a fresh P-256 key with a random kid. */
export const generateStoredKey: KeyGenerator = (now, activateAt) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid: randomBytes(12).toString('base64url'),
    createdAt: now.toISOString(),
    activateAt: activateAt.toISOString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
};

const t = (iso: string): number => Date.parse(iso);

function byActivation(keys: readonly StoredKey[]): StoredKey[] {
  return [...keys].sort((a, b) => t(a.activateAt) - t(b.activateAt) || a.kid.localeCompare(b.kid));
}

/** The key that signs at `now`: the most recently activated one. */
export function signingKeyOf(ring: KeyRing, now: Date): StoredKey | undefined {
  const active = byActivation(ring.keys).filter((k) => t(k.activateAt) <= now.getTime());
  return active.at(-1);
}

/** When a key stops being needed in the JWKS: its successor's activation plus the token lifetime. */
function retiredAt(key: StoredKey, sorted: StoredKey[], policy: RotationPolicy): number {
  const next = sorted.find((k) => t(k.activateAt) > t(key.activateAt));
  return next ? t(next.activateAt) + policy.maxTokenLifetimeMs : Number.POSITIVE_INFINITY;
}

/** Keys to publish at `now`: pending, signing, and retired ones whose tokens may still be alive. */
export function publishedKeysOf(ring: KeyRing, now: Date, policy: RotationPolicy): StoredKey[] {
  const sorted = byActivation(ring.keys);
  return sorted.filter((k) => retiredAt(k, sorted, policy) > now.getTime());
}

/**
 * What the ring should look like at `now`: expired keys dropped, a first key if there is none,
 * and the next key added `prepublish` before the current one has signed for `rotationPeriod`.
 */
export function planRotation(
  ring: KeyRing,
  now: Date,
  policy: RotationPolicy,
  generate: KeyGenerator = generateStoredKey,
): { ring: KeyRing; changed: boolean } {
  const kept = publishedKeysOf(ring, now, policy);
  let changed = kept.length !== ring.keys.length;
  const keys = [...kept];
  const signing = signingKeyOf({ keys }, now);
  if (!signing) {
    // Nothing signs yet (first start, or every key expired): activate a new key immediately.
    keys.push(generate(now, now));
    return { ring: { keys: byActivation(keys) }, changed: true };
  }
  const hasPending = keys.some((k) => t(k.activateAt) > now.getTime());
  const nextActivation = t(signing.activateAt) + policy.rotationPeriodMs;
  if (!hasPending && now.getTime() >= nextActivation - policy.prepublishMs) {
    keys.push(generate(now, new Date(Math.max(nextActivation, now.getTime()))));
    changed = true;
  }
  return { ring: { keys: byActivation(keys) }, changed };
}

/** A key ready for use: parsed once, with its public JWK. */
export interface LoadedKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

export function loadKey(stored: StoredKey): LoadedKey {
  const privateKey = createPrivateKey(stored.privateKeyPem);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) {
    throw new Error(`signing key ${stored.kid} is not a P-256 EC key`);
  }
  return {
    kid: stored.kid,
    privateKey,
    publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: stored.kid, alg: 'ES256', use: 'sig' },
  };
}

/** Parses the ring stored in the Secret; a human-readable error says which field is wrong. */
export function parseKeyRing(json: string): KeyRing {
  const value = JSON.parse(json) as unknown;
  if (!value || typeof value !== 'object' || !Array.isArray((value as KeyRing).keys)) {
    throw new Error('signing-key Secret: data.keys.json must be {"keys": [...]}');
  }
  for (const [i, k] of (value as KeyRing).keys.entries()) {
    for (const field of ['kid', 'createdAt', 'activateAt', 'privateKeyPem'] as const) {
      if (typeof k?.[field] !== 'string' || (field.endsWith('At') && Number.isNaN(t(k[field])))) {
        throw new Error(`signing-key Secret: data.keys.json keys[${i}].${field} is missing or invalid`);
      }
    }
  }
  return value as KeyRing;
}
