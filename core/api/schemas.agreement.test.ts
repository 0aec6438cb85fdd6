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
import type { AccessPolicySpec, AccessPolicyStatus } from './generated/access-policy.js';
import type { AgentIdentitySpec, AgentIdentityStatus } from './generated/agent-identity.js';
import type { AuditRecordSpec } from './generated/audit-record.js';
import type { CredentialProviderSpec, CredentialProviderStatus } from './generated/credential-provider.js';
import { AUDIT_CATEGORY, CATEGORY } from './index.js';
import { ALL_PATTERNS } from './patterns.js';
import { type SPEC_SCHEMAS, type STATUS_SCHEMAS, WARDEN_KINDS } from './schemas.js';
import { CORPUS, STATUS_CORPUS } from './testing/corpus.js';
import { applyDefaults, type CrdSchema, checkWithCrdSchema } from './testing/crd-schema.js';
import { validateObject, validateSpec, validateStatus } from './validate.js';

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

  it.each(STATUS_CORPUS)('$kind status — $name: accepted=$ok by both', ({ kind, status, ok }) => {
    const statusSchema = rootSchema(kind).properties!.status!;
    const crdIssues = checkWithCrdSchema(statusSchema, status, 'status');
    const zod = validateStatus(kind, status);
    expect({ crd: crdIssues.length === 0, zod: zod.ok }, JSON.stringify({ crdIssues, zod })).toEqual({
      crd: ok,
      zod: ok,
    });
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
    expectTypeOf<z.output<typeof STATUS_SCHEMAS.AgentIdentity>>().toExtend<AgentIdentityStatus>();
    expectTypeOf<z.output<typeof STATUS_SCHEMAS.AccessPolicy>>().toExtend<AccessPolicyStatus>();
    expectTypeOf<z.output<typeof STATUS_SCHEMAS.CredentialProvider>>().toExtend<CredentialProviderStatus>();
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
      // AuditRecords have their own category: `kubectl get warden` lists what people declare.
      expect(crd.spec.names.categories).toEqual([kind === 'AuditRecord' ? AUDIT_CATEGORY : CATEGORY]);
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
