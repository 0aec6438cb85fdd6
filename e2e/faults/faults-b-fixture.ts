/**
 * Shared pieces of the fault tests for the API server restart, PostgreSQL outage and leader
 * failover (e2e/faults/*.e2e.test.ts): a real PostgreSQL prepared as Warden's docs ask (an admin
 * role with CREATEROLE, ADMIN OPTION on the granted role and pg_signal_backend), a PostgreSQL
 * CredentialProvider, an attested session straight from the authority's token endpoint, and
 * `warden controller` replicas as child processes (so a test can SIGKILL one).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../../authority/constants.js';
import { agentRolePrefix } from '../../authority/mint/postgresql.js';
import type { AgentIdentity, AuditEntry, AuditRecord } from '../../core/api/index.js';
import { API_VERSION, DEFAULT_BROKER_AUDIENCE, PLURAL } from '../../core/constants.js';
import type { KubeConfigApi, ObjectList } from '../../kube/kube.js';
import { injectBroker } from '../../webhook/test-builders.js';
import { E2E_BROKER_IMAGE, E2E_ISSUER } from '../agent-stack.js';
import { createWardenAdmin, type PostgresServer, postgresProviderSpec } from '../harness/postgres.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The password of the admin role the CredentialProvider logs in as (a test value, not a secret). */
export const ADMIN_PASSWORD = 'faults-admin-password';
export const ADMIN_USER = 'warden_admin';
export const GRANTED_ROLE = 'app_read';
export const ADMIN_SECRET = 'pg-admin';

/** Creates the granted role and Warden's admin role; returns a superuser session. */
export async function preparePostgres(server: PostgresServer): Promise<pg.Client> {
  const superuser = new pg.Client({ connectionString: server.connectionString });
  // The server is stopped under this client in the outage tests.
  superuser.on('error', () => {});
  await superuser.connect();
  await createWardenAdmin(superuser, {
    user: ADMIN_USER,
    password: ADMIN_PASSWORD,
    grantRoles: [GRANTED_ROLE],
  });
  return superuser;
}

/** The admin Secret, a PostgreSQL CredentialProvider `name` and an AccessPolicy allowing it to `agent`. */
export async function createDbProvider(
  kc: KubeConfig,
  api: KubeConfigApi,
  o: { namespace: string; agent: string; server: PostgresServer; name?: string },
): Promise<string> {
  const name = o.name ?? 'db';
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace: o.namespace,
    body: {
      metadata: { name: ADMIN_SECRET },
      stringData: { username: ADMIN_USER, password: ADMIN_PASSWORD },
    },
  });
  const base = `/apis/${API_VERSION}/namespaces/${o.namespace}`;
  await api.request('POST', `${base}/${PLURAL.CredentialProvider}`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'CredentialProvider',
      metadata: { name },
      spec: postgresProviderSpec(o.server, {
        grantRoles: [GRANTED_ROLE],
        adminSecret: ADMIN_SECRET,
        roleTTL: '10m',
      }),
    },
  });
  await api.request('POST', `${base}/${PLURAL.AccessPolicy}`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'AccessPolicy',
      metadata: { name: `${o.agent}-${name}` },
      spec: { agentSelector: { names: [o.agent] }, effect: 'Allow', rules: [{ targets: [name] }] },
    },
  });
  return name;
}

