/**
 * The broker's three protocol adapters on one composed broker (composeBroker: one set of access
 * dependencies, one in-flight registry): real MCP SDK client and server, a real HTTP upstream and
 * a real PostgreSQL. A refusal before any decision is audited exactly once in every protocol, and
 * a suspension ends in-flight work of all three through the one registry; the pipeline's hooks
 * (AccessHooks) refuse in all three alike.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../e2e/harness/postgres.js';
import type { AccessHooks } from './access.js';
import { BrokerDenyReason, JSONRPC_POLICY_DENIED } from './constants.js';
import type { CredentialRequest, IssuedCredential } from './credentials.js';
import { brokerDeny } from './decider.js';
import {
  type McpUpstream,
  startHttpUpstream,
  startMcpUpstream,
  startTestBroker,
  type TestBroker,
} from './int-fixtures.js';
import type { PgEndpoint } from './pg/endpoint.js';
import { provider, RecordingIssuer, snapshot } from './testing.js';

const PG_ROLE = 'pipeline_agent';
const PG_PASSWORD = `pw-${randomUUID()}`;

/** Bearer tokens for MCP/HTTP as RecordingIssuer does; a login to the real PostgreSQL for PostgreSQL. */
class PipelineIssuer extends RecordingIssuer {
  pgPort = 0;
  override async issue(req: CredentialRequest): Promise<IssuedCredential> {
    const c = await super.issue(req);
    if (req.kind !== 'postgresql') return c;
    return {
      ...c,
      postgresql: {
        host: '127.0.0.1',
        port: this.pgPort,
        database: 'postgres',
        user: PG_ROLE,
        password: PG_PASSWORD,
      },
    };
  }
}

let db: PostgresServer;
let superuser: pg.Client;
let mcp: McpUpstream;
let http: { url: string; close(): Promise<void> };
let tb: TestBroker;
let endpoint: PgEndpoint;
const issuer = new PipelineIssuer();

/** What the pipeline's hooks do in the test under way (off by default). */
const hookMode: { admit?: 'deny'; afterAllow?: 'deny' | 'throw'; seen: string[] } = { seen: [] };
const hooks: AccessHooks = {
  admit: [
    (c) => {
      if (hookMode.admit !== 'deny') return null;
      hookMode.seen.push(`admit ${c.protocol} ${c.target}`);
      return brokerDeny('CallerUnauthenticated', 'this caller did not authenticate to the gateway');
    },
  ],
  afterAllow: [
    (c) => {
      if (!hookMode.afterAllow) return null;
      hookMode.seen.push(`afterAllow ${c.protocol} ${c.target} ${c.decision.decision} ${c.decision.policy}`);
      if (hookMode.afterAllow === 'throw') throw new Error('breaker state unreadable');
      return brokerDeny('BreakerOpen', 'too many calls of this agent: breaker open');
    },
  ],
};

function setSnapshot(extra: Parameters<typeof snapshot>[0] = {}): void {
  tb.source.set(
    snapshot({
      policies: [
        {
          name: 'all-three',
          spec: {
            rules: [
              { targets: ['jira'], tools: ['jira.wait', 'jira.search'] },
              { targets: ['api'], http: { methods: ['GET'], paths: ['/hang', '/api/v1/tickets/*'] } },
              { targets: ['tickets-db'] },
            ],
          },
        },
      ],
      providers: [
        provider('jira', mcp.url),
        provider('api', http.url, 'HTTP'),
        provider('tickets-db', `postgres://127.0.0.1:${db.port}/postgres`, 'PostgreSQL'),
      ],
      ...extra,
    }),
  );
}

beforeAll(async () => {
  db = await startPostgres();
  superuser = new pg.Client({ connectionString: db.connectionString });
  await superuser.connect();
  await superuser.query(`CREATE ROLE ${PG_ROLE} LOGIN PASSWORD ${pg.escapeLiteral(PG_PASSWORD)}`);
  issuer.pgPort = db.port;
  mcp = await startMcpUpstream();
  http = await startHttpUpstream();
  tb = await startTestBroker({ issuer, hooks });
  endpoint = await tb.broker.startPostgres({ host: '127.0.0.1', port: 0 });
  setSnapshot();
}, 120_000);

afterAll(async () => {
  await endpoint?.close();
  await tb?.close();
  await mcp?.close();
  await http?.close();
  await superuser?.end();
  await db?.stop();
});

function pgAgent(database: string, options?: string): pg.Client {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: endpoint.port,
    user: 'agent',
    database,
    ...(options !== undefined ? { options } : {}),
  });
  c.on('error', () => {});
  return c;
}

/** Audit events recorded after the first `from`. */
const since = (from: number) => tb.audit.events.slice(from);

describe('refusals before a decision are audited once, in every protocol', () => {
  it('MCP: a body that is not JSON', async () => {
    const from = tb.audit.events.length;
    const r = await fetch(`${tb.url}/mcp/jira`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0",',
    });
    expect(r.status).toBe(400);
    const events = since(from);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: 'Decision',
      decision: 'Deny',
      reason: BrokerDenyReason.InvalidRequest,
      target: 'jira',
      method: 'POST',
      user: 'agent acting alone',
    });
    expect(events[0]?.requestId).toBeTruthy();
  });

  it('HTTP: a method the proxy does not relay', async () => {
    const from = tb.audit.events.length;
    const r = await fetch(`${tb.url}/http/api/api/v1/tickets/1`, { method: 'PROPFIND' });
    expect(r.status).toBe(405);
    const events = since(from);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      decision: 'Deny',
      reason: BrokerDenyReason.InvalidRequest,
      target: 'api',
      method: 'PROPFIND',
    });
    expect(events[0]?.message).toMatch(/not proxied/);
  });

  it('PostgreSQL: a Warden connection option that is not valid', async () => {
    const from = tb.audit.events.length;
    const c = pgAgent('tickets-db', '-c warden.context=not-json');
    await expect(c.connect()).rejects.toThrow(/warden\.context/);
    const events = since(from);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      decision: 'Deny',
      reason: BrokerDenyReason.InvalidRequest,
      target: 'tickets-db',
      user: 'agent acting alone',
    });
    expect(events[0]?.message).toMatch(/warden\.context/);
  });
});

