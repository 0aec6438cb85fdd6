/**
 * The CRDs against the real kube-apiserver (booted by the vitest globalSetup, which
 * also installs crds/): the samples apply, bad input is rejected with a message
 * that says what is wrong, the zod schemas agree with the server on a corpus of
 * good and bad specs (verdict and defaults), `kubectl get warden` lists every kind,
 * printer columns show, and config/rbac grants exactly what the controller needs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { auditSpec, awsProviderSpec, jwtProviderSpec } from '../core/api/testing/builders.js';
import { CORPUS } from '../core/api/testing/corpus.js';
import { validateSpec } from '../core/api/validate.js';
import { API_VERSION, GROUP, PLURAL, VERSION } from '../core/constants.js';
import { freshNamespace, kubeConfig, kubectl } from '../e2e/harness/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SAMPLES = join(ROOT, 'samples');

/** YAML for one Warden object. */
function manifest(kind: string, name: string, spec: unknown): string {
  return stringify({ apiVersion: API_VERSION, kind, metadata: { name }, spec });
}

/** Applies YAML with server-side strict field validation; returns the kubectl result. */
function apply(ns: string, yaml: string) {
  return kubectl(['apply', '-n', ns, '--validate=strict', '-f', '-'], { input: yaml });
}

async function expectRejected(ns: string, yaml: string, ...messages: string[]): Promise<void> {
  const r = await apply(ns, yaml);
  expect(r.code, `expected rejection, got: ${r.stdout}`).not.toBe(0);
  for (const m of messages) expect(r.stderr).toContain(m);
}

describe('the CRDs as the harness installed them', () => {
  it("take a user's later client-side `kubectl apply -f crds/` without a warning (last-applied annotation present)", async () => {
    const r = await kubectl(['apply', '-f', fileURLToPath(new URL('.', import.meta.url))]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });
});

describe('samples/', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await freshNamespace('crds-samples');
  });

  it('apply cleanly with strict field validation', async () => {
    const r = await kubectl(['apply', '-n', ns, '--validate=strict', '-f', SAMPLES]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('agentidentity.warden.dev/support-bot created');
    // Applying again leaves every Warden object unchanged: the samples are stable
    // under server defaulting. (Secrets written with stringData always report
    // "configured", a kubectl quirk unrelated to the CRDs.)
    const again = await kubectl(['apply', '-n', ns, '--validate=strict', '-f', SAMPLES]);
    expect(again.code).toBe(0);
    const warden = again.stdout.split('\n').filter((l) => l.includes('.warden.dev/'));
    expect(warden).toHaveLength(6);
    for (const line of warden) expect(line).toMatch(/ unchanged$/);
  });

  it('come back with the same defaults zod fills in', async () => {
    const r = await kubectl(['get', 'warden', '-n', ns, '-o', 'json']);
    expect(r.code).toBe(0);
    const items = (
      JSON.parse(r.stdout) as { items: { kind: string; metadata: { name: string }; spec: unknown }[] }
    ).items;
    expect(items).toHaveLength(6);
    for (const item of items) {
      const zod = validateSpec(item.kind as 'AgentIdentity', item.spec);
      expect(zod.ok ? zod.value : zod.errors, `${item.kind} ${item.metadata.name}`).toEqual(item.spec);
    }
  });

  it('are listed by `kubectl get warden` across kinds (AuditRecords by warden-audit), with short names working', async () => {
    const audit = await apply(ns, manifest('AuditRecord', 'support-bot-0', auditSpec()));
    expect(audit.stderr).toBe('');
    const all = await kubectl(['get', 'warden', '-n', ns, '-o', 'name']);
    expect(all.stdout.trim().split('\n').sort()).toEqual([
      'accesspolicy.warden.dev/deny-deletes',
      'accesspolicy.warden.dev/support-bot-allow',
      'agentidentity.warden.dev/support-bot',
      'credentialprovider.warden.dev/jira',
      'credentialprovider.warden.dev/orders-db',
      'credentialprovider.warden.dev/tickets-api',
    ]);
    const trail = await kubectl(['get', 'warden-audit', '-n', ns, '-o', 'name']);
    expect(trail.stdout.trim()).toBe('auditrecord.warden.dev/support-bot-0');
    const short = await kubectl(['get', 'agent,ap,cp,ar', '-n', ns, '-o', 'name']);
    expect(short.code).toBe(0);
    expect(short.stdout.trim().split('\n')).toHaveLength(7);
  });

  it('show the agreed printer columns, filled from status', async () => {
    const patch = await kubectl([
      'patch',
      'agentidentity',
      'support-bot',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'ServiceAccountFound',
              message: 'ServiceAccount support-bot exists',
              lastTransitionTime: '2026-01-02T15:04:05Z',
            },
          ],
          decisions: { allowed: 12, denied: 3 },
          lastSeen: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      }),
    ]);
    expect(patch.stderr).toBe('');
    const r = await kubectl(['get', 'agentidentities', '-n', ns]);
    const [header, row] = r.stdout.trim().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'NAME',
      'READY',
      'SUSPENDED',
      'ALLOWED',
      'DENIED',
      'LAST SEEN',
      'AGE',
    ]);
    expect(row?.split(/\s+/).slice(0, 5)).toEqual(['support-bot', 'True', 'false', '12', '3']);
    const cp = await kubectl(['get', 'credentialproviders', '-n', ns]);
    expect(cp.stdout.split('\n')[0]?.split(/\s{2,}/)).toEqual([
      'NAME',
      'TYPE',
      'TARGET',
      'READY',
      'STANDING',
      'ISSUED',
      'AGE',
    ]);
    const ap = await kubectl(['get', 'accesspolicies', '-n', ns, '-o', 'wide']);
    expect(ap.stdout.split('\n')[0]?.split(/\s{2,}/)).toEqual([
      'NAME',
      'EFFECT',
      'READY',
      'REASON',
      'AGENTS',
      'AGE',
    ]);
  });

  it('status cannot be written through the main resource', async () => {
    const r = await kubectl([
      'patch',
      'agentidentity',
      'support-bot',
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"status":{"decisions":{"allowed":999}}}',
    ]);
    expect(r.code).toBe(0);
    const back = await kubectl([
      'get',
      'agentidentity',
      'support-bot',
      '-n',
      ns,
      '-o',
      'jsonpath={.status.decisions.allowed}',
    ]);
    expect(back.stdout).not.toBe('999');
  });
});

