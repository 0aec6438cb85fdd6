"""The human the agent acts for, carried through the agent framework's call chain (contextvars).

A request handler runs ``with acting_for(token): await agent.handle(request)``; every MCP, HTTP
and PostgreSQL call made inside forwards that token and context without being told again.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class RequestScope:
    """What Warden's policy sees as ``user`` (the token) and ``context`` (request metadata)."""

    user_token: str | None = None
    #: CEL ``context``: purpose, ticketId, model, chainStep, geo.
    context: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None


_scope: contextvars.ContextVar[RequestScope] = contextvars.ContextVar("warden_scope", default=RequestScope())


def current_scope() -> RequestScope:
    return _scope.get()


@contextlib.contextmanager
def request_scope(
    user_token: str | None = None, context: Mapping[str, Any] | None = None, request_id: str | None = None
) -> Iterator[RequestScope]:
    """Sets the scope for the block; unset fields are inherited from the enclosing scope."""
    outer = _scope.get()
    inner = replace(
        outer,
        user_token=strip_bearer(user_token) if user_token else outer.user_token,
        context={**outer.context, **(context or {})},
        request_id=request_id or outer.request_id,
    )
    token = _scope.set(inner)
    try:
        yield inner
    finally:
        _scope.reset(token)


def acting_for(user_token: str) -> contextlib.AbstractContextManager[RequestScope]:
    """Acts for the human whose token this is, for the block."""
    return request_scope(user_token=user_token)


def user_token_from_headers(headers: Mapping[str, str]) -> str | None:
    """The bearer token of an incoming request's Authorization header, or None."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not value:
        return None
    m = re.fullmatch(r"Bearer\s+(\S+)", value.strip(), flags=re.IGNORECASE)
    return m.group(1) if m else None


def strip_bearer(token: str) -> str:
    return re.sub(r"^Bearer\s+", "", token, flags=re.IGNORECASE).strip()
