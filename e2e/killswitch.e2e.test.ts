/**
 * The kill switch and the audit trail, end to end: a real API server, a real `warden controller`
 * (operator + authority + audit writer), a real broker in front of a real HTTP upstream, a real
 * PostgreSQL, and the real `kubectl warden` CLI as a child process.
 *
 * Speed (patch → first denial) is measured by bench/killswitch.bench.ts; here the behaviour.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresMinter } from '../authority/mint/postgresql.js';
import { kubeSecretsReader } from '../authority/mint/secrets.js';
import type { AuditRecord } from '../core/api/index.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { KubeConfigApi } from '../kube/kube.js';
import {
  freshNamespace,
  installCrds,
  kubeConfig,
  kubeconfigPath,
  startControlPlane,
} from './harness/index.js';
import {
  createWardenAdmin,
  type PostgresServer,
  postgresProviderSpec,
  startPostgres,
} from './harness/postgres.js';
import { eventually, type Stack, startStack } from './killswitch-fixture.js';

const exec = promisify(execFile);

async function cli(args: string[], kubeconfig = kubeconfigPath()): Promise<{ code: number; out: string }> {
  try {
    const r = await exec(process.execPath, ['--import', 'tsx', 'cli/kubectl-warden.ts', ...args], {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      timeout: 90_000,
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function entries(records: AuditRecord[], requestIdPrefix: string) {
  return records.flatMap((r) => r.spec.entries).filter((e) => e.requestId?.startsWith(requestIdPrefix));
}

const ADMIN_PASSWORD = 'e2e-admin-password';

describe('kill switch and audit trail (shared control plane, PostgreSQL, broker)', () => {
  let stack: Stack;
  let pgServer: PostgresServer;
  let superuser: pg.Client;
  let ns: string;

  beforeAll(async () => {
    ns = await freshNamespace('killswitch');
    pgServer = await startPostgres();
    superuser = new pg.Client({ connectionString: pgServer.connectionString });
    await superuser.connect();
    await createWardenAdmin(superuser, { password: ADMIN_PASSWORD, grantRoles: ['app_read'] });
    const kc = kubeConfig();
    stack = await startStack({ kubeConfig: kc, namespace: ns });
    await kc.makeApiClient((await import('@kubernetes/client-node')).CoreV1Api).createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 'pg-admin' },
        stringData: { username: 'warden_admin', password: ADMIN_PASSWORD },
      },
    });
    await stack.api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.CredentialProvider}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'CredentialProvider',
        metadata: { name: 'db' },
        spec: postgresProviderSpec(pgServer, { grantRoles: ['app_read'] }),
      },
    });
    await stack.waitReady();
  });

  afterAll(async () => {
    await stack?.stop();
    await superuser?.end();
    await pgServer?.stop();
  });

  it('kill: the broker denies (AgentSuspended), revocation completes in status with who and why, database logins end; revive: allowed again', async () => {
    const first = await stack.call('GET');
    expect(first.body).toContain('"ticket"');
    expect(first.status).toBe(200);
    const jwt = (stack.upstreamAuthorizations().at(-1) ?? '').replace(/^Bearer /, '');
    const introspect = async () =>
      (await (
        await fetch(`${stack.authorityUrl}/v1/introspect`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: jwt }).toString(),
        })
      ).json()) as { active: boolean };
    expect(await introspect()).toMatchObject({ active: true });

    // An outstanding credential: a temporary PostgreSQL login of this agent, with an open session.
    const minter = new PostgresMinter();
    const minted = await minter.mint({
      agent: { name: stack.agent, namespace: ns, labels: {} },
      user: null,
      provider: {
        name: 'db',
        namespace: ns,
        spec: postgresProviderSpec(pgServer, { grantRoles: ['app_read'] }),
      },
      policy: { policy: `${ns}/bot-read` },
      secrets: kubeSecretsReader(new KubeConfigApi(kubeConfig())),
    });
    await minter.close();
    if (minted.credential.kind !== 'postgresql') throw new Error('expected a PostgreSQL credential');
    const session = new pg.Client({ ...minted.credential.value });
    session.on('error', () => {}); // terminated by the kill switch below
    await session.connect();
    expect((await session.query('SELECT 1 AS one')).rows[0].one).toBe(1);

    const kill = cli(['kill', stack.agent, '-n', ns, '--reason', 'incident 42', '--timeout', '60s']);
    const denied = await eventually('a denied call', async () => {
      const r = await stack.call('GET');
      return r.status !== 200 && r;
    });
    expect(denied.body).toContain('AgentSuspended');
    const killed = await kill;
    expect(killed.out).toContain('suspended (reason: incident 42)');
    expect(killed.out).toContain('revocation completed at');
    expect(killed.code).toBe(0);

    const agent = await stack.getAgent();
    expect(agent.status?.revocation).toMatchObject({ reason: 'incident 42', pending: 0 });
    expect(agent.status?.revocation?.requestedBy).toMatch(/ via kubectl-warden \(Update at /);
    expect(agent.status?.revocation?.credentialsRevoked).toBeGreaterThanOrEqual(1);
    expect(agent.status?.revocation?.completedAt).toBeDefined();
    expect(agent.status?.conditions?.find((c) => c.type === 'Suspended')?.status).toBe('True');

    const role = await superuser.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [
      minted.credential.id,
    ]);
    expect(role.rows[0].rolcanlogin).toBe(false);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    // The Warden JWT the upstream received before the kill is revoked (RFC 7662 introspection).
    expect(await introspect()).toEqual({ active: false });
    await session.end().catch(() => {});

    const events = await eventually('the revocation Events', async () => {
      const list = await stack.api.request<{
        items: Array<{ reason: string; regarding?: { name?: string } }>;
      }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      const reasons = list.items.filter((e) => e.regarding?.name === stack.agent).map((e) => e.reason);
      return reasons.includes('CredentialsRevoked') && reasons;
    });
    expect(events).toEqual(
      expect.arrayContaining(['RevocationRequested', 'CredentialsRevoked', 'Suspended']),
    );

    const suspension = await eventually('the Suspension audit entry', async () =>
      (await stack.auditRecords()).flatMap((r) => r.spec.entries).find((e) => e.kind === 'Suspension'),
    );
    expect(suspension.user).toMatch(/ via kubectl-warden/);
    expect(suspension.message).toContain('incident 42');

    const revived = await cli(['revive', stack.agent, '-n', ns, '--timeout', '60s']);
    expect(revived.out).toContain('Suspended=False');
    expect(revived.code).toBe(0);
    await eventually('an allowed call after revive', async () => (await stack.call('GET')).status === 200);
    // Revived, the agent gets new tokens; the one minted before the kill stays revoked.
    expect(await introspect()).toEqual({ active: false });
  });

  it('N decisions become exactly N audit entries, and the status counters follow', async () => {
    const prefix = `n-decisions-${Date.now()}-`;
    const before = (await stack.getAgent()).status?.decisions;
    const N = 40;
    const statuses: number[] = [];
    for (let i = 0; i < N; i++) {
      statuses.push((await stack.call(i % 4 === 3 ? 'POST' : 'GET', `${prefix}${i}`)).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    await eventually('N entries', async () => entries(await stack.auditRecords(), prefix).length >= N);
    // Let any duplicate arrive before counting exactly.
    await new Promise((r) => setTimeout(r, 1500));
    const got = entries(await stack.auditRecords(), prefix).filter((e) => e.kind === 'Decision');
    expect(got).toHaveLength(N);
    expect(new Set(got.map((e) => e.requestId)).size).toBe(N);
    expect(got.filter((e) => e.decision === 'Deny')).toHaveLength(10);
    for (const e of got) expect(e.pod).toBe(`${stack.agent}-0`);

    const after = await eventually('status counters', async () => {
      const d = (await stack.getAgent()).status?.decisions;
      return (
        d &&
        (d.allowed ?? 0) >= (before?.allowed ?? 0) + 30 &&
        (d.denied ?? 0) >= (before?.denied ?? 0) + 10 &&
        d
      );
    });
    expect(after.lastDecisionTime).toBeDefined();
    expect((await stack.getAgent()).status?.lastSeen).toBeDefined();
  });

  it('namespace-wide stop: an AccessPolicy with effect Deny selecting every agent', async () => {
    await stack.api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AccessPolicy}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AccessPolicy',
        metadata: { name: 'stop-all' },
        spec: {
          description: 'incident: stop every agent in this namespace',
          effect: 'Deny',
          rules: [{ targets: ['*'] }],
        },
      },
    });
    const denied = await eventually('a denial by stop-all', async () => {
      const r = await stack.call('GET');
      return r.status !== 200 && r;
    });
    expect(denied.body).toContain('stop-all');
    await stack.api.request(
      'DELETE',
      `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AccessPolicy}/stop-all`,
    );
    await eventually(
      'allowed once stop-all is deleted',
      async () => (await stack.call('GET')).status === 200,
    );
  });

  it('kubectl warden audit shows reasons, and --verify catches a deleted and an edited AuditRecord', async () => {
    await eventually('a few records', async () => (await stack.auditRecords()).length >= 4);
    // Wait for the trail to settle (the last calls' entries written).
    await new Promise((r) => setTimeout(r, 1500));
    const table = await cli(['audit', '-n', ns, '--agent', stack.agent, '--decision', 'Deny']);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/TIME\s+AGENT\s+KIND\s+DECISION/);
    expect(table.out).toContain('NoMatchingAllow');

    // The test controller runs in the agents' namespace: its audit keys are published there.
    const verify = () => cli(['audit', '-n', ns, '--verify', '--warden-namespace', ns]);
    const ok = await verify();
    expect(ok.out).toContain('audit trail OK');
    expect(ok.code).toBe(0);

    const records = (await stack.auditRecords()).sort((a, b) => a.spec.sequence - b.spec.sequence);
    const victim = records[1] as AuditRecord;
    const path = `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}/${victim.metadata?.name}`;
    await stack.api.request('DELETE', path);
    const gap = await verify();
    expect(gap.code).toBe(8);
    expect(gap.out).toContain('audit trail BROKEN');
    expect(gap.out).toContain(`records 1..1 of agent ${stack.agent} are missing`);

    // "Edited": the spec is immutable through the API, so an attacker recreates it with other content.
    const forged = structuredClone(victim.spec);
    forged.entries = forged.entries.map((e) => ({ ...e, decision: 'Allow' as const }));
    if (forged.entries.every((e, i) => e.decision === victim.spec.entries[i]?.decision)) {
      forged.entries[0] = { ...forged.entries[0]!, user: 'someone else' };
    }
    await stack.api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL.AuditRecord}`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'AuditRecord',
        metadata: { name: victim.metadata?.name, labels: victim.metadata?.labels },
        spec: forged,
      },
    });
    const altered = await verify();
    expect(altered.code).toBe(16);
    expect(altered.out).toContain(`ALTERED    auditrecord/${victim.metadata?.name}`);
    // Five CLI processes (each a Node start with tsx) plus the trail settling: on a loaded 2-core
    // machine this took 60 s once.
  }, 150_000);
});

describe('audit trail across an API server outage (private control plane)', () => {
  let cp: Awaited<ReturnType<typeof startControlPlane>>;
  let stack: Stack;

  beforeAll(async () => {
    cp = await startControlPlane();
    await installCrds(cp.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const { CoreV1Api } = await import('@kubernetes/client-node');
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'outage' } } });
    stack = await startStack({ kubeConfig: kc, namespace: 'outage' });
    await stack.waitReady();
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    await cp?.stop();
  });

  it('loses no audit entry when the API server is down mid-run', async () => {
    const prefix = `outage-${Date.now()}-`;
    let i = 0;
    for (; i < 10; i++) await stack.call(i % 2 ? 'POST' : 'GET', `${prefix}${i}`);
    await cp.stopApiServer();
    // Denied locally by policy (POST): decided and audited without the API server.
    for (; i < 30; i++) await stack.call('POST', `${prefix}${i}`);
    await new Promise((r) => setTimeout(r, 2000)); // the writer fails and buffers meanwhile
    await cp.startApiServer();
    for (; i < 35; i++) await stack.call('POST', `${prefix}${i}`);
    await eventually(
      'all entries written after the outage',
      async () => entries(await stack.auditRecords().catch(() => []), prefix).length >= 35,
      90_000,
      500,
    );
    await new Promise((r) => setTimeout(r, 1500));
    const got = entries(await stack.auditRecords(), prefix).filter((e) => e.kind === 'Decision');
    expect(new Set(got.map((e) => e.requestId)).size).toBe(35);
    expect(got).toHaveLength(35);
    expect(stack.controller.auditWriter.stats().dropped).toBe(0);
    const verify = await cli(
      ['audit', '-n', 'outage', '--verify', '--warden-namespace', 'outage'],
      cp.kubeconfigPath,
    );
    expect(verify.out).toContain('audit trail OK');
  }, 180_000);
});
