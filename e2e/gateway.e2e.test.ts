/**
 * `warden gateway` through the real chain (e2e/gateway-fixture.ts): an agent pod without a
 * sidecar calls two gateway replicas on TLS with its projected token (audience
 * warden.dev/gateway) or a Warden agent token; each call is decided, credentialed, audited and
 * killable as through a sidecar. MCP authorization: an unauthenticated MCP request gets 401 with
 * RFC 9728 metadata, and the official MCP SDK's client auth support gets a token from the
 * authority and calls a tool with no Warden-specific code.
 */
import { StaticPrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSONRPC_POLICY_DENIED } from '../broker/constants.js';
import type { AuditRecord } from '../core/api/index.js';
import { API_VERSION, DEFAULT_BROKER_AUDIENCE, GATEWAY_AUDIENCE, PLURAL } from '../core/constants.js';
import { KubeConfigApi } from '../kube/kube.js';
import { supportAgent } from '../sdk/typescript/examples/support-agent.js';
import { settingsFromEnv, Warden } from '../sdk/typescript/src/index.js';
import { eventually } from './eventually.js';
import { type GatewayStack, startGatewayStack } from './gateway-fixture.js';
import { freshNamespace, kubeConfig } from './harness/index.js';

let s: GatewayStack;
let gatewayToken: string;

beforeAll(async () => {
  s = await startGatewayStack({ kubeConfig: kubeConfig(), namespace: await freshNamespace('gateway') });
  gatewayToken = await s.token(GATEWAY_AUDIENCE);
}, 120_000);
afterAll(async () => {
  await s?.stop();
});

