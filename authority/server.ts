/**
 * The authority's HTTP surface (node:http): routing, rate limiting of failures, OAuth error
 * bodies, and one audit event per request outcome.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from './audit.js';
import { OAuthError, toOAuthError } from './errors.js';
import { resolvedWithin } from './http.js';
import type { KeySource } from './keystore.js';
import type { FailureRateLimiter } from './ratelimit.js';
import { type RequestContext, slowDownError } from './request.js';
import { authorizationServerMetadata, webIdentityDiscovery } from './wellknown.js';

/** A route handler: returns the JSON body of a 200, throws OAuthError, or streams itself. */
export type Handler = (ctx: RequestContext) => Promise<Record<string, unknown> | undefined>;

export interface AuthorityServerOptions {
  issuer: string;
  keys: KeySource;
  audit: AuditSink;
  limiter: FailureRateLimiter;
  log: Logger;
  /** POST /v1/token */
  token: Handler;
  /** POST /v1/credentials */
  credentials?: Handler;
  /** GET /v1/stream */
  stream?: Handler;
  /** Further endpoints by path (POST /v1/audit, POST /v1/introspect). */
  routes?: Record<string, Handler>;
  /** Serve HTTPS with these options (production); plain HTTP when absent (tests, behind a TLS proxy). */
  tls?: HttpsOptions;
  /** How long an issuance waits for its audit entry to be persisted (default AUDIT_PERSIST_TIMEOUT_MS). */
  auditPersistTimeoutMs?: number;
}

/**
 * Endpoints whose successful answer waits until its audit entry is in an AuditRecord: what they
 * issue (a session, a credential) is never handed out unrecorded, also when the controller is
 * killed a moment later (docs/faults.md). Denials are answered at once: they grant nothing, and the
 * broker spools its own Decision entry of the refusal the agent saw.
 */
export const DURABLE_AUDIT_ENDPOINTS: ReadonlySet<string> = new Set(['/v1/token', '/v1/credentials']);

/**
 * How long an issuance waits for its audit entry: under the broker's 5 s request timeout, above a
 * record write on a loaded API server (as /v1/audit's acknowledgement).
 */
export const AUDIT_PERSIST_TIMEOUT_MS = 3000;

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

