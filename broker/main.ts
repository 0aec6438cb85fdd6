/**
 * `warden broker`: the sidecar next to an agent. runBroker() wires the authority client (attestation,
 * policy stream, credentials, audit) to the gateway/proxy (composeBroker) and registers the parts
 * in order: the listeners (agent-facing ones on loopback only, the health listener where the
 * kubelet can probe it), the audit shipper, the PostgreSQL endpoint, the kill-switch subscription
 * and the authority client.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import type { Logger } from 'pino';
import {
  RunnableGroup,
  runnableValue,
  stopOnly,
  stopOnSignals,
  type ValueRunnable,
} from '../lifecycle/runnables.js';
import { createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { AuditShipper } from './audit.js';
import { AuthorityClient } from './authority-client.js';
import { type ComposedBroker, composeWithAuthority } from './compose.js';
import { DEFAULT_STALE_AFTER_MS } from './constants.js';
import { createBrokerLogger } from './log.js';
import { createHealthServer, type Readiness } from './server.js';
import { type Provider, ProviderSchema } from './snapshot.js';
import { AuditSpool, SPOOL_DEFAULTS } from './spool.js';

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export interface RunBrokerOptions {
  readonly tokenFile: string;
  readonly authorityUrl: string;
  /**
   * The authority's issuer, when it is not authorityUrl (tests reaching it by address): forwarded
   * tokens it issued are read as delegation chains. In a cluster the authority URL is the issuer.
   */
  readonly authorityIssuer?: string | undefined;
  /** PEM text (not a path) of the CA that signed the authority's certificate. */
  readonly authorityCa?: string | undefined;
  /** Combined agent listener (`/mcp/<provider>` and `/http/<provider>/<path>`). Loopback only. */
  readonly listen: Listen;
  /** Dedicated MCP listener (`/<provider>`), as the webhook configures. Loopback only. */
  readonly mcpListen?: Listen | undefined;
  /** Dedicated HTTP listener (`/<provider>/<path>`). Loopback only. */
  readonly httpListen?: Listen | undefined;
  /** PostgreSQL endpoint (`postgresql://<host:port>/<provider>`, no password). Loopback only. */
  readonly pgListen?: Listen | undefined;
  /** Health listener (/healthz, /readyz); default 0.0.0.0 so the kubelet can probe the pod IP. */
  readonly healthPort: number;
  readonly healthHost?: string | undefined;
  /** Providers known from configuration: used only for targets the policy snapshot does not name. */
  readonly providers?: readonly Provider[] | undefined;
  readonly staleAfterMs?: number | undefined;
  readonly podName?: string | undefined;
  readonly log?: Logger | undefined;
  readonly upstreamHeadersTimeoutMs?: number | undefined;
  /** The process's metrics, served at /metrics on the health listener (default: a fresh registry). */
  readonly metrics?: WardenMetrics | undefined;
  /**
   * The audit spool (broker/spool.ts): the directory (the injected emptyDir) and its bound. Absent =
   * entries wait in memory, and a crash loses what was not acknowledged yet.
   */
  readonly auditSpool?: { readonly dir: string; readonly maxBytes?: number | undefined } | undefined;
}

