import { describe, expect, it } from 'vitest';
import { clientSecretBasic, exchangeAssertions, parseTokenResponse, requestedScopes } from './oauth2.js';
import { NOW, provider, request } from './testing.js';

const WHERE = 'CredentialProvider agents/idp';
const URL_ = 'https://idp.example.com/token';

describe('parseTokenResponse', () => {
  it('accepts a bearer token response', () => {
    expect(
      parseTokenResponse(
        200,
        JSON.stringify({ access_token: 't', token_type: 'bearer', expires_in: 60, scope: 'a' }),
        WHERE,
        URL_,
      ),
    ).toEqual({ access_token: 't', token_type: 'bearer', expires_in: 60, scope: 'a' });
  });

  it.each([
    {
      name: 'OAuth error',
      status: 400,
      body: '{"error":"invalid_grant","error_description":"nope"}',
      err: /answered 400 \(invalid_grant: nope\)/,
    },
    {
      name: 'non-JSON error',
      status: 502,
      body: '<html>bad gateway</html>',
      err: /answered 502 \(no OAuth error body\)/,
    },
    {
      name: 'missing access_token',
      status: 200,
      body: '{"token_type":"Bearer"}',
      err: /without an access_token/,
    },
    { name: 'not JSON', status: 200, body: 'ok', err: /without an access_token/ },
    {
      name: 'N_A token type',
      status: 200,
      body: '{"access_token":"t","token_type":"N_A"}',
      err: /token_type 'N_A'; Warden injects Bearer tokens only/,
    },
    {
      name: 'control characters in upstream text',
      status: 400,
      body: '{"error":"x\\r\\nSet-Cookie: y"}',
      err: /\(x {2}Set-Cookie: y\)/,
    },
  ])('rejects $name with the provider and URL in the message', ({ status, body, err }) => {
    expect(() => parseTokenResponse(status, body, WHERE, URL_)).toThrow(err);
    expect(() => parseTokenResponse(status, body, WHERE, URL_)).toThrow(
      /CredentialProvider agents\/idp: token endpoint https:\/\/idp\.example\.com\/token/,
    );
  });

  it('ignores a non-positive expires_in', () => {
    expect(
      parseTokenResponse(200, '{"access_token":"t","token_type":"Bearer","expires_in":0}', WHERE, URL_)
        .expires_in,
    ).toBeUndefined();
  });
});

describe('clientSecretBasic', () => {
  it('form-urlencodes both parts before base64 (RFC 6749 §2.3.1)', () => {
    const header = clientSecretBasic('my client', 'p:w/d');
    expect(Buffer.from(header.replace('Basic ', ''), 'base64').toString()).toBe('my+client:p%3Aw%2Fd');
  });
});

describe('requestedScopes', () => {
  it('prefers the rule scopes, falls back to the provider', () => {
    expect(requestedScopes(['a'], ['b', 'c'])).toEqual(['a']);
    expect(requestedScopes([], ['b'])).toEqual(['b']);
    expect(requestedScopes(undefined, undefined)).toEqual([]);
  });
});

describe('exchangeAssertions', () => {
  const p = provider({ type: 'OAuth2TokenExchange' });
  let n = 0;
  const ids = () => `id${++n}`;

  it('with a human: the subject is the user (act = agent), the actor is the agent', () => {
    const { subject, actor } = exchangeAssertions(request({ provider: p }), URL_, 'https://warden', NOW, ids);
    expect(subject).toMatchObject({
      sub: 'alice',
      act: { sub: 'system:warden:agent:agents:support-bot' },
      aud: URL_,
      iss: 'https://warden',
    });
    expect(actor).toMatchObject({ sub: 'system:warden:agent:agents:support-bot', aud: URL_ });
    expect((subject.exp as number) - (subject.iat as number)).toBe(60);
    expect(subject.jti).not.toBe(actor?.jti);
  });

  it('alone: the agent is the subject and there is no actor', () => {
    const { subject, actor } = exchangeAssertions(
      request({ provider: p, user: null }),
      URL_,
      'https://warden',
      NOW,
      ids,
    );
    expect(subject.sub).toBe('system:warden:agent:agents:support-bot');
    expect(subject.act).toBeUndefined();
    expect(actor).toBeUndefined();
  });
});