/** A ServiceAccount, an AgentIdentity and its pod (no kubelet runs: the pod stays Pending, which attestation accepts). */
export async function createAgent(
  kc: KubeConfig,
  api: KubeConfigApi,
  namespace: string,
  agent: string,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: agent } } });
  await api.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL.AgentIdentity}`, {
    body: {
      apiVersion: API_VERSION,
      kind: 'AgentIdentity',
      metadata: { name: agent },
      spec: { serviceAccountName: agent },
    },
  });
  await core.createNamespacedPod({
    namespace,
    body: injectBroker(
      {
        metadata: { name: `${agent}-0`, annotations: { 'warden.dev/agent': agent } },
        spec: {
          serviceAccountName: agent,
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'ghcr.io/acme/agent@sha256:0000' }],
        },
      },
      { agent, issuer: E2E_ISSUER, image: E2E_BROKER_IMAGE },
    ),
  });
}

/** What a broker does at start: its pod-bound projected token exchanged for a session token. */
export async function attest(
  kc: KubeConfig,
  authorityUrl: string,
  namespace: string,
  agent: string,
  podName = `${agent}-0`,
): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const pod = await core.readNamespacedPod({ namespace, name: podName });
  const tr = await core.createNamespacedServiceAccountToken({
    namespace,
    name: agent,
    body: {
      spec: {
        audiences: [DEFAULT_BROKER_AUDIENCE],
        expirationSeconds: 3600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: podName, uid: pod.metadata?.uid },
      },
    },
  });
  const res = await fetch(`${authorityUrl}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: tr.status?.token ?? '',
      subject_token_type: TOKEN_TYPE_JWT,
    }).toString(),
  });
  const body = (await res.json()) as { access_token?: string; error_description?: string };
  if (!res.ok || !body.access_token) {
    throw new Error(`attestation at ${authorityUrl} failed: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

export interface CredentialAnswer {
  status: number;
  text: string;
  body: {
    error?: string;
    error_description?: string;
    decision?: unknown;
    credential?: {
      id: string;
      postgresql?: { host: string; port: number; database: string; user: string; password: string };
    } | null;
  };
}

/** POST /v1/credentials for a PostgreSQL target, as the broker asks before a database login. */
export async function requestDbCredential(
  authorityUrl: string,
  session: string,
  target = 'db',
): Promise<CredentialAnswer> {
  const res = await fetch(`${authorityUrl}/v1/credentials`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target, kind: 'postgresql' }),
  });
  const text = await res.text();
  let body: CredentialAnswer['body'] = {};
  try {
    body = JSON.parse(text) as CredentialAnswer['body'];
  } catch {
    // not JSON: the assertions look at text
  }
  return { status: res.status, text, body };
}

/** Warden's login roles of an agent in the database, with whether they may still log in. */
export async function agentRoles(
  superuser: pg.Client,
  namespace: string,
  agent: string,
): Promise<{ rolname: string; rolcanlogin: boolean }[]> {
  const { rows } = await superuser.query<{ rolname: string; rolcanlogin: boolean }>(
    'SELECT rolname, rolcanlogin FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname',
    [agentRolePrefix({ namespace, name: agent })],
  );
  return rows;
}

export async function getAgent(api: KubeConfigApi, namespace: string, agent: string): Promise<AgentIdentity> {
  return api.request('GET', `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL.AgentIdentity}/${agent}`);
}

/** Merge-patches the AgentIdentity spec, as `kubectl patch --type merge` would. */
export async function patchAgentSpec(
  api: KubeConfigApi,
  namespace: string,
  agent: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await api.request(
    'PATCH',
    `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL.AgentIdentity}/${agent}`,
    {
      body: { spec },
      contentType: 'application/merge-patch+json',
      query: { fieldManager: 'e2e-security-team' },
    },
  );
}

export async function auditRecords(
  api: KubeConfigApi,
  namespace: string,
  agent: string,
): Promise<AuditRecord[]> {
  const list = await api.request<ObjectList<AuditRecord>>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${namespace}/${PLURAL.AuditRecord}`,
  );
  return list.items.filter((r) => r.spec.agent === agent);
}

export function auditEntries(records: AuditRecord[]): AuditEntry[] {
  return records.flatMap((r) => r.spec.entries);
}

export interface EventSummary {
  reason: string;
  note: string;
  /** 1 + the series count: how many times the recorder saw it. */
  count: number;
}

