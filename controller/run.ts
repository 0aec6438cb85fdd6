/**
 * `warden controller`: one process serving the operator (reconcilers, leader-elected),
 * the mutating webhook and the authority (every replica serves both), plus the audit
 * writer and health endpoints. This module only wires parts built elsewhere.
 */
import { createServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { AUDIT_KEY_ROTATION, AUDIT_SIGNING_KEYS_SECRET, PublishedAuditKeys } from '../audit/keyset.js';
import { TrailAuditSink } from '../audit/sink.js';
import { AUDIT_FIELD_MANAGER, AuditWriter } from '../audit/writer.js';
import { DecisionStats } from '../authority/decision-stats.js';
import { httpsFetch } from '../authority/fetch.js';
import { type Authority, createAuthority } from '../authority/index.js';
import { IssuanceStats } from '../authority/issuance-stats.js';
import { SecretKeyStore } from '../authority/keystore.js';
import { PostgresMinter } from '../authority/mint/postgresql.js';
import { kubeSecretsReader } from '../authority/mint/secrets.js';
import { CredentialRevoker, IssuedCredentials } from '../authority/revocation.js';
import type { BatchLimits } from '../core/audit/batcher.js';
import { API_VERSION } from '../core/constants.js';
import { ApiEventRecorder } from '../kube/events.js';
import { KubeConfigApi, resourcePath } from '../kube/kube.js';
import { AGENT_IDENTITIES } from '../kube/resources.js';
import { controllerMetrics, createMetrics, type WardenMetrics } from '../observability/metrics.js';
import { metricsHandler } from '../observability/server.js';
import { type RunningOperator, runOperator } from '../operator/main.js';
import { auditRetentionController } from '../operator/reconcilers/audit-retention.js';
import { postgresSweepController } from '../operator/reconcilers/postgres-sweep.js';
import { revocationController } from '../operator/reconcilers/revocation.js';
import type { AgentIdentityLookup } from '../webhook/admission.js';
import { recorderEvents } from '../webhook/events.js';
import { DEFAULT_BROKER_CONFIG, type RunningWebhook, startWebhook } from '../webhook/index.js';
import { type AgentIdentityCache, apiLookup, cachedLookup } from '../webhook/lookup.js';
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
  broker: Pick<BrokerConfig, 'image'> & Partial<Pick<BrokerConfig, 'imagePullPolicy' | 'resources'>>;
  /**
   * Broker images accepted at attestation besides `broker.image` (e.g. the previous one while an
   * upgrade rolls through agent pods). A pod whose broker runs any other image gets no session.
   */
  trustedBrokerImages?: readonly string[];
  /** Extra CA (PEM) trusted when fetching identity providers' discovery and JWKS (a private IdP). */
  idpCaPem?: string;
  /** Serve the certificate mounted here (cert-manager) instead of the self-managed Secret. */
  tlsCertDir?: string;
  /** Secret holding the self-managed serving certificate. */
  tlsSecret: string;
  version: string;
  audit: BatchLimits;
  /** Delete AuditRecords older than this (ms); undefined keeps them forever. */
  auditRetentionMs?: number;
  /** How often expired temporary PostgreSQL roles are dropped (default 60 s). */
  postgresSweepIntervalMs?: number;
}

