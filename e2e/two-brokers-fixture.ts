/**
 * One agent, two pods, two real brokers: a real `warden controller` (operator + authority + audit
 * writer, in-process) against the real API server, and a broker per pod (runBroker, each attested
 * with its own pod-bound token) in front of one real HTTP upstream. For what the authority counts
 * across an agent's brokers: the circuit breaker and quotas.
 *
 * The agent is createAgentWithApi's: GET on the `api` target is allowed, any other method denied.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { startHttpUpstream } from '../broker/int-fixtures.js';
import { type RunningBroker, runBroker } from '../broker/main.js';
import type { RunningController } from '../controller/run.js';
import type { AgentIdentity, AuditRecord } from '../core/api/index.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { KubeConfigApi, type ObjectList } from '../kube/kube.js';
import { createAgentPod, createAgentWithApi, startTestController, writePodToken } from './agent-stack.js';
import { eventually } from './eventually.js';

export interface Call {
  requestId: string;
  status: number;
  body: string;
  headers: Headers;
}

export interface TwoBrokers {
  namespace: string;
  agent: string;
  controller: RunningController;
  brokers: readonly [RunningBroker, RunningBroker];
  api: KubeConfigApi;
  /** One agent call through broker `i` to `path` under the `api` target. */
  call(i: 0 | 1, method: string, path?: string): Promise<Call>;
  patchAgent(spec: Record<string, unknown>): Promise<void>;
  getAgent(): Promise<AgentIdentity>;
  auditRecords(): Promise<AuditRecord[]>;
  /** Both brokers attested and holding a fresh snapshot. */
  waitReady(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTwoBrokers(o: {
  kubeConfig: KubeConfig;
  namespace: string;
  agent?: string;
}): Promise<TwoBrokers> {
  const kc = o.kubeConfig;
  const ns = o.namespace;
  const agent = o.agent ?? 'bot';
  const api = new KubeConfigApi(kc);
  const log = pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' });
  const upstream = await startHttpUpstream();
  const pod0 = await createAgentWithApi(kc, { namespace: ns, agent, upstreamUrl: upstream.url });
  const pod1 = await createAgentPod(kc, { namespace: ns, agent, name: `${agent}-1` });
  const controller = await startTestController(kc, {
    namespace: ns,
    log,
    identityPrefix: 'two-brokers',
    audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
  });
  const dirs: string[] = [];
  const broker = async (pod: typeof pod0): Promise<RunningBroker> => {
    const { dir, tokenFile } = await writePodToken(kc, {
      namespace: ns,
      serviceAccount: agent,
      pod,
      prefix: 'warden-two-brokers-',
    });
    dirs.push(dir);
    return runBroker({
      tokenFile,
      authorityUrl: `http://127.0.0.1:${controller.authorityPort}`,
      listen: { host: '127.0.0.1', port: 0 },
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
  };
  const brokers = [await broker(pod0), await broker(pod1)] as const;
  const agentPath = `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${agent}`;
  return {
    namespace: ns,
    agent,
    controller,
    brokers,
    api,
    async call(i, method, path = '/api/v1/tickets') {
      const requestId = `b${i}-${randomBytes(6).toString('hex')}`;
      const r = await fetch(`http://127.0.0.1:${brokers[i].ports.listen}/http/api${path}`, {
        method,
        headers: { 'x-request-id': requestId },
        ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{}' }),
      });
      return { requestId, status: r.status, body: await r.text(), headers: r.headers };
    },
    async patchAgent(spec) {
      await api.request('PATCH', agentPath, {
        body: { spec },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: 'e2e-security-team' },
      });
    },
    getAgent: () => api.request<AgentIdentity>('GET', agentPath),
    async auditRecords() {
      const list = await api.request<ObjectList<AuditRecord>>(
        'GET',
        `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`,
      );
      return list.items.filter((r) => r.spec.agent === agent);
    },
    async waitReady(timeoutMs = 30_000) {
      await eventually(
        'both brokers to be ready',
        async () => brokers[0].readiness().ready && brokers[1].readiness().ready,
        timeoutMs,
      );
    },
    async stop() {
      for (const b of brokers) await b.close();
      await controller.stop();
      await upstream.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}
