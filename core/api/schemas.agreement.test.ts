/**
 * The CRDs (crds/*.yaml) are the source of truth; schemas.ts mirrors them for
 * runtime validation. These tests keep the two in step: the same objects get the
 * same verdict and the same defaults from both, every pattern is shared verbatim,
 * and the parsed types fit the generated types. They also lint the CRDs for what
 * the API contract promises (descriptions everywhere, every list and string
 * bounded so CEL cost stays within the API server's budget).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { GROUP, PLURAL, VERSION } from '../constants.js';
import { compileAccessPolicy } from '../policy/index.js';
import type { AccessPolicySpec } from './generated/access-policy.js';
import type { AgentIdentitySpec } from './generated/agent-identity.js';
import type { AuditRecordSpec } from './generated/audit-record.js';
import type { CredentialProviderSpec } from './generated/credential-provider.js';
import { ALL_PATTERNS } from './patterns.js';
import { type SPEC_SCHEMAS, WARDEN_KINDS, type WardenKind } from './schemas.js';
import {
  agentSpec,
  apiKeyProviderSpec,
  auditSpec,
  DIGEST,
  jwtProviderSpec,
  policySpec,
  postgresProviderSpec,
  rule,
} from './testing/builders.js';
import { applyDefaults, type CrdSchema, checkWithCrdSchema } from './testing/crd-schema.js';
import { validateObject, validateSpec } from './validate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface CrdDoc {
  spec: {
    group: string;
    names: { kind: string; plural: string; shortNames?: string[]; categories?: string[] };
    versions: {
      name: string;
      subresources?: { status?: object };
      additionalPrinterColumns?: { name: string; jsonPath: string }[];
      schema: { openAPIV3Schema: CrdSchema };
    }[];
  };
}

function readYamlDocs(dir: string): { file: string; doc: unknown }[] {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(ROOT, dir, file), 'utf8')).map((d) => ({
        file,
        doc: d.toJS() as unknown,
      })),
    );
}

const crds = new Map(
  readYamlDocs('crds').map(({ doc }) => {
    const crd = doc as CrdDoc;
    return [crd.spec.names.kind, crd] as const;
  }),
);

function rootSchema(kind: string): CrdSchema {
  const crd = crds.get(kind);
  if (!crd) throw new Error(`no CRD for ${kind} in crds/`);
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

const specSchema = (kind: string): CrdSchema => rootSchema(kind).properties!.spec!;

const samples = readYamlDocs('samples')
  .map(({ file, doc }) => ({
    file,
    obj: doc as { apiVersion: string; kind: string; metadata: { name: string } },
  }))
  .filter(({ obj }) => obj.apiVersion === `${GROUP}/${VERSION}`);

describe('samples/', () => {
  it('holds the promised objects: one agent, two policies, three providers', () => {
    const count = (k: string) => samples.filter((s) => s.obj.kind === k).length;
    expect([count('AgentIdentity'), count('AccessPolicy'), count('CredentialProvider')]).toEqual([1, 2, 3]);
  });

  it.each(samples.map((s) => ({ name: `${s.file}: ${s.obj.kind} ${s.obj.metadata.name}`, obj: s.obj })))(
    '$name passes the CRD schema and zod with the same defaults',
    ({ obj }) => {
      expect(checkWithCrdSchema(rootSchema(obj.kind), obj)).toEqual([]);
      const r = validateObject(obj);
      expect(r.ok ? [] : r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
      const spec = (obj as unknown as { spec: unknown }).spec;
      expect(r.ok && r.value.spec).toEqual(applyDefaults(specSchema(obj.kind), spec));
    },
  );

  it.each(
    samples
      .filter((s) => s.obj.kind === 'AccessPolicy')
      .map((s) => ({ name: s.obj.metadata.name, obj: s.obj })),
  )('AccessPolicy $name compiles with the policy engine', ({ obj }) => {
    const r = compileAccessPolicy({
      namespace: 'samples',
      name: obj.metadata.name,
      ...(obj as unknown as { spec: never }),
    });
    expect(r.ok ? [] : r.errors).toEqual([]);
  });
});

/** Objects both validators must accept (ok) or reject, named for what they exercise. */
const CORPUS: { name: string; kind: WardenKind; spec: unknown; ok: boolean }[] = [
  { name: 'minimal agent', kind: 'AgentIdentity', spec: agentSpec(), ok: true },
  { name: 'agent: unknown field', kind: 'AgentIdentity', spec: agentSpec({ suspend: true }), ok: false },
  {
    name: 'agent: bad SA name',
    kind: 'AgentIdentity',
    spec: agentSpec({ serviceAccountName: 'Bot' }),
    ok: false,
  },
  {
    name: 'agent: SA name too long',
    kind: 'AgentIdentity',
    spec: agentSpec({ serviceAccountName: 'a'.repeat(254) }),
    ok: false,
  },
  {
    name: 'agent: token lifetime at the minimum',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { tokenExpirationSeconds: 600 } }),
    ok: true,
  },
  {
    name: 'agent: token lifetime below the minimum',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { tokenExpirationSeconds: 599 } }),
    ok: false,
  },
  {
    name: 'agent: token lifetime above the maximum',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { tokenExpirationSeconds: 86401 } }),
    ok: false,
  },
  {
    name: 'agent: 33 allowed images',
    kind: 'AgentIdentity',
    spec: agentSpec({ attestation: { allowedImages: Array.from({ length: 33 }, (_, i) => `img${i}`) } }),
    ok: false,
  },
  {
    name: 'agent: 33 pod labels',
    kind: 'AgentIdentity',
    spec: agentSpec({
      attestation: {
        requiredPodLabels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
      },
    }),
    ok: false,
  },
  {
    name: 'agent: mode Required with an issuer',
    kind: 'AgentIdentity',
    spec: agentSpec({
      userContext: { mode: 'Required', trustedIssuers: [{ issuer: 'https://idp', audiences: ['a'] }] },
    }),
    ok: true,
  },
  {
    name: 'agent: mode Required without issuers',
    kind: 'AgentIdentity',
    spec: agentSpec({ userContext: { mode: 'Required' } }),
    ok: false,
  },
  {
    name: 'agent: mode lowercase',
    kind: 'AgentIdentity',
    spec: agentSpec({ userContext: { mode: 'required' } }),
    ok: false,
  },
  {
    name: 'agent: issuer without audiences',
    kind: 'AgentIdentity',
    spec: agentSpec({ userContext: { trustedIssuers: [{ issuer: 'https://idp', audiences: [] }] } }),
    ok: false,
  },
  {
    name: 'agent: duplicate issuer',
    kind: 'AgentIdentity',
    spec: agentSpec({
      userContext: {
        trustedIssuers: [
          { issuer: 'https://idp', audiences: ['a'] },
          { issuer: 'https://idp', audiences: ['b'] },
        ],
      },
    }),
    ok: false,
  },
  {
    name: 'agent: duration with days',
    kind: 'AgentIdentity',
    spec: agentSpec({ maxCredentialTTL: '1d' }),
    ok: false,
  },
  {
    name: 'agent: compound duration',
    kind: 'AgentIdentity',
    spec: agentSpec({ maxCredentialTTL: '1h30m' }),
    ok: true,
  },
  { name: 'policy: DESIGN.md example', kind: 'AccessPolicy', spec: policySpec(), ok: true },
  { name: 'policy: no rules', kind: 'AccessPolicy', spec: policySpec({ rules: [] }), ok: false },
  {
    name: 'policy: 65 rules',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: Array.from({ length: 65 }, () => rule()) }),
    ok: false,
  },
  {
    name: 'policy: rule without targets',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [{ tools: ['x'] }] }),
    ok: false,
  },
  {
    name: 'policy: * with another target',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ targets: ['*', 'jira'] })] }),
    ok: false,
  },
  {
    name: 'policy: uppercase target',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ targets: ['Jira'] })] }),
    ok: false,
  },
  {
    name: 'policy: http rule',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [rule({ tools: undefined, http: { methods: ['GET', '*'], paths: ['/api/**', '**'] } })],
    }),
    ok: true,
  },
  {
    name: 'policy: lowercase method',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ http: { methods: ['get'] } })] }),
    ok: false,
  },
  {
    name: 'policy: relative path',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ http: { paths: ['api/*'] } })] }),
    ok: false,
  },
  {
    name: 'policy: duplicate condition name',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [
        rule({
          when: [
            { name: 'a', expression: 'true' },
            { name: 'a', expression: 'true' },
          ],
        }),
      ],
    }),
    ok: false,
  },
  {
    name: 'policy: condition without expression',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ when: [{ name: 'a' }] })] }),
    ok: false,
  },
  {
    name: 'policy: expression too long',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ when: [{ name: 'a', expression: 'x'.repeat(4097) }] })] }),
    ok: false,
  },
  {
    name: 'policy: 17 conditions',
    kind: 'AccessPolicy',
    spec: policySpec({
      rules: [rule({ when: Array.from({ length: 17 }, (_, i) => ({ name: `c${i}`, expression: 'true' })) })],
    }),
    ok: false,
  },
  {
    name: 'policy: bad credential ttl',
    kind: 'AccessPolicy',
    spec: policySpec({ rules: [rule({ credential: { ttl: '5' } })] }),
    ok: false,
  },
  { name: 'policy: effect Deny', kind: 'AccessPolicy', spec: policySpec({ effect: 'Deny' }), ok: true },
  { name: 'policy: effect lowercase', kind: 'AccessPolicy', spec: policySpec({ effect: 'deny' }), ok: false },
  {
    name: 'policy: 101 selected names',
    kind: 'AccessPolicy',
    spec: policySpec({ agentSelector: { names: Array.from({ length: 101 }, (_, i) => `a${i}`) } }),
    ok: false,
  },
  { name: 'provider: JWT', kind: 'CredentialProvider', spec: jwtProviderSpec(), ok: true },
  {
    name: 'provider: JWT without block',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: undefined }),
    ok: false,
  },
  {
    name: 'provider: JWT plus apiKey block',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ apiKey: { secretRef: { name: 'a', key: 'b' } } }),
    ok: false,
  },
  {
    name: 'provider: only the wrong block',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ jwt: undefined, basicAuth: { secretRef: { name: 'a' } } }),
    ok: false,
  },
  {
    name: 'provider: unknown type',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ type: 'Kerberos' }),
    ok: false,
  },
  { name: 'provider: PostgreSQL', kind: 'CredentialProvider', spec: postgresProviderSpec(), ok: true },
  {
    name: 'provider: PostgreSQL over default protocol',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ target: { url: 'postgres://db/x' } }),
    ok: false,
  },
  {
    name: 'provider: PostgreSQL protocol for JWT',
    kind: 'CredentialProvider',
    spec: jwtProviderSpec({ target: { url: 'postgres://db/x', protocol: 'PostgreSQL' } }),
    ok: false,
  },
  {
    name: 'provider: http URL for PostgreSQL',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ target: { url: 'https://db', protocol: 'PostgreSQL' } }),
    ok: false,
  },
  {
    name: 'provider: no grant roles',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ postgresql: { ...postgresProviderSpec().postgresql, grantRoles: [] } }),
    ok: false,
  },
  {
    name: 'provider: port 0',
    kind: 'CredentialProvider',
    spec: postgresProviderSpec({ postgresql: { ...postgresProviderSpec().postgresql, port: 0 } }),
    ok: false,
  },
  { name: 'provider: APIKey', kind: 'CredentialProvider', spec: apiKeyProviderSpec(), ok: true },
  {
    name: 'provider: APIKey without key',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ apiKey: { secretRef: { name: 'a' } } }),
    ok: false,
  },
  {
    name: 'provider: inject without {token}',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ inject: { format: 'Token abc' } }),
    ok: false,
  },
  {
    name: 'provider: inject bare {token}',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ inject: { header: 'X-API-Key', format: '{token}' } }),
    ok: true,
  },
  {
    name: 'provider: header with a space',
    kind: 'CredentialProvider',
    spec: apiKeyProviderSpec({ inject: { header: 'X API Key' } }),
    ok: false,
  },
  {
    name: 'provider: OAuth2 token exchange',
    kind: 'CredentialProvider',
    spec: {
      target: { url: 'https://api', protocol: 'HTTP' },
      type: 'OAuth2TokenExchange',
      oauth2TokenExchange: {
        tokenUrl: 'https://idp/token',
        clientId: 'warden',
        clientSecretRef: { name: 's', key: 'k' },
        scopes: ['read'],
      },
    },
    ok: true,
  },
  {
    name: 'provider: OAuth2 client credentials without secret',
    kind: 'CredentialProvider',
    spec: {
      target: { url: 'https://api' },
      type: 'OAuth2ClientCredentials',
      oauth2ClientCredentials: { tokenUrl: 'https://idp/token', clientId: 'warden' },
    },
    ok: false,
  },
  {
    name: 'provider: BasicAuth',
    kind: 'CredentialProvider',
    spec: {
      target: { url: 'https://api', protocol: 'HTTP' },
      type: 'BasicAuth',
      basicAuth: { secretRef: { name: 's' } },
    },
    ok: true,
  },
  { name: 'audit: first record', kind: 'AuditRecord', spec: auditSpec(), ok: true },
  {
    name: 'audit: later record',
    kind: 'AuditRecord',
    spec: auditSpec({ sequence: 1, previousDigest: DIGEST }),
    ok: true,
  },
  {
    name: 'audit: first record with previous digest',
    kind: 'AuditRecord',
    spec: auditSpec({ previousDigest: DIGEST }),
    ok: false,
  },
  {
    name: 'audit: later record without previous digest',
    kind: 'AuditRecord',
    spec: auditSpec({ sequence: 1 }),
    ok: false,
  },
  { name: 'audit: negative sequence', kind: 'AuditRecord', spec: auditSpec({ sequence: -1 }), ok: false },
  { name: 'audit: no entries', kind: 'AuditRecord', spec: auditSpec({ entries: [] }), ok: false },
  {
    name: 'audit: 501 entries',
    kind: 'AuditRecord',
    spec: auditSpec({ entries: Array.from({ length: 501 }, () => auditSpec().entries[0]) }),
    ok: false,
  },
  {
    name: 'audit: 500 entries',
    kind: 'AuditRecord',
    spec: auditSpec({ entries: Array.from({ length: 500 }, () => auditSpec().entries[0]) }),
    ok: true,
  },
  {
    name: 'audit: end before start',
    kind: 'AuditRecord',
    spec: auditSpec({ endTime: '2026-01-01T00:00:00Z' }),
    ok: false,
  },
  {
    name: 'audit: unknown entry kind',
    kind: 'AuditRecord',
    spec: auditSpec({ entries: [{ time: '2026-01-02T15:04:05Z', kind: 'Login' }] }),
    ok: false,
  },
  {
    name: 'audit: uppercase digest',
    kind: 'AuditRecord',
    spec: auditSpec({ digest: 'A'.repeat(64) }),
    ok: false,
  },
  {
    name: 'audit: rule index out of range',
    kind: 'AuditRecord',
    spec: auditSpec({
      entries: [{ time: '2026-01-02T15:04:05Z', kind: 'Decision', reasons: [{ rule: 64 }] }],
    }),
    ok: false,
  },
];

