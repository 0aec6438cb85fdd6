import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SESSION_TOKEN_TYP } from './constants.js';
import { OAuthError } from './errors.js';
import { signJwt } from './jwt.js';
import { generateStoredKey, loadKey } from './keys.js';
import { StaticKeySource } from './keystore.js';
import { type SessionSubject, Sessions } from './session.js';
import { hs256Jwt, unsignedJwt } from './testing.js';

const ISSUER = 'https://authority.warden-system.svc';
const NOW = new Date('2026-06-01T12:00:00Z');
const subject: SessionSubject = {
  namespace: 'ns',
  agent: 'bot',
  serviceAccount: 'sa',
  pod: 'bot-1',
  podUID: 'uid-1',
};
const keys = new StaticKeySource({ keys: [generateStoredKey(new Date(0), new Date(0))] });
const sessions = new Sessions({ issuer: ISSUER, keys, now: () => NOW });
const nowS = Math.floor(NOW.getTime() / 1000);

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: ISSUER,
    sub: 'system:warden:agent:ns:bot',
    iat: nowS,
    nbf: nowS,
    exp: nowS + 600,
    jti: 'j1',
    warden: subject,
    ...overrides,
  };
}

async function rejection(token: string): Promise<OAuthError> {
  const err = await sessions.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OAuthError);
  return err as OAuthError;
}

describe('session tokens', () => {
  it('issues a 10-minute ES256 token bound to the pod that verifies', async () => {
    const issued = sessions.issue(subject);
    expect(issued.expiresIn).toBe(600);
    const [header] = issued.token.split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({
      alg: 'ES256',
      typ: SESSION_TOKEN_TYP,
      kid: keys.jwks().keys[0]!.kid,
    });
    const verified = await sessions.verify(issued.token);
    expect(verified.warden).toEqual(subject);
    expect(verified.aud).toBe(ISSUER);
    expect(verified.exp - verified.iat).toBe(600);
  });

  const key = keys.signingKey();
  const publicPem = createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' }).toString();
  const header = { typ: SESSION_TOKEN_TYP, kid: key.kid };
  const otherKey = loadKey({ ...generateStoredKey(NOW, NOW), kid: 'unknown-kid' });

  it.each([
    ['alg none', () => unsignedJwt(header, claims()), 'must be signed with ES256'],
    [
      'HS256 keyed with the public key PEM (algorithm confusion)',
      () => hs256Jwt(header, claims(), publicPem),
      'ES256',
    ],
    [
      'HS256 keyed with the public JWK',
      () => hs256Jwt(header, claims(), JSON.stringify(key.publicJwk)),
      'ES256',
    ],
    ['unknown kid', () => signJwt(otherKey, SESSION_TOKEN_TYP, claims()), 'unknown or retired key'],
    [
      'known kid but signed by another key',
      () => signJwt({ ...otherKey, kid: key.kid }, SESSION_TOKEN_TYP, claims()),
      'signature is invalid',
    ],
    ['expired', () => signJwt(key, SESSION_TOKEN_TYP, claims({ exp: nowS - 31 })), 'expired'],
    ['not yet valid', () => signJwt(key, SESSION_TOKEN_TYP, claims({ nbf: nowS + 120 })), 'not valid yet'],
    [
      'wrong audience',
      () => signJwt(key, SESSION_TOKEN_TYP, claims({ aud: 'https://jira.example.com' })),
      '(aud)',
    ],
    [
      'wrong issuer',
      () => signJwt(key, SESSION_TOKEN_TYP, claims({ iss: 'https://evil.example.com' })),
      '(iss)',
    ],
    ['another Warden JWT type (a minted credential)', () => signJwt(key, 'JWT', claims()), '(typ)'],
    [
      'missing warden claims',
      () => signJwt(key, SESSION_TOKEN_TYP, claims({ warden: { agent: 'x' } })),
      'warden claims',
    ],
    ['garbage', () => 'not-a-jwt', 'malformed'],
  ])('rejects %s', async (_name, make, message) => {
    const err = await rejection(make());
    expect(err.code).toBe('invalid_token');
    expect(err.status).toBe(401);
    expect(err.description).toContain(message);
  });

  it('accepts a token within the clock skew', async () => {
    await expect(
      sessions.verify(signJwt(key, SESSION_TOKEN_TYP, claims({ exp: nowS - 10 }))),
    ).resolves.toBeDefined();
  });
});
