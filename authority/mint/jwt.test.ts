import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { StaticKeySource } from '../keystore.js';
import { ACCESS_TOKEN_TYP, buildJwtPayload, JwtMinter } from './jwt.js';
import { agent, NOW, policy, provider, request, user } from './testing.js';

const ISSUER = 'https://warden.example.com';
const jwtProvider = (jwt: Record<string, unknown> = {}) => provider({ type: 'JWT', jwt });

describe('buildJwtPayload', () => {
  it('makes the user the subject and the agent the actor when a human is present', () => {
    const p = buildJwtPayload(request({ provider: jwtProvider() }), ISSUER, NOW, 'j1');
    expect(p.sub).toBe('alice');
    expect(p.act).toEqual({ sub: 'system:warden:agent:agents:support-bot' });
    expect(p.client_id).toBe('system:warden:agent:agents:support-bot');
    expect(p).toMatchObject({ iss: ISSUER, jti: 'j1', iat: NOW.getTime() / 1000, nbf: NOW.getTime() / 1000 });
  });

  it('makes the agent the subject, without act, when it acts alone', () => {
    const p = buildJwtPayload(request({ provider: jwtProvider(), user: null }), ISSUER, NOW, 'j1');
    expect(p.sub).toBe('system:warden:agent:agents:support-bot');
    expect(p.act).toBeUndefined();
  });

  it('treats a user with present=false as acting alone', () => {
    const p = buildJwtPayload(
      request({ provider: jwtProvider(), user: user({ present: false }) }),
      ISSUER,
      NOW,
      'j1',
    );
    expect(p.act).toBeUndefined();
  });

  it('scopes the audience to the target unless spec.jwt.audience says otherwise', () => {
    expect(buildJwtPayload(request({ provider: jwtProvider() }), ISSUER, NOW, 'j').aud).toBe(
      'https://jira.example.com/mcp',
    );
    expect(
      buildJwtPayload(request({ provider: jwtProvider({ audience: 'jira' }) }), ISSUER, NOW, 'j').aud,
    ).toBe('jira');
  });

  it.each([
    {
      name: 'provider default 5m',
      policyTtl: undefined,
      providerTtl: undefined,
      agentMax: undefined,
      seconds: 300,
    },
    { name: 'policy shorter', policyTtl: '90s', providerTtl: undefined, agentMax: undefined, seconds: 90 },
    {
      name: 'provider shorter than policy',
      policyTtl: '1h',
      providerTtl: '2m',
      agentMax: undefined,
      seconds: 120,
    },
    { name: 'agent max shortest', policyTtl: '30m', providerTtl: '1h', agentMax: '10m', seconds: 600 },
  ])(
    'TTL is the minimum of policy, provider and agent max: $name',
    ({ policyTtl, providerTtl, agentMax, seconds }) => {
      const p = buildJwtPayload(
        request({
          provider: jwtProvider(providerTtl ? { defaultTTL: providerTtl } : {}),
          agent: agent({ maxCredentialTTL: agentMax }),
          policy: policy({ ttl: policyTtl }),
        }),
        ISSUER,
        NOW,
        'j',
      );
      expect(p.exp - p.iat).toBe(seconds);
    },
  );

  it('computes claims with CEL from provider and policy, the policy winning on conflicts', () => {
    const p = buildJwtPayload(
      request({
        provider: jwtProvider({
          claims: { department: 'user.department', role: "agent.labels['role']", level: '1 + 1' },
        }),
        policy: policy({
          claims: { role: "'escalation'", groups: 'user.groups' },
          scopes: ['read', 'write'],
        }),
      }),
      ISSUER,
      NOW,
      'j',
    );
    expect(p).toMatchObject({
      department: 'customer-care',
      role: 'escalation',
      level: 2,
      groups: ['support'],
      scope: 'read write',
    });
  });

  it('refuses claims that would override what Warden sets', () => {
    expect(() =>
      buildJwtPayload(request({ provider: jwtProvider({ claims: { sub: "'root'" } }) }), ISSUER, NOW, 'j'),
    ).toThrow(/spec\.jwt\.claims\.sub: 'sub' is set by Warden/);
  });

  it('reports a claim that does not compile with its field path', () => {
    expect(() =>
      buildJwtPayload(
        request({ provider: jwtProvider({ claims: { d: 'usr.department' } }) }),
        ISSUER,
        NOW,
        'j',
      ),
    ).toThrow(
      /CredentialProvider agents\/jira spec\.jwt\.claims\.d: undeclared reference to 'usr'.*did you mean 'user'/,
    );
  });

  it('reports a claim that fails at evaluation with its field path and a hint', () => {
    expect(() =>
      buildJwtPayload(
        request({ provider: jwtProvider({ claims: { team: "agent.labels['team']" } }) }),
        ISSUER,
        NOW,
        'j',
      ),
    ).toThrow(/spec\.jwt\.claims\.team: evaluation failed: .*has\(\)/);
  });

  it('reports a malformed TTL with its field path', () => {
    expect(() =>
      buildJwtPayload(request({ provider: jwtProvider({ defaultTTL: '5 minutes' }) }), ISSUER, NOW, 'j'),
    ).toThrow(/spec\.jwt\.defaultTTL: '5 minutes' is not a positive duration/);
  });
});

