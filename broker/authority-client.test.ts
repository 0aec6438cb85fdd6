import { EmbeddedJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseCredentialAnswer, parseLeaseAnswer, toLocalExpiry } from './authority-client.js';
import { AuthorityUnavailableError, CredentialDeniedError } from './credentials.js';
import { accessTokenHash, DpopKey } from './dpop.js';

const NOW = 1_800_000_000_000;

describe('parseCredentialAnswer: DPoP-bound credentials', () => {
  const key = new DpopKey(() => NOW);
  const answer = (dpop: unknown, headers: Record<string, string> = { Authorization: 'DPoP tok.en.sig' }) =>
    JSON.stringify({
      decision: 'Allow',
      credential: { id: 'jti-1', headers, expiresAt: new Date(NOW + 60_000).toISOString(), dpop },
    });

  it('binds proofs to the broker key, the token (ath) and each request', async () => {
    const c = parseCredentialAnswer(200, answer({ jkt: key.thumbprint }), NOW, undefined, key);
    expect(c.headers).toEqual({ Authorization: 'DPoP tok.en.sig' });
    const url = new URL('http://127.0.0.1:9/mcp?x=1');
    const proof = c.dpop?.proof('post', url) ?? '';
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
    expect(protectedHeader.jwk).toEqual(key.publicJwk);
    expect(payload).toMatchObject({
      htm: 'POST',
      htu: 'http://127.0.0.1:9/mcp',
      iat: NOW / 1000,
      ath: accessTokenHash('tok.en.sig'),
    });
    expect(c.dpop?.proof('POST', url)).not.toBe(proof);
  });

  it('refuses a credential bound to a key this broker does not hold', () => {
    expect(() =>
      parseCredentialAnswer(200, answer({ jkt: new DpopKey().thumbprint }), NOW, undefined, key),
    ).toThrow(/DPoP key this broker does not hold/);
    expect(() => parseCredentialAnswer(200, answer({ jkt: key.thumbprint }), NOW)).toThrow(
      AuthorityUnavailableError,
    );
  });

  it.each([
    ['a Bearer scheme', { Authorization: 'Bearer tok' }],
    ['another header', { 'X-Token': 'DPoP tok' }],
    ['two headers', { Authorization: 'DPoP tok', 'X-Other': 'v' }],
  ])('refuses a DPoP-bound credential sent with %s', (_name, headers) => {
    expect(() =>
      parseCredentialAnswer(200, answer({ jkt: key.thumbprint }, headers), NOW, undefined, key),
    ).toThrow(/not 'Authorization: DPoP <token>'/);
  });
});

