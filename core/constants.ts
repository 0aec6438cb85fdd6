/**
 * Every annotation, label, env var, header and well-known name Warden uses, in one place.
 * Other modules import these instead of repeating string literals.
 */

/** API group of Warden's custom resources. */
export const GROUP = 'warden.dev';
/** API version served by the CRDs. */
export const VERSION = 'v1alpha1';
/** apiVersion string for Warden objects. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Plural resource names, as used in API paths. */
export const PLURAL = {
  AgentIdentity: 'agentidentities',
  AccessPolicy: 'accesspolicies',
  CredentialProvider: 'credentialproviders',
  AuditRecord: 'auditrecords',
} as const;

/** Pod annotation naming the AgentIdentity the pod runs as (pod → AgentIdentity). */
export const ANNOTATION_AGENT = 'warden.dev/agent';
/** Pod label mirroring ANNOTATION_AGENT so the control plane can watch agent pods with a selector. */
export const LABEL_AGENT = 'warden.dev/agent';
/**
 * AuditRecord label: the UTC hour of the record's endTime, `YYYY-MM-DDTHH` (core/audit/labels.ts), so
 * `kubectl warden audit --since/--until` lists only the records that can hold entries in range.
 */
export const LABEL_AUDIT_HOUR = 'warden.dev/end-hour';
/** AuditRecord label: "true" when the record holds a denied decision, else "false" (--decision Deny). */
export const LABEL_AUDIT_DENIED = 'warden.dev/denied';
/** Pod annotation written by the webhook recording what was injected and by which Warden version. */
export const ANNOTATION_INJECTED = 'warden.dev/injected';
/**
 * AgentIdentity annotations the admission webhook writes whenever spec.suspended changes: the
 * Kubernetes user (the API server's userInfo.username) who last set the kill switch. Any other
 * change to the four kill-switch annotations is reverted at admission, so they cannot be forged.
 */
export const ANNOTATION_SUSPENDED_BY = 'warden.dev/suspended-by';
/** RFC 3339 time spec.suspended was last set to true (written with ANNOTATION_SUSPENDED_BY). */
export const ANNOTATION_SUSPENDED_AT = 'warden.dev/suspended-at';
/** The Kubernetes user who last set spec.suspended back to false (written at admission). */
export const ANNOTATION_REVIVED_BY = 'warden.dev/revived-by';
/** RFC 3339 time spec.suspended was last set back to false. */
export const ANNOTATION_REVIVED_AT = 'warden.dev/revived-at';
/** Pod annotation to opt out of injection: `warden.dev/inject: "false"`. */
export const ANNOTATION_INJECT = 'warden.dev/inject';
/** Namespace label that excludes a whole namespace from the webhook (Warden's own namespace carries it). */
export const LABEL_WEBHOOK_IGNORE = 'warden.dev/webhook';

/** CredentialProvider spec.aws.audience default: the client ID AWS IAM OIDC providers register for STS. */
export const DEFAULT_AWS_AUDIENCE = 'sts.amazonaws.com';
/** The STS DurationSeconds range spec.aws.sessionDuration must fall in (AssumeRoleWithWebIdentity). */
export const AWS_SESSION_MIN_MS = 15 * 60_000;
export const AWS_SESSION_MAX_MS = 12 * 3_600_000;

/** Default audience of the projected service-account token the broker presents to the authority. */
export const DEFAULT_BROKER_AUDIENCE = 'warden.dev/broker';
/**
 * Audience of the projected service-account token an agent without a sidecar presents to the
 * shared gateway (or exchanges at the authority for an agent token). Distinct from the broker's
 * audience, so a sidecar's token is never accepted by the gateway and the other way round.
 */
export const GATEWAY_AUDIENCE = 'warden.dev/gateway';
/** JOSE `typ` of a Warden agent token (what an agent without a sidecar presents to the gateway). */
export const AGENT_TOKEN_TYP = 'warden-agent+jwt';
/** RFC 8693 token type of a Warden agent token (the gateway exchanges it for the agent's session). */
export const TOKEN_TYPE_AGENT = 'urn:warden:params:oauth:token-type:agent';
/** RFC 9728 §3: well-known path prefix of OAuth 2.0 Protected Resource Metadata. */
export const WELL_KNOWN_PROTECTED_RESOURCE = '/.well-known/oauth-protected-resource';
/** Name of the injected broker container. */
export const BROKER_CONTAINER_NAME = 'warden-broker';
/** Name of the projected token volume mounted only into the broker. */
export const BROKER_TOKEN_VOLUME = 'warden-broker-token';
/** Mount path of the projected token inside the broker. */
export const BROKER_TOKEN_DIR = '/var/run/secrets/warden.dev/broker';
/** File name of the token inside BROKER_TOKEN_DIR. */
export const BROKER_TOKEN_FILE = 'token';
/** Name of the emptyDir volume holding the broker's audit spool, mounted only into the broker. */
export const BROKER_SPOOL_VOLUME = 'warden-broker-audit-spool';
/** Mount path of the audit spool inside the broker (`warden broker --audit-spool`). */
export const BROKER_SPOOL_DIR = '/var/run/warden.dev/audit-spool';
/**
 * Pod annotation carrying the PEM bundle the broker trusts for the authority
 * (public data), projected into the broker's volume as a file by the downward API.
 */