export interface RunningController {
  webhookPort: number;
  authorityPort: number;
  healthPort: number;
  operator: RunningOperator;
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

/** Adds to status.audit.dropped of an AgentIdentity (through /status). */
async function addDropped(
  api: KubeConfigApi,
  namespace: string,
  agent: string,
  count: number,
): Promise<void> {
  const path = resourcePath(AGENT_IDENTITIES, namespace, agent);
  const current = await api.request<{ status?: { audit?: { dropped?: number } } }>('GET', path);
  await api.request('PATCH', `${path}/status`, {
    body: { status: { audit: { dropped: (current.status?.audit?.dropped ?? 0) + count } } },
    contentType: 'application/merge-patch+json',
  });
}

/** Counts a forged AuditRecord in status.audit.forged of its AgentIdentity (through /status). */
async function addForged(
  api: KubeConfigApi,
  namespace: string,
  agent: string,
  record: string,
  reason: string,
): Promise<void> {
  const path = resourcePath(AGENT_IDENTITIES, namespace, agent);
  const current = await api.request<{ status?: { audit?: { forged?: { count?: number } } } }>('GET', path);
  await api.request('PATCH', `${path}/status`, {
    body: {
      status: {
        audit: {
          forged: {
            count: (current.status?.audit?.forged?.count ?? 0) + 1,
            lastRecord: record,
            lastReason: reason.slice(0, 1024),
            lastTime: new Date().toISOString(),
          },
        },
      },
    },
    contentType: 'application/merge-patch+json',
    query: { fieldManager: AUDIT_FIELD_MANAGER },
  });
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

export async function runController(o: ControllerOptions): Promise<RunningController> {
  const log = o.log;
  const api = new KubeConfigApi(o.kubeConfig);
  const recorder = new ApiEventRecorder({
    api,
    instance: o.identity,
    logger: log.child({ component: 'events' }),
  });

  const metrics = createMetrics({ processMetrics: true, defaultLabels: { pod: o.identity } });
  // The AgentIdentity informer is the operator's (created below); until it has synced,
  // admission falls back to a GET per review.
  let agentsCache: AgentIdentityCache | undefined;
  const fallbackLookup = apiLookup(api);
  const lookup: AgentIdentityLookup = (namespace, name) =>
    agentsCache
      ? cachedLookup(agentsCache, fallbackLookup)(namespace, name)
      : fallbackLookup(namespace, name);

  // Audit records are signed with their own key ring (docs/adr/0012-audit-signing.md), published
  // before any record is signed with it.
  const auditKeyStore = new SecretKeyStore({
    core: o.kubeConfig.makeApiClient(CoreV1Api),
    namespace: o.namespace,
    secretName: AUDIT_SIGNING_KEYS_SECRET,
    policy: AUDIT_KEY_ROTATION,
    log: log.child({ component: 'audit-keys' }),
  });
  await auditKeyStore.start();
  const auditKeys = new PublishedAuditKeys({
    api,
    namespace: o.namespace,
    source: auditKeyStore,
    log: log.child({ component: 'audit-keys' }),
  });
  await auditKeys.start();
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
      void addForged(api, namespace, agent, record, reason).catch((err: unknown) =>
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
    // What had to be dropped is told on the agent, not only in the logs: an Event and a
    // count in status.audit.dropped (read-modify-write, best effort like the decision counters).
    onDropped: (namespace, agent, count) => {
      void addDropped(api, namespace, agent, count).catch((err: unknown) =>
        log.warn(
          { namespace, agent, count, err: String(err) },
          'could not record dropped audit entries in status',
        ),
      );
      return recorder.record(
        { apiVersion: API_VERSION, kind: 'AgentIdentity', metadata: { name: agent, namespace } },
        {
          type: 'Warning',
          reason: 'AuditEntriesDropped',
          action: 'Audit',
          // A stable note, so repeated drops aggregate into one Event series.
          note: 'audit buffer full (API server unreachable for long?): oldest audit entries of this agent were dropped; the controller log has the counts',
        },
      );
    },
  });
  auditWriter.start();
  const auditSink = new TrailAuditSink(auditWriter, log.child({ component: 'audit' }));
  const decisionStats = new DecisionStats({ api, log: log.child({ component: 'decision-stats' }), recorder });
  decisionStats.start();
  const issuanceStats = new IssuanceStats({ api, log: log.child({ component: 'issuance-stats' }) });
  issuanceStats.start();
  const issuedCredentials = new IssuedCredentials();
  const postgres = new PostgresMinter();
  const secrets = kubeSecretsReader(o.kubeConfig.makeApiClient(CoreV1Api));
  const revoker = new CredentialRevoker({
    postgres,
    secrets,
    issued: issuedCredentials,
    metrics,
  });

  const webhook = await startWebhook({
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
    lookup,
    metrics,
    // The authority serves the webhook's certificate: brokers get its CA bundle as a file.
    injectAuthorityCa: o.authorityTls,
  });

  const material = webhook.material();
  const authority = await createAuthority({
    kubeConfig: o.kubeConfig,
    namespace: o.namespace,
    issuer: o.issuer,
    // Only pods whose broker runs one of these attest; allowedImages does not apply to that broker.
    trustedBrokerImages: [o.broker.image, ...(o.trustedBrokerImages ?? [])],
    log: log.child({ component: 'authority' }),
    audit: auditSink,
    brokerAuditSinks: [auditSink, decisionStats],
    onAttested: (a) => decisionStats.attested(a),
    onIssued: (i) => issuanceStats.issued(i),
    issuedCredentials,
    metrics,
    ...(o.idpCaPem ? { idpFetch: httpsFetch({ ca: o.idpCaPem }) } : {}),
    ...(o.watchNamespace ? { watchNamespace: o.watchNamespace } : {}),
    ...(o.authorityTls ? { tls: { cert: material.certPem, key: material.keyPem } } : {}),
  });
  const authorityPort = await authority.listen(o.authorityPort, o.host);
  if (o.authorityTls) {
    // Follow the webhook's certificate rotation, or the authority would serve an expired one.
    webhook.onCertificateChange((m) => {
      (authority.server as HttpsServer).setSecureContext({ cert: m.certPem, key: m.keyPem });
    });
  }

  const reconcileMetrics = controllerMetrics(metrics);
  const operator = runOperator({
    kubeConfig: o.kubeConfig,
    logger: log,
    identity: o.identity,
    leaderElection: o.leaderElection,
    leaseNamespace: o.namespace,
    api,
    recorder,
    ...(o.watchNamespace ? { namespace: o.watchNamespace } : {}),
    metrics: reconcileMetrics,
    extraControllers: (shared) => {
      agentsCache = shared.agents;
      // SharedInformers carries no metrics: the extra controllers get theirs here.
      return [
        revocationController({ ...shared, revoker, audit: auditSink, metrics: reconcileMetrics }),
        postgresSweepController({
          ...shared,
          sweeper: postgres,
          secrets,
          metrics: reconcileMetrics,
          ...(o.postgresSweepIntervalMs !== undefined ? { intervalMs: o.postgresSweepIntervalMs } : {}),
        }),
        ...(o.auditRetentionMs
          ? [
              auditRetentionController({
                ...shared,
                retentionMs: o.auditRetentionMs,
                metrics: reconcileMetrics,
              }),
            ]
          : []),
      ];
    },
  });

  // Liveness: the process serves. Readiness: the webhook and authority are listening
  // (they are, once we get here); a replica that is not the leader is still ready.
  const serveMetrics = metricsHandler(metrics.registry);
  const health = createServer((req, res) => {
    if (serveMetrics(req, res)) return;
    const ok = req.url === '/healthz' || req.url === '/readyz';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not found\n');
  });
  const healthPort = await listen(health, o.healthPort, o.host);
  log.info(
    { webhookPort: webhook.port, authorityPort, healthPort, issuer: o.issuer },
    'warden controller serving',
  );

  let stopping: Promise<void> | undefined;
  return {
    webhookPort: webhook.port,
    authorityPort,
    healthPort,
    operator,
    authority,
    webhook,
    auditWriter,
    auditKeys,
    issuedCredentials,
    metrics,
    stop() {
      stopping ??= (async () => {
        log.info('warden controller stopping');
        await operator.stop();
        await webhook.stop();
        await authority.close();
        await decisionStats.stop();
        await issuanceStats.stop();
        await auditWriter.stop();
        auditKeys.stop();
        auditKeyStore.stop();
        await postgres.close();
        await recorder.flush();
        await new Promise<void>((r) => health.close(() => r()));
        log.info({ audit: auditWriter.stats() }, 'warden controller stopped');
      })();
      return stopping;
    },
  };
}
