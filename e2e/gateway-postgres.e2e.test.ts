/**
 * The shared gateway's PostgreSQL endpoint through the real chain (e2e/gateway-fixture.ts with
 * `postgres: true`): a real PostgreSQL, two agents without a sidecar, and real clients (the `pg`
 * package, and psql with sslmode=verify-full) that send the agent's projected token (audience
 * warden.dev/gateway) as the password over TLS. Each session is decided, credentialed (a temporary
 * role), audited in the caller's own trail and killable exactly as through a sidecar; a caller
 * that is not an agent, or not on TLS, never reaches a decision.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../core/api/index.js';
import { API_VERSION, DEFAULT_BROKER_AUDIENCE, GATEWAY_AUDIENCE, PLURAL } from '../core/constants.js';
import { KubeConfigApi } from '../kube/kube.js';
import { eventually } from './eventually.js';
import { type GatewayStack, startGatewayStack } from './gateway-fixture.js';
import { freshNamespace, kubeConfig } from './harness/index.js';
import {
  createWardenAdmin,
  type PostgresServer,
  postgresProviderSpec,
  startPostgres,
} from './harness/postgres.js';

const run = promisify(execFile);
const ADMIN_PASSWORD = 'e2e-admin-password-gateway-pg';

let s: GatewayStack;
let pgServer: PostgresServer;
let superuser: pg.Client;
let botToken: string;
let dir: string;
const clients: pg.Client[] = [];

type PgError = Error & { code?: string };

async function connect(o: {
  token?: string;
  database?: string;
  replica?: number;
  ssl?: boolean;
}): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: s.pgPorts[o.replica ?? 0]!,
    database: o.database ?? 'orders',
    user: 'agent',
    application_name: 'gateway-e2e',
    ...(o.token !== undefined ? { password: o.token } : {}),
    ssl: o.ssl === false ? false : { ca: s.ca },
  });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

const refusal = (p: Promise<unknown>): Promise<PgError | null> =>
  p.then(
    () => null,
    (e: unknown) => e as PgError,
  );

async function entries(agent: string) {
  const api = new KubeConfigApi(kubeConfig());
  const list = await api.request<{ items: AuditRecord[] }>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${s.namespace}/${PLURAL.AuditRecord}`,
  );
  return list.items.filter((r) => r.spec.agent === agent).flatMap((r) => r.spec.entries);
}

beforeAll(async () => {
  const ns = await freshNamespace('gateway-pg');
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
  s = await startGatewayStack({ kubeConfig: kc, namespace: ns, postgres: true, otherAgents: ['other'] });
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: 'pg-admin' },
      stringData: { username: 'warden_admin', password: ADMIN_PASSWORD },
    },
  });
  const api = new KubeConfigApi(kc);
  const create = (plural: string, kind: string, name: string, spec: unknown) =>
    api.request('POST', `/apis/${API_VERSION}/namespaces/${ns}/${plural}`, {
      body: { apiVersion: API_VERSION, kind, metadata: { name }, spec },
    });
  await create(
    PLURAL.CredentialProvider,
    'CredentialProvider',
    'orders',
    postgresProviderSpec(pgServer, { grantRoles: ['orders_read'], roleTTL: '10m' }),
  );
  // A rule with neither tools nor http applies to every request to its targets: connections.
  await create(PLURAL.AccessPolicy, 'AccessPolicy', 'orders-db', {
    agentSelector: { names: [s.agent] },
    rules: [{ targets: ['orders'] }],
  });
  botToken = await s.token(GATEWAY_AUDIENCE);
  dir = mkdtempSync(join(tmpdir(), 'warden-gateway-pg-'));
  writeFileSync(join(dir, 'ca.pem'), s.ca);
  // The policy reaches the agent's broker on the gateway once it is served: retry until allowed.
  await eventually(
    'the orders policy to allow the agent through the gateway',
    async () => {
      const c = await connect({ token: botToken }).catch(() => null);
      if (!c) return undefined;
      await c.end();
      return true;
    },
    60_000,
  );
}, 180_000);

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await s?.stop();
  await superuser?.end();
  await pgServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('PostgreSQL through the shared gateway', () => {
  it('the agent’s token as the password over TLS opens a session as a temporary role, on either replica', async () => {
    for (const replica of [0, 1]) {
      const c = await connect({ token: botToken, replica });
      const r = await c.query<{ who: string; n: string }>(
        'SELECT current_user AS who, (SELECT count(*) FROM orders) AS n',
      );
      expect(r.rows[0]!.who).toMatch(/^w_/);
      expect(r.rows[0]!.n).toBe('3');
      await expect(c.query('CREATE TABLE mine (x int)')).rejects.toThrow(/permission denied/);
      await c.end();
    }
  });

  it('the session is an audited Allow in the agent’s trail, with its pod', async () => {
    const entry = await eventually(
      'the Allow entry for orders',
      async () =>
        (await entries(s.agent)).find(
          (e) => e.kind === 'Decision' && e.target === 'orders' && e.decision === 'Allow',
        ),
      30_000,
    );
    expect(entry.pod).toBe(s.pod.metadata?.name);
  });

  it('psql with sslmode=verify-full and PGPASSWORD works unchanged', async () => {
    const r = await run(
      'psql',
      [
        `host=127.0.0.1 port=${s.pgPorts[1]} user=agent dbname=orders sslmode=verify-full sslrootcert=${join(dir, 'ca.pem')}`,
        '-XAtc',
        'SELECT count(*) FROM orders',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          PGCONNECT_TIMEOUT: '10',
          PGPASSFILE: '/nonexistent/warden-test-pgpass',
          PGPASSWORD: botToken,
        },
      },
    );
    expect(r.stdout.trim()).toBe('3');
  });

  it('another agent’s token authenticates that agent, whom no policy allows: refused and audited in its trail', async () => {
    const other = await s.tokenOf('other', GATEWAY_AUDIENCE);
    const err = await refusal(connect({ token: other }));
    expect(err?.code).toBe('28000');
    expect(err?.message).toMatch(/Warden denied this connection to 'orders'/);
    await eventually(
      'the Deny entry in the other agent’s trail',
      async () =>
        (await entries('other')).find(
          (e) => e.kind === 'Decision' && e.target === 'orders' && e.decision === 'Deny',
        ),
      30_000,
    );
  });

  it.each([
    ['a password that is not a token', async () => 'hunter2', /password: the token is not a JWT/],
    [
      'a token for the sidecar audience',
      () => s.token(DEFAULT_BROKER_AUDIENCE),
      /not accepted: .*audience must include "warden.dev\/gateway"/,
    ],
    [
      'a forged token',
      async () => `${botToken.slice(0, -8)}AAAAAAAA`,
      /not accepted: .*rejected by the Kubernetes API server/,
    ],
  ])('refuses %s with 28P01 saying why, before any decision', async (_name, make, message) => {
    const err = await refusal(connect({ token: await make() }));
    expect(err?.code).toBe('28P01');
    expect(err?.message).toMatch(message);
  });

  it('refuses a session without TLS before asking for the token', async () => {
    const err = await refusal(connect({ token: botToken, ssl: false }));
    expect(err?.code).toBe('28000');
    expect(err?.message).toMatch(/accepts PostgreSQL sessions over TLS only/);
  });

  it('the kill switch ends the open session and refuses new ones; revive serves again', async () => {
    const open = await connect({ token: botToken });
    const ended = new Promise<void>((resolve) => open.once('end', () => resolve()));
    await s.patchAgent({ suspended: true, suspendReason: 'gateway pg e2e' });
    try {
      await ended;
      const err = await eventually(
        'a new session to be refused as suspended',
        async () => {
          const e = await refusal(connect({ token: botToken, replica: 1 }));
          return e?.message.includes('is suspended') ? e : undefined;
        },
        30_000,
      );
      expect(err.code).toBe('28000');
      await eventually(
        'the suspended refusal in the agent’s trail',
        async () =>
          (await entries(s.agent)).find(
            (e) => e.target === 'orders' && e.decision === 'Deny' && e.message?.includes('is suspended'),
          ),
        30_000,
      );
    } finally {
      await s.patchAgent({ suspended: false, suspendReason: null });
    }
    await eventually(
      'the revived agent to be served',
      async () => {
        const c = await connect({ token: botToken }).catch(() => null);
        if (!c) return undefined;
        await c.end();
        return true;
      },
      30_000,
    );
  });
});
