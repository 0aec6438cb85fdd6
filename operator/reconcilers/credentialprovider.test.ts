import { describe, expect, it } from 'vitest';
import type { CredentialProvider } from '../../core/api/index.js';
import { getCondition } from '../../core/conditions.js';
import {
  decideCredentialProvider,
  type SecretFact,
  secretKeysOnly,
  secretRequirements,
} from './credentialprovider.js';

const T1 = new Date('2026-02-01T09:00:00Z');

type Spec = CredentialProvider['spec'];
const target = { url: 'https://jira.example.com/mcp', protocol: 'MCP' as const };

function provider(spec: Spec, status?: CredentialProvider['status']): CredentialProvider {
  return {
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'CredentialProvider',
    metadata: { name: 'jira', namespace: 'team-a', generation: 2 },
    spec,
    ...(status ? { status } : {}),
  };
}

const apiKey: Spec = { target, type: 'APIKey', apiKey: { secretRef: { name: 'jira-token', key: 'token' } } };
const basic: Spec = { target, type: 'BasicAuth', basicAuth: { secretRef: { name: 'jira-basic' } } };
const jwt: Spec = { target, type: 'JWT', jwt: {} };
const pg: Spec = {
  target: { url: 'postgres://db:5432/app', protocol: 'PostgreSQL' },
  type: 'PostgreSQL',
  postgresql: {
    host: 'db',
    database: 'app',
    grantRoles: ['reader'],
    adminSecretRef: { name: 'pg-admin', passwordKey: 'pw' },
  },
};
const exchange: Spec = {
  target,
  type: 'OAuth2TokenExchange',
  oauth2TokenExchange: {
    tokenUrl: 'https://idp/token',
    clientId: 'warden',
    clientSecretRef: { name: 'idp', key: 'secret' },
  },
};

function facts(secrets: Record<string, string[] | 'forbidden'>): Map<string, SecretFact> {
  return new Map(
    Object.entries(secrets).map(([k, v]): [string, SecretFact] => [
      k,
      v === 'forbidden' ? { state: 'forbidden' } : { state: 'found', keys: v },
    ]),
  );
}

function decide(spec: Spec, secrets: Record<string, string[] | 'forbidden'>) {
  return decideCredentialProvider({ provider: provider(spec), secrets: facts(secrets) }, T1);
}

describe('secretRequirements', () => {
  it.each<[string, Spec, Array<[string, string, string]>]>([
    ['JWT needs no Secret', jwt, []],
    ['APIKey needs its key', apiKey, [['jira-token', 'token', 'spec.apiKey.secretRef.key']]],
    [
      'BasicAuth defaults to username/password',
      basic,
      [
        ['jira-basic', 'username', 'spec.basicAuth.secretRef.usernameKey'],
        ['jira-basic', 'password', 'spec.basicAuth.secretRef.passwordKey'],
      ],
    ],
    [
      'PostgreSQL honours custom key names',
      pg,
      [
        ['pg-admin', 'username', 'spec.postgresql.adminSecretRef.usernameKey'],
        ['pg-admin', 'pw', 'spec.postgresql.adminSecretRef.passwordKey'],
      ],
    ],
    [
      'OAuth2TokenExchange needs the client secret',
      exchange,
      [['idp', 'secret', 'spec.oauth2TokenExchange.clientSecretRef.key']],
    ],
  ])('%s', (_n, spec, expected) => {
    const r = secretRequirements(spec);
    expect(r.ok && r.keys.map((k) => [k.secret, k.key, k.keyPath])).toEqual(expected);
  });

  it('reports a missing type block with its field path', () => {
    expect(secretRequirements({ target, type: 'APIKey' })).toEqual({
      ok: false,
      message: 'spec.apiKey.secretRef: required for spec.type APIKey',
    });
  });
});

