import { describe, expect, it } from 'vitest';
import {
  CredentialCache,
  type CredentialRequest,
  ExpiringCache,
  type IssuedCredential,
  userKey,
} from './credentials.js';

const req = (over: Partial<CredentialRequest> = {}): CredentialRequest => ({
  target: 'jira',
  kind: 'mcp',
  tool: 'jira.search',
  userToken: null,
  context: null,
  requestId: 'r',
  ...over,
});

describe('ExpiringCache', () => {
  it('serves until the margin before expiry, then loads again', async () => {
    let now = 0;
    let loads = 0;
    const cache = new ExpiringCache<{ expiresAt: number; n: number }>(() => now, 30_000);
    const load = async () => ({ expiresAt: now + 60_000, n: ++loads });
    expect((await cache.get('k', load)).n).toBe(1);
    now = 29_999;
    expect((await cache.get('k', load)).n).toBe(1);
    now = 30_001;
    expect((await cache.get('k', load)).n).toBe(2);
  });

  it('shares one load between concurrent misses and does not cache failures', async () => {
    let loads = 0;
    const cache = new ExpiringCache<{ expiresAt: number }>(() => 0, 0);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const load = async () => {
      loads++;
      await gate;
      return { expiresAt: 1000 };
    };
    const both = Promise.all([cache.get('k', load), cache.get('k', load)]);
    release();
    await both;
    expect(loads).toBe(1);
    await expect(cache.get('x', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('x', async () => ({ expiresAt: 1000 }))).toEqual({ expiresAt: 1000 });
  });

  it('does not keep credentials that are already inside the margin', async () => {
    let loads = 0;
    const cache = new ExpiringCache<{ expiresAt: number }>(() => 0, 30_000);
    const load = async () => ({ expiresAt: 10_000, n: ++loads });
    await cache.get('k', load);
    await cache.get('k', load);
    expect(loads).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe('CredentialCache', () => {
  it('keys by provider, user and scope — never by the token itself', async () => {
    const issued: CredentialRequest[] = [];
    const cache = new CredentialCache(
      {
        issue: async (r): Promise<IssuedCredential> => {
          issued.push(r);
          return {
            id: String(issued.length),
            headers: { Authorization: `Bearer t${issued.length}` },
            expiresAt: Date.now() + 600_000,
          };
        },
      },
      Date.now,
    );
    await cache.get(req(), 'p#0');
    await cache.get(req({ tool: 'jira.get_issue' }), 'p#0');
    await cache.get(req({ userToken: 'alice.jwt' }), 'p#0');
    await cache.get(req(), 'p#1');
    await cache.get(req({ target: 'wiki' }), 'p#0');
    expect(issued.length).toBe(4);
    cache.clear();
    await cache.get(req(), 'p#0');
    expect(issued.length).toBe(5);
  });

  it('userKey is a digest', () => {
    expect(userKey(null)).toBe('-');
    expect(userKey('secret.jwt')).not.toContain('secret');
    expect(userKey('secret.jwt')).toHaveLength(43);
  });
});
