/**
 * The broker's PostgreSQL endpoint end to end: the real `pg` client plays the agent (no password),
 * the real PostgreSQL from e2e/harness/postgres is the upstream, and the authority's real
 * PostgresMinter issues the temporary roles.
 */
import { execFile } from 'node:child_process';
import { type AddressInfo, connect, createServer, type Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresMinter } from '../../authority/mint/postgresql.js';
import { policy, provider, request, secrets } from '../../authority/mint/testing.js';
import type { MintResult, PostgresCredential } from '../../authority/mint/types.js';
import {
  createWardenAdmin,
  type PostgresServer,
  postgresProviderSpec,
  startPostgres,
} from '../../e2e/harness/postgres.js';
import {
  type PgClientInfo,
  type PgDecision,
  type PgEndpoint,
  type PgSessionEvent,
  startPgEndpoint,
} from './endpoint.js';
import { generateLoopbackTls } from './loopback-tls.js';
import { sessionSettings } from './options.js';
import { sslRequest, startupMessage } from './protocol.js';

const run = promisify(execFile);

async function eventuallyTrue(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ADMIN_PASSWORD = 'endpoint-test-admin-password';

describe('broker PostgreSQL endpoint', () => {
  let server: PostgresServer;
  let superuser: pg.Client;
  const minter = new PostgresMinter();
  const store = secrets({ 'agents/pg-admin': { username: 'warden_admin', password: ADMIN_PASSWORD } });
  let endpoint: PgEndpoint;
  /** What the injected callbacks do in the current test. */
  const allowAll = async (): Promise<PgDecision> => ({ allow: true });
  let decide: (info: PgClientInfo) => Promise<PgDecision> = allowAll;
  let ttl = '5m';
  const minted: MintResult[] = [];
  const events: PgSessionEvent[] = [];
  const seen: PgClientInfo[] = [];

  const pgProvider = () => provider(postgresProviderSpec(server, { grantRoles: ['app_read'] }), 'tickets-db');

  beforeAll(async () => {
    server = await startPostgres();
    superuser = new pg.Client({ connectionString: server.connectionString });
    await superuser.connect();
    await createWardenAdmin(superuser, { password: ADMIN_PASSWORD, grantRoles: ['app_read'] });
    for (const sql of [
      'CREATE TABLE tickets (id int PRIMARY KEY, title text)',
      "INSERT INTO tickets VALUES (1, 'printer on fire'), (2, 'coffee machine empty')",
      'GRANT SELECT ON tickets TO app_read',
    ])
      await superuser.query(sql);
    endpoint = await startPgEndpoint({
      target: 'tickets-db',
      decide: (info) => {
        seen.push(info);
        return decide(info);
      },
      getCredential: async () => {
        const result = await minter.mint(
          request({ provider: pgProvider(), secrets: store, policy: policy({ ttl }) }),
        );
        minted.push(result);
        return (result.credential as PostgresCredential).value;
      },
      onEvent: (e) => events.push(e),
    });
  });

  afterEach(() => {
    decide = allowAll;
    ttl = '5m';
  });

  afterAll(async () => {
    await endpoint?.close();
    await minter.close();
    await superuser?.end();
    await server?.stop();
  });

  /** The agent: a pg client without password whose every received byte is recorded. */
  async function agentClient(user = 'agent'): Promise<{ client: pg.Client; received: Buffer[] }> {
    const received: Buffer[] = [];
    const socket = new Socket();
    socket.on('data', (d: Buffer) => received.push(d));
    const client = new pg.Client({
      host: '127.0.0.1',
      port: endpoint.port,
      user,
      database: 'whatever',
      stream: () => socket,
    });
    client.on('error', () => {});
    await client.connect();
    return { client, received };
  }

  const lastCredential = () => minted.at(-1)?.credential as PostgresCredential;

  it('listens on loopback only', () => {
    expect(endpoint.host).toBe('127.0.0.1');
  });

  it('relays a session as a temporary role; the agent never receives the password', async () => {
    const { client, received } = await agentClient('my-agent');
    try {
      const who = await client.query<{ u: string }>('SELECT current_user AS u');
      const cred = lastCredential();
      expect(who.rows[0]?.u).toBe(cred.value.user);
      expect(who.rows[0]?.u).toMatch(/^w_support_bot_/);
      // Simple and extended protocol, several round trips.
      expect((await client.query('SELECT title FROM tickets ORDER BY id')).rows).toEqual([
        { title: 'printer on fire' },
        { title: 'coffee machine empty' },
      ]);
      expect((await client.query<{ n: number }>('SELECT $1::int + 1 AS n', [41])).rows[0]?.n).toBe(42);
      await expect(client.query("INSERT INTO tickets VALUES (3, 'x')")).rejects.toMatchObject({
        code: '42501',
      });
      const all = Buffer.concat(received);
      expect(all.includes(Buffer.from(cred.value.password))).toBe(false);
      expect(all.toString('latin1')).not.toContain('SCRAM');
    } finally {
      await client.end();
    }
    expect(seen.at(-1)).toMatchObject({ target: 'tickets-db', user: 'my-agent', database: 'whatever' });
    expect(events.map((e) => e.type)).toContain('opened');
  });

  it('denial gives the agent a readable 28000 error and no upstream session', async () => {
    decide = async () => ({
      allow: false,
      message: "AccessPolicy agents/db-readers rule 0 condition 'business-hours' is false",
    });
    const before = minted.length;
    const err = await agentClient().catch((e: Error) => e);
    expect(err).toMatchObject({ code: '28000' });
    expect(String((err as Error).message)).toBe(
      "Warden denied this connection to 'tickets-db': AccessPolicy agents/db-readers rule 0 condition 'business-hours' is false",
    );
    expect(minted.length).toBe(before);
    expect(events.at(-1)).toMatchObject({ type: 'denied' });
  });

  it('a policy callback that throws denies (fail closed)', async () => {
    decide = async () => {
      throw new Error('policy snapshot missing');
    };
    await expect(agentClient()).rejects.toMatchObject({
      code: '28000',
      message: /policy could not be evaluated: policy snapshot missing/,
    });
  });

  it('revoking the credential terminates the agent’s session', async () => {
    const { client } = await agentClient();
    await client.query('SELECT 1');
    const error = new Promise<Error & { code?: string }>((resolve) => client.once('error', resolve));
    await minted.at(-1)?.revoke?.();
    // The upstream's FATAL 57P01 is relayed to the agent before the connection closes.
    expect(await error).toMatchObject({
      code: '57P01',
      message: /terminating connection due to administrator command/,
    });
    await expect(client.query('SELECT 1')).rejects.toThrow(/not queryable/);
    await client.end().catch(() => {});
  });

  it('after its TTL the role is swept: the session ends and the role disappears', async () => {
    ttl = '1s';
    const { client } = await agentClient();
    await client.query('SELECT 1');
    const cred = lastCredential();
    await new Promise((r) => setTimeout(r, Math.max(0, cred.expiresAt.getTime() - Date.now()) + 200));
    const error = new Promise<Error & { code?: string }>((resolve) => client.once('error', resolve));
    const swept = await minter.sweepExpired(pgProvider(), store);
    expect(swept.dropped).toContain(cred.value.user);
    expect(await error).toMatchObject({ code: '57P01' });
    await client.end().catch(() => {});
    const { rowCount } = await superuser.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
      cred.value.user,
    ]);
    expect(rowCount).toBe(0);
  });

  it('forwards a cancel request for a session it relays', async () => {
    const { client } = await agentClient();
    const sleeping = client.query('SELECT pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 300));
    const internals = client as unknown as { processID: number; secretKey: number };
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    cancel.writeInt32BE(internals.processID, 8);
    cancel.writeInt32BE(internals.secretKey, 12);
    const s = connect(endpoint.port, '127.0.0.1', () => s.end(cancel));
    await expect(sleeping).rejects.toMatchObject({ code: '57014' });
    await client.end();
  });

  it('relays a query the agent pipelined right behind its startup packet', async () => {
    const sql = Buffer.from('SELECT 42 AS answer\0');
    const query = Buffer.alloc(5);
    query.write('Q', 0);
    query.writeInt32BE(4 + sql.length, 1);
    const s = connect(endpoint.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'x' }), query, sql]));
    // Two ReadyForQuery: one after start-up, one after the query.
    await eventuallyTrue(() => Buffer.concat(chunks).toString('latin1').split('Z\0\0\0\x05I').length >= 3);
    s.destroy();
    const all = Buffer.concat(chunks);
    expect(all.subarray(0, 9)).toEqual(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0])); // AuthenticationOk first
    expect(all.toString('latin1')).toContain('answer');
    expect(all.toString('latin1')).toContain('SELECT 1'); // CommandComplete tag
  });

  describe('TLS on the loopback endpoint', () => {
    const tlsSession = async (ssl: pg.ClientConfig['ssl'], port = endpoint.port, host = '127.0.0.1') => {
      const client = new pg.Client({ host, port, user: 'agent', database: 'whatever', ssl });
      client.on('error', () => {});
      await client.connect();
      return client;
    };

    it('sslmode=require (encrypt, no verification) works with the generated certificate', async () => {
      const client = await tlsSession({ rejectUnauthorized: false });
      try {
        // biome-ignore lint/suspicious/noExplicitAny: pg's Connection.stream is not in its typings.
        const stream = (client as any).connection.stream as TLSSocket;
        expect(stream.encrypted).toBe(true);
        expect(['TLSv1.2', 'TLSv1.3']).toContain(stream.getProtocol());
        const who = await client.query<{ u: string }>('SELECT current_user AS u');
        expect(who.rows[0]?.u).toMatch(/^w_support_bot_/);
      } finally {
        await client.end();
      }
    });

    it('psql with sslmode=require gets an encrypted session (real psql)', async () => {
      const { stdout } = await run(
        'psql',
        [
          `host=127.0.0.1 port=${endpoint.port} user=agent dbname=whatever sslmode=require`,
          '-XAtc',
          'SELECT current_user',
        ],
        {
          env: {
            PATH: process.env.PATH ?? '',
            PGCONNECT_TIMEOUT: '10',
            PGPASSFILE: '/nonexistent/warden-test-pgpass',
          },
        },
      );
      expect(stdout.trim()).toMatch(/^w_support_bot_/);
    });

    it('the generated certificate verifies against no CA the agent has (verify-full needs a given one)', async () => {
      const other = await generateLoopbackTls();
      await expect(tlsSession({ ca: other.caPem })).rejects.toThrow(/certificate/);
    });

    it('sslmode=verify-full works with a certificate the endpoint is given and the agent trusts', async () => {
      const given = await generateLoopbackTls();
      const verified = await startPgEndpoint({
        target: 'tickets-db',
        tls: { certPem: given.certPem, keyPem: given.keyPem },
        decide: async () => ({ allow: true }),
        getCredential: async () => {
          const result = await minter.mint(
            request({ provider: pgProvider(), secrets: store, policy: policy({}) }),
          );
          return (result.credential as PostgresCredential).value;
        },
      });
      try {
        for (const host of ['127.0.0.1', 'localhost']) {
          const client = await tlsSession({ ca: given.caPem }, verified.port, host);
          expect((await client.query<{ n: number }>('SELECT 1 AS n')).rows[0]?.n).toBe(1);
          await client.end();
        }
      } finally {
        await verified.close();
      }
    });

    it('refuses bytes pipelined after the SSLRequest, before the handshake, without deciding', async () => {
      const before = seen.length;
      const s = connect(endpoint.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      const closed = new Promise((r) => s.once('close', r));
      s.write(Buffer.concat([sslRequest(), startupMessage({ user: 'agent', database: 'whatever' })]));
      await closed;
      expect(Buffer.concat(chunks).toString('latin1')).not.toContain('S');
      expect(seen.length).toBe(before);
    });

    it('answers GSSENCRequest with N (no GSSAPI encryption)', async () => {
      const s = connect(endpoint.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const answer = new Promise<Buffer>((resolve) => s.once('data', resolve));
      const gssenc = Buffer.alloc(8);
      gssenc.writeInt32BE(8, 0);
      gssenc.writeInt32BE(80877104, 4);
      s.write(gssenc);
      expect((await answer).toString()).toBe('N');
      s.destroy();
    });
  });

  describe('session settings', () => {
    it('forwards listed settings from PGOPTIONS and start-up parameters upstream', async () => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: endpoint.port,
        user: 'agent',
        database: 'whatever',
        application_name: 'settings-test',
        statement_timeout: 4321,
        options: '-c search_path=app,public -c TimeZone=Pacific/Auckland',
      });
      await client.connect();
      try {
        const r = await client.query<Record<string, string>>(
          "SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_setting('application_name') AS app, current_setting('statement_timeout') AS st",
        );
        expect(r.rows[0]).toEqual({
          sp: 'app,public',
          tz: 'Pacific/Auckland',
          app: 'settings-test',
          st: '4321ms',
        });
      } finally {
        await client.end();
      }
    });

    it('refuses a setting off the list with 0A000, naming it, and never contacts the database', async () => {
      decide = async (info) => {
        const s = sessionSettings(info.parameters);
        return s.ok ? { allow: true } : { allow: false, message: s.message, code: '0A000' };
      };
      const mintedBefore = minted.length;
      const client = new pg.Client({
        host: '127.0.0.1',
        port: endpoint.port,
        user: 'agent',
        database: 'whatever',
        options: '-c work_mem=1GB',
      });
      client.on('error', () => {});
      const err = (await client.connect().then(
        () => null,
        (e: unknown) => e,
      )) as (Error & { code?: string }) | null;
      expect(err?.code).toBe('0A000');
      expect(err?.message).toMatch(/connection option -c 'work_mem' is not forwarded by the Warden broker/);
      expect(minted.length).toBe(mintedBefore);
    });

    it('a refusal the decision marks as unavailability is class 08 and says to retry', async () => {
      decide = async () => ({ allow: false, message: 'the authority is unreachable', code: '08006' });
      const client = new pg.Client({ host: '127.0.0.1', port: endpoint.port, user: 'agent', database: 'x' });
      client.on('error', () => {});
      const err = (await client.connect().then(
        () => null,
        (e: unknown) => e,
      )) as (Error & { code?: string }) | null;
      expect(err?.code).toBe('08006');
      expect(err?.message).toMatch(/Warden could not open the session to 'tickets-db' now \(retry\)/);
    });
  });

  it.each([
    { name: 'a huge length', bytes: Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]) },
    { name: 'protocol 2.0', bytes: Buffer.from([0, 0, 0, 8, 0, 2, 0, 0]) },
    {
      name: 'a startup packet without terminator',
      bytes: Buffer.concat([Buffer.from([0, 0, 0, 12, 0, 3, 0, 0]), Buffer.from('user')]),
    },
  ])('rejects $name with a protocol error', async ({ bytes }) => {
    const s = connect(endpoint.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise((r) => s.once('close', r));
    s.write(bytes);
    await closed;
    const reply = Buffer.concat(chunks);
    expect(reply.subarray(0, 1).toString()).toBe('E');
    expect(reply.toString('latin1')).toContain('08P01');
  });

  // Issue 15 item 1: nothing the broker could read differently from the server gets through.
  it.each([
    {
      name: 'a repeated database',
      body: 'user\0agent\0database\0tickets-db\0database\0other\0\0',
      message: "startup parameter 'database' is sent twice",
    },
    {
      name: 'a repeated options (the Warden settings)',
      body: 'user\0agent\0options\0-c warden.context={"ticketId":"A"}\0options\0-c warden.context={"ticketId":"B"}\0\0',
      message: "startup parameter 'options' is sent twice",
    },
    {
      name: 'a setting repeated in another case',
      body: 'user\0agent\0TimeZone\0UTC\0timezone\0Europe/Paris\0\0',
      message: "startup parameter 'timezone' is sent twice",
    },
    {
      name: 'a Warden setting as a startup parameter',
      body: 'user\0agent\0warden.user_token\0eyJ.x.y\0\0',
      message: "startup parameter 'warden.user_token': send Warden settings as connection options",
    },
  ])('refuses $name before deciding, naming the parameter', async ({ body, message }) => {
    const before = seen.length;
    const mintedBefore = minted.length;
    const s = connect(endpoint.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise((r) => s.once('close', r));
    const bytes = Buffer.from(body);
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + bytes.length, 0);
    head.writeInt32BE(196608, 4);
    s.write(Buffer.concat([head, bytes]));
    await closed;
    const reply = Buffer.concat(chunks).toString('utf8');
    expect(reply.slice(0, 1)).toBe('E');
    expect(reply).toContain('08P01');
    expect(reply).toContain(message);
    expect(seen.length).toBe(before);
    expect(minted.length).toBe(mintedBefore);
  });

  it('refuses replication connections', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: endpoint.port,
      user: 'a',
      replication: 'database',
    } as pg.ClientConfig);
    await expect(client.connect()).rejects.toMatchObject({ code: '0A000' });
  });

  it('closeSessions() (kill switch) cuts every relayed session', async () => {
    const { client } = await agentClient();
    await client.query('SELECT 1');
    expect(endpoint.activeSessions).toBeGreaterThan(0);
    expect(endpoint.closeSessions()).toBeGreaterThan(0);
    await expect(client.query('SELECT 1')).rejects.toThrow();
    await client.end().catch(() => {});
  });
});

