/**
 * Shared pieces of the fault tests for an authority outage, a broker restart and clock skew
 * (authority-down, broker-restart, clock-skew .e2e.test.ts): `warden controller` and
 * `warden broker` as child processes on fixed ports (so a test can SIGKILL one and start another
 * in its place), an agent pod with its projected-token file, and readers for the audit trail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { exportJWK, generateKeyPair, type JWK, jwtVerify, SignJWT } from 'jose';
import { pino } from 'pino';
import { AuditShipper } from '../../broker/audit.js';
import { AuthorityClient } from '../../broker/authority-client.js';
import { type ComposedBroker, composeBroker } from '../../broker/compose.js';
import type { AuditEntry, AuditRecord } from '../../core/api/index.js';
import { ANNOTATION_AGENT, API_VERSION, DEFAULT_BROKER_AUDIENCE, PLURAL } from '../../core/constants.js';
import { createCertificateAuthority } from '../../core/x509.js';
import type { KubeConfigApi, ObjectList } from '../../kube/kube.js';
import { injectBroker } from '../../webhook/test-builders.js';
import { E2E_BROKER_IMAGE, E2E_ISSUER } from '../agent-stack.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The issuer every controller in these tests announces (brokers reach it by URL, not by name). */
export const ISSUER = E2E_ISSUER;

/** A TCP port free right now on 127.0.0.1 (for a process that must come back on the same port). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface Child {
  readonly child: ChildProcess;
  /** The last lines the process wrote (JSON logs), for failure messages. */
  logTail(): string;
  /** SIGKILL: no shutdown hook, no flush — a crashed process or node. */
  kill(): Promise<void>;
  /** SIGTERM and wait (graceful), SIGKILL after 20 s. */
  stop(): Promise<void>;
}

function startChild(args: string[], env: NodeJS.ProcessEnv = {}): Child & { exited: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/warden.ts', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(l);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    exited,
    logTail: () => lines.slice(-40).join('\n'),
    async kill() {
      if (!gone()) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      const done = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 20_000).unref()),
      ]);
      if (!done) await this.kill();
    },
  };
}

/** Polls `url` until it answers `status` (any status when omitted), or the child exits. */
async function waitServing(
  c: Child & { exited: Promise<void> },
  what: string,
  url: string,
  status?: number,
  timeoutMs = 90_000,
): Promise<void> {
  let exited = false;
  void c.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`${what} exited before serving:\n${c.logTail()}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (status === undefined || r.status === status) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not serve ${url} in time:\n${c.logTail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface ControllerChild extends Child {
  readonly authorityUrl: string;
}

/**
 * `warden controller` (operator + authority + audit writer) as a child process, authority on plain
 * HTTP at 127.0.0.1:`authorityPort`, no leader election (one replica that may be killed and
 * replaced), watching `namespace` only. Resolves once the authority answers.
 */
export async function spawnController(o: {
  kubeconfigPath: string;
  namespace: string;
  authorityPort: number;
  /** Seconds an audit entry may wait before its record is written. */
  auditFlushSeconds?: number;
}): Promise<ControllerChild> {
  const c = startChild([
    'controller',
    `--kubeconfig=${o.kubeconfigPath}`,
    `--namespace=${o.namespace}`,
    `--watch-namespace=${o.namespace}`,
    `--identity=faults-a-${randomBytes(3).toString('hex')}`,
    '--no-leader-election',
    '--host=127.0.0.1',
    '--webhook-port=0',
    `--authority-port=${o.authorityPort}`,
    '--health-port=0',
    '--webhook-configuration=',
    '--authority-insecure-http',
    `--issuer=${ISSUER}`,
    `--broker-image=${E2E_BROKER_IMAGE}`,
    `--tls-secret=warden-tls-${o.namespace}`,
    `--audit-flush-seconds=${o.auditFlushSeconds ?? 0.2}`,
    '--audit-batch-size=50',
    '--log-level=info',
  ]);
  const authorityUrl = `http://127.0.0.1:${o.authorityPort}`;
  try {
    await waitServing(c, 'warden controller', `${authorityUrl}/.well-known/jwks.json`, 200);
  } catch (err) {
    await c.kill();
    throw err;
  }
  return { ...c, authorityUrl };
}

export interface BrokerChild extends Child {
  /** Base URL of the combined agent listener (`/mcp/<provider>`, `/http/<provider>/...`). */
  readonly url: string;
  readonly healthUrl: string;
  /** The broker's /readyz answer now. */
  readiness(): Promise<{ status: number; body: string }>;
}

