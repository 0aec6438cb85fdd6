/**
 * The MCP gateway against a REAL MCP server (SDK McpServer + StreamableHTTPServerTransport) with a
 * REAL MCP client as the agent. The broker's decider is fed a policy snapshot directly; the full
 * chain with the authority is in e2e/.
 */
import { request as rawRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BrokerDenyReason, JSONRPC_POLICY_DENIED, JSONRPC_UPSTREAM_UNAVAILABLE } from './constants.js';
import {
  type McpUpstream,
  recordingFetch,
  startHangingUpstream,
  startMcpUpstream,
  startTestBroker,
  type TestBroker,
} from './int-fixtures.js';
import { provider, snapshot } from './testing.js';

const policies = [
  {
    name: 'jira-readers',
    spec: {
      effect: 'Allow',
      rules: [
        {
          targets: ['jira', 'hang'],
          tools: ['jira.get_*', 'jira.search', 'jira.whoami', 'jira.progress', 'jira.wait', 'jira.delete_*'],
        },
        {
          targets: ['jira'],
          tools: ['jira.admin_reset'],
          when: [{ name: 'ops-user', expression: "user.present && 'ops' in user.groups" }],
        },
      ],
    },
  },
  { name: 'no-delete', spec: { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*.delete_*'] }] } },
];

let upstream: McpUpstream;
let hanging: { url: string; close(): Promise<void> };
let tb: TestBroker;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const userToken = (groups: string[]) =>
  `${b64({ alg: 'RS256' })}.${b64({ iss: 'https://idp.test', aud: 'warden', sub: 'olivia', groups, exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;

function setSnapshot(extra: Parameters<typeof snapshot>[0] = {}): void {
  tb.source.set(
    snapshot({
      policies,
      providers: [provider('jira', upstream.url), provider('hang', hanging.url)],
      trustedIssuers: [{ issuer: 'https://idp.test', audiences: ['warden'] }],
      ...extra,
    }),
  );
}

async function agent(
  opts: { headers?: Record<string, string>; target?: string } = {},
): Promise<{ client: Client; received: string[] }> {
  const received: string[] = [];
  const client = new Client({ name: 'agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/${opts.target ?? 'jira'}`), {
    fetch: recordingFetch(received),
    requestInit: { headers: opts.headers ?? {} },
  });
  await client.connect(transport);
  return { client, received };
}

