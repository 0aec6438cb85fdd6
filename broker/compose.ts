/**
 * Wires the broker's parts around their three edges — a snapshot source, a credential issuer and
 * an audit sink — so runBroker (authority-backed) and tests (in-process sources) build the very
 * same broker. The access dependencies (decider, credentials, users, audit, clock, metrics) and
 * the in-flight registry are built here once and shared by all three protocol adapters (MCP
 * gateway, HTTP proxy, PostgreSQL endpoint), so the kill switch below reaches every one of them.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { WardenMetrics } from '../observability/metrics.js';
import type { AccessDeps, AccessHooks } from './access.js';
import type { AuditSink } from './audit.js';
import type { AuthorityClient } from './authority-client.js';
import { CredentialCache, type CredentialIssuer, UserCache, type UserResolver } from './credentials.js';
import { Decider, type SnapshotSource } from './decider.js';
import { HttpProxy } from './http-proxy.js';
import { InFlightRegistry } from './in-flight.js';
import { McpGateway } from './mcp-gateway.js';
import type { PgEndpoint } from './pg/endpoint.js';
import { type PgSessionHooks, pgSessionHooks, startPgService } from './pg/service.js';
import { type QuotaLeaser, QuotaLeases } from './quota.js';
import { createBrokerHandler, createBrokerServer, type ListenerMode } from './server.js';
import type { Provider } from './snapshot.js';
import { followSuspension } from './suspension.js';
import type { ToolCatalog } from './tool-catalog.js';
import { SnapshotUserResolver } from './user.js';

export interface ComposeOptions {
  readonly source: SnapshotSource;
  readonly issuer: CredentialIssuer;
  /** Where quota leases come from (the authority client); absent = rules with limits are denied. */
  readonly quota?: QuotaLeaser;
  /**
   * Where every decision of every adapter is recorded (access.ts recordDecision): the answer goes
   * out only once it kept the entry — the AuditShipper over the spool (broker/spool.ts), once for
   * all protocols.
   */
  readonly audit: AuditSink;
  readonly log: Logger;
  /**
   * Verifies forwarded user tokens; default maps claims by the snapshot's trusted issuers (user.ts).
   * The agent itself is authenticated before its broker is reached: loopback in the sidecar, the
   * caller's token in the shared gateway (broker/gateway/), which then uses that agent's broker.
   */
  readonly users?: UserResolver;
  /**
   * Per-request steps plugged into the pipeline for every protocol (access.ts AccessHooks):
   * `admit` before the gate (request-level refusals), `afterAllow` before the credential (budgets,
   * circuit breakers). A Deny from one is audited and answered like any denial.
   */
  readonly hooks?: AccessHooks;
  /** The Warden authority's issuer: a forwarded token from it is a delegation (user.ts). */
  readonly wardenIssuer?: string;
  /** Fallback targets for names the snapshot's CredentialProviders do not cover (the snapshot wins). */
  readonly providers?: readonly Provider[];
  readonly staleAfterMs?: number;
  readonly podName?: string;
  readonly upstreamHeadersTimeoutMs?: number;
  readonly upstreamIdleTimeoutMs?: number;
  readonly upstreamStreamIdleTimeoutMs?: number;
  /** Clocks (tests): monotonic ms for staleness, wall ms for expiry. */
  readonly now?: () => number;
  readonly wallNow?: () => number;
  /** The process's metrics (decisions, request durations); absent = no metrics. */
  readonly metrics?: WardenMetrics;
  /** The tools each upstream advertised (tests pass one with their own clock). */
  readonly toolCatalog?: ToolCatalog;
}

/** Where the PostgreSQL endpoint listens (loopback: the trust model depends on it). */
export interface PgListen {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  readonly startupTimeoutMs?: number;
  readonly upstreamTimeoutMs?: number;
}

export interface ComposedBroker {
  /** The one set of access dependencies every adapter decides with. */
  readonly access: AccessDeps;
  /** Every in-flight MCP exchange, HTTP request and PostgreSQL session; the kill switch aborts it. */
  readonly inFlight: InFlightRegistry;
  readonly decider: Decider;
  readonly credentials: CredentialCache;
  /** Leases of the quota budgets (absent without a lease source). */
  readonly quotas: QuotaLeases | undefined;
  /** Verified user tokens (the PostgreSQL service decides with it too). */
  readonly users: UserCache;
  readonly gateway: McpGateway;
  readonly proxy: HttpProxy;
  /** The combined listener's server (`/mcp/...` and `/http/...`). */
  readonly server: Server;
  /** A further server for a dedicated listener. */
  readonly serverFor: (mode: ListenerMode) => Server;
  /** The combined listener's request handler without a server (the shared gateway calls it per agent). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts the PostgreSQL endpoint on the same access dependencies and in-flight registry. */
  readonly startPostgres: (listen: PgListen) => Promise<PgEndpoint>;
  /**
   * The PostgreSQL session hooks on these access dependencies, without an endpoint: the shared
   * gateway's one endpoint hands each authenticated session to its agent's hooks.
   */
  readonly pgSessions: PgSessionHooks;
  /** Stop following snapshot changes. */
  readonly dispose: () => void;
}

