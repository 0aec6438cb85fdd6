"""The agent's handle on Warden: per provider an MCP client, an HTTP client and PostgreSQL settings.

Every request carries the human's token and context from the current request scope; in gateway
mode also the agent's own token. The SDK never sees an upstream credential: Warden injects them.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx2
from mcp import Client
from mcp.shared.exceptions import MCPError

from .constants import HEADER_CONTEXT, HEADER_REQUEST_ID, PG_SETTING_CONTEXT, PG_SETTING_USER_TOKEN
from .errors import WardenDenied, denial_from_mcp_error, denial_from_response
from .scope import RequestScope, current_scope
from .settings import WardenSettings, WardenSettingsError, settings_from_env

_PROVIDER = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _check(provider: str) -> str:
    if not _PROVIDER.fullmatch(provider):
        raise WardenSettingsError(f"provider {provider!r}: expected a CredentialProvider name (lower-case DNS subdomain)")
    return provider


@dataclass(frozen=True)
class PostgresSettings:
    #: ``postgresql://<endpoint>/<provider>?options=…`` - no password: Warden logs in upstream.
    dsn: str
    #: libpq's PGOPTIONS value (the same as ``options`` in the DSN).
    options: str
    #: Gateway mode: the agent's token, sent as the password over TLS. None next to a sidecar.
    password: str | None = None


class _WardenAuth(httpx2.Auth):
    """Adds Warden's headers to each request from the scope captured when the client was made."""

    def __init__(self, warden: Warden, scope: RequestScope) -> None:
        self._warden = warden
        self._scope = scope

    def auth_flow(self, request: httpx2.Request):  # type: ignore[override]
        for k, v in self._warden.headers(self._scope).items():
            request.headers[k] = v
        yield request


async def _raise_denial(response: httpx2.Response) -> None:
    if response.status_code in (403, 429, 503):
        await response.aread()
        denial = denial_from_response(response.status_code, response.headers, response.content)
        if denial is not None:
            raise denial


class Warden:
    def __init__(self, settings: WardenSettings) -> None:
        self.settings = settings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Warden:
        """From the injected environment (sidecar) or the gateway settings."""
        return cls(settings_from_env(os.environ if env is None else env))

    def mcp_url(self, provider: str) -> str:
        return f"{self.settings.mcp_base}/{_check(provider)}"

    def http_base(self, provider: str) -> str:
        """``<base>/<path>`` reaches the provider API's ``<path>``."""
        return f"{self.settings.http_base}/{_check(provider)}"

    def headers(self, scope: RequestScope | None = None) -> dict[str, str]:
        """The headers Warden reads on every request of this scope."""
        s = scope or current_scope()
        h: dict[str, str] = {}
        if s.user_token:
            h[self.settings.user_token_header] = s.user_token
        if s.context:
            h[HEADER_CONTEXT] = json.dumps(dict(s.context), separators=(",", ":"))
        if s.request_id:
            h[HEADER_REQUEST_ID] = s.request_id
        if self.settings.mode == "gateway" and self.settings.agent_token:
            h["authorization"] = f"Bearer {self.settings.agent_token()}"
        return h

    def http_client(self, provider: str | None = None, scope: RequestScope | None = None, **kwargs: Any) -> httpx2.AsyncClient:
        """An httpx2 client (base URL: the provider's HTTP base) that raises WardenDenied on refusals."""
        hooks = kwargs.pop("event_hooks", {})
        hooks = {**hooks, "response": [*hooks.get("response", []), _raise_denial]}
        if provider is not None:
            kwargs.setdefault("base_url", self.http_base(provider) + "/")
        if self.settings.ca_file:
            kwargs.setdefault("verify", ssl.create_default_context(cafile=self.settings.ca_file))
        return httpx2.AsyncClient(auth=_WardenAuth(self, scope or current_scope()), event_hooks=hooks, **kwargs)

    @asynccontextmanager
    async def mcp_client(self, provider: str, scope: RequestScope | None = None, **kwargs: Any) -> AsyncIterator[WardenMcpClient]:
        """A connected MCP client for the provider whose calls raise WardenDenied on a Warden denial."""
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        auth = _WardenAuth(self, scope or current_scope())
        if self.settings.ca_file:
            # The gateway's certificate chains to a private CA: the MCP SDK's default client
            # (same timeouts) with that CA trusted.
            http = httpx2.AsyncClient(
                auth=auth,
                timeout=httpx2.Timeout(30.0, read=300.0),
                verify=ssl.create_default_context(cafile=self.settings.ca_file),
            )
        else:
            http = create_mcp_http_client(auth=auth)
        http.event_hooks["response"].append(_raise_denial)
        async with http:
            try:
                async with Client(streamable_http_client(self.mcp_url(provider), http_client=http), **kwargs) as client:
                    yield WardenMcpClient(client)
            except BaseExceptionGroup as group:
                denial = _first_denial(group)
                if denial is not None:
                    raise denial from group
                raise
            except MCPError as err:
                raise (denial_from_mcp_error(err) or err) from err

    def postgres(self, provider: str, scope: RequestScope | None = None) -> PostgresSettings:
        """PostgreSQL settings: the user's token and context travel as server options."""
        if not self.settings.pg_base:
            raise WardenSettingsError(
                "no PostgreSQL endpoint: the pod was injected without one (WARDEN_PG_BASE) or WARDEN_GATEWAY_PG is not set"
            )
        s = scope or current_scope()
        words: list[str] = []
        if s.user_token:
            words += ["-c", f"{PG_SETTING_USER_TOKEN}={_escape(s.user_token)}"]
        if s.context:
            words += ["-c", f"{PG_SETTING_CONTEXT}={_escape(json.dumps(dict(s.context), separators=(',', ':')))}"]
        options = " ".join(words)
        query: dict[str, str] = {}
        if options:
            query["options"] = options
        password = None
        if self.settings.mode == "gateway" and self.settings.agent_token:
            query["sslmode"] = "verify-full"
            password = self.settings.agent_token()
        dsn = f"{self.settings.pg_base}/{_check(provider)}"
        if query:
            dsn += "?" + urlencode(query, quote_via=quote)
        return PostgresSettings(dsn=dsn, options=options, password=password)


class WardenMcpClient:
    """The MCP SDK's Client, with Warden's denials raised as WardenDenied."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def list_tools(self) -> Any:
        return await self._typed(self.client.list_tools())

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self._typed(self.client.call_tool(name, arguments, **kwargs))

    @staticmethod
    async def _typed(awaitable: Any) -> Any:
        try:
            return await awaitable
        except MCPError as err:
            raise (denial_from_mcp_error(err) or err) from err


def _first_denial(group: BaseExceptionGroup) -> WardenDenied | None:
    for exc in group.exceptions:
        if isinstance(exc, WardenDenied):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_denial(exc)
            if found is not None:
                return found
        if isinstance(exc, MCPError):
            found = denial_from_mcp_error(exc)
            if found is not None:
                return found
    return None


def _escape(value: str) -> str:
    """libpq options escaping: a backslash before whitespace and backslashes."""
    return re.sub(r"([\\\s])", r"\\\1", value)