export interface RunningBroker {
  readonly ports: { listen: number; mcp?: number; http?: number; pg?: number; health: number };
  readonly client: AuthorityClient;
  readonly broker: ComposedBroker;
  readonly metrics: WardenMetrics;
  /** The process's parts in start order (stopped in reverse). */
  readonly runnables: readonly string[];
  readiness(): Readiness;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function assertLoopback(what: string, l: Listen): void {
  if (!LOOPBACK.has(l.host)) {
    throw new Error(
      `${what}: ${l.host} is not a loopback address; the broker serves the agent on 127.0.0.1 only, so other pods cannot act with this agent's identity`,
    );
  }
}

/** A server as a runnable: started = listening on `l`, stopped = its connections cut and closed. */
export function listener(name: string, server: Server | HttpsServer, l: Listen): ValueRunnable<number> {
  return runnableValue(
    name,
    () =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
}

/**
 * The broker process as a list of parts (lifecycle/runnables.ts, the same ordering code as the
 * controller's Manager): started in this order, stopped in reverse; a part that fails to start
 * stops the ones before it and runBroker rejects naming it. /readyz is 200 only while every part
 * runs, the broker attested and its snapshot is fresh.
 */
export async function runBroker(o: RunBrokerOptions): Promise<RunningBroker> {
  assertLoopback('listen', o.listen);
  if (o.mcpListen) assertLoopback('mcp-listen', o.mcpListen);
  if (o.httpListen) assertLoopback('http-listen', o.httpListen);
  if (o.pgListen) assertLoopback('pg-listen', o.pgListen);
  const log = o.log ?? createBrokerLogger();
  const client = new AuthorityClient({
    authorityUrl: o.authorityUrl,
    authorityCa: o.authorityCa,
    tokenFile: o.tokenFile,
    log: log.child({ component: 'authority-client' }),
    streamIdleMs: Math.max(20_000, (o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS) * 1.5),
  });
  const spool = o.auditSpool
    ? await AuditSpool.open({
        dir: o.auditSpool.dir,
        maxBytes: o.auditSpool.maxBytes,
        log: log.child({ component: 'audit-spool' }),
      })
    : undefined;
  const audit = new AuditShipper({
    transport: client,
    log: log.child({ component: 'audit' }),
    ...(spool ? { queue: spool } : {}),
  });
  const metrics = o.metrics ?? createMetrics(o.podName ? { defaultLabels: { pod: o.podName } } : {});
  const broker = composeWithAuthority(client, {
    audit,
    log,
    providers: o.providers,
    staleAfterMs: o.staleAfterMs,
    podName: o.podName,
    upstreamHeadersTimeoutMs: o.upstreamHeadersTimeoutMs,
    metrics,
    ...(o.authorityIssuer ? { wardenIssuer: o.authorityIssuer } : {}),
  });
  const parts = new RunnableGroup({ logger: log.child({ component: 'lifecycle' }) });
  const readiness = (): Readiness => {
    if (!parts.ready()) return { ready: false, reason: 'starting or stopping' };
    if (!client.attested) return { ready: false, reason: 'not attested with the Warden authority yet' };
    const cur = broker.decider.current();
    if (!cur.ok) return { ready: false, reason: `${cur.decision.reason}: ${cur.decision.message}` };
    return { ready: true, reason: `snapshot ${cur.snapshot.version}` };
  };

  const health = listener('health', createHealthServer(readiness, metrics), {
    host: o.healthHost ?? '0.0.0.0',
    port: o.healthPort,
  });
  const agent = listener('listen', broker.server, o.listen);
  const mcp = o.mcpListen ? listener('mcp-listen', broker.serverFor('mcp'), o.mcpListen) : undefined;
  const http = o.httpListen ? listener('http-listen', broker.serverFor('http'), o.httpListen) : undefined;
  // Same access dependencies and in-flight registry as MCP and HTTP (composeBroker's kill switch).
  const pgListen = o.pgListen;
  const pg = pgListen
    ? runnableValue(
        'pg-listen',
        () => broker.startPostgres(pgListen),
        (endpoint) => endpoint.close(),
      )
    : undefined;

  parts.add(health).add(agent);
  if (mcp) parts.add(mcp);
  if (http) parts.add(http);
  // Closed after the shipper (its entries stay on disk for the next process).
  if (spool) parts.add(stopOnly('audit-spool', () => spool.close()));
  // Stopped after the PostgreSQL endpoint and before the listeners: ships what is queued.
  parts.add(stopOnly('audit-shipper', () => audit.close()));
  if (pg) parts.add(pg);
  parts
    // Follows the snapshot for the kill switch from composeBroker on; stopped before the endpoints.
    .add(stopOnly('suspension', () => broker.dispose()))
    // Attestation runs in the background: /readyz stays 503 until it and a snapshot succeed.
    .add({
      name: 'authority-client',
      start: () => {
        void client.start();
      },
      stop: () => client.stop(),
    });
  await parts.start();

  const ports: RunningBroker['ports'] = { listen: agent.get(), health: health.get() };
  if (mcp) ports.mcp = mcp.get();
  if (http) ports.http = http.get();
  if (pg) ports.pg = pg.get().port;
  log.info({ ports, authority: new URL(o.authorityUrl).origin }, 'broker listening');
  return {
    ports,
    client,
    broker,
    metrics,
    runnables: parts.names(),
    readiness,
    close: () => parts.stop(),
  };
}

export function hostPort(value: string): Listen {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError(`expected host:port, got ${value}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** `--provider name=url[,protocol[,header]]`, repeatable. */
function providerArg(value: string, previous: Provider[] = []): Provider[] {
  const m = /^([^=]+)=([^,]+)(?:,(MCP|HTTP))?(?:,([A-Za-z0-9-]+))?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected name=url[,MCP|HTTP[,header]], got ${value}`);
  const r = ProviderSchema.safeParse({
    name: m[1],
    url: m[2],
    protocol: m[3] ?? 'MCP',
    inject: { header: m[4] ?? 'Authorization', format: 'Bearer {token}' },
  });
  if (!r.success)
    throw new InvalidArgumentError(`--provider ${value}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return [...previous, r.data];
}

/** The `broker` subcommand for cli/warden.ts: `program.addCommand(brokerCommand())`. */
export function brokerCommand(): Command {
  return new Command('broker')
    .description('Run the broker sidecar: attest, follow policy, and serve the agent on loopback')
    .requiredOption('--token-file <path>', 'projected service-account token (audience warden.dev/broker)')
    .requiredOption('--authority-url <url>', 'base URL of the Warden authority')
    .option('--authority-ca <path>', 'PEM CA bundle for the authority certificate')
    .option(
      '--listen <host:port>',
      'combined agent listener (/mcp/<provider>, /http/<provider>/<path>)',
      hostPort,
      {
        host: '127.0.0.1',
        port: 15099,
      },
    )
    .option('--mcp-listen <host:port>', 'dedicated MCP listener (/<provider>)', hostPort)
    .option('--http-listen <host:port>', 'dedicated HTTP listener (/<provider>/<path>)', hostPort)
    .option(
      '--pg-listen <host:port>',
      'PostgreSQL endpoint: the agent connects to postgresql://<host:port>/<provider> without a password',
      hostPort,
    )
    .option('--health-listen <host:port>', 'health listener (/healthz, /readyz)', hostPort, {
      host: '0.0.0.0',
      port: 15102,
    })
    .option(
      '--provider <name=url[,protocol[,header]]>',
      'a target not (yet) in the policy snapshot; snapshot CredentialProviders win by name (repeatable)',
      providerArg,
    )
    .option('--stale-after <seconds>', 'deny everything when the authority is silent this long', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be a positive number: ${v}`);
      return n;
    })
    .option(
      '--audit-spool <dir>',
      'keep every decision in an audit spool file in this directory, fsynced before the answer, until the authority acknowledges it persisted',
    )
    .option(
      '--audit-spool-max-bytes <bytes>',
      `bound of the audit spool; when full, audit mode Required agents' calls are denied (default ${SPOOL_DEFAULTS.maxBytes})`,
      (v) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < 65_536) {
          throw new InvalidArgumentError(`must be a whole number of bytes, at least 65536: ${v}`);
        }
        return n;
      },
    )
    .option('--log-level <level>', 'pino log level', 'info')
    .action(
      async (opts: {
        tokenFile: string;
        authorityUrl: string;
        authorityCa?: string;
        listen: Listen;
        mcpListen?: Listen;
        httpListen?: Listen;
        pgListen?: Listen;
        healthListen: Listen;
        provider?: Provider[];
        staleAfter?: number;
        auditSpool?: string;
        auditSpoolMaxBytes?: number;
        logLevel: string;
      }) => {
        const log = createBrokerLogger({ level: opts.logLevel });
        const running = await runBroker({
          tokenFile: opts.tokenFile,
          authorityUrl: opts.authorityUrl,
          authorityCa: opts.authorityCa ? readFileSync(opts.authorityCa, 'utf8') : undefined,
          listen: opts.listen,
          mcpListen: opts.mcpListen,
          httpListen: opts.httpListen,
          pgListen: opts.pgListen,
          healthPort: opts.healthListen.port,
          healthHost: opts.healthListen.host,
          providers: opts.provider,
          staleAfterMs: opts.staleAfter !== undefined ? opts.staleAfter * 1000 : undefined,
          podName: process.env.POD_NAME,
          auditSpool: opts.auditSpool
            ? { dir: opts.auditSpool, maxBytes: opts.auditSpoolMaxBytes }
            : undefined,
          // One registry per process, so the Node.js process metrics (RSS, event-loop lag) are safe to add.
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
