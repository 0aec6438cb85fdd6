/**
 * Fault: the leader controller is killed mid-revocation. Two `warden controller` replicas (child
 * processes of cli/warden.ts, leader election on one Lease) against the shared control plane, a
 * real PostgreSQL holding the agent's temporary login roles.
 *
 * "Mid-revocation" is made exact, not timed: a superuser transaction holds a row lock on the first
 * role, so the leader's `ALTER ROLE … NOLOGIN` waits in PostgreSQL (visible in pg_stat_activity)
 * after status.revocation recorded the request. Then the leader gets SIGKILL — no shutdown, no
 * Lease release — and the lock is let go. The other replica must take the Lease and finish the
 * same revocation exactly once: completedAt set, every role NOLOGIN and its session ended,
 * credentialsRevoked counted once, one RevocationRequested / CredentialsRevoked Event, one
 * Suspension and one completed-Revocation audit entry, and the audit chain still verifies.
 *
 * (Found by it: the PostgreSQL sweep dropped revoked roles at once, so the new leader counted only
 * the roles the old one had not reached — revoked roles now stay, NOLOGIN, until VALID UNTIL.)
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../core/audit/chain.js';
import { LEADER_LEASE_NAME } from '../../core/constants.js';
import { KubeConfigApi } from '../../kube/kube.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../harness/index.js';
import { type PostgresServer, startPostgres } from '../harness/postgres.js';
import { eventually } from '../killswitch-fixture.js';
import {
  ADMIN_USER,
  agentRoles,
  attest,
  auditEntries,
  auditRecords,
  type ControllerProcess,
  createAgent,
  createDbProvider,
  eventsFor,
  getAgent,
  leaseHolder,
  patchAgentSpec,
  preparePostgres,
  requestDbCredential,
  spawnController,
} from './faults-b-fixture.js';

const AGENT = 'bot';

describe('fault: leader controller killed mid-revocation', () => {
  let pgServer: PostgresServer;
  let superuser: pg.Client;
  let ns: string;
  let api: KubeConfigApi;
  const replicas: ControllerProcess[] = [];

  beforeAll(async () => {
    ns = await freshNamespace('fault-leader');
    const kc = kubeConfig();
    api = new KubeConfigApi(kc);
    pgServer = await startPostgres();
    superuser = await preparePostgres(pgServer);
    await createAgent(kc, api, ns, AGENT);
    await createDbProvider(kc, api, { namespace: ns, agent: AGENT, server: pgServer });
    // Both replicas boot at once (tsx compiles on start-up; in parallel it costs one boot).
    replicas.push(
      ...(await Promise.all(
        ['replica-a', 'replica-b'].map((identity) =>
          spawnController({ kubeconfigPath: kubeconfigPath(), namespace: ns, identity }),
        ),
      )),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await superuser?.end().catch(() => {});
    await pgServer?.stop();
  });

  it('the other replica takes over and completes the revocation exactly once', async () => {
    const kc = kubeConfig();
    const leaderId = await eventually('a leader', () => leaseHolder(api, ns, LEADER_LEASE_NAME), 60_000);
    const leader = replicas.find((r) => r.identity === leaderId);
    const survivor = replicas.find((r) => r.identity !== leaderId);
    if (!leader || !survivor) throw new Error(`unexpected Lease holder ${leaderId}`);
    await eventually(
      'the AgentIdentity reconciled by the leader',
      async () =>
        (await getAgent(api, ns, AGENT)).status?.conditions?.find((c) => c.type === 'Ready')?.status ===
        'True',
      60_000,
    );

    // Outstanding credentials, issued by both replicas' authorities: the database is the list.
    const logins = [];
    for (const r of [leader, survivor]) {
      const session = await attest(kc, r.authorityUrl, ns, AGENT);
      const answer = await eventually(`a credential from ${r.identity}`, async () => {
        const a = await requestDbCredential(r.authorityUrl, session);
        return a.status === 200 && a;
      });
      const login = answer.body.credential?.postgresql;
      if (!login) throw new Error(`expected a PostgreSQL login, got ${answer.text}`);
      logins.push(login);
    }
    const roles = (await agentRoles(superuser, ns, AGENT)).map((r) => r.rolname);
    expect(roles).toHaveLength(2);
    const dbSession = new pg.Client({ ...logins[1] });
    dbSession.on('error', () => {}); // terminated by the revocation
    await dbSession.connect();

    // Hold the first role's row: the leader's ALTER ROLE … NOLOGIN will wait on it.
    const blocker = new pg.Client({ connectionString: pgServer.connectionString });
    blocker.on('error', () => {});
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`ALTER ROLE ${pg.escapeIdentifier(roles[0] as string)} CONNECTION LIMIT 5`);

    await patchAgentSpec(api, ns, AGENT, { suspended: true, suspendReason: 'failover drill' });
    const inFlight = await eventually(
      'the leader waiting in ALTER ROLE … NOLOGIN',
      async () => {
        const { rows } = await superuser.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity
            WHERE usename = $1 AND wait_event_type = 'Lock' AND query ILIKE 'ALTER ROLE%NOLOGIN'`,
          [ADMIN_USER],
        );
        return rows.length > 0 && rows;
      },
      30_000,
    );
    expect(inFlight).toHaveLength(1);
    const requested = (await getAgent(api, ns, AGENT)).status?.revocation;
    expect(requested?.requestedAt).toBeDefined();
    expect(requested?.completedAt).toBeUndefined();
    // The audit writer flushes every 0.2 s; the entry the leader recorded before revoking is
    // waited for, so what follows tests the revocation handover and not the loss of an unflushed
    // buffer on SIGKILL (documented: status is authoritative; buffered entries die with a process).
    await eventually('the Suspension audit entry', async () =>
      auditEntries(await auditRecords(api, ns, AGENT)).some((e) => e.kind === 'Suspension'),
    );

    await leader.kill();
    await blocker.query('ROLLBACK');
    await blocker.end();

    // The survivor takes the Lease once it expires (no release: the leader was killed).
    await eventually(
      'the survivor holding the Lease',
      async () => (await leaseHolder(api, ns, LEADER_LEASE_NAME)) === survivor.identity,
      60_000,
      250,
    );
    const done = await eventually(
      'revocation completed by the new leader',
      async () => {
        const rev = (await getAgent(api, ns, AGENT)).status?.revocation;
        return rev?.completedAt !== undefined && rev;
      },
      60_000,
      250,
    );
    // The same revocation, finished — not a second one, and nothing counted twice.
    expect(done).toMatchObject({
      requestedAt: requested?.requestedAt,
      requestedBy: requested?.requestedBy,
      reason: 'failover drill',
      credentialsRevoked: 2,
      pending: 0,
    });
    const after = await agentRoles(superuser, ns, AGENT);
    expect(after.map((r) => r.rolname)).toEqual(roles);
    expect(after.every((r) => !r.rolcanlogin)).toBe(true);
    await expect(dbSession.query('SELECT 1')).rejects.toThrow();
    await dbSession.end().catch(() => {});

    // Exactly once in the trail and in the Events (the new leader's recorder writes them).
    const trail = await eventually('the Revocation audit entry', async () => {
      const e = auditEntries(await auditRecords(api, ns, AGENT));
      return e.some((x) => x.kind === 'Revocation' && x.message?.startsWith('revocation complete')) && e;
    });
    await eventually('the CredentialsRevoked Event', async () =>
      (await eventsFor(api, ns, AGENT)).some((e) => e.reason === 'CredentialsRevoked'),
    );
    // Let a duplicate, if any, arrive before counting exactly (the writers flush every 0.2 s).
    await new Promise((r) => setTimeout(r, 1500));
    const records = await auditRecords(api, ns, AGENT);
    const final = auditEntries(records);
    expect(final.length).toBeGreaterThanOrEqual(trail.length);
    expect(final.filter((e) => e.kind === 'Suspension')).toHaveLength(1);
    // Completed once. (Had the killed leader's statement timed out first, a "will retry" entry
    // would precede it — a retry is not a duplicate completion.)
    const completions = final.filter(
      (e) => e.kind === 'Revocation' && e.message?.startsWith('revocation complete'),
    );
    expect(completions.map((e) => e.message)).toEqual(['revocation complete: 2 credential(s) revoked']);
    const events = await eventsFor(api, ns, AGENT);
    const count = (reason: string) =>
      events.filter((e) => e.reason === reason).reduce((n, e) => n + e.count, 0);
    expect(count('RevocationRequested')).toBe(1);
    expect(count('CredentialsRevoked')).toBe(1);
    // Two writers (one killed) appended to one chain: it still verifies.
    const verified = verifyChain(records.map((r) => ({ name: r.metadata?.name, spec: r.spec })));
    expect(verified.problems).toEqual([]);
    expect(verified.ok).toBe(true);
  }, 150_000);
});
