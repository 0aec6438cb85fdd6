/**
 * The target-side verifier against proofs made by the broker's own signer (broker/dpop.ts, node:crypto)
 * and tokens signed like the authority's (ES256, at+jwt, cnf.jkt): two implementations that must
 * agree. Every way to misuse a leaked token or proof gets its own case.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, exportJWK, type JWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { accessTokenHash, DpopKey } from '../broker/dpop.js';
import { createWardenTokenVerifier, ReplayCache, type RequestToVerify, TokenRefused } from './dpop-target.js';

const ISSUER = 'https://warden-authority.test';
const AUDIENCE = 'jira-mcp';
const URL_MCP = new URL('http://127.0.0.1:8080/mcp');

const warden = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const wardenJwk = { ...(await exportJWK(warden.publicKey)), kid: 'k1', alg: 'ES256' } as JWK;
const jwks = createLocalJWKSet({ keys: [wardenJwk] });

/** A Warden access token, bound to `jkt` when given. */
async function token(jkt?: string, over: { issuerKey?: typeof warden.privateKey; aud?: string } = {}) {
  return new SignJWT({ sub: 'system:serviceaccount:agents:bot', ...(jkt ? { cnf: { jkt } } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience(over.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .setJti(crypto.randomUUID())
    .sign(over.issuerKey ?? warden.privateKey);
}

function verifier(over: { requireDpop?: boolean; now?: () => Date } = {}) {
  return createWardenTokenVerifier({
    issuer: ISSUER,
    jwks,
    audience: AUDIENCE,
    requireDpop: over.requireDpop ?? true,
    replayCache: new ReplayCache(),
    ...(over.now ? { now: over.now } : {}),
  });
}

function req(authorization: string | undefined, dpop: string[] | undefined, method = 'POST', url = URL_MCP) {
  return { method, url, authorization, dpop } satisfies RequestToVerify;
}

async function refusal(p: Promise<unknown>): Promise<TokenRefused> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenRefused);
  return err as TokenRefused;
}

const broker = new DpopKey();
const bound = await token(broker.thumbprint);
const proofFor = (tok: string, method = 'POST', url = URL_MCP, key = broker) =>
  key.proof({ htm: method, url, ath: accessTokenHash(tok) });

describe('a DPoP-bound Warden token at the target', () => {
  it('is accepted with a fresh proof from the bound key, for this method and URL', async () => {
    const v = verifier();
    const r = await v(req(`DPoP ${bound}`, [proofFor(bound)]));
    expect(r.jkt).toBe(broker.thumbprint);
    expect(r.claims.sub).toBe('system:serviceaccount:agents:bot');
  });

  it('ignores the query string in htu (RFC 9449 §4.2)', async () => {
    const v = verifier();
    const withQuery = new URL(`${URL_MCP.href}?page=2`);
    await expect(
      v(req(`DPoP ${bound}`, [proofFor(bound, 'GET', withQuery)], 'GET', withQuery)),
    ).resolves.toBeTruthy();
  });

  it('refuses the token without a proof', async () => {
    const e = await refusal(verifier()(req(`DPoP ${bound}`, undefined)));
    expect(e.error).toBe('invalid_dpop_proof');
    expect(e.message).toMatch(/exactly one DPoP header, got 0/);
  });

  it('refuses two proofs', async () => {
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [proofFor(bound), proofFor(bound)])));
    expect(e.message).toMatch(/exactly one DPoP header, got 2/);
  });

  it('refuses the token presented as a bearer token', async () => {
    const e = await refusal(verifier({ requireDpop: false })(req(`Bearer ${bound}`, undefined)));
    expect(e.error).toBe('invalid_token');
    expect(e.message).toMatch(/DPoP-bound/);
  });

  it('refuses a proof signed by another key (the thief has the token, not the broker key)', async () => {
    const thief = new DpopKey();
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [proofFor(bound, 'POST', URL_MCP, thief)])));
    expect(e.error).toBe('invalid_token');
    expect(e.message).toMatch(/cnf\.jkt/);
  });

  it('refuses a proof made for another URL', async () => {
    const other = new URL('http://127.0.0.1:8080/admin');
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [proofFor(bound, 'POST', other)])));
    expect(e.message).toMatch(/htu/);
  });

  it('refuses a proof made for another method', async () => {
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [proofFor(bound, 'GET')], 'DELETE')));
    expect(e.message).toMatch(/htm 'GET'/);
  });

  it('refuses a proof made for another token (ath)', async () => {
    const other = await token(broker.thumbprint);
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [proofFor(other)])));
    expect(e.message).toMatch(/ath/);
  });

  it('refuses a replayed proof, and the first use was accepted', async () => {
    const v = verifier();
    const proof = proofFor(bound);
    await v(req(`DPoP ${bound}`, [proof]));
    const e = await refusal(v(req(`DPoP ${bound}`, [proof])));
    expect(e.message).toMatch(/replay/);
  });

  it('a refused request does not burn the proof id', async () => {
    const v = verifier();
    const proof = proofFor(bound);
    await refusal(v(req(`DPoP ${bound}`, [proof], 'GET')));
    await expect(v(req(`DPoP ${bound}`, [proof]))).resolves.toBeTruthy();
  });

  it('refuses a proof older than the clock tolerance', async () => {
    const old = new DpopKey(() => Date.now() - 10 * 60_000);
    const tok = await token(old.thumbprint);
    const e = await refusal(verifier()(req(`DPoP ${tok}`, [proofFor(tok, 'POST', URL_MCP, old)])));
    expect(e.message).toMatch(/iat/);
  });

  it('refuses an unbound token with a DPoP scheme and a valid proof', async () => {
    const unbound = await token();
    const e = await refusal(verifier()(req(`DPoP ${unbound}`, [proofFor(unbound)])));
    expect(e.message).toMatch(/cnf\.jkt/);
  });

  it('refuses a token not signed by Warden', async () => {
    const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await token(broker.thumbprint, { issuerKey: forger.privateKey });
    const e = await refusal(verifier()(req(`DPoP ${forged}`, [proofFor(forged)])));
    expect(e.error).toBe('invalid_token');
  });

  it('refuses a token for another audience', async () => {
    const tok = await token(broker.thumbprint, { aud: 'other-target' });
    const e = await refusal(verifier()(req(`DPoP ${tok}`, [proofFor(tok)])));
    expect(e.message).toMatch(/aud/);
  });

  it('refuses a bearer token at a target that requires DPoP', async () => {
    const e = await refusal(verifier()(req(`Bearer ${await token()}`, undefined)));
    expect(e.message).toMatch(/only DPoP-bound/);
  });

  it('accepts an unbound bearer token where DPoP is not required', async () => {
    const r = await verifier({ requireDpop: false })(req(`Bearer ${await token()}`, undefined));
    expect(r.jkt).toBeUndefined();
  });
});

