/**
 * Issue 15 item 5: with Allow `*` and Deny `*delete*`, `jira.DELETE_ISSUE` reached the upstream.
 * Against a REAL MCP server (SDK McpServer + StreamableHTTPServerTransport) and a REAL MCP client:
 * Deny globs match case-insensitively after Unicode normalisation, and a tools/call must name a
 * tool the upstream advertised in tools/list — which the broker fetches itself when the agent
 * never listed, refreshes on notifications/tools/list_changed, and fails closed without.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerDenyReason, JSONRPC_POLICY_DENIED, JSONRPC_UPSTREAM_UNAVAILABLE } from './constants.js';
import { type McpUpstream, startMcpUpstream, startTestBroker, type TestBroker } from './int-fixtures.js';
import { provider, snapshot } from './testing.js';
import { ToolCatalog } from './tool-catalog.js';

/** The policies: everything allowed, anything with "delete" denied. */
const allowAllDenyDelete = [
  { name: 'everything', spec: { effect: 'Allow', rules: [{ targets: ['*'], tools: ['*'] }] } },
  { name: 'no-delete', spec: { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*delete*'] }] } },
];

let upstream: McpUpstream;
let tb: TestBroker;
/** The catalog's clock: a name missing from a list is refetched only once this has moved on. */
let clock = 0;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startMcpUpstream();
  tb = await startTestBroker({ toolCatalog: new ToolCatalog({ now: () => clock }) });
});
afterAll(async () => {
  await tb.close();
  await upstream.close();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  upstream.failToolsList = false;
  tb.broker.gateway.catalog.clear();
});

function usePolicies(policies = allowAllDenyDelete): void {
  tb.source.set(snapshot({ policies, providers: [provider('jira', upstream.url)] }));
}

