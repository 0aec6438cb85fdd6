/**
 * `warden gateway`: the broker's MCP gateway, HTTP proxy and PostgreSQL endpoint (postgres.ts) as a shared Deployment for agents
 * without a sidecar, on a TLS listener other pods reach. Every request authenticates the calling
 * agent (a projected token with audience warden.dev/gateway, or a Warden agent token from the
 * authority) and is then handled by that agent's own composed broker (agents.ts) — decided,
 * credentialed, audited and killable exactly as through a sidecar. Unauthenticated MCP requests
 * get 401 with a WWW-Authenticate challenge naming the provider's RFC 9728 metadata, served here.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Command, InvalidArgumentError } from 'commander';
import type { Logger } from 'pino';
import { RunnableGroup, runnableValue, stopOnly, stopOnSignals } from '../../lifecycle/runnables.js';
import { createMetrics, type WardenMetrics } from '../../observability/metrics.js';
import { createBrokerLogger } from '../log.js';
import { hostPort, type Listen, listener } from '../main.js';
import {
  BROKER_KEEP_ALIVE_TIMEOUT_MS,
  createHealthServer,
  type Readiness,
  route,
  sendJson,
} from '../server.js';
import { CallerRejected, GatewayAgents } from './agents.js';
import {
  bearerOf,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  protectedResourceProvider,
  wwwAuthenticate,
} from './auth.js';
import { startGatewayPostgres } from './postgres.js';
import { CallerRateLimiter, callerKey, type RateLimitOptions } from './rate-limit.js';
import { watchTlsFiles } from './tls-reload.js';

export interface RunGatewayOptions {
  readonly authorityUrl: string;
  /** PEM text of the CA that signed the authority's certificate. */
  readonly authorityCa?: string | undefined;
  /** The gateway's own projected service-account token (audience warden.dev/broker). */
  readonly tokenFile: string;
  /** PEM certificate chain and key of the agent-facing TLS listener. */
  readonly tlsCert: string;
  readonly tlsKey: string;
  /**
   * The files tlsCert and tlsKey were read from: watched, and a renewed pair is served from then
   * on without a restart (tls-reload.ts). Absent: the pair given is served until the process ends.
   */
  readonly tlsFiles?: { readonly cert: string; readonly key: string; readonly pollMs?: number } | undefined;
  /**
   * Per-caller request limit (rate-limit.ts): a caller over it gets 429 with Retry-After (a
   * PostgreSQL session: 53300), others keep their own budget. Absent: no limit. `now` is the
   * limiter's clock (tests hold it still so a refusal does not depend on how fast calls arrive).
   */
  readonly callerRateLimit?: RateLimitOptions | undefined;
  readonly listen: Listen;
  /**
   * The PostgreSQL endpoint (postgres.ts): TLS with the same certificate, the agent's token as
   * the password. Absent: no PostgreSQL endpoint.
   */
  readonly pgListen?: Listen | undefined;
  readonly healthPort: number;
  readonly healthHost?: string | undefined;
  /** The URL agents reach the gateway at (resource URLs in RFC 9728 metadata). */
  readonly publicUrl: string;
  /** The authorization server MCP clients are sent to (the authority's issuer URL). */
  readonly authorizationServer: string;
  readonly staleAfterMs?: number | undefined;
  readonly revalidateMs?: number | undefined;
  readonly idleMs?: number | undefined;
  readonly upstreamHeadersTimeoutMs?: number | undefined;
  /** Per-agent audit spools under this directory (agents.ts); absent = in memory. */
  readonly auditSpool?: { readonly dir: string; readonly maxBytes?: number | undefined } | undefined;
  readonly log?: Logger | undefined;
  readonly metrics?: WardenMetrics | undefined;
}

export interface RunningGateway {
  readonly ports: { listen: number; pg?: number; health: number };
  readonly agents: GatewayAgents;
  /** Reads the TLS files now and serves them when they changed (what the file watch does). */
  reloadTls(): Promise<boolean>;
  readonly metrics: WardenMetrics;
  readonly runnables: readonly string[];
  readiness(): Readiness;
  close(): Promise<void>;
}

