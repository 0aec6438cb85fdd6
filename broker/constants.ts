/**
 * Names and limits used only by the broker (shared names live in core/constants.ts).
 */

/** Why the broker denied before (or instead of) evaluating policy. Stable strings for audit and clients. */
export const BrokerDenyReason = {
  /** No policy snapshot received from the authority yet. */
  PolicySnapshotMissing: 'PolicySnapshotMissing',
  /** The snapshot is older than the staleness bound without a stream heartbeat. */
  PolicySnapshotStale: 'PolicySnapshotStale',
  /** The snapshot carries a Deny policy that does not compile: nothing is allowed until it is fixed. */
  PolicySnapshotInvalid: 'PolicySnapshotInvalid',
  /** The authority could not be reached for a credential or a user-token check. */
  AuthorityUnreachable: 'AuthorityUnreachable',
  /** The broker's AgentIdentity was deleted. */
  AgentIdentityMissing: 'AgentIdentityMissing',
  /** The AgentIdentity is suspended (kill switch). */
  AgentSuspended: 'AgentSuspended',
  /** The provider named in the URL is not in the snapshot (or not of the right protocol). */
  UnknownTarget: 'UnknownTarget',
  /** The forwarded user token was rejected by the authority. */
  UserTokenInvalid: 'UserTokenInvalid',
  /** The authority refused to issue the credential (it re-checks policy). */
  CredentialDenied: 'CredentialDenied',
  /** The tool name has characters outside the allowed set or path tricks. */
  InvalidToolName: 'InvalidToolName',
  /** The request itself is malformed (path, headers, context). */
  InvalidRequest: 'InvalidRequest',
} as const;
export type BrokerDenyReason = (typeof BrokerDenyReason)[keyof typeof BrokerDenyReason];

/** Largest MCP / HTTP-proxy request body the broker reads (the agent is untrusted). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Deepest JSON nesting accepted in an MCP message, checked before parsing further (policy bounds args to 16). */
export const MAX_JSON_DEPTH = 64;
/** Largest x-warden-context header value. */
export const MAX_CONTEXT_HEADER_BYTES = 4096;
/** Largest forwarded user token. */
export const MAX_USER_TOKEN_CHARS = 8192;
/** Largest SSE event the broker buffers while scrubbing/filtering an upstream stream. */
export const MAX_SSE_EVENT_BYTES = 8 * 1024 * 1024;
/** Largest JSON response body the broker buffers to filter/scrub (tools/list etc.). */
export const MAX_RESPONSE_BUFFER_BYTES = 16 * 1024 * 1024;

/** Snapshot older than this without a heartbeat denies everything (fail closed). */
export const DEFAULT_STALE_AFTER_MS = 30_000;
/** Upstream must send response headers within this time. */
export const DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS = 30_000;
/** Upstream body may be idle this long (SSE streams get the stream idle timeout instead). */
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 60_000;
/** Idle bound for long-lived upstream SSE streams (servers send keep-alive comments). */
export const DEFAULT_UPSTREAM_STREAM_IDLE_TIMEOUT_MS = 300_000;
/** Credentials are used until this long before they expire, then fetched again. */
export const CREDENTIAL_REFRESH_MARGIN_MS = 30_000;

/** What the broker puts where an echoed credential was. */
export const REDACTED = '[REDACTED]';

/** JSON-RPC error code of a policy denial (MCP leaves -32000..-32099 to implementations). */
export const JSONRPC_POLICY_DENIED = -32003;
/** JSON-RPC error code when the broker cannot reach the upstream or the authority. */
export const JSONRPC_UPSTREAM_UNAVAILABLE = -32004;
