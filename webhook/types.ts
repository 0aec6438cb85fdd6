/**
 * The inputs the webhook decides on: the fields of an AgentIdentity it reads,
 * and the broker configuration the controller passes in.
 */
import type { AgentAttestation, AgentIdentitySpec } from '../core/api/index.js';
import { DEFAULT_BROKER_AUDIENCE } from '../core/constants.js';

/**
 * The AgentIdentity fields the webhook reads: a structural subset of the
 * generated core/api AgentIdentity, so that type (or a raw object from the API
 * server) can be passed, and tests can build small ones.
 */
export interface AgentIdentityView {
  metadata: { name?: string; namespace?: string; uid?: string };
  spec: Pick<AgentIdentitySpec, 'serviceAccountName' | 'suspended' | 'suspendReason'> & {
    attestation?: Pick<
      AgentAttestation,
      'audience' | 'tokenExpirationSeconds' | 'requiredPodLabels' | 'allowedImages'
    >;
  };
}

/** CRD defaults (crds/ is the source of truth; repeated here because CRD defaulting may not have run on old objects). */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;
/** The kubelet refuses projected tokens shorter than 10 minutes. */
export const MIN_TOKEN_EXPIRATION_SECONDS = 600;

export interface ContainerResources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

/** What the controller tells the webhook about the broker it injects. */
export interface BrokerConfig {
  /** Warden version recorded in the `warden.dev/injected` annotation. */
  version: string;
  /** Broker image reference, ideally pinned by digest. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** URL of the authority the broker attests to. */
  authorityUrl: string;
  /**
   * PEM bundle the broker trusts for the authority's certificate, when the
   * authority is served with Warden's self-managed CA (public, not a secret).
   * Recorded in the pod annotation `warden.dev/authority-ca` and projected into
   * the broker as a file (downward API) passed with --authority-ca.
   */
  authorityCaBundlePem?: string;
  /** Port of the broker's MCP gateway on localhost. */
  mcpPort: number;
  /** Port of the broker's HTTP reverse proxy on localhost. */
  httpPort: number;
  /** Port of the broker's PostgreSQL endpoint on localhost (database name = CredentialProvider). */
  pgPort: number;
  /** Port of the broker's health endpoints (/readyz passes only once attested). */
  healthPort: number;
  resources: ContainerResources;
  /** UID the broker runs as (numeric so runAsNonRoot can be verified by the kubelet). */
  runAsUser: number;
  /** How long the broker may take to attest before the kubelet restarts it. */
  startupTimeoutSeconds: number;
  /** Bound of the broker's audit spool in bytes (`--audit-spool-max-bytes`, chart audit.spoolMaxBytes). */
  auditSpoolMaxBytes: number;
}

export const DEFAULT_BROKER_CONFIG: Omit<BrokerConfig, 'version' | 'image' | 'authorityUrl'> = {
  imagePullPolicy: 'IfNotPresent',
  mcpPort: 15100,
  httpPort: 15101,
  healthPort: 15102,
  pgPort: 15432,
  resources: {
    requests: { cpu: '20m', memory: '48Mi' },
    limits: { cpu: '500m', memory: '128Mi' },
  },
  // 65532 is "nonroot" in distroless images.
  runAsUser: 65532,
  startupTimeoutSeconds: 120,
  auditSpoolMaxBytes: 16 * 1024 * 1024,
};

/** The attestation settings after applying CRD defaults. */
export function attestationOf(agent: AgentIdentityView): { audience: string; expirationSeconds: number } {
  const a = agent.spec.attestation ?? {};
  const audience = a.audience && a.audience.length > 0 ? a.audience : DEFAULT_BROKER_AUDIENCE;
  const requested = a.tokenExpirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS;
  // The CRD enforces the minimum; clamp anyway so an object written before that
  // validation existed cannot produce a pod the kubelet refuses to start.
  const expirationSeconds = Math.max(MIN_TOKEN_EXPIRATION_SECONDS, requested);
  return { audience, expirationSeconds };
}