describe('broker PostgreSQL endpoint with TLS to the database', () => {
  let server: PostgresServer;
  const login = {
    host: '127.0.0.1',
    port: 0,
    database: 'postgres',
    user: 'relay_user',
    password: 'relay-password-1',
  };
  const endpoints: PgEndpoint[] = [];
  const fakes: Server[] = [];

  beforeAll(async () => {
    server = await startPostgres({ tls: true });
    login.port = server.port;
    const su = new pg.Client({ connectionString: server.connectionString });
    await su.connect();
    await su.query(`CREATE ROLE relay_user LOGIN PASSWORD ${pg.escapeLiteral(login.password)}`);
    await su.end();
  });

  afterAll(async () => {
    for (const e of endpoints) await e.close();
    for (const f of fakes) await new Promise((r) => f.close(r));
    await server?.stop();
  });

  async function endpointTo(to: typeof login, ca: string | undefined): Promise<PgEndpoint> {
    const e = await startPgEndpoint({
      target: 'tls-db',
      decide: async () => ({ allow: true }),
      getCredential: async () => to,
      upstreamTls: { ca },
    });
    endpoints.push(e);
    return e;
  }

  /** A fake database that answers the SSLRequest with `answer` and then nothing. */
  async function fakeDatabase(answer: Buffer): Promise<number> {
    const fake = createServer((s) => s.once('data', () => s.write(answer)));
    fakes.push(fake);
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    return (fake.address() as AddressInfo).port;
  }

  const agent = (port: number) => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent' });
    c.on('error', () => {});
    return c;
  };

  it('relays over a verified TLS connection to the database', async () => {
    const e = await endpointTo(login, server.caPem);
    const client = agent(e.port);
    await client.connect();
    const { rows } = await client.query<{ ssl: boolean; u: string }>(
      'SELECT ssl, current_user AS u FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    await client.end();
    expect(rows[0]).toEqual({ ssl: true, u: 'relay_user' });
  });

  it('refuses a database certificate that does not chain to the configured CA', async () => {
    const e = await endpointTo(login, undefined); // system CAs: the test CA is unknown
    await expect(agent(e.port).connect()).rejects.toMatchObject({
      code: '08006',
      message:
        /TLS to the database at 127\.0\.0\.1:\d+ failed: .*(self[- ]signed|unable to verify|unable to get)/i,
    });
  });

  it('refuses a database that does not accept TLS', async () => {
    const port = await fakeDatabase(Buffer.from('N'));
    const e = await endpointTo({ ...login, port }, server.caPem);
    await expect(agent(e.port).connect()).rejects.toMatchObject({
      message: /does not accept TLS, which this endpoint requires/,
    });
  });

  it('refuses data injected before the TLS handshake (CVE-2021-23222)', async () => {
    const port = await fakeDatabase(Buffer.concat([Buffer.from('S'), Buffer.from('Z\0\0\0\x05I')]));
    const e = await endpointTo({ ...login, port }, server.caPem);
    await expect(agent(e.port).connect()).rejects.toMatchObject({
      code: '08P01',
      message: /unexpected data from the database before the TLS handshake/,
    });
  });
});