/** `warden broker` as a child process on fixed ports; resolves once /readyz says ready. */
export async function spawnBroker(o: {
  tokenFile: string;
  authorityUrl: string;
  listenPort: number;
  healthPort: number;
  podName: string;
  /** `--provider name=url,protocol` values (targets the snapshot does not name yet). */
  providers?: string[];
  /** `--audit-spool` directory (the injected emptyDir); absent = entries wait in memory. */
  auditSpool?: string;
  /** Resolve once the health port answers, not only once ready (the authority may be down). */
  listeningOnly?: boolean;
}): Promise<BrokerChild> {
  const c = startChild(
    [
      'broker',
      `--token-file=${o.tokenFile}`,
      `--authority-url=${o.authorityUrl}`,
      `--listen=127.0.0.1:${o.listenPort}`,
      `--health-listen=127.0.0.1:${o.healthPort}`,
      ...(o.providers ?? []).map((p) => `--provider=${p}`),
      ...(o.auditSpool ? [`--audit-spool=${o.auditSpool}`] : []),
      '--log-level=info',
    ],
    { POD_NAME: o.podName },
  );
  const healthUrl = `http://127.0.0.1:${o.healthPort}`;
  try {
    await waitServing(c, 'warden broker', `${healthUrl}/readyz`, o.listeningOnly ? undefined : 200, 60_000);
  } catch (err) {
    await c.kill();
    throw err;
  }
  return {
    ...c,
    url: `http://127.0.0.1:${o.listenPort}`,
    healthUrl,
    async readiness() {
      const r = await fetch(`${healthUrl}/readyz`);
      return { status: r.status, body: await r.text() };
    },
  };
}

export interface GatewayChild extends Child {
  /** https://127.0.0.1:<port> of its TLS listener. */
  readonly url: string;
  readonly healthUrl: string;
}

/**
 * `warden gateway` (the shared gateway) as a child process on fixed ports with its audit spool
 * directory; resolves once /readyz says ready (it needs no agent for that).
 */
export async function spawnGateway(o: {
  tokenFile: string;
  authorityUrl: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  listenPort: number;
  healthPort: number;
  auditSpool: string;
  podName: string;
}): Promise<GatewayChild> {
  const url = `https://127.0.0.1:${o.listenPort}`;
  const c = startChild(
    [
      'gateway',
      `--token-file=${o.tokenFile}`,
      `--authority-url=${o.authorityUrl}`,
      `--tls-cert=${o.tlsCertFile}`,
      `--tls-key=${o.tlsKeyFile}`,
      `--public-url=${url}`,
      `--listen=127.0.0.1:${o.listenPort}`,
      `--health-listen=127.0.0.1:${o.healthPort}`,
      `--audit-spool=${o.auditSpool}`,
      '--log-level=info',
    ],
    { POD_NAME: o.podName },
  );
  const healthUrl = `http://127.0.0.1:${o.healthPort}`;
  try {
    await waitServing(c, 'warden gateway', `${healthUrl}/readyz`, 200, 60_000);
  } catch (err) {
    await c.kill();
    throw err;
  }
  return { ...c, url, healthUrl };
}

export interface AgentPod {
  readonly agent: string;
  readonly podName: string;
  readonly podUID: string;
  /** The broker's projected service-account token (audience warden.dev/broker), as the kubelet writes it. */
  readonly tokenFile: string;
}

/**
 * The ServiceAccount, AgentIdentity (with `identitySpec` merged in), the agent pod and a bound
 * service-account token for it written to a file — what the webhook and the kubelet set up.
 */
export async function createAgentPod(
  kc: KubeConfig,
  api: KubeConfigApi,
  o: { namespace: string; agent: string; identitySpec?: Record<string, unknown> },
): Promise<AgentPod> {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = o.namespace;
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: o.agent } } });
  await createWardenObject(api, ns, 'AgentIdentity', o.agent, {
    serviceAccountName: o.agent,
    ...o.identitySpec,
  });
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: injectBroker(
      {
        metadata: { name: `${o.agent}-0`, annotations: { [ANNOTATION_AGENT]: o.agent } },
        spec: {
          serviceAccountName: o.agent,
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' }],
        },
      },
      { agent: o.agent, issuer: ISSUER, image: E2E_BROKER_IMAGE },
    ),
  });
  const tr = await core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: o.agent,
    body: {
      spec: {
        audiences: [DEFAULT_BROKER_AUDIENCE],
        expirationSeconds: 3600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata?.name, uid: pod.metadata?.uid },
      },
    },
  });
  const tokenFile = join(mkdtempSync(join(tmpdir(), 'warden-faults-')), 'token');
  writeFileSync(tokenFile, tr.status?.token ?? '');
  return { agent: o.agent, podName: pod.metadata?.name ?? '', podUID: pod.metadata?.uid ?? '', tokenFile };
}

const PLURAL_OF = {
  AgentIdentity: PLURAL.AgentIdentity,
  AccessPolicy: PLURAL.AccessPolicy,
  CredentialProvider: PLURAL.CredentialProvider,
} as const;

