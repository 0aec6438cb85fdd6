/**
 * Token exchange against the real kube-apiserver: real projected tokens from TokenRequest, real
 * TokenReview, real Pods and AgentIdentities, signing keys in a real Secret.
 */
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { OpenidApi, type V1Pod } from '@kubernetes/client-node';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../e2e/harness/index.js';
import { KubeConfigApi } from '../kube/kube.js';
import { MemoryAuditSink } from './audit.js';
import {
  GRANT_TOKEN_EXCHANGE,
  SESSION_TOKEN_TYP,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
} from './constants.js';
import { type Authority, createAuthority } from './index.js';
import {
  createAgentIdentity,
  createPod,
  createServiceAccount,
  deletePod,
  exchangeToken,
  type Fixture,
  fixture,
  form,
  type HttpResult,
  httpCall,
  patchAgentIdentity,
  podWatchShows,
  projectedToken,
  TEST_BROKER_IMAGE,
} from './int-fixtures.js';
import { SecretKeyStore } from './keystore.js';
import { WatchedPods } from './kube.js';

const ISSUER = 'https://warden-authority.test';
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

let f: Fixture;
let authority: Authority;
let base: string;
const audit = new MemoryAuditSink();
let pod: V1Pod;
let token: string;

const exchange = (subjectToken: string, extra: Record<string, string> = {}, localAddress?: string) =>
  exchangeToken(base, subjectToken, extra, localAddress);

/** The last audit event, which every request produces. */
const lastAudit = () => audit.events.at(-1)!;

beforeAll(async () => {
  const kc = kubeConfig();
  const namespace = await freshNamespace('authority');
  f = fixture(kc, namespace);
  await createServiceAccount(f, 'bot-sa');
  await createServiceAccount(f, 'other-sa');
  await createAgentIdentity(f, 'support-bot', { serviceAccountName: 'bot-sa' });
  await createAgentIdentity(f, 'admin-bot', { serviceAccountName: 'bot-sa' });
  authority = await createAuthority({
    trustedBrokerImages: [TEST_BROKER_IMAGE],
    kubeConfig: kc,
    namespace,
    issuer: ISSUER,
    audit,
    log: pino({ level: 'silent' }),
    // A burst the refusal tests (all from 127.0.0.1) stay within; the flood test exceeds it.
    rateLimit: { burst: 40, refillPerSecond: 0.5, maxSources: 1000 },
  });
  base = `http://127.0.0.1:${await authority.listen(0, '127.0.0.1')}`;
  // Unlabelled: the 'watch' pod lookup below finds it by the live GET.
  pod = await createPod(f, 'bot-1', { serviceAccount: 'bot-sa', agent: 'support-bot', unlabelled: true });
  token = await projectedToken(f, 'bot-sa', pod);
});

afterAll(async () => {
  await authority?.close();
});

