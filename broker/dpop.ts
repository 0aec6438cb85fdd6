/**
 * DPoP (RFC 9449) in the broker: a sender-constrained Warden JWT is bound (`cnf.jkt`) to a key pair
 * that exists only in this process's memory, and every upstream request that carries the token
 * also carries a fresh proof signed with that key — so a token that leaks to the agent (or anyone)
 * is useless without the broker.
 *
 * One P-256 key pair per broker process, i.e. per session with the authority: generated at start,
 * never written, logged or sent anywhere but its public half inside proofs and its thumbprint in
 * credential requests. Proofs are signed with node:crypto's one-shot ES256 (as authority/jwt.ts
 * signs tokens): bench/credentials.bench.ts measures it against jose's SignJWT, which goes through
 * WebCrypto and several promise hops for the same signature.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';

/** JOSE `typ` of a DPoP proof (RFC 9449 §4.2). */
export const DPOP_PROOF_TYP = 'dpop+jwt';

export interface PublicEcJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

/** RFC 7638 thumbprint of an EC public JWK: SHA-256 over its required members in lexical order. */
export function jwkThumbprint(jwk: PublicEcJwk): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token's ASCII bytes. */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

/** RFC 9449 §4.2 `htu`: the target URI without query and fragment. */
export function proofTargetUri(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export interface ProofInput {
  /** HTTP method of the upstream request. */
  readonly htm: string;
  /** The upstream request's URL (query and fragment are dropped). */
  readonly url: URL;
  /** `ath` of the token the proof accompanies (accessTokenHash). */
  readonly ath: string;
}

/** The broker's DPoP key pair and proof signer. */
export class DpopKey {
  readonly publicJwk: PublicEcJwk;
  /** RFC 7638 thumbprint of publicJwk: what the authority puts in `cnf.jkt`. */
  readonly thumbprint: string;
  private readonly privateKey: KeyObject;
  private readonly encodedHeader: string;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly newId: () => string = () => randomBytes(16).toString('base64url'),
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.publicJwk = { kty: 'EC', crv: 'P-256', x: String(jwk.x), y: String(jwk.y) };
    this.thumbprint = jwkThumbprint(this.publicJwk);
    this.encodedHeader = Buffer.from(
      JSON.stringify({ typ: DPOP_PROOF_TYP, alg: 'ES256', jwk: this.publicJwk }),
    ).toString('base64url');
  }

  /** A fresh proof (new jti, iat now) for one request. */
  proof(p: ProofInput): string {
    const payload = {
      jti: this.newId(),
      htm: p.htm.toUpperCase(),
      htu: proofTargetUri(p.url),
      iat: Math.floor(this.now() / 1000),
      ath: p.ath,
    };
    const input = `${this.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    // ieee-p1363: the raw r||s signature JWS requires (not DER).
    const signature = sign('sha256', Buffer.from(input), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }
}
