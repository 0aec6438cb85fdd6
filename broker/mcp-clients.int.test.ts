/**
 * Standard MCP clients through the broker (#19 item 4): the TypeScript SDK, the MCP Inspector CLI
 * (`@modelcontextprotocol/inspector --cli`, a devDependency) and the Python SDK (`mcp` from PyPI,
 * in the venv scripts/ensure-python-clients.sh builds from e2e/clients/requirements.txt) each list
 * tools, call an allowed tool and a denied one, and name an unknown provider, on the dedicated
 * MCP listener (`/<provider>`, `/<provider>/mcp`) and the combined one (`/mcp/<provider>/mcp`).
 * The broker is the composed one (real listeners, gateway and decider) in front of a real SDK
 * MCP server; its decider is fed a policy snapshot directly.
 *
 * Then every transport-level refusal on an MCP path, by raw HTTP: one shape everywhere (ADR 0007):
 * an HTTP error status and a JSON-RPC error response with `id: null`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerDenyReason, JSONRPC_POLICY_DENIED } from './constants.js';
import {
  closeServer,
  listen,
  type McpUpstream,
  startMcpUpstream,
  startTestBroker,
  type TestBroker,
} from './int-fixtures.js';
import { provider, snapshot } from './testing.js';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const policies = [
  {
    name: 'jira-readers',
    spec: { effect: 'Allow', rules: [{ targets: ['jira'], tools: ['jira.get_*', 'jira.search'] }] },
  },
  {
    name: 'no-security-issues',
    spec: {
      effect: 'Deny',
      rules: [
        {
          targets: ['jira'],
          tools: ['jira.get_issue'],
          when: [{ name: 'security-project', expression: "request.args.key.startsWith('SEC-')" }],
        },
      ],
    },
  },
];
/** What every client must show for the denied call: the broker's own words. */
const DENIAL =
  "support-bot acting alone: tool 'jira.get_issue' on 'jira' denied by AccessPolicy team-a/no-security-issues rule 0 (conditions held: security-project)";

type CallOutcome =
  | { readonly ok: true; readonly text: string[] }
  | { readonly ok: false; readonly message: string; readonly reason?: string };

interface StandardClient {
  list(url: string): Promise<string[]>;
  call(url: string, tool: string, args: Record<string, string>): Promise<CallOutcome>;
}

const typescriptSdk: StandardClient = {
  async list(url) {
    return withSdk(url, async (c) => (await c.listTools()).tools.map((t) => t.name));
  },
  async call(url, tool, args) {
    try {
      return await withSdk(url, async (c) => {
        const r = await c.callTool({ name: tool, arguments: args });
        return { ok: true, text: (r.content as Array<{ text?: string }>).map((x) => x.text ?? '') };
      });
    } catch (err) {
      if (!(err instanceof McpError)) throw err;
      const reason = (err.data as { reason?: string } | undefined)?.reason;
      // McpError prefixes "MCP error <code>: " to the server's message.
      const message = err.message.replace(/^MCP error -?\d+: /, '');
      return { ok: false, message, ...(reason ? { reason } : {}) };
    }
  },
};

async function withSdk<T>(url: string, use: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ name: 'ts-agent', version: '1.0.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  } catch (err) {
    // A refused connect is a StreamableHTTPError carrying the broker's JSON-RPC error body.
    const body = /(\{.*\})/s.exec(err instanceof Error ? err.message : '')?.[1];
    const parsed = body
      ? (JSON.parse(body) as { error?: { code: number; message: string; data?: unknown } })
      : null;
    if (parsed?.error) throw new McpError(parsed.error.code, parsed.error.message, parsed.error.data);
    throw err;
  }
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

/** The Inspector's CLI entry point, from its package.json `bin` (run with this Node). */
function inspectorBin(): string {
  const dir = join(root, 'node_modules/@modelcontextprotocol/inspector');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return join(dir, pkg.bin['mcp-inspector'] ?? '');
}

/** The Inspector keeps a catalog and secrets under HOME: a throwaway one per run. */
const inspectorHome = mkdtempSync(join(tmpdir(), 'warden-inspector-'));

