"""Where Warden is for this agent: the sidecar's loopback bases, or a shared gateway."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .constants import (
    ENV_GATEWAY_CA_FILE,
    ENV_GATEWAY_PG,
    ENV_GATEWAY_TOKEN_FILE,
    ENV_GATEWAY_URL,
    ENV_HTTP_BASE,
    ENV_MCP_BASE,
    ENV_PG_BASE,
    ENV_USER_TOKEN_HEADER,
    HEADER_USER_TOKEN,
)


class WardenSettingsError(ValueError):
    """The environment does not say where Warden is, or says it wrongly."""


@dataclass(frozen=True)
class WardenSettings:
    mode: str  # "sidecar" | "gateway"
    mcp_base: str
    http_base: str
    pg_base: str | None
    user_token_header: str
    #: Gateway mode: reads the agent's current token (re-read per request: the kubelet rotates it).
    agent_token: Callable[[], str] | None = None
    #: Gateway mode: CA bundle for the gateway's TLS certificate (None: the system's).
    ca_file: str | None = None


def _url(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise WardenSettingsError(f"{name} is not set")
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        raise WardenSettingsError(f"{name}: not a URL: {value!r}")
    return value.rstrip("/")


def _read_token(path: str) -> str:
    token = Path(path).read_text().strip()
    if not token:
        raise WardenSettingsError(f"{path}: the agent token file is empty")
    return token


def settings_from_env(
    env: Mapping[str, str], read_token: Callable[[str], str] = _read_token
) -> WardenSettings:
    """A sidecar's injected ``WARDEN_MCP_BASE``/``WARDEN_HTTP_BASE`` win; else ``WARDEN_GATEWAY_URL``."""
    header = (env.get(ENV_USER_TOKEN_HEADER) or "").strip() or HEADER_USER_TOKEN
    if env.get(ENV_MCP_BASE) or env.get(ENV_HTTP_BASE):
        return WardenSettings(
            mode="sidecar",
            mcp_base=_url(env, ENV_MCP_BASE),
            http_base=_url(env, ENV_HTTP_BASE),
            pg_base=_url(env, ENV_PG_BASE) if env.get(ENV_PG_BASE) else None,
            user_token_header=header,
        )
    if env.get(ENV_GATEWAY_URL):
        base = _url(env, ENV_GATEWAY_URL)
        if not base.startswith("https:") and not re.match(r"^http://(127\.0\.0\.1|\[::1\]|localhost)[:/]", base + "/"):
            raise WardenSettingsError(
                f"{ENV_GATEWAY_URL}: the gateway must be reached over https (the agent's token travels with every request)"
            )
        file = (env.get(ENV_GATEWAY_TOKEN_FILE) or "").strip()
        if not file:
            raise WardenSettingsError(
                f"{ENV_GATEWAY_TOKEN_FILE} is not set: mount a projected service-account token with audience "
                "warden.dev/gateway (or a Warden agent token) and name its path"
            )
        pg = (env.get(ENV_GATEWAY_PG) or "").strip()
        if pg and not re.fullmatch(r"[^\s/:]+:\d{1,5}|\[[^\]]+\]:\d{1,5}", pg):
            raise WardenSettingsError(f"{ENV_GATEWAY_PG}: expected host:port, got {pg!r}")
        return WardenSettings(
            mode="gateway",
            mcp_base=f"{base}/mcp",
            http_base=f"{base}/http",
            pg_base=f"postgresql://{pg}" if pg else None,
            user_token_header=header,
            agent_token=lambda: read_token(file),
            ca_file=(env.get(ENV_GATEWAY_CA_FILE) or "").strip() or None,
        )
    raise WardenSettingsError(
        f"no Warden settings: set {ENV_MCP_BASE} and {ENV_HTTP_BASE} (injected by the webhook next to a sidecar) "
        f"or {ENV_GATEWAY_URL} and {ENV_GATEWAY_TOKEN_FILE} (shared gateway)"
    )
