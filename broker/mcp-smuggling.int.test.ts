/**
 * Issue 15 item 1: what goes upstream is exactly what was decided. A REAL MCP server (SDK
 * McpServer + StreamableHTTPServerTransport) reads repeated JSON keys the way some parsers do —
 * the first one wins — while JSON.parse keeps the last: a message with a repeated key would be
 * decided as one call and run as another. The broker refuses every repeated key, and forwards its
 * own serialisation of the message it decided on.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type McpUpstream, startMcpUpstream, startTestBroker, type TestBroker } from './int-fixtures.js';
import { provider, snapshot } from './testing.js';

const policies = [
  { name: 'jira', spec: { effect: 'Allow', rules: [{ targets: ['jira'], tools: ['jira.*'] }] } },
  { name: 'no-delete', spec: { effect: 'Deny', rules: [{ targets: ['*'], tools: ['*.delete_*'] }] } },
];

let upstream: McpUpstream;
let tb: TestBroker;
let client: Client;
let transport: StreamableHTTPClientTransport;

beforeAll(async () => {
  upstream = await startMcpUpstream({ firstKeyWins: true });
  tb = await startTestBroker();
});
afterAll(async () => {
  await tb.close();
  await upstream.close();
});
beforeEach(async () => {
  tb.source.set(snapshot({ policies, providers: [provider('jira', upstream.url)] }));
  client = new Client({ name: 'agent', version: '1.0.0' });
  transport = new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/jira`));
  await client.connect(transport);
  // The broker learns the upstream's tools (it would fetch them on the first call otherwise).
  await client.listTools();
  return async () => {
    await client.close();
  };
});

/** POST raw bytes on the agent's MCP session, as a hostile agent would. */
async function postRaw(body: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${tb.url}/mcp/jira`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': transport.sessionId ?? '',
      'mcp-protocol-version': '2025-06-18',
    },
    body,
  });
  return { status: r.status, text: await r.text() };
}

describe('a message with a repeated key never reaches the upstream', () => {
  it.each([
    [
      'a tools/call smuggled as tools/list (method twice)',
      '{"jsonrpc":"2.0","id":41,"method":"tools/call","method":"tools/list","params":{"name":"jira.delete_issue","arguments":{"key":"SUP-1"}}}',
      '"method" at $.method',
      41,
    ],
    [
      'a denied tool behind an allowed one (name twice)',
      '{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"jira.delete_issue","name":"jira.get_issue","arguments":{"key":"SUP-1"}}}',
      '"name" at $.params.name',
      42,
    ],
    [
      'two sets of params',
      '{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"jira.delete_issue","arguments":{"key":"SUP-1"}},"params":{"name":"jira.get_issue","arguments":{"key":"SUP-1"}}}',
      '"params" at $.params',
      43,
    ],
    [
      'the name spelled once plainly and once with an escape',
      '{"jsonrpc":"2.0","id":44,"method":"tools/call","params":{"name":"jira.delete_issue","n\\u0061me":"jira.get_issue","arguments":{"key":"SUP-1"}}}',
      '"name" at $.params.name',
      44,
    ],
    [
      'a nested duplicate in the arguments',
      '{"jsonrpc":"2.0","id":45,"method":"tools/call","params":{"name":"jira.get_issue","arguments":{"key":"SUP-1","filter":{"project":"SUP","project":"ADMIN"}}}}',
      '"project" at $.params.arguments.filter.project',
      45,
    ],
    [
      'a duplicate deep in an array of objects',
      '{"jsonrpc":"2.0","id":46,"method":"tools/call","params":{"name":"jira.search","arguments":{"q":"x","opts":[{"a":1},{"b":{"c":1,"c":2}}]}}}',
      '"c" at $.params.arguments.opts[1].b.c',
      46,
    ],
    [
      'two ids',
      '{"jsonrpc":"2.0","id":47,"id":48,"method":"tools/call","params":{"name":"jira.get_issue","arguments":{"key":"SUP-1"}}}',
      '"id" at $.id',
      null,
    ],
  ])('%s: refused with InvalidRequest naming the key and path', async (_name, body, named, id) => {
    const seen = upstream.seen.length;
    const calls = upstream.calls.length;
    const r = await postRaw(body);
    expect(r.status).toBe(400);
    const reply = JSON.parse(r.text) as { id: unknown; error: { code: number; message: string } };
    expect(reply.error.code).toBe(ErrorCode.InvalidRequest);
    expect(reply.error.message).toContain(`duplicate key ${named}`);
    expect(reply.id).toBe(id);
    expect(upstream.seen.length).toBe(seen);
    expect(upstream.calls.length).toBe(calls);
    expect(upstream.calls).not.toContain('jira.delete_issue');
  });

  it('a repeated key in a notification is refused too', async () => {
    const seen = upstream.seen.length;
    const r = await postRaw(
      '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"requestId":2}}',
    );
    expect(r.status).toBe(400);
    expect(r.text).toContain('duplicate key \\"requestId\\" at $.params.requestId');
    expect(upstream.seen.length).toBe(seen);
  });
});

describe('what goes upstream is the broker serialisation of what was decided', () => {
  it('sends its own bytes, not the agent bytes: spacing, escapes, number forms and -0 normalised', async () => {
    const sent =
      '{ "jsonrpc" : "2.0" , "id" : 51 ,\n  "method" : "tools\\/call" ,\n  "params" : { "name" : "jira\\u002eget_issue" ,' +
      ' "arguments" : { "key" : "SUP\\u002d7" , "n" : 1.50 , "e" : 1E2 , "z" : -0 , "__proto__" : { "x" : 1 } } } }';
    const decided =
      '{"jsonrpc":"2.0","id":51,"method":"tools/call","params":{"name":"jira.get_issue","arguments":{"key":"SUP-7","n":1.5,"e":100,"z":0,"__proto__":{"x":1}}}}';
    const seen = upstream.seen.length;
    const r = await postRaw(sent);
    expect(r.status).toBe(200);
    expect(r.text).toContain('issue SUP-7: printer on fire');
    const got = upstream.seen.slice(seen);
    expect(got).toHaveLength(1);
    expect(got[0]?.raw).toBe(decided);
    expect(got[0]?.headers['content-length']).toBe(String(Buffer.byteLength(decided)));
    // The decision was on the same message: audited as the tool the upstream ran.
    expect(tb.audit.events.at(-1)).toMatchObject({ decision: 'Allow', tool: 'jira.get_issue' });
    expect(upstream.calls.at(-1)).toBe('jira.get_issue');
  });

  it('a message the SDK client sends arrives as the broker serialisation of it', async () => {
    const seen = upstream.seen.length;
    await client.callTool({ name: 'jira.search', arguments: { q: 'é \u2028 "quoted"' } });
    const call = upstream.seen
      .slice(seen)
      .find((s) => (s.body as { method?: string }).method === 'tools/call');
    if (!call) throw new Error('the upstream saw no tools/call');
    expect(call.raw).toBe(JSON.stringify(call.body));
    expect((call.body as { params: unknown }).params).toEqual({
      name: 'jira.search',
      arguments: { q: 'é \u2028 "quoted"' },
    });
  });
});