describe('zod and the CRD schemas agree', () => {
  it.each(CORPUS)('$kind — $name: accepted=$ok by both', ({ kind, spec, ok }) => {
    const crdIssues = checkWithCrdSchema(specSchema(kind), spec, 'spec');
    const zod = validateSpec(kind, spec);
    expect({
      crd: crdIssues.length === 0 ? 'accepted' : crdIssues,
      zod: zod.ok ? 'accepted' : zod.errors,
    }).toEqual(
      ok ? { crd: 'accepted', zod: 'accepted' } : { crd: expect.any(Array), zod: expect.any(Array) },
    );
  });

  it.each(CORPUS.filter((c) => c.ok))('$kind — $name: same defaults from both', ({ kind, spec }) => {
    const zod = validateSpec(kind, spec);
    expect(zod.ok && zod.value).toEqual(applyDefaults(specSchema(kind), spec));
  });

  it('every runtime pattern appears verbatim in a CRD', () => {
    const crdText = readYamlDocs('crds')
      .map(({ doc }) => JSON.stringify(doc))
      .join('\n');
    for (const [name, p] of Object.entries(ALL_PATTERNS))
      expect(crdText.includes(JSON.stringify(p.source)), `${name} ${p.source} not in crds/`).toBe(true);
  });

  it('parsed specs fit the generated types', () => {
    expectTypeOf<z.output<typeof SPEC_SCHEMAS.AgentIdentity>>().toExtend<AgentIdentitySpec>();
    expectTypeOf<z.output<typeof SPEC_SCHEMAS.AccessPolicy>>().toExtend<AccessPolicySpec>();
    expectTypeOf<z.output<typeof SPEC_SCHEMAS.CredentialProvider>>().toExtend<CredentialProviderSpec>();
    expectTypeOf<z.output<typeof SPEC_SCHEMAS.AuditRecord>>().toExtend<AuditRecordSpec>();
  });
});

