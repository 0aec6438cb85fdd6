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
import { rmSync } from 'node:fs';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { closeServer, startHttpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import type { RunningController } from '../controller/run.js';
import type { AgentIdentity, AuditRecord } from '../core/api/index.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../kube/kube.js';
import { createAgentWithApi, startTestController, writePodToken } from './agent-stack.js';
import { eventually } from './eventually.js';

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

export { eventually };

export async function startStack(o: StackOptions): Promise<Stack> {
  const ns = o.namespace;
  const agent = o.agent ?? 'bot';
  const kc = o.kubeConfig;
  const custom = kc.makeApiClient(CustomObjectsApi);
  const api = new KubeConfigApi(kc);
  const log = pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' });

  const upstream = await startHttpUpstream();
  const pod = await createAgentWithApi(kc, { namespace: ns, agent, upstreamUrl: upstream.url });
  const controller = await startTestController(kc, {
    namespace: ns,
    log,
    identityPrefix: 'killswitch',
    audit: { maxEntries: o.auditMaxEntries ?? 50, maxBytes: 256 * 1024, maxAgeMs: o.auditMaxAgeMs ?? 300 },
    ...(o.postgresSweepIntervalMs !== undefined
      ? { postgresSweepIntervalMs: o.postgresSweepIntervalMs }
      : {}),
  });
  const { dir: tokenDir, tokenFile } = await writePodToken(kc, {
    namespace: ns,
    serviceAccount: agent,
    pod,
    prefix: 'warden-killswitch-',
  });
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
