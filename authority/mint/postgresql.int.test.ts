/**
 * PostgreSQL minter against a real PostgreSQL (Debian binaries, started by e2e/harness/postgres),
 * with a least-privilege admin role (CREATEROLE, ADMIN OPTION on the granted role,
 * pg_signal_backend) — the setup docs/adr/0008-credentials.md asks operators for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, postgresProviderSpec, startPostgres } from '../../e2e/harness/postgres.js';
import { agentRolePrefix, PostgresMinter } from './postgresql.js';
import { agent, policy, provider, request, secrets, user } from './testing.js';
import type { MintProvider, PostgresCredential } from './types.js';

const ADMIN_PASSWORD = 'admin-password-from-a-secret';
const WEIRD_ROLE = 'we"ird; DROP ROLE postgres; --';

describe('PostgresMinter against a real PostgreSQL', () => {
  let server: PostgresServer;
  let superuser: pg.Client;
  let store: ReturnType<typeof secrets>;
  const minter = new PostgresMinter();

  beforeAll(async () => {
    server = await startPostgres();
    superuser = new pg.Client({ connectionString: server.connectionString });
    await superuser.connect();
    for (const sql of [
      'CREATE TABLE tickets (id int PRIMARY KEY, title text)',
      "INSERT INTO tickets VALUES (1, 'printer on fire')",
      'CREATE ROLE app_read NOLOGIN',
      'GRANT SELECT ON tickets TO app_read',
      `CREATE ROLE ${pg.escapeIdentifier(WEIRD_ROLE)} NOLOGIN`,
      `CREATE ROLE warden_admin LOGIN CREATEROLE PASSWORD ${pg.escapeLiteral(ADMIN_PASSWORD)}`,
      `GRANT app_read, ${pg.escapeIdentifier(WEIRD_ROLE)} TO warden_admin WITH ADMIN OPTION`,
      'GRANT pg_signal_backend TO warden_admin',
      // Log every statement, to prove the password never reaches the server in clear.
      "ALTER SYSTEM SET log_statement = 'all'",
      'SELECT pg_reload_conf()',
    ])
      await superuser.query(sql);
    store = secrets({
      'agents/pg-admin': { username: 'warden_admin', password: ADMIN_PASSWORD, bad: 'wrong-admin-pw' },
    });
  });

  afterAll(async () => {
    await minter.close();
    await superuser?.end();
    await server?.stop();
  });

  const pgProvider = (over: Partial<NonNullable<MintProvider['spec']['postgresql']>> = {}) => {
    const spec = postgresProviderSpec(server, { grantRoles: ['app_read'] });
    return provider({ ...spec, postgresql: { ...spec.postgresql!, ...over } }, 'tickets-db');
  };

  const login = async (c: PostgresCredential) => {
    const client = new pg.Client({ ...c.value });
    client.on('error', () => {});
    await client.connect();
    return client;
  };

  const roleRow = async (name: string) =>
    (
      await superuser.query<{ rolcanlogin: boolean; rolvaliduntil: Date | null; comment: string }>(
        "SELECT rolcanlogin, rolvaliduntil, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1",
        [name],
      )
    ).rows[0];

  it('creates a temporary role that can read what the granted role can, and nothing more', async () => {
    const { credential } = await minter.mint(
      request({ provider: pgProvider(), secrets: store, policy: policy({ ttl: '5m' }) }),
    );
    const c = credential as PostgresCredential;
    expect(c.value).toMatchObject({ host: '127.0.0.1', port: server.port, database: 'postgres', user: c.id });
    expect(c.id.startsWith(agentRolePrefix(agent()))).toBe(true);
    const db = await login(c);
    try {
      expect((await db.query('SELECT title FROM tickets')).rows).toEqual([{ title: 'printer on fire' }]);
      await expect(db.query("INSERT INTO tickets VALUES (2, 'x')")).rejects.toMatchObject({ code: '42501' });
    } finally {
      await db.end();
    }
    const row = await roleRow(c.id);
    expect(row?.rolcanlogin).toBe(true);
    // VALID UNTIL is the TTL on the database's clock (same machine here: within the round trip).
    expect(Math.abs((row?.rolvaliduntil?.getTime() ?? 0) - c.expiresAt.getTime())).toBeLessThan(5_000);
    expect(JSON.parse(row?.comment ?? '{}')).toMatchObject({
      managedBy: 'warden',
      agent: 'agents/support-bot',
      user: 'alice',
      policy: 'agents/support',
    });
  });

  it('never sends the password to the server in clear (statement log)', async () => {
    const { credential } = await minter.mint(request({ provider: pgProvider(), secrets: store }));
    const c = credential as PostgresCredential;
    await superuser.query('SELECT 1'); // let the logger flush the CREATE ROLE line
    const log = readFileSync(join(server.dir, 'postgres.log'), 'utf8');
    expect(log).toContain(`CREATE ROLE "${c.id}"`);
    expect(log).toContain('SCRAM-SHA-256$4096:');
    expect(log).not.toContain(c.value.password);
  });

  it('gives distinct roles to distinct users and to repeated mints, sharing the agent prefix', async () => {
    const a = (await minter.mint(request({ provider: pgProvider(), secrets: store }))).credential.id;
    const b = (await minter.mint(request({ provider: pgProvider(), secrets: store }))).credential.id;
    const bob = (
      await minter.mint(request({ provider: pgProvider(), secrets: store, user: user({ sub: 'bob' }) }))
    ).credential.id;
    expect(new Set([a, b, bob]).size).toBe(3);
    expect(a.slice(0, -6)).toBe(b.slice(0, -6)); // same (agent, user, policy): only the suffix differs
    expect(a.slice(0, -6)).not.toBe(bob.slice(0, -6));
    for (const id of [a, b, bob]) expect(Buffer.byteLength(id)).toBeLessThanOrEqual(63);
  });

  it('grants roles whose names need quoting, safely', async () => {
    const { credential } = await minter.mint(
      request({ provider: pgProvider({ grantRoles: [WEIRD_ROLE] }), secrets: store }),
    );
    const { rows } = await superuser.query<{ member: boolean }>(
      "SELECT pg_has_role($1, $2, 'MEMBER') AS member",
      [credential.id, WEIRD_ROLE],
    );
    expect(rows[0]?.member).toBe(true);
    expect((await superuser.query("SELECT 1 FROM pg_roles WHERE rolname = 'postgres'")).rowCount).toBe(1);
  });

  it('revoke ends the live session and refuses new logins', async () => {
    const { credential, revoke } = await minter.mint(request({ provider: pgProvider(), secrets: store }));
    const c = credential as PostgresCredential;
    const db = await login(c);
    await revoke?.();
    // Depending on whether pg saw the server's termination before this query, it reports the
    // termination itself or that the (now dead) client is no longer queryable: both mean ended.
    await expect(db.query('SELECT 1')).rejects.toThrow(/terminat|connection error and is not queryable/i);
    await db.end().catch(() => {});
    await expect(login(c)).rejects.toMatchObject({ code: '28000' });
    expect((await roleRow(c.id))?.rolcanlogin).toBe(false);
  });

  it('after VALID UNTIL the role cannot log in, and the sweep drops it', async () => {
    const { credential } = await minter.mint(
      request({ provider: pgProvider(), secrets: store, policy: policy({ ttl: '1s' }) }),
    );
    const c = credential as PostgresCredential;
    await new Promise((r) => setTimeout(r, Math.max(0, c.expiresAt.getTime() - Date.now()) + 200));
    await expect(login(c)).rejects.toMatchObject({ code: '28P01' });
    const swept = await minter.sweepExpired(pgProvider(), store);
    expect(swept.dropped).toContain(c.id);
    expect(swept.failed).toEqual([]);
    expect(await roleRow(c.id)).toBeUndefined();
  });

  it('the sweep leaves live roles and roles Warden did not create alone', async () => {
    await superuser.query("CREATE ROLE w_not_ours LOGIN VALID UNTIL '2000-01-01'");
    const { credential } = await minter.mint(request({ provider: pgProvider(), secrets: store }));
    const swept = await minter.sweepExpired(pgProvider(), store);
    expect(swept.dropped).not.toContain('w_not_ours');
    expect(swept.dropped).not.toContain(credential.id);
    expect(await roleRow('w_not_ours')).toBeDefined();
    expect(await roleRow(credential.id)).toBeDefined();
  });

  it('the sweep keeps a revoked role until VALID UNTIL, so revoking the agent again counts it again', async () => {
    const agent = { namespace: 'agents', name: 'swept-bot' };
    const { credential } = await minter.mint(
      request({ provider: pgProvider(), secrets: store, agent: { ...agent, labels: {} } }),
    );
    expect(await minter.revokeAgent(pgProvider(), store, agent)).toEqual([credential.id]);
    const swept = await minter.sweepExpired(pgProvider(), store);
    expect(swept.dropped).not.toContain(credential.id);
    expect((await roleRow(credential.id))?.rolcanlogin).toBe(false);
    // What a replica taking over mid-revocation does: the same role, counted once more, not lost.
    expect(await minter.revokeAgent(pgProvider(), store, agent)).toEqual([credential.id]);
  });

  it('revokeAgent (kill switch) revokes every role of that agent and no other', async () => {
    const mine = (
      await minter.mint(
        request({ provider: pgProvider(), secrets: store, agent: agent({ name: 'rogue-bot' }) }),
      )
    ).credential.id;
    const other = (await minter.mint(request({ provider: pgProvider(), secrets: store }))).credential.id;
    const revoked = await minter.revokeAgent(pgProvider(), store, { namespace: 'agents', name: 'rogue-bot' });
    expect(revoked).toEqual([mine]);
    expect((await roleRow(mine))?.rolcanlogin).toBe(false);
    expect((await roleRow(other))?.rolcanlogin).toBe(true);
  });

  it('a wrong admin password is reported without any password in the message', async () => {
    const err = await minter
      .mint(
        request({
          provider: pgProvider({ adminSecretRef: { name: 'pg-admin', passwordKey: 'bad' } }),
          secrets: store,
        }),
      )
      .catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'MintError', reason: 'UpstreamRejected' });
    expect(String(err)).toMatch(/admin connection to 127\.0\.0\.1:\d+\/postgres as 'warden_admin' failed/);
    expect(String(err)).not.toContain('wrong-admin-pw');
  });

  it('honours the admin Secret on every mint, even with pooled connections', async () => {
    const rotating = new PostgresMinter();
    try {
      await superuser.query("CREATE ROLE warden_admin2 LOGIN CREATEROLE PASSWORD 'first-password'");
      await superuser.query('GRANT app_read TO warden_admin2 WITH ADMIN OPTION');
      const data = { username: 'warden_admin2', password: 'first-password' };
      const rotatingStore = secrets({ 'agents/pg-admin': data });
      await rotating.mint(request({ provider: pgProvider(), secrets: rotatingStore }));
      // A pooled connection logged in with the old password exists; a wrong Secret must still fail.
      data.password = 'not-the-password';
      await expect(
        rotating.mint(request({ provider: pgProvider(), secrets: rotatingStore })),
      ).rejects.toMatchObject({
        reason: 'UpstreamRejected',
      });
      await superuser.query("ALTER ROLE warden_admin2 PASSWORD 'second-password'");
      data.password = 'second-password';
      const { credential } = await rotating.mint(request({ provider: pgProvider(), secrets: rotatingStore }));
      expect((await roleRow(credential.id))?.rolcanlogin).toBe(true);
    } finally {
      await rotating.close();
    }
  });

  it('a grant of a role that does not exist fails and leaves no role behind', async () => {
    const before = (
      await superuser.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'w\\_%'")
    ).rows[0].n;
    await expect(
      minter.mint(request({ provider: pgProvider({ grantRoles: ['no_such_role'] }), secrets: store })),
    ).rejects.toThrow(/creating role w_\S+ failed: role "no_such_role" does not exist \(SQLSTATE 42704\)/);
    const after = (
      await superuser.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'w\\_%'")
    ).rows[0].n;
    expect(after).toBe(before);
  });
});
