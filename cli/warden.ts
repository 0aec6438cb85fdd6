#!/usr/bin/env node
/**
 * `warden`: the one entry point of the container image.
 *   warden controller   operator + webhook + authority (+ audit writer)
 *   warden broker       the sidecar next to an agent
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The controller's modules (client-node, the operator, the authority) are loaded only by
// `warden controller`: the broker sidecar would otherwise carry ~50 MB of RSS it never uses.
import type { KubeConfig } from '@kubernetes/client-node';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { parseOtlpEndpoint } from '../audit/export.js';
import { parseRecordLimit, parseRetention } from '../audit/retention.js';
import { gatewayCommand } from '../broker/gateway/main.js';
import { brokerCommand } from '../broker/main.js';
import { enableLinearRegexFallback } from '../core/policy/index.js';

/** Warden's package.json, found by walking up from this file (works from the sources and from dist/). */
function readPackage(): { version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (pkg.name === 'warden') return pkg;
    } catch {
      // not here: keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) return { version: '0.0.0-unknown' };
    dir = parent;
  }
}

const pkg = readPackage();

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|k|M|G)?$/;
function quantity(value: string): string {
  if (!QUANTITY.test(value))
    throw new InvalidArgumentError(`not a resource quantity (e.g. 100m, 64Mi): ${value}`);
  return value;
}

