/**
 * The kill-switch stack for e2e tests and the benchmarks: a real `warden controller`
 * (runController: operator + authority + audit writer, in-process) against a real API server, a
 * real broker (runBroker, with its attestation token from the TokenRequest API) in front of a real
 * HTTP upstream, and an agent pod with its AgentIdentity and AccessPolicy.
 *
 * The `api` target is a JWT CredentialProvider; the policy allows GET on it and nothing else, so a
 * POST is a denial.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { closeServer, startHttpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import { type RunningController, runController } from '../controller/run.js';
import type { AgentIdentity, AuditRecord } from '../core/api/index.js';
import {
  ANNOTATION_AGENT,
  API_VERSION,
  DEFAULT_BROKER_AUDIENCE,
  GROUP,
  PLURAL,
  VERSION,
} from '../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../operator/core/kube.js';

export interface StackOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  agent?: string;
  /** Audit batching of the controller (small and fast by default, so tests see records soon). */
  auditMaxEntries?: number;
  auditMaxAgeMs?: number;
  /** Also serve the broker's PostgreSQL endpoint (on a free loopback port: `broker.ports.pg`). */
  pgEndpoint?: boolean;
  /** The controller's expired-role sweep interval (default 60 s). */
  postgresSweepIntervalMs?: number;
}

export interface CallResult {
  status: number;
  body: string;
}

export interface Stack {
  namespace: string;
  agent: string;
  controller: RunningController;
  broker: RunningBroker;
  /** Authorization headers the upstream received (the injected Warden JWTs). */
  upstreamAuthorizations(): string[];
  /** The authority's base URL. */
  authorityUrl: string;
  api: KubeConfigApi;
  custom: CustomObjectsApi;
  /** One agent call through the broker: GET is allowed by policy, POST denied. */
  call(method: 'GET' | 'POST', requestId?: string): Promise<CallResult>;
  /** Merge-patches the AgentIdentity spec (as kubectl would). */
  patchAgent(spec: Record<string, unknown>): Promise<void>;
  getAgent(): Promise<AgentIdentity>;
  auditRecords(): Promise<AuditRecord[]>;
  /** Resolves when the broker has a fresh snapshot and is attested. */
  waitReady(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | false | undefined | null>,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const ns = o.namespace;
  const agent = o.agent ?? 'bot';
  const kc = o.kubeConfig;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const api = new KubeConfigApi(kc);
  const log = pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' });
  const wardenObj = (kind: string, name: string, spec: unknown) => ({
    apiVersion: API_VERSION,
    kind,
    metadata: { name, namespace: ns },
    spec,
  });
  const create = (plural: string, body: object) =>
    custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, body });

  const upstream = await startHttpUpstream();
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: agent } } });
  await create(PLURAL.AgentIdentity, wardenObj('AgentIdentity', agent, { serviceAccountName: agent }));
  // Warden-minted JWTs for the upstream: the broker injects them, the kill switch revokes them.
  await create(
    PLURAL.CredentialProvider,
    wardenObj('CredentialProvider', 'api', {
      target: { url: upstream.url, protocol: 'HTTP' },
      type: 'JWT',
      jwt: { audience: 'api', defaultTTL: '5m' },
    }),
  );
  await create(
    PLURAL.AccessPolicy,
    wardenObj('AccessPolicy', `${agent}-read`, {
      agentSelector: { names: [agent] },
      effect: 'Allow',
      rules: [{ targets: ['api'], http: { methods: ['GET'], paths: ['/**'] } }],
    }),
  );
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: `${agent}-0`, annotations: { [ANNOTATION_AGENT]: agent } },
      spec: {
        serviceAccountName: agent,
        automountServiceAccountToken: false,
        containers: [{ name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' }],
      },
    },
  });

  const controller = await runController({
    kubeConfig: kc,
    log,
    namespace: ns,
    watchNamespace: ns,
    identity: `killswitch-${randomBytes(3).toString('hex')}`,
    leaderElection: false,
    host: '127.0.0.1',
    webhookPort: 0,
    authorityPort: 0,
    healthPort: 0,
    tlsNames: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    webhookConfigurationName: null,
    issuer: 'http://warden-authority.e2e',
    authorityTls: false,
    broker: {
      image: 'warden:e2e',
      imagePullPolicy: 'IfNotPresent',
      resources: { requests: { cpu: '20m', memory: '48Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
    },
    tlsSecret: `warden-tls-${randomBytes(3).toString('hex')}`,
    version: '0.0.0-e2e',
    audit: { maxEntries: o.auditMaxEntries ?? 50, maxBytes: 256 * 1024, maxAgeMs: o.auditMaxAgeMs ?? 300 },
    ...(o.postgresSweepIntervalMs !== undefined
      ? { postgresSweepIntervalMs: o.postgresSweepIntervalMs }
      : {}),
  });

  const tokenDir = mkdtempSync(join(tmpdir(), 'warden-killswitch-'));
  const tokenFile = join(tokenDir, 'token');
  const tr = await core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: agent,
    body: {
      spec: {
        audiences: [DEFAULT_BROKER_AUDIENCE],
        expirationSeconds: 3600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata?.name, uid: pod.metadata?.uid },
      },
    },
  });
  writeFileSync(tokenFile, tr.status?.token ?? '');
  const broker = await runBroker({
    tokenFile,
    authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
    listen: { host: '127.0.0.1', port: 0 },
    ...(o.pgEndpoint ? { pgListen: { host: '127.0.0.1', port: 0 } } : {}),
    healthPort: 0,
    healthHost: '127.0.0.1',
    podName: pod.metadata?.name,
    providers: [
      {
        name: 'api',
        url: upstream.url,
        protocol: 'HTTP',
        inject: { header: 'Authorization', format: 'Bearer {token}' },
      },
    ],
    log,
  });
  const base = `http://127.0.0.1:${broker.ports.listen}/http/api/api/v1/tickets`;
  let n = 0;

  const stack: Stack = {
    namespace: ns,
    agent,
    controller,
    broker,
    upstreamAuthorizations: () => upstream.seen.map((r) => String(r.headers.authorization ?? '')),
    authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
    api,
    custom,
    async call(method, requestId) {
      const r = await fetch(`${base}/${++n}`, {
        method,
        headers: { 'x-request-id': requestId ?? `call-${n}-${randomBytes(4).toString('hex')}` },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      return { status: r.status, body: await r.text() };
    },
    async patchAgent(spec) {
      await api.request('PATCH', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${agent}`, {
        body: { spec },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: 'e2e-security-team' },
      });
    },
    async getAgent() {
      return api.request('GET', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${agent}`);
    },
    async auditRecords() {
      const list = await api.request<ObjectList<AuditRecord>>(
        'GET',
        `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
      );
      return list.items.filter((r) => r.spec.agent === agent);
    },
    async waitReady(timeoutMs = 30_000) {
      await eventually('the broker to be ready', async () => broker.readiness().ready, timeoutMs);
    },
    async stop() {
      await broker.close();
      await controller.stop();
      await upstream.close();
      rmSync(tokenDir, { recursive: true, force: true });
    },
  };
  return stack;
}

export { closeServer };
