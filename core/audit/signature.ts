/**
 * Signatures of the audit trail (docs/adr/0012-audit-signing.md): the controller signs every
 * AuditRecord it writes and the chain head it anchors in the AgentIdentity status, with a
 * dedicated audit key (ES256). Anyone holding only read access verifies them against the
 * published public keys, so a record created by anyone without the controller's key — even
 * with a correct previousDigest — is told apart from the controller's own.
 *
 * A signature is a detached JWS (RFC 7515, appendix F): `<protected header>..<signature>`.
 * The payload is not stored; it is rebuilt from the record (canonical JSON of the claims
 * below), so the signed statement and the record can never disagree. The claims name the
 * namespace (a record copied into another namespace does not verify there) and carry a `typ`
 * that differs for records and heads, so a record's signature cannot be replayed as a head.
 *
 * Pure: signing is node:crypto over a key handed in; verification uses jose over a key set
 * handed in. Key storage and publication are I/O (audit/keyset.ts).
 */
import { createPublicKey, type KeyObject, sign } from 'node:crypto';
import { createLocalJWKSet, errors, flattenedVerify, type JSONWebKeySet } from 'jose';
import type { AuditRecordSpec } from '../api/index.js';
import { canonicalJson } from './chain.js';

/** JWS `typ` of a record signature. */
export const AUDIT_RECORD_TYP = 'warden-audit-record+jws';
/** JWS `typ` of an anchored chain head's signature. */
export const AUDIT_HEAD_TYP = 'warden-audit-head+jws';

/** The private half, as the controller holds it. */
export interface AuditSigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** A published public key (a JWK of a P-256 key with its kid). */
export interface AuditPublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

/** `spec.signature` of an AuditRecord and the signed part of `status.audit.head`. */
export interface AuditSignature {
  keyId: string;
  /** Detached compact JWS: `<base64url protected header>..<base64url signature>`. */
  jws: string;
}

/** The chain head the controller anchors in the AgentIdentity status. */
export interface ChainHead {
  sequence: number;
  digest: string;
}

export type SignedHead = ChainHead & AuditSignature;

/** Why a signature does not vouch for what carries it. */
export type SignatureProblem = 'missing' | 'malformed' | 'unknown-key' | 'bad-signature';

export type SignatureVerdict =
  | { ok: true; keyId: string }
  | { ok: false; problem: SignatureProblem; keyId?: string; message: string };

/** What a record's signature states: this record, in this namespace, has this digest. */
export function recordClaims(
  namespace: string,
  spec: Pick<AuditRecordSpec, 'agent' | 'sequence' | 'digest'>,
) {
  return {
    typ: AUDIT_RECORD_TYP,
    namespace,
    agent: spec.agent,
    sequence: spec.sequence,
    digest: spec.digest,
  };
}

/** What a head's signature states: the newest record the controller wrote for this agent. */
export function headClaims(namespace: string, agent: string, head: ChainHead) {
  return { typ: AUDIT_HEAD_TYP, namespace, agent, sequence: head.sequence, digest: head.digest };
}

const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url');

function signClaims(claims: { typ: string }, key: AuditSigningKey): AuditSignature {
  const header = b64u(JSON.stringify({ alg: 'ES256', kid: key.kid, typ: claims.typ }));
  const input = `${header}.${b64u(canonicalJson(claims))}`;
  const sig = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return { keyId: key.kid, jws: `${header}..${sig.toString('base64url')}` };
}

/** Signs a sealed record (its digest is already set). */
export function signRecord(namespace: string, spec: AuditRecordSpec, key: AuditSigningKey): AuditSignature {
  return signClaims(recordClaims(namespace, spec), key);
}

/** Signs a chain head for status.audit.head. */
export function signHead(
  namespace: string,
  agent: string,
  head: ChainHead,
  key: AuditSigningKey,
): SignedHead {
  return {
    sequence: head.sequence,
    digest: head.digest,
    ...signClaims(headClaims(namespace, agent, head), key),
  };
}

/** The public JWK of a signing key (what is published). */
export function publicJwkOf(key: AuditSigningKey): AuditPublicJwk {
  const jwk = createPublicKey(key.privateKey).export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) {
    throw new Error(`audit signing key ${key.kid} is not a P-256 EC key`);
  }
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: key.kid, alg: 'ES256', use: 'sig' };
}

const JWS_SHAPE = /^([A-Za-z0-9_-]+)\.\.([A-Za-z0-9_-]+)$/;

/**
 * The public keys a verifier trusts, and the verification of record and head signatures
 * against them (jose, ES256 only). Build one per key set; it caches imported keys.
 */
export class AuditKeySet {
  private readonly kids: Set<string>;
  private readonly resolve: ReturnType<typeof createLocalJWKSet>;