async function agent(): Promise<Client> {
  const client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/jira`)));
  clients.push(client);
  return client;
}

async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

/** Upstream requests since `from` carrying a tools/call or a tools/list. */
const upstreamCalls = (from: number) =>
  upstream.seen.slice(from).filter((s) => (s.body as { method?: string })?.method === 'tools/call');
const upstreamLists = (from: number) =>
  upstream.seen.slice(from).filter((s) => (s.body as { method?: string })?.method === 'tools/list');

describe('Deny globs ignore case and compatibility forms', () => {
  it.each(['jira.DELETE_ISSUE', 'jira.Delete_Issue', 'jira.delete_ISSUE'])(
    'Allow * and Deny *delete*: %s is denied by the Deny and never reaches the upstream',
    async (name) => {
      usePolicies();
      const client = await agent();
      const seen = upstream.seen.length;
      const err = await refusal(client.callTool({ name, arguments: { key: 'SUP-1' } }));
      expect(err.code).toBe(JSONRPC_POLICY_DENIED);
      expect(err.data).toMatchObject({ reason: 'DeniedByPolicy', reasons: [{ policy: 'team-a/no-delete' }] });
      expect(upstreamCalls(seen)).toHaveLength(0);
      expect(upstream.calls).not.toContain('jira.delete_issue');
    },
  );

  it('tools/list hides the tool the Deny matches, whatever its case', async () => {
    usePolicies();
    const client = await agent();
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('jira.get_issue');
    expect(names.some((n) => /delete/i.test(n))).toBe(false);
  });
});

describe('a tools/call must name a tool the upstream advertised', () => {
  it.each([
    ['a case variant of an advertised tool', 'jira.GET_ISSUE'],
    ['a tool the upstream never listed', 'jira.export_everything'],
  ])('%s is refused as an unknown tool (InvalidParams) and never forwarded', async (_n, name) => {
    usePolicies([
      { name: 'everything', spec: { effect: 'Allow', rules: [{ targets: ['*'], tools: ['*'] }] } },
    ]);
    const client = await agent();
    const seen = upstream.seen.length;
    const err = await refusal(client.callTool({ name, arguments: { key: 'SUP-1' } }));
    expect(err.code).toBe(ErrorCode.InvalidParams);
    expect(err.data).toMatchObject({ decision: 'Deny', reason: BrokerDenyReason.UnknownTool });
    expect(err.message).toContain(`unknown tool '${name}'`);
    expect(err.message).toContain('must match exactly');
    expect(upstreamCalls(seen)).toHaveLength(0);
    expect(tb.audit.events.at(-1)).toMatchObject({ decision: 'Deny', reason: 'UnknownTool', tool: name });
  });

  it('the broker fetches the list itself when the agent never called tools/list, once per session', async () => {
    usePolicies();
    const client = await agent();
    const seen = upstream.seen.length;
    const first = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-2' } });
    expect(first.content).toEqual([{ type: 'text', text: 'issue SUP-2: printer on fire' }]);
    const lists = upstreamLists(seen);
    expect(lists).toHaveLength(1);
    const list = lists[0]!;
    // The broker's own request: its id, the agent's session, an injected credential.
    expect((list.body as { id: string }).id).toMatch(/^warden-tools-list-/);
    const callSeen = upstreamCalls(seen)[0]!;
    expect(list.headers['mcp-session-id']).toBe(callSeen.headers['mcp-session-id']);
    expect(list.headers.authorization).toMatch(/^Bearer wdn_/);
    await client.callTool({ name: 'jira.search', arguments: { q: 'x' } });
    expect(upstreamLists(seen)).toHaveLength(1);
    // A second session gets its own list.
    const other = await agent();
    await other.callTool({ name: 'jira.search', arguments: { q: 'y' } });
    expect(upstreamLists(seen)).toHaveLength(2);
  });

  it('an agent tools/list fills the catalog: no extra fetch before the call', async () => {
    usePolicies();
    const client = await agent();
    await client.listTools();
    const seen = upstream.seen.length;
    await client.callTool({ name: 'jira.search', arguments: { q: 'x' } });
    expect(upstreamLists(seen)).toHaveLength(0);
    expect(upstreamCalls(seen)).toHaveLength(1);
  });

  it('fails closed when the upstream tool list cannot be fetched', async () => {
    usePolicies();
    const client = await agent();
    upstream.failToolsList = true;
    const seen = upstream.seen.length;
    const err = await refusal(client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-3' } }));
    expect(err.code).toBe(JSONRPC_UPSTREAM_UNAVAILABLE);
    expect(err.data).toMatchObject({ reason: BrokerDenyReason.ToolListUnavailable });
    expect(err.message).toMatch(/answered tools\/list with HTTP 500/);
    expect(upstreamLists(seen)).toHaveLength(1);
    expect(upstreamCalls(seen)).toHaveLength(0);
    // Once the upstream recovers, the list is fetched again (a failure is not cached).
    upstream.failToolsList = false;
    const ok = await client.callTool({ name: 'jira.get_issue', arguments: { key: 'SUP-3' } });
    expect(ok.content).toEqual([{ type: 'text', text: 'issue SUP-3: printer on fire' }]);
  });

  it('a policy denial does not make the broker contact the upstream at all', async () => {
    usePolicies();
    const client = await agent();
    const seen = upstream.seen.length;
    await refusal(client.callTool({ name: 'jira.delete_issue', arguments: { key: 'SUP-1' } }));
    // (the agent's own GET stream may open meanwhile; no POST of the broker's)
    expect(upstream.seen.slice(seen).filter((s) => s.method === 'POST')).toHaveLength(0);
  });
});

describe('the catalog follows the upstream', () => {
  it('notifications/tools/list_changed (relayed to the agent) drops the list: a new tool can be called', async () => {
    usePolicies();
    const client = await agent();
    const changed = new Promise<void>((resolve) =>
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
    );
    await client.listTools();
    const name = `jira.added_${Date.now()}`;
    upstream.addTool(name);
    await changed; // the agent got it through the broker's relayed stream
    // The catalog's clock did not move: only the notification can have made the broker refetch.
    const r = await client.callTool({ name, arguments: {} });
    expect(r.content).toEqual([{ type: 'text', text: `${name} ran` }]);
  });

  it('a name missing from the list refetches it once the list is old enough, not before', async () => {
    usePolicies();
    const client = await agent();
    await client.listTools();
    const seen = upstream.seen.length;
    const call = () => refusal(client.callTool({ name: 'jira.not_there', arguments: {} }));
    clock += 1_000; // within the refetch interval: the list stands, nothing is fetched
    expect((await call()).data).toMatchObject({ reason: BrokerDenyReason.UnknownTool });
    expect(upstreamLists(seen)).toHaveLength(0);
    clock += 10_000; // past it: one refetch (a tool added without a notification would be found)
    expect((await call()).data).toMatchObject({ reason: BrokerDenyReason.UnknownTool });
    expect(upstreamLists(seen)).toHaveLength(1);
    // The refetched list is fresh again: probing cannot make the broker hammer the upstream.
    await call();
    await call();
    expect(upstreamLists(seen)).toHaveLength(1);
    expect(upstreamCalls(seen)).toHaveLength(0);
  });
});
