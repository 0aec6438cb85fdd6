/**
 * The PostgreSQL chain end to end: a real controller (operator with the role sweep, authority,
 * audit writer) on the shared control plane, a real broker serving its loopback PostgreSQL
 * endpoint, a real PostgreSQL, and the agent as a plain `pg` client that connects to
 * postgresql://127.0.0.1:<port>/<provider> without a password.
 *
 * What is shown: the session is decided by policy and audited; the query runs as a temporary
 * role the authority minted; a provider no policy allows is refused with the reason; the role is
 * dropped by the operator after its TTL (and its session ended); the kill switch ends open
 * sessions and refuses new ones; and no byte the agent received holds the role's password.
 */
import { execFile } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCredential } from '../broker/credentials.js';
import { API_VERSION, PLURAL } from '../core/constants.js';
import { freshNamespace, kubeConfig } from './harness/index.js';
import {
  createWardenAdmin,
  type PostgresServer,
  postgresProviderSpec,
  startPostgres,
} from './harness/postgres.js';
import { eventually, type Stack, startStack } from './killswitch-fixture.js';

const run = promisify(execFile);
const ADMIN_PASSWORD = 'e2e-admin-password-pg-chain';
const ROLE_TTL = '4s';

/** An agent session: a `pg` client with no password, recording every byte it receives. */
interface AgentSession {
  client: pg.Client;
  received: Buffer[];
  errors: Error[];
  ended: boolean;
}

