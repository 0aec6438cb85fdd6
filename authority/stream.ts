/**
 * GET /v1/stream — the policy stream (server-sent events).
 *
 * An authenticated broker receives its agent's snapshot (snapshot.ts) at once, then a new
 * snapshot whenever anything that affects it changes (AccessPolicy edits, suspension, label
 * changes, CredentialProviders added, removed or retargeted in its namespace) — pushed from the watch event, so within the watch latency (milliseconds), well inside
 * the 1 s target. Events:
 *   event: snapshot   id: <version>   data: PolicySnapshot JSON
 *   event: current    id: <version>   data: {"version": ...}   (resumed with an up-to-date Last-Event-ID)
 *   event: expired    data: {...}     (the session expired: refresh it and reconnect)
 *   `: ping` comments every HEARTBEAT_MS keep proxies and the broker's liveness check happy.
 * Reconnecting brokers send Last-Event-ID; if it equals the current version nothing is resent.
 * `retry:` tells EventSource-style clients to reconnect after 1 s (brokers add jittered backoff).
 */
import type { AuditSink } from './audit.js';
import { authenticate } from './authn.js';
import { OAuthError } from './errors.js';
import type { PolicySource } from './policy-store.js';
import type { RequestContext } from './request.js';
import type { Sessions } from './session.js';
import type { PolicySnapshot } from './snapshot.js';

export const HEARTBEAT_MS = 15_000;
/** Upper bound on simultaneously open streams per authority replica. */
export const MAX_STREAMS = 10_000;

export interface StreamDeps {
  sessions: Sessions;
  store: PolicySource;
  audit: AuditSink;
  now?: () => number;
  heartbeatMs?: number;
}

let openStreams = 0;

/** Number of open streams in this process (for metrics and tests). */
export function openStreamCount(): number {
  return openStreams;
}

function frame(event: string, data: unknown, id?: string): string {
  return `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export async function handleStream(ctx: RequestContext, deps: StreamDeps): Promise<undefined> {
  ctx.audit.kind = 'Stream';
  if (ctx.req.method !== 'GET') throw new OAuthError('invalid_request', 'use GET', undefined, 405);
  const claims = await authenticate(ctx, deps.sessions);
  if (openStreams >= MAX_STREAMS) {
    throw new OAuthError(
      'temporarily_unavailable',
      'too many open policy streams on this replica; retry with backoff',
    );
  }
  const { namespace, agent } = claims.warden;
  const now = deps.now ?? Date.now;

  ctx.streaming = true;
  openStreams++;
  const res = ctx.res;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no', // no buffering in nginx-style proxies
  });
  res.flushHeaders();
  res.write('retry: 1000\n\n');
  deps.audit.record({
    ...ctx.audit,
    time: new Date(now()).toISOString(),
    decision: 'Allow',
    endpoint: '/v1/stream',
    source: ctx.source,
    requestId: ctx.requestId,
    credentialId: claims.jti,
    message: 'policy stream opened',
  });

  let sent = '';
  const push = (snap: PolicySnapshot) => {
    if (snap.version === sent) return;
    sent = snap.version;
    res.write(frame('snapshot', snap, snap.version));
  };
  const first = deps.store.snapshot(namespace, agent);
  const lastEventId = ctx.req.headers['last-event-id'];
  if (typeof lastEventId === 'string' && lastEventId === first.version) {
    sent = first.version;
    res.write(frame('current', { version: first.version }, first.version));
  } else {
    push(first);
  }

  const unsubscribe = deps.store.subscribe((ns) => {
    if (ns === namespace) push(deps.store.snapshot(namespace, agent));
  });
  const heartbeat = setInterval(() => res.write(': ping\n\n'), deps.heartbeatMs ?? HEARTBEAT_MS);
  // The stream lives no longer than the session that opened it.
  const expiresIn = Math.max(0, claims.exp * 1000 - now());
  const expiry = setTimeout(() => {
    res.write(frame('expired', { reason: 'session expired; refresh it at /v1/token and reconnect' }));
    res.end();
  }, expiresIn);

  await new Promise<void>((resolve) => {
    const done = () => {
      clearInterval(heartbeat);
      clearTimeout(expiry);
      unsubscribe();
      resolve();
    };
    res.once('close', done);
  });
  openStreams--;
  return undefined;
}
