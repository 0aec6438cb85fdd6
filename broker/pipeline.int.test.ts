/**
 * The broker's three protocol adapters on one composed broker (composeBroker: one set of access
 * dependencies, one in-flight registry): real MCP SDK client and server, a real HTTP upstream and
 * a real PostgreSQL. A refusal before any decision is audited exactly once in every protocol, and
 * a suspension ends in-flight work of all three through the one registry.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../e2e/harness/postgres.js';
import { BrokerDenyReason, JSONRPC_POLICY_DENIED } from './constants.js';
import type { CredentialRequest, IssuedCredential } from './credentials.js';
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
  tb = await startTestBroker({ issuer });
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
