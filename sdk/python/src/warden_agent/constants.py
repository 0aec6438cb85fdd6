"""Names the SDK shares with Warden (tests/test_unit.py checks them against Warden's TypeScript constants)."""

ENV_MCP_BASE = "WARDEN_MCP_BASE"
"""Sidecar: base URL of the broker's MCP gateway (``<base>/<provider>``), injected by the webhook."""
ENV_HTTP_BASE = "WARDEN_HTTP_BASE"
"""Sidecar: base URL of the broker's HTTP proxy (``<base>/<provider>/<path>``)."""
ENV_PG_BASE = "WARDEN_PG_BASE"
"""Sidecar: base URL of the broker's PostgreSQL endpoint (``<base>/<provider>``)."""
ENV_USER_TOKEN_HEADER = "WARDEN_USER_TOKEN_HEADER"
"""Sidecar: the header the human's token is forwarded in."""
ENV_GATEWAY_URL = "WARDEN_GATEWAY_URL"
"""Gateway: base URL of the shared gateway."""
ENV_GATEWAY_TOKEN_FILE = "WARDEN_GATEWAY_TOKEN_FILE"
"""Gateway: file holding the agent's token (projected, audience warden.dev/gateway); read per request."""
ENV_GATEWAY_PG = "WARDEN_GATEWAY_PG"
"""Gateway: ``host:port`` of the gateway's PostgreSQL endpoint."""
ENV_GATEWAY_CA_FILE = "WARDEN_GATEWAY_CA_FILE"
"""Gateway: PEM bundle of the CA that signed the gateway's certificate (default: the system's)."""

HEADER_USER_TOKEN = "x-warden-user-token"
HEADER_CONTEXT = "x-warden-context"
HEADER_REQUEST_ID = "x-request-id"

PG_SETTING_USER_TOKEN = "warden.user_token"
PG_SETTING_CONTEXT = "warden.context"

JSONRPC_POLICY_DENIED = -32003
JSONRPC_UPSTREAM_UNAVAILABLE = -32004