/** events.k8s.io Events about one object. */
export async function eventsFor(
  api: KubeConfigApi,
  namespace: string,
  name: string,
): Promise<EventSummary[]> {
  const list = await api.request<{
    items: Array<{
      reason?: string;
      note?: string;
      regarding?: { name?: string };
      series?: { count?: number };
    }>;
  }>('GET', `/apis/events.k8s.io/v1/namespaces/${namespace}/events`);
  return list.items
    .filter((e) => e.regarding?.name === name)
    .map((e) => ({ reason: e.reason ?? '', note: e.note ?? '', count: e.series?.count ?? 1 }));
}

export interface ControllerProcess {
  identity: string;
  child: ChildProcess;
  authorityUrl: string;
  /** The last lines the process wrote (JSON logs), for failure messages. */
  logTail(): string;
  /** SIGKILL: no shutdown, no Lease release, no flush — a crashed node. */
  kill(): Promise<void>;
  /** SIGTERM and wait (graceful). */
  stop(): Promise<void>;
}

export interface SpawnControllerOptions {
  kubeconfigPath: string;
  namespace: string;
  identity: string;
  /** Seconds an audit entry may wait before its record is written. */
  auditFlushSeconds?: number;
  logLevel?: string;
  /** Fixed authority port (a replica restarted on the same address); default any free one. */
  authorityPort?: number;
}

/**
 * `warden controller` (operator + webhook + authority + audit writer) as a child process with
 * leader election on, Lease and watch in `namespace`. Resolves once it serves.
 */
export async function spawnController(o: SpawnControllerOptions): Promise<ControllerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli/warden.ts',
      'controller',
      `--kubeconfig=${o.kubeconfigPath}`,
      `--namespace=${o.namespace}`,
      `--watch-namespace=${o.namespace}`,
      `--identity=${o.identity}`,
      '--host=127.0.0.1',
      '--webhook-port=0',
      `--authority-port=${o.authorityPort ?? 0}`,
      '--health-port=0',
      '--webhook-configuration=',
      '--authority-insecure-http',
      `--issuer=${E2E_ISSUER}`,
      `--broker-image=${E2E_BROKER_IMAGE}`,
      `--tls-secret=warden-tls-${o.namespace}`,
      `--audit-flush-seconds=${o.auditFlushSeconds ?? 0.2}`,
      '--audit-batch-size=50',
      `--log-level=${o.logLevel ?? 'info'}`,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  );
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(l);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(
      () =>
        reject(
          new Error(`controller ${o.identity} did not serve within 90 s:\n${lines.slice(-20).join('\n')}`),
        ),
      90_000,
    );
    child.stdout?.on('data', (d: Buffer) => {
      keep(d);
      buffer += d.toString();
      let i = buffer.indexOf('\n');
      while (i !== -1) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        i = buffer.indexOf('\n');
        try {
          const rec = JSON.parse(line) as { msg?: string; authorityPort?: number };
          if (rec.msg === 'warden controller serving' && rec.authorityPort) {
            clearTimeout(timer);
            resolve(rec.authorityPort);
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`controller ${o.identity} exited (${code ?? signal}):\n${lines.slice(-20).join('\n')}`),
      );
    });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const kill = async () => {
    if (!gone()) child.kill('SIGKILL');
    await exited;
  };
  return {
    identity: o.identity,
    child,
    authorityUrl: `http://127.0.0.1:${port}`,
    logTail: () => lines.slice(-40).join('\n'),
    kill,
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      const done = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 20_000).unref()),
      ]);
      if (!done) await kill();
    },
  };
}

/** The holder of the controllers' leader Lease in `namespace`, or undefined. */
export async function leaseHolder(
  api: KubeConfigApi,
  namespace: string,
  lease: string,
): Promise<string | undefined> {
  try {
    const l = await api.request<{ spec?: { holderIdentity?: string } }>(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${lease}`,
    );
    return l.spec?.holderIdentity || undefined;
  } catch {
    return undefined;
  }
}
