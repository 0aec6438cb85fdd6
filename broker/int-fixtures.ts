/**
 * Fixtures for the broker's integration tests and benchmark: a REAL MCP server (the SDK's McpServer
 * behind StreamableHTTPServerTransport, stateful sessions) on 127.0.0.1 that records everything it
 * receives, a plain HTTP upstream, a broker composed with in-process edges, and an agent-side fetch
 * that records every byte the agent receives.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGzip } from 'node:zlib';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { z } from 'zod';
import { MemoryAuditSink } from './audit.js';
import { type ComposedBroker, type ComposeOptions, composeBroker } from './compose.js';
import { StaticSnapshotSource } from './decider.js';
import { parseStrictJson } from './strict-json.js';
import { RecordingIssuer } from './testing.js';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The body exactly as it arrived. */
  raw: string;
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface McpUpstream {
  url: string;
  seen: Seen[];
  /** Tool calls (name) the server executed. */
  calls: string[];
  /** Resolves the pending `jira.wait` calls. */
  release(): void;
  /** Number of upstream HTTP requests whose connection closed before the response finished. */
  aborted: number;
  /** While true, tools/list is answered with HTTP 500 (a broken upstream). */
  failToolsList: boolean;
  /** Registers a tool on every live session's server: the SDK sends notifications/tools/list_changed. */
  addTool(name: string): void;
  close(): Promise<void>;
}

/** A stateful MCP server with tools covering the broker's cases. */
export async function startMcpUpstream(
  opts: {
    jsonResponse?: boolean;
    stateless?: boolean;
    /**
     * Read a repeated JSON key as its FIRST occurrence (as some parsers do) instead of JSON.parse's
     * last: the upstream a smuggled message was built for.
     */
    firstKeyWins?: boolean;
  } = {},
): Promise<McpUpstream> {
  const seen: Seen[] = [];
  const calls: string[] = [];
  let waiters: Array<() => void> = [];
  const state = { aborted: 0, failToolsList: false };
  const servers: McpServer[] = [];
  const extraTools: string[] = [];
  const makeServer = (): McpServer => {
    const s = new McpServer({ name: 'jira', version: '1.0.0' });
    servers.push(s);
    for (const name of extraTools) registerExtra(s, name);
    const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
    s.registerTool(
      'jira.get_issue',
      { description: 'Read an issue', inputSchema: { key: z.string() } },
      async ({ key }) => {
        calls.push('jira.get_issue');
        return text(`issue ${key}: printer on fire`);
      },
    );
    s.registerTool(
      'jira.search',
      { description: 'Search', inputSchema: { q: z.string().optional() } },
      async ({ q }) => {
        calls.push('jira.search');
        return text(`results for ${q ?? ''}`);
      },
    );
    s.registerTool(
      'jira.delete_issue',
      { description: 'Delete', inputSchema: { key: z.string() } },
      async () => {
        calls.push('jira.delete_issue');
        return text('deleted');
      },
    );
    s.registerTool('jira.admin_reset', { description: 'Reset everything' }, async () => {
      calls.push('jira.admin_reset');
      return text('reset');
    });
    s.registerTool(
      'jira.whoami',
      { description: 'Echoes the credential (a badly written server)' },
      async (extra) => {
        calls.push('jira.whoami');
        const auth = extra.requestInfo?.headers.authorization;
        return text(`you called me with ${String(auth)}`);
      },
    );
    s.registerTool(
      'jira.progress',
      { description: 'Reports progress', inputSchema: { steps: z.number() } },
      async ({ steps }, extra) => {
        calls.push('jira.progress');
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= steps; i++) {
          if (token !== undefined) {
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress: i, total: steps },
            });
          }
        }
        return text(`done ${steps}`);
      },
    );
    s.registerTool('jira.wait', { description: 'Waits until released' }, async () => {
      calls.push('jira.wait');
      await new Promise<void>((resolve) => waiters.push(resolve));
      return text('released');
    });
    return s;
  };
  const registerExtra = (s: McpServer, name: string): void => {
    s.registerTool(name, { description: 'Added later' }, async () => {
      calls.push(name);
      return { content: [{ type: 'text' as const, text: `${name} ran` }] };
    });
  };
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const server = createServer(async (req, res) => {
    let body: unknown;
    let raw = '';
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      raw = Buffer.concat(chunks).toString();
      body = opts.firstKeyWins ? firstKeyWinsParse(raw) : JSON.parse(raw);
    }
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, raw });
    res.on('close', () => {
      if (!res.writableFinished) state.aborted++;
    });
    if (state.failToolsList && (body as { method?: unknown } | undefined)?.method === 'tools/list') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('tool registry unavailable');
      return;
    }
    if (opts.stateless) {
      // Stateless mode (SDK pattern): a fresh server and transport per request, no session.
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      res.on('close', () => void t.close());
      await makeServer().connect(t);
      await t.handleRequest(req, res, body);
      return;
    }
    const sid = req.headers['mcp-session-id'];
    let t = typeof sid === 'string' ? transports.get(sid) : undefined;
    if (!t) {
      if (req.method === 'POST' && isInitializeRequest(body)) {
        const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: opts.jsonResponse ?? false,
          onsessioninitialized: (id) => {
            transports.set(id, created);
          },
        });
        t = created;
        await makeServer().connect(t);
      } else {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'no session' } }));
        return;
      }
    }
    await t.handleRequest(req, res, body);
  });
  const url = `${await listen(server)}/mcp`;
  return {
    url,
    seen,
    calls,
    release: () => {
      for (const w of waiters) w();
      waiters = [];
    },
    get aborted() {
      return state.aborted;
    },
    get failToolsList() {
      return state.failToolsList;
    },
    set failToolsList(v: boolean) {
      state.failToolsList = v;
    },
    addTool: (name) => {
      extraTools.push(name);
      for (const s of servers) if (s.isConnected()) registerExtra(s, name);
    },
    close: async () => {
      for (const t of transports.values()) await t.close();
      await closeServer(server);
    },
  };
}

