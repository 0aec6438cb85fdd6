/**
 * Blended identity with a real OpenID Provider (oidc-provider over TLS, authorization-code flow):
 * the user token is verified by discovery + JWKS over https and mapped to CEL `user`.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAuthError } from './errors.js';
import { httpsFetch } from './fetch.js';
import { type OidcFixture, startOidcProvider } from './oidc-fixture.js';
import { hs256Jwt } from './testing.js';
import { type UserContextSpec, UserTokenVerifier } from './user-token.js';

let idp: OidcFixture;
let other: OidcFixture;
let verifier: UserTokenVerifier;
let spec: UserContextSpec;
let aliceToken: string;
const WHERE = 'AgentIdentity team/support-bot';

beforeAll(async () => {
  idp = await startOidcProvider();
  other = await startOidcProvider();
  verifier = new UserTokenVerifier({ fetch: httpsFetch({ ca: [idp.caPem, other.caPem].join('\n') }) });
  spec = {
    mode: 'Optional',
    trustedIssuers: [{ issuer: idp.issuer, audiences: [idp.clientId], claims: ['email'] }],
  };
  aliceToken = await idp.idToken({
    sub: 'alice',
    groups: ['support', 'eng'],
    department: 'Support',
    email: 'alice@acme.example',
  });
});

afterAll(async () => {
  await idp?.stop();
  await other?.stop();
});

async function refusal(p: Promise<unknown>): Promise<OAuthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OAuthError);
  return err as OAuthError;
}

describe('user tokens from a real OIDC provider', () => {
  it('verifies an ID token via discovery and maps groups, department and configured claims', async () => {
    const user = await verifier.verify(aliceToken, spec, WHERE);
    expect(user).toEqual({
      present: true,
      sub: 'alice',
      issuer: idp.issuer,
      groups: ['support', 'eng'],
      department: 'Support',
      claims: { email: 'alice@acme.example' },
    });
  });

  it('verifies with an explicit jwksUri too', async () => {
    const explicit = {
      trustedIssuers: [{ issuer: idp.issuer, jwksUri: `${idp.issuer}/jwks`, audiences: [idp.clientId] }],
    };
    expect((await verifier.verify(aliceToken, explicit, WHERE)).sub).toBe('alice');
  });

  it('refuses a token from an untrusted issuer', async () => {
    const mallory = await other.idToken({ sub: 'mallory', groups: ['support'] });
    const err = await refusal(verifier.verify(mallory, spec, WHERE));
    expect(err.code).toBe('invalid_grant');
    expect(err.description).toBe(
      `user token issuer is not trusted by ${WHERE} (spec.userContext.trustedIssuers)`,
    );
  });

  it('refuses a token for another audience', async () => {
    const wrongAud = { trustedIssuers: [{ issuer: idp.issuer, audiences: ['some-other-client'] }] };
    const err = await refusal(verifier.verify(aliceToken, wrongAud, WHERE));
    expect(err.description).toContain('audience is not one of the audiences');
  });

  it('refuses an expired token (beyond the 120 s skew) and a token from the future', async () => {
    const { exp, iat } = decodeJwt(aliceToken) as { exp: number; iat: number };
    const late = new UserTokenVerifier({
      fetch: httpsFetch({ ca: idp.caPem }),
      now: () => new Date((exp + 121) * 1000),
    });
    expect((await refusal(late.verify(aliceToken, spec, WHERE))).description).toContain('expired');
    const withinSkew = new UserTokenVerifier({
      fetch: httpsFetch({ ca: idp.caPem }),
      now: () => new Date((exp + 90) * 1000),
    });
    expect((await withinSkew.verify(aliceToken, spec, WHERE)).sub).toBe('alice');
    const early = new UserTokenVerifier({
      fetch: httpsFetch({ ca: idp.caPem }),
      now: () => new Date((iat - 3600) * 1000),
    });
    expect((await refusal(early.verify(aliceToken, spec, WHERE))).description).toContain(
      'issued in the future',
    );
  });

  it('refuses a token whose signature was tampered with', async () => {
    const [h, p, s] = aliceToken.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, groups: ['admin'] })).toString('base64url')}.${s}`;
    expect((await refusal(verifier.verify(forged, spec, WHERE))).description).toBe(
      'user token signature is invalid',
    );
  });

  it('refuses alg none and HS256 user tokens', async () => {
    const [, p] = aliceToken.split('.');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    expect((await refusal(verifier.verify(none, spec, WHERE))).description).toContain(
      'must be signed with one of',
    );
    const jwks = (await (
      await httpsFetch({ ca: idp.caPem })(`${idp.issuer}/jwks`, { method: 'GET' })
    ).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    const hs = hs256Jwt({ kid: jwks.keys[0]!.kid }, decodeJwt(aliceToken), JSON.stringify(jwks.keys[0]));
    expect((await refusal(verifier.verify(hs, spec, WHERE))).description).toContain(
      'must be signed with one of',
    );
  });

  it('refuses to fetch keys from an IdP whose TLS certificate is not trusted', async () => {
    const strict = new UserTokenVerifier({ fetch: httpsFetch() });
    const err = await refusal(strict.verify(aliceToken, spec, WHERE));
    expect(err.code).toBe('temporarily_unavailable');
  });
});