describe('token exchange (RFC 8693) with a real projected token', () => {
  it('issues a session bound to the pod that any target can verify through the JWKS', async () => {
    const res = await exchange(token);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: 600,
    });
    const session = res.body.access_token as string;

    const jwks = await httpCall(`${base}/.well-known/jwks.json`);
    const { payload, protectedHeader } = await jwtVerify(session, createLocalJWKSet(jwks.body as never), {
      issuer: ISSUER,
      audience: ISSUER,
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: SESSION_TOKEN_TYP });
    expect(payload.sub).toBe(`system:warden:agent:${f.namespace}:support-bot`);
    expect(payload.warden).toEqual({
      namespace: f.namespace,
      agent: 'support-bot',
      serviceAccount: 'bot-sa',
      pod: 'bot-1',
      podUID: pod.metadata!.uid,
    });
    expect(lastAudit()).toMatchObject({
      kind: 'Session',
      decision: 'Allow',
      agent: 'support-bot',
      pod: 'bot-1',
    });
  });

  it('refreshes a session with the session token itself', async () => {
    const first = (await exchange(token)).body.access_token as string;
    const res = await exchange(first, { subject_token_type: TOKEN_TYPE_ACCESS_TOKEN });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token as string).jti).not.toBe(decodeJwt(first).jti);
  });

  it('serves RFC 8414 metadata that an independent client (oauth4webapi) accepts, listing token, introspection and JWKS', async () => {
    const issuer = new URL(ISSUER);
    // The issuer's host is not resolvable in tests: the client's requests go to the loopback server.
    const toLoopback: typeof fetch = (url, init) =>
      fetch(String(url).replace(ISSUER.replace(/\/+$/, ''), base), init);
    const response = await oauth.discoveryRequest(issuer, {
      algorithm: 'oauth2',
      [oauth.customFetch]: toLoopback,
      [oauth.allowInsecureRequests]: true,
    });
    const as = await oauth.processDiscoveryResponse(issuer, response);
    expect(as).toMatchObject({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/v1/token`,
      introspection_endpoint: `${ISSUER}/v1/introspect`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      grant_types_supported: [GRANT_TOKEN_EXCHANGE, 'client_credentials'],
      token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    });
    // The JWKS the metadata names serves the keys sessions are signed with.
    const jwks = (await (await toLoopback(as.jwks_uri as string)).json()) as { keys: { kid?: string }[] };
    const kid = decodeProtectedHeader((await exchange(token)).body.access_token as string).kid;
    expect(jwks.keys.map((k) => k.kid)).toContain(kid);
  });

  it('serves the web identity discovery document: issuer and JWKS, no endpoint it does not have (ADR 0017)', async () => {
    const r = await httpCall(`${base}/.well-known/openid-configuration`);
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc).toEqual({
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'],
    });
    expect(doc).not.toHaveProperty('authorization_endpoint');
    expect(doc).not.toHaveProperty('userinfo_endpoint');
  });

  it('accepts a resource naming the same agent', async () => {
    expect((await exchange(token, { resource: `urn:warden:agent:${f.namespace}:support-bot` })).status).toBe(
      200,
    );
  });
});

describe('token exchange refuses bad input', () => {
  /** Runs a refused exchange and checks the OAuth body and its audit event. */
  async function refused(
    res: Awaited<ReturnType<typeof exchange>>,
    status: number,
    error: string,
    message: string,
  ) {
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(error);
    expect(res.body.error_description).toContain(message);
    expect(lastAudit()).toMatchObject({ decision: 'Deny', error, endpoint: '/v1/token' });
  }

  it('alg none (the real token payload, unsigned)', async () => {
    const [, payload] = token.split('.');
    await refused(
      await exchange(`${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`),
      400,
      'invalid_grant',
      'rejected by the Kubernetes API server',
    );
  });

  it('HS256 signed with the API server public key (algorithm confusion)', async () => {
    const jwks: unknown = await kubeConfig().makeApiClient(OpenidApi).getServiceAccountIssuerOpenIDKeyset();
    const keys = (typeof jwks === 'string' ? JSON.parse(jwks) : jwks) as { keys: Array<{ kid: string }> };
    const [, payload] = token.split('.');
    const input = `${b64({ alg: 'HS256', kid: keys.keys[0]!.kid })}.${payload}`;
    const forged = `${input}.${createHmac('sha256', JSON.stringify(keys.keys[0])).update(input).digest('base64url')}`;
    await refused(await exchange(forged), 400, 'invalid_grant', 'rejected by the Kubernetes API server');
  });

  it('unknown kid (the real payload re-signed by another key)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const [, payload] = token.split('.');
    const input = `${b64({ alg: 'RS256', kid: 'not-a-cluster-key' })}.${payload}`;
    const forged = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    await refused(await exchange(forged), 400, 'invalid_grant', 'rejected by the Kubernetes API server');
  });

  it('expired (a real token whose exp is moved back, hence no longer signed)', async () => {
    const [h, p] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, number>;
    const forged = `${h}.${b64({ ...claims, exp: claims.iat! - 1 })}.${token.split('.')[2]}`;
    await refused(await exchange(forged), 400, 'invalid_grant', 'rejected by the Kubernetes API server');
  });

  it('a token for another audience', async () => {
    const other = await projectedToken(f, 'bot-sa', pod, 'https://some-other-service');
    await refused(await exchange(other), 400, 'invalid_grant', 'audience must include "warden.dev/broker"');
  });

  it('a valid token of a deleted pod (even with its review cached)', async () => {
    const p = await createPod(f, 'short-lived', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    const t = await projectedToken(f, 'bot-sa', p);
    expect((await exchange(t)).status).toBe(200); // review now cached
    await deletePod(f, 'short-lived');
    await podWatchShows(f, authority.pods, 'short-lived', (p) => p === undefined);
    await refused(await exchange(t), 400, 'invalid_grant', 'no longer exists');
    expect(lastAudit().detail).toContain('short-lived');
  });

  it('a token of pod A after pod A was replaced by pod B with the same name', async () => {
    const a = await createPod(f, 'replaced', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    const t = await projectedToken(f, 'bot-sa', a);
    expect((await exchange(t)).status).toBe(200);
    await deletePod(f, 'replaced');
    const b = await createPod(f, 'replaced', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    await podWatchShows(f, authority.pods, 'replaced', (p) => p?.metadata?.uid === b.metadata?.uid);
    await refused(await exchange(t), 400, 'invalid_grant', 'no longer exists');
  });

  it("a token of pod A claiming pod B's agent", async () => {
    await refused(
      await exchange(token, { resource: `urn:warden:agent:${f.namespace}:admin-bot` }),
      400,
      'invalid_target',
      'different agent',
    );
  });

  it('a pod without the agent annotation', async () => {
    const p = await createPod(f, 'plain', { serviceAccount: 'bot-sa' });
    await refused(
      await exchange(await projectedToken(f, 'bot-sa', p)),
      400,
      'unauthorized_client',
      'not an agent',
    );
  });

  it('a pod whose service account does not match the AgentIdentity', async () => {
    const p = await createPod(f, 'wrong-sa', { serviceAccount: 'other-sa', agent: 'support-bot' });
    await refused(
      await exchange(await projectedToken(f, 'other-sa', p)),
      400,
      'unauthorized_client',
      'requires service account "bot-sa"',
    );
  });

  it('a pod that fails the attestation conditions', async () => {
    await createAgentIdentity(f, 'strict-bot', {
      serviceAccountName: 'bot-sa',
      attestation: { requiredPodLabels: { tier: 'prod' }, allowedImages: ['ghcr.io/acme/*@sha256:*'] },
    });
    const bad = await createPod(f, 'strict-1', {
      serviceAccount: 'bot-sa',
      agent: 'strict-bot',
      labels: { tier: 'prod' },
      image: 'docker.io/evil:latest',
    });
    await refused(
      await exchange(await projectedToken(f, 'bot-sa', bad)),
      400,
      'unauthorized_client',
      'allowedImages',
    );
    const good = await createPod(f, 'strict-2', {
      serviceAccount: 'bot-sa',
      agent: 'strict-bot',
      labels: { tier: 'prod' },
    });
    expect((await exchange(await projectedToken(f, 'bot-sa', good))).status).toBe(200);
  });

  it('a pod whose running image digest (pod status, not spec) is not allowed', async () => {
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    // Two allowed digests: the image before and after a rebuild (rotation).
    await createAgentIdentity(f, 'digest-bot', {
      serviceAccountName: 'bot-sa',
      attestation: { images: { digests: [digest('a'), digest('b')] } },
    });
    const running = async (name: string, imageID: string) =>
      new KubeConfigApi(kubeConfig()).request(
        'PATCH',
        `/api/v1/namespaces/${f.namespace}/pods/${name}/status`,
        {
          body: {
            status: {
              containerStatuses: [
                {
                  name: 'agent',
                  image: 'registry.local/acme/agent:v1',
                  imageID,
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
    const p = await createPod(f, 'digest-1', {
      serviceAccount: 'bot-sa',
      agent: 'digest-bot',
      image: 'registry.local/acme/agent:v1',
    });
    const t = await projectedToken(f, 'bot-sa', p);
    // Not running yet: what it will run is unknown.
    await refused(
      await exchange(t),
      400,
      'unauthorized_client',
      'container agent reports no running image digest yet',
    );
    expect(lastAudit().detail).toBe('ImageNotRunning');
    await running('digest-1', `registry.local/acme/agent@${digest('a')}`);
    const ok = await exchange(t);
    expect(ok.status).toBe(200);
    // The tag now resolves to another image (re-tagged, restarted): the same spec string, refused
    // at the next refresh.
    await running('digest-1', `registry.local/acme/agent@${digest('c')}`);
    await refused(
      await exchange(ok.body.access_token as string, { subject_token_type: TOKEN_TYPE_ACCESS_TOKEN }),
      400,
      'unauthorized_client',
      `pod does not meet AgentIdentity "digest-bot" attestation: container agent runs image ${digest('c')} (registry.local/acme/agent:v1), which is not one of spec.attestation.images.digests`,
    );
    expect(lastAudit().detail).toBe('ImageDigestNotAllowed');
    // The second allowed digest works as well.
    await running('digest-1', `docker-pullable://registry.local/acme/agent@${digest('b')}`);
    expect((await exchange(t)).status).toBe(200);
  });

  it('a suspended agent gets no session (nor a refresh)', async () => {
    await createAgentIdentity(f, 'paused-bot', { serviceAccountName: 'bot-sa' });
    const p = await createPod(f, 'paused-1', { serviceAccount: 'bot-sa', agent: 'paused-bot' });
    const t = await projectedToken(f, 'bot-sa', p);
    const session = (await exchange(t)).body.access_token as string;
    await patchAgentIdentity(f, 'paused-bot', { suspended: true, suspendReason: 'incident 7' });
    // The authority reads AgentIdentities from its watch-fed store (docs/adr/0006): the
    // suspension applies once the watch delivers it — milliseconds, well inside the kill
    // switch's 1 s bound — so poll for it rather than race it.
    let res = await exchange(t);
    for (let i = 0; i < 50 && res.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await exchange(t);
    }
    await refused(res, 403, 'access_denied', 'suspended');
    expect(lastAudit().detail).toBe('incident 7');
    await refused(
      await exchange(session, { subject_token_type: TOKEN_TYPE_ACCESS_TOKEN }),
      403,
      'access_denied',
      'suspended',
    );
  });

  it.each([
    [
      'a wrong grant_type',
      form({ grant_type: 'password', subject_token: 'x', subject_token_type: TOKEN_TYPE_JWT }),
      'unsupported_grant_type',
      'grant_type must be',
    ],
    [
      'a missing subject_token',
      form({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token_type: TOKEN_TYPE_JWT }),
      'invalid_request',
      'missing required parameter subject_token',
    ],
    [
      'an unknown subject_token_type',
      form({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token: 'x', subject_token_type: 'saml' }),
      'invalid_request',
      'subject_token_type must be',
    ],
    [
      'malformed form encoding',
      `grant_type=${GRANT_TOKEN_EXCHANGE}&subject_token=%E0%A4%A`,
      'invalid_request',
      'malformed application/x-www-form-urlencoded',
    ],
    [
      'a repeated parameter',
      `${form({ grant_type: GRANT_TOKEN_EXCHANGE })}&grant_type=x`,
      'invalid_request',
      'more than once',
    ],
  ])('%s', async (_name, body, error, message) => {
    const res = await httpCall(`${base}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    await refused(res, 400, error, message);
  });

  it('a non-form content type', async () => {
    const res = await httpCall(`${base}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    await refused(res, 400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
  });

  it('an oversize body (declared and streamed)', async () => {
    const big = 'a'.repeat(64 * 1024);
    const declared = await httpCall(`${base}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `subject_token=${big}`,
    });
    await refused(declared, 413, 'invalid_request', 'exceeds the 16384-byte limit');
    const chunked = await httpCall(`${base}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' },
      body: `subject_token=${big}`,
    });
    await refused(chunked, 413, 'invalid_request', 'exceeds the 16384-byte limit');
  });
});

describe('a flood of failed attempts', () => {
  it('is rate limited per source while valid requests are still answered', async () => {
    const flooder = '127.0.0.3';
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await exchange(`garbage-${i}`, {}, flooder)).status);
    expect(statuses.slice(0, 40).every((s) => s === 400)).toBe(true);
    expect(statuses.slice(-10).every((s) => s === 429)).toBe(true);
    const limited = await exchange('garbage-again', {}, flooder);
    expect(limited.body.error).toBe('slow_down');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(lastAudit()).toMatchObject({ decision: 'Deny', error: 'slow_down', source: flooder });

    // Other sources are unaffected, and the flooding source is still served for a known-good token.
    expect((await exchange(token, {}, '127.0.0.4')).status).toBe(200);
    expect((await exchange(token, {}, flooder)).status).toBe(200);
    // ...but not for an unknown (even if valid) one: that would cost a TokenReview.
    const fresh = await projectedToken(f, 'bot-sa', pod);
    expect((await exchange(fresh, {}, flooder)).status).toBe(429);
  });
});