async function inspector(
  url: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [inspectorBin(), '--cli', url, ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: inspectorHome,
        MCP_CATALOG_PATH: join(inspectorHome, 'mcp.json'),
      },
      timeout: 30_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The Inspector prints a failure as one JSON line {"error":{"message"}} on stderr. */
function inspectorError(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.startsWith('{"error"'));
  if (!line) throw new Error(`no error line in the Inspector's stderr: ${stderr.slice(0, 500)}`);
  return (JSON.parse(line) as { error: { message: string } }).error.message;
}

const inspectorCli: StandardClient = {
  async list(url) {
    const r = await inspector(url, ['--method', 'tools/list']);
    if (r.code !== 0) throw new Error(inspectorError(r.stderr));
    return (JSON.parse(r.stdout) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
  },
  async call(url, tool, args) {
    const pairs = Object.entries(args).map(([k, v]) => `${k}=${v}`);
    const r = await inspector(url, ['--method', 'tools/call', '--tool-name', tool, '--tool-arg', ...pairs]);
    if (r.code !== 0) return { ok: false, message: inspectorError(r.stderr) };
    const out = JSON.parse(r.stdout) as { content: Array<{ text?: string }> };
    return { ok: true, text: out.content.map((x) => x.text ?? '') };
  },
};

let python = '';

async function pythonClient(args: string[]): Promise<Record<string, unknown>> {
  let stdout: string;
  try {
    stdout = (await run(python, [join(root, 'e2e/clients/mcp_client.py'), ...args], { timeout: 30_000 }))
      .stdout;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (e.code !== 1) throw new Error(`Python MCP client failed: ${e.stdout ?? ''} ${e.stderr ?? ''}`);
    stdout = e.stdout ?? '';
  }
  return JSON.parse(stdout) as Record<string, unknown>;
}

const pythonSdk: StandardClient = {
  async list(url) {
    const out = await pythonClient([url, 'list']);
    if (out.error) throw new Error((out.error as { message: string }).message);
    return out.tools as string[];
  },
  async call(url, tool, args) {
    const out = await pythonClient([url, 'call', tool, JSON.stringify(args)]);
    if (out.error) {
      const e = out.error as { message: string; data?: { reason?: string } };
      return { ok: false, message: e.message, ...(e.data?.reason ? { reason: e.data.reason } : {}) };
    }
    return { ok: true, text: (out.result as { text: string[] }).text };
  },
};

let upstream: McpUpstream;
let tb: TestBroker;
const listener = { mcp: '', combined: '' };
let mcpServer: ReturnType<TestBroker['broker']['serverFor']>;

beforeAll(async () => {
  // The venv is built once per requirements file (tens of seconds the first time, then a no-op).
  python = (
    await run(join(root, 'scripts/ensure-python-clients.sh'), [], { timeout: 600_000 })
  ).stdout.trim();
  upstream = await startMcpUpstream();
  tb = await startTestBroker({ staleAfterMs: 60 * 60_000 });
  tb.source.set(
    snapshot({
      policies,
      providers: [provider('jira', upstream.url), provider('api', 'http://127.0.0.1:9/', 'HTTP')],
    }),
  );
  mcpServer = tb.broker.serverFor('mcp');
  listener.mcp = await listen(mcpServer);
  listener.combined = tb.url;
}, 660_000);

afterAll(async () => {
  await closeServer(mcpServer);
  await tb?.close();
  await upstream?.close();
});

describe.each([
  ['the TypeScript MCP SDK', typescriptSdk],
  ['the MCP Inspector CLI', inspectorCli],
  ['the Python MCP SDK', pythonSdk],
] as const)('%s through the broker', (_name, client) => {
  it('lists the tools policy could allow at <mcp-base>/jira/mcp', async () => {
    expect((await client.list(`${listener.mcp}/jira/mcp`)).sort()).toEqual(['jira.get_issue', 'jira.search']);
  });

  it('calls an allowed tool at <mcp-base>/jira/mcp and at /mcp/jira/mcp on the combined listener', async () => {
    for (const url of [`${listener.mcp}/jira/mcp`, `${listener.combined}/mcp/jira/mcp`]) {
      const before = upstream.calls.length;
      const r = await client.call(url, 'jira.get_issue', { key: 'SUP-1' });
      expect(r).toEqual({ ok: true, text: ['issue SUP-1: printer on fire'] });
      expect(upstream.calls.slice(before)).toEqual(['jira.get_issue']);
    }
  });

  it('shows the broker denial in the same words, and the upstream never runs the call', async () => {
    const before = upstream.calls.length;
    const r = await client.call(`${listener.mcp}/jira/mcp`, 'jira.get_issue', { key: 'SEC-1' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toBe(DENIAL);
    // The clients that expose JSON-RPC error data show the reason too (the Inspector prints the message only).
    if (client !== inspectorCli) expect(r.reason).toBe('DeniedByPolicy');
    expect(upstream.calls.length).toBe(before);
  });

  it('names the provider the user typed when it is unknown', async () => {
    const err = await client.list(`${listener.mcp}/nope/mcp`).then(
      () => new Error('listed tools of an unknown provider'),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/no CredentialProvider 'nope' in namespace team-a is known to this broker/);
    expect(err.message).toMatch(/<base>\/<provider>\/mcp/);
  });
});

describe('the TypeScript SDK at the unsuffixed forms', () => {
  it.each(['/jira', '/mcp/jira'])('lists tools at <mcp-base>%s', async (path) => {
    expect((await typescriptSdk.list(`${listener.mcp}${path}`)).sort()).toEqual([
      'jira.get_issue',
      'jira.search',
    ]);
  });
});

describe('refusals on an MCP path have one shape: HTTP error status, JSON-RPC error with id null', () => {
  const init = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

  it.each([
    [
      'mcp',
      'POST',
      '/jira/sse',
      404,
      ErrorCode.InvalidRequest,
      /no MCP endpoint at this path: use \/<provider> \(or \/<provider>\/mcp/,
    ],
    ['mcp', 'POST', '/', 404, ErrorCode.InvalidRequest, /no MCP endpoint at this path/],
    ['mcp', 'POST', '/Jira', 404, ErrorCode.InvalidRequest, /'Jira' is not a valid CredentialProvider name/],
    ['mcp', 'POST', '/nope', 404, JSONRPC_POLICY_DENIED, /no CredentialProvider 'nope'/],
    [
      'mcp',
      'POST',
      '/mcp',
      404,
      JSONRPC_POLICY_DENIED,
      /no CredentialProvider 'mcp'.*<base>\/<provider>\/mcp/,
    ],
    ['mcp', 'GET', '/nope/mcp', 404, JSONRPC_POLICY_DENIED, /no CredentialProvider 'nope'/],
    ['mcp', 'POST', '/api', 404, JSONRPC_POLICY_DENIED, /CredentialProvider 'api' speaks HTTP, not MCP/],
    ['mcp', 'PUT', '/jira/mcp', 405, ErrorCode.InvalidRequest, /use POST, GET or DELETE/],
    [
      'combined',
      'POST',
      '/mcp/jira/extra',
      404,
      ErrorCode.InvalidRequest,
      /no MCP endpoint at this path: use \/mcp\/<provider>/,
    ],
    ['combined', 'POST', '/mcp/nope/mcp', 404, JSONRPC_POLICY_DENIED, /no CredentialProvider 'nope'/],
    ['combined', 'PUT', '/mcp/jira', 405, ErrorCode.InvalidRequest, /use POST, GET or DELETE/],
  ] as const)('%s listener: %s %s → %i', async (which, method, path, status, code, message) => {
    const r = await fetch(`${listener[which]}${path}`, {
      method,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      ...(method === 'POST' ? { body: init } : {}),
    });
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/json');
    const body = (await r.json()) as {
      jsonrpc: string;
      id: unknown;
      error: { code: number; message: string };
    };
    expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code } });
    expect(body.error.message).toMatch(message);
    if (status === 405) expect(r.headers.get('allow')).toBe('GET, POST, DELETE');
  });

  it('an unknown provider is audited as a denial with its reason', async () => {
    const from = tb.audit.events.length;
    const r = await fetch(`${listener.mcp}/nope/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: init,
    });
    expect(r.status).toBe(404);
    expect(tb.audit.events.slice(from)).toEqual([
      expect.objectContaining({ decision: 'Deny', reason: BrokerDenyReason.UnknownTarget, target: 'nope' }),
    ]);
  });

  it('a path outside MCP on the combined listener keeps the plain JSON not-found', async () => {
    const r = await fetch(`${listener.combined}/elsewhere`, { method: 'POST', body: init });
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({
      error: 'not_found',
      message: 'use /mcp/<provider> for MCP servers or /http/<provider>/<path> for HTTP APIs',
    });
  });
});
