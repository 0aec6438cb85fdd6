/**
 * How a target (an MCP server or HTTP API behind Warden) verifies a Warden JWT — bearer or
 * sender-constrained with DPoP (RFC 9449) — using only `jose` and node:crypto. Copy it into your
 * server; the sample MCP server (e2e/demo/sample-mcp-server.ts) uses it as is, and docs/dpop.md
 * walks through it.
 *
 * A DPoP-bound Warden JWT is useless without the broker's key: the target accepts it only with a
 * fresh proof that the broker signed for this very request. Checks, in order (the replay cache is
 * written last, so a refused request never burns a jti):
 *   1. `Authorization: DPoP <token>` (a bound token sent as Bearer is refused, RFC 9449 §7.2);
 *   2. exactly one `DPoP` header; its JWS has typ dpop+jwt, an allowed alg, and a public `jwk`
 *      that verifies its signature;
 *   3. `htm` equals the request method and `htu` the request URL (without query and fragment);
 *   4. `iat` within the allowed window of the target's clock;
 *   5. `ath` equals the SHA-256 of the token;
 *   6. the token: signature via Warden's JWKS, issuer, audience, typ at+jwt, exp/nbf;
 *   7. `cnf.jkt` equals the RFC 7638 thumbprint of the proof's key;
 *   8. the proof's `jti` has not been seen within the window (replay cache).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';

/** The proof algorithms accepted (Warden's broker signs ES256). */
export const DPOP_ALGORITHMS = ['ES256'];
/** Tolerance for clock differences between broker, authority and target (docs/faults.md). */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 120;

/** A refusal, with the RFC 6750 / RFC 9449 error code for the WWW-Authenticate header. */
export class TokenRefused extends Error {
  constructor(
    readonly error: 'invalid_token' | 'invalid_dpop_proof' | 'invalid_request',
    message: string,
  ) {
    super(message);
    this.name = 'TokenRefused';
  }

  /** RFC 9449 §7.1: the challenge to send with the 401. */
  get wwwAuthenticate(): string {
    return `DPoP error="${this.error}", error_description="${this.message.replaceAll('"', "'")}", algs="${DPOP_ALGORITHMS.join(' ')}"`;
  }
}

/**
 * Remembers proof ids until they are too old to be accepted anyway, so a captured proof cannot be
 * replayed. In-memory: a target with several replicas needs a shared store (or sticky routing).
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  constructor(private readonly maxEntries = 100_000) {}

  /** False when `id` was seen and has not expired; otherwise records it until `expiresAtMs`. */
  add(id: string, expiresAtMs: number, nowMs: number): boolean {
    const until = this.seen.get(id);
    if (until !== undefined && until > nowMs) return false;
    if (this.seen.size >= this.maxEntries) {
      for (const [k, v] of this.seen) if (v <= nowMs) this.seen.delete(k);
      // Still full of live ids: refuse rather than forget one (fail closed).
      if (this.seen.size >= this.maxEntries) return false;
    }
    this.seen.set(id, expiresAtMs);
    return true;
  }
}

export interface WardenTokenVerifierOptions {
  /** Warden's issuer (the authority's `iss`). */
  readonly issuer: string;
  /** Warden's keys: `createRemoteJWKSet(new URL('<authority>/.well-known/jwks.json'))`. */
  readonly jwks: JWTVerifyGetKey;
  /** This target's audience (CredentialProvider spec.jwt.audience, default its target URL). */
  readonly audience: string;
  /** Accept only DPoP-bound tokens: set it when the CredentialProvider sets senderConstraint DPoP. */
  readonly requireDpop: boolean;
  /** Clock tolerance for the token's exp/nbf and the proof's iat, in seconds. */
  readonly clockToleranceSeconds?: number;
  readonly replayCache?: ReplayCache;
  readonly now?: () => Date;
}

/** The parts of an incoming request the verification needs. */
export interface RequestToVerify {
  readonly method: string;
  /** The URL the client addressed, as this target knows itself (configure it; do not trust Host). */
  readonly url: URL;
  readonly authorization: string | undefined;
  /** Every DPoP header value received (Node: `req.headersDistinct.dpop`). */
  readonly dpop: readonly string[] | undefined;
}

export interface VerifiedCaller {
  readonly claims: JWTPayload;
  /** The proof key's thumbprint when the token is DPoP-bound; undefined for a bearer token. */
  readonly jkt: string | undefined;
}

