import { describe, expect, it } from 'vitest';
import { handleReview } from './admission.js';
import { checkPodShape } from './pod-shape.js';
import { admissionReview, agentPod, testDeps } from './test-builders.js';

describe('checkPodShape', () => {
  it('accepts a normal pod', () => {
    expect(checkPodShape(agentPod()).ok).toBe(true);
  });

  it.each<[string, unknown, string, RegExp]>([
    ['a string', 'pod', 'request.object', /expected a Pod object, got string/],
    ['a list metadata', { metadata: [] }, 'request.object.metadata', /got a list/],
    ['a string spec', { spec: 'x' }, 'request.object.spec', /expected an object, got string/],
    [
      'non-string annotation values',
      { metadata: { annotations: { a: 1 } } },
      'request.object.metadata.annotations[a]',
      /a string, got number/,
    ],
    [
      'labels as a list',
      { metadata: { labels: ['x'] } },
      'request.object.metadata.labels',
      /a map of strings/,
    ],
    [
      'containers as an object',
      { spec: { containers: { name: 'a' } } },
      'request.object.spec.containers',
      /a list, got object/,
    ],
    [
      'a null container',
      { spec: { containers: [null] } },
      'request.object.spec.containers[0]',
      /an object, got null/,
    ],
    [
      'a container without a name',
      { spec: { containers: [{ image: 'x' }] } },
      'request.object.spec.containers[0].name',
      /a string, got undefined/,
    ],
    [
      'env as a string',
      { spec: { containers: [{ name: 'a', env: 'X=1' }] } },
      'request.object.spec.containers[0].env',
      /a list/,
    ],
    [
      'a null volume mount',
      { spec: { initContainers: [{ name: 'a', volumeMounts: [null] }] } },
      'request.object.spec.initContainers[0].volumeMounts[0]',
      /null/,
    ],
    [
      'a numeric image',
      { spec: { containers: [{ name: 'a', image: 5 }] } },
      'request.object.spec.containers[0].image',
      /a string/,
    ],
    ['volumes as a map', { spec: { volumes: {} } }, 'request.object.spec.volumes', /a list/],
    [
      'a numeric service account',
      { spec: { serviceAccountName: 7 } },
      'request.object.spec.serviceAccountName',
      /a string/,
    ],
    [
      'a string hostNetwork',
      { spec: { hostNetwork: 'true' } },
      'request.object.spec.hostNetwork',
      /a boolean/,
    ],
  ])('names the field for %s', (_name, obj, field, message) => {
    const shape = checkPodShape(obj);
    expect(shape.ok).toBe(false);
    expect(!shape.ok && shape.field).toBe(field);
    expect(!shape.ok && shape.message).toMatch(message);
  });

  it('turns a type-confused pod into a 400 denial naming the field, not an exception', async () => {
    const pod = agentPod();
    (pod.spec as unknown as { containers: unknown }).containers = { agent: {} };
    const { review } = await handleReview(admissionReview(pod), testDeps());
    expect(review.response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(review.response.status?.message).toMatch(
      /request\.object\.spec\.containers: expected a list, got object/,
    );
  });
});
