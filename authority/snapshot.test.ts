import { describe, expect, it } from 'vitest';
import { parseSnapshot } from '../broker/snapshot.js';
import type { AccessPolicy } from '../core/api/index.js';
import { parseCredentialRequest } from './credentials.js';
import { OAuthError } from './errors.js';
import { storedPolicy } from './policy-store.js';
import { buildSnapshot, type IdentityView, type ProviderView } from './snapshot.js';

const NS = 'team';
const identity = (o: Partial<IdentityView> = {}): IdentityView => ({
  name: 'support-bot',
  namespace: NS,
  labels: { tier: 'support' },
  spec: { serviceAccountName: 'bot-sa' } as IdentityView['spec'],
  ...o,
});
const policy = (name: string, spec: Record<string, unknown>, namespace = NS, rv = '1') =>
  storedPolicy({
    apiVersion: 'warden.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, namespace, resourceVersion: rv, generation: 1 },
    spec,
  } as unknown as AccessPolicy);

const rules = [{ targets: ['jira'], tools: ['jira.get_*'] }];

describe('buildSnapshot', () => {
  const policies = [
    policy('by-name', { agentSelector: { names: ['support-bot'] }, rules }),
    policy('by-label', { agentSelector: { matchLabels: { tier: 'support' } }, rules }),
    policy('everyone', { rules }),
    policy('other-agent', { agentSelector: { names: ['billing-bot'] }, rules }),
    policy('other-label', { agentSelector: { matchLabels: { tier: 'billing' } }, rules }),
    policy('other-namespace', { rules }, 'elsewhere'),
    policy('broken', { rules: [{ targets: ['jira'], when: [{ name: 'c', expression: 'usr.present' }] }] }),
  ];

  it('carries exactly the policies selecting the agent, sorted, and names the broken ones', () => {
    const snap = buildSnapshot(NS, 'support-bot', identity(), policies);
    expect(snap.policies.map((p) => p.name)).toEqual(['by-label', 'by-name', 'everyone']);
    expect(snap.invalidPolicies).toEqual(['broken']);
    expect(snap.agent).toMatchObject({ name: 'support-bot', suspended: false, maxCredentialTTL: '1h' });
  });

  it('is stable: the same state gives the same version, whatever the input order', () => {
    const a = buildSnapshot(NS, 'support-bot', identity(), policies);
    const b = buildSnapshot(NS, 'support-bot', identity(), [...policies].reverse());
    expect(a.version).toBe(b.version);
  });

  it.each([
    [
      'suspension',
      () =>
        buildSnapshot(
          NS,
          'support-bot',
          identity({ spec: { serviceAccountName: 'bot-sa', suspended: true } as IdentityView['spec'] }),
          policies,
        ),
    ],
    [
      'a policy edit (new resourceVersion)',
      () =>
        buildSnapshot(NS, 'support-bot', identity(), [
          ...policies.slice(1),
          policy('by-name', { agentSelector: { names: ['support-bot'] }, rules }, NS, '2'),
        ]),
    ],
    ['a label change', () => buildSnapshot(NS, 'support-bot', identity({ labels: {} }), policies)],
  ])('changes version on %s', (_name, make) => {
    expect(make().version).not.toBe(buildSnapshot(NS, 'support-bot', identity(), policies).version);
  });

  it('has no agent and no policies once the AgentIdentity is gone', () => {
    const snap = buildSnapshot(NS, 'support-bot', null, policies);
    expect(snap.agent).toBeNull();
    expect(snap.policies).toEqual([]);
  });
});

/** A CredentialProvider as the API server returns it, secret references and status included. */
const provider = (name: string, spec: Record<string, unknown>, namespace = NS): ProviderView =>
  ({ name, namespace, spec }) as unknown as ProviderView;

