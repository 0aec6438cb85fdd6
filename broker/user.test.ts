import { describe, expect, it } from 'vitest';
import { UserTokenRejectedError } from './credentials.js';
import { snapshot } from './testing.js';
import { resolveUser } from './user.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: Record<string, unknown>) => `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims)}.sig`;
const NOW = 1_800_000_000_000;
const snap = snapshot({
  trustedIssuers: [{ issuer: 'https://idp.example', audiences: ['warden'], claims: ['level'] }],
});
const good = {
  iss: 'https://idp.example',
  aud: 'warden',
  sub: 'alice',
  exp: NOW / 1000 + 600,
  groups: ['support'],
  department: 'ops',
  level: 3,
  secret: 'x',
};

describe('resolveUser', () => {
  it('maps claims through the trusted issuer settings', () => {
    const r = resolveUser(jwt(good), snap, NOW);
    expect(r.user).toEqual({
      sub: 'alice',
      issuer: 'https://idp.example',
      groups: ['support'],
      department: 'ops',
      claims: { level: 3 },
    });
    expect(r.validUntil).toBe(NOW + 5 * 60_000);
  });

  it.each([
    ['not a JWT', 'abc', /not a JWT/],
    ['claims not JSON', 'a.bm90LWpzb24.c', /not a JWT/],
    ['claims an array', `a.${Buffer.from('[1]').toString('base64url')}.c`, /not a JWT/],
    ['untrusted issuer', jwt({ ...good, iss: 'https://evil.example' }), /not a trusted issuer/],
    ['wrong audience', jwt({ ...good, aud: 'other' }), /audience/],
    ['expired', jwt({ ...good, exp: NOW / 1000 - 3600 }), /expired/],
    ['not yet valid', jwt({ ...good, nbf: NOW / 1000 + 3600 }), /not valid yet/],
    ['no sub', jwt({ ...good, sub: '' }), /no sub/],
  ])('rejects %s', (_n, token, message) => {
    expect(() => resolveUser(token, snap, NOW)).toThrow(UserTokenRejectedError);
    expect(() => resolveUser(token, snap, NOW)).toThrow(message);
  });
});

describe('resolveUser: a Warden token from the agent that called this one', () => {
  const WARDEN = 'https://warden.example';
  const wsnap = snapshot({
    trustedIssuers: [{ issuer: WARDEN, audiences: ['urn:warden:agent:ns:researcher'] }],
  });
  const base = { iss: WARDEN, aud: 'urn:warden:agent:ns:researcher', exp: NOW / 1000 + 300 };

  it('reads the human and the agents before this one', () => {
    const r = resolveUser(
      jwt({ ...base, sub: 'alice', act: { sub: 'system:warden:agent:ns:planner' } }),
      wsnap,
      NOW,
      WARDEN,
    );
    expect(r.user?.sub).toBe('alice');
    expect(r.chain).toEqual([{ namespace: 'ns', name: 'planner' }]);
  });

  it('has no user when the chain began with an agent acting alone', () => {
    const r = resolveUser(jwt({ ...base, sub: 'system:warden:agent:ns:planner' }), wsnap, NOW, WARDEN);
    expect(r.user).toBeNull();
    expect(r.chain).toEqual([{ namespace: 'ns', name: 'planner' }]);
  });

  it('refuses a chain it cannot read, saying why', () => {
    expect(() =>
      resolveUser(jwt({ ...base, sub: 'alice', act: { sub: 'mallory' } }), wsnap, NOW, WARDEN),
    ).toThrow('delegation chain refused: act.sub at depth 1 is not a Warden agent');
  });

  it("reads no chain from another issuer's token, even one with act claims", () => {
    const r = resolveUser(
      jwt({ ...good, act: { sub: 'system:warden:agent:ns:planner' } }),
      snap,
      NOW,
      WARDEN,
    );
    expect(r.chain).toBeUndefined();
    expect(r.user?.sub).toBe('alice');
  });
});
