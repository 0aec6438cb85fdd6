/**
 * The demo's "Jira" MCP server: a real MCP server (the SDK's McpServer over streamable
 * HTTP, stateless) that accepts only Warden-minted JWTs, verified with jose against the
 * authority's JWKS by samples/dpop-target.ts — as bearer tokens, or (`requireDpop`) only
 * sender-constrained ones with a DPoP proof from the broker's key — so every answer says who
 * the server believes it is talking to.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, type JWTPayload } from 'jose';
import { z } from 'zod';
import { createWardenTokenVerifier, TokenRefused } from '../../samples/dpop-target.js';

export interface SampleMcpServer {
  url: string;
  /** Tools the server executed, in order. */
  calls: string[];
  /** Authorization headers the server received (to show the agent never had them). */
  credentialsSeen: string[];
  /** DPoP proofs the server received. */
  proofsSeen: string[];
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
  /** The CredentialProvider's spec.jwt.audience; default this server's URL (the CRD's default). */
  audience?: string;
  /** Accept only DPoP-bound tokens (the CredentialProvider sets spec.jwt.senderConstraint DPoP). */
  requireDpop?: boolean;
  /**
   * The base URL clients address (scheme://host:port, as the CredentialProvider's target URL names
   * it), which DPoP proofs' htu must match; default the listen address.
   */
  publicBase?: string;
}): Promise<SampleMcpServer> {
  const jwks = createRemoteJWKSet(new URL(opts.jwksUrl));
  const calls: string[] = [];
  const credentialsSeen: string[] = [];
  const proofsSeen: string[] = [];
  // Known once listening: the URL clients address, which DPoP proofs (htu) must name.
  let base = '';
  let verify: ReturnType<typeof createWardenTokenVerifier> | undefined;

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

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const auth = req.headers.authorization;
    let who: string;
    try {
      if (!verify) throw new TokenRefused('invalid_request', 'not ready');
      if (auth) credentialsSeen.push(auth);
      proofsSeen.push(...(req.headersDistinct.dpop ?? []));
      const { claims } = await verify({
        method: req.method ?? 'GET',
        // This server's own base URL, not the Host header: a proof must name where it really is.
        url: new URL(req.url ?? '/', base),
        authorization: auth,
        dpop: req.headersDistinct.dpop,
      });
      who = caller(claims);
    } catch (err) {
      const refused = err instanceof TokenRefused ? err : new TokenRefused('invalid_token', String(err));
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': refused.wwwAuthenticate });
      res.end(JSON.stringify({ error: refused.error, error_description: refused.message }));
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
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // The caller went away mid-request: the broker's kill switch aborts calls in flight, which
      // rejects the body read with 'aborted'. Nobody is left to answer, and an unhandled
      // rejection would end the whole demo process.
      res.destroy();
    });
  });
  const listen = opts.listen ?? { host: '127.0.0.1', port: 0 };
  await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
  base = opts.publicBase ?? `http://${listen.host}:${(server.address() as AddressInfo).port}`;
  const url = `${base}/mcp`;
  verify = createWardenTokenVerifier({
    issuer: opts.issuer,
    jwks,
    audience: opts.audience ?? url,
    requireDpop: opts.requireDpop ?? false,
    clockToleranceSeconds: opts.clockToleranceSeconds ?? WARDEN_JWT_CLOCK_TOLERANCE_SECONDS,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return {
    url,
    calls,
    credentialsSeen,
    proofsSeen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
