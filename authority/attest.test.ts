import type { V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { injectBroker, TEST_BROKER_IMAGE } from '../webhook/test-builders.js';
import {
  type AttestationFacts,
  CachedTokenReviewer,
  decideAttestation,
  parseServiceAccountUsername,
  type TokenReviewResult,
} from './attest.js';
import { b64 } from './testing.js';

const review: TokenReviewResult = {
  authenticated: true,
  username: 'system:serviceaccount:ns:bot-sa',
  audiences: ['warden.dev/broker'],
  podName: 'bot-1',
  podUID: 'uid-1',
};
const ISSUER = 'https://warden-authority.test';
const broker = { trustedImages: [TEST_BROKER_IMAGE], authorityUrl: ISSUER };
/** The agent pod as the webhook admits it (audience: the AgentIdentity's). */
const injected = (audience?: string) =>
  injectBroker(
    {
      metadata: {
        name: 'bot-1',
        namespace: 'ns',
        uid: 'uid-1',
        labels: { app: 'bot' },
        annotations: { 'warden.dev/agent': 'support-bot' },
      },
      spec: {
        serviceAccountName: 'bot-sa',
        containers: [{ name: 'bot', image: 'ghcr.io/acme/bot@sha256:1' }],
      },
    },
    { agent: 'support-bot', issuer: ISSUER, ...(audience ? { audience } : {}) },
  ) as V1Pod & { metadata: V1ObjectMeta; spec: V1PodSpec };
const pod = injected();
const identity = {
  metadata: { name: 'support-bot', namespace: 'ns' },
  spec: { serviceAccountName: 'bot-sa' },
};
const facts = (o: Partial<AttestationFacts> = {}): AttestationFacts => ({
  review,
  pod,
  identity,
  broker,
  ...o,
});

describe('decideAttestation', () => {
  it('issues a session subject for a matching pod and identity', () => {
    expect(decideAttestation(facts())).toEqual({
      ok: true,
      subject: {
        namespace: 'ns',
        agent: 'support-bot',
        serviceAccount: 'bot-sa',
        pod: 'bot-1',
        podUID: 'uid-1',
      },
    });
  });

  it('accepts a matching resource and meets attestation conditions', () => {
    const id = {
      ...identity,
      spec: {
        ...identity.spec,
        attestation: { requiredPodLabels: { app: 'bot' }, allowedImages: ['ghcr.io/acme/*@sha256:*'] },
      },
    };
    expect(decideAttestation(facts({ identity: id, resource: 'urn:warden:agent:ns:support-bot' })).ok).toBe(
      true,
    );
  });

  describe('allowedImages and the injected broker (found on a real node: the broker is in the pod)', () => {
    const restricted = {
      ...identity,
      spec: { ...identity.spec, attestation: { allowedImages: ['ghcr.io/acme/*@sha256:*'] } },
    };
    const withInit = (c: { name: string; image: string }): V1Pod => ({
      ...pod,
      spec: { ...pod.spec, initContainers: [...(pod.spec.initContainers ?? []), c] },
    });

    it('does not hold the injected (and verified) broker to the agent images', () => {
      expect(decideAttestation(facts({ identity: restricted })).ok).toBe(true);
    });

    it('refuses a container named like the broker but with another image before allowedImages', () => {
      const evil = {
        ...pod,
        spec: {
          ...pod.spec,
          initContainers: (pod.spec.initContainers ?? []).map((c) =>
            c.name === 'warden-broker' ? { ...c, image: 'docker.io/evil/miner:latest' } : c,
          ),
        },
      };
      const d = decideAttestation(facts({ identity: restricted, pod: evil }));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.error.detail).toContain('BrokerImageNotTrusted');
    });

    it('checks the broker image under another container name', () => {
      const d = decideAttestation(
        facts({ identity: restricted, pod: withInit({ name: 'helper', image: TEST_BROKER_IMAGE }) }),
      );
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.error.description).toContain('matches none of spec.attestation.allowedImages');
    });
  });

  const cases: Array<[string, Partial<AttestationFacts>, string, string]> = [
    [
      'a token the API server rejected',
      { review: { authenticated: false, error: 'pods "x" not found' } },
      'invalid_grant',
      'rejected by the Kubernetes API server',
    ],
    [
      'a user (not SA) token',
      { review: { ...review, username: 'alice' } },
      'invalid_grant',
      'not a service-account token',
    ],
    [
      'a token not bound to a pod',
      { review: { ...review, podName: undefined } },
      'invalid_grant',
      'not bound to a pod',
    ],
    ['a valid token of a deleted pod', { pod: null }, 'invalid_grant', 'no longer exists'],
    [
      'a token of pod A whose name now belongs to pod B (UID differs)',
      { pod: { ...pod, metadata: { ...pod.metadata, uid: 'uid-B' } } },
      'invalid_grant',
      'different UID',
    ],
    [
      'a pod running as another SA',
      { pod: { ...pod, spec: { ...pod.spec, serviceAccountName: 'other' } } },
      'invalid_grant',
      'service account',
    ],
    [
      'a pod without the agent annotation',
      { pod: { ...pod, metadata: { ...pod.metadata, annotations: {} } } },
      'unauthorized_client',
      'no warden.dev/agent annotation',
    ],
    [
      'an annotation naming a missing AgentIdentity',
      { identity: null },
      'unauthorized_client',
      'does not exist in namespace ns',
    ],
    [
      'an AgentIdentity for another SA',
      { identity: { ...identity, spec: { serviceAccountName: 'x' } } },
      'unauthorized_client',
      'requires service account "x"',
    ],
    [
      'a token for another audience',
      { review: { ...review, audiences: ['https://kubernetes.default.svc'] } },
      'invalid_grant',
      'audience must include "warden.dev/broker"',
    ],
    [
      'pod A token claiming pod B agent (resource)',
      { resource: 'urn:warden:agent:ns:admin-bot' },
      'invalid_target',
      'different agent',
    ],
    [
      'a missing required label',
      {
        identity: {
          ...identity,
          spec: { ...identity.spec, attestation: { requiredPodLabels: { tier: 'x' } } },
        },
      },
      'unauthorized_client',
      'pod label tier',
    ],
    [
      'an image that is not allowed',
      {
        identity: {
          ...identity,
          spec: { ...identity.spec, attestation: { allowedImages: ['docker.io/*'] } },
        },
      },
      'unauthorized_client',
      'allowedImages',
    ],
    [
      'a suspended agent',
      {
        identity: { ...identity, spec: { ...identity.spec, suspended: true, suspendReason: 'incident 42' } },
      },
      'access_denied',
      'suspended',
    ],
  ];
  it.each(cases)('refuses %s', (_name, overrides, code, message) => {
    const d = decideAttestation(facts(overrides));
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect(d.error.code).toBe(code);
    expect(d.error.description).toContain(message);
  });

  it('never returns API server or suspension detail to the caller', () => {
    const d1 = decideAttestation(
      facts({ review: { authenticated: false, error: 'pods "secret" not found' } }),
    );
    const d2 = decideAttestation(
      facts({
        identity: { ...identity, spec: { ...identity.spec, suspended: true, suspendReason: 'incident 42' } },
      }),
    );
    for (const d of [d1, d2]) {
      expect(d.ok).toBe(false);
      if (!d.ok) expect(JSON.stringify(d.error.body())).not.toMatch(/secret|incident/);
    }
  });

  it('skips the audience check on refresh (checked at the first exchange)', () => {
    expect(decideAttestation(facts({ review: { ...review, audiences: [] }, refresh: true })).ok).toBe(true);
  });

  it('uses a custom AgentIdentity audience', () => {
    const id = { ...identity, spec: { ...identity.spec, attestation: { audience: 'custom' } } };
    const p = injected('custom');
    expect(decideAttestation(facts({ identity: id, pod: p })).ok).toBe(false);
    expect(
      decideAttestation(facts({ identity: id, pod: p, review: { ...review, audiences: ['custom'] } })).ok,
    ).toBe(true);
  });

  it('judges allowedImages on the agent containers, not on the (verified) broker', () => {
    const id = {
      ...identity,
      spec: { ...identity.spec, attestation: { allowedImages: ['ghcr.io/acme/*@sha256:*'] } },
    };
    expect(decideAttestation(facts({ identity: id })).ok).toBe(true);
  });
});

