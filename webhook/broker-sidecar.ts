/**
 * The objects the webhook injects: the broker native sidecar, its projected
 * service-account token volume, and the env vars that tell agent containers
 * where the broker listens. Pure builders; no I/O.
 */
import type { V1Container, V1EnvVar, V1Volume, V1VolumeProjection } from '@kubernetes/client-node';
import {
  ANNOTATION_AUTHORITY_CA,
  BROKER_AUTHORITY_CA_FILE,
  BROKER_CONTAINER_NAME,
  BROKER_SPOOL_DIR,
  BROKER_SPOOL_VOLUME,
  BROKER_TOKEN_DIR,
  BROKER_TOKEN_FILE,
  BROKER_TOKEN_VOLUME,
  ENV_HTTP_BASE,
  ENV_MCP_BASE,
  ENV_PG_BASE,
  ENV_USER_TOKEN_HEADER,
  HEADER_USER_TOKEN,
} from '../core/constants.js';
import type { BrokerConfig } from './types.js';

// Re-exported: they moved to core/constants.ts, where attestation checks the injected shape too.
export { ANNOTATION_AUTHORITY_CA, BROKER_AUTHORITY_CA_FILE, BROKER_TOKEN_FILE };
/** Name of the broker's health port (the startup probe refers to it by name). */
export const BROKER_HEALTH_PORT_NAME = 'warden-health';
/** Broker endpoint that answers 200 only once the broker has attested and holds a session. */
export const BROKER_READY_PATH = '/readyz';

const PROBE_PERIOD_SECONDS = 1;

/** The native sidecar (init container with restartPolicy Always) running the broker. */
export function brokerContainer(config: BrokerConfig): V1Container {
  return {
    name: BROKER_CONTAINER_NAME,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy ?? 'IfNotPresent',
    // Native sidecar: starts before later init containers and the agent, keeps
    // running alongside them, and is stopped after them.
    restartPolicy: 'Always',
    args: [
      'broker',
      `--token-file=${BROKER_TOKEN_DIR}/${BROKER_TOKEN_FILE}`,
      `--authority-url=${config.authorityUrl}`,
      ...(config.authorityCaBundlePem
        ? [`--authority-ca=${BROKER_TOKEN_DIR}/${BROKER_AUTHORITY_CA_FILE}`]
        : []),
      // MCP and HTTP listen on loopback only: other pods must not be able to
      // reach a broker and act with this agent's identity.
      `--mcp-listen=127.0.0.1:${config.mcpPort}`,
      `--http-listen=127.0.0.1:${config.httpPort}`,
      `--pg-listen=127.0.0.1:${config.pgPort}`,
      // The kubelet probes the pod IP, so the health port listens on all interfaces.
      `--health-listen=0.0.0.0:${config.healthPort}`,
      // Every decision is on disk before the agent sees the answer (broker/spool.ts); the
      // emptyDir outlives a restart of this container, so a new broker ships what the old one held.
      `--audit-spool=${BROKER_SPOOL_DIR}`,
      `--audit-spool-max-bytes=${config.auditSpoolMaxBytes}`,
    ],
    // Only the broker's own process gets these.
    env: [{ name: 'NODE_OPTIONS', value: BROKER_NODE_OPTIONS }],
    ports: [{ name: BROKER_HEALTH_PORT_NAME, containerPort: config.healthPort, protocol: 'TCP' }],
    // The kubelet starts the next init container (and the agent) only after this
    // passes, so the agent never runs before its broker has attested.
    startupProbe: {
      httpGet: { path: BROKER_READY_PATH, port: BROKER_HEALTH_PORT_NAME, scheme: 'HTTP' },
      periodSeconds: PROBE_PERIOD_SECONDS,
      timeoutSeconds: 1,
      failureThreshold: Math.max(1, Math.ceil(config.startupTimeoutSeconds / PROBE_PERIOD_SECONDS)),
    },
    resources: {
      requests: { ...config.resources.requests },
      limits: { ...config.resources.limits },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: config.runAsUser,
      runAsGroup: config.runAsUser,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: BROKER_TOKEN_VOLUME, mountPath: BROKER_TOKEN_DIR, readOnly: true },
      { name: BROKER_SPOOL_VOLUME, mountPath: BROKER_SPOOL_DIR },
    ],
  };
}

/** Room for the spool's bound plus two segments being rotated (broker/spool.ts). */
const SPOOL_SLACK_BYTES = 2 * 1024 * 1024;

/**
 * The audit spool's volume: an emptyDir (it lives as long as the pod, so it outlives a restart of
 * the broker container) sized to the spool's bound, mounted into the broker only.
 */
export function brokerSpoolVolume(config: BrokerConfig): V1Volume {
  const mi = Math.ceil((config.auditSpoolMaxBytes + SPOOL_SLACK_BYTES) / (1024 * 1024));
  return { name: BROKER_SPOOL_VOLUME, emptyDir: { sizeLimit: `${mi}Mi` } };
}

/**
 * V8 options of the injected broker: a smaller young generation (~10 MB less RSS at idle, no
 * measurable CPU cost) and an old-space cap that keeps an overloaded broker inside its 128 Mi
 * limit (89–96 MiB at 1,000 req/s instead of up to 235 MiB, for ~20 % more CPU per request;
 * bench/load.bench.ts, docs/benchmarks.md).
 */
export const BROKER_NODE_OPTIONS = '--max-semi-space-size=2 --max-old-space-size=64';

/**
 * The projected service-account token the broker presents to the authority,
 * and (withAuthorityCa) the authority CA bundle from the pod annotation.
 */
export function brokerTokenVolume(
  audience: string,
  expirationSeconds: number,
  withAuthorityCa = false,
): V1Volume {
  const sources: V1VolumeProjection[] = [
    { serviceAccountToken: { audience, expirationSeconds, path: BROKER_TOKEN_FILE } },
  ];
  if (withAuthorityCa) {
    sources.push({
      downwardAPI: {
        items: [
          {
            path: BROKER_AUTHORITY_CA_FILE,
            fieldRef: { fieldPath: `metadata.annotations['${ANNOTATION_AUTHORITY_CA}']` },
          },
        ],
      },
    });
  }
  return { name: BROKER_TOKEN_VOLUME, projected: { sources } };
}

/** Where the broker is, for agent containers. Addresses and a header name only: never a credential. */
export function agentEnv(config: BrokerConfig): V1EnvVar[] {
  return [
    { name: ENV_MCP_BASE, value: `http://127.0.0.1:${config.mcpPort}` },
    { name: ENV_HTTP_BASE, value: `http://127.0.0.1:${config.httpPort}` },
    { name: ENV_PG_BASE, value: `postgresql://127.0.0.1:${config.pgPort}` },
    { name: ENV_USER_TOKEN_HEADER, value: HEADER_USER_TOKEN },
  ];
}
