import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type AdmissionReviewOut, handleReview, MalformedReviewError } from './admission.js';
import { applyPatch, type PatchOperation } from './patch.js';
import { admissionReview, agentIdentity, agentPod, testDeps } from './test-builders.js';
import type { AgentIdentityView } from './types.js';

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
// UPDATE_GOLDEN=1 npx vitest run --project unit webhook/admission.test.ts rewrites the *.golden.json files.
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface Fixture {
  agentIdentities: AgentIdentityView[];
  review: { request: { object: unknown } };
}

/** The response with the base64 patch decoded, so goldens are readable and reviewable. */
function readable(out: AdmissionReviewOut) {
  const { patch, ...rest } = out.response;
  return {
    ...out,
    response: {
      ...rest,
      ...(patch ? { patch: JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) } : {}),
    },
  };
}

function decodePatch(out: AdmissionReviewOut): PatchOperation[] {
  const p = out.response.patch;
  return p ? (JSON.parse(Buffer.from(p, 'base64').toString('utf8')) as PatchOperation[]) : [];
}

const cases = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.input.json'))
  .map((f) => f.replace('.input.json', ''))
  .sort();

describe('golden AdmissionReview fixtures', () => {
  it('has fixtures', () => {
    expect(cases.length).toBeGreaterThanOrEqual(9);
  });

  it.each(cases)('%s', async (name) => {
    const fixture = JSON.parse(readFileSync(join(TESTDATA, `${name}.input.json`), 'utf8')) as Fixture;
    const deps = testDeps(fixture.agentIdentities);
    const { review } = await handleReview(fixture.review, deps);
    const goldenPath = join(TESTDATA, `${name}.golden.json`);
    if (UPDATE) writeFileSync(goldenPath, `${JSON.stringify(readable(review), null, 2)}\n`);
    const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
    expect(readable(review)).toEqual(golden);
  });

  it.each(cases.filter((c) => c.startsWith('inject-')))(
    '%s: no remove operations, and reinvocation on the patched pod gives an empty patch',
    async (name) => {
      const fixture = JSON.parse(readFileSync(join(TESTDATA, `${name}.input.json`), 'utf8')) as Fixture;
      const deps = testDeps(fixture.agentIdentities);
      const first = await handleReview(fixture.review, deps);
      const ops = decodePatch(first.review);
      expect(ops.length).toBeGreaterThan(0);
      expect(ops.filter((o) => (o.op as string) !== 'add' && o.op !== 'replace')).toEqual([]);
      expect(ops.map((o) => o.op)).not.toContain('remove');

      const patched = applyPatch(fixture.review.request.object, ops);
      const again = structuredClone(fixture.review);
      again.request.object = patched;
      const second = await handleReview(again, deps);
      expect(second.review.response.allowed).toBe(true);
      expect(second.review.response.patch).toBeUndefined();
      expect(second.outcome).toMatchObject({ kind: 'unchanged', reason: 'AlreadyInjected' });
    },
  );
});