// --- lint of the CRDs themselves ---------------------------------------------------

interface Finding {
  path: string;
  problem: string;
}

function lint(schema: CrdSchema, path: string, out: Finding[]): void {
  if (!(schema as { description?: string }).description) out.push({ path, problem: 'no description' });
  if (schema.type === 'string' && schema.maxLength === undefined && !schema.enum)
    out.push({ path, problem: 'string without maxLength' });
  if (schema.type === 'array' && schema.maxItems === undefined)
    out.push({ path, problem: 'list without maxItems' });
  if (typeof schema.additionalProperties === 'object' && schema.maxProperties === undefined)
    out.push({ path, problem: 'map without maxProperties' });
  for (const [k, child] of Object.entries(schema.properties ?? {})) lint(child, `${path}.${k}`, out);
  if (schema.items) lint(schema.items, `${path}[]`, out);
  if (typeof schema.additionalProperties === 'object') lint(schema.additionalProperties, `${path}{}`, out);
}

describe('crds/ keep the API contract', () => {
  it('has exactly the four kinds, matching core/constants.ts', () => {
    expect([...crds.keys()].sort()).toEqual([...WARDEN_KINDS].sort());
    for (const [kind, crd] of crds) {
      expect(crd.spec.group).toBe(GROUP);
      expect(crd.spec.versions.map((v) => v.name)).toEqual([VERSION]);
      expect(crd.spec.names.plural).toBe(PLURAL[kind as keyof typeof PLURAL]);
      expect(crd.spec.names.categories).toEqual(['warden']);
    }
  });

  it.each(WARDEN_KINDS)(
    '%s: every field has a description and every string, list and map is bounded',
    (kind) => {
      const findings: Finding[] = [];
      const root = rootSchema(kind);
      for (const part of ['spec', 'status'] as const) {
        const s = root.properties?.[part];
        if (s) lint(s, part, findings);
      }
      expect(findings).toEqual([]);
    },
  );

  it('has the agreed short names', () => {
    const shortNames = Object.fromEntries([...crds].map(([k, c]) => [k, c.spec.names.shortNames]));
    expect(shortNames).toEqual({
      AgentIdentity: ['agent', 'agents'],
      AccessPolicy: ['ap', 'apol'],
      CredentialProvider: ['cp', 'credprov'],
      AuditRecord: ['ar', 'audit'],
    });
  });

  it('gives AgentIdentity the agreed printer columns', () => {
    const cols = crds.get('AgentIdentity')!.spec.versions[0]!.additionalPrinterColumns!;
    expect(cols.map((c) => c.name)).toEqual(['Ready', 'Suspended', 'Allowed', 'Denied', 'Last Seen', 'Age']);
    expect(cols.find((c) => c.name === 'Allowed')?.jsonPath).toBe('.status.decisions.allowed');
  });

  it('has a status subresource for every kind with status (all but AuditRecord)', () => {
    const withStatus = [...crds].filter(([, c]) => c.spec.versions[0]!.subresources?.status).map(([k]) => k);
    expect(withStatus.sort()).toEqual(['AccessPolicy', 'AgentIdentity', 'CredentialProvider']);
  });
});