function pullPolicy(value: string): 'Always' | 'IfNotPresent' | 'Never' {
  if (value === 'Always' || value === 'IfNotPresent' || value === 'Never') return value;
  throw new InvalidArgumentError(`must be Always, IfNotPresent or Never: ${value}`);
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`not a TCP port: ${value}`);
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be a positive number: ${value}`);
  return n;
}

function retention(value: string): number | undefined {
  try {
    return parseRetention(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function recordLimit(flag: string): (value: string) => number | undefined {
  return (value) => {
    try {
      return parseRecordLimit(flag, value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

function otlpEndpoint(value: string): string {
  try {
    return parseOtlpEndpoint(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

async function loadKubeConfig(path: string | undefined): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault(); // KUBECONFIG, ~/.kube/config, or in-cluster
  return kc;
}

// Secrets never reach logs: redact every credential-bearing field name once, here.
const REDACT = [
  '*.token',
  '*.access_token',
  '*.subject_token',
  '*.actor_token',
  '*.password',
  '*.client_secret',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
];

const program = new Command()
  .name('warden')
  .description('Warden: identity and access management for AI agents on Kubernetes')
  .version(pkg.version);

program
  .command('controller')
  .description('Run the operator, the mutating webhook and the authority in one process')
  .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
  .option(
    '--namespace <ns>',
    "Warden's own namespace (Lease, TLS and key Secrets)",
    process.env.POD_NAMESPACE ?? 'warden-system',
  )
  .option('--watch-namespace <ns>', 'reconcile only this namespace (default: all)')
  .option('--identity <name>', 'this replica for leader election (default: $POD_NAME or host-pid)')
  .option('--no-leader-election', 'run controllers without a Lease (single replica, development)')
  .option('--host <addr>', 'listen address', '0.0.0.0')
  .option('--webhook-port <port>', 'admission webhook HTTPS port', port, 9443)
  .option('--authority-port <port>', 'authority port', port, 8443)
  .option('--health-port <port>', '/healthz and /readyz port', port, 8081)
  .option('--service <name>', 'Service name the certificate is issued for', 'warden')
  .option('--tls-ip <ip...>', 'extra IP addresses for the serving certificate', [])
  .option(
    '--webhook-configuration <name>',
    'MutatingWebhookConfiguration to keep the caBundle of ("" = none)',
    'warden-pod-injector',
  )
  .option('--issuer <url>', 'URL brokers and targets use to reach the authority')
  .option('--authority-insecure-http', 'serve the authority over plain HTTP (local development only)')
  .option(
    '--broker-image <ref>',
    'broker image injected into agent pods',
    `ghcr.io/warden-dev/warden:${pkg.version}`,
  )
  .option('--broker-image-pull-policy <policy>', 'Always, IfNotPresent or Never', pullPolicy, 'IfNotPresent')
  .option(
    '--trusted-broker-image <ref>',
    'a further broker image accepted at attestation, e.g. the previous one during an upgrade (repeatable)',
    (v: string, prev: string[]) => (v === '' ? prev : [...prev, v]),
    [] as string[],
  )
  .option(
    '--gateway-service-account <namespace/name>',
    "the shared gateway's service account: its projected token may hold sessions for agents without a sidecar (repeatable)",
    (v: string, prev: string[]) => {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(v)) {
        throw new InvalidArgumentError(`expected <namespace>/<name>, got ${v}`);
      }
      return [...prev, v];
    },
    [] as string[],
  )
  .option('--broker-cpu-request <q>', 'broker CPU request', quantity, '20m')
  .option('--broker-memory-request <q>', 'broker memory request', quantity, '48Mi')
  .option('--broker-cpu-limit <q>', 'broker CPU limit', quantity, '500m')
  .option('--broker-memory-limit <q>', 'broker memory limit', quantity, '128Mi')
  .option(
    '--broker-audit-spool-max-bytes <n>',
    "bound of each broker's audit spool in bytes (an emptyDir mounted into the broker only)",
    (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 65_536) {
        throw new InvalidArgumentError(`must be a whole number of bytes, at least 65536: ${v}`);
      }
      return n;
    },
    16 * 1024 * 1024,
  )
  .option('--idp-ca <path>', 'PEM CA bundle trusted for user-token issuers (a private OIDC provider)')
  .option(
    '--tls-cert-dir <dir>',
    'serve tls.crt/tls.key/ca.crt from this directory (cert-manager) instead of the self-managed Secret',
  )
  .option('--tls-secret <name>', 'Secret holding the self-managed serving certificate', 'warden-webhook-tls')
  .option('--audit-batch-size <n>', 'entries per AuditRecord (1..500)', positive, 200)
  .option(
    '--audit-flush-seconds <s>',
    'longest an audit entry waits before its record is written',
    positive,
    5,
  )
  .option(
    '--audit-retention <duration>',
    'delete AuditRecords older than this (e.g. 30d, 720h); 0 keeps them forever',
    retention,
    undefined,
  )
  .option(
    '--audit-max-records-per-agent <n>',
    'keep at most this many AuditRecords per agent, pruning its oldest; 0 sets no limit',
    recordLimit('--audit-max-records-per-agent'),
    undefined,
  )
  .option(
    '--audit-max-records-per-namespace <n>',
    "keep at most this many AuditRecords per namespace, pruning the oldest of any agent's; 0 sets no limit",
    recordLimit('--audit-max-records-per-namespace'),
    undefined,
  )
  .option(
    '--audit-otlp-endpoint <url>',
    'also send every audit line as an OTLP log record to this OTLP/HTTP endpoint (e.g. http://otel-collector.observability:4318/v1/logs)',
    otlpEndpoint,
  )
  .option(
    '--metrics-tool-calls',
    'also export warden_tool_calls_total per agent and MCP tool (at most 200 agents x 20 tools, the rest as "other"; docs/metrics.md)',
  )
  .option(
    '--postgres-sweep-seconds <s>',
    'how often expired temporary PostgreSQL roles are dropped',
    positive,
    60,
  )
  .option('--log-level <level>', 'pino log level', 'info')
  .action(async (o) => {
    const log = pino({ name: 'warden', level: o.logLevel, redact: { paths: REDACT, censor: '[REDACTED]' } });
    const namespace: string = o.namespace;
    const dnsNames = [
      o.service,
      `${o.service}.${namespace}`,
      `${o.service}.${namespace}.svc`,
      `${o.service}.${namespace}.svc.cluster.local`,
    ];
    const issuer: string = o.issuer ?? `https://${o.service}.${namespace}.svc:${o.authorityPort}`;
    const { runController } = await import('../controller/run.js');
    const running = await runController({
      // Every audit event as one JSON line on stdout, for a log pipeline (docs/audit-export.md).
      auditLineWriter: (text) => process.stdout.write(text),
      kubeConfig: await loadKubeConfig(o.kubeconfig),
      log,
      namespace,
      watchNamespace: o.watchNamespace,
      identity: o.identity ?? process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
      leaderElection: o.leaderElection,
      host: o.host,
      webhookPort: o.webhookPort,
      authorityPort: o.authorityPort,
      healthPort: o.healthPort,
      tlsNames: { dnsNames, ipAddresses: o.tlsIp },
      webhookConfigurationName: o.webhookConfiguration === '' ? null : o.webhookConfiguration,
      issuer,
      authorityTls: !o.authorityInsecureHttp,
      trustedBrokerImages: o.trustedBrokerImage,
      gatewayServiceAccounts: o.gatewayServiceAccount,
      broker: {
        image: o.brokerImage,
        imagePullPolicy: o.brokerImagePullPolicy,
        resources: {
          requests: { cpu: o.brokerCpuRequest, memory: o.brokerMemoryRequest },
          limits: { cpu: o.brokerCpuLimit, memory: o.brokerMemoryLimit },
        },
        auditSpoolMaxBytes: o.brokerAuditSpoolMaxBytes,
      },
      tlsSecret: o.tlsSecret,
      ...(o.tlsCertDir ? { tlsCertDir: o.tlsCertDir } : {}),
      ...(o.idpCa ? { idpCaPem: readFileSync(o.idpCa, 'utf8') } : {}),
      version: pkg.version,
      audit: { maxEntries: o.auditBatchSize, maxBytes: 256 * 1024, maxAgeMs: o.auditFlushSeconds * 1000 },
      auditRetention: {
        ...(o.auditRetention ? { maxAgeMs: o.auditRetention } : {}),
        ...(o.auditMaxRecordsPerAgent ? { maxRecordsPerAgent: o.auditMaxRecordsPerAgent } : {}),
        ...(o.auditMaxRecordsPerNamespace ? { maxRecordsPerNamespace: o.auditMaxRecordsPerNamespace } : {}),
      },
      ...(o.auditOtlpEndpoint ? { auditOtlpEndpoint: o.auditOtlpEndpoint } : {}),
      ...(o.metricsToolCalls ? { toolCallMetrics: true } : {}),
      postgresSweepIntervalMs: o.postgresSweepSeconds * 1000,
    });
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      running.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });

program.addCommand(brokerCommand());
program.addCommand(gatewayCommand());

// Defence in depth against ReDoS in both long-running processes: policy regexes are vetted at
// compile time, and V8 falls back to its linear-time engine if one still backtracks excessively.
enableLinearRegexFallback();

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`warden: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