describe('decideCredentialProvider', () => {
  it('Ready and a standing secret when the APIKey Secret and key exist', () => {
    const d = decide(apiKey, { 'jira-token': ['token'] });
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Ready',
      observedGeneration: 2,
    });
    expect(d.status.standingSecret).toBe(true);
    expect(d.status.observedGeneration).toBe(2);
    expect(d.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Ready' })]);
  });

  it('SecretNotFound names the field, the Secret and what to do', () => {
    const d = decide(apiKey, {});
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SecretNotFound',
      message:
        'spec.apiKey.secretRef.name: Secret team-a/jira-token not found; create it in namespace team-a',
    });
    expect(d.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretNotFound' })]);
  });

  it('SecretKeyMissing names the key field and lists the keys present (names only)', () => {
    const d = decide(basic, { 'jira-basic': ['user', 'password'] });
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SecretKeyMissing',
      message:
        "spec.basicAuth.secretRef.usernameKey: Secret team-a/jira-basic has no key 'username' (keys present: password, user); add the key or change spec.basicAuth.secretRef.usernameKey",
    });
  });

  it('reports a missing Secret once even when two keys come from it', () => {
    const d = decide(basic, {});
    expect(getCondition(d.status.conditions, 'Ready')?.message.match(/not found/g)).toHaveLength(1);
  });

  it('reports every problem; the reason is SecretNotFound if any Secret is missing', () => {
    const d = decide(pg, { 'pg-admin': [] });
    const ready = getCondition(d.status.conditions, 'Ready');
    expect(ready?.reason).toBe('SecretKeyMissing');
    expect(ready?.message).toContain("no key 'username' (keys present: none)");
    expect(ready?.message).toContain("no key 'pw'");
  });

  it('a Secret the controller may not read says which RoleBinding to add', () => {
    const d = decide(apiKey, { 'jira-token': 'forbidden' });
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SecretAccessDenied',
      message:
        'spec.apiKey.secretRef.name: the controller may not read Secret team-a/jira-token; bind ClusterRole warden-secret-reader with a RoleBinding in namespace team-a',
    });
  });

  it('an explicitly missing Secret is SecretNotFound', () => {
    const d = decideCredentialProvider(
      { provider: provider(apiKey), secrets: new Map([['jira-token', { state: 'missing' }]]) },
      T1,
    );
    expect(getCondition(d.status.conditions, 'Ready')?.reason).toBe('SecretNotFound');
  });

  it('JWT is Ready with no Secret and is not a standing secret', () => {
    const d = decide(jwt, {});
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({ status: 'True' });
    expect(d.status.standingSecret).toBe(false);
  });

  it('a missing type block is InvalidSpec', () => {
    const d = decide({ target, type: 'OAuth2ClientCredentials' }, {});
    expect(getCondition(d.status.conditions, 'Ready')).toMatchObject({ reason: 'InvalidSpec' });
  });

  it('no Event and an identical status when nothing changed', () => {
    const first = decide(apiKey, {});
    const again = decideCredentialProvider(
      { provider: provider(apiKey, first.status), secrets: new Map() },
      new Date('2026-02-01T12:00:00Z'),
    );
    expect(again.events).toEqual([]);
    expect(again.status).toEqual(first.status);
  });

  it('becomes Ready when the Secret appears later', () => {
    const first = decide(apiKey, {});
    const later = decideCredentialProvider(
      { provider: provider(apiKey, first.status), secrets: facts({ 'jira-token': ['token'] }) },
      new Date('2026-02-01T12:00:00Z'),
    );
    expect(getCondition(later.status.conditions, 'Ready')).toMatchObject({
      status: 'True',
      lastTransitionTime: '2026-02-01T12:00:00Z',
    });
    expect(later.events.map((e) => e.reason)).toEqual(['Ready']);
  });
});

describe('secretKeysOnly', () => {
  it('keeps key names and drops every value', () => {
    const s = secretKeysOnly({
      kind: 'Secret',
      metadata: { name: 'jira-token', namespace: 'team-a', resourceVersion: '9', annotations: { note: 'x' } },
      data: { token: 'c3VwZXItc2VjcmV0' },
      binaryData: { cert: 'AAEC' },
    });
    expect(s).toEqual({
      apiVersion: undefined,
      kind: 'Secret',
      metadata: { name: 'jira-token', namespace: 'team-a', uid: undefined, resourceVersion: '9' },
      keys: ['token', 'cert'],
    });
    expect(JSON.stringify(s)).not.toMatch(/c3VwZXItc2VjcmV0|AAEC/);
  });
});