describe('handleReview', () => {
  it.each<[string, unknown, RegExp]>([
    ['a JSON array', [], /expected a JSON object/],
    ['null', null, /expected a JSON object/],
    [
      'a v1beta1 review',
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u' } },
      /admissionReviewVersions: \[v1\]/,
    ],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request: missing/],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }, /request\.uid/],
  ])('throws MalformedReviewError for %s', async (_name, body, message) => {
    const err = await handleReview(body, testDeps()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MalformedReviewError);
    expect((err as Error).message).toMatch(message);
  });

  it('denies a review whose object is not a pod object, by uid', async () => {
    const { review } = await handleReview(admissionReview('not a pod'), testDeps());
    expect(review.response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(review.response.uid).toBe('705ab4f5-6393-11e8-b7cc-42010a800002');
  });

  it('allows a non-Pod kind unchanged, with a warning', async () => {
    const body = admissionReview(
      { metadata: { name: 'cm' } },
      { kind: { group: '', version: 'v1', kind: 'ConfigMap' } },
    );
    const { review } = await handleReview(body, testDeps());
    expect(review.response.allowed).toBe(true);
    expect(review.response.patch).toBeUndefined();
    expect(review.response.warnings?.[0]).toMatch(/ignored ConfigMap: it only mutates Pods/);
  });

  it('allows a pod subresource unchanged, with a warning', async () => {
    const { review } = await handleReview(
      admissionReview(agentPod(), { subResource: 'ephemeralcontainers' }),
      testDeps(),
    );
    expect(review.response).toMatchObject({ allowed: true });
    expect(review.response.warnings?.[0]).toMatch(/Pod\/ephemeralcontainers/);
  });

  it('leaves UPDATE requests alone', async () => {
    const { review } = await handleReview(admissionReview(agentPod(), { operation: 'UPDATE' }), testDeps());
    expect(review.response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('leaves pods without the agent annotation alone', async () => {
    const pod: V1Pod = { metadata: { name: 'web' }, spec: { containers: [{ name: 'web', image: 'nginx' }] } };
    const { review, outcome } = await handleReview(admissionReview(pod), testDeps());
    expect(review.response.patch).toBeUndefined();
    expect(outcome).toMatchObject({ kind: 'unchanged', reason: 'NotAnAgentPod' });
  });

  it('rejects a pod with no containers with a clear message', async () => {
    const pod = agentPod();
    pod.spec!.containers = [];
    const { review } = await handleReview(admissionReview(pod), testDeps());
    expect(review.response.allowed).toBe(false);
    expect(review.response.status?.message).toMatch(/spec\.containers: the pod has no containers/);
  });

  it('rejects a pod without a spec as having no containers', async () => {
    const { review } = await handleReview(admissionReview({ metadata: agentPod().metadata }), testDeps());
    expect(review.response.status?.message).toMatch(/no containers/);
  });

  it('records Injected on the AgentIdentity', async () => {
    const deps = testDeps();
    await handleReview(admissionReview(agentPod()), deps);
    expect(deps.events.events).toEqual([
      {
        agent: { name: 'support-bot', namespace: 'team-a', uid: agentIdentity().metadata.uid },
        type: 'Normal',
        reason: 'Injected',
        note: expect.stringMatching(/^pod support-bot-7d9f: injected broker /),
      },
    ]);
  });

  it('records a rejection with its reason on the AgentIdentity', async () => {
    const deps = testDeps([agentIdentity({ suspended: true })]);
    await handleReview(admissionReview(agentPod()), deps);
    expect(deps.events.events).toMatchObject([{ type: 'Warning', reason: 'AgentSuspended' }]);
    expect(deps.events.events[0]?.note).toMatch(/pod support-bot-7d9f/);
  });

  it('records nothing on a dry run', async () => {
    const deps = testDeps();
    const { review } = await handleReview(admissionReview(agentPod(), { dryRun: true }), deps);
    expect(review.response.patch).toBeDefined();
    expect(deps.events.events).toEqual([]);
  });

  it('admits even when the event cannot be written', async () => {
    const deps = testDeps(undefined, {
      events: {
        record: async () => {
          throw new Error('events forbidden');
        },
      },
    });
    const { review } = await handleReview(admissionReview(agentPod()), deps);
    expect(review.response.allowed).toBe(true);
  });

  it('fails closed when the AgentIdentity cannot be read', async () => {
    const deps = testDeps(undefined, {
      lookup: async () => {
        throw new Error('HTTP 503: etcd unavailable');
      },
    });
    const { review } = await handleReview(admissionReview(agentPod()), deps);
    expect(review.response.allowed).toBe(false);
    expect(review.response.status?.message).toMatch(
      /could not read AgentIdentity team-a\/support-bot: HTTP 503/,
    );
  });

  it('fails closed when the lookup does not answer in time', async () => {
    const deps = testDeps(undefined, { lookup: () => new Promise(() => {}), lookupTimeoutMs: 10 });
    const { review } = await handleReview(admissionReview(agentPod()), deps);
    expect(review.response.status?.message).toMatch(/timed out after 10 ms/);
  });

  it('rejects an invalid agent name with the field it came from', async () => {
    const { review, outcome } = await handleReview(
      admissionReview(agentPod({ agent: 'Not_A_Name' })),
      testDeps(),
    );
    expect(review.response.allowed).toBe(false);
    expect(review.response.status?.message).toMatch(
      /^warden: pod support-bot-7d9f rejected: metadata\.annotations\[warden\.dev\/agent\]: "Not_A_Name" is not a valid AgentIdentity name/,
    );
    expect(outcome).toMatchObject({ kind: 'rejected', reason: 'InvalidAgentName' });
  });

  it('names a generateName pod by its prefix', async () => {
    const pod = agentPod({ sa: 'wrong' });
    pod.metadata = { generateName: 'bot-abc-', annotations: pod.metadata?.annotations };
    const { review } = await handleReview(admissionReview(pod), testDeps());
    expect(review.response.status?.message).toMatch(/pod bot-abc-<generated>/);
  });
});