/** The remote address; Warden does not trust X-Forwarded-For (brokers connect directly). */
function sourceOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export function createAuthorityServer(opts: AuthorityServerOptions): Server {
  const routes = new Map<string, Handler>([
    ['/v1/token', opts.token],
    // Named in the metadata because OAuth clients (the MCP SDK among them) insist on one; every
    // request is refused: Warden issues tokens to workloads, never through a browser redirect.
    [
      '/v1/authorize',
      async () => {
        throw new OAuthError(
          'invalid_request',
          'Warden has no authorization-code flow: workloads get tokens at /v1/token (client_credentials with their projected service-account token as client_assertion, or RFC 8693 token exchange)',
        );
      },
    ],
  ]);
  if (opts.credentials) routes.set('/v1/credentials', opts.credentials);
  if (opts.stream) routes.set('/v1/stream', opts.stream);
  for (const [path, handler] of Object.entries(opts.routes ?? {})) routes.set(path, handler);
  const discovery = {
    '/.well-known/oauth-authorization-server': () => authorizationServerMetadata(opts.issuer),
    '/.well-known/openid-configuration': () => webIdentityDiscovery(opts.issuer),
    '/.well-known/jwks.json': () => opts.keys.jwks(),
    '/healthz': () => ({ ok: true }),
  } as Record<string, () => unknown>;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const doc = discovery[path];
    if (doc) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'invalid_request', error_description: 'use GET' }, { allow: 'GET' });
        return;
      }
      // Targets cache these; keys are pre-published an hour before use, so 5 minutes is safe.
      sendJson(res, 200, doc(), { 'cache-control': 'public, max-age=300' });
      return;
    }
    const handler = routes.get(path);
    const source = sourceOf(req);
    const requestIdHeader = req.headers['x-request-id'];
    const requestId =
      typeof requestIdHeader === 'string' && /^[\w.:-]{1,128}$/.test(requestIdHeader)
        ? requestIdHeader
        : randomUUID();
    const limited = opts.limiter.limited(source);
    const retryAfter = opts.limiter.retryAfterSeconds(source);
    const ctx: RequestContext = {
      req,
      res,
      requestId,
      source,
      limited,
      retryAfter,
      audit: { kind: 'Session' },
      slowDown: () => slowDownError(retryAfter),
    };
    try {
      if (!handler)
        throw new OAuthError('invalid_request', `no endpoint ${path.slice(0, 100)}`, undefined, 404);
      const body = await handler(ctx);
      if (ctx.streaming) return; // the handler audits and writes the stream itself
      const allowed = eventOf(ctx, 'Allow');
      // 'written', 'refused' (the entry was dropped as invalid) or 'late'.
      let outcome: 'written' | 'refused' | 'late' = 'written';
      if (DURABLE_AUDIT_ENDPOINTS.has(path) && opts.audit.persist) {
        outcome = await resolvedWithin(
          opts.audit.persist(allowed).then((written) => (written ? 'written' : 'refused')),
          opts.auditPersistTimeoutMs ?? AUDIT_PERSIST_TIMEOUT_MS,
          'late',
        );
      } else opts.audit.record(allowed);
      if (outcome === 'late') {
        // Decided, but not handed out: nothing is issued without its entry in the trail. The entry
        // stays queued and is written when the API server takes it, so the trail may name an
        // issuance that was never handed out, followed by this 503 (docs/faults.md). The broker
        // fails the call closed and asks again later.
        throw new OAuthError(
          'temporarily_unavailable',
          'the authority could not record this issuance in the audit trail in time (is the API server reachable?); nothing is issued unrecorded, retry later',
        );
      }
      if (outcome === 'refused') {
        // The API server refused the entry's record as invalid: it is dropped (counted, an Event),
        // so what it records is not handed out either.
        throw new OAuthError(
          'server_error',
          'the audit trail refused the record holding this issuance (see the AgentIdentity events); nothing is issued unrecorded',
        );
      }
      sendJson(res, 200, body ?? {}, ctx.noStore ? { 'cache-control': 'no-store', pragma: 'no-cache' } : {});
    } catch (err) {
      const e = toOAuthError(err);
      if (e.code === 'server_error') opts.log.error({ err, requestId, path }, 'authority request failed');
      // Failures caused by the caller count against its budget; our own faults, 429s and policy
      // denials (a broker asking for something it may not have is not guessing) do not.
      if (!['server_error', 'slow_down', 'temporarily_unavailable', 'access_denied'].includes(e.code)) {
        opts.limiter.fail(source);
      }
      opts.audit.record(eventOf(ctx, 'Deny', e));
      const headers: Record<string, string> = { 'cache-control': 'no-store' };
      if (e.code === 'slow_down') headers['retry-after'] = String(Math.max(1, retryAfter));
      if (e.code === 'invalid_token') {
        headers['www-authenticate'] =
          `Bearer error="invalid_token", error_description="${e.description.replace(/["\\]/g, '')}"`;
      }
      // A body that was not read (oversize, early error) must not leave the socket half-open.
      if (!req.complete) headers.connection = 'close';
      sendJson(res, e.status, e.body(), headers);
      if (!req.complete) req.resume();
    }
  };

  const eventOf = (ctx: RequestContext, decision: 'Allow' | 'Deny', err?: OAuthError): AuditEvent => ({
    ...ctx.audit,
    time: new Date().toISOString(),
    decision,
    endpoint: (ctx.req.url ?? '').split('?')[0]!.slice(0, 100),
    source: ctx.source,
    requestId: ctx.requestId,
    ...(err ? { error: err.code, message: err.description, detail: err.detail } : {}),
  });

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      opts.log.error({ err }, 'authority handler crashed');
      if (!res.headersSent)
        sendJson(res, 500, { error: 'server_error', error_description: 'internal error' });
    });
  };
  const server = opts.tls ? createHttpsServer(opts.tls, listener) : createServer(listener);
  // Slow-loris protection: a request must arrive complete within 10 s.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  // Requests Node rejects before any handler runs (headers over its 16 KiB limit, malformed
  // HTTP) still get an OAuth error body, so brokers and targets read one error shape.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify({
      error: 'invalid_request',
      error_description: tooLarge ? 'request headers exceed the 16 KiB limit' : 'malformed HTTP request',
    });
    const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
