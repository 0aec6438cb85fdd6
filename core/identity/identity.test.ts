import { describe, expect, it } from 'vitest';
import { agentContext, agentSubject, delegation, parseAgentSubject, podImages } from './agent.js';
import { checkAttestationConditions, imageAllowed } from './attestation.js';
import {
  AGENT_ACTING_ALONE,
  auditUser,
  checkUserMode,
  NO_USER,
  USER_LIMITS,
  userFromClaims,
} from './user.js';

const ISSUER = 'https://idp.example.com';

describe('userFromClaims', () => {
  it('maps sub, groups, department and only the configured extra claims', () => {
    const user = userFromClaims(
      { sub: 'alice', groups: ['support', 'eng'], department: 'Support', email: 'a@x', secret: 's' },
      ISSUER,
      { claims: ['email'] },
    );
    expect(user).toEqual({
      present: true,
      sub: 'alice',
      issuer: ISSUER,
      groups: ['support', 'eng'],
      department: 'Support',
      claims: { email: 'a@x' },
    });
  });

  it('honours custom claim names, including nested paths', () => {
    const user = userFromClaims(
      { sub: 'bob', realm_access: { roles: ['admin'] }, org: { dept: 'Finance' } },
      ISSUER,
      { groupsClaim: 'realm_access.roles', departmentClaim: 'org.dept' },
    );
    expect(user.groups).toEqual(['admin']);
    expect(user.department).toBe('Finance');
  });

  it.each([
    ['a space separated string', 'a b', ['a', 'b']],
    ['a number', 42, []],
    ['a list with non-strings', ['a', 1, null, ''], ['a']],
    ['missing', undefined, []],
  ])('reads groups given as %s', (_name, groups, want) => {
    expect(userFromClaims({ sub: 'x', groups }, ISSUER, {}).groups).toEqual(want);
  });

  it('bounds hostile claims: group count, string length, claim size', () => {
    const user = userFromClaims(
      {
        sub: 'x'.repeat(5000),
        groups: Array.from({ length: 1000 }, (_, i) => `g${i}`),
        big: 'y'.repeat(USER_LIMITS.maxClaimBytes + 1),
      },
      ISSUER,
      { claims: ['big'] },
    );
    expect(user.sub).toHaveLength(USER_LIMITS.maxStringLength);
    expect(user.groups).toHaveLength(USER_LIMITS.maxGroups);
    expect(user.claims).toEqual({});
  });

  it('does not read inherited properties as claims', () => {
    expect(userFromClaims({ sub: 'x' }, ISSUER, { claims: ['constructor', 'toString'] }).claims).toEqual({});
  });
});

describe('checkUserMode', () => {
  it.each([
    ['Optional without user', 'Optional', false, true],
    ['Optional with user', 'Optional', true, true],
    ['default without user', undefined, false, true],
    ['Required with user', 'Required', true, true],
    ['Required without user', 'Required', false, false],
    ['Forbidden without user', 'Forbidden', false, true],
    ['Forbidden with user', 'Forbidden', true, false],
  ] as const)('%s', (_name, mode, present, ok) => {
    expect(checkUserMode(mode, present).ok).toBe(ok);
  });

  it('explains what to do', () => {
    const r = checkUserMode('Required', false);
    expect(r.ok === false && r.message).toContain('spec.userContext.mode: Required');
  });
});

describe('agent identity', () => {
  const pod = {
    metadata: { name: 'bot-1', uid: 'u-1', labels: { app: 'bot' } },
    spec: {
      nodeName: 'n1',
      initContainers: [{ image: 'ghcr.io/warden/broker@sha256:aa' }],
      containers: [{ image: 'ghcr.io/acme/bot@sha256:bb' }],
    },
  };

  it('builds CEL agent from the identity and the pod', () => {
    expect(
      agentContext(
        { name: 'support-bot', namespace: 'ns', labels: { tier: 'a' }, serviceAccountName: 'sa' },
        pod,
      ),
    ).toEqual({
      name: 'support-bot',
      namespace: 'ns',
      serviceAccount: 'sa',
      labels: { tier: 'a' },
      pod: {
        name: 'bot-1',
        uid: 'u-1',
        node: 'n1',
        images: ['ghcr.io/warden/broker@sha256:aa', 'ghcr.io/acme/bot@sha256:bb'],
      },
    });
    expect(podImages({})).toEqual([]);
  });

  it('round-trips the agent subject and rejects look-alikes', () => {
    expect(parseAgentSubject(agentSubject('ns', 'support-bot'))).toEqual({
      namespace: 'ns',
      name: 'support-bot',
    });
    expect(parseAgentSubject('system:serviceaccount:ns:sa')).toBeUndefined();
    expect(parseAgentSubject('system:warden:agent:ns:a:b')).toBeUndefined();
  });

  it('puts the user as subject and the agent as actor when a human is present', () => {
    const user = { ...NO_USER, present: true, sub: 'alice', issuer: ISSUER };
    expect(delegation({ namespace: 'ns', name: 'bot' }, user)).toEqual({
      sub: 'alice',
      act: { sub: 'system:warden:agent:ns:bot' },
      userIssuer: ISSUER,
    });
    expect(delegation({ namespace: 'ns', name: 'bot' }, NO_USER)).toEqual({
      sub: 'system:warden:agent:ns:bot',
    });
    expect(auditUser(NO_USER)).toEqual({ user: AGENT_ACTING_ALONE });
    expect(auditUser(user)).toEqual({ user: 'alice', userIssuer: ISSUER });
  });
});

describe('attestation conditions', () => {
  const pod = (labels: Record<string, string>, images: string[]) => ({
    metadata: { labels },
    spec: { containers: images.map((image) => ({ image })) },
  });

  it.each([
    ['digest-pinned image in the repo', 'ghcr.io/acme/bot@sha256:abc', true],
    ['tag-only reference', 'ghcr.io/acme/bot:latest', false],
    ['nested path', 'ghcr.io/acme/x/bot@sha256:abc', false],
    ['other registry', 'docker.io/acme/bot@sha256:abc', false],
  ])('image glob: %s', (_name, image, ok) => {
    expect(imageAllowed(image, ['ghcr.io/acme/*@sha256:*'])).toBe(ok);
  });

  it('** crosses path segments', () => {
    expect(imageAllowed('ghcr.io/acme/x/y/bot:1', ['ghcr.io/acme/**'])).toBe(true);
  });

  it('passes without conditions and with matching ones', () => {
    expect(checkAttestationConditions(pod({}, ['a']), undefined).ok).toBe(true);
    expect(
      checkAttestationConditions(pod({ app: 'bot' }, ['r/a@sha256:1']), {
        requiredPodLabels: { app: 'bot' },
        allowedImages: ['r/*@sha256:*'],
      }).ok,
    ).toBe(true);
  });

  it('names the missing label', () => {
    expect(
      checkAttestationConditions(pod({ app: 'other' }, []), { requiredPodLabels: { app: 'bot' } }),
    ).toEqual({
      ok: false,
      reason: 'PodLabelMismatch',
      message: 'pod label app must be "bot" (spec.attestation.requiredPodLabels)',
    });
  });

  it('names the image that is not allowed', () => {
    const r = checkAttestationConditions(pod({}, ['r/a@sha256:1', 'evil/b:latest']), {
      allowedImages: ['r/*@sha256:*'],
    });
    expect(r).toMatchObject({ ok: false, reason: 'ImageNotAllowed' });
    expect(r.ok === false && r.message).toContain('evil/b:latest');
  });
});
