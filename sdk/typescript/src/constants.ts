/**
 * Names the SDK shares with Warden. The package is published on its own, so it cannot import
 * Warden's constants module; constants.test.ts asserts each one equals Warden's own.
 */

/** Sidecar: base URL of the broker's MCP gateway (`<base>/<provider>`), injected by the webhook. */
export const ENV_MCP_BASE = 'WARDEN_MCP_BASE';
/** Sidecar: base URL of the broker's HTTP proxy (`<base>/<provider>/<path>`). */
export const ENV_HTTP_BASE = 'WARDEN_HTTP_BASE';
/** Sidecar: base URL of the broker's PostgreSQL endpoint (`<base>/<provider>`). */
export const ENV_PG_BASE = 'WARDEN_PG_BASE';
/** Sidecar: the header the human's token is forwarded in. */
export const ENV_USER_TOKEN_HEADER = 'WARDEN_USER_TOKEN_HEADER';
/** Gateway: base URL of the shared gateway (`<url>/mcp/<provider>`, `<url>/http/<provider>/<path>`). */
export const ENV_GATEWAY_URL = 'WARDEN_GATEWAY_URL';
/** Gateway: file holding the agent's token (projected, audience warden.dev/gateway); read on every request. */
export const ENV_GATEWAY_TOKEN_FILE = 'WARDEN_GATEWAY_TOKEN_FILE';
/** Gateway: `host:port` of the gateway's PostgreSQL endpoint. */
export const ENV_GATEWAY_PG = 'WARDEN_GATEWAY_PG';

/** Header carrying the human user's token (the broker verifies it). */
export const HEADER_USER_TOKEN = 'x-warden-user-token';
/** Header carrying request metadata (JSON) that becomes CEL `context`. */
export const HEADER_CONTEXT = 'x-warden-context';
/** Header carrying a request id for audit correlation. */
export const HEADER_REQUEST_ID = 'x-request-id';

/** PostgreSQL server option carrying the human's token (read by the broker, never forwarded). */
export const PG_SETTING_USER_TOKEN = 'warden.user_token';
/** PostgreSQL server option carrying the request context JSON. */
export const PG_SETTING_CONTEXT = 'warden.context';

/** JSON-RPC error code of a Warden policy denial. */
export const JSONRPC_POLICY_DENIED = -32003;
/** JSON-RPC error code when Warden cannot reach the upstream or the authority. */
export const JSONRPC_UPSTREAM_UNAVAILABLE = -32004;
