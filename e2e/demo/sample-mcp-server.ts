/**
 * The demo's "Jira" MCP server: a real MCP server (the SDK's McpServer over streamable
 * HTTP, stateless) that accepts only Warden-minted JWTs, verified with jose against the
 * authority's JWKS — so every answer says who the server believes it is talking to.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { z } from 'zod';

export interface SampleMcpServer {
  url: string;
  /** Tools the server executed, in order. */
  calls: string[];
  /** Authorization headers the server received (to show the agent never had them). */
  credentialsSeen: string[];
  close(): Promise<void>;
}

function caller(claims: JWTPayload): string {
  const act = (claims.act as { sub?: string } | undefined)?.sub;
  return act ? `${claims.sub} via ${act}` : String(claims.sub);
}

/**
 * Leeway on the Warden JWT's exp/nbf: what docs/faults.md asks of every target verifying Warden
 * JWTs, so a target whose clock is up to 2 minutes off the authority's still accepts them.
 */
export const WARDEN_JWT_CLOCK_TOLERANCE_SECONDS = 120;

export async function startSampleMcpServer(opts: {
  issuer: string;
  jwksUrl: string;
  /** This server's clock (tests: a skewed host). */
  now?: () => Date;
  clockToleranceSeconds?: number;
  /** Where to listen (default 127.0.0.1 on a free port; the real-node image listens on the pod IP). */
  listen?: { host: string; port: number };
}): Promise<SampleMcpServer> {
  const jwks = createRemoteJWKSet(new URL(opts.jwksUrl));
  const calls: string[] = [];
  const credentialsSeen: string[] = [];

  const mcpFor = (who: string) => {
    const s = new McpServer({ name: 'jira', version: '1.0.0' });
    const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
    s.registerTool(
      'jira.get_issue',
      { description: 'Read an issue', inputSchema: { key: z.string() } },
      async ({ key }) => {
        calls.push('jira.get_issue');
        return text(`${key}: "Printer on fire" (open) — served to ${who}`);
      },
    );
    s.registerTool(
      'jira.create_issue',
      { description: 'Create an issue', inputSchema: { summary: z.string() } },
      async ({ summary }) => {
        calls.push('jira.create_issue');
        return text(`created SUP-42 "${summary}" — on behalf of ${who}`);
      },
    );
    s.registerTool(
      'jira.delete_issue',
      { description: 'Delete an issue', inputSchema: { key: z.string() } },
      async () => {
        calls.push('jira.delete_issue');
        return text('deleted');
      },
    );
    return s;
  };

  const server: Server = createServer(async (req, res) => {
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    let who: string;
    try {
      if (!token) throw new Error('no bearer token');
      credentialsSeen.push(auth);
      const { payload } = await jwtVerify(token, jwks, {
        issuer: opts.issuer,
        algorithms: ['ES256'],
        clockTolerance: opts.clockToleranceSeconds ?? WARDEN_JWT_CLOCK_TOLERANCE_SECONDS,
        ...(opts.now ? { currentDate: opts.now() } : {}),
      });
      who = caller(payload);
    } catch (err) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(
        JSON.stringify({ error: 'unauthorized', detail: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
    // Stateless: one server + transport per request, as the SDK recommends for this mode.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const mcp = mcpFor(who);
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  const listen = opts.listen ?? { host: '127.0.0.1', port: 0 };
  await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
  const url = `http://${listen.host}:${(server.address() as AddressInfo).port}/mcp`;
  return {
    url,
    calls,
    credentialsSeen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