describe('PostgreSQL through the broker (real control plane, controller, broker, PostgreSQL)', () => {
  let stack: Stack;
  let pgServer: PostgresServer;
  let superuser: pg.Client;
  let ns: string;
  /** Everything the broker obtained from the authority (the real answers, observed on their way). */
  const issued: IssuedCredential[] = [];
  const sessions: AgentSession[] = [];

  const connectAgent = async (database: string, options?: string): Promise<AgentSession> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: stack.broker.ports.pg!,
      database,
      user: 'agent',
      application_name: 'e2e-agent',
      ...(options !== undefined ? { options } : {}),
    });
    const s: AgentSession = { client, received: [], errors: [], ended: false };
    sessions.push(s);
    // biome-ignore lint/suspicious/noExplicitAny: pg's Connection.stream is not in its typings.
    const stream = (client as any).connection.stream as NodeJS.ReadableStream;
    stream.on('data', (d: Buffer) => s.received.push(Buffer.from(d)));
    client.on('error', (err) => s.errors.push(err));
    client.on('end', () => {
      s.ended = true;
    });
    await client.connect();
    return s;
  };

  const roleExists = async (role: string): Promise<boolean> =>
    (await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

  beforeAll(async () => {
    ns = await freshNamespace('pg-chain');
    pgServer = await startPostgres();
    superuser = new pg.Client({ connectionString: pgServer.connectionString });
    await superuser.connect();
    await createWardenAdmin(superuser, { password: ADMIN_PASSWORD, grantRoles: ['orders_read'] });
    for (const sql of [
      'CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)',
      "INSERT INTO orders VALUES (1, 'keyboard'), (2, 'monitor'), (3, 'cable')",
      'GRANT SELECT ON orders TO orders_read',
    ])
      await superuser.query(sql);

    const kc = kubeConfig();
    stack = await startStack({
      kubeConfig: kc,
      namespace: ns,
      pgEndpoint: true,
      postgresSweepIntervalMs: 500,
    });
    await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 'pg-admin' },
        stringData: { username: 'warden_admin', password: ADMIN_PASSWORD },
      },
    });
    const create = (plural: string, kind: string, name: string, spec: unknown) =>
      stack.api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${plural}`, {
        body: { apiVersion: API_VERSION, kind, metadata: { name }, spec },
      });
    for (const name of ['orders', 'payroll', 'reports']) {
      await create(
        PLURAL.CredentialProvider,
        'CredentialProvider',
        name,
        postgresProviderSpec(pgServer, { grantRoles: ['orders_read'], roleTTL: ROLE_TTL }),
      );
    }
    // A rule with neither tools nor http applies to every request to its targets: connections.
    await create(PLURAL.AccessPolicy, 'AccessPolicy', 'orders-db', {
      agentSelector: { names: [stack.agent] },
      rules: [
        { targets: ['orders'] },
        {
          targets: ['reports'],
          when: [
            {
              name: 'change-ticket',
              expression: "has(context.ticketId) && context.ticketId.startsWith('CHG-')",
            },
          ],
        },
      ],
    });
    // Observe what the authority hands the broker, to prove none of it reaches the agent.
    const client = stack.broker.client;
    const issue = client.issue.bind(client);
    client.issue = async (req) => {
      const c = await issue(req);
      issued.push(c);
      return c;
    };
    await stack.waitReady();
    await eventually('the broker to know the PostgreSQL providers', async () =>
      stack.broker.broker.decider.gate('orders', 'PostgreSQL').ok ? true : undefined,
    );
  }, 120_000);

  afterAll(async () => {
    for (const s of sessions) await s.client.end().catch(() => {});
    await stack?.stop();
    await superuser?.end();
    await pgServer?.stop();
  });

  let firstRole = '';

  it('the agent connects without a password and queries as a temporary role', async () => {
    const s = await connectAgent('orders');
    const r = await s.client.query<{ who: string; n: string }>(
      'SELECT current_user AS who, (SELECT count(*) FROM orders) AS n',
    );
    firstRole = r.rows[0]!.who;
    expect(firstRole).toMatch(/^w_/);
    expect(r.rows[0]!.n).toBe('3');
    expect(issued.at(-1)?.postgresql?.user).toBe(firstRole);
    // Least privilege: the role has what grantRoles gives, nothing more.
    await expect(s.client.query('CREATE TABLE mine (x int)')).rejects.toThrow(/permission denied/);
  });

  it('the connection is an audited Decision attributed to the pod', async () => {
    const entry = await eventually('the Allow entry for orders in an AuditRecord', async () =>
      (await stack.auditRecords())
        .flatMap((r) => r.spec.entries)
        .find((e) => e.kind === 'Decision' && e.target === 'orders' && e.decision === 'Allow'),
    );
    expect(entry.pod).toBe(`${stack.agent}-0`);
    expect(entry.user).toBe('agent acting alone');
    // The broker's attestation shows in the AgentIdentity's status too.
    const attested = await eventually(
      'status.lastAttestation',
      async () => (await stack.getAgent()).status?.lastAttestation,
    );
    expect(attested.pod).toBe(`${stack.agent}-0`);
    expect(attested.podUID).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a provider no policy allows is refused with the reason, and the database never sees a login', async () => {
    const before = issued.length;
    const err = await connectAgent('payroll').then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('28000');
    expect(err?.message).toMatch(/Warden denied this connection to 'payroll'/);
    expect(issued.length).toBe(before);

    const unknown = await connectAgent('nope').then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(unknown?.message).toMatch(/no CredentialProvider 'nope'/);
  });

  it('request metadata travels as a connection option (PGOPTIONS) and is decided like the HTTP header', async () => {
    const without = await connectAgent('reports').then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(without?.message).toMatch(/condition 'change-ticket'/);

    const s = await connectAgent('reports', '-c warden.context={"ticketId":"CHG-881"}');
    const r = await s.client.query<{ n: string }>('SELECT count(*) AS n FROM orders');
    expect(r.rows[0]!.n).toBe('3');
    const entry = await eventually('the Allow entry for reports', async () =>
      (await stack.auditRecords())
        .flatMap((rec) => rec.spec.entries)
        .find((e) => e.target === 'reports' && e.decision === 'Allow' && e.kind === 'Decision'),
    );
    expect(entry.policy).toBe(`${ns}/orders-db`);

    const bad = await connectAgent('reports', '-c warden.context={ticket}').then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(bad?.message).toMatch(/warden\.context: not valid JSON/);
  });

  describe("PostgreSQL clients' habits (#19 item 6)", () => {
    /** Real psql against the broker's endpoint; resolves with the exit code and output. */
    const psql = async (conninfo: string, env: Record<string, string> = {}) => {
      try {
        const r = await run(
          'psql',
          [conninfo, '-XAtc', "SELECT current_user || ' ' || current_setting('search_path')"],
          {
            env: {
              PATH: process.env.PATH ?? '',
              PGCONNECT_TIMEOUT: '10',
              PGPASSFILE: '/nonexistent/warden-test-pgpass',
              ...env,
            },
          },
        );
        return { code: 0, stdout: r.stdout.trim(), stderr: r.stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    };

    it('psql with sslmode=require and PGOPTIONS search_path gets an encrypted session with that path', async () => {
      const r = await psql(
        `host=127.0.0.1 port=${stack.broker.ports.pg!} user=agent dbname=orders sslmode=require`,
        {
          PGOPTIONS: '-c search_path=audit,public',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^w_\S+ audit,public$/);
    });

    it('psql without a database name is told that the database name is the provider name', async () => {
      const r = await psql(`host=127.0.0.1 port=${stack.broker.ports.pg!} user=agent`);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("no CredentialProvider 'agent'");
      expect(r.stderr).toContain(
        `the database name is the CredentialProvider's name, and none was given (psql and libpq then use the user name 'agent'): connect with psql "$WARDEN_PG_BASE/<provider>" or -d <provider>`,
      );
    });

    it('a setting the broker does not forward is refused naming it (0A000), and audited', async () => {
      const err = await connectAgent('orders', '-c work_mem=1GB').then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('0A000');
      expect(err?.message).toMatch(/connection option -c 'work_mem' is not forwarded by the Warden broker/);
      await eventually('the refusal in the audit trail', async () =>
        (await stack.auditRecords())
          .flatMap((r) => r.spec.entries)
          .find((e) => e.decision === 'Deny' && e.target === 'orders' && e.message?.includes("'work_mem'")),
      );
    });

    it('an unreachable database is class 08 (clients retry), not 28000, and says so', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const create = (plural: string, kind: string, name: string, spec: unknown) =>
        stack.api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${plural}`, {
          body: { apiVersion: API_VERSION, kind, metadata: { name }, spec },
        });
      await create(
        PLURAL.CredentialProvider,
        'CredentialProvider',
        'gone',
        postgresProviderSpec({ port }, { grantRoles: ['orders_read'], roleTTL: ROLE_TTL }),
      );
      await create(PLURAL.AccessPolicy, 'AccessPolicy', 'gone-db', {
        agentSelector: { names: [stack.agent] },
        rules: [{ targets: ['gone'] }],
      });
      await eventually('the broker to know the provider gone', async () =>
        stack.broker.broker.decider.gate('gone', 'PostgreSQL').ok ? true : undefined,
      );
      const err = await eventually('an allowed session the database cannot take', async () => {
        const e = await connectAgent('gone').then(
          () => null,
          (x: unknown) => x as Error & { code?: string },
        );
        // Until the policy reaches the broker the session is denied (28000): wait for the allow.
        return e && e.code !== '28000' ? e : undefined;
      });
      expect(err.code).toBe('08006');
      expect(err.message).toMatch(/Warden could not open the session to 'gone' now \(retry\)/);
      expect(err.message).toContain(`database 127.0.0.1:${port}/postgres is unreachable`);
    });
  });

  it('the role disappears after its TTL: the operator drops it and ends its session', async () => {
    // The first test logged in as firstRole, so it existed; it may already be gone here
    // (its 4 s TTL runs while the tests in between take their time on a busy machine).
    await eventually(
      `role ${firstRole} to be dropped`,
      async () => !(await roleExists(firstRole)),
      30_000,
      200,
    );
    const first = sessions[0]!;
    await eventually(
      'the expired role’s session to be ended',
      async () => first.ended || first.errors.length > 0,
    );
    // A new connection gets a fresh role (nothing reuses the dropped one).
    const s = await connectAgent('orders');
    const r = await s.client.query<{ who: string }>('SELECT current_user AS who');
    expect(r.rows[0]!.who).toMatch(/^w_/);
    expect(r.rows[0]!.who).not.toBe(firstRole);
  });

  it('the kill switch ends open sessions and refuses new ones', async () => {
    const open = await connectAgent('orders');
    await open.client.query('SELECT 1');
    await stack.patchAgent({ suspended: true, suspendReason: 'e2e: db exfiltration suspected' });
    await eventually(
      'the open session to be ended',
      async () => open.ended || open.errors.length > 0,
      15_000,
    );
    const refused = await connectAgent('orders').then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(refused?.message).toMatch(/suspended/);
    await stack.patchAgent({ suspended: false });
  });

  it('sessions are counted in the broker metrics, as decisions and as set-up durations', async () => {
    const text = await stack.broker.metrics.registry.metrics();
    /** Sum of the samples of `name` whose labels include every pair in `labels`. */
    const value = (name: string, labels: Record<string, string>) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`))
        .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const sessions = 'warden_broker_request_duration_seconds_count';
    expect(value(sessions, { kind: 'postgresql', decision: 'allow' })).toBeGreaterThanOrEqual(3);
    expect(value(sessions, { kind: 'postgresql', decision: 'deny' })).toBeGreaterThanOrEqual(2);
    expect(
      value('warden_decisions_total', { component: 'broker', decision: 'deny', reason: 'AgentSuspended' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('the agent never received a credential', () => {
    const passwords = issued.map((c) => c.postgresql?.password).filter((p): p is string => !!p);
    expect(passwords.length).toBeGreaterThanOrEqual(2);
    const all = Buffer.concat(sessions.flatMap((s) => s.received));
    expect(all.length).toBeGreaterThan(0);
    for (const secret of [...passwords, ADMIN_PASSWORD, pgServer.password]) {
      expect(all.includes(Buffer.from(secret))).toBe(false);
    }
    // Nor the SCRAM exchange: the agent was never asked to authenticate (AuthenticationOk only).
    expect(all.includes(Buffer.from('SCRAM-SHA-256'))).toBe(false);
  });
});
