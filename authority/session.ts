/**
 * Session tokens: what a broker holds after attestation. A 10-minute ES256 JWT issued by Warden,
 * audience = the authority itself, bound to one pod (name + UID) and one AgentIdentity. Brokers
 * present it as a bearer token on every call; the authority verifies it on every call.
 */
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import { GATEWAY_AUDIENCE } from '../core/constants.js';
import { agentSubject } from '../core/identity/agent.js';
import {
  AGENT_TOKEN_TYP,
  SESSION_CLOCK_SKEW_SECONDS,
  SESSION_TOKEN_TYP,
  SESSION_TTL_SECONDS,
} from './constants.js';
import { OAuthError } from './errors.js';
import { signJwt } from './jwt.js';
import type { KeySource } from './keystore.js';

/** Who a session is for. */
export interface SessionSubject {
  namespace: string;
  agent: string;
  serviceAccount: string;
  pod: string;
  podUID: string;
  /**
   * 'gateway': the session is held by the shared gateway for an agent pod without a sidecar, so
   * the pod is checked without the injected broker on refresh (attest.ts, gateway mode).
   */
  via?: 'gateway';
}

export interface SessionClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  warden: SessionSubject;
}

export interface IssuedSession {
  token: string;
  claims: SessionClaims;
  expiresIn: number;
}

export interface SessionOptions {
  issuer: string;
  keys: KeySource;
  ttlSeconds?: number;
  now?: () => Date;
}

/** Issues and verifies session tokens for one authority issuer. */
export class Sessions {
  private readonly ttl: number;
  private readonly now: () => Date;
  private jwksKey = '';
  private keySet: ReturnType<typeof createLocalJWKSet> | undefined;

  constructor(private readonly opts: SessionOptions) {
    this.ttl = opts.ttlSeconds ?? SESSION_TTL_SECONDS;
    this.now = opts.now ?? (() => new Date());
  }

  issue(subject: SessionSubject): IssuedSession {
    const iat = Math.floor(this.now().getTime() / 1000);
    const claims: SessionClaims = {
      iss: this.opts.issuer,
      sub: agentSubject(subject.namespace, subject.agent),
      aud: this.opts.issuer,
      iat,
      nbf: iat,
      exp: iat + this.ttl,
      jti: randomUUID(),
      warden: { ...subject },
    };
    const token = signJwt(this.opts.keys.signingKey(), SESSION_TOKEN_TYP, { ...claims });
    return { token, claims, expiresIn: this.ttl };
  }

  /**
   * An agent token: what an agent without a sidecar presents to the shared gateway. Same subject
   * and lifetime as a session, but typ AGENT_TOKEN_TYP and audience GATEWAY_AUDIENCE, so it is
   * never accepted where a session is (the agent cannot call /v1/credentials with it); only the
   * gateway, authenticated as itself, can exchange it for a session (token.ts).
   */
  issueAgentToken(subject: SessionSubject): IssuedSession {
    const iat = Math.floor(this.now().getTime() / 1000);
    const { via: _via, ...who } = subject;
    const claims: SessionClaims = {
      iss: this.opts.issuer,
      sub: agentSubject(subject.namespace, subject.agent),
      aud: GATEWAY_AUDIENCE,
      iat,
      nbf: iat,
      exp: iat + this.ttl,
      jti: randomUUID(),
      warden: who,
    };
    const token = signJwt(this.opts.keys.signingKey(), AGENT_TOKEN_TYP, { ...claims });
    return { token, claims, expiresIn: this.ttl };
  }

  /** Verifies an agent token (issueAgentToken) the way verify() checks a session. */
  verifyAgentToken(token: string): Promise<SessionClaims> {
    return this.verifyAs(token, AGENT_TOKEN_TYP, GATEWAY_AUDIENCE);
  }

  /**
   * Verifies signature (ES256 only, known kid), typ, issuer, audience, exp and nbf (with
   * SESSION_CLOCK_SKEW_SECONDS), and the Warden claims. Throws invalid_token saying which check failed.
   */
  verify(token: string): Promise<SessionClaims> {
    return this.verifyAs(token, SESSION_TOKEN_TYP, this.opts.issuer);
  }

  private async verifyAs(token: string, typ: string, audience: string): Promise<SessionClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.currentKeySet(), {
        algorithms: ['ES256'],
        issuer: this.opts.issuer,
        audience,
        typ,
        clockTolerance: SESSION_CLOCK_SKEW_SECONDS,
        currentDate: this.now(),
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      }));
    } catch (err) {
      throw sessionError(err);
    }
    const w = payload.warden as Partial<SessionSubject> | undefined;
    const fields = ['namespace', 'agent', 'serviceAccount', 'pod', 'podUID'] as const;
    if (
      !w ||
      typeof w !== 'object' ||
      fields.some((f) => typeof w[f] !== 'string' || w[f] === '') ||
      (w.via !== undefined && w.via !== 'gateway')
    ) {
      throw new OAuthError(
        'invalid_token',
        'session token lacks the warden claims; exchange the service-account token again',
      );
    }
    return payload as unknown as SessionClaims;
  }

  private currentKeySet(): ReturnType<typeof createLocalJWKSet> {
    const jwks = this.opts.keys.jwks();
    const key = jwks.keys.map((k) => k.kid).join(',');
    if (!this.keySet || key !== this.jwksKey) {
      this.keySet = createLocalJWKSet(jwks);
      this.jwksKey = key;
    }
    return this.keySet;
  }
}

const AGAIN = 'exchange the service-account token at /v1/token for a new session';

/** Maps a jose verification error to a precise invalid_token. */
export function sessionError(err: unknown): OAuthError {
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof joseErrors.JWTExpired)
    return new OAuthError('invalid_token', `session token expired; ${AGAIN}`, detail);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const why: Record<string, string> = {
      nbf: 'session token is not valid yet (nbf in the future)',
      iat: 'session token was issued in the future (iat)',
      iss: 'session token was issued by another authority (iss)',
      aud: 'session token is not meant for this authority (aud)',
      typ: 'token is not a Warden session token (typ)',
    };
    return new OAuthError(
      'invalid_token',
      `${why[err.claim] ?? `session token claim ${err.claim} is invalid`}; ${AGAIN}`,
      detail,
    );
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return new OAuthError('invalid_token', 'session token must be signed with ES256', detail);
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return new OAuthError(
      'invalid_token',
      `session token is signed with an unknown or retired key (kid); ${AGAIN}`,
      detail,
    );
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new OAuthError('invalid_token', 'session token signature is invalid', detail);
  }
  return new OAuthError('invalid_token', 'session token is malformed (expected a compact JWS)', detail);
}