describe('decideAttestation: only the injected broker attests', () => {
  const annotations = pod.metadata.annotations ?? {};
  const brokerAt = (pod.spec.initContainers ?? []).findIndex((c) => c.name === 'warden-broker');
  const withBroker = (change: Record<string, unknown>): V1Pod => ({
    ...pod,
    spec: {
      ...pod.spec,
      initContainers: (pod.spec.initContainers ?? []).map((c, i) =>
        i === brokerAt ? { ...c, ...change } : c,
      ),
    },
  });
  const cases: Array<[string, V1Pod, string, string]> = [
    [
      'an opted-out pod',
      {
        ...pod,
        metadata: { ...pod.metadata, annotations: { ...annotations, 'warden.dev/inject': 'false' } },
      },
      'OptedOut',
      'opted out of injection',
    ],
    [
      'a pod the webhook never saw (no injected record)',
      {
        ...pod,
        metadata: { ...pod.metadata, annotations: { 'warden.dev/agent': 'support-bot' } },
      },
      'NotInjected',
      'not admitted through the Warden webhook',
    ],
    [
      'a look-alike broker running another image',
      withBroker({ image: 'docker.io/evil/broker:1' }),
      'BrokerImageNotTrusted',
      'not a broker image this Warden trusts',
    ],
    [
      'a look-alike broker sending its token elsewhere',
      withBroker({
        args: [
          'broker',
          '--token-file=/var/run/secrets/warden.dev/broker/token',
          '--authority-url=https://evil.example',
        ],
      }),
      'BrokerContainerAltered',
      'not to this authority',
    ],
    [
      'a broker whose entrypoint is replaced',
      withBroker({ command: ['sh', '-c', 'cat /var/run/secrets/warden.dev/broker/token'] }),
      'BrokerContainerAltered',
      'overrides the image entrypoint',
    ],
    [
      'an agent container mounting the token volume',
      {
        ...pod,
        spec: {
          ...pod.spec,
          containers: [
            {
              name: 'bot',
              image: 'ghcr.io/acme/bot@sha256:1',
              volumeMounts: [{ name: 'warden-broker-token', mountPath: '/t' }],
            },
          ],
        },
      },
      'TokenVolumeMounted',
      'container "bot" mounts volume "warden-broker-token"',
    ],
    [
      'an agent container mounting its own token for the broker audience',
      {
        ...pod,
        spec: {
          ...pod.spec,
          volumes: [
            ...(pod.spec.volumes ?? []),
            {
              name: 'mine',
              projected: { sources: [{ serviceAccountToken: { audience: 'warden.dev/broker', path: 't' } }] },
            },
          ],
          containers: [
            {
              name: 'bot',
              image: 'ghcr.io/acme/bot@sha256:1',
              volumeMounts: [{ name: 'mine', mountPath: '/t' }],
            },
          ],
        },
      },
      'BrokerAudienceToken',
      'container "bot" mounts volume "mine"',
    ],
    [
      'an ephemeral container in the broker process namespace',
      {
        ...pod,
        spec: {
          ...pod.spec,
          ephemeralContainers: [{ name: 'debug', image: 'busybox', targetContainerName: 'warden-broker' }],
        },
      },
      'EphemeralTargetsBroker',
      'ephemeral container "debug"',
    ],
  ];
  it.each(cases)('refuses %s (also on refresh)', (_name, p, reason, message) => {
    for (const refresh of [false, true]) {
      const d = decideAttestation(facts({ pod: p, refresh }));
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.error.code).toBe('unauthorized_client');
      expect(d.error.description).toContain(message);
      expect(d.error.description).toContain('so it gets no session');
      expect(d.error.detail).toContain(reason);
    }
  });

  it('trusts a further broker image when configured (an upgrade in progress)', () => {
    const p = withBroker({ image: 'ghcr.io/warden-dev/warden:0.0.9' });
    expect(decideAttestation(facts({ pod: p })).ok).toBe(false);
    const upgrade = { ...broker, trustedImages: [TEST_BROKER_IMAGE, 'ghcr.io/warden-dev/warden:0.0.9'] };
    expect(decideAttestation(facts({ pod: p, broker: upgrade })).ok).toBe(true);
  });
});