describe('suspension', () => {
  it('ends in-flight MCP, HTTP and PostgreSQL work through the one registry', async () => {
    const client = new Client({ name: 'pipeline-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/jira`)));
    const toolCall = client.callTool({ name: 'jira.wait', arguments: {} }).then(
      () => null,
      (e: unknown) => e,
    );
    const httpCall = fetch(`${tb.url}/http/api/hang`);
    const session = pgAgent('tickets-db');
    await session.connect();
    expect((await session.query('SELECT current_user AS u')).rows[0]).toEqual({ u: PG_ROLE });
    const pgClosed = new Promise<void>((resolve) => session.on('end', () => resolve()));
    await expect.poll(() => mcp.calls.includes('jira.wait')).toBe(true);
    // The tool call, the HTTP request and the session (and the MCP client's GET stream, when it opened one).
    await expect.poll(() => tb.broker.inFlight.size).toBeGreaterThanOrEqual(3);
    expect(endpoint.activeSessions).toBe(1);

    setSnapshot({ version: 'v2', suspended: true, suspendReason: 'incident 7' });

    const mcpErr = await toolCall;
    expect(mcpErr).toBeInstanceOf(McpError);
    expect((mcpErr as McpError).code).toBe(JSONRPC_POLICY_DENIED);
    expect((mcpErr as McpError).data).toMatchObject({ reason: BrokerDenyReason.AgentSuspended });
    const httpRes = await httpCall;
    expect(httpRes.status).toBe(403);
    expect(await httpRes.json()).toMatchObject({ reason: BrokerDenyReason.AgentSuspended });
    await pgClosed;
    expect(tb.broker.inFlight.size).toBe(0);
    expect(endpoint.activeSessions).toBe(0);

    // And nothing new starts while suspended.
    const again = pgAgent('tickets-db');
    await expect(again.connect()).rejects.toThrow(/suspended: incident 7/);
    mcp.release();
    await client.close().catch(() => {});
    setSnapshot({ version: 'v3' });
  });
});

describe('pipeline hooks (AccessHooks): one place, three protocols', () => {
  /** An MCP tools/call, an HTTP GET and a PostgreSQL connection, each as the agent sends it. */
  const threeCalls = async () => {
    const client = new Client({ name: 'pipeline-agent', version: '1.0.0' });
    const mcpErr = await client
      .connect(new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/jira`)))
      .then(() => client.callTool({ name: 'jira.search', arguments: {} }))
      .then(
        () => null,
        (e: unknown) => e,
      );
    await client.close().catch(() => {});
    const httpRes = await fetch(`${tb.url}/http/api/api/v1/tickets/1`);
    const pgErr = await pgAgent('tickets-db')
      .connect()
      .then(
        () => null,
        (e: unknown) => e,
      );
    return { mcpErr, httpRes, pgErr };
  };

  it.each([
    ['admit', 'deny', 'CallerUnauthenticated', /did not authenticate to the gateway/],
    ['afterAllow', 'deny', 'BreakerOpen', /breaker open/],
    [
      'afterAllow',
      'throw',
      BrokerDenyReason.CheckFailed,
      /a broker check failed \(breaker state unreadable\); the broker fails closed/,
    ],
  ] as const)(
    '%s hook (%s): MCP, HTTP and PostgreSQL are refused and audited alike, no credential is asked for',
    async (step, mode, reason, message) => {
      setSnapshot({ version: `hooks-${step}-${mode}` }); // a new version: no cached credential
      const issuedBefore = issuer.issued.length;
      const from = tb.audit.events.length;
      hookMode.seen = [];
      if (step === 'admit') hookMode.admit = 'deny';
      else hookMode.afterAllow = mode as 'deny' | 'throw';
      try {
        const { mcpErr, httpRes, pgErr } = await threeCalls();
        expect(mcpErr).toBeInstanceOf(McpError);
        expect((mcpErr as McpError).message).toMatch(message);
        expect((mcpErr as McpError).data).toMatchObject({ reason });
        expect(httpRes.status).toBe(403);
        expect(await httpRes.json()).toMatchObject({ reason, message: expect.stringMatching(message) });
        expect(String(pgErr)).toMatch(message);
      } finally {
        hookMode.admit = undefined;
        hookMode.afterAllow = undefined;
      }
      expect(issuer.issued.length).toBe(issuedBefore);
      const denials = since(from).filter((e) => e.reason === reason);
      expect(denials.map((e) => e.target).sort()).toEqual(['api', 'jira', 'tickets-db']);
      for (const e of denials) expect(e).toMatchObject({ kind: 'Decision', decision: 'Deny', reason });
      if (step === 'afterAllow') {
        // Called after the policy allowed (for MCP already the session's initialize), with the
        // rule that allowed it.
        for (const t of ['MCP jira', 'HTTP api', 'PostgreSQL tickets-db'])
          expect(
            hookMode.seen.some((x) => x.startsWith(`afterAllow ${t} Allow`)),
            t,
          ).toBe(true);
        expect(hookMode.seen.some((x) => /^afterAllow HTTP api Allow \S*all-three$/.test(x))).toBe(true);
      } else {
        expect(hookMode.seen).toEqual(
          expect.arrayContaining(['admit HTTP api', 'admit PostgreSQL tickets-db']),
        );
      }
    },
  );
});
