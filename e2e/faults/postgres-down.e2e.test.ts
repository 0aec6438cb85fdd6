/**
 * Fault: PostgreSQL goes down. A real `warden controller` (in-process) on the shared control
 * plane, a real PostgreSQL from e2e/harness stopped and started again on the same port and data
 * directory.
 *
 * What the user sees: a database credential request (`POST /v1/credentials` for a PostgreSQL
 * CredentialProvider, what the broker asks before a database login) fails with 503
 * temporarily_unavailable naming the provider and saying the database is unreachable — no secret,
 * no stack trace. The kill
 * switch issued during the outage reports its revocation as pending, and completes once the
 * database is back: the agent's temporary login roles are NOLOGIN, pending drops to 0.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfig } from '../harness/index.js';
import { type PostgresServer, startPostgres } from '../harness/postgres.js';
import { eventually, type Stack, startStack } from '../killswitch-fixture.js';
import {
  ADMIN_PASSWORD,
  agentRoles,
  attest,
  auditEntries,
  auditRecords,
  createDbProvider,
  eventsFor,
  getAgent,
  patchAgentSpec,
  preparePostgres,
  requestDbCredential,
} from './faults-b-fixture.js';

describe('fault: PostgreSQL down', () => {
  let pgServer: PostgresServer;
  let superuser: pg.Client;
  let stack: Stack;
  let ns: string;
  let kc: KubeConfig;

  beforeAll(async () => {
    ns = await freshNamespace('fault-pg');
    pgServer = await startPostgres();
    superuser = await preparePostgres(pgServer);
    kc = kubeConfig();
    stack = await startStack({ kubeConfig: kc, namespace: ns });
    await createDbProvider(kc, stack.api, { namespace: ns, agent: stack.agent, server: pgServer });
    await stack.waitReady();
  });

  afterAll(async () => {
    await stack?.stop();
    await superuser?.end().catch(() => {});
    await pgServer?.stop();
  });

  it('credential requests fail with a clear error while it is down; the kill switch completes revocation when it returns', async () => {
    const session = await attest(kc, stack.authorityUrl, ns, stack.agent);

    // Up: a temporary login role, and a session on it.
    const ok = await eventually('a database credential', async () => {
      const r = await requestDbCredential(stack.authorityUrl, session);
      return r.status === 200 && r;
    });
    const login = ok.body.credential?.postgresql;
    if (!login) throw new Error(`expected a PostgreSQL login, got ${ok.text}`);
    expect(login.user).toBe(ok.body.credential?.id);
    const dbSession = new pg.Client({ ...login });
    dbSession.on('error', () => {}); // ended by the outage
    await dbSession.connect();
    expect((await dbSession.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await dbSession.end();

    await pgServer.stopServer();

    // Down: the broker's next database credential request. Unavailability, not a denial: 503,
    // so the broker answers its client with a SQLSTATE it retries (class 08), not 28000.
    const down = await requestDbCredential(stack.authorityUrl, session);
    expect(down.status).toBe(503);
    expect(down.body.error).toBe('temporarily_unavailable');
    const said = down.body.error_description ?? '';
    // Named once, then what went wrong (not "CredentialProvider x: …: CredentialProvider x: …").
    expect(said.split(`CredentialProvider ${ns}/db`).length - 1).toBe(1);
    expect(said).toContain(`database 127.0.0.1:${pgServer.port}/postgres is unreachable`);
    // No secret and no stack trace in what the caller receives.
    for (const secret of [ADMIN_PASSWORD, pgServer.password, login.password]) {
      expect(down.text).not.toContain(secret);
    }
    expect(down.text).not.toMatch(/\n\s+at |\.ts:\d+/);

    // The kill switch while the database is down: denied at once, revocation pending.
    await patchAgentSpec(stack.api, ns, stack.agent, { suspended: true, suspendReason: 'db incident' });
    // Until the broker's snapshot shows the suspension, the authority (which saw it first) refuses
    // the credential: CredentialDenied. Either way a refusal; then the broker denies by itself.
    const refusals = new Set<string>();
    const denied = await eventually('a call the broker denies as suspended', async () => {
      const r = await stack.call('GET');
      if (r.status === 200) return undefined;
      refusals.add(/AgentSuspended|CredentialDenied/.exec(r.body)?.[0] ?? r.body);
      return r.body.includes('AgentSuspended') && r;
    });
    expect(denied.body).toContain('AgentSuspended');
    expect(
      [...refusals].every((k) => k === 'AgentSuspended' || k === 'CredentialDenied'),
      [...refusals].join(' | '),
    ).toBe(true);
    const pending = await eventually('revocation reported as pending', async () => {
      const rev = (await getAgent(stack.api, ns, stack.agent)).status?.revocation;
      return rev?.requestedAt !== undefined && !rev.completedAt && (rev.pending ?? 0) >= 1 && rev;
    });
    expect(pending.reason).toBe('db incident');
    const failed = await eventually('a RevocationFailed Event', async () =>
      (await eventsFor(stack.api, ns, stack.agent)).find((e) => e.reason === 'RevocationFailed'),
    );
    expect(failed.note).toContain(
      `CredentialProvider ${ns}/db: database 127.0.0.1:${pgServer.port}/postgres is unreachable`,
    );
    expect(failed.note.split(`CredentialProvider ${ns}/db`)).toHaveLength(2); // named once
    for (const secret of [ADMIN_PASSWORD, pgServer.password, login.password]) {
      expect(failed.note).not.toContain(secret);
      expect(JSON.stringify(pending)).not.toContain(secret);
    }
    // The role still exists and could log in: nothing revoked it yet (checked once it is back).

    await pgServer.startServer();
    await superuser.end().catch(() => {});
    superuser = new pg.Client({ connectionString: pgServer.connectionString });
    superuser.on('error', () => {});
    await superuser.connect();

    // Back: the queue's retry (backoff) finishes the same revocation.
    const done = await eventually(
      'revocation complete after PostgreSQL returned',
      async () => {
        const rev = (await getAgent(stack.api, ns, stack.agent)).status?.revocation;
        return rev?.completedAt !== undefined && rev;
      },
      60_000,
      250,
    );
    expect(done).toMatchObject({ pending: 0, reason: 'db incident', requestedAt: pending.requestedAt });
    expect(done.credentialsRevoked).toBeGreaterThanOrEqual(1);
    const roles = await agentRoles(superuser, ns, stack.agent);
    expect(roles.map((r) => r.rolname)).toContain(login.user);
    expect(roles.every((r) => !r.rolcanlogin)).toBe(true);
    const again = new pg.Client({ ...login });
    again.on('error', () => {});
    await expect(again.connect()).rejects.toThrow();
    await again.end().catch(() => {});

    // Still suspended: no new credential now that the database is reachable again.
    const after = await requestDbCredential(stack.authorityUrl, session);
    expect(after.status).not.toBe(200);
    expect(after.text).toMatch(/suspended/i);
    expect(after.body.credential).toBeUndefined();

    // The audit trail tells the story: the suspension, the failed attempt, the completion.
    const trail = await eventually('the Revocation audit entries', async () => {
      const e = auditEntries(await auditRecords(stack.api, ns, stack.agent));
      return e.some((x) => x.kind === 'Revocation' && x.message?.startsWith('revocation complete')) && e;
    });
    const kinds = trail.filter((e) => e.kind === 'Suspension' || e.kind === 'Revocation');
    expect(kinds.filter((e) => e.kind === 'Suspension')).toHaveLength(1);
    expect(kinds.some((e) => e.message?.includes('will retry'))).toBe(true);
    expect(kinds.filter((e) => e.message?.startsWith('revocation complete'))).toHaveLength(1);
    // Every central decision is in the trail, the refusals during the outage included.
    const refused = trail.filter((e) => e.kind === 'Credential' && e.decision === 'Deny');
    expect(refused.some((e) => e.message?.includes('is unreachable'))).toBe(true);
    await eventually(
      'the audit buffer drained',
      async () => stack.controller.auditWriter.stats().buffered === 0,
    );
    expect(stack.controller.auditWriter.stats().dropped).toBe(0);
  }, 90_000);
});