describe('bad input is rejected with a clear message', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await freshNamespace('crds-bad');
  });

  it('unknown fields (strict field validation)', async () => {
    await expectRejected(
      ns,
      manifest('AgentIdentity', 'typo', { serviceAcountName: 'support-bot' }),
      'unknown field "spec.serviceAcountName"',
    );
  });

  it('two type blocks on one CredentialProvider', async () => {
    await expectRejected(
      ns,
      manifest(
        'CredentialProvider',
        'two-blocks',
        jwtProviderSpec({ apiKey: { secretRef: { name: 's', key: 'k' } } }),
      ),
      'set exactly one of jwt, oauth2TokenExchange, oauth2ClientCredentials, postgresql, apiKey, basicAuth',
    );
  });

  it('a CredentialProvider without the block its type needs', async () => {
    await expectRejected(
      ns,
      manifest('CredentialProvider', 'no-block', jwtProviderSpec({ jwt: undefined })),
      'spec.type is JWT, so spec.jwt must be set',
    );
  });

  it('an edit of an AuditRecord spec; deleting it (retention) still works', async () => {
    const created = await apply(ns, manifest('AuditRecord', 'frozen', auditSpec()));
    expect(created.stderr).toBe('');
    const edit = await kubectl([
      'patch',
      'auditrecord',
      'frozen',
      '-n',
      ns,
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/entries/0/decision","value":"Allow"}]',
    ]);
    expect(edit.code).not.toBe(0);
    expect(edit.stderr).toContain('AuditRecord spec is immutable; write a new record instead');
    const del = await kubectl(['delete', 'auditrecord', 'frozen', '-n', ns]);
    expect(del.code).toBe(0);
  });

  it.each([
    {
      name: 'integer below its minimum',
      yaml: manifest('AgentIdentity', 'short-token', {
        serviceAccountName: 'sa',
        attestation: { tokenExpirationSeconds: 60 },
      }),
      message:
        'spec.attestation.tokenExpirationSeconds: Invalid value: 60: spec.attestation.tokenExpirationSeconds in body should be greater than or equal to 600',
    },
    {
      name: 'too many list items',
      yaml: manifest('AccessPolicy', 'many-targets', {
        rules: [{ targets: Array.from({ length: 33 }, (_, i) => `p${i}`) }],
      }),
      message: 'spec.rules[0].targets: Too many: 33: must have at most 32 items',
    },
    {
      name: 'string too long',
      yaml: manifest('AgentIdentity', 'long-reason', {
        serviceAccountName: 'sa',
        suspendReason: 'x'.repeat(1025),
      }),
      message: 'spec.suspendReason: Too long: may not be more than 1024',
    },
    {
      name: 'a duration that is not one',
      yaml: manifest('AgentIdentity', 'bad-ttl', { serviceAccountName: 'sa', maxCredentialTTL: '1 day' }),
      message: 'spec.maxCredentialTTL in body should match',
    },
    {
      name: 'a value outside its enum',
      yaml: manifest('AccessPolicy', 'bad-effect', { effect: 'Permit', rules: [{ targets: ['*'] }] }),
      message: 'spec.effect: Unsupported value: "Permit": supported values: "Allow", "Deny"',
    },
    {
      name: 'a missing required field',
      yaml: manifest('AccessPolicy', 'no-rules', { effect: 'Deny' }),
      message: 'spec.rules: Required value',
    },
    {
      name: 'duplicate condition names in a rule',
      yaml: manifest('AccessPolicy', 'dup-when', {
        rules: [
          {
            targets: ['jira'],
            when: [
              { name: 'a', expression: 'true' },
              { name: 'a', expression: 'false' },
            ],
          },
        ],
      }),
      message: 'spec.rules[0].when[1]: Duplicate value: {"name":"a"}',
    },
    {
      name: 'an AWS provider without roleArn',
      yaml: manifest('CredentialProvider', 'aws-no-role', awsProviderSpec({ aws: { region: 'eu-west-1' } })),
      message: 'spec.aws.roleArn: Required value',
    },
    {
      name: 'an AWS provider with a region that is not one',
      yaml: manifest(
        'CredentialProvider',
        'aws-bad-region',
        awsProviderSpec({}, { region: 'Europe (Ireland)' }),
      ),
      message: 'spec.aws.region in body should match',
    },
    {
      name: 'an AWS provider with an STS endpoint without a scheme',
      yaml: manifest(
        'CredentialProvider',
        'aws-bad-sts',
        awsProviderSpec({}, { stsUrl: 'sts.amazonaws.com' }),
      ),
      message: 'spec.aws.stsUrl in body should match',
    },
    {
      name: 'an AWS provider over MCP',
      yaml: manifest(
        'CredentialProvider',
        'aws-mcp',
        awsProviderSpec({ target: { url: 'https://s3.amazonaws.com', protocol: 'MCP' } }),
      ),
      message: 'spec.target.protocol: Invalid value: spec.type AWS needs spec.target.protocol HTTP',
    },
    {
      name: 'an AWS session shorter than STS allows',
      yaml: manifest('CredentialProvider', 'aws-short', awsProviderSpec({}, { sessionDuration: '5m' })),
      message: 'spec.aws.sessionDuration: Invalid value: aws.sessionDuration must be between 15m and 12h',
    },
    {
      name: 'an AgentIdentity name too long for the warden.dev/agent label',
      yaml: manifest('AgentIdentity', 'a'.repeat(64), { serviceAccountName: 'sa' }),
      message: 'AgentIdentity names are at most 63 characters',
    },
    {
      name: 'mode Required without trusted issuers',
      yaml: manifest('AgentIdentity', 'required-user', {
        serviceAccountName: 'sa',
        userContext: { mode: 'Required' },
      }),
      message: 'userContext.mode Required needs at least one entry in userContext.trustedIssuers',
    },
  ])('$name', async ({ yaml, message }) => {
    await expectRejected(ns, yaml, message);
  });
});

