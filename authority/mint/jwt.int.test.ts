/**
 * A real MCP server (SDK McpServer + StreamableHTTPServerTransport behind the SDK's
 * requireBearerAuth) verifies Warden-minted JWTs against Warden's JWKS, fetched over HTTP by jose —
 * exactly what a target that trusts Warden does.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticKeySource } from '../keystore.js';
import { ACCESS_TOKEN_TYP, JwtMinter } from './jwt.js';
import { policy, provider, request } from './testing.js';
import type { HeaderCredential } from './types.js';

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );

describe('JWT credentials verified by a real MCP server', () => {
  const keys = StaticKeySource.generate();
  let issuer: string;
  let mcpUrl: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    // Warden's JWKS endpoint (the authority serves the same document at this path).
    const jwksServer = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.jwks()));
    });
    servers.push(jwksServer);
    issuer = await listen(jwksServer);
    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));

    const app = createMcpExpressApp();
    const httpServer = createServer(app);
    servers.push(httpServer);
    mcpUrl = `${await listen(httpServer)}/mcp`;
    const verifier = {
      async verifyAccessToken(token: string): Promise<AuthInfo> {
        try {
          const { payload } = await jwtVerify(token, jwks, {
            issuer,
            audience: mcpUrl,
            typ: ACCESS_TOKEN_TYP,
            algorithms: ['ES256'],
          });
          return {
            token,
            clientId: String(payload.client_id),
            scopes: typeof payload.scope === 'string' ? payload.scope.split(' ') : [],
            expiresAt: payload.exp,
            extra: { claims: payload },
          };
        } catch (err) {
          throw new InvalidTokenError(`token rejected: ${(err as Error).message}`);
        }
      },
    };
    app.post(
      '/mcp',
      requireBearerAuth({ verifier, requiredScopes: ['tickets:read'] }),
      async (req: unknown, res: unknown) => {
        // Stateless: one server + transport per request, as the SDK documents.
        const server = new McpServer({ name: 'tickets', version: '1.0.0' });
        server.registerTool('whoami', { description: 'Echo the verified token claims' }, async (extra) => ({
          content: [{ type: 'text', text: JSON.stringify(extra.authInfo?.extra?.claims ?? null) }],
        }));
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
        await server.connect(transport);
        // Express request/response (untyped here: @types/express is not installed).
        const r = req as Parameters<typeof transport.handleRequest>[0] & { body: unknown; auth?: AuthInfo };
        await transport.handleRequest(r, res as Parameters<typeof transport.handleRequest>[1], r.body);
      },
    );
  });

  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  const mcpProvider = () =>
    provider({
      type: 'JWT',
      target: { url: mcpUrl, protocol: 'MCP' },
      jwt: { claims: { department: 'user.department' } },
    });

  async function callWhoami(credential: HeaderCredential): Promise<Record<string, unknown>> {
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(mcpUrl), {
        requestInit: { headers: { ...credential.headers } },
      }),
    );
    try {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      const [first] = result.content as { type: string; text: string }[];
      return JSON.parse(first?.text ?? 'null') as Record<string, unknown>;
    } finally {
      await client.close();
    }
  }

  async function initializeStatus(headers: Record<string, string>): Promise<number> {
    const res = await fetch(mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    await res.body?.cancel();
    return res.status;
  }

  it('accepts the minted token and sees the user as subject, the agent as actor, CEL claims', async () => {
    const minter = new JwtMinter({ issuer, keys });
    const { credential } = await minter.mint(
      request({ provider: mcpProvider(), policy: policy({ scopes: ['tickets:read'], ttl: '2m' }) }),
    );
    const claims = await callWhoami(credential as HeaderCredential);
    expect(claims).toMatchObject({
      iss: issuer,
      sub: 'alice',
      aud: mcpUrl,
      act: { sub: 'system:warden:agent:agents:support-bot' },
      department: 'customer-care',
      scope: 'tickets:read',
      jti: credential.id,
    });
  });

  it('rejects a token minted for another audience', async () => {
    const minter = new JwtMinter({ issuer, keys });
    const other = provider({ type: 'JWT', target: { url: 'http://127.0.0.1:1/other', protocol: 'MCP' } });
    const { credential } = await minter.mint(
      request({ provider: other, policy: policy({ scopes: ['tickets:read'] }) }),
    );
    expect(await initializeStatus({ ...(credential as HeaderCredential).headers })).toBe(401);
  });

  it('rejects an expired token', async () => {
    const minter = new JwtMinter({ issuer, keys, now: () => new Date(Date.now() - 3_600_000) });
    const { credential } = await minter.mint(
      request({ provider: mcpProvider(), policy: policy({ scopes: ['tickets:read'] }) }),
    );
    expect(await initializeStatus({ ...(credential as HeaderCredential).headers })).toBe(401);
  });

  it('rejects a token signed by a key that is not in Warden’s JWKS', async () => {
    const minter = new JwtMinter({ issuer, keys: StaticKeySource.generate() });
    const { credential } = await minter.mint(
      request({ provider: mcpProvider(), policy: policy({ scopes: ['tickets:read'] }) }),
    );
    expect(await initializeStatus({ ...(credential as HeaderCredential).headers })).toBe(401);
  });

  it('answers 403 when the policy did not grant the scope the server requires', async () => {
    const minter = new JwtMinter({ issuer, keys });
    const { credential } = await minter.mint(
      request({ provider: mcpProvider(), policy: policy({ scopes: ['other'] }) }),
    );
    expect(await initializeStatus({ ...(credential as HeaderCredential).headers })).toBe(403);
  });
});