export function composeBroker(o: ComposeOptions): ComposedBroker {
  const wallNow = o.wallNow ?? Date.now;
  const decider = new Decider(o.source, {
    ...(o.now ? { now: o.now } : {}),
    wallClock: () => new Date(wallNow()),
    ...(o.staleAfterMs !== undefined ? { staleAfterMs: o.staleAfterMs } : {}),
    ...(o.providers ? { providers: o.providers } : {}),
  });
  const credentials = new CredentialCache(o.issuer, wallNow);
  const users = new UserCache(
    o.users ?? new SnapshotUserResolver(() => o.source.snapshot, wallNow, o.wardenIssuer),
    wallNow,
  );
  const quotas = o.quota ? new QuotaLeases(o.quota, o.now) : undefined;
  // The one in-flight registry: the pipeline registers every allowed request of every adapter in
  // it (AccessOutcome.track), the kill switch below ends them all.
  const inFlight = new InFlightRegistry();
  const access: AccessDeps = {
    decider,
    credentials,
    users,
    audit: o.audit,
    podName: o.podName,
    wallClock: () => new Date(wallNow()),
    metrics: o.metrics,
    log: o.log.child({ component: 'audit' }),
    quotas,
    inFlight,
    hooks: o.hooks,
  };
  const timeouts = {
    ...(o.upstreamHeadersTimeoutMs !== undefined ? { headersTimeoutMs: o.upstreamHeadersTimeoutMs } : {}),
    ...(o.upstreamIdleTimeoutMs !== undefined ? { idleTimeoutMs: o.upstreamIdleTimeoutMs } : {}),
  };
  const gateway = new McpGateway({
    access,
    log: o.log,
    ...timeouts,
    ...(o.upstreamStreamIdleTimeoutMs !== undefined
      ? { streamIdleTimeoutMs: o.upstreamStreamIdleTimeoutMs }
      : {}),
    ...(o.toolCatalog ? { catalog: o.toolCatalog } : {}),
  });
  const proxy = new HttpProxy({ access, log: o.log, ...timeouts });
  const serverFor = (mode: ListenerMode): Server => createBrokerServer({ gateway, proxy, log: o.log, mode });
  const server = serverFor('combined');
  const handler = createBrokerHandler({ gateway, proxy, log: o.log, mode: 'combined' });
  const pgSessions = pgSessionHooks({ access, log: o.log.child({ component: 'postgresql' }) });
  const startPostgres = (l: PgListen): Promise<PgEndpoint> =>
    startPgService({
      access,
      host: l.host,
      port: l.port,
      log: o.log.child({ component: 'postgresql' }),
      ...(l.startupTimeoutMs !== undefined ? { startupTimeoutMs: l.startupTimeoutMs } : {}),
      ...(l.upstreamTimeoutMs !== undefined ? { upstreamTimeoutMs: l.upstreamTimeoutMs } : {}),
    });

  // Kill switch and policy loss: one subscription for all three adapters.
  const unsubscribe = followSuspension({
    source: o.source,
    decider,
    credentials,
    users,
    inFlight,
    log: o.log,
  });
  return {
    access,
    inFlight,
    decider,
    credentials,
    quotas,
    users,
    gateway,
    proxy,
    server,
    serverFor,
    handler,
    startPostgres,
    pgSessions,
    dispose: unsubscribe,
  };
}

/**
 * The broker on the authority's edges: the client is the snapshot source, the credential issuer
 * and the quota lease source. runBroker (the sidecar) and the shared gateway (one per agent) build
 * their brokers here, so neither can miss an edge the other has.
 */
export function composeWithAuthority(
  client: AuthorityClient,
  o: Omit<ComposeOptions, 'source' | 'issuer' | 'quota'>,
): ComposedBroker {
  return composeBroker({
    ...o,
    source: client,
    issuer: client,
    quota: client,
    wardenIssuer: o.wardenIssuer ?? client.issuer,
  });
}