describe('buildSnapshot providers', () => {
  const providers = [
    provider('jira', {
      target: { url: 'https://jira.example/mcp', protocol: 'MCP' },
      type: 'OAuth2TokenExchange',
      oauth2TokenExchange: {
        tokenUrl: 'https://idp.example/token',
        clientId: 'warden',
        clientSecretRef: { name: 'jira-oauth', key: 'client-secret' },
        audience: 'jira',
      },
      inject: { header: 'Authorization', format: 'Bearer {token}' },
    }),
    provider('tickets', {
      target: { url: 'https://tickets.example/', protocol: 'HTTP' },
      type: 'APIKey',
      apiKey: { secretRef: { name: 'tickets-key', key: 'api-key' } },
      inject: { header: 'X-Api-Key', format: '{token}' },
    }),
    provider('orders-db', {
      target: { url: 'postgres://db.example:5432/orders', protocol: 'PostgreSQL' },
      type: 'PostgreSQL',
      postgresql: {
        host: 'db.example',
        database: 'orders',
        adminSecretRef: { name: 'pg-admin', usernameKey: 'u', passwordKey: 'p' },
        grantRoles: ['reader'],
      },
    }),
    provider('elsewhere', { target: { url: 'https://x.example/mcp' }, type: 'JWT' }, 'other-team'),
  ];

  it("carries the namespace's providers, sorted, with only name, url, protocol and inject", () => {
    const snap = buildSnapshot(NS, 'support-bot', identity(), [], providers);
    expect(snap.providers).toEqual([
      {
        name: 'jira',
        url: 'https://jira.example/mcp',
        protocol: 'MCP',
        inject: { header: 'Authorization', format: 'Bearer {token}' },
      },
      {
        name: 'orders-db',
        url: 'postgres://db.example:5432/orders',
        protocol: 'PostgreSQL',
        inject: { header: 'Authorization', format: 'Bearer {token}' },
      },
      {
        name: 'tickets',
        url: 'https://tickets.example/',
        protocol: 'HTTP',
        inject: { header: 'X-Api-Key', format: '{token}' },
      },
    ]);
  });

  it('never carries a secret reference, even when the object holds several', () => {
    const json = JSON.stringify(buildSnapshot(NS, 'support-bot', identity(), [], providers));
    for (const leak of [
      'secretRef',
      'SecretRef',
      'jira-oauth',
      'tickets-key',
      'pg-admin',
      'client-secret',
      'tokenUrl',
      'clientId',
    ]) {
      expect(json).not.toContain(leak);
    }
  });

  it('applies the CRD defaults when protocol or inject are absent', () => {
    const snap = buildSnapshot(
      NS,
      'support-bot',
      identity(),
      [],
      [provider('wiki', { target: { url: 'https://wiki.example/mcp' }, type: 'JWT' })],
    );
    expect(snap.providers).toEqual([
      {
        name: 'wiki',
        url: 'https://wiki.example/mcp',
        protocol: 'MCP',
        inject: { header: 'Authorization', format: 'Bearer {token}' },
      },
    ]);
  });

  it('changes version when a provider is added or retargeted, not when only its secret changes', () => {
    const base = buildSnapshot(NS, 'support-bot', identity(), [], providers).version;
    expect(buildSnapshot(NS, 'support-bot', identity(), [], providers.slice(1)).version).not.toBe(base);
    const retargeted = [
      provider('jira', {
        ...providers[0]!.spec,
        target: { url: 'https://jira2.example/mcp', protocol: 'MCP' },
      }),
      ...providers.slice(1),
    ];
    expect(buildSnapshot(NS, 'support-bot', identity(), [], retargeted).version).not.toBe(base);
    const rotated = [
      provider('jira', {
        ...providers[0]!.spec,
        oauth2TokenExchange: {
          ...(providers[0]!.spec.oauth2TokenExchange ?? {}),
          clientSecretRef: { name: 'new', key: 'k' },
        },
      }),
      ...providers.slice(1),
    ];
    expect(buildSnapshot(NS, 'support-bot', identity(), [], rotated).version).toBe(base);
  });

  it('is accepted by the broker, PostgreSQL providers included (the wire contract)', () => {
    const parsed = parseSnapshot(
      JSON.parse(JSON.stringify(buildSnapshot(NS, 'support-bot', identity(), [], providers))),
    );
    expect(parsed.ok && parsed.snapshot.providers?.map((p) => `${p.name}:${p.protocol}`)).toEqual([
      'jira:MCP',
      'orders-db:PostgreSQL',
      'tickets:HTTP',
    ]);
  });

  it('has an empty provider list when the namespace has none', () => {
    expect(buildSnapshot(NS, 'support-bot', identity(), []).providers).toEqual([]);
  });
});

describe('parseCredentialRequest', () => {
  it('reads the broker DPoP key thumbprint (dpop_jkt)', () => {
    const jkt = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
    expect(parseCredentialRequest({ target: 'jira', tool: 'jira.get', dpop_jkt: jkt }).dpopJkt).toBe(jkt);
    expect(parseCredentialRequest({ target: 'jira', tool: 'jira.get' }).dpopJkt).toBeUndefined();
  });

  it.each([
    ['too short', 'abc'],
    ['not base64url', 'NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs'],
    ['too long', `${'A'.repeat(44)}`],
    ['not a string', 42],
  ])('refuses a dpop_jkt that is %s, naming the field', (_name, jkt) => {
    expect(() => parseCredentialRequest({ target: 'jira', tool: 'jira.get', dpop_jkt: jkt })).toThrow(
      /dpop_jkt/,
    );
  });

  it('infers the request kind', () => {
    expect(parseCredentialRequest({ target: 'jira', tool: 'jira.get' }).kind).toBe('mcp');
    expect(parseCredentialRequest({ target: 'api', method: 'get', path: '/x' })).toMatchObject({
      kind: 'http',
      method: 'GET',
    });
    expect(parseCredentialRequest({ target: 'db' }).kind).toBe('postgresql');
  });

  it('keeps only known context fields', () => {
    expect(
      parseCredentialRequest({ target: 'db', context: { ticketId: 'SUP-1', chainStep: 2, evil: 'x' } })
        .context,
    ).toEqual({
      ticketId: 'SUP-1',
      chainStep: 2,
    });
  });

  it('accepts mcp without a tool as protocol traffic (initialize, tools/list)', () => {
    expect(parseCredentialRequest({ target: 'jira', kind: 'mcp' })).toMatchObject({
      target: 'jira',
      kind: 'mcp',
    });
    expect(parseCredentialRequest({ target: 'jira', kind: 'mcp' }).tool).toBeUndefined();
  });

  it.each([
    ['no target', {}, 'target'],
    ['a non-string tool', { target: 'a', tool: 5 }, 'tool must be a string'],
    ['a context that is a list', { target: 'a', context: [] }, 'context must be an object'],
    ['a fractional chainStep', { target: 'a', context: { chainStep: 1.5 } }, 'chainStep'],
    [
      'an overlong path',
      { target: 'a', method: 'GET', path: 'x'.repeat(5000) },
      'path must be a string of at most 4096',
    ],
  ])('rejects %s naming the field', (_name, body, message) => {
    let err: unknown;
    try {
      parseCredentialRequest(body);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OAuthError);
    expect((err as OAuthError).description).toContain(message);
  });
});
