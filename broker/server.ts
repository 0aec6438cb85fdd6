/**
 * The broker's listeners: the agent-facing server (127.0.0.1 only) routing `/mcp/<provider>` to the
 * MCP gateway and `/http/<provider>/<path>` to the HTTP proxy, and the health server (`/healthz`,
 * `/readyz`) the kubelet probes, which also serves `/metrics`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { WardenMetrics } from '../observability/metrics.js';
import { metricsHandler } from '../observability/server.js';
import { BrokerDenyReason } from './constants.js';
import type { HttpProxy } from './http-proxy.js';
import { jsonRpcError } from './jsonrpc.js';
import type { McpGateway } from './mcp-gateway.js';
import { providerNameProblem } from './path.js';
import { readRequestMeta } from './request-meta.js';

export interface BrokerServerDeps {
  readonly gateway: McpGateway;
  readonly proxy: HttpProxy;
  readonly log: Logger;
  readonly newId?: () => string;
  readonly mode?: ListenerMode;
}

export type Route =
  | { readonly kind: 'mcp'; readonly provider: string }
  | { readonly kind: 'http'; readonly provider: string; readonly rest: string }
  | {
      readonly kind: 'none';
      readonly message: string;
      /** The request was aimed at MCP (the MCP listener, or `/mcp/…` on the combined one): answer in JSON-RPC. */
      readonly mcp: boolean;
    };

/**
 * What a listener serves: `combined` routes `/mcp/<provider>` and `/http/<provider>/<path>`; a
 * dedicated listener (the webhook gives the agent one base URL per protocol) also accepts the
 * unprefixed `/<provider>` (MCP) or `/<provider>/<path>` (HTTP).
 */
export type ListenerMode = 'combined' | 'mcp' | 'http';

/**
 * An MCP endpoint path may end in `/mcp`: clients such as the MCP Inspector CLI take the transport
 * from a URL's last segment, so `/<provider>/mcp` (and `/mcp/<provider>/mcp`) name the same
 * endpoint as `/<provider>`. The suffix is the literal word, so no provider name is shadowed.
 */
const MCP_PREFIXED = /^\/mcp\/([^/?#]+)(?:\/mcp)?\/?(?:\?.*)?$/;
const MCP_BARE = /^\/([^/?#]+)(?:\/mcp)?\/?(?:\?.*)?$/;

/** Where the MCP endpoints are, for messages. */
export const MCP_PATHS: Record<'combined' | 'mcp', string> = {
  combined: '/mcp/<provider> (or /mcp/<provider>/mcp)',
  mcp: '/<provider> (or /<provider>/mcp, /mcp/<provider>)',
};

/** Pure routing on the raw request-target. */
export function route(url: string, mode: ListenerMode = 'combined'): Route {
  if (mode !== 'http') {
    const m = MCP_PREFIXED.exec(url) ?? (mode === 'mcp' ? MCP_BARE.exec(url) : null);
    if (m) return { kind: 'mcp', provider: m[1]! };
  }
  const http = /^\/http\/([^/?#]+)(.*)$/.exec(url);
  if (http && mode !== 'mcp') return { kind: 'http', provider: http[1]!, rest: http[2]! };
  if (mode === 'http') {
    const bare = /^\/([^/?#]+)(.*)$/.exec(url);
    if (bare) return { kind: 'http', provider: bare[1]!, rest: bare[2]! };
  }
  if (mode === 'mcp')
    return {
      kind: 'none',
      mcp: true,
      message: `no MCP endpoint at this path: use ${MCP_PATHS.mcp} on this MCP listener`,
    };
  if (mode === 'http')
    return {
      kind: 'none',
      mcp: false,
      message: 'use /<provider>/<path> (or /http/<provider>/<path>) on this HTTP listener',
    };
  return /^\/mcp(?:[/?#]|$)/.test(url)
    ? { kind: 'none', mcp: true, message: `no MCP endpoint at this path: use ${MCP_PATHS.combined}` }
    : {
        kind: 'none',
        mcp: false,
        message: 'use /mcp/<provider> for MCP servers or /http/<provider>/<path> for HTTP APIs',
      };
}

/** A JSON answer with its length (the broker's listeners and the shared gateway's own routes). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

/**
 * The request handler behind every agent-facing listener: the sidecar's loopback servers and,
 * once it has authenticated the caller and picked that agent's composed broker, the shared
 * gateway (broker/gateway/) — one routing, one MCP gateway, one HTTP proxy for both.
 */
export function createBrokerHandler(
  deps: BrokerServerDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const newId = deps.newId ?? randomUUID;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const r = route(req.url ?? '/', deps.mode);
    if (r.kind === 'none') {
      // The MCP listener answers every transport-level refusal the same way (ADR 0007): an HTTP
      // error status with a JSON-RPC error response without an id, as the MCP transport allows.
      if (r.mcp) sendJson(res, 404, jsonRpcError(undefined, ErrorCode.InvalidRequest, r.message));
      else sendJson(res, 404, { error: 'not_found', message: r.message });
      req.resume();
      return;
    }
    const badName = providerNameProblem(r.provider);
    const meta = readRequestMeta(req.headers, newId);
    const problem = badName ?? (meta.ok ? null : meta.message);
    if (problem !== null || !meta.ok) {
      const message = problem ?? 'invalid request';
      // A provider name that cannot exist names no endpoint (404); a bad header is a bad request.
      if (r.kind === 'mcp')
        sendJson(res, badName ? 404 : 400, jsonRpcError(undefined, ErrorCode.InvalidRequest, message));
      else sendJson(res, 400, { error: 'access_denied', reason: BrokerDenyReason.InvalidRequest, message });
      req.resume();
      return;
    }
    if (r.kind === 'mcp') await deps.gateway.handle(req, res, r.provider, meta.meta);
    else await deps.proxy.handle(req, res, r.provider, r.rest, meta.meta);
  };
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.log.error(
        { err: err instanceof Error ? err.message : String(err) },
        'broker request handler crashed',
      );
      if (!res.headersSent)
        sendJson(res, 500, { error: 'internal_error', message: 'the broker failed; see its logs' });
      else res.destroy();
    });
  };
}

export function createBrokerServer(deps: BrokerServerDeps): Server {
  const server = createServer(createBrokerHandler(deps));
  // Requests must arrive promptly; responses (SSE) may stream for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  // Idle keep-alive connections stay open longer than clients usually keep them (Node's default
  // of 5 s races agents whose http.Agent reuses a socket just as the broker closes it: the agent
  // sees "socket hang up" on a request the broker never read). Loopback sockets cost little.
  server.keepAliveTimeout = BROKER_KEEP_ALIVE_TIMEOUT_MS;
  return server;
}

/** How long the broker keeps an idle agent connection open. */
export const BROKER_KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface Readiness {
  readonly ready: boolean;
  readonly reason: string;
}

/** The kubelet's probes, and `/metrics` for Prometheus when the process has a registry. */
export function createHealthServer(
  ready: () => Readiness,
  metrics?: Pick<WardenMetrics, 'registry'>,
): Server {
  const serveMetrics = metrics ? metricsHandler(metrics.registry) : () => false;
  return createServer((req, res) => {
    if (serveMetrics(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    if (path === '/readyz') {
      const r = ready();
      return sendJson(res, r.ready ? 200 : 503, { ready: r.ready, reason: r.reason });
    }
    sendJson(res, 404, { error: 'not_found' });
  });
}
