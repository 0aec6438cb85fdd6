/**
 * Scrubbing against real upstreams that echo the injected credential in every form a careless
 * server would (testing.ts echoForms: raw, Base64 std/url padded or not and inside a larger
 * document, hex, percent-encoded, JSON-escaped, and each JWT segment alone): a plain HTTP API that
 * echoes them in response headers and in a body streamed in pieces that cut through the forms,
 * and a real MCP server (SDK) that returns them from a tool, over SSE and as a JSON response.
 * The agent — a real fetch / MCP client — must receive none of them.
 */
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACTED } from './constants.js';
import { closeServer, listen, recordingFetch, startTestBroker, type TestBroker } from './int-fixtures.js';
import { echoForms, provider, RecordingIssuer, signedJwt, snapshot } from './testing.js';

/** The bare credential the upstream received (it echoes whatever it was given). */
function bareToken(authorization: string | undefined): string {
  return /^Bearer (.+)$/.exec(authorization ?? '')?.[1] ?? '';
}

/** Plain HTTP: GET /forms echoes every form in headers x-echo-N and in a body written in pieces. */
async function startEchoApi(): Promise<{ url: string; received: string[]; close(): Promise<void> }> {
  const received: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const token = bareToken(req.headers.authorization);
    received.push(token);
    const forms = Object.values(echoForms(token));
    res.writeHead(
      200,
      Object.fromEntries([['content-type', 'text/plain'], ...forms.map((f, i) => [`x-echo-${i}`, f])]),
    );
    for (const form of forms) {
      // Each form leaves in three writes, cut at a third and two thirds of it, with a pause so the
      // broker reads them as separate chunks.
      const a = Math.floor(form.length / 3);
      const b = Math.floor((2 * form.length) / 3);
      for (const piece of [`<${form.slice(0, a)}`, form.slice(a, b), `${form.slice(b)}>\n`]) {
        res.write(piece);
        await sleep(2);
      }
    }
    res.end();
  });
  return { url: `${await listen(server)}/api`, received, close: () => closeServer(server) };
}

/** A real MCP server whose `echo_forms` tool returns every form of the credential it received. */
async function startEchoMcp(jsonResponse: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
    const mcp = new McpServer({ name: 'echo', version: '1.0.0' });
    mcp.registerTool('echo_forms', { description: 'Echoes the credential in many forms' }, async (extra) => {
      const token = bareToken(extra.requestInfo?.headers.authorization as string | undefined);
      return {
        content: Object.entries(echoForms(token)).map(([name, form]) => ({
          type: 'text' as const,
          text: `${name}: ${form}`,
        })),
      };
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: jsonResponse,
    });
    res.on('close', () => void transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  return { url: `${await listen(server)}/mcp`, close: () => closeServer(server) };
}

let api: Awaited<ReturnType<typeof startEchoApi>>;
let mcpSse: Awaited<ReturnType<typeof startEchoMcp>>;
let mcpJson: Awaited<ReturnType<typeof startEchoMcp>>;
let tb: TestBroker;

beforeAll(async () => {
  [api, mcpSse, mcpJson] = await Promise.all([startEchoApi(), startEchoMcp(false), startEchoMcp(true)]);
  tb = await startTestBroker({ issuer: new RecordingIssuer(300_000, 'Authorization', () => signedJwt()) });
  tb.source.set(
    snapshot({
      policies: [
        {
          name: 'echo',
          spec: {
            rules: [
              { targets: ['api'], http: { methods: ['GET'], paths: ['/forms'] } },
              { targets: ['mcp-sse', 'mcp-json'], tools: ['echo_forms'] },
            ],
          },
        },
      ],
      providers: [
        provider('api', api.url, 'HTTP'),
        provider('mcp-sse', mcpSse.url),
        provider('mcp-json', mcpJson.url),
      ],
    }),
  );
});
afterAll(async () => {
  await tb.close();
  await Promise.all([api.close(), mcpSse.close(), mcpJson.close()]);
});

/** The forms of every credential the broker injected, by name. */
function injectedForms(): Array<[string, string]> {
  return tb.issuer.issued.flatMap((i) => Object.entries(echoForms(i.token)));
}

function expectNoForm(received: string): void {
  const forms = injectedForms();
  expect(forms.length).toBeGreaterThan(20);
  for (const [name, form] of forms) expect(received.includes(form), `${name} reached the agent`).toBe(false);
}

describe('an upstream echoing the credential in every encoding', () => {
  it('HTTP: no form reaches the agent in the streamed body or the headers', async () => {
    const r = await fetch(`${tb.url}/http/api/forms`);
    const body = await r.text();
    expect(r.status).toBe(200);
    // The upstream really received (and echoed) the JWT the broker injected.
    expect(api.received.at(-1)).toBe(tb.issuer.issued.at(-1)?.token);
    const forms = Object.keys(echoForms(signedJwt()));
    expect(body.split('\n').filter((l) => l.includes(REDACTED))).toHaveLength(forms.length);
    for (let i = 0; i < forms.length; i++) expect(r.headers.get(`x-echo-${i}`), forms[i]).toContain(REDACTED);
    expectNoForm([...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n') + body);
  });

  it.each([
    ['SSE', 'mcp-sse'],
    ['a JSON response', 'mcp-json'],
  ])('MCP over %s: no form reaches the agent in the tool result', async (_how, target) => {
    const received: string[] = [];
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${tb.url}/mcp/${target}`), {
        fetch: recordingFetch(received),
      }),
    );
    const r = await client.callTool({ name: 'echo_forms', arguments: {} });
    await client.close();
    const texts = (r.content as Array<{ text: string }>).map((c) => c.text);
    const forms = injectedForms();
    expect(texts.length).toBe(Object.keys(echoForms(signedJwt())).length);
    // What the agent's client decoded from the JSON, and the bytes it received.
    for (const t of texts) {
      expect(t).toContain(REDACTED);
      for (const [name, form] of forms) expect(t.includes(form), `${name} reached the agent`).toBe(false);
    }
    expectNoForm(received.join('\n'));
  });
});
