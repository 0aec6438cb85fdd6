/**
 * Proves the policy cookbook (docs/policy-cookbook.md): every recipe NN-*.yaml is
 * accepted by the real API server's CRD validation (`kubectl apply --dry-run=server`),
 * every AccessPolicy in it compiles in Warden's CEL environment, and every case in
 * NN-*.test.yaml gets the documented decision from the policy engine.
 *
 * Case file format (also what a reader copies to test their own policies):
 *   agent: {name, namespace, labels?}          default agent for every case
 *   cases:
 *     - name: what the case shows
 *       agent?: {...}                           overrides the default agent
 *       user?: {sub, issuer?, groups?, department?, claims?}   absent = acting alone
 *       context?: {ticketId?, purpose?, model?, chainStep?, geo?}
 *       request: {kind: mcp|http|postgresql, target, tool?, args?, method?, path?, time}
 *       expect: {decision: Allow|Deny, reason?, condition?, policy?}
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  type AccessPolicySpecLike,
  buildPolicySet,
  type CompiledPolicy,
  compileAccessPolicy,
  decide,
} from '../../core/policy/index.js';
import { freshNamespace, kubectl } from '../../e2e/harness/index.js';

const DIR = dirname(fileURLToPath(import.meta.url));

const agentSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  labels: z.record(z.string(), z.string()).optional(),
});

const caseSchema = z.object({
  name: z.string(),
  agent: agentSchema.optional(),
  user: z
    .object({
      sub: z.string(),
      issuer: z.string().optional(),
      groups: z.array(z.string()).optional(),
      department: z.string().optional(),
      claims: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  context: z
    .object({
      purpose: z.string().optional(),
      ticketId: z.string().optional(),
      model: z.string().optional(),
      chainStep: z.number().int().optional(),
      geo: z.string().optional(),
    })
    .optional(),
  request: z.object({
    kind: z.enum(['mcp', 'http', 'postgresql']),
    target: z.string(),
    tool: z.string().optional(),
    args: z.record(z.string(), z.unknown()).optional(),
    method: z.string().optional(),
    path: z.string().optional(),
    time: z.iso.datetime(),
  }),
  expect: z.object({
    decision: z.enum(['Allow', 'Deny']),
    reason: z.string().optional(),
    condition: z.string().optional(),
    policy: z.string().optional(),
  }),
});

const caseFileSchema = z.object({ agent: agentSchema, cases: z.array(caseSchema).min(1) });
type CaseFile = z.infer<typeof caseFileSchema>;

interface Recipe {
  id: string;
  manifestPath: string;
  policies: { name: string; spec: AccessPolicySpecLike }[];
  cases: CaseFile;
}

function loadRecipes(): Recipe[] {
  const manifests = readdirSync(DIR)
    .filter((f) => /^\d\d-.+\.yaml$/.test(f) && !f.endsWith('.test.yaml'))
    .sort();
  return manifests.map((file) => {
    const id = file.replace(/\.yaml$/, '');
    const manifestPath = join(DIR, file);
    const docs = parseAllDocuments(readFileSync(manifestPath, 'utf8')).map((d) => d.toJS() as unknown);
    const policies = docs
      .filter((d): d is { kind: string; metadata: { name: string }; spec: AccessPolicySpecLike } => {
        return typeof d === 'object' && d !== null && (d as { kind?: unknown }).kind === 'AccessPolicy';
      })
      .map((d) => ({ name: d.metadata.name, spec: d.spec }));
    const parsed = caseFileSchema.safeParse(parseYaml(readFileSync(join(DIR, `${id}.test.yaml`), 'utf8')));
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
      throw new Error(`docs/cookbook/${id}.test.yaml is not a valid case file:\n${issues}`);
    }
    return { id, manifestPath, policies, cases: parsed.data };
  });
}

const recipes = loadRecipes();
let namespace = '';

beforeAll(async () => {
  namespace = await freshNamespace('cookbook');
});

it('has ten recipes, each with policies and test cases', () => {
  expect(recipes).toHaveLength(10);
  for (const r of recipes) expect(r.policies.length, r.id).toBeGreaterThan(0);
});

describe.each(recipes.map((r) => [r.id, r] as const))('%s', (_id, recipe) => {
  it('is accepted by the API server (CRD schemas and CEL validation rules)', async () => {
    const out = await kubectl([
      'apply',
      '--server-side',
      '--dry-run=server',
      '--field-manager=cookbook-test',
      '-n',
      namespace,
      '-f',
      recipe.manifestPath,
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
  });

  const compiled: CompiledPolicy[] = recipe.policies.map(({ name, spec }) => {
    const result = compileAccessPolicy({ namespace: recipe.cases.agent.namespace, name, spec });
    if (!result.ok) {
      throw new Error(
        `${recipe.id}: ${name} does not compile:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`,
      );
    }
    return result.compiled;
  });

  it.each(recipe.cases.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const agent = c.agent ?? recipe.cases.agent;
    const set = buildPolicySet(compiled, agent);
    const { time, ...request } = c.request;
    const decision = decide(set, {
      agent,
      user: c.user ?? null,
      context: c.context ?? null,
      request: { ...request, time: new Date(time) },
    });
    const got = {
      decision: decision.decision,
      ...(c.expect.reason ? { reason: decision.reason } : {}),
      ...(c.expect.condition ? { condition: decision.condition } : {}),
      ...(c.expect.policy ? { policy: decision.policy } : {}),
    };
    expect(got, decision.message).toEqual(c.expect);
  });
});