describe('parseServiceAccountUsername', () => {
  it.each([
    ['system:serviceaccount:ns:sa', { namespace: 'ns', name: 'sa' }],
    ['system:serviceaccount:ns', undefined],
    ['system:serviceaccount:ns:sa:x', undefined],
    ['alice', undefined],
    [undefined, undefined],
  ])('%s', (username, want) => {
    expect(parseServiceAccountUsername(username)).toEqual(want);
  });
});

describe('CachedTokenReviewer', () => {
  const jwt = (exp: number) => `${b64({ alg: 'RS256' })}.${b64({ aud: ['warden.dev/broker'], exp })}.sig`;

  class CountingReviewer {
    calls = 0;
    constructor(private readonly result: TokenReviewResult) {}
    async review(): Promise<TokenReviewResult> {
      this.calls++;
      return this.result;
    }
  }

  it('reviews a token once until it expires', async () => {
    let now = 1_000_000;
    const inner = new CountingReviewer(review);
    const cached = new CachedTokenReviewer(inner, { now: () => now });
    const token = jwt(now / 1000 + 600);
    await cached.review(token);
    await cached.review(token);
    expect(inner.calls).toBe(1);
    expect(cached.knownGood(token)).toBe(true);
    now += 601_000;
    expect(cached.knownGood(token)).toBe(false);
    await cached.review(token);
    expect(inner.calls).toBe(2);
  });

  it('drops a review the skew budget (2 min) before the token expires: the API server may run ahead', async () => {
    let now = 1_000_000;
    const inner = new CountingReviewer(review);
    const cached = new CachedTokenReviewer(inner, { now: () => now });
    const token = jwt(now / 1000 + 600);
    await cached.review(token);
    now += 600_000 - 120_000 - 1;
    expect(cached.knownGood(token)).toBe(true);
    now += 1;
    expect(cached.knownGood(token)).toBe(false);
    // A token within the budget of its expiry is reviewed every time, never cached.
    const short = jwt(now / 1000 + 60);
    await cached.review(short);
    await cached.review(short);
    expect(inner.calls).toBe(3);
  });

  it('never caches a rejection', async () => {
    const inner = new CountingReviewer({ authenticated: false, error: 'x' });
    const cached = new CachedTokenReviewer(inner);
    const token = jwt(Date.now() / 1000 + 600);
    await cached.review(token);
    await cached.review(token);
    expect(inner.calls).toBe(2);
    expect(cached.knownGood(token)).toBe(false);
  });

  it('bounds the cache size', async () => {
    const cached = new CachedTokenReviewer(new CountingReviewer(review), { maxEntries: 2 });
    const tokens = [1, 2, 3].map((i) => jwt(Date.now() / 1000 + 600 + i));
    for (const t of tokens) await cached.review(t);
    expect(cached.knownGood(tokens[0]!)).toBe(false);
    expect(cached.knownGood(tokens[2]!)).toBe(true);
  });
});
