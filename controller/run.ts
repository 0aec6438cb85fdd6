/**
 * `warden controller`: one process serving the operator (reconcilers, leader-elected),
 * the mutating webhook and the authority (every replica serves both), plus the audit
 * writer and health endpoints. This module is a list of registrations on one Manager
 * (kube/manager.ts): it owns the API client, the shared cache all parts read, the status
 * writers, start/stop order, readiness and leader election.
 */
import { createServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { JsonLineExporter } from '../audit/export.js';
import { recordForged } from '../audit/forged-status.js';
import { AUDIT_KEY_ROTATION, AUDIT_SIGNING_KEYS_SECRET, PublishedAuditKeys } from '../audit/keyset.js';
import { TrailAuditSink } from '../audit/sink.js';
import { AuditWriter } from '../audit/writer.js';
import { CircuitBreaker } from '../authority/circuit-breaker.js';
import { DecisionStats } from '../authority/decision-stats.js';
import { httpsFetch } from '../authority/fetch.js';
import { type Authority, createAuthority } from '../authority/index.js';
import { IssuanceStats } from '../authority/issuance-stats.js';
import { SecretKeyStore } from '../authority/keystore.js';
import { PostgresMinter } from '../authority/mint/postgresql.js';
import { kubeSecretsReader } from '../authority/mint/secrets.js';
import { CredentialRevoker, IssuedCredentials } from '../authority/revocation.js';
import { ToolUsageStats } from '../authority/tool-usage-stats.js';
import type { AgentIdentity } from '../core/api/index.js';
import type { BatchLimits } from '../core/audit/batcher.js';
import { type RetentionPolicy, retentionEnabled } from '../core/audit/retention.js';
import {
  API_VERSION,
  AUDIT_FIELD_MANAGER,
  CIRCUIT_BREAKER_FIELD_MANAGER,
  RETENTION_FIELD_MANAGER,
  REVOCATION_FIELD_MANAGER,
  STATS_FIELD_MANAGER,
  USAGE_FIELD_MANAGER,
} from '../core/constants.js';
import type { Controller } from '../kube/controller.js';
import { KubeConfigApi } from '../kube/kube.js';
import { Manager } from '../kube/manager.js';
import { AGENT_IDENTITIES } from '../kube/resources.js';
import { runnableValue, type ValueRunnable } from '../lifecycle/runnables.js';
import { controllerMetrics, createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { metricsHandler } from '../observability/server.js';
import { createToolCallMetrics } from '../observability/tool-call-metrics.js';
import { addController, addOperator } from '../operator/main.js';
import { auditRetentionController } from '../operator/reconcilers/audit-retention.js';
import { postgresSweepController } from '../operator/reconcilers/postgres-sweep.js';
import { revocationController } from '../operator/reconcilers/revocation.js';
import { recorderEvents } from '../webhook/events.js';
import { DEFAULT_BROKER_CONFIG, type RunningWebhook, startWebhook } from '../webhook/index.js';
import { apiLookup, cachedLookup } from '../webhook/lookup.js';
import type { TlsNames } from '../webhook/tls.js';
import type { BrokerConfig } from '../webhook/types.js';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Warden's own namespace: Lease, TLS and signing-key Secrets. */
  namespace: string;
  /** Watch only this namespace (default: all). */
  watchNamespace?: string;
  identity: string;
  leaderElection: boolean;
  host: string;
  webhookPort: number;
  authorityPort: number;
  healthPort: number;
  /** Names the webhook/authority certificate is valid for. */
  tlsNames: TlsNames;
  /** The MutatingWebhookConfiguration whose caBundle is kept in step; null leaves it alone. */
  webhookConfigurationName: string | null;
  /** How brokers and targets reach the authority. */
  issuer: string;
  /** Serve the authority over TLS with the webhook's certificate (production) or plain HTTP (local dev). */
  authorityTls: boolean;
  broker: Pick<BrokerConfig, 'image'> &
    Partial<Pick<BrokerConfig, 'imagePullPolicy' | 'resources' | 'auditSpoolMaxBytes'>>;
  /**
   * Broker images accepted at attestation besides `broker.image` (e.g. the previous one while an
   * upgrade rolls through agent pods). A pod whose broker runs any other image gets no session.
   */
  trustedBrokerImages?: readonly string[];
  /**
   * The shared gateway's service accounts (`<namespace>/<name>`): their projected tokens may hold
   * sessions for agents without a sidecar (chart: gateway.enabled). Empty: no gateway.
   */
  gatewayServiceAccounts?: readonly string[];
  /** Extra CA (PEM) trusted when fetching identity providers' discovery and JWKS (a private IdP). */
  idpCaPem?: string;
  /** Serve the certificate mounted here (cert-manager) instead of the self-managed Secret. */
  tlsCertDir?: string;
  /** Secret holding the self-managed serving certificate. */
  tlsSecret: string;
  version: string;
  audit: BatchLimits;
  /** AuditRecord retention by age, records per agent and per namespace; no limit keeps them forever. */
  auditRetention?: RetentionPolicy;
  /** Also send every audit line as an OTLP log record to this OTLP/HTTP logs endpoint. */
  auditOtlpEndpoint?: string;
  /**
   * Where the JSON audit lines go. The `warden controller` command passes stdout (the documented
   * export, docs/audit-export.md); an embedding that passes nothing exports no lines, so tests and
   * the demo running controllers in-process do not bury their own output under them.
   */
  auditLineWriter?: ((text: string) => void) | undefined;
  /** Export warden_tool_calls_total per agent and tool (bounded; docs/metrics.md). Default off. */
  toolCallMetrics?: boolean;
  /** How often expired temporary PostgreSQL roles are dropped (default 60 s). */
  postgresSweepIntervalMs?: number;
}

export interface RunningController {
  webhookPort: number;
  authorityPort: number;
  healthPort: number;
  /** The process's manager: its cache, status writers, runnables and leadership. */
  manager: Manager;
  /** The operator's reconcilers (leader-only runnables). */
  controllers: readonly Controller[];
  authority: Authority;
  webhook: RunningWebhook;
  auditWriter: AuditWriter;
  /** The audit signing keys as published in the ConfigMap warden-audit-keys. */
  auditKeys: PublishedAuditKeys;
  /** Credentials this replica issued that the kill switch can revoke upstream (RFC 7009). */
  issuedCredentials: IssuedCredentials;
  /** The process's metrics registry, served on the health port at /metrics. */
  metrics: WardenMetrics;
  stop(): Promise<void>;
}

/** Liveness on /healthz, readiness (the manager's) on /readyz, metrics on /metrics. */
function healthServer(
  metrics: WardenMetrics,
  ready: () => boolean,
  host: string,
  port: number,
): ValueRunnable<{ server: Server; port: number }> {
  return runnableValue(
    'health',
    async () => {
      const serveMetrics = metricsHandler(metrics.registry);
      const server = createServer((req, res) => {
        if (serveMetrics(req, res)) return;
        if (req.url === '/healthz' || (req.url === '/readyz' && ready())) {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        } else if (req.url === '/readyz') {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: starting or stopping\n');
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        }
      });
      const bound = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      });
      return { server, port: bound };
    },
    ({ server }) => new Promise<void>((r) => server.close(() => r())),
  );
}

