/**
 * Signed-image attestation (spec.attestation.images.signatures) end to end: a real distribution
 * registry on loopback holding images pushed over its HTTP API and cosign-format signatures made
 * here with node:crypto keys; real Pods and AgentIdentities in the real kube-apiserver, their
 * status.containerStatuses[].imageID set as the kubelet sets it; the authority fetching and
 * verifying the signatures at /v1/token.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateAgentIdentitySpec } from '../core/api/validate.js';
import { GROUP, PLURAL, VERSION } from '../core/constants.js';
import { freshNamespace, kubeConfig, kubectl } from '../e2e/harness/index.js';
import { type Registry, startRegistry, startTokenServer } from '../e2e/tools/registry.js';
import { KubeConfigApi } from '../kube/kube.js';
import { MemoryAuditSink } from './audit.js';
import { TOKEN_TYPE_ACCESS_TOKEN } from './constants.js';
import { RegistrySignatureVerifier } from './image-signatures.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  exchangeToken,
  type Fixture,
  fixture,
  type HttpResult,
  patchAgentIdentity,
  projectedToken,
  TEST_BROKER_IMAGE,
} from './int-fixtures.js';

const REPO = 'acme/agent';

let f: Fixture;
let registry: Registry;
let authority: Authority;
let base: string;
const audit = new MemoryAuditSink();
const verifier = new RegistrySignatureVerifier({ timeoutMs: 3000 });

function keyPair(): { privateKey: KeyObject; pem: string } {
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey: k.privateKey, pem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}
const oldKey = keyPair();
const newKey = keyPair();
const strangerKey = keyPair();

const lastAudit = () => audit.events.at(-1)!;

beforeAll(async () => {
  registry = await startRegistry();
  const kc = kubeConfig();
  f = fixture(kc, await freshNamespace('image-sig'));
  await createServiceAccount(f, 'bot-sa');
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace: f.namespace,
    issuer: f.issuer,
    audit,
    log: pino({ level: 'silent' }),
    rateLimit: { burst: 200, refillPerSecond: 10, maxSources: 1000 },
    imageSignatures: verifier,
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
}, 20 * 60_000);

afterAll(async () => {
  await authority?.close();
  await registry?.close();
});

/** Sets the pod's status as the kubelet does once the agent container runs `digest`. */
async function running(pod: string, digest: string, host = registry.host): Promise<void> {
  const image = `${host}/${REPO}:v1`;
  await new KubeConfigApi(kubeConfig()).request(
    'PATCH',
    `/api/v1/namespaces/${f.namespace}/pods/${pod}/status`,
    {
      body: {
        status: {
          containerStatuses: [
            {
              name: 'agent',
              image,
              imageID: `${host}/${REPO}@${digest}`,
              ready: true,
              restartCount: 0,
              state: { running: { startedAt: new Date().toISOString() } },
            },
          ],
        },
      },
      contentType: 'application/merge-patch+json',
    },
  );
}

/** An agent pod of `agent` running `digest` (spec image: the v1 tag) and its projected token. */
async function agentPod(name: string, agent: string, digest: string, host = registry.host): Promise<string> {
  const p = await createPod(f, name, {
    serviceAccount: 'bot-sa',
    agent,
    image: `${host}/${REPO}:v1`,
  });
  await running(name, digest, host);
  return projectedToken(f, 'bot-sa', p);
}

const keys = (...ks: Array<[string, { pem: string }]>) => ks.map(([name, k]) => ({ name, publicKey: k.pem }));

function signedIdentity(name: string, signingKeys: ReturnType<typeof keys>): Promise<void> {
  return createAgentIdentity(f, name, {
    serviceAccountName: 'bot-sa',
    attestation: { images: { signatures: { keys: signingKeys } } },
  });
}

function refused(res: HttpResult, reason: string, message: string): void {
  expect(res.status, res.text).toBe(400);
  expect(res.body.error).toBe('unauthorized_client');
  expect(res.body.error_description).toContain(message);
  expect(lastAudit()).toMatchObject({ decision: 'Deny', detail: reason, endpoint: '/v1/token' });
}

/** Exchanges until the authority's watch-fed AgentIdentity store shows a change (`done` says when). */
async function exchangeUntil(token: string, done: (r: HttpResult) => boolean): Promise<HttpResult> {
  let res = await exchangeToken(base, token);
  for (let i = 0; i < 50 && !done(res); i++) {
    await new Promise((r) => setTimeout(r, 100));
    res = await exchangeToken(base, token);
  }
  return res;
}