describe('malformed proofs', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sign = async (header: Record<string, unknown>, claims: Record<string, unknown> = {}) =>
    new SignJWT({
      jti: crypto.randomUUID(),
      htm: 'POST',
      htu: URL_MCP.href,
      iat: Math.floor(Date.now() / 1000),
      ath: accessTokenHash(bound),
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey), ...header })
      .sign(key.privateKey);

  it.each([
    ['typ JWT instead of dpop+jwt', { typ: 'JWT' }, /typ/],
    ['no embedded key', { jwk: undefined }, /public key/],
    ['a private key embedded', { jwk: 'private' }, /public key/],
  ])('%s', async (_name, header: Record<string, unknown>, message) => {
    const h = header.jwk === 'private' ? { ...header, jwk: await exportJWK(key.privateKey) } : header;
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [await sign(h)])));
    expect(e.error).toBe('invalid_dpop_proof');
    expect(e.message).toMatch(message);
  });

  it('refuses alg none', async () => {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const none = `${enc({ alg: 'none', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })}.${enc({ htm: 'POST' })}.`;
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [none])));
    expect(e.error).toBe('invalid_dpop_proof');
  });

  it('refuses a proof without jti', async () => {
    const e = await refusal(verifier()(req(`DPoP ${bound}`, [await sign({}, { jti: undefined })])));
    expect(e.message).toMatch(/jti/);
  });

  it('the challenge names the error and the accepted algorithms', () => {
    expect(new TokenRefused('invalid_dpop_proof', 'proof "x" rejected').wwwAuthenticate).toBe(
      `DPoP error="invalid_dpop_proof", error_description="proof 'x' rejected", algs="ES256"`,
    );
  });
});
