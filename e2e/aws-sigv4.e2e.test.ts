/**
 * Cloud access by web identity federation, end to end through the real chain: a real API server,
 * a real `warden controller` whose issuer is its own loopback URL, a real broker, and a real MinIO
 * (S3 + OpenID STS, built from its Go module) configured with Warden's discovery document.
 *
 *   agent --unsigned HTTP--> broker --SigV4--> MinIO S3   (MinIO verifies the signature)
 *                              |
 *                          authority --AssumeRoleWithWebIdentity(Warden token)--> MinIO STS
 *                                       (MinIO verifies the token against Warden's JWKS)
 *
 * What MinIO verified is asserted by what it answers: it serves and stores objects only for
 * requests whose SigV4 signature it checked with the temporary credentials it issued, and it
 * issues those only for a Warden token whose signature, expiry and audience it checked.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OidcFixture, startOidcProvider } from '../authority/oidc-fixture.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import type { RunningController } from '../controller/run.js';
import { API_VERSION, HEADER_USER_TOKEN, PLURAL } from '../core/constants.js';
import { createAgentPod, startTestController, wardenObjectCreator, writePodToken } from './agent-stack.js';
import { eventually } from './eventually.js';
import { freshNamespace, kubeConfig } from './harness/index.js';
import { freePort } from './tools/local-tool.js';
import { type Minio, startMinio } from './tools/minio.js';

const AGENT = 'reporter';
const CLIENT_ID = 'warden-minio';
const BUCKET = 'agent-data';

/** Every log line of the controller and the broker, as written (to grep for keys). */
const logLines: string[] = [];
const capture = pino({ level: 'trace' }, { write: (s: string) => logLines.push(s) });

/** The controller's JSON audit lines (docs/audit-export.md). */
const auditLines: string[] = [];

/** Every byte the agent received (headers and bodies). */
const received: string[] = [];