/** RFC 9449 §4.2: htu compares without query and fragment. */
function withoutQuery(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createWardenTokenVerifier(
  opts: WardenTokenVerifierOptions,
): (req: RequestToVerify) => Promise<VerifiedCaller> {
  const tolerance = opts.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const replay = opts.replayCache ?? new ReplayCache();
  const now = opts.now ?? (() => new Date());

  const verifyToken = async (token: string): Promise<JWTPayload> => {
    try {
      const { payload } = await jwtVerify(token, opts.jwks, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: ['ES256'],
        typ: 'at+jwt',
        clockTolerance: tolerance,
        currentDate: now(),
      });
      return payload;
    } catch (err) {
      throw new TokenRefused('invalid_token', `token rejected: ${(err as Error).message}`);
    }
  };

  return async (req) => {
    const m = /^(\S+) (\S+)$/.exec(req.authorization ?? '');
    if (!m) throw new TokenRefused('invalid_request', 'missing or malformed Authorization header');
    const scheme = m[1]!.toLowerCase();
    const token = m[2]!;

    if (scheme === 'bearer') {
      if (opts.requireDpop) {
        throw new TokenRefused(
          'invalid_token',
          'this target accepts only DPoP-bound tokens (Authorization: DPoP)',
        );
      }
      const claims = await verifyToken(token);
      // RFC 9449 §7.2: a bound token presented as a bearer token is refused.
      if (claims.cnf !== undefined) {
        throw new TokenRefused(
          'invalid_token',
          'the token is DPoP-bound; present it with the DPoP scheme and a proof',
        );
      }
      return { claims, jkt: undefined };
    }
    if (scheme !== 'dpop')
      throw new TokenRefused('invalid_request', `unsupported Authorization scheme '${m[1]}'`);

    // 2. the proof: one header, one JWS, signed by the public key it carries.
    const proofs = req.dpop ?? [];
    if (proofs.length !== 1) {
      throw new TokenRefused('invalid_dpop_proof', `expected exactly one DPoP header, got ${proofs.length}`);
    }
    const proof = proofs[0]!;
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(proof);
    } catch {
      throw new TokenRefused('invalid_dpop_proof', 'the DPoP header is not a JWS');
    }
    const jwk = header.jwk as JWK | undefined;
    if (!jwk || typeof jwk !== 'object' || 'd' in jwk) {
      throw new TokenRefused(
        'invalid_dpop_proof',
        'the proof must carry the public key (jwk) it is signed with',
      );
    }
    let proofClaims: JWTPayload;
    try {
      ({ payload: proofClaims } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: DPOP_ALGORITHMS,
      }));
    } catch (err) {
      throw new TokenRefused('invalid_dpop_proof', `proof rejected: ${(err as Error).message}`);
    }

    // 3. bound to this request.
    if (proofClaims.htm !== req.method.toUpperCase()) {
      throw new TokenRefused(
        'invalid_dpop_proof',
        `proof htm '${String(proofClaims.htm)}' is not this request's method`,
      );
    }
    let htu: string;
    try {
      htu = withoutQuery(new URL(String(proofClaims.htu)));
    } catch {
      throw new TokenRefused('invalid_dpop_proof', 'proof htu is not a URL');
    }
    if (htu !== withoutQuery(req.url)) {
      throw new TokenRefused('invalid_dpop_proof', `proof htu '${htu}' is not this request's URL`);
    }

    // 4. fresh.
    const nowSeconds = now().getTime() / 1000;
    if (typeof proofClaims.iat !== 'number' || Math.abs(nowSeconds - proofClaims.iat) > tolerance) {
      throw new TokenRefused(
        'invalid_dpop_proof',
        `proof iat is missing or more than ${tolerance}s from now`,
      );
    }
    if (typeof proofClaims.jti !== 'string' || proofClaims.jti.length < 16) {
      throw new TokenRefused('invalid_dpop_proof', 'proof jti is missing or too short');
    }

    // 5. for this token.
    const ath = createHash('sha256').update(token, 'ascii').digest('base64url');
    if (typeof proofClaims.ath !== 'string' || !sameText(proofClaims.ath, ath)) {
      throw new TokenRefused('invalid_dpop_proof', 'proof ath does not match the access token');
    }

    // 6-7. the token is Warden's and bound to the proof's key.
    const claims = await verifyToken(token);
    const jkt = await calculateJwkThumbprint(jwk, 'sha256');
    const bound = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (typeof bound !== 'string' || !sameText(bound, jkt)) {
      throw new TokenRefused(
        'invalid_token',
        'the token is not bound to the key that signed the proof (cnf.jkt)',
      );
    }

    // 8. never twice.
    const expires = (proofClaims.iat + tolerance) * 1000;
    if (!replay.add(`${jkt}:${proofClaims.jti}`, expires, nowSeconds * 1000)) {
      throw new TokenRefused('invalid_dpop_proof', 'proof jti was already used (replay)');
    }
    return { claims, jkt };
  };
}