  constructor(readonly keys: readonly AuditPublicJwk[]) {
    this.kids = new Set(keys.map((k) => k.kid));
    this.resolve = createLocalJWKSet({ keys: keys.map((k) => ({ ...k })) } as JSONWebKeySet);
  }

  has(kid: string): boolean {
    return this.kids.has(kid);
  }

  verifyRecord(namespace: string, spec: AuditRecordSpec): Promise<SignatureVerdict> {
    return this.verify(recordClaims(namespace, spec), spec.signature, 'record');
  }

  verifyHead(namespace: string, agent: string, head: Partial<SignedHead>): Promise<SignatureVerdict> {
    if (typeof head.sequence !== 'number' || typeof head.digest !== 'string') {
      return Promise.resolve({
        ok: false,
        problem: 'malformed',
        message: 'the head has no sequence or digest',
      });
    }
    const signature =
      head.keyId !== undefined || head.jws !== undefined
        ? { keyId: head.keyId ?? '', jws: head.jws ?? '' }
        : undefined;
    return this.verify(
      headClaims(namespace, agent, { sequence: head.sequence, digest: head.digest }),
      signature,
      'head',
    );
  }

  private async verify(
    claims: { typ: string },
    signature: Partial<AuditSignature> | undefined,
    what: 'record' | 'head',
  ): Promise<SignatureVerdict> {
    if (!signature?.jws) {
      return { ok: false, problem: 'missing', message: `the ${what} is not signed` };
    }
    const keyId = signature.keyId ?? '';
    const m = JWS_SHAPE.exec(signature.jws);
    if (!m) {
      return {
        ok: false,
        problem: 'malformed',
        keyId,
        message: 'the signature is not a detached compact JWS',
      };
    }
    let header: { alg?: unknown; kid?: unknown; typ?: unknown };
    try {
      header = JSON.parse(Buffer.from(m[1] as string, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, problem: 'malformed', keyId, message: 'the signature header is not JSON' };
    }
    if (header.kid !== keyId) {
      return {
        ok: false,
        problem: 'malformed',
        keyId,
        message: `the signature's key id (${String(header.kid)}) differs from keyId ${keyId}`,
      };
    }
    if (header.typ !== claims.typ) {
      return {
        ok: false,
        problem: 'malformed',
        keyId,
        message: `the signature is of type ${String(header.typ)}, not ${claims.typ}`,
      };
    }
    if (!this.kids.has(keyId)) {
      return {
        ok: false,
        problem: 'unknown-key',
        keyId,
        message: `key ${keyId} is not among the published audit keys`,
      };
    }
    try {
      await flattenedVerify(
        { protected: m[1] as string, payload: b64u(canonicalJson(claims)), signature: m[2] as string },
        this.resolve,
        { algorithms: ['ES256'] },
      );
      return { ok: true, keyId };
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) {
        return {
          ok: false,
          problem: 'unknown-key',
          keyId,
          message: `key ${keyId} is not among the published audit keys`,
        };
      }
      if (err instanceof errors.JOSEAlgNotAllowed) {
        return { ok: false, problem: 'malformed', keyId, message: 'the signature does not use ES256' };
      }
      return {
        ok: false,
        problem: 'bad-signature',
        keyId,
        message: `the signature by key ${keyId} does not match the ${what}`,
      };
    }
  }
}

/** Parses a published key set (`{"keys": [...]}`); the error names the offending field. */
export function parseAuditJwks(json: string, where: string): AuditPublicJwk[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`${where}: not JSON (${(err as Error).message})`);
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error(`${where}: must be a JWKS, {"keys": [...]}`);
  return keys.map((k, i) => {
    const j = k as Partial<AuditPublicJwk> | null;
    for (const f of ['kid', 'x', 'y'] as const) {
      if (typeof j?.[f] !== 'string' || j[f] === '') throw new Error(`${where}: keys[${i}].${f} is missing`);
    }
    if (j?.kty !== 'EC' || j.crv !== 'P-256') {
      throw new Error(`${where}: keys[${i}] must be an EC P-256 key (kty EC, crv P-256)`);
    }
    return {
      kty: 'EC',
      crv: 'P-256',
      x: j.x as string,
      y: j.y as string,
      kid: j.kid as string,
      alg: 'ES256',
      use: 'sig',
    };
  });
}

/**
 * The audit keys as the writer uses them (audit/keyset.ts keeps them in a Secret and publishes
 * the public halves): the key to sign with now, every public key ever published, and when
 * signing began (unsigned records created before it are legacy, not forged).
 */
export interface AuditKeys {
  /** Throws when no key may sign now (none published yet): the writer then retries later. */
  signingKey(): AuditSigningKey;
  keySet(): AuditKeySet;
  signingSince(): number | undefined;
}
