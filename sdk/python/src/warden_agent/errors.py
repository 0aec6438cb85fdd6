"""Warden's denials as one typed exception.

The broker (sidecar or gateway) refuses in three shapes - a JSON-RPC error (MCP), a 403 JSON body
(HTTP proxy, or an MCP request refused before it reached a tool) and a PostgreSQL error - and each
becomes a :class:`WardenDenied` an agent can reason about: the reason, the policy, rule and
condition that decided, and when a retry may help.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from .constants import JSONRPC_POLICY_DENIED, JSONRPC_UPSTREAM_UNAVAILABLE

_TRANSIENT = {"AuthorityUnreachable", "PolicySnapshotMissing", "PolicySnapshotStale", "ToolListUnavailable"}


@dataclass(frozen=True)
class DenialReason:
    policy: str | None
    rule: int | None
    condition: str | None
    message: str


class WardenDenied(Exception):
    """Warden refused the request; ``reasons[0]`` is the deciding one."""

    def __init__(
        self,
        reason: str,
        message: str,
        reasons: list[DenialReason],
        retry_after_seconds: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.reasons = reasons
        self.retry_after_seconds = retry_after_seconds
        self.request_id = request_id
        first = reasons[0] if reasons else None
        #: The AccessPolicy (``namespace/name``) that decided; None when no policy matched.
        self.policy = first.policy if first else None
        #: Index of the deciding rule in that policy's ``spec.rules``.
        self.rule = first.rule if first else None
        #: Name of the ``when`` condition that failed, if one did.
        self.condition = first.condition if first else None

    @property
    def transient(self) -> bool:
        """True when retrying later may succeed without anyone changing policy."""
        return self.retry_after_seconds is not None or self.reason in _TRANSIENT

    def __repr__(self) -> str:
        return (
            f"WardenDenied(reason={self.reason!r}, policy={self.policy!r}, rule={self.rule!r}, "
            f"condition={self.condition!r}, retry_after_seconds={self.retry_after_seconds!r})"
        )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """RFC 9110 Retry-After: delay seconds or an HTTP date."""
    if not value:
        return None
    v = value.strip()
    if re.fullmatch(r"\d+", v):
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError):
        return None
    return float(max(0, math.ceil(when - (time.time() if now is None else now))))


def _reasons(value: Any, fallback: str) -> list[DenialReason]:
    out = []
    for r in value if isinstance(value, list) else []:
        if not isinstance(r, dict):
            continue
        out.append(
            DenialReason(
                policy=r.get("policy") if isinstance(r.get("policy"), str) else None,
                rule=r.get("rule") if isinstance(r.get("rule"), int) and not isinstance(r.get("rule"), bool) else None,
                condition=r.get("condition") if isinstance(r.get("condition"), str) else None,
                message=r.get("message") if isinstance(r.get("message"), str) else fallback,
            )
        )
    return out or [DenialReason(None, None, None, fallback)]


def denial_from_data(
    data: Any, message: str | None, retry_after: str | None = None, request_id: str | None = None
) -> WardenDenied | None:
    """The denial in a broker JSON body or JSON-RPC error ``data``, or None when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return None
    msg = message or (data.get("message") if isinstance(data.get("message"), str) else None) or data["reason"]
    own = data.get("retryAfterSeconds", data.get("retryAfter"))
    retry = (
        float(own)
        if isinstance(own, (int, float)) and not isinstance(own, bool) and own >= 0
        else parse_retry_after(retry_after)
    )
    return WardenDenied(data["reason"], msg, _reasons(data.get("reasons"), msg), retry, request_id)


def denial_from_mcp_error(err: BaseException) -> WardenDenied | None:
    """A WardenDenied for an error the MCP SDK raised (``MCPError``: code, message, data), or None."""
    if isinstance(err, WardenDenied):
        return err
    code = getattr(err, "code", None)
    data = getattr(err, "data", None)
    if code not in (JSONRPC_POLICY_DENIED, JSONRPC_UPSTREAM_UNAVAILABLE) and not isinstance(data, dict):
        return None
    message = getattr(err, "message", None)
    return denial_from_data(data, message if isinstance(message, str) else None)


def denial_from_response(status: int, headers: Any, body: bytes) -> WardenDenied | None:
    """Reads a refused HTTP response (403/429/503 with Warden's JSON body) into a denial, or None."""
    if status < 400 or "application/json" not in (headers.get("content-type") or ""):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    rpc = parsed.get("error") if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) else None
    data = rpc.get("data") if rpc else parsed
    message = rpc.get("message") if rpc and isinstance(rpc.get("message"), str) else None
    return denial_from_data(data, message, headers.get("retry-after"), headers.get("x-request-id"))