export const ANNOTATION_AUTHORITY_CA = 'warden.dev/authority-ca';
/** File name of the authority CA bundle inside BROKER_TOKEN_DIR. */
export const BROKER_AUTHORITY_CA_FILE = 'authority-ca.crt';

/** Env var in agent containers: base URL of the broker's MCP gateway (`<base>/<provider>`). */
export const ENV_MCP_BASE = 'WARDEN_MCP_BASE';
/** Env var in agent containers: base URL of the broker's HTTP proxy (`<base>/<provider>/<path>`). */
export const ENV_HTTP_BASE = 'WARDEN_HTTP_BASE';
/**
 * Env var in agent containers: base URL of the broker's PostgreSQL endpoint
 * (`<base>/<CredentialProvider name>`, no password: the broker logs in upstream).
 */
export const ENV_PG_BASE = 'WARDEN_PG_BASE';
/** Env var in agent containers: the header name to forward the human user's token in. */
export const ENV_USER_TOKEN_HEADER = 'WARDEN_USER_TOKEN_HEADER';

/** Header the agent uses to forward its human user's token to the broker. */
export const HEADER_USER_TOKEN = 'x-warden-user-token';
/** Header carrying request metadata (JSON) that becomes CEL `context`. */
export const HEADER_CONTEXT = 'x-warden-context';
/** Header carrying a request id for audit correlation. */
export const HEADER_REQUEST_ID = 'x-request-id';
/** RFC 9449 §4.1: header carrying the DPoP proof the broker signs for each upstream request. */
export const HEADER_DPOP = 'DPoP';
/** RFC 9449 §7.1: the Authorization scheme of a DPoP-bound (sender-constrained) token. */
export const AUTH_SCHEME_DPOP = 'DPoP';

/**
 * Field manager of the controller's own writes: the reconcilers' status (conditions, …), the
 * webhook's TLS Secret and configuration. Each status field has one field manager: the owners are
 * STATUS_OWNERS in core/status-owners.ts and the table in docs/conventions.md §5.
 */
export const FIELD_MANAGER = 'warden-controller';
/** Field manager of the revocation reconciler: AgentIdentity status.revocation. */
export const REVOCATION_FIELD_MANAGER = 'warden-controller-revocation';
/** Field manager of the audit retention reconciler: AgentIdentity status.audit.prunedThrough. */
export const RETENTION_FIELD_MANAGER = 'warden-controller-retention';
/** Field manager of the audit writer: AgentIdentity status.audit.head and status.audit.forged. */
export const AUDIT_FIELD_MANAGER = 'warden-controller-audit';
/** Field manager of the authority's counters: decisions, lastSeen, lastAttestation, audit.dropped, issuedCount. */
export const STATS_FIELD_MANAGER = 'warden-authority';
/** Field manager of the circuit breaker's spec and status writes (status.circuitBreaker); revocation's requestedBy names it. */
export const CIRCUIT_BREAKER_FIELD_MANAGER = 'warden-circuit-breaker';
/** Field manager of the authority's tool usage counters: AgentIdentity status.usage. */
export const USAGE_FIELD_MANAGER = 'warden-usage';
/** Name of the leader-election Lease. */
export const LEADER_LEASE_NAME = 'warden-controller-leader';
/** Event reporting controller (events.k8s.io/v1 reportingController). */
export const REPORTING_CONTROLLER = 'warden.dev/controller';
/** Secret (in Warden's namespace) holding the audit signing key ring as data["keys.json"] (docs/adr/0012-audit-signing.md). */
export const AUDIT_SIGNING_KEYS_SECRET = 'warden-audit-signing-keys';
/** ConfigMap (in Warden's namespace, readable by every authenticated user) publishing every audit public key ever used. */
export const AUDIT_KEYS_CONFIGMAP = 'warden-audit-keys';
/** Key of AUDIT_KEYS_CONFIGMAP's data: a JWKS with an extra top-level member `signingSince`. */
export const AUDIT_KEYS_CONFIGMAP_KEY = 'jwks.json';
/** Namespace `warden controller` runs in unless told otherwise (POD_NAMESPACE, --warden-namespace). */
export const DEFAULT_WARDEN_NAMESPACE = 'warden-system';

/**
 * Most agents one call may pass through (delegation chain, RFC 8693 act claims), the calling
 * agent included. A deeper chain is refused, so a loop between agents ends even without a policy
 * bounding it; AuditRecord entries' chain has the same maxItems.
 */
export const MAX_CHAIN_DEPTH = 8;

/**
 * Cosign's layout of a key-pair image signature (docs/adr/0016-image-signatures.md): the signature
 * of image `repo@sha256:<hex>` is an OCI manifest tagged `sha256-<hex>.sig` in the same repository;
 * each layer is a simple-signing JSON payload and carries its base64 ECDSA signature in this
 * annotation.
 */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** Media type of a cosign signature layer (the simple-signing payload). */
export const COSIGN_SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** `critical.type` of a simple-signing payload cosign writes for a container image. */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** Tag suffix of cosign's signature manifest (`sha256-<hex>.sig`). */
export const COSIGN_SIGNATURE_TAG_SUFFIX = '.sig';
