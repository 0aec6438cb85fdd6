/**
 * The shared gateway through the real chain: a real API server, a real `warden controller`
 * (authority with the gateway's service account configured), `replicas` real gateways on TLS, a
 * real MCP server and HTTP API behind CredentialProviders, and an agent pod WITHOUT a sidecar whose
 * projected tokens (audience warden.dev/gateway) come from the API server's TokenRequest.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { type RunGatewayOptions, type RunningGateway, runGateway } from '../broker/gateway/main.js';
import { type McpUpstream, startHttpUpstream, startMcpUpstream } from '../broker/int-fixtures.js';
import type { RunningController } from '../controller/run.js';
import {
  ANNOTATION_AGENT,
  API_VERSION,
  DEFAULT_BROKER_AUDIENCE,
  GATEWAY_AUDIENCE,
  PLURAL,
} from '../core/constants.js';
import { createCertificateAuthority } from '../core/x509.js';
import { KubeConfigApi } from '../kube/kube.js';
import { startTestController, wardenObjectCreator } from './agent-stack.js';

export interface GatewayStack {
  readonly namespace: string;
  readonly agent: string;
  readonly pod: V1Pod;
  readonly issuer: string;
  readonly controller: RunningController;
  readonly gateways: readonly RunningGateway[];
  /** https://127.0.0.1:<port> of each replica. */
  readonly urls: readonly string[];
  /** PEM CA the gateways' certificate chains to. */
  readonly ca: string;
  /** The gateways' serving certificate and key (for a gateway started as its own process). */
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** The gateway's own projected token (audience warden.dev/broker), as a file. */
  readonly gatewayTokenFile: string;
  /** With `tlsFiles: true`: the certificate and key files the gateways watch (tls-reload.ts). */
  readonly tlsFiles?: { readonly cert: string; readonly key: string };
  readonly mcp: McpUpstream;
  readonly apiSeen: () => string[];
  /** The HTTP API's base URL (the `tickets` provider's target). */
  readonly upstreamUrl: string;
  /** A fetch that trusts the gateways' CA (the agent's HTTP client). */
  readonly fetch: typeof fetch;
  /** A projected token of the agent's service account bound to its pod. */
  token(audience: string): Promise<string>;
  /** The same for one of `otherAgents` (its own service account, AgentIdentity and pod). */
  tokenOf(agent: string, audience: string): Promise<string>;
  /** Each replica's PostgreSQL endpoint port (with `postgres: true`). */
  readonly pgPorts: readonly number[];
  /** A token file holding the agent's gateway token (what the kubelet would mount). */
  readonly agentTokenFile: string;
  patchAgent(spec: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** fetch over node:https trusting `ca` (Node's global fetch takes no CA of its own). */
export function tlsFetch(ca: string): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (url.protocol !== 'https:') return fetch(req);
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    return new Promise<Response>((resolve, reject) => {
      const r = httpsRequest(
        url,
        {
          method: req.method,
          headers: Object.fromEntries(req.headers),
          ca,
          ...(init?.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const x of Array.isArray(v) ? v : [v]) headers.append(k, x);
          }
          const status = res.statusCode ?? 500;
          const empty = status === 204 || status === 304 || req.method === 'HEAD';
          resolve(
            new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              headers,
            }),
          );
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  };
}

export async function startGatewayStack(o: {
  kubeConfig: KubeConfig;
  namespace: string;
  replicas?: number;
  revalidateMs?: number;
  /** Serve the gateways' PostgreSQL endpoint too (on free loopback ports). */
  postgres?: boolean;
  /** Further agents without a sidecar, each with its own service account and pod. */
  otherAgents?: readonly string[];
  /** Each gateway's per-caller limit. */
  callerRateLimit?: RunGatewayOptions['callerRateLimit'];
  /** Serve the certificate from files the gateways watch (no periodic re-read: the watch alone). */
  tlsFiles?: boolean;
}): Promise<GatewayStack> {
  const kc = o.kubeConfig;
  const ns = o.namespace;
  const agent = 'bot';
  const core = kc.makeApiClient(CoreV1Api);
  const api = new KubeConfigApi(kc);
  const log = pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' });
  const create = wardenObjectCreator(kc, ns);

  const mcp = await startMcpUpstream();
  const http = await startHttpUpstream();
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: agent } } });
  await core.createNamespacedServiceAccount({
    namespace: ns,
    body: { metadata: { name: 'warden-gateway' } },
  });
  await create(PLURAL.AgentIdentity, 'AgentIdentity', agent, { serviceAccountName: agent });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'jira', {
    target: { url: mcp.url, protocol: 'MCP' },
    type: 'JWT',
    jwt: { audience: 'jira', defaultTTL: '5m' },
  });
  await create(PLURAL.CredentialProvider, 'CredentialProvider', 'tickets', {
    target: { url: http.url, protocol: 'HTTP' },
    type: 'JWT',
    jwt: { audience: 'tickets', defaultTTL: '5m' },
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', `${agent}-support`, {
    agentSelector: { names: [agent] },
    effect: 'Allow',
    rules: [
      { targets: ['jira'], tools: ['jira.get_*', 'jira.search', 'jira.delete_*'] },
      { targets: ['tickets'], http: { methods: ['GET'], paths: ['/api/v1/tickets/*'] } },
    ],
  });
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'no-delete', {
    effect: 'Deny',
    rules: [{ targets: ['*'], tools: ['*.delete_*'] }],
  });
  // No webhook, no sidecar: the app team only annotates the pod; its owner refused injection.
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

  const otherPods = new Map<string, V1Pod>();
  for (const other of o.otherAgents ?? []) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: other } } });
    await create(PLURAL.AgentIdentity, 'AgentIdentity', other, { serviceAccountName: other });
    otherPods.set(
      other,
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `${other}-0`, annotations: { [ANNOTATION_AGENT]: other } },
          spec: {
            serviceAccountName: other,
            automountServiceAccountToken: false,
            containers: [{ name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' }],
          },
        },
      }),
    );
  }

  const authorityPort = await freePort();
  const issuer = `http://127.0.0.1:${authorityPort}`;
  const controller = await startTestController(kc, {
    namespace: ns,
    log,
    identityPrefix: 'gateway',
    issuer,
    authorityPort,
    gatewayServiceAccounts: [`${ns}/warden-gateway`],
    audit: { maxEntries: 50, maxBytes: 256 * 1024, maxAgeMs: 300 },
  });

  const token = async (sa: string, audience: string, bound: V1Pod | null): Promise<string> => {
    const tr = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name: sa,
      body: {
        spec: {
          audiences: [audience],
          expirationSeconds: 3600,
          ...(bound
            ? {
                boundObjectRef: {
                  kind: 'Pod',
                  apiVersion: 'v1',
                  name: bound.metadata?.name,
                  uid: bound.metadata?.uid,
                },
              }
            : {}),
        },
      },
    });
    return tr.status?.token ?? '';
  };
  const dir = mkdtempSync(join(tmpdir(), 'warden-gateway-'));
  const gatewayTokenFile = join(dir, 'gateway-token');
  // The gateway's own projected token (the chart mounts one into its pods).
  writeFileSync(gatewayTokenFile, await token('warden-gateway', DEFAULT_BROKER_AUDIENCE, null));
  const agentTokenFile = join(dir, 'agent-token');
  writeFileSync(agentTokenFile, await token(agent, GATEWAY_AUDIENCE, pod));

  const ca = await createCertificateAuthority('warden-gateway-test-ca', 3600_000);
  const leaf = await ca.issue({
    commonName: 'warden-gateway',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityMs: 3600_000,
    usage: 'server',
  });
  const tlsFiles = o.tlsFiles ? { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') } : undefined;
  if (tlsFiles) {
    writeFileSync(tlsFiles.cert, leaf.certPem);
    writeFileSync(tlsFiles.key, leaf.keyPem, { mode: 0o600 });
  }
  const gateways: RunningGateway[] = [];
  const urls: string[] = [];
  for (let i = 0; i < (o.replicas ?? 2); i++) {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    gateways.push(
      await runGateway({
        authorityUrl: issuer,
        tokenFile: gatewayTokenFile,
        tlsCert: leaf.certPem,
        tlsKey: leaf.keyPem,
        listen: { host: '127.0.0.1', port },
        ...(o.postgres ? { pgListen: { host: '127.0.0.1', port: 0 } } : {}),
        ...(o.callerRateLimit ? { callerRateLimit: o.callerRateLimit } : {}),
        ...(tlsFiles ? { tlsFiles: { ...tlsFiles, pollMs: 3600_000 } } : {}),
        healthPort: 0,
        healthHost: '127.0.0.1',
        publicUrl: url,
        authorizationServer: issuer,
        ...(o.revalidateMs !== undefined ? { revalidateMs: o.revalidateMs } : {}),
        // Each replica its own spool directory, as each gateway pod its own emptyDir.
        auditSpool: { dir: join(dir, `spool-${i}`) },
        log: log.child({ replica: i }),
      }),
    );
    urls.push(url);
  }
  return {
    namespace: ns,
    agent,
    pod,
    issuer,
    controller,
    gateways,
    urls,
    ca: ca.certPem,
    tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
    gatewayTokenFile,
    ...(tlsFiles ? { tlsFiles } : {}),
    mcp,
    apiSeen: () => http.seen.map((s) => String(s.headers.authorization ?? '')),
    upstreamUrl: http.url,
    fetch: tlsFetch(ca.certPem),
    token: (audience) => token(agent, audience, pod),
    tokenOf: (other, audience) => {
      const p = otherPods.get(other);
      if (!p) throw new Error(`no other agent ${other} in this stack`);
      return token(other, audience, p);
    },
    pgPorts: gateways.map((g) => g.ports.pg ?? 0),
    agentTokenFile,
    async patchAgent(spec) {
      await api.request('PATCH', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AgentIdentity}/${agent}`, {
        body: { spec },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: 'e2e-security-team' },
      });
    },
    async stop() {
      for (const g of gateways) await g.close();
      await controller.stop();
      await mcp.close();
      await http.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
