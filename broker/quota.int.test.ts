/**
 * QuotaExceeded as each protocol's real client sees it (composeBroker with a lease source): the
 * MCP SDK client gets a JSON-RPC error whose data carries the reason and retryAfterSeconds, an
 * HTTP client 429 with Retry-After, node-postgres a FATAL 53400 with a HINT. The counting across
 * brokers and the authority's ledger are e2e/quota.e2e.test.ts.
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
import type { QuotaLeaseAnswer, QuotaLeaseRequest } from './quota.js';
import { provider, RecordingIssuer, snapshot } from './testing.js';

const PG_ROLE = 'quota_agent';
const PG_PASSWORD = `pw-${randomUUID()}`;
const CALLS = 2;
const RESET_MS = 40_000;

/** A budget of CALLS per limit and user, as the authority would lease it. */
class Budget {
  private readonly used = new Map<string, number>();
  async lease(req: QuotaLeaseRequest): Promise<QuotaLeaseAnswer> {
    const key = `${req.policy}#${req.rule}#${req.limit}|${req.user ?? '-'}`;
    const used = this.used.get(key) ?? 0;
    const granted = Math.min(1, CALLS - used);
    this.used.set(key, used + granted);
    return { granted, resetInMs: RESET_MS };
  }
}

class PgIssuer extends RecordingIssuer {
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
const issuer = new PgIssuer();
const limits = [{ per: 'agent', calls: CALLS, window: '1m' }];

beforeAll(async () => {
  db = await startPostgres();
  superuser = new pg.Client({ connectionString: db.connectionString });
  await superuser.connect();
  await superuser.query(`CREATE ROLE ${PG_ROLE} LOGIN PASSWORD ${pg.escapeLiteral(PG_PASSWORD)}`);
  issuer.pgPort = db.port;
  mcp = await startMcpUpstream();
  http = await startHttpUpstream();
  tb = await startTestBroker({ issuer, quota: new Budget() });
  endpoint = await tb.broker.startPostgres({ host: '127.0.0.1', port: 0 });
  tb.source.set(
    snapshot({
      policies: [
        {
          name: 'limited',
          spec: {
            rules: [
              { targets: ['jira'], tools: ['jira.search'], limits },
              { targets: ['api'], http: { methods: ['GET'], paths: ['/**'] }, limits },
              { targets: ['tickets-db'], limits },
            ],
          },
        },
      ],
      providers: [
        provider('jira', mcp.url),
        provider('api', http.url, 'HTTP'),
        provider('tickets-db', `postgres://127.0.0.1:${db.port}/postgres`, 'PostgreSQL'),
      ],
    }),
  );
}, 120_000);

afterAll(async () => {
  await endpoint?.close();
  await tb?.close();
  await mcp?.close();
  await http?.close();
  await superuser?.end();
  await db?.stop();
});

describe('QuotaExceeded through each protocol', () => {
  it('MCP: a JSON-RPC error with data.reason and data.retryAfterSeconds; the upstream never sees the call', async () => {
    const client = new Client({ name: 'quota-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/jira`)));
    for (let i = 0; i < CALLS; i++) await client.callTool({ name: 'jira.search', arguments: { q: 'x' } });
    const seen = mcp.calls.length;
    const err = await client.callTool({ name: 'jira.search', arguments: { q: 'x' } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(JSONRPC_POLICY_DENIED);
    const data = (err as McpError).data as { reason: string; retryAfterSeconds: number };
    expect(data.reason).toBe(BrokerDenyReason.QuotaExceeded);
    expect(data.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(data.retryAfterSeconds).toBeLessThanOrEqual(RESET_MS / 1000);
    expect((err as McpError).message).toMatch(
      /quota exceeded: AccessPolicy team-a\/limited rules\[0\]\.limits\[0\] allows 2 call\(s\) per 1m per agent/,
    );
    expect(mcp.calls.length).toBe(seen);
    await client.close();
  });

  it('HTTP: 429 with Retry-After', async () => {
    for (let i = 0; i < CALLS; i++)
      expect((await fetch(`${tb.url}/http/api/api/v1/tickets/1`)).status).toBe(200);
    const r = await fetch(`${tb.url}/http/api/api/v1/tickets/1`);
    expect(r.status).toBe(429);
    const retryAfter = Number(r.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(RESET_MS / 1000);
    expect(await r.json()).toMatchObject({
      reason: BrokerDenyReason.QuotaExceeded,
      retryAfterSeconds: retryAfter,
    });
  });

  it('PostgreSQL: FATAL 53400 with a HINT saying when to retry', async () => {
    for (let i = 0; i < CALLS; i++) {
      const ok = new pg.Client({
        host: '127.0.0.1',
        port: endpoint.port,
        user: 'agent',
        database: 'tickets-db',
      });
      ok.on('error', () => {});
      await ok.connect();
      await ok.end();
    }
    const c = new pg.Client({
      host: '127.0.0.1',
      port: endpoint.port,
      user: 'agent',
      database: 'tickets-db',
    });
    c.on('error', () => {});
    const err = (await c.connect().then(
      () => null,
      (e: unknown) => e,
    )) as { code?: string; hint?: string; message?: string } | null;
    expect(err?.code).toBe('53400');
    expect(err?.hint).toMatch(/^retry in \d+ s, when the quota window resets$/);
    expect(err?.message).toMatch(/quota exceeded/);
  });

  it('every refusal is audited once with its reason', () => {
    const q = tb.audit.events.filter((e) => e.reason === BrokerDenyReason.QuotaExceeded);
    expect(q.map((e) => e.target).sort()).toEqual(['api', 'jira', 'tickets-db']);
  });
});