describe('zod and the API server agree', () => {
  let ns: string;
  let api: CustomObjectsApi;
  beforeAll(async () => {
    ns = await freshNamespace('crds-agree');
    api = kubeConfig().makeApiClient(CustomObjectsApi);
  });

  it.each(CORPUS)(
    '$kind — $name: accepted=$ok by both, with the same defaults',
    async ({ kind, spec, ok }) => {
      const name = `c-${Math.random().toString(36).slice(2, 10)}`;
      let server: { accepted: true; spec: unknown } | { accepted: false; message: string };
      try {
        // dryRun: validated and defaulted exactly like a real create, but not stored.
        const created = (await api.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: PLURAL[kind],
          body: { apiVersion: API_VERSION, kind, metadata: { name }, spec },
          dryRun: 'All',
          fieldValidation: 'Strict',
        })) as { spec: unknown };
        server = { accepted: true, spec: created.spec };
      } catch (err) {
        const e = err as { code?: number; body?: string };
        expect(e.code, `unexpected failure: ${String(err)}`).toBeOneOf([400, 422]);
        server = { accepted: false, message: String(e.body) };
      }
      const zod = validateSpec(kind, spec);
      expect({ server: server.accepted, zod: zod.ok }, JSON.stringify({ server, zod })).toEqual({
        server: ok,
        zod: ok,
      });
      if (server.accepted && zod.ok) expect(zod.value).toEqual(server.spec);
    },
  );
});

