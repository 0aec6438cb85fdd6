import { describe, expect, it } from 'vitest';
import type { CredentialProviderSpec } from '../core/api/generated/credential-provider.js';
import { createMetrics, type WardenMetrics } from '../observability/metrics.js';
import {
  CredentialRevoker,
  failureMessage,
  IssuedCredentials,
  type RevocationProvider,
} from './revocation.js';

const NOW = 1_000_000;
const clock = () => NOW;

describe('IssuedCredentials', () => {
  it('returns only unexpired credentials of the agent', () => {
    const reg = new IssuedCredentials(100, clock);
    reg.remember('ns', 'bot', { id: 'a', type: 'JWT', provider: 'ns/api', expiresAt: NOW + 1 });
    reg.remember('ns', 'bot', { id: 'b', type: 'JWT', provider: 'ns/api', expiresAt: NOW - 1 });
    reg.remember('ns', 'other', { id: 'c', type: 'JWT', provider: 'ns/api', expiresAt: NOW + 1 });
    expect(reg.outstanding('ns', 'bot').map((c) => c.id)).toEqual(['a']);
  });

  it('stays within its bound, forgetting the soonest-expiring first and counting them', () => {
    const reg = new IssuedCredentials(2, clock);
    for (const [id, ttl] of [
      ['x', 30],
      ['y', 10],
      ['z', 20],
    ] as const) {
      reg.remember('ns', 'bot', { id, type: 'JWT', provider: 'ns/api', expiresAt: NOW + ttl });
    }
    expect(reg.count()).toBe(2);
    expect(reg.forgotten).toBe(1);
    expect(
      reg
        .outstanding('ns', 'bot')
        .map((c) => c.id)
        .sort(),
    ).toEqual(['x', 'z']);
  });
});

const pgProvider: RevocationProvider = {
  namespace: 'ns',
  name: 'db',
  spec: { type: 'PostgreSQL', target: { url: 'postgres://db' } } as CredentialProviderSpec,
};

/** A stand-in database: roles of the agent, revoked ones stay listed (as in PostgreSQL). */
function fakePostgres(roles: string[], fail = false) {
  const revoked = new Set<string>();
  return {
    revoked,
    revokeAgent: async () => {
      if (fail) throw new Error('CredentialProvider ns/db: connection refused');
      for (const r of roles) revoked.add(r);
      return roles;
    },
  };
}

/** warden_revocations_total samples with a non-zero value, as `type/result` → count. */
async function revocations(m: WardenMetrics): Promise<Record<string, number>> {
  const metric = await m.registry.getSingleMetric('warden_revocations_total')?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? []) if (v.value > 0) out[`${v.labels.type}/${v.labels.result}`] = v.value;
  return out;
}

describe('CredentialRevoker', () => {
  const secrets = { read: async () => 'unused' };

  it('revokes database roles, upstream tokens and counts JWTs; running again counts the same', async () => {
    const pg = fakePostgres(['w_bot_1', 'w_bot_2']);
    const issued = new IssuedCredentials(100, clock);
    const upstream: string[] = [];
    issued.remember('ns', 'bot', {
      id: 'oauth-1',
      type: 'OAuth2ClientCredentials',
      provider: 'ns/idp',
      expiresAt: NOW + 60,
      revoke: async () => {
        upstream.push('oauth-1');
      },
    });
    issued.remember('ns', 'bot', { id: 'jti-1', type: 'JWT', provider: 'ns/api', expiresAt: NOW + 60 });
    const metrics = createMetrics();
    const revoker = new CredentialRevoker({ postgres: pg, secrets, issued, metrics });
    expect(await revoker.revokeAgent('ns', 'bot', [pgProvider])).toEqual({ revoked: 4, failures: [] });
    expect(await revocations(metrics)).toEqual({
      'PostgreSQL/success': 2,
      'OAuth2ClientCredentials/success': 1,
      'JWT/success': 1,
    });
    expect(upstream).toEqual(['oauth-1']);
    expect([...pg.revoked]).toEqual(['w_bot_1', 'w_bot_2']);
    // A replica finishing the same revocation: the database still lists the roles, the upstream
    // token is not revoked twice.
    expect(await revoker.revokeAgent('ns', 'bot', [pgProvider])).toEqual({ revoked: 2, failures: [] });
    expect(upstream).toEqual(['oauth-1']);
  });

  it('reports failures by source and keeps failed upstream tokens for the retry', async () => {
    const issued = new IssuedCredentials(100, clock);
    let attempts = 0;
    issued.remember('ns', 'bot', {
      id: 'oauth-1',
      type: 'OAuth2TokenExchange',
      provider: 'ns/idp',
      expiresAt: NOW + 60,
      revoke: async () => {
        attempts++;
        throw new Error('revocation endpoint answered 503');
      },
    });
    const metrics = createMetrics();
    const revoker = new CredentialRevoker({ postgres: fakePostgres([], true), secrets, issued, metrics });
    const out = await revoker.revokeAgent('ns', 'bot', [pgProvider]);
    expect(await revocations(metrics)).toEqual({ 'PostgreSQL/failure': 1, 'OAuth2TokenExchange/failure': 1 });
    expect(out.revoked).toBe(0);
    expect(out.failures.map((f) => f.what)).toEqual([
      'CredentialProvider ns/db',
      'credential oauth-1 (ns/idp)',
    ]);
    // The provider is named once (the reconciler prints `what: message`).
    expect(out.failures[0]?.message).toBe('connection refused');
    expect(out.failures[1]?.message).toBe('revocation endpoint answered 503');
    await revoker.revokeAgent('ns', 'bot', [pgProvider]);
    expect(attempts).toBe(2);
  });

  it('ignores providers of other types and other namespaces', async () => {
    const pg = fakePostgres(['w_bot_1']);
    const revoker = new CredentialRevoker({
      postgres: pg,
      secrets,
      issued: new IssuedCredentials(10, clock),
    });
    const other = [
      { ...pgProvider, namespace: 'elsewhere' },
      { ...pgProvider, spec: { type: 'JWT', target: { url: 'https://x' } } as CredentialProviderSpec },
    ];
    expect(await revoker.revokeAgent('ns', 'bot', other)).toEqual({ revoked: 0, failures: [] });
  });
});

describe('failureMessage', () => {
  it.each([
    [
      'strips the source it is reported under',
      'CredentialProvider ns/db: database x is unreachable',
      'database x is unreachable',
    ],
    [
      'keeps a message that names something else',
      'CredentialProvider ns/other: boom',
      'CredentialProvider ns/other: boom',
    ],
    ['keeps a plain message', 'socket hang up', 'socket hang up'],
  ])('%s', (_, text, expected) => {
    expect(failureMessage('CredentialProvider ns/db', new Error(text))).toBe(expected);
  });

  it('bounds the length and describes non-Errors', () => {
    expect(failureMessage('x', 'y'.repeat(2000))).toHaveLength(512);
    expect(failureMessage('x', 42)).toBe('42');
  });
});