async function mcpClient(base: string, token: string): Promise<Client> {
  const client = new Client({ name: 'serverless-agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base}/mcp/jira`), {
      fetch: s.fetch,
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

async function records(): Promise<AuditRecord[]> {
  const api = new KubeConfigApi(kubeConfig());
  const list = await api.request<{ items: AuditRecord[] }>(
    'GET',
    `/apis/${API_VERSION}/namespaces/${s.namespace}/${PLURAL.AuditRecord}`,
  );
  return list.items.filter((r) => r.spec.agent === s.agent);
}

describe('an agent without a sidecar, through the gateway', () => {
  it('calls a tool with its projected token; the upstream gets a Warden credential, never the agent token', async () => {
    const client = await mcpClient(s.urls[0]!, gatewayToken);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['jira.get_issue', 'jira.search']);
      const r = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-1' } });
      expect(r.content).toEqual([{ type: 'text', text: 'issue SUP-1: printer on fire' }]);
      const denied = (await rejection(
        client.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-1' } }),
      )) as McpError;
      expect(denied).toBeInstanceOf(McpError);
      expect(denied.code).toBe(JSONRPC_POLICY_DENIED);
      expect((denied.data as { reason: string }).reason).toBe('DeniedByPolicy');
    } finally {
      await client.close();
    }
    const upstreamAuth = s.mcp.seen.map((x) => String(x.headers.authorization ?? ''));
    expect(upstreamAuth.some((a) => /^Bearer ey/.test(a))).toBe(true);
    expect(upstreamAuth.some((a) => a.includes(gatewayToken))).toBe(false);
  });

  it('answers an unauthenticated MCP request 401 pointing to RFC 9728 metadata naming the authority', async () => {
    const r = await s.fetch(`${s.urls[0]}/mcp/jira`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
    });
    expect(r.status).toBe(401);
    const challenge = r.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    const url = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    expect(url).toBe(`${s.urls[0]}/.well-known/oauth-protected-resource/mcp/jira`);
    const prm = (await (await s.fetch(url!)).json()) as Record<string, unknown>;
    expect(prm).toMatchObject({
      resource: `${s.urls[0]}/mcp/jira`,
      authorization_servers: [s.issuer],
      bearer_methods_supported: ['header'],
    });
    const as = (await (await fetch(`${s.issuer}/.well-known/oauth-authorization-server`)).json()) as {
      grant_types_supported: string[];
    };
    expect(as.grant_types_supported).toEqual([
      'urn:ietf:params:oauth:grant-type:token-exchange',
      'client_credentials',
    ]);
  });

  it.each([
    [
      'a token for the sidecar audience',
      () => s.token(DEFAULT_BROKER_AUDIENCE),
      /audience must include "warden.dev\/gateway"/,
    ],
    ['a token that is not a JWT', async () => 'not-a-jwt', /not a JWT/],
    [
      'a forged token',
      async () => `${gatewayToken.slice(0, -8)}AAAAAAAA`,
      /rejected by the Kubernetes API server/,
    ],
  ])('refuses %s with 401 invalid_token saying why', async (_name, make, message) => {
    const r = await s.fetch(`${s.urls[0]}/http/tickets/api/v1/tickets/SUP-1`, {
      headers: { authorization: `Bearer ${await make()}` },
    });
    expect(r.status).toBe(401);
    const body = (await r.json()) as { message: string };
    expect(body.message).toMatch(message);
    expect(s.apiSeen()).not.toContain(expect.stringContaining(gatewayToken));
  });

  it('an agent token from RFC 8693 exchange works at the gateway and buys nothing at the authority itself', async () => {
    const ex = await fetch(`${s.issuer}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: gatewayToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      }),
    });
    expect(ex.status).toBe(200);
    const { access_token: agentToken, issued_token_type } = (await ex.json()) as Record<string, string>;
    expect(issued_token_type).toBe('urn:warden:params:oauth:token-type:agent');
    const r = await s.fetch(`${s.urls[1]}/http/tickets/api/v1/tickets/SUP-7`, {
      headers: { authorization: `Bearer ${agentToken}` },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ticket: 'SUP-7', method: 'GET' });
    // The agent cannot use it as a session to fetch a credential itself.
    const cred = await fetch(`${s.issuer}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'tickets', kind: 'http', method: 'GET', path: '/api/v1/tickets/SUP-7' }),
    });
    expect(cred.status).toBe(401);
  });

  it('the official MCP SDK client gets a token through its OAuth support and calls a tool (no Warden code)', async () => {
    // A registered workload: its client assertion is its projected service-account token.
    const authProvider = new StaticPrivateKeyJwtProvider({
      clientId: `system:serviceaccount:${s.namespace}:${s.agent}`,
      jwtBearerAssertion: gatewayToken,
      expectedIssuer: s.issuer,
    });
    const client = new Client({ name: 'oauth-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${s.urls[1]}/mcp/jira`), { authProvider, fetch: s.fetch }),
    );
    try {
      const r = await client.callTool({ name: 'jira.search', arguments: { q: 'printer' } });
      expect(r.content).toEqual([{ type: 'text', text: 'results for printer' }]);
      expect(authProvider.tokens()?.access_token).toMatch(/^ey/);
    } finally {
      await client.close();
    }
  });

  describe('the authority refuses what only the gateway may do, or what is not a registered workload', () => {
    const post = (params: Record<string, string>) =>
      fetch(`${s.issuer}/v1/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(params),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, string> }));

    it('an agent posing as the gateway (its own token as actor) gets no session', async () => {
      const r = await post({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: gatewayToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        actor_token: await s.token(DEFAULT_BROKER_AUDIENCE),
        actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: 'unauthorized_client' });
      expect(r.body.error_description).toMatch(/shared gateway's projected service-account token/);
    });

    it('client credentials with a client_id other than the assertion’s subject', async () => {
      const r = await post({
        grant_type: 'client_credentials',
        client_id: 'system:serviceaccount:other:someone',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: gatewayToken,
      });
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('invalid_client');
      expect(r.body.error_description).toContain(`system:serviceaccount:${s.namespace}:${s.agent}`);
    });

    it('client credentials with a sidecar-audience assertion', async () => {
      const r = await post({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await s.token(DEFAULT_BROKER_AUDIENCE),
      });
      expect(r.status).toBe(401);
      expect(r.body.error_description).toMatch(/audience warden.dev\/gateway/);
    });

    it('the authorization endpoint the metadata names refuses every request', async () => {
      const r = await fetch(`${s.issuer}/v1/authorize?response_type=code&client_id=x`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error_description: string }).error_description).toMatch(
        /no authorization-code flow/,
      );
    });
  });

  it('the TypeScript SDK in gateway mode runs the example agent', async () => {
    const warden = new Warden(
      settingsFromEnv({ WARDEN_GATEWAY_URL: s.urls[0]!, WARDEN_GATEWAY_TOKEN_FILE: s.agentTokenFile }),
      { fetch: s.fetch },
    );
    const lines: string[] = [];
    await supportAgent(warden, undefined, (l) => lines.push(l));
    expect(lines.slice(0, 4)).toEqual([
      'tools Warden lets me see: jira.get_issue, jira.search',
      'jira.get_issue → issue SUP-42: printer on fire',
      `jira.delete_issue → denied: reason=DeniedByPolicy policy=${s.namespace}/no-delete rule=0 condition=null transient=false`,
      'GET tickets/api/v1/tickets/SUP-42 → 200 {"ticket":"SUP-42","method":"GET"}',
    ]);
    expect(lines[4]).toMatch(/^DELETE tickets\/api\/v1\/tickets\/SUP-42 → denied: reason=NoMatchingAllow/);
  });

  it('audits decisions made on either replica in the agent’s trail, with its pod', async () => {
    const ids = ['gw-audit-a', 'gw-audit-b'];
    for (const [i, id] of ids.entries()) {
      const r = await s.fetch(`${s.urls[i]}/http/tickets/api/v1/tickets/${id}`, {
        headers: { authorization: `Bearer ${gatewayToken}`, 'x-request-id': id },
      });
      expect(r.status).toBe(200);
    }
    await eventually(
      'both decisions in the AuditRecords',
      async () => {
        const entries = (await records()).flatMap((r) => r.spec.entries);
        return ids.every((id) => entries.some((e) => e.requestId === id && e.decision === 'Allow'));
      },
      30_000,
    );
    const entry = (await records()).flatMap((r) => r.spec.entries).find((e) => e.requestId === 'gw-audit-b');
    expect(entry?.pod).toBe(s.pod.metadata?.name);
  });

  it('the kill switch denies on every replica, then revive serves again', async () => {
    await s.patchAgent({ suspended: true, suspendReason: 'gateway e2e' });
    try {
      for (const url of s.urls) {
        await eventually(
          `replica ${url} to deny`,
          async () => {
            const r = await s.fetch(`${url}/http/tickets/api/v1/tickets/SUP-9`, {
              headers: { authorization: `Bearer ${gatewayToken}` },
            });
            const body = await r.text();
            return r.status === 403 && body.includes('AgentSuspended');
          },
          15_000,
        );
      }
    } finally {
      await s.patchAgent({ suspended: false, suspendReason: null });
    }
    await eventually(
      'the gateway to serve the revived agent',
      async () =>
        (
          await s.fetch(`${s.urls[0]}/http/tickets/api/v1/tickets/SUP-10`, {
            headers: { authorization: `Bearer ${gatewayToken}` },
          })
        ).status === 200,
      30_000,
    );
  });
});