export async function runController(o: ControllerOptions): Promise<RunningController> {
  const log = o.log;
  const mgr = new Manager({
    api: new KubeConfigApi(o.kubeConfig),
    logger: log,
    identity: o.identity,
    namespace: o.watchNamespace,
    leaderElection: o.leaderElection ? { namespace: o.namespace } : false,
  });
  const { api, recorder } = mgr;
  const metrics = createMetrics({ processMetrics: true, defaultLabels: { pod: o.identity } });
  const reconcileMetrics = controllerMetrics(metrics);
  const agents = mgr.cache.informer<AgentIdentity>(AGENT_IDENTITIES);

  // Status counters (decisions, attestation, dropped audit entries) have one writer: DecisionStats.
  const decisionStats = new DecisionStats({
    api,
    status: mgr.statusWriter(STATS_FIELD_MANAGER),
    log: log.child({ component: 'decision-stats' }),
    recorder,
  });
  // Audit records are signed with their own key ring (docs/adr/0012-audit-signing.md), published
  // before any record is signed with it.
  const auditKeyStore = new SecretKeyStore({
    api,
    namespace: o.namespace,
    secretName: AUDIT_SIGNING_KEYS_SECRET,
    policy: AUDIT_KEY_ROTATION,
    log: log.child({ component: 'audit-keys' }),
  });
  const auditKeys = new PublishedAuditKeys({
    api,
    namespace: o.namespace,
    source: auditKeyStore,
    log: log.child({ component: 'audit-keys' }),
  });
  const agentRef = (namespace: string, agent: string) => ({
    apiVersion: API_VERSION,
    kind: 'AgentIdentity',
    metadata: { name: agent, namespace },
  });
  const auditWriter = new AuditWriter({
    api,
    keys: auditKeys,
    metrics,
    // A record without the controller's signature where it was about to write: skipped, and told
    // on the agent (Event + status.audit.forged), never chained onto.
    onForged: (namespace, agent, record, reason) => {
      void recordForged(api, mgr.statusWriter(AUDIT_FIELD_MANAGER), {
        namespace,
        agent,
        record,
        reason,
        time: new Date(),
      }).catch((err: unknown) =>
        log.warn(
          { namespace, agent, record, err: String(err) },
          'could not record a forged AuditRecord in status',
        ),
      );
      recorder.record(agentRef(namespace, agent), {
        type: 'Warning',
        reason: 'AuditRecordForged',
        action: 'Audit',
        note: `AuditRecord ${record} was not written by the Warden controller (${reason}); the chain skips it. Inspect who created it: kubectl warden audit --verify`.slice(
          0,
          1024,
        ),
      });
    },
    log: log.child({ component: 'audit' }),
    limits: o.audit,
    // What had to be dropped is told on the agent, not only in the logs: a count in
    // status.audit.dropped and an Event.
    onDropped: (namespace, agent, count) => {
      decisionStats.dropped(namespace, agent, count);
      return recorder.record(agentRef(namespace, agent), {
        type: 'Warning',
        reason: 'AuditEntriesDropped',
        action: 'Audit',
        // A stable note, so repeated drops aggregate into one Event series.
        note: 'audit buffer full (API server unreachable for long?): oldest audit entries of this agent were dropped; the controller log has the counts',
      });
    },
  });
  // Every audit event leaves as one JSON line on stdout (docs/audit-export.md), and as OTLP logs
  // when a collector is configured.
  // The OpenTelemetry SDK is loaded only when used.
  const otlp = o.auditOtlpEndpoint
    ? new (await import('../audit/otlp.js')).OtlpAuditExporter({
        endpoint: o.auditOtlpEndpoint,
        version: o.version,
        instance: o.identity,
      })
    : undefined;
  const exporters = [
    ...(o.auditLineWriter ? [new JsonLineExporter(o.auditLineWriter)] : []),
    ...(otlp ? [otlp] : []),
  ];
  const auditSink = new TrailAuditSink(auditWriter, exporters);
  // spec.circuitBreaker: counts the brokers' decisions as their audit batches arrive.
  const circuitBreaker = new CircuitBreaker({
    agent: (namespace, name) => agents.get(name, namespace),
    api,
    status: mgr.statusWriter(CIRCUIT_BREAKER_FIELD_MANAGER),
    log: log.child({ component: 'circuit-breaker' }),
    recorder,
    audit: auditSink,
    onTrip: (threshold, action) => metrics.circuitBreakerTrip(threshold, action),
  });
  // Revives as the cache sees them (ms), next to managedFields' whole seconds.
  agents.on({ update: (old, agent) => circuitBreaker.agentUpdated(old, agent) });
  // status.usage: calls per MCP tool (top 10 + other), its own writer and field manager.
  const toolUsage = new ToolUsageStats({
    api,
    status: mgr.statusWriter(USAGE_FIELD_MANAGER),
    log: log.child({ component: 'tool-usage' }),
    ...(o.toolCallMetrics ? { metrics: createToolCallMetrics(metrics.registry) } : {}),
  });
  const issuanceStats = new IssuanceStats({
    api,
    status: mgr.statusWriter(STATS_FIELD_MANAGER),
    log: log.child({ component: 'issuance-stats' }),
  });
  const issuedCredentials = new IssuedCredentials();
  const postgres = new PostgresMinter();
  const secrets = kubeSecretsReader(api);
  const revoker = new CredentialRevoker({ postgres, secrets, issued: issuedCredentials, metrics });

  const health = healthServer(metrics, () => mgr.ready(), o.host, o.healthPort);
  const webhook = runnableValue(
    'webhook',
    () =>
      startWebhook({
        api,
        namespace: o.namespace,
        configurationName: o.webhookConfigurationName,
        names: o.tlsNames,
        secretName: o.tlsSecret,
        ...(o.tlsCertDir ? { certDir: o.tlsCertDir } : {}),
        broker: { ...DEFAULT_BROKER_CONFIG, ...o.broker, version: o.version, authorityUrl: o.issuer },
        port: o.webhookPort,
        host: o.host,
        logger: log.child({ component: 'webhook' }),
        events: recorderEvents(recorder),
        // From the shared cache; a GET while it syncs or on a miss (an AgentIdentity created a
        // moment before its pod).
        lookup: cachedLookup(agents, apiLookup(api)),
        metrics,
        // The authority serves the webhook's certificate: brokers get its CA bundle as a file.
        injectAuthorityCa: o.authorityTls,
      }),
    (w) => w.stop(),
  );
  const authority = runnableValue(
    'authority',
    async () => {
      const material = webhook.get().material();
      const a = await createAuthority({
        kube: { api, cache: mgr.cache },
        namespace: o.namespace,
        issuer: o.issuer,
        // Only pods whose broker runs one of these attest; allowedImages does not apply to that broker.
        trustedBrokerImages: [o.broker.image, ...(o.trustedBrokerImages ?? [])],
        gatewayServiceAccounts: (o.gatewayServiceAccounts ?? []).map((nn) => {
          const [ns, name] = nn.split('/');
          return `system:serviceaccount:${ns}:${name}`;
        }),
        log: log.child({ component: 'authority' }),
        audit: auditSink,
        // The one dedupe of a batch shipped again, by entry id: the trail admits what it meets for
        // the first time (written and exported once); the counters are given only that.
        brokerAuditTrail: auditSink,
        brokerAuditSinks: [decisionStats, circuitBreaker, toolUsage],
        onAttested: (at) => decisionStats.attested(at),
        onIssued: (i) => issuanceStats.issued(i),
        issuedCredentials,
        metrics,
        ...(o.idpCaPem ? { idpFetch: httpsFetch({ ca: o.idpCaPem }) } : {}),
        ...(o.watchNamespace ? { watchNamespace: o.watchNamespace } : {}),
        ...(o.authorityTls ? { tls: { cert: material.certPem, key: material.keyPem } } : {}),
      });
      const port = await a.listen(o.authorityPort, o.host);
      // Follow the webhook's certificate rotation, or the authority would serve an expired one.
      if (o.authorityTls)
        webhook.get().onCertificateChange((m) => {
          (a.server as HttpsServer).setSecureContext({ cert: m.certPem, key: m.keyPem });
        });
      return { authority: a, port };
    },
    ({ authority: a }) => a.close(),
  );

  // Every replica: stopped in reverse (the authority before the audit writer it writes to).
  mgr
    .add(health)
    .add({ name: 'postgres-minter', start: () => {}, stop: () => postgres.close() })
    .add({ name: 'audit-signing-keys', start: () => auditKeyStore.start(), stop: () => auditKeyStore.stop() })
    .add({ name: 'audit-keys-published', start: () => auditKeys.start(), stop: () => auditKeys.stop() })
    .add({ name: 'audit-export', start: () => {}, stop: async () => otlp?.shutdown() })
    .add({ name: 'audit-writer', start: () => auditWriter.start(), stop: () => auditWriter.stop() })
    .add({ name: 'decision-stats', start: () => decisionStats.start(), stop: () => decisionStats.stop() })
    .add({ name: 'issuance-stats', start: () => issuanceStats.start(), stop: () => issuanceStats.stop() })
    .add({ name: 'tool-usage', start: () => toolUsage.start(), stop: () => toolUsage.stop() })
    .add(webhook)
    .add(authority);
  // The leader only: the reconcilers, on the shared cache.
  const { controllers, shared } = addOperator(mgr, { metrics: reconcileMetrics });
  addController(
    mgr,
    revocationController({
      ...shared,
      status: mgr.statusWriter(REVOCATION_FIELD_MANAGER),
      revoker,
      audit: auditSink,
      metrics: reconcileMetrics,
    }),
  );
  addController(
    mgr,
    postgresSweepController({
      ...shared,
      sweeper: postgres,
      secrets,
      metrics: reconcileMetrics,
      ...(o.postgresSweepIntervalMs !== undefined ? { intervalMs: o.postgresSweepIntervalMs } : {}),
    }),
  );
  if (o.auditRetention && retentionEnabled(o.auditRetention))
    addController(
      mgr,
      auditRetentionController({
        ...shared,
        status: mgr.statusWriter(RETENTION_FIELD_MANAGER),
        policy: o.auditRetention,
        metrics: reconcileMetrics,
      }),
    );

  await mgr.start();
  log.info(
    {
      webhookPort: webhook.get().port,
      authorityPort: authority.get().port,
      healthPort: health.get().port,
      issuer: o.issuer,
    },
    'warden controller serving',
  );
  return {
    webhookPort: webhook.get().port,
    authorityPort: authority.get().port,
    healthPort: health.get().port,
    manager: mgr,
    controllers,
    authority: authority.get().authority,
    webhook: webhook.get(),
    auditWriter,
    auditKeys,
    issuedCredentials,
    metrics,
    async stop() {
      await mgr.stop();
      log.info({ audit: auditWriter.stats() }, 'warden controller stopped');
    },
  };
}
