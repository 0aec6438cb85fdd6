"""Warden agent SDK (docs/adr/0013-agent-sdks.md)."""

from .client import PostgresSettings, Warden, WardenMcpClient
from .errors import DenialReason, WardenDenied, denial_from_data, denial_from_mcp_error, denial_from_response, parse_retry_after
from .scope import RequestScope, acting_for, current_scope, request_scope, user_token_from_headers
from .settings import WardenSettings, WardenSettingsError, settings_from_env

__all__ = [
    "DenialReason",
    "PostgresSettings",
    "RequestScope",
    "Warden",
    "WardenDenied",
    "WardenMcpClient",
    "WardenSettings",
    "WardenSettingsError",
    "acting_for",
    "current_scope",
    "denial_from_data",
    "denial_from_mcp_error",
    "denial_from_response",
    "parse_retry_after",
    "request_scope",
    "settings_from_env",
    "user_token_from_headers",
]
