import { describe, expect, it } from 'vitest';
import { ApiKeyMinter, BasicAuthMinter } from './static.js';
import { agent, NOW, policy, provider, request, secrets } from './testing.js';

const store = secrets({
  'agents/jira-key': { key: 'k-123' },
  'agents/jira-basic': { username: 'svc', password: 'p@ss:word', user2: 'a:b', nl: 'oops\n', alt: 'bob' },
});

const apiKey = (inject?: { header?: string; format?: string }, key = 'key') =>
  provider({
    type: 'APIKey',
    apiKey: { secretRef: { name: 'jira-key', key } },
    ...(inject ? { inject } : {}),
  });
const basic = (secretRef: Record<string, string> = {}, inject?: { header?: string; format?: string }) =>
  provider({
    type: 'BasicAuth',
    basicAuth: { secretRef: { name: 'jira-basic', ...secretRef } },
    ...(inject ? { inject } : {}),
  });

describe('ApiKeyMinter', () => {
  const minter = new ApiKeyMinter(() => NOW);

  it('injects the key with the default bearer format, as a standing secret', async () => {
    const { credential, revoke } = await minter.mint(request({ provider: apiKey(), secrets: store }));
    expect(credential).toMatchObject({
      kind: 'headers',
      headers: { Authorization: 'Bearer k-123' },
      standing: true,
    });
    expect(credential.id).toMatch(/^apikey:agents\/jira-key:[0-9a-f]{12}$/);
    expect(credential.id).not.toContain('k-123');
    expect(revoke).toBeUndefined();
  });

  it('uses spec.inject header and format', async () => {
    const { credential } = await minter.mint(
      request({ provider: apiKey({ header: 'X-Api-Key', format: '{token}' }), secrets: store }),
    );
    expect(credential.kind === 'headers' && credential.headers).toEqual({ 'X-Api-Key': 'k-123' });
  });

  it('bounds caching by the policy TTL and the agent max', async () => {
    const short = await minter.mint(
      request({ provider: apiKey(), secrets: store, policy: policy({ ttl: '2m' }) }),
    );
    expect(short.credential.expiresAt.getTime() - NOW.getTime()).toBe(120_000);
    const capped = await minter.mint(
      request({ provider: apiKey(), secrets: store, agent: agent({ maxCredentialTTL: '30s' }) }),
    );
    expect(capped.credential.expiresAt.getTime() - NOW.getTime()).toBe(30_000);
  });

  it.each([
    {
      name: 'missing Secret',
      p: provider({ type: 'APIKey', apiKey: { secretRef: { name: 'nope', key: 'key' } } }),
      err: /Secret agents\/nope not found/,
    },
    { name: 'missing key', p: apiKey(undefined, 'other'), err: /has no key 'other'/ },
    { name: 'no apiKey block', p: provider({ type: 'APIKey' }), err: /spec\.apiKey\.secretRef is required/ },
    {
      name: 'header name with CRLF',
      p: apiKey({ header: 'X-Key\r\nEvil: 1' }),
      err: /spec\.inject\.header: .* not a valid HTTP header name/,
    },
    {
      name: 'format without placeholder',
      p: apiKey({ format: 'Bearer' }),
      err: /must contain the \{token\} placeholder/,
    },
  ])('rejects $name with a readable error', async ({ p, err }) => {
    await expect(minter.mint(request({ provider: p, secrets: store }))).rejects.toThrow(err);
  });
});

describe('BasicAuthMinter', () => {
  const minter = new BasicAuthMinter(() => NOW);

  it('injects Basic base64(user:pass), even when the CRD defaulted the format to Bearer', async () => {
    for (const inject of [undefined, { header: 'Authorization', format: 'Bearer {token}' }]) {
      const { credential } = await minter.mint(request({ provider: basic({}, inject), secrets: store }));
      const expected = `Basic ${Buffer.from('svc:p@ss:word').toString('base64')}`;
      expect(credential.kind === 'headers' && credential.headers).toEqual({ Authorization: expected });
      expect(credential.standing).toBe(true);
    }
  });

  it('reads custom username/password keys', async () => {
    const { credential } = await minter.mint(
      request({ provider: basic({ usernameKey: 'alt', passwordKey: 'username' }), secrets: store }),
    );
    expect(credential.kind === 'headers' && credential.headers.Authorization).toBe(
      `Basic ${Buffer.from('bob:svc').toString('base64')}`,
    );
  });

  it('rejects a username containing a colon without echoing it', async () => {
    const err = await minter
      .mint(request({ provider: basic({ usernameKey: 'user2' }), secrets: store }))
      .catch((e: Error) => e);
    expect(String(err)).toMatch(/cannot contain ':'/);
    expect(String(err)).not.toContain('a:b');
  });
});

describe('header values', () => {
  it('rejects a Secret value with a newline (header injection) without echoing it', async () => {
    const err = await new ApiKeyMinter(() => NOW)
      .mint(
        request({
          provider: provider({ type: 'APIKey', apiKey: { secretRef: { name: 'jira-basic', key: 'nl' } } }),
          secrets: store,
        }),
      )
      .catch((e: Error) => e);
    expect(String(err)).toMatch(
      /Secret jira-basic key nl is empty or contains control\/non-ASCII characters .*fix the value/,
    );
    expect(String(err)).not.toContain('oops');
  });
});