/** JSON read with the first of each repeated key winning (the strict parser keeps the first). */
function firstKeyWinsParse(text: string): unknown {
  const r = parseStrictJson(text, { maxDepth: 1000 });
  if (r.ok) return r.value;
  if (r.value !== undefined) return r.value;
  throw new SyntaxError(r.problem.message);
}

/** A plain HTTP API: tickets, header echo (plain and gzip), a hang, recording what it receives. */
export async function startHttpUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString();
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: raw, raw });
    const path = (req.url ?? '').split('?')[0];
    if (path === '/base/hang') return; // never answers
    if (path === '/base/echo') {
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-echo-key': String(req.headers['x-api-key']),
      });
      res.end(JSON.stringify({ headers: req.headers }));
      return;
    }
    if (path === '/base/gzip-echo') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      const gz = createGzip();
      gz.pipe(res);
      gz.end(`key=${String(req.headers['x-api-key'])}`);
      return;
    }
    if (path?.startsWith('/base/api/v1/tickets')) {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'sid=upstream-session' });
      res.end(JSON.stringify({ ticket: path.split('/').pop(), method: req.method }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  return { url: `${await listen(server)}/base`, seen, close: () => closeServer(server) };
}

/** An upstream that accepts connections and never answers. */
export async function startHangingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(() => {});
  return { url: `${await listen(server)}/mcp`, close: () => closeServer(server) };
}

export interface TestBroker {
  url: string;
  source: StaticSnapshotSource;
  issuer: RecordingIssuer;
  audit: MemoryAuditSink;
  broker: ComposedBroker;
  close(): Promise<void>;
}

export async function startTestBroker(
  overrides: Partial<Omit<ComposeOptions, 'issuer'>> & { issuer?: RecordingIssuer } = {},
): Promise<TestBroker> {
  const source = new StaticSnapshotSource();
  const issuer = overrides.issuer ?? new RecordingIssuer();
  const audit = new MemoryAuditSink();
  const broker = composeBroker({ source, audit, log: pino({ level: 'silent' }), ...overrides, issuer });
  const url = await listen(broker.server);
  return {
    url,
    source,
    issuer,
    audit,
    broker,
    close: async () => {
      broker.dispose();
      await closeServer(broker.server);
    },
  };
}

/** A fetch for the agent that records every header and body byte it receives. */
export function recordingFetch(received: string[]): typeof fetch {
  return async (input, init) => {
    const r = await fetch(input, init);
    for (const [k, v] of r.headers) received.push(`${k}: ${v}`);
    if (!r.body) return r;
    const [mine, theirs] = r.body.tee();
    void (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of mine) received.push(dec.decode(chunk, { stream: true }));
      } catch {
        // the agent side cancelled; what arrived is recorded
      }
    })();
    return new Response(theirs, { status: r.status, statusText: r.statusText, headers: r.headers });
  };
}