/** Creates a warden.dev object as kubectl would. */
export async function createWardenObject(
  api: KubeConfigApi,
  namespace: string,
  kind: keyof typeof PLURAL_OF,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await api.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL_OF[kind]}`, {
    body: { apiVersion: API_VERSION, kind, metadata: { name, namespace }, spec },
  });
}

/** Every audit entry of `agent` in the AuditRecords of `namespace`, in chain order. */
export async function auditEntries(
  api: KubeConfigApi,
  namespace: string,
  agent: string,
): Promise<AuditEntry[]> {
  const list = await api.request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL.AuditRecord}`,
  );
  return list.items
    .filter((r) => r.spec.agent === agent)
    .sort((a, b) => a.spec.sequence - b.spec.sequence)
    .flatMap((r) => r.spec.entries);
}

/** Decision entries whose request id starts with `prefix`. */
export function decisions(entries: AuditEntry[], prefix: string): AuditEntry[] {
  return entries.filter((e) => e.kind === 'Decision' && e.requestId?.startsWith(prefix));
}

export interface SkewedIdp {
  /** https://127.0.0.1:<port> — discovery and JWKS over real TLS. */
  readonly issuer: string;
  /** PEM of the CA that signed the IdP's certificate (the controller's --idp-ca). */
  readonly caPem: string;
  /**
   * An ES256 ID token for `sub` (audience `warden`) issued by this IdP's clock, `offsetMs` off the
   * real one: iat = nbf = its now, exp = iat + lifetimeSeconds.
   */
  token(o: { sub: string; groups: string[]; offsetMs: number; lifetimeSeconds: number }): Promise<string>;
  /** Whether `token` verifies on the real clock with `clockToleranceSeconds` of leeway. */
  verifies(token: string, clockToleranceSeconds: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * A minimal OpenID provider whose clock the test sets per token: real TLS, a discovery document
 * and a JWKS, real ES256 signatures. (The oidc-provider fixture signs with the host clock only.)
 */
export async function startSkewedIdp(): Promise<SkewedIdp> {
  const ca = await createCertificateAuthority('warden faults IdP CA', 3600_000);
  const leaf = await ca.issue({
    commonName: '127.0.0.1',
    ipAddresses: ['127.0.0.1'],
    validityMs: 3600_000,
    usage: 'server',
  });
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const kid = randomBytes(6).toString('hex');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  let issuer = '';
  const server = createHttpsServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : req.url === '/jwks'
          ? { keys: [jwk] }
          : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { error: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    caPem: ca.certPem,
    async token(o) {
      const iat = Math.floor((Date.now() + o.offsetMs) / 1000);
      return new SignJWT({ groups: o.groups })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(o.sub)
        .setAudience('warden')
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(iat + o.lifetimeSeconds)
        .sign(privateKey);
    },
    async verifies(token, clockToleranceSeconds) {
      try {
        await jwtVerify(token, publicKey, {
          issuer,
          audience: 'warden',
          clockTolerance: clockToleranceSeconds,
        });
        return true;
      } catch {
        return false;
      }
    },
    stop: () => closeAll(server),
  };
}

async function closeAll(server: Server | ReturnType<typeof createHttpsServer>): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface SkewedBroker {
  /** Base URL of the combined agent listener. */
  readonly url: string;
  readonly client: AuthorityClient;
  readonly broker: ComposedBroker;
  close(): Promise<void>;
}

/**
 * The broker exactly as runBroker() wires it (authority client, audit shipper, composeBroker),
 * with its wall clock `wallOffsetMs` off the real one — a sidecar on a node whose clock is skewed.
 * Staleness stays on the monotonic clock, as in production.
 */
export async function startSkewedBroker(o: {
  tokenFile: string;
  authorityUrl: string;
  podName: string;
  wallOffsetMs: number;
}): Promise<SkewedBroker> {
  const log = pino({ level: process.env.WARDEN_E2E_LOG ?? 'silent' });
  const wallNow = () => Date.now() + o.wallOffsetMs;
  const client = new AuthorityClient({ authorityUrl: o.authorityUrl, tokenFile: o.tokenFile, log, wallNow });
  const audit = new AuditShipper({ transport: client, log });
  const broker = composeBroker({ source: client, issuer: client, audit, log, podName: o.podName, wallNow });
  await new Promise<void>((resolve) => broker.server.listen(0, '127.0.0.1', resolve));
  void client.start();
  return {
    url: `http://127.0.0.1:${(broker.server.address() as AddressInfo).port}`,
    client,
    broker,
    async close() {
      client.stop();
      broker.dispose();
      await audit.close();
      await closeAll(broker.server);
    },
  };
}