async function post(
  body: string | Buffer,
  headers: Record<string, string> = {},
  target = 'jira',
  base = tb.url,
) {
  const r = await fetch(`${base}/mcp/${target}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body,
  });
  return {
    status: r.status,
    json: (await r.json()) as {
      id?: unknown;
      error?: { code: number; message: string; data?: { reason?: string } };
    },
  };
}

async function denial(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

/** Nothing the agent received contains any credential the issuer ever minted. */
function expectNoCredential(received: string[]): void {
  const all = received.join('\n');
  for (const secret of tb.issuer.secrets()) expect(all).not.toContain(secret);
}

beforeAll(async () => {
  upstream = await startMcpUpstream();
  hanging = await startHangingUpstream();
  tb = await startTestBroker({ upstreamHeadersTimeoutMs: 500, upstreamIdleTimeoutMs: 5_000 });
});
afterAll(async () => {
  await tb.close();
  await upstream.close();
  await hanging.close();
});
beforeEach(() => setSnapshot());

describe('MCP gateway with a real MCP server and client', () => {
  it('lets an allowed tool call through with the injected credential, and the agent never sees it', async () => {
    const { client, received } = await agent();
    const result = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-1' } });
    expect(result.content).toEqual([{ type: 'text', text: 'issue SUP-1: printer on fire' }]);
    const call = upstream.seen.find((s) => (s.body as { method?: string })?.method === 'tools/call');
    const issued = tb.issuer.issued.map((i) => i.credential.headers.Authorization);
    expect(issued).toContain(call?.headers.authorization);
    await client.close();
    expectNoCredential(received);
    expect(
      tb.audit.events.some((e) => e.decision === 'Allow' && e.tool === 'jira.get_issue' && e.credentialId),
    ).toBe(true);
  });

  it('denies a tool with structured reasons, and the upstream never sees the call', async () => {
    const { client, received } = await agent();
    const before = upstream.calls.length;
    const seenBefore = upstream.seen.length;
    const err = await denial(client.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-1' } }));
    expect(err.code).toBe(JSONRPC_POLICY_DENIED);
    expect(err.data).toEqual({
      decision: 'Deny',
      reason: 'DeniedByPolicy',
      reasons: [
        {
          policy: 'team-a/no-delete',
          rule: 0,
          condition: null,
          message: expect.stringMatching(/denied by AccessPolicy team-a\/no-delete rule 0/),
        },
      ],
    });
    expect(upstream.calls.length).toBe(before);
    expect(
      upstream.seen.slice(seenBefore).some((s) => JSON.stringify(s.body ?? '').includes('delete_issue')),
    ).toBe(false);
    await client.close();
    expectNoCredential(received);
    const audited = tb.audit.events.find((e) => e.tool === 'jira.delete_issue');
    expect(audited).toMatchObject({
      decision: 'Deny',
      reason: 'DeniedByPolicy',
      user: 'agent acting alone',
      reasons: [{ policy: 'team-a/no-delete', rule: 0 }],
    });
  });

  it('filters tools/list to the tools some rule could allow for this agent and user', async () => {
    const alone = await agent();
    const names = (await alone.client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(['jira.get_issue', 'jira.progress', 'jira.search', 'jira.wait', 'jira.whoami']);
    await alone.client.close();

    const ops = await agent({ headers: { 'x-warden-user-token': userToken(['ops']) } });
    expect((await ops.client.listTools()).tools.map((t) => t.name)).toContain('jira.admin_reset');
    const r = await ops.client.callTool({ name: 'jira.admin_reset', arguments: {} });
    expect(r.content).toEqual([{ type: 'text', text: 'reset' }]);
    await ops.client.close();
    expectNoCredential([...alone.received, ...ops.received]);
  });

  it('relays progress notifications streamed by the upstream (SSE)', async () => {
    const { client, received } = await agent();
    const progress: number[] = [];
    const result = await client.callTool({ name: 'jira.progress', arguments: { steps: 5 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(result.content).toEqual([{ type: 'text', text: 'done 5' }]);
    // The session id the upstream chose reached the agent and came back on every request.
    const sessionIds = new Set(upstream.seen.slice(-3).map((s) => s.headers['mcp-session-id']));
    expect(sessionIds.size).toBe(1);
    await client.close();
    expectNoCredential(received);
  });

  it('scrubs a credential the upstream echoes back', async () => {
    const { client, received } = await agent();
    const r = await client.callTool({ name: 'jira.whoami', arguments: {} });
    expect(r.content).toEqual([{ type: 'text', text: 'you called me with [REDACTED]' }]);
    await client.close();
    expectNoCredential(received);
  });

  it('strips the Authorization and Cookie the agent sends and injects its own', async () => {
    const { client, received } = await agent({
      headers: { Authorization: 'Bearer agent-made-up', Cookie: 'sid=agent' },
    });
    await client.callTool({ name: 'jira.search', arguments: { q: 'x' } });
    const fromAgent = upstream.seen.slice(-2);
    for (const s of fromAgent) {
      expect(s.headers.authorization).not.toBe('Bearer agent-made-up');
      expect(s.headers.authorization).toMatch(/^Bearer wdn_/);
      expect(s.headers.cookie).toBeUndefined();
    }
    await client.close();
    expectNoCredential(received);
  });

  it('denies a forbidden user action with the failed condition named', async () => {
    const { client } = await agent({ headers: { 'x-warden-user-token': userToken(['support']) } });
    const err = await denial(client.callTool({ name: 'jira.admin_reset', arguments: {} }));
    expect(err.data).toMatchObject({
      reason: 'ConditionFailed',
      reasons: [{ policy: 'team-a/jira-readers', rule: 1, condition: 'ops-user' }],
    });
    await client.close();
  });
});

describe('MCP gateway bad input', () => {
  const init = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  const call = (name: string, args: unknown = {}) =>
    JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: args } });

  it.each([
    ['malformed JSON', '{"jsonrpc": "2.0", "id": 1,', 400, ErrorCode.ParseError],
    [
      'a JSON-RPC batch',
      `[${call('jira.search')},${call('jira.delete_issue')}]`,
      400,
      ErrorCode.InvalidRequest,
    ],
    ['a non-JSON-RPC object', '{"hello":"world"}', 400, ErrorCode.InvalidRequest],
    [
      'an unknown method',
      '{"jsonrpc":"2.0","id":4,"method":"tools/delete_all","params":{}}',
      200,
      ErrorCode.MethodNotFound,
    ],
    [
      'deep nesting',
      call('jira.search', { q: JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`) }),
      400,
      ErrorCode.InvalidRequest,
    ],
    [
      '10 MB of arguments',
      call('jira.search', { q: 'x'.repeat(10 * 1024 * 1024) }),
      413,
      ErrorCode.InvalidRequest,
    ],
  ])('refuses %s before the upstream sees anything', async (_name, body, status, code) => {
    const seen = upstream.seen.length;
    const r = await post(body);
    expect(r.status).toBe(status);
    expect(r.json.error?.code).toBe(code);
    expect(r.json.error?.message.length).toBeGreaterThan(10);
    expect(upstream.seen.length).toBe(seen);
  });

  it('refuses an oversize chunked body (no Content-Length to check up front) with 413', async () => {
    const seen = upstream.seen.length;
    const payload = new TextEncoder().encode(call('jira.search', { q: 'x'.repeat(2 * 1024 * 1024) }));
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < payload.length; i += 64 * 1024) c.enqueue(payload.subarray(i, i + 64 * 1024));
        c.close();
      },
    });
    const r = await fetch(`${tb.url}/mcp/jira`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(
      /exceeds the broker's 1048576-byte limit/,
    );
    expect(upstream.seen.length).toBe(seen);
  });

  it('denies arguments past the policy input bounds (nesting within the JSON limit)', async () => {
    const { client } = await agent();
    const seen = upstream.calls.length;
    const deep = JSON.parse(`${'{"a":'.repeat(30)}1${'}'.repeat(30)}`);
    const err = await denial(client.callTool({ name: 'jira.search', arguments: { q: deep } }));
    expect(err.data).toMatchObject({ reason: 'InputTooLarge' });
    expect(upstream.calls.length).toBe(seen);
    await client.close();
  });

  it.each(['jira.get_x/../../admin_reset', '../jira.admin_reset', 'jira.get_issue\u0000', 'jira.get_%2e%2e'])(
    'refuses the tool name %j with InvalidParams and reasons',
    async (name) => {
      const seen = upstream.seen.length;
      const r = await post(call(name, { key: 'x' }));
      expect(r.json.error?.code).toBe(ErrorCode.InvalidParams);
      expect(r.json.error?.data?.reason).toBe(BrokerDenyReason.InvalidToolName);
      expect(upstream.seen.length).toBe(seen);
    },
  );

  it('answers a hanging upstream with a timeout error', async () => {
    const r = await post(init, {}, 'hang');
    expect(r.status).toBe(200);
    expect(r.json.id).toBe(1);
    expect(r.json.error?.code).toBe(JSONRPC_UPSTREAM_UNAVAILABLE);
    expect(r.json.error?.message).toMatch(/sent no response within 500 ms/);
  });

  it('refuses a bare CR inside a header (header injection) at the HTTP layer', async () => {
    const seen = upstream.seen.length;
    const u = new URL(tb.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = rawRequest({
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: '/mcp/jira',
        headers: { 'content-type': 'application/json' },
      });
      // Node's client refuses CR/LF in values, so write the raw header block through the socket.
      req.on('socket', (s) => {
        s.write(
          `POST /mcp/jira HTTP/1.1\r\nHost: x\r\nX-Evil: a\rAuthorization: Bearer evil\r\nContent-Length: ${init.length}\r\n\r\n${init}`,
        );
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('error', reject);
    }).catch(() => 400);
    expect(status).toBe(400);
    expect(upstream.seen.length).toBe(seen);
  });

  it('denies everything while there is no snapshot, and when it is stale', async () => {
    const fresh = await startTestBroker({ staleAfterMs: 0 });
    try {
      let r = await post(init, {}, 'jira', fresh.url);
      expect(r.json.error?.data?.reason).toBe(BrokerDenyReason.PolicySnapshotMissing);
      fresh.source.set(snapshot({ policies, providers: [provider('jira', upstream.url)] }));
      await new Promise((resolve) => setTimeout(resolve, 5));
      r = await post(init, {}, 'jira', fresh.url);
      expect(r.json.error?.data?.reason).toBe(BrokerDenyReason.PolicySnapshotStale);
    } finally {
      await fresh.close();
    }
  });

  it('denies when the authority will not issue a credential (fail closed)', async () => {
    tb.issuer.failWith = new Error('ECONNREFUSED');
    tb.broker.credentials.clear();
    try {
      const r = await post(init);
      expect(r.json.error?.data?.reason).toBe(BrokerDenyReason.AuthorityUnreachable);
    } finally {
      tb.issuer.failWith = null;
    }
  });
});

describe('kill switch', () => {
  it('ends an in-flight tool call with AgentSuspended and denies the next one', async () => {
    const { client, received } = await agent();
    const pending = denial(client.callTool({ name: 'jira.wait', arguments: {} }));
    await expect.poll(() => upstream.calls.includes('jira.wait')).toBe(true);
    const issuedBefore = tb.issuer.issued.length;
    setSnapshot({ version: 'v2', suspended: true, suspendReason: 'incident 42' });
    const err = await pending;
    expect(err.code).toBe(JSONRPC_POLICY_DENIED);
    expect(err.data).toMatchObject({ reason: BrokerDenyReason.AgentSuspended });
    expect(err.message).toMatch(/suspended: incident 42/);
    expect(tb.broker.inFlight.size).toBe(0);
    await expect.poll(() => upstream.aborted).toBeGreaterThan(0);
    const next = await denial(client.callTool({ name: 'jira.search', arguments: {} }));
    expect(next.data).toMatchObject({ reason: BrokerDenyReason.AgentSuspended });
    expect(tb.issuer.issued.length).toBe(issuedBefore);
    upstream.release();
    await client.close().catch(() => {});
    expectNoCredential(received);
  });
});