describe('signing keys in a Secret', () => {
  it('two replicas starting together agree on the keys (create-if-absent)', async () => {
    const namespace = await freshNamespace('authority-keys');
    const stores = [0, 1, 2].map(
      () => new SecretKeyStore({ api: new KubeConfigApi(kubeConfig()), namespace }),
    );
    await Promise.all(stores.map((s) => s.sync()));
    const kids = stores.map((s) => s.signingKey().kid);
    expect(new Set(kids).size).toBe(1);
    expect(stores[0]!.jwks()).toEqual(stores[2]!.jwks());
  });
});

describe('pod lookup, default (the pod watch, read live whenever it may not answer)', () => {
  let watching: Authority;
  let pods: WatchedPods;
  let call: (t: string, type?: string) => Promise<HttpResult>;
  beforeAll(async () => {
    // Its own authority (default options): the refusals below do not spend the shared one's budget.
    watching = await createAuthority({
      trustedBrokerImages: [TEST_BROKER_IMAGE],
      kubeConfig: kubeConfig(),
      namespace: f.namespace,
      watchNamespace: f.namespace,
      issuer: ISSUER,
      audit,
      log: pino({ level: 'silent' }),
    });
    const url = `http://127.0.0.1:${await watching.listen(0, '127.0.0.1')}/v1/token`;
    call = (t, type = TOKEN_TYPE_JWT) =>
      httpCall(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token: t, subject_token_type: type }),
      });
    expect(watching.pods).toBeInstanceOf(WatchedPods);
    pods = watching.pods as WatchedPods;
  });
  afterAll(async () => {
    await watching?.close();
  });
  const reads = () => ({ cache: pods.cacheAnswers, live: pods.liveReads });

  it('answers for a watched agent pod from the watch, without a live read', async () => {
    const p = await createPod(f, 'watched-1', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    await podWatchShows(f, pods, 'watched-1', (w) => w?.metadata?.uid === p.metadata?.uid);
    const before = reads();
    expect((await call(await projectedToken(f, 'bot-sa', p))).status).toBe(200);
    expect(reads()).toEqual({ cache: before.cache + 1, live: before.live });
  });

  it('falls back to a live read on a cache miss (a pod without the agent label is not watched)', async () => {
    expect(pods.has(f.namespace, 'bot-1')).toBe(false);
    const before = reads();
    expect((await call(token)).status).toBe(200);
    expect(reads()).toEqual({ cache: before.cache, live: before.live + 1 });
  });

  it('accepts a pod created a moment ago (found by the watch or, before it arrives, by the live read)', async () => {
    const p = await createPod(f, 'just-created', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    expect((await call(await projectedToken(f, 'bot-sa', p))).status).toBe(200);
  });

  it("refuses a deleted pod's token (and a session refresh) once the watch saw the deletion: the miss is read live", async () => {
    const p = await createPod(f, 'watched-gone', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    const t = await projectedToken(f, 'bot-sa', p);
    const first = await call(t); // the TokenReview is cached from here on: only the pod lookup can refuse
    expect(first.status).toBe(200);
    await deletePod(f, 'watched-gone');
    await podWatchShows(f, pods, 'watched-gone', (w) => w === undefined);
    const before = reads();
    const res = await call(t);
    expect(res.status).toBe(400);
    expect(res.body.error_description).toContain('no longer exists');
    const refresh = await call(first.body.access_token as string, TOKEN_TYPE_ACCESS_TOKEN);
    expect(refresh.status).toBe(400);
    expect(refresh.body.error_description).toContain('no longer exists');
    expect(reads()).toEqual({ cache: before.cache, live: before.live + 2 });
  });

  it('refuses the token of a pod replaced by a same-named pod with another UID, and accepts the new pod', async () => {
    const a = await createPod(f, 'recreated', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    const tokenOfA = await projectedToken(f, 'bot-sa', a);
    expect((await call(tokenOfA)).status).toBe(200); // review of A's token cached
    await deletePod(f, 'recreated');
    const b = await createPod(f, 'recreated', { serviceAccount: 'bot-sa', agent: 'support-bot' });
    await podWatchShows(f, pods, 'recreated', (w) => w?.metadata?.uid === b.metadata?.uid);
    const before = reads();
    const res = await call(tokenOfA);
    expect(res.status).toBe(400);
    expect(res.body.error_description).toContain('a pod with the same name has a different UID');
    // The watched pod (B) does not answer for A's UID: that refusal came from a live read.
    expect(reads()).toEqual({ cache: before.cache, live: before.live + 1 });
    expect((await call(await projectedToken(f, 'bot-sa', b))).status).toBe(200);
    expect(reads()).toEqual({ cache: before.cache + 1, live: before.live + 1 });
  });

  it('reads a terminating pod live, so its removal is refused without waiting for the watch', async () => {
    // Bound to a node: a graceful delete leaves it terminating (no kubelet here to finish it).
    const p = await createPod(f, 'terminating', {
      serviceAccount: 'bot-sa',
      agent: 'support-bot',
      nodeName: 'no-such-node',
    });
    const t = await projectedToken(f, 'bot-sa', p);
    expect((await call(t)).status).toBe(200);
    await deletePod(f, 'terminating', 300);
    await podWatchShows(f, pods, 'terminating', (w) => w?.metadata?.deletionTimestamp !== undefined);
    const before = reads();
    // Still there while it terminates (as for a live lookup), but read live.
    expect((await call(t)).status).toBe(200);
    expect(reads()).toEqual({ cache: before.cache, live: before.live + 1 });
    await deletePod(f, 'terminating', 0);
    const res = await call(t); // no wait: the watch still holds the terminating pod
    expect(res.status).toBe(400);
    expect(res.body.error_description).toContain('no longer exists');
  });

  it("podLookup: 'live' reads every pod live", async () => {
    const live = await createAuthority({
      trustedBrokerImages: [TEST_BROKER_IMAGE],
      kubeConfig: kubeConfig(),
      namespace: f.namespace,
      watchNamespace: f.namespace,
      issuer: ISSUER,
      audit,
      log: pino({ level: 'silent' }),
      podLookup: 'live',
    });
    try {
      expect(live.pods).not.toBeInstanceOf(WatchedPods);
      const url = `http://127.0.0.1:${await live.listen(0, '127.0.0.1')}/v1/token`;
      const p = await createPod(f, 'live-gone', { serviceAccount: 'bot-sa', agent: 'support-bot' });
      const t = await projectedToken(f, 'bot-sa', p);
      const post = () =>
        httpCall(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: form({
            grant_type: GRANT_TOKEN_EXCHANGE,
            subject_token: t,
            subject_token_type: TOKEN_TYPE_JWT,
          }),
        });
      expect((await post()).status).toBe(200);
      await deletePod(f, 'live-gone');
      const res = await post(); // no wait: there is no watch to catch up
      expect(res.status).toBe(400);
      expect(res.body.error_description).toContain('no longer exists');
    } finally {
      await live.close();
    }
  });
});