describe('parseCredentialAnswer', () => {
  it('reads an issued header credential', () => {
    const body = {
      decision: 'Allow',
      credential: {
        kind: 'headers',
        id: 'jti-1',
        headers: { Authorization: 'Bearer t' },
        expiresAt: new Date(NOW + 60_000).toISOString(),
      },
    };
    expect(parseCredentialAnswer(200, JSON.stringify(body), NOW)).toEqual({
      id: 'jti-1',
      headers: { Authorization: 'Bearer t' },
      expiresAt: NOW + 60_000,
    });
  });

  it('an Allow without a credential injects nothing', () => {
    expect(parseCredentialAnswer(200, '{"decision":"Allow","credential":null}', NOW)).toEqual({
      id: 'none',
      headers: {},
      expiresAt: NOW + 60_000,
    });
  });

  it('a policy denial carries the authority decision as reasons', () => {
    const body = {
      error: 'access_denied',
      error_description: 'denied by AccessPolicy a/b rule 0',
      decision: {
        decision: 'Deny',
        reason: 'DeniedByPolicy',
        policy: 'a/b',
        rule: 0,
        condition: null,
        message: 'denied by AccessPolicy a/b rule 0',
      },
    };
    try {
      parseCredentialAnswer(403, JSON.stringify(body), NOW);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CredentialDeniedError);
      expect((err as CredentialDeniedError).reasons).toEqual([
        { policy: 'a/b', rule: 0, condition: null, message: 'denied by AccessPolicy a/b rule 0' },
      ]);
    }
  });

  it.each([
    [500, '{"error":"server_error"}'],
    [503, 'not json'],
    [429, '{"error":"slow_down"}'],
  ])('status %i means the authority is unavailable', (status, text) => {
    expect(() => parseCredentialAnswer(status, text, NOW)).toThrow(AuthorityUnavailableError);
  });

  it('refuses a malformed credential instead of guessing', () => {
    const body = { decision: 'Allow', credential: { id: 1, headers: { a: 2 }, expiresAt: 'soon' } };
    expect(() => parseCredentialAnswer(200, JSON.stringify(body), NOW)).toThrow(/malformed credential/);
  });

  const pg = { host: 'db.internal', port: 5432, database: 'orders', user: 'warden_x', password: 's3cret-pw' };
  const pgAnswer = (postgresql: unknown) =>
    JSON.stringify({
      decision: 'Allow',
      credential: {
        id: 'warden_x',
        headers: {},
        expiresAt: new Date(NOW + 900_000).toISOString(),
        postgresql,
      },
    });

  it('reads a PostgreSQL login for the local endpoint', () => {
    expect(parseCredentialAnswer(200, pgAnswer(pg), NOW)).toEqual({
      id: 'warden_x',
      headers: {},
      expiresAt: NOW + 900_000,
      postgresql: pg,
    });
  });

  it.each([
    ['no password', { ...pg, password: undefined }],
    ['empty user', { ...pg, user: '' }],
    ['port out of range', { ...pg, port: 70000 }],
    ['port as text', { ...pg, port: '5432' }],
    ['not an object', 'postgres://u:p@h/d'],
    ['null', null],
  ])('refuses a malformed PostgreSQL login (%s) without echoing it', (_name, login) => {
    try {
      parseCredentialAnswer(200, pgAnswer(login), NOW);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AuthorityUnavailableError);
      expect((err as Error).message).toMatch(/malformed credential\.postgresql/);
      expect((err as Error).message).not.toContain('s3cret-pw');
    }
  });
});

describe('toLocalExpiry: credential expiry on the broker clock (clock skew, docs/faults.md)', () => {
  const EXPIRES = NOW + 35_000; // authority clock: 35 s left at NOW
  it.each([
    ['broker 2 min behind', -120_000],
    ['broker 2 min ahead', 120_000],
    ['clocks agree', 0],
  ])('%s: the lifetime left is kept, less the Date header resolution', (_name, skew) => {
    expect(toLocalExpiry(EXPIRES, NOW + skew, NOW)).toBe(NOW + skew + 34_000);
  });

  it.each([
    ['no Date header', undefined],
    ['an unparsable Date header', Number.NaN],
  ])('%s: the expiry as sent', (_name, authorityNow) => {
    expect(toLocalExpiry(EXPIRES, NOW - 120_000, authorityNow)).toBe(EXPIRES);
  });

  it('parseCredentialAnswer applies it to issued credentials', () => {
    const body = {
      decision: 'Allow',
      credential: { id: 'jti-2', headers: { Authorization: 'Bearer t' }, expiresAt: EXPIRES },
    };
    expect(parseCredentialAnswer(200, JSON.stringify(body), NOW - 120_000, NOW).expiresAt).toBe(
      NOW - 120_000 + 34_000,
    );
  });
});

describe('parseLeaseAnswer', () => {
  it('reads granted and resetInMs', () => {
    expect(parseLeaseAnswer('{"granted":5,"resetInMs":4200,"calls":50,"window":"1m"}')).toEqual({
      granted: 5,
      resetInMs: 4200,
    });
  });
  it.each([
    ['not json', 'not JSON'],
    ['{"granted":-1,"resetInMs":10}', 'granted/resetInMs'],
    ['{"granted":1.5,"resetInMs":10}', 'granted/resetInMs'],
    ['{"granted":1}', 'granted/resetInMs'],
    ['{"granted":1,"resetInMs":99999999999}', 'granted/resetInMs'],
  ])('treats %s as the authority being unavailable (fail closed)', (body, says) => {
    expect(() => parseLeaseAnswer(body)).toThrow(AuthorityUnavailableError);
    expect(() => parseLeaseAnswer(body)).toThrow(says);
  });
});