export async function runGateway(o: RunGatewayOptions): Promise<RunningGateway> {
  const log = o.log ?? createBrokerLogger();
  const metrics = o.metrics ?? createMetrics();
  const agents = new GatewayAgents({
    authorityUrl: o.authorityUrl,
    authorityCa: o.authorityCa,
    actorToken: async () => {
      const t = (await readFile(o.tokenFile, 'utf8')).trim();
      if (!t) throw new Error(`${o.tokenFile} is empty`);
      return t;
    },
    log,
    metrics,
    staleAfterMs: o.staleAfterMs,
    revalidateMs: o.revalidateMs,
    idleMs: o.idleMs,
    upstreamHeadersTimeoutMs: o.upstreamHeadersTimeoutMs,
    auditSpoolDir: o.auditSpool?.dir,
    auditSpoolMaxBytes: o.auditSpool?.maxBytes,
  });

  const limiter = o.callerRateLimit ? new CallerRateLimiter(o.callerRateLimit) : undefined;
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const prm = protectedResourceProvider(path);
    if (prm !== null) {
      req.resume();
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'method_not_allowed', message: 'use GET' }, { allow: 'GET, HEAD' });
        return;
      }
      sendJson(res, 200, protectedResourceMetadata(o.publicUrl, prm, o.authorizationServer), {
        'cache-control': 'max-age=300',
      });
      return;
    }
    const r = route(req.url ?? '/', 'combined');
    const resourceMetadata =
      r.kind === 'mcp' ? protectedResourceMetadataUrl(o.publicUrl, r.provider) : undefined;
    const bearer = bearerOf(req.headers.authorization);
    if (bearer.ok && limiter) {
      const d = limiter.take(callerKey(agents, bearer.token, req.socket.remoteAddress));
      if (!d.ok) {
        req.resume();
        sendJson(
          res,
          429,
          {
            error: 'rate_limited',
            message: `this caller sent more than ${o.callerRateLimit?.perSecond} requests per second (burst ${o.callerRateLimit?.burst}) to the Warden gateway; retry after ${d.retryAfterSeconds} s`,
          },
          { 'retry-after': String(d.retryAfterSeconds) },
        );
        return;
      }
    }
    if (!bearer.ok) {
      req.resume();
      sendJson(
        res,
        401,
        { error: bearer.missing ? 'unauthorized' : 'invalid_request', message: bearer.message },
        {
          'www-authenticate': wwwAuthenticate({
            resourceMetadata,
            ...(bearer.missing ? {} : { error: 'invalid_request', description: bearer.message }),
          }),
        },
      );
      return;
    }
    let agent: Awaited<ReturnType<GatewayAgents['agentFor']>>;
    try {
      agent = await agents.agentFor(bearer.token, bearer.type, bearer.expiresAtMs);
    } catch (err) {
      req.resume();
      if (!(err instanceof CallerRejected)) throw err;
      log.info({ status: err.status, reason: err.message, path }, 'caller not accepted');
      sendJson(
        res,
        err.status,
        { error: err.status === 401 ? 'invalid_token' : 'temporarily_unavailable', message: err.message },
        err.status === 401
          ? {
              'www-authenticate': wwwAuthenticate({
                resourceMetadata,
                error: 'invalid_token',
                description: err.message,
              }),
            }
          : { 'retry-after': '5' },
      );
      return;
    }
    // The agent's token authenticated it to the gateway; it goes no further (the proxy strips
    // any credential the agent sends anyway).
    delete req.headers.authorization;
    await agents.handle(agent, req, res);
  };
  const server = createHttpsServer({ cert: o.tlsCert, key: o.tlsKey, minVersion: 'TLSv1.2' }, (req, res) => {
    serve(req, res).catch((err: unknown) => {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'gateway request handler crashed');
      if (!res.headersSent)
        sendJson(res, 500, { error: 'internal_error', message: 'the gateway failed; see its logs' });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = BROKER_KEEP_ALIVE_TIMEOUT_MS;

  const parts = new RunnableGroup({ logger: log.child({ component: 'lifecycle' }) });
  const readiness = (): Readiness =>
    parts.ready()
      ? { ready: true, reason: `serving ${agents.size} agent(s)` }
      : { ready: false, reason: 'starting or stopping' };
  const health = listener('health', createHealthServer(readiness, metrics), {
    host: o.healthHost ?? '0.0.0.0',
    port: o.healthPort,
  });
  const agentListener = listener('listen', server, o.listen);
  const pgListen = o.pgListen;
  const pg = pgListen
    ? runnableValue(
        'pg-listen',
        () =>
          startGatewayPostgres({
            agents,
            listen: pgListen,
            tls: { certPem: o.tlsCert, keyPem: o.tlsKey },
            log: log.child({ component: 'postgresql' }),
            ...(limiter ? { limiter } : {}),
          }),
        (endpoint) => endpoint.close(),
      )
    : undefined;
  const tlsFiles = o.tlsFiles;
  const reloader = tlsFiles
    ? runnableValue(
        'tls-reload',
        () =>
          watchTlsFiles({
            certFile: tlsFiles.cert,
            keyFile: tlsFiles.key,
            initial: { certPem: o.tlsCert, keyPem: o.tlsKey },
            ...(tlsFiles.pollMs !== undefined ? { pollMs: tlsFiles.pollMs } : {}),
            apply: (pair) => {
              // Both listeners or neither: the PostgreSQL endpoint validates first (it throws).
              if (pg) pg.get().setTls(pair);
              server.setSecureContext({ cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2' });
            },
            log: log.child({ component: 'tls-reload' }),
          }),
        (w) => w.stop(),
      )
    : undefined;
  parts.add(health).add(agentListener);
  if (pg) parts.add(pg);
  if (reloader) parts.add(reloader);
  // Stopped before the listeners close: every agent's audit is shipped, then its stream ends.
  parts.add(stopOnly('agents', () => agents.close()));
  await parts.start();
  const ports: RunningGateway['ports'] = {
    listen: agentListener.get(),
    ...(pg ? { pg: pg.get().port } : {}),
    health: health.get(),
  };
  log.info({ ports, publicUrl: o.publicUrl }, 'gateway listening');
  return {
    ports,
    agents,
    metrics,
    runnables: parts.names(),
    readiness,
    reloadTls: () => reloader?.get().check() ?? Promise.resolve(false),
    close: () => parts.stop(),
  };
}

/** The `gateway` subcommand for cli/warden.ts. */
export function gatewayCommand(): Command {
  return new Command('gateway')
    .description(
      'Run the shared gateway: the broker for agents without a sidecar, on TLS, each request authenticated as its agent',
    )
    .requiredOption(
      '--token-file <path>',
      "the gateway's projected service-account token (audience warden.dev/broker)",
    )
    .requiredOption('--authority-url <url>', 'base URL of the Warden authority')
    .option('--authority-ca <path>', 'PEM CA bundle for the authority certificate')
    .requiredOption('--tls-cert <path>', 'PEM certificate chain of the agent-facing listener')
    .requiredOption('--tls-key <path>', 'PEM private key of the agent-facing listener')
    .requiredOption('--public-url <url>', 'https URL agents reach the gateway at (RFC 9728 resource URLs)')
    .option(
      '--authorization-server <url>',
      'issuer URL MCP clients get tokens from (default: --authority-url)',
    )
    .option('--listen <host:port>', 'agent-facing TLS listener', hostPort, { host: '0.0.0.0', port: 8443 })
    .option(
      '--pg-listen <host:port>',
      "PostgreSQL endpoint (TLS only, the agent's token as the password): postgresql://<host:port>/<provider>",
      hostPort,
    )
    .option('--health-listen <host:port>', 'health listener (/healthz, /readyz, /metrics)', hostPort, {
      host: '0.0.0.0',
      port: 15102,
    })
    .option(
      '--revalidate <seconds>',
      "ask the authority about an agent's token again after this long",
      positive,
      60,
    )
    .option(
      '--stale-after <seconds>',
      'deny everything for an agent whose authority stream is silent this long',
      positive,
    )
    .option(
      '--caller-rate <per-second>',
      'requests per second each caller (agent, or source address before its token is accepted) may send; over it: 429 with Retry-After',
      positive,
    )
    .option(
      '--caller-burst <n>',
      'requests a caller may send at once (default: twice --caller-rate)',
      positive,
    )
    .option(
      '--tls-poll <seconds>',
      'also compare the TLS files this often (file-change events are not delivered on every volume)',
      positive,
      30,
    )
    .option(
      '--audit-spool <dir>',
      "keep each agent's decisions in its own audit spool under this directory until the authority acknowledges them",
    )
    .option('--log-level <level>', 'pino log level', 'info')
    .action(
      async (opts: {
        tokenFile: string;
        authorityUrl: string;
        authorityCa?: string;
        tlsCert: string;
        tlsKey: string;
        publicUrl: string;
        authorizationServer?: string;
        listen: Listen;
        pgListen?: Listen;
        healthListen: Listen;
        revalidate: number;
        staleAfter?: number;
        auditSpool?: string;
        callerRate?: number;
        callerBurst?: number;
        tlsPoll: number;
        logLevel: string;
      }) => {
        if (!opts.publicUrl.startsWith('https://')) {
          throw new InvalidArgumentError(`--public-url must be an https URL, got ${opts.publicUrl}`);
        }
        const log = createBrokerLogger({ level: opts.logLevel });
        const running = await runGateway({
          tokenFile: opts.tokenFile,
          authorityUrl: opts.authorityUrl,
          authorityCa: opts.authorityCa ? await readFile(opts.authorityCa, 'utf8') : undefined,
          tlsCert: await readFile(opts.tlsCert, 'utf8'),
          tlsKey: await readFile(opts.tlsKey, 'utf8'),
          tlsFiles: { cert: opts.tlsCert, key: opts.tlsKey, pollMs: opts.tlsPoll * 1000 },
          callerRateLimit:
            opts.callerRate !== undefined
              ? {
                  perSecond: opts.callerRate,
                  // A bucket holds at least one request (a rate below 0.5/s would otherwise refuse all).
                  burst: opts.callerBurst ?? Math.max(1, opts.callerRate * 2),
                }
              : undefined,
          publicUrl: opts.publicUrl,
          authorizationServer: opts.authorizationServer ?? opts.authorityUrl,
          listen: opts.listen,
          pgListen: opts.pgListen,
          healthPort: opts.healthListen.port,
          healthHost: opts.healthListen.host,
          revalidateMs: opts.revalidate * 1000,
          staleAfterMs: opts.staleAfter !== undefined ? opts.staleAfter * 1000 : undefined,
          auditSpool: opts.auditSpool ? { dir: opts.auditSpool } : undefined,
          metrics: createMetrics({
            processMetrics: true,
            ...(process.env.POD_NAME ? { defaultLabels: { pod: process.env.POD_NAME } } : {}),
          }),
          log,
        });
        stopOnSignals(() => running.close(), log);
      },
    );
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be a positive number: ${v}`);
  return n;
}
