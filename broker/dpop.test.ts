import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { upstreamCredentialHeaders } from './access.js';
import { accessTokenHash, DPOP_PROOF_TYP, DpopKey, jwkThumbprint, proofTargetUri } from './dpop.js';

describe('DpopKey', () => {
  it('publishes only the public key, and its RFC 7638 thumbprint agrees with jose', async () => {
    const key = new DpopKey();
    expect(Object.keys(key.publicJwk).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    expect(key.thumbprint).toBe(await calculateJwkThumbprint(key.publicJwk, 'sha256'));
    expect(jwkThumbprint(key.publicJwk)).toBe(key.thumbprint);
    expect(JSON.stringify(key)).not.toMatch(/"d"/);
  });

  it('signs a proof jose verifies with the embedded key: typ, alg, htm, htu, iat, jti, ath', async () => {
    const key = new DpopKey(
      () => 1_800_000_000_500,
      () => 'id-0123456789abcdef',
    );
    const proof = key.proof({ htm: 'post', url: new URL('https://api.test:8443/v1/x?q=1#f'), ath: 'ATH' });
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
      typ: DPOP_PROOF_TYP,
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk });
    expect(payload).toEqual({
      jti: 'id-0123456789abcdef',
      htm: 'POST',
      htu: 'https://api.test:8443/v1/x',
      iat: 1_800_000_000,
      ath: 'ATH',
    });
  });

  it('gives every proof its own jti', () => {
    const key = new DpopKey();
    const url = new URL('http://127.0.0.1/mcp');
    const jtis = new Set(
      Array.from({ length: 50 }, () => {
        const payload = key.proof({ htm: 'POST', url, ath: 'a' }).split('.')[1]!;
        return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { jti: string }).jti;
      }),
    );
    expect(jtis.size).toBe(50);
  });

  it('two brokers hold two keys', () => {
    expect(new DpopKey().thumbprint).not.toBe(new DpopKey().thumbprint);
  });
});

describe('accessTokenHash and proofTargetUri', () => {
  it('ath is the base64url SHA-256 of the token (RFC 9449 §4.2)', () => {
    // echo -n 'abc' | openssl dgst -sha256 -binary | base64url
    expect(accessTokenHash('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });
  it('htu drops query and fragment, keeps scheme, host, port and path', () => {
    expect(proofTargetUri(new URL('http://h:81/a/b?c=d#e'))).toBe('http://h:81/a/b');
  });
});

describe('upstreamCredentialHeaders', () => {
  const url = new URL('http://127.0.0.1:9/mcp');
  it('adds a fresh DPoP proof for this method and URL to a bound credential', () => {
    const calls: string[] = [];
    const headers = upstreamCredentialHeaders(
      {
        id: 'j',
        headers: { Authorization: 'DPoP t' },
        expiresAt: 0,
        dpop: { proof: (htm, u) => `proof-${calls.push(`${htm} ${u.href}`)}` },
      },
      'GET',
      url,
    );
    expect(headers).toEqual([
      ['Authorization', 'DPoP t'],
      ['DPoP', 'proof-1'],
    ]);
    expect(calls).toEqual(['GET http://127.0.0.1:9/mcp']);
  });
  it('sends a bearer credential as issued, without a proof', () => {
    expect(
      upstreamCredentialHeaders(
        { id: 'j', headers: { Authorization: 'Bearer t' }, expiresAt: 0 },
        'GET',
        url,
      ),
    ).toEqual([['Authorization', 'Bearer t']]);
  });
});
