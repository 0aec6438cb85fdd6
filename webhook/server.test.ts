import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { counterTotal, seriesValue } from '../observability/testing.js';
import { admissionHandler, MUTATE_PATH, WebhookServer } from './server.js';
import { admissionReview, agentPod, testDeps } from './test-builders.js';
import { issueMaterial } from './tls.js';

interface Reply {
  status: number;
  body: string;
}

function post(port: number, path: string, body: string | Buffer, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('admissionHandler over HTTP', () => {
  let server: Server;
  let port: number;
  const LIMIT = 64 * 1024;

  beforeAll(async () => {
    server = createServer(admissionHandler(testDeps(), { maxBodyBytes: LIMIT }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('answers a pod review with a JSON patch', async () => {
    const res = await post(port, MUTATE_PATH, JSON.stringify(admissionReview(agentPod())));
    expect(res.status).toBe(200);
    const out = JSON.parse(res.body);
    expect(out).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(out.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
  });

  it('rejects a body that is not JSON with 400 and says so', async () => {
    const res = await post(port, MUTATE_PATH, '{"apiVersion": "admission.k8s.io/v1", ');
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/^malformed AdmissionReview: body is not JSON/);
  });

  it('rejects JSON that is not an AdmissionReview with 400', async () => {
    const res = await post(port, MUTATE_PATH, JSON.stringify({ hello: 'world' }));
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/malformed AdmissionReview: apiVersion\/kind must be admission.k8s.io\/v1/);
  });

  it('refuses an oversized request with 413 without reading it', async () => {
    const pod = agentPod();
    pod.metadata!.annotations!['example.com/blob'] = 'x'.repeat(LIMIT);
    const res = await post(port, MUTATE_PATH, JSON.stringify(admissionReview(pod)));
    expect(res.status).toBe(413);
    expect(res.body).toMatch(`larger than ${LIMIT} bytes`);
  });

  it('answers 405 to GET on /mutate and 404 elsewhere', async () => {
    expect((await post(port, MUTATE_PATH, '', 'GET')).status).toBe(405);
    expect((await post(port, '/validate', '{}')).status).toBe(404);
  });

  it('serves /healthz', async () => {
    const res = await post(port, '/healthz', '', 'GET');
    expect(res).toEqual({ status: 200, body: 'ok\n' });
  });
});

describe('admission metrics', () => {
  const admissions = (m: WardenMetrics, outcome: string) =>
    seriesValue(
      m,
      'warden_webhook_admission_duration_seconds',
      { outcome },
      'warden_webhook_admission_duration_seconds_count',
    );

  it('records an injected pod as an allow, a rejected one as a deny with its reason, and a transport error as error', async () => {
    const metrics = createMetrics();
    // testDeps() knows the AgentIdentity of agentPod(); testDeps([]) knows none.
    const known = createServer(admissionHandler(testDeps(), { metrics }));
    const unknown = createServer(admissionHandler(testDeps([]), { metrics }));
    const ports: number[] = [];
    for (const s of [known, unknown]) {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      ports.push((s.address() as AddressInfo).port);
    }
    try {
      expect((await post(ports[0]!, MUTATE_PATH, JSON.stringify(admissionReview(agentPod())))).status).toBe(
        200,
      );
      expect((await post(ports[1]!, MUTATE_PATH, JSON.stringify(admissionReview(agentPod())))).status).toBe(
        200,
      );
      expect((await post(ports[1]!, MUTATE_PATH, 'not json')).status).toBe(400);
      // Durations are recorded on 'finish', right after the client has the response.
      await expect.poll(() => admissions(metrics, 'error'), { timeout: 10_000 }).toBe(1);
      await expect.poll(() => admissions(metrics, 'injected'), { timeout: 10_000 }).toBe(1);
      await expect.poll(() => admissions(metrics, 'rejected'), { timeout: 10_000 }).toBe(1);
      const decisions = (decision: string, reason: string) =>
        seriesValue(metrics, 'warden_decisions_total', { component: 'webhook', decision, reason });
      expect(await decisions('allow', 'Injected')).toBe(1);
      expect(await decisions('deny', 'AgentIdentityNotFound')).toBe(1);
      expect(await seriesValue(metrics, 'warden_denials_total', { reason: 'AgentIdentityNotFound' })).toBe(1);
      // A transport error is no decision.
      expect(await counterTotal(metrics, 'warden_decisions_total')).toBe(2);
    } finally {
      for (const s of [known, unknown]) await new Promise((r) => s.close(r));
    }
  });
});

describe('admission durations', () => {
  it('are measured on the metrics clock and land in the bucket of the elapsed time', async () => {
    // A clock that moves 30 ms per reading: each admission (start, stop) takes exactly 30 ms.
    let t = 0;
    const metrics = createMetrics({ nowMs: () => (t += 30) });
    const server = createServer(admissionHandler(testDeps(), { metrics }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const bucket = (le: string) =>
      seriesValue(
        metrics,
        'warden_webhook_admission_duration_seconds',
        { outcome: 'injected', le },
        'warden_webhook_admission_duration_seconds_bucket',
      );
    try {
      await post(port, MUTATE_PATH, JSON.stringify(admissionReview(agentPod())));
      await expect.poll(() => bucket('+Inf'), { timeout: 10_000 }).toBe(1);
      expect(await bucket('0.025')).toBe(0);
      expect(await bucket('0.05')).toBe(1);
      expect(
        await seriesValue(
          metrics,
          'warden_webhook_admission_duration_seconds',
          { outcome: 'injected' },
          'warden_webhook_admission_duration_seconds_sum',
        ),
      ).toBeCloseTo(0.03, 6);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('WebhookServer over HTTPS', () => {
  it('serves with the issued certificate and trusts only the CA bundle', async () => {
    const names = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
    const m1 = await issueMaterial(names, new Date());
    const m2 = await issueMaterial(names, new Date(), undefined, m1.caBundlePem);
    const server = new WebhookServer(testDeps(), m1);
    const port = await server.listen(0, '127.0.0.1');
    const call = (ca: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await call(m1.caBundlePem)).toBe(200);
      server.setCertificate(m2);
      // The new bundle holds the new and the old CA, so it trusts the new certificate.
      expect(await call(m2.caBundlePem)).toBe(200);
      // The old bundle does not know the new CA.
      await expect(call(m1.caBundlePem)).rejects.toThrow();
    } finally {
      await server.close();
    }
  });
});
