/**
 * Proof that the local control plane is a real one: projected service-account tokens
 * bound to a Pod are issued (TokenRequest), reviewed (TokenReview) and verifiable
 * offline against the API server's JWKS — and bad tokens are rejected.
 */
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { createLocalJWKSet, decodeJwt, errors, type JSONWebKeySet, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BROKER_AUDIENCE } from '../../core/constants.js';
import { freshNamespace, kubeConfig, kubectl } from '../harness/index.js';

const SA = 'agent-sa';

async function makePod(core: CoreV1Api, namespace: string, name: string) {
  return core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name },
      spec: { serviceAccountName: SA, containers: [{ name: 'agent', image: 'example.com/agent:1' }] },
    },
  });
}

async function podToken(
  core: CoreV1Api,
  namespace: string,
  pod: { name: string; uid: string },
  audience: string,
) {
  const res = await core.createNamespacedServiceAccountToken({
    name: SA,
    namespace,
    body: {
      spec: {
        audiences: [audience],
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
      },
    },
  });
  return res.status?.token ?? '';
}

async function review(kc: KubeConfig, token: string, audiences = [DEFAULT_BROKER_AUDIENCE]) {
  const res = await kc
    .makeApiClient(AuthenticationV1Api)
    .createTokenReview({ body: { spec: { token, audiences } } });
  return res.status ?? {};
}

describe('local control plane: service-account tokens', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let ns: string;
  let pod: { name: string; uid: string };
  let token: string;
  let jwks: ReturnType<typeof createLocalJWKSet>;
  let issuer: string;

  beforeAll(async () => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    ns = await freshNamespace('tokens');
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: SA } } });
    const created = await makePod(core, ns, 'agent-0');
    pod = { name: 'agent-0', uid: created.metadata?.uid ?? '' };
    token = await podToken(core, ns, pod, DEFAULT_BROKER_AUDIENCE);
    const raw = await kubectl(['get', '--raw', '/openid/v1/jwks']);
    expect(raw.code, raw.stderr).toBe(0);
    jwks = createLocalJWKSet(JSON.parse(raw.stdout) as JSONWebKeySet);
    const discovery = await kubectl(['get', '--raw', '/.well-known/openid-configuration']);
    issuer = (JSON.parse(discovery.stdout) as { issuer: string }).issuer;
  });

  it('issues a pod-bound token with the requested audience', () => {
    const claims = decodeJwt(token);
    expect(claims.aud).toEqual([DEFAULT_BROKER_AUDIENCE]);
    expect(claims.sub).toBe(`system:serviceaccount:${ns}:${SA}`);
    const k8s = claims['kubernetes.io'] as { pod?: { name: string; uid: string }; namespace?: string };
    expect(k8s.namespace).toBe(ns);
    expect(k8s.pod).toEqual(pod);
  });

  it('TokenReview accepts it and returns the pod binding', async () => {
    const status = await review(kc, token);
    expect(status.authenticated).toBe(true);
    expect(status.audiences).toEqual([DEFAULT_BROKER_AUDIENCE]);
    expect(status.user?.username).toBe(`system:serviceaccount:${ns}:${SA}`);
    expect(status.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual([pod.name]);
    expect(status.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([pod.uid]);
  });

  it('the JWKS from /openid/v1/jwks verifies it with jose', async () => {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer,
      audience: DEFAULT_BROKER_AUDIENCE,
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe(`system:serviceaccount:${ns}:${SA}`);
  });

  it('rejects a token for another audience', async () => {
    const other = await podToken(core, ns, pod, 'someone-else');
    expect((await review(kc, other)).authenticated).toBeFalsy();
    await expect(
      jwtVerify(other, jwks, { issuer, audience: DEFAULT_BROKER_AUDIENCE }),
    ).rejects.toBeInstanceOf(errors.JWTClaimValidationFailed);
  });

  it('rejects an expired token', async () => {
    const exp = decodeJwt(token).exp ?? 0;
    // Verify as of one minute after expiry (the API server's minimum lifetime is 600 s).
    const later = new Date((exp + 60) * 1000);
    await expect(
      jwtVerify(token, jwks, { issuer, audience: DEFAULT_BROKER_AUDIENCE, currentDate: later }),
    ).rejects.toBeInstanceOf(errors.JWTExpired);
  });

  it('rejects a token with a tampered signature', async () => {
    const [h, p, s = ''] = token.split('.');
    const flipped = `${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`;
    const tampered = `${h}.${p}.${flipped}`;
    expect((await review(kc, tampered)).authenticated).toBeFalsy();
    await expect(
      jwtVerify(tampered, jwks, { issuer, audience: DEFAULT_BROKER_AUDIENCE }),
    ).rejects.toBeInstanceOf(errors.JWSSignatureVerificationFailed);
  });

  it('rejects a token whose pod was deleted', async () => {
    const created = await makePod(core, ns, 'agent-gone');
    const gone = { name: 'agent-gone', uid: created.metadata?.uid ?? '' };
    const t = await podToken(core, ns, gone, DEFAULT_BROKER_AUDIENCE);
    expect((await review(kc, t)).authenticated).toBe(true);
    // No kubelet: the pod is unscheduled, so a zero grace period removes it at once.
    await core.deleteNamespacedPod({ name: gone.name, namespace: ns, gracePeriodSeconds: 0 });
    await expect(core.readNamespacedPod({ name: gone.name, namespace: ns })).rejects.toMatchObject({
      code: 404,
    });
    // The API server caches successful token authentications for ~10 s; poll past that.
    let status = await review(kc, t);
    for (let i = 0; i < 60 && status.authenticated; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = await review(kc, t);
    }
    expect(status.authenticated).toBeFalsy();
    expect(status.error ?? '').toMatch(/not found|deleted|invalid/i);
  });
});