describe('JwtMinter', () => {
  it('signs with the current Warden key (ES256, at+jwt) and a unique jti per credential', async () => {
    const keys = StaticKeySource.generate();
    const minter = new JwtMinter({ issuer: ISSUER, keys, now: () => NOW });
    const req = request({ provider: jwtProvider() });
    const [a, b] = [await minter.mint(req), await minter.mint(req)];
    expect(a.credential.id).not.toBe(b.credential.id);
    expect(a.revoke).toBeUndefined();
    if (a.credential.kind !== 'headers') throw new Error('expected headers');
    const header = a.credential.headers.Authorization ?? '';
    expect(header).toMatch(/^Bearer /);
    const token = header.slice('Bearer '.length);
    const jwk = keys.jwks().keys[0];
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: ACCESS_TOKEN_TYP, kid: jwk?.kid });
    const { payload } = await jwtVerify(token, await importJWK(jwk as object, 'ES256'), {
      issuer: ISSUER,
      audience: 'https://jira.example.com/mcp',
      currentDate: NOW,
      typ: ACCESS_TOKEN_TYP,
    });
    expect(payload.jti).toBe(a.credential.id);
    expect(a.credential.expiresAt.getTime()).toBe((payload.exp as number) * 1000);
  });

  it('draws a fresh 128-bit jti for every credential, across refills of its random pool', async () => {
    const minter = new JwtMinter({ issuer: ISSUER, keys: StaticKeySource.generate(), now: () => NOW });
    const req = request({ provider: jwtProvider() });
    const ids = new Set<string>();
    for (let i = 0; i < 600; i++) ids.add((await minter.mint(req)).credential.id);
    expect(ids.size).toBe(600);
    for (const id of ids) expect(Buffer.from(id, 'base64url')).toHaveLength(16);
  });

  it('mints from the provider spec as it is now, not as it was at an earlier mint', async () => {
    const minter = new JwtMinter({ issuer: ISSUER, keys: StaticKeySource.generate(), now: () => NOW });
    const claimsOf = async (jwt: Record<string, unknown>) => {
      const { credential } = await minter.mint(request({ provider: jwtProvider(jwt) }));
      if (credential.kind !== 'headers') throw new Error('expected headers');
      const token = (credential.headers.Authorization ?? '').split('.')[1] ?? '';
      return JSON.parse(Buffer.from(token, 'base64url').toString()) as Record<string, unknown>;
    };
    const before = await claimsOf({ audience: 'jira', claims: { team: "'red'" } });
    const after = await claimsOf({ audience: 'jira-v2', claims: { team: "'blue'" }, defaultTTL: '1m' });
    expect([before.aud, before.team]).toEqual(['jira', 'red']);
    expect([after.aud, after.team, (after.exp as number) - (after.iat as number)]).toEqual([
      'jira-v2',
      'blue',
      60,
    ]);
  });

  it('injects with the provider format', async () => {
    const minter = new JwtMinter({ issuer: ISSUER, keys: StaticKeySource.generate(), now: () => NOW });
    const { credential } = await minter.mint(
      request({ provider: provider({ type: 'JWT', inject: { header: 'X-Token', format: 'JWT {token}' } }) }),
    );
    if (credential.kind !== 'headers') throw new Error('expected headers');
    expect(Object.keys(credential.headers)).toEqual(['X-Token']);
    expect(credential.headers['X-Token']).toMatch(/^JWT ey/);
  });

  describe('sender-constrained (spec.jwt.senderConstraint DPoP)', () => {
    const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
    const dpopProvider = (inject?: { header: string; format: string }) =>
      provider({ type: 'JWT', jwt: { senderConstraint: 'DPoP' }, ...(inject ? { inject } : {}) });

    it('binds the token to the broker key (cnf.jkt) and sends it with the DPoP scheme', async () => {
      const keys = StaticKeySource.generate();
      const minter = new JwtMinter({ issuer: ISSUER, keys, now: () => NOW });
      const { credential } = await minter.mint(request({ provider: dpopProvider(), dpopJkt: JKT }));
      if (credential.kind !== 'headers') throw new Error('expected headers');
      expect(Object.keys(credential.headers)).toEqual(['Authorization']);
      const token = /^DPoP (\S+)$/.exec(credential.headers.Authorization ?? '')?.[1] ?? '';
      const { payload } = await jwtVerify(token, await importJWK(keys.jwks().keys[0] as object, 'ES256'), {
        currentDate: NOW,
      });
      expect(payload.cnf).toEqual({ jkt: JKT });
      expect(credential.dpopJkt).toBe(JKT);
    });

    it('uses Authorization: DPoP even when spec.inject keeps its bearer default', async () => {
      const minter = new JwtMinter({ issuer: ISSUER, keys: StaticKeySource.generate(), now: () => NOW });
      const { credential } = await minter.mint(
        request({
          provider: dpopProvider({ header: 'Authorization', format: 'Bearer {token}' }),
          dpopJkt: JKT,
        }),
      );
      if (credential.kind !== 'headers') throw new Error('expected headers');
      expect(credential.headers.Authorization).toMatch(/^DPoP ey/);
    });

    it('refuses (fails closed) when the broker sent no key thumbprint', async () => {
      const minter = new JwtMinter({ issuer: ISSUER, keys: StaticKeySource.generate(), now: () => NOW });
      await expect(minter.mint(request({ provider: dpopProvider() }))).rejects.toMatchObject({
        reason: 'ProofKeyMissing',
        message: expect.stringMatching(/spec\.jwt\.senderConstraint is DPoP.*dpop_jkt/),
      });
    });

    it('a bearer provider ignores a thumbprint the broker sends', async () => {
      const keys = StaticKeySource.generate();
      const minter = new JwtMinter({ issuer: ISSUER, keys, now: () => NOW });
      const { credential } = await minter.mint(request({ provider: jwtProvider(), dpopJkt: JKT }));
      if (credential.kind !== 'headers') throw new Error('expected headers');
      const token = (credential.headers.Authorization ?? '').slice('Bearer '.length);
      const { payload } = await jwtVerify(token, await importJWK(keys.jwks().keys[0] as object, 'ES256'), {
        currentDate: NOW,
      });
      expect(payload.cnf).toBeUndefined();
      expect(credential.dpopJkt).toBeUndefined();
    });
  });
});