describe('config/rbac grants the controller exactly what it needs', () => {
  let home: string;
  let agents: string;
  let other: string;
  let sa: string;

  /** The RBAC manifests, moved into fresh namespaces and renamed so tests never collide. */
  function rbacManifests(suffix: string): string {
    const files = [
      'service_account.yaml',
      'cluster_role.yaml',
      'cluster_role_binding.yaml',
      'role.yaml',
      'role_binding.yaml',
      'secret_reader_role.yaml',
      'secret_reader_binding.yaml',
    ];
    const text = files.map((f) => readFileSync(join(ROOT, 'config', 'rbac', f), 'utf8')).join('\n---\n');
    return parseAllDocuments(text)
      .map((d) => {
        const o = d.toJS() as {
          kind: string;
          metadata: { name: string; namespace?: string };
          roleRef?: { kind: string; name: string };
          subjects?: { namespace: string }[];
        };
        if (o.kind.startsWith('Cluster')) o.metadata.name += `-${suffix}`;
        if (o.roleRef?.kind === 'ClusterRole') o.roleRef.name += `-${suffix}`;
        if (o.metadata.namespace === 'warden-system') o.metadata.namespace = home;
        if (o.metadata.namespace === 'agents') o.metadata.namespace = agents;
        for (const s of o.subjects ?? []) s.namespace = home;
        return stringify(o);
      })
      .join('---\n');
  }

  beforeAll(async () => {
    home = await freshNamespace('crds-rbac-home');
    agents = await freshNamespace('crds-rbac-agents');
    other = await freshNamespace('crds-rbac-other');
    sa = `system:serviceaccount:${home}:warden-controller`;
    const r = await kubectl(['apply', '-f', '-'], { input: rbacManifests(home) });
    expect(r.stderr).toBe('');
  });

  async function canI(verb: string, resource: string, ...extra: string[]): Promise<boolean> {
    const r = await kubectl(['auth', 'can-i', verb, resource, `--as=${sa}`, ...extra]);
    return r.stdout.trim() === 'yes';
  }

  it.each([
    ['watch', 'agentidentities.warden.dev', '-n', 'x'],
    ['list', 'accesspolicies.warden.dev', '-A'],
    ['get', 'credentialproviders.warden.dev', '-n', 'x'],
    ['patch', 'agentidentities.warden.dev', '--subresource=status', '-n', 'x'],
    ['update', 'accesspolicies.warden.dev', '--subresource=status', '-n', 'x'],
    ['patch', 'credentialproviders.warden.dev', '--subresource=status', '-n', 'x'],
    ['create', 'auditrecords.warden.dev', '-n', 'x'],
    ['delete', 'auditrecords.warden.dev', '-n', 'x'],
    ['watch', 'serviceaccounts', '-A'],
    ['list', 'pods', '-A'],
    ['create', 'tokenreviews.authentication.k8s.io'],
    ['create', 'events.events.k8s.io', '-n', 'x'],
    ['update', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/warden-pod-injector'],
    ['update', 'leases.coordination.k8s.io/warden-controller-leader', '-n', 'HOME'],
    ['get', 'secrets/warden-authority-signing-keys', '-n', 'HOME'],
    ['get', 'secrets/any-provider-secret', '-n', 'AGENTS'],
  ])('allows %s %s', async (verb, resource, ...extra) => {
    expect(
      await canI(verb, resource, ...extra.map((e) => e.replace('HOME', home).replace('AGENTS', agents))),
    ).toBe(true);
  });

  it.each([
    ['update', 'agentidentities.warden.dev', '-n', 'x'],
    ['delete', 'accesspolicies.warden.dev', '-n', 'x'],
    ['create', 'credentialproviders.warden.dev', '-n', 'x'],
    ['update', 'auditrecords.warden.dev', '-n', 'x'],
    ['patch', 'auditrecords.warden.dev', '-n', 'x'],
    ['list', 'secrets', '-n', 'AGENTS'],
    ['watch', 'secrets', '-n', 'AGENTS'],
    ['get', 'secrets', '-n', 'OTHER'],
    ['get', 'secrets/other-secret', '-n', 'HOME'],
    ['delete', 'pods', '-n', 'x'],
    ['create', 'pods', '-n', 'x'],
    ['update', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses'],
    ['update', 'leases.coordination.k8s.io/other-lease', '-n', 'HOME'],
    ['create', 'leases.coordination.k8s.io', '-n', 'OTHER'],
    ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', 'x'],
    ['create', 'serviceaccounts/token', '-n', 'x'],
  ])('denies %s %s', async (verb, resource, ...extra) => {
    const args = extra.map((e) => e.replace('HOME', home).replace('AGENTS', agents).replace('OTHER', other));
    expect(await canI(verb, resource, ...args)).toBe(false);
  });
});
