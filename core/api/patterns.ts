/**
 * Regular expressions the CRDs (crds/*.yaml) use in `pattern`, mirrored for runtime
 * validation. Each comes with the sentence an error shows. The agreement test
 * (schemas.agreement.test.ts) checks every one here appears verbatim in a CRD.
 */

export interface NamedPattern {
  /** The pattern text, identical to the CRD's `pattern`. */
  source: string;
  /** The same, compiled. */
  re: RegExp;
  /** What a value must look like, for error messages ("must be ..."). */
  description: string;
}

const p = (source: string, description: string): NamedPattern => ({
  source,
  re: new RegExp(source),
  description,
});

/** A lowercase RFC 1123 subdomain: object names (ServiceAccount, Secret, AgentIdentity, provider). */
export const DNS_SUBDOMAIN = p(
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  'a lowercase RFC 1123 name: a-z, 0-9, "-" and ".", starting and ending with a letter or digit (e.g. "support-bot")',
);
/** A policy rule target: a CredentialProvider name or "*". */
export const TARGET = p(
  '^(\\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$',
  'a CredentialProvider name (lowercase RFC 1123, e.g. "jira") or "*"',
);
/** A Go-style duration: one or more number+unit pairs. */
export const DURATION = p(
  '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$',
  'a duration such as "90s", "5m", "1h" or "1h30m" (units ms, s, m, h)',
);
/** An https URL (OIDC issuers, JWKS). */
/** A quota window (AccessPolicy rules[].limits[].window): one unit, 1s to 24h. */
export const QUOTA_WINDOW = p(
  '^([1-9][0-9]{0,4}s|[1-9][0-9]{0,3}m|([1-9]|1[0-9]|2[0-4])h)$',
  'a window of one unit from 1s to 24h, such as "30s", "1m" or "1h"',
);
export const HTTPS_URL = p('^https://[^\\s]+$', 'an https:// URL without spaces');
/** An http(s) URL (token and revocation endpoints). */
export const HTTP_URL = p('^https?://[^\\s]+$', 'an http:// or https:// URL without spaces');
/** A CredentialProvider target URL. */
export const TARGET_URL = p(
  '^(https?|postgres(ql)?)://[^\\s]+$',
  'an http://, https:// or postgres:// URL without spaces',
);
/** A key in a Secret's data. */
export const SECRET_KEY = p('^[-._a-zA-Z0-9]+$', 'a Secret key: letters, digits, "-", "_" and "."');
/** A `when` condition name. */
export const CONDITION_NAME = p(
  '^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$',
  'a name of letters, digits, "-", "_" and ".", starting and ending with a letter or digit (e.g. "support-staff")',
);
/** An HTTP path glob. */
export const PATH_GLOB = p(
  '^(/[^\\s]*|\\*\\*)$',
  'a path glob starting with "/" (e.g. "/api/v1/tickets/*") or "**"',
);
/** A PostgreSQL role name that needs no quoting. */
export const PG_ROLE = p(
  '^[A-Za-z_][A-Za-z0-9_$]*$',
  'a PostgreSQL role name: a letter or "_" followed by letters, digits, "_" or "$"',
);
/** An HTTP header name (RFC 9110 token). */
export const HEADER_NAME = p("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", 'an HTTP header name (e.g. "Authorization")');
/** An IAM role ARN (AWS: arn:aws:iam::<account>:role/<path+name>; MinIO: arn:minio:iam:<region>::role/<id>). */
export const ROLE_ARN = p(
  '^arn:[a-z][-a-z0-9]*:iam:[-a-z0-9]*:[0-9]{0,12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$',
  'an IAM role ARN such as "arn:aws:iam::123456789012:role/agent-reports"',
);
/** An AWS region name (the SigV4 credential scope). */
export const AWS_REGION = p('^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$', 'an AWS region such as "eu-west-1"');
/** An AWS signing service name (the SigV4 credential scope). */
export const AWS_SERVICE = p('^[a-z0-9][-a-z0-9]*$', 'an AWS service name such as "s3" or "execute-api"');
/** A sha256 digest in hex. */
export const SHA256_HEX = p('^[0-9a-f]{64}$', '64 lowercase hex digits (a sha256 digest)');
/** An OCI image digest (what a container status imageID ends in). */
export const IMAGE_DIGEST = p(
  '^sha256:[a-f0-9]{64}$',
  'an image digest, "sha256:" and 64 lowercase hex digits',
);
/** A DNS label: names of list items shown in messages (image signing keys). */
export const DNS_LABEL = p(
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  'a lowercase RFC 1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit (e.g. "release-2026")',
);
/** A PEM public key block (the shape only; core/identity/cosign.ts checks the key inside). */
export const PEM_PUBLIC_KEY = p(
  '^[\\t\\n\\r ]*-----BEGIN PUBLIC KEY-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END PUBLIC KEY-----[\\t\\n\\r ]*$',
  'a PEM public key: -----BEGIN PUBLIC KEY-----, base64 lines, -----END PUBLIC KEY----- (cosign.pub)',
);
/** A sha256 digest in hex, or empty. */
export const SHA256_HEX_OR_EMPTY = p(
  '^([0-9a-f]{64})?$',
  'empty or 64 lowercase hex digits (a sha256 digest)',
);
/** metav1.Condition type. */
export const CONDITION_TYPE = p(
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
  'a condition type in CamelCase, optionally prefixed with a DNS subdomain and "/"',
);
/** metav1.Condition reason. */
export const CONDITION_REASON = p(
  '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
  'a CamelCase reason (letters, digits, "_", "," and ":"), e.g. "SecretNotFound"',
);

/** The id a broker gives an audit entry when it spools it (core/audit/entry-id.ts). */
export const AUDIT_ENTRY_ID = p(
  '^[0-9a-f]{16}-[1-9][0-9]{0,14}$',
  '<16 hex digits>-<sequence from 1>, as the broker spools it (e.g. "0123456789abcdef-42")',
);

/** Every pattern, for the agreement test. */
export const ALL_PATTERNS: Record<string, NamedPattern> = {
  DNS_SUBDOMAIN,
  TARGET,
  DURATION,
  QUOTA_WINDOW,
  HTTPS_URL,
  HTTP_URL,
  TARGET_URL,
  SECRET_KEY,
  CONDITION_NAME,
  PATH_GLOB,
  PG_ROLE,
  HEADER_NAME,
  ROLE_ARN,
  AWS_REGION,
  AWS_SERVICE,
  SHA256_HEX,
  SHA256_HEX_OR_EMPTY,
  IMAGE_DIGEST,
  DNS_LABEL,
  PEM_PUBLIC_KEY,
  CONDITION_TYPE,
  CONDITION_REASON,
  AUDIT_ENTRY_ID,
};

/**
 * A Kubernetes label key: optional DNS-subdomain prefix and "/", then a name of at
 * most 63 characters. The CRDs cannot check map keys cheaply, so this is a warning.
 */
export const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** A Kubernetes label value (≤63 characters). */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