describe('AWS web identity federation and SigV4 signing against MinIO', () => {
  let ns: string;
  let controller: RunningController;
  let broker: RunningBroker;
  let minio: Minio;
  let idp: OidcFixture;
  const users: Record<string, string> = {};
  let tokenDir: string;
  let base: string;

  async function agentCall(
    provider: string,
    path: string,
    init: { method?: string; body?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: string }> {
    const r = await fetch(`${base}/${provider}${path}`, {
      method: init.method ?? 'GET',
      headers: { 'x-request-id': `aws-${randomBytes(4).toString('hex')}`, ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const body = await r.text();
    received.push(...[...r.headers].map(([k, v]) => `${k}: ${v}`), body);
    return { status: r.status, body };
  }

  beforeAll(async () => {
    ns = await freshNamespace('aws');
    const kc = kubeConfig();
    const port = await freePort();
    // The issuer is the authority's own loopback URL: MinIO fetches its discovery document and
    // JWKS from there (a real deployment publishes an HTTPS issuer, docs/aws.md).
    const issuer = `http://127.0.0.1:${port}`;
    idp = await startOidcProvider();
    users.alice = await idp.idToken({ sub: 'alice' });
    users.bob = await idp.idToken({ sub: 'bob' });
    controller = await startTestController(kc, {
      idpCaPem: idp.caPem,
      namespace: ns,
      log: capture,
      identityPrefix: 'aws',
      audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
      issuer,
      authorityPort: port,
      auditLineWriter: (text) => auditLines.push(...text.split('\n').filter((l) => l.trim() !== '')),
    });
    minio = await startMinio({
      configUrl: `${issuer}/.well-known/openid-configuration`,
      clientId: CLIENT_ID,
    });
    expect((await minio.admin('PUT', `/${BUCKET}`)).status).toBe(200);

    const create = wardenObjectCreator(kc, ns);
    const aws = (extra: Record<string, unknown> = {}) => ({
      target: { url: minio.url, protocol: 'HTTP' },
      type: 'AWS',
      aws: {
        roleArn: minio.roleArn,
        region: minio.region,
        service: 's3',
        stsUrl: minio.url,
        audience: CLIENT_ID,
        sessionDuration: '15m',
        ...extra,
      },
    });
    await kc
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: AGENT } } });
    await create(PLURAL.AgentIdentity, 'AgentIdentity', AGENT, {
      serviceAccountName: AGENT,
      userContext: { mode: 'Optional', trustedIssuers: [{ issuer: idp.issuer, audiences: [idp.clientId] }] },
    });
    await create(PLURAL.CredentialProvider, 'CredentialProvider', 's3', aws());
    // A session policy from CEL: the role allows readwrite, the session only reads.
    await create(
      PLURAL.CredentialProvider,
      'CredentialProvider',
      's3-readonly',
      aws({
        sessionPolicy: `'{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::' + '${BUCKET}' + '/*"]}]}'`,
      }),
    );
    // The blended user reaches MinIO through the session policy CEL computes: each user's own prefix.
    await create(
      PLURAL.CredentialProvider,
      'CredentialProvider',
      's3-per-user',
      aws({
        sessionPolicy: `'{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::${BUCKET}/users/' + (user.present ? user.sub : 'nobody') + '/*"]}]}'`,
      }),
    );
    // An STS nobody listens on.
    await create(
      PLURAL.CredentialProvider,
      'CredentialProvider',
      's3-sts-down',
      aws({ stsUrl: `http://127.0.0.1:${await freePort()}` }),
    );
    // A token for another audience: MinIO's STS must refuse it.
    await create(
      PLURAL.CredentialProvider,
      'CredentialProvider',
      's3-other-aud',
      aws({ audience: 'someone-else' }),
    );
    await create(PLURAL.AccessPolicy, 'AccessPolicy', `${AGENT}-s3`, {
      agentSelector: { names: [AGENT] },
      effect: 'Allow',
      rules: [
        {
          targets: ['s3', 's3-readonly', 's3-other-aud', 's3-per-user', 's3-sts-down'],
          http: { methods: ['GET', 'PUT'], paths: [`/${BUCKET}`, `/${BUCKET}/**`] },
        },
      ],
    });
    const pod = await createAgentPod(kc, { namespace: ns, agent: AGENT, name: `${AGENT}-0`, issuer });
    const token = await writePodToken(kc, {
      namespace: ns,
      serviceAccount: AGENT,
      pod,
      prefix: 'warden-aws-',
    });
    tokenDir = token.dir;
    broker = await runBroker({
      tokenFile: token.tokenFile,
      authorityUrl: issuer,
      listen: { host: '127.0.0.1', port: 0 },
      healthPort: 0,
      healthHost: '127.0.0.1',
      podName: pod.metadata?.name,
      log: capture,
    });
    base = `http://127.0.0.1:${broker.ports.listen}/http`;
    try {
      await eventually('the broker to be ready', async () => broker.readiness().ready, 60_000);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}: ${JSON.stringify(broker.readiness())}\n${logLines.slice(-15).join('')}`,
      );
    }
  }, 30 * 60_000);

  afterAll(async () => {
    await broker?.close();
    await controller?.stop();
    await minio?.stop();
    await idp?.stop();
    if (tokenDir) rmSync(tokenDir, { recursive: true, force: true });
  });

  it('MinIO started with Warden as its OpenID provider and the role ARN Warden computes', () => {
    expect(minio.output()).toContain(minio.roleArn);
  });

  it('round-trips an object: unsigned PUT and GET by the agent, signed by the broker, verified and stored by MinIO', async () => {
    const put = await agentCall('s3', `/${BUCKET}/reports/q1.txt`, {
      method: 'PUT',
      body: 'quarterly numbers',
    });
    expect(put.status).toBe(200);
    const get = await agentCall('s3', `/${BUCKET}/reports/q1.txt`);
    expect(get).toEqual({ status: 200, body: 'quarterly numbers' });
    // Stored in MinIO, as read with its root credentials.
    expect(await minio.admin('GET', `/${BUCKET}/reports/q1.txt`)).toEqual({
      status: 200,
      body: 'quarterly numbers',
    });
    // MinIO verifies signatures: the same request unsigned is refused.
    const unsigned = await fetch(`${minio.url}/${BUCKET}/reports/q1.txt`);
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain('AccessDenied');
  });

  it('signs exactly what it forwards: a key with spaces, "+", "~" and parentheses, and a query in any order', async () => {
    const put = await agentCall('s3', `/${BUCKET}/odd/a%20b+c~(1).txt`, { method: 'PUT', body: 'odd' });
    expect(put.status).toBe(200);
    expect(await minio.admin('GET', `/${BUCKET}/odd/a b+c~(1).txt`)).toEqual({ status: 200, body: 'odd' });
    // ListObjectsV2, parameters in the agent's order (not SigV4's): re-serialised, signed, verified.
    const list = await agentCall('s3', `/${BUCKET}?prefix=odd%2F&list-type=2`);
    expect(list.status).toBe(200);
    expect(list.body).toContain('<Key>odd/a b+c~(1).txt</Key>');
  });

  it("strips the agent's Authorization and X-Amz-* headers (audited by name) and signs with its own", async () => {
    const put = await agentCall('s3', `/${BUCKET}/reports/q2.txt`, {
      method: 'PUT',
      body: 'second quarter',
      headers: {
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIAAGENTFORGED0000/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00',
        'x-amz-security-token': 'forged-session',
        'x-amz-copy-source': `/${BUCKET}/reports/q1.txt`,
        'x-request-id': 'aws-stripped',
      },
    });
    expect(put.status).toBe(200);
    // The audit line names what was stripped (never the values).
    await eventually(
      'the audit line naming the stripped headers',
      async () =>
        auditLines.some((l) => {
          const line = JSON.parse(l) as { requestId?: string; stripped?: string[] };
          return (
            line.requestId === 'aws-stripped' &&
            JSON.stringify(line.stripped) ===
              JSON.stringify(['authorization', 'x-amz-security-token', 'x-amz-copy-source'])
          );
        }),
      30_000,
    );
    // Not a copy of q1: the copy-source header never reached MinIO.
    expect(await minio.admin('GET', `/${BUCKET}/reports/q2.txt`)).toEqual({
      status: 200,
      body: 'second quarter',
    });
  });

  it('refuses presigned-URL query parameters before deciding', async () => {
    const r = await agentCall('s3', `/${BUCKET}/reports/q1.txt?X-Amz-Signature=00&X-Amz-Credential=x`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ reason: 'InvalidRequest' });
    expect(JSON.parse(r.body).message).toContain("query parameter 'X-Amz-Signature' is not allowed");
  });

  it('a session policy from CEL narrows the role: MinIO refuses the PUT, allows the GET', async () => {
    const put = await agentCall('s3-readonly', `/${BUCKET}/reports/q3.txt`, { method: 'PUT', body: 'nope' });
    expect(put.status).toBe(403);
    expect(put.body).toContain('<Code>AccessDenied</Code>');
    expect((await minio.admin('GET', `/${BUCKET}/reports/q3.txt`)).status).toBe(404);
    const get = await agentCall('s3-readonly', `/${BUCKET}/reports/q1.txt`);
    expect(get).toEqual({ status: 200, body: 'quarterly numbers' });
  });

  it("a token for another audience: MinIO's STS refuses it and the agent is told why", async () => {
    const r = await agentCall('s3-other-aud', `/${BUCKET}/reports/q1.txt`);
    expect(r.status).toBe(403);
    const body = JSON.parse(r.body) as { reason: string; message: string };
    expect(body.reason).toBe('CredentialDenied');
    expect(body.message).toContain('refused AssumeRoleWithWebIdentity');
    expect(body.message).toMatch(/`(aud|azp)` must match configured OpenID Client ID/);
  });

  it('a blended user: the session policy computed from user.sub confines each user to their prefix, one STS session per user', async () => {
    const as = (who: string) => ({ [HEADER_USER_TOKEN]: users[who]! });
    const aws = controller.authority.issuance.minters.AWS;
    const before = aws.stsCalls;
    const alice = await agentCall('s3-per-user', `/${BUCKET}/users/alice/note.txt`, {
      method: 'PUT',
      body: 'from alice',
      headers: as('alice'),
    });
    expect(alice.status).toBe(200);
    const aliceIntoBob = await agentCall('s3-per-user', `/${BUCKET}/users/bob/note.txt`, {
      method: 'PUT',
      body: 'alice was here',
      headers: as('alice'),
    });
    expect(aliceIntoBob.status).toBe(403);
    expect(aliceIntoBob.body).toContain('<Code>AccessDenied</Code>');
    const bob = await agentCall('s3-per-user', `/${BUCKET}/users/bob/note.txt`, {
      method: 'PUT',
      body: 'from bob',
      headers: as('bob'),
    });
    expect(bob.status).toBe(200);
    expect(await minio.admin('GET', `/${BUCKET}/users/bob/note.txt`)).toEqual({
      status: 200,
      body: 'from bob',
    });
    // Acting alone: the policy names a prefix nobody writes to.
    const alone = await agentCall('s3-per-user', `/${BUCKET}/users/alice/note.txt`);
    expect(alone.status).toBe(403);
    expect(aws.stsCalls - before).toBe(3);
  });

  it('an STS that cannot be reached: the agent is told which and to retry', async () => {
    const r = await agentCall('s3-sts-down', `/${BUCKET}/reports/q1.txt`);
    expect(r.status).toBe(403);
    const body = JSON.parse(r.body) as { reason: string; message: string };
    expect(body.reason).toBe('AuthorityUnreachable');
    expect(body.message).toContain('temporarily_unavailable');
    expect(body.message).toMatch(/STS http:\/\/127\.0\.0\.1:\d+ unreachable/);
  });

  it('a body over the broker limit is refused with 413 before anything is signed', async () => {
    const r = await agentCall('s3', `/${BUCKET}/reports/big.bin`, {
      method: 'PUT',
      body: 'x'.repeat(1024 * 1024 + 1),
    });
    expect(r.status).toBe(413);
    expect((await minio.admin('GET', `/${BUCKET}/reports/big.bin`)).status).toBe(404);
  });

  it('a chunked body (no Content-Length) is read whole, hashed and signed; over the limit it is refused with 413', async () => {
    const streamed = (text: string) =>
      fetch(`${base}/s3/${BUCKET}/reports/streamed.txt`, {
        method: 'PUT',
        body: new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode(text));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const ok = await streamed('streamed body');
    expect(ok.status).toBe(200);
    expect(await minio.admin('GET', `/${BUCKET}/reports/streamed.txt`)).toEqual({
      status: 200,
      body: 'streamed body',
    });
    const big = await streamed('y'.repeat(1024 * 1024 + 1));
    expect(big.status).toBe(413);
    expect(JSON.parse(await big.text()).message).toContain(
      "request body exceeds the broker's 1048576-byte limit",
    );
    expect((await minio.admin('GET', `/${BUCKET}/reports/streamed.txt`)).body).toBe('streamed body');
  });

  it('the authority caches the temporary credentials per agent, user and provider: a broker asking again costs no STS call', async () => {
    const aws = controller.authority.issuance.minters.AWS;
    expect((await agentCall('s3', `/${BUCKET}/reports/q1.txt`)).status).toBe(200);
    const calls = aws.stsCalls;
    broker.broker.credentials.clear();
    expect((await agentCall('s3', `/${BUCKET}/reports/q1.txt`)).status).toBe(200);
    expect(aws.stsCalls).toBe(calls);
  });

  describe('kill switch', () => {
    let keys: { accessKeyId: string; secretAccessKey: string; sessionToken: string };

    it('no access key, secret or session token appears in any log line or anything the agent received', async () => {
      // The credentials the broker signs with, as the authority hands them to it (a cache hit).
      const issued = await broker.client.issue({
        target: 's3',
        kind: 'http',
        method: 'GET',
        path: `/${BUCKET}/reports/q1.txt`,
        userToken: null,
        context: null,
        requestId: 'aws-keys',
      });
      expect(issued.aws).toBeDefined();
      keys = issued.aws!;
      expect(keys.accessKeyId.length).toBeGreaterThan(8);
      const everything = [...logLines, ...auditLines, ...received].join('\n');
      expect(logLines.length).toBeGreaterThan(0);
      for (const secret of [keys.accessKeyId, keys.secretAccessKey, keys.sessionToken]) {
        expect(everything).not.toContain(secret);
      }
      expect(everything).not.toContain(encodeURIComponent(keys.sessionToken));
    });

    it('on suspension the next call is denied, the broker and the authority drop the credentials; the STS session itself lives on at MinIO until it expires', async () => {
      const api = controller.manager.api;
      await api.request('PATCH', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${AGENT}`, {
        body: { spec: { suspended: true, suspendReason: 'e2e: aws kill' } },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: 'e2e-security-team' },
      });
      await eventually(
        'the broker to deny the suspended agent',
        async () => {
          const r = await agentCall('s3', `/${BUCKET}/reports/q1.txt`);
          return r.status === 403 && JSON.parse(r.body).reason === 'AgentSuspended';
        },
        30_000,
      );
      expect(broker.broker.credentials.size).toBe(0);
      await eventually(
        'the authority to forget the agent’s temporary credentials',
        async () => controller.authority.issuance.minters.AWS.cachedCount === 0,
        30_000,
      );
      // What is not revocable: STS has no revocation, so the session keeps working at MinIO (or
      // AWS) until it expires — unless the role denies older sessions (docs/aws.md).
      const target = (await import('../broker/sigv4.js')).canonicalTarget(
        '/',
        `/${BUCKET}/reports/q1.txt`,
        '',
      );
      if (!target.ok) throw new Error(target.message);
      const { signAwsRequest } = await import('../broker/sigv4.js');
      const headers = await signAwsRequest({
        keys: { ...keys, region: minio.region, service: 's3' },
        method: 'GET',
        url: new URL(minio.url),
        target,
        headers: [],
        body: undefined,
        now: new Date(),
      });
      const direct = await fetch(`${minio.url}${target.requestTarget}`, {
        headers: Object.fromEntries(headers.filter(([n]) => n !== 'host')),
      });
      expect(direct.status).toBe(200);
    });
  });
});