describe('spec.attestation.images.signatures', () => {
  it('a pod running a signed image attests, and refreshes', async () => {
    const digest = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, digest, oldKey.privateKey);
    await signedIdentity('signed-bot', keys(['release-2025', oldKey]));
    const res = await exchangeToken(base, await agentPod('signed-1', 'signed-bot', digest));
    expect(res.status, res.text).toBe(200);
    expect(lastAudit()).toMatchObject({ decision: 'Allow', agent: 'signed-bot' });
    const refresh = await exchangeToken(base, res.body.access_token as string, {
      subject_token_type: TOKEN_TYPE_ACCESS_TOKEN,
    });
    expect(refresh.status, refresh.text).toBe(200);
  });

  it('a pod running an unsigned image is refused (ImageNotSigned)', async () => {
    const digest = await registry.pushImage(REPO, 'unsigned');
    await signedIdentity('unsigned-bot', keys(['release-2025', oldKey]));
    refused(
      await exchangeToken(base, await agentPod('unsigned-1', 'unsigned-bot', digest)),
      'ImageNotSigned',
      `pod does not meet AgentIdentity "unsigned-bot" attestation: container agent runs image ${digest} (${registry.host}/${REPO}:v1) without a valid signature by spec.attestation.images.signatures.keys: image ${registry.host}/${REPO}@${digest} has no cosign signature (no ${registry.host}/${REPO}:${digest.replace(':', '-')}.sig in its registry); sign it with cosign sign --key`,
    );
  });

  it('a re-tagged pod (the tag now names an unsigned image) loses its session at the refresh', async () => {
    const signed = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, signed, oldKey.privateKey);
    await signedIdentity('retag-bot', keys(['release-2025', oldKey]));
    const ok = await exchangeToken(base, await agentPod('retag-1', 'retag-bot', signed));
    expect(ok.status, ok.text).toBe(200);
    // v1 is pushed again with other content; the container restarts and runs the new digest.
    const other = await registry.pushImage(REPO, 'v1');
    await running('retag-1', other);
    refused(
      await exchangeToken(base, ok.body.access_token as string, {
        subject_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      }),
      'ImageNotSigned',
      `container agent runs image ${other} (${registry.host}/${REPO}:v1) without a valid signature`,
    );
  });

  it('a signature copied from the signed image to another digest is refused (ImageSignatureInvalid)', async () => {
    const signed = await registry.pushImage(REPO, 'v1');
    const other = await registry.pushImage(REPO, 'evil');
    // The attacker stores the signed image's valid payload+signature under the other digest's tag.
    await registry.sign(REPO, other, oldKey.privateKey, { digest: signed });
    await signedIdentity('copy-bot', keys(['release-2025', oldKey]));
    refused(
      await exchangeToken(base, await agentPod('copy-1', 'copy-bot', other)),
      'ImageSignatureInvalid',
      `has 1 cosign signature, none valid: key release-2025 signed image ${signed}, not the running ${other} (a signature copied to another image)`,
    );
  });

  it('a signature for another repository is refused (ImageSignatureInvalid)', async () => {
    const digest = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, digest, oldKey.privateKey, { reference: `${registry.host}/acme/other` });
    await signedIdentity('repo-bot', keys(['release-2025', oldKey]));
    refused(
      await exchangeToken(base, await agentPod('repo-1', 'repo-bot', digest)),
      'ImageSignatureInvalid',
      `key release-2025 signed this digest as ${registry.host}/acme/other, not as ${registry.host}/${REPO}`,
    );
  });

  it('an image signed by a key the AgentIdentity does not list is refused (ImageSignatureInvalid)', async () => {
    const digest = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, digest, strangerKey.privateKey);
    await signedIdentity('stranger-bot', keys(['release-2025', oldKey]));
    refused(
      await exchangeToken(base, await agentPod('stranger-1', 'stranger-bot', digest)),
      'ImageSignatureInvalid',
      'none valid: it is signed by none of the keys in spec.attestation.images.signatures.keys (release-2025)',
    );
  });

  it('key rotation: with two keys images signed by either attest; the old key removed, its images are refused', async () => {
    const byOld = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, byOld, oldKey.privateKey);
    const byNew = await registry.pushImage(REPO, 'v2');
    await registry.sign(REPO, byNew, newKey.privateKey);
    await signedIdentity('rotate-bot', keys(['release-2025', oldKey], ['release-2026', newKey]));
    const oldToken = await agentPod('rotate-old', 'rotate-bot', byOld);
    const newToken = await agentPod('rotate-new', 'rotate-bot', byNew);
    expect((await exchangeToken(base, oldToken)).status).toBe(200);
    expect((await exchangeToken(base, newToken)).status).toBe(200);
    await patchAgentIdentity(f, 'rotate-bot', {
      attestation: { images: { signatures: { keys: keys(['release-2026', newKey]) } } },
    });
    refused(
      await exchangeUntil(oldToken, (r) => r.status !== 200),
      'ImageSignatureInvalid',
      'it is signed by none of the keys in spec.attestation.images.signatures.keys (release-2026)',
    );
    expect((await exchangeToken(base, newToken)).status).toBe(200);
  });

  it('a registry that does not answer refuses attestation (fails closed) until it is back', async () => {
    const digest = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, digest, newKey.privateKey);
    await signedIdentity('down-bot', keys(['release-2026', newKey]));
    const token = await agentPod('down-1', 'down-bot', digest);
    await registry.stop();
    try {
      refused(
        await exchangeToken(base, token),
        'ImageSignatureUnverifiable',
        `cannot fetch the signature of image ${registry.host}/${REPO}@${digest} from registry ${registry.host} (ECONNREFUSED); attestation fails closed until the registry answers`,
      );
    } finally {
      await registry.start();
    }
    // "Cannot tell" is not cached: the registry back, the same pod attests.
    expect((await exchangeToken(base, token)).status).toBe(200);
  });

  it('a registry that wants an anonymous bearer token (as Docker Hub and ghcr.io do) gets the token dance', async () => {
    const tokens = await startTokenServer();
    // The same storage served behind token auth: pushes go through the open registry.
    const guarded = await startRegistry({ storage: registry.storage, tokenAuth: tokens });
    try {
      const digest = await registry.pushImage(REPO, 'v1');
      await registry.sign(REPO, digest, newKey.privateKey, { reference: `${guarded.host}/${REPO}` });
      const unsigned = await registry.pushImage(REPO, 'v2');
      // Without a token the registry refuses, with a Bearer challenge.
      const bare = await fetch(`http://${guarded.host}/v2/${REPO}/manifests/${digest}`);
      expect(bare.status).toBe(401);
      expect(bare.headers.get('www-authenticate')).toContain(`Bearer realm="${tokens.realm}"`);
      await signedIdentity('token-bot', keys(['release-2026', newKey]));
      const res = await exchangeToken(base, await agentPod('token-1', 'token-bot', digest, guarded.host));
      expect(res.status, res.text).toBe(200);
      expect(tokens.scopes).toContain(`repository:${REPO}:pull`);
      // The token is used for "not signed" too: a 404 behind the token, not a 401.
      refused(
        await exchangeToken(base, await agentPod('token-2', 'token-bot', unsigned, guarded.host)),
        'ImageNotSigned',
        `image ${guarded.host}/${REPO}@${unsigned} has no cosign signature`,
      );
    } finally {
      await guarded.close();
      await tokens.close();
    }
  });

  it('a digest in images.digests needs no signature; others still do', async () => {
    const pinned = await registry.pushImage(REPO, 'pinned');
    const unsigned = await registry.pushImage(REPO, 'v1');
    await createAgentIdentity(f, 'pinned-bot', {
      serviceAccountName: 'bot-sa',
      attestation: { images: { digests: [pinned], signatures: { keys: keys(['release-2026', newKey]) } } },
    });
    expect((await exchangeToken(base, await agentPod('pinned-1', 'pinned-bot', pinned))).status).toBe(200);
    refused(
      await exchangeToken(base, await agentPod('pinned-2', 'pinned-bot', unsigned)),
      'ImageNotSigned',
      `runs image ${unsigned} (${registry.host}/${REPO}:v1), not one of spec.attestation.images.digests, without a valid signature`,
    );
  });

  it('an RSA key passes the CRD but refuses attestation, naming the field', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const digest = await registry.pushImage(REPO, 'v1');
    await registry.sign(REPO, digest, newKey.privateKey);
    await signedIdentity('rsa-bot', [
      { name: 'release-2026', publicKey: newKey.pem },
      { name: 'legacy', publicKey: rsa },
    ]);
    refused(
      await exchangeToken(base, await agentPod('rsa-1', 'rsa-bot', digest)),
      'ImageSignatureUnverifiable',
      'spec.attestation.images.signatures.keys[1].publicKey: is an RSA key; only ECDSA P-256 keys (what cosign generate-key-pair writes) are supported',
    );
  });

  it('the API server rejects a publicKey that is not PEM, naming the field', async () => {
    const err = await createAgentIdentity(f, 'bad-pem-bot', {
      serviceAccountName: 'bot-sa',
      attestation: { images: { signatures: { keys: [{ name: 'k', publicKey: 'ssh-ed25519 AAAA…' }] } } },
    }).catch((e: unknown) => e);
    expect(String((err as { body?: unknown }).body ?? err)).toContain(
      'spec.attestation.images.signatures.keys[0].publicKey',
    );
    // Nothing was created.
    await expect(
      f.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: f.namespace,
        plural: PLURAL.AgentIdentity,
        name: 'bad-pem-bot',
      }),
    ).rejects.toThrow();
  });

  it('the cookbook recipe (docs/cookbook/signed-images.yaml) is accepted by the API server and the schemas', async () => {
    const file = new URL('../docs/cookbook/signed-images.yaml', import.meta.url);
    const out = await kubectl([
      'apply',
      '--server-side',
      '--dry-run=server',
      '--field-manager=cookbook-test',
      '-n',
      f.namespace,
      '-f',
      file.pathname,
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const doc = parse(readFileSync(file, 'utf8')) as { spec: unknown };
    expect(validateAgentIdentitySpec(doc.spec)).toMatchObject({ ok: true, warnings: [] });
  });
});
