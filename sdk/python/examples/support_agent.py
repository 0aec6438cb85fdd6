"""A short agent on the Warden SDK and the MCP Python SDK.

Acting for its human, it reads a Jira issue through Warden, tries a tool policy forbids and reports
the typed denial, and reads a ticket over the HTTP proxy. It holds no credential: Warden injects
them upstream.

    WARDEN_MCP_BASE=… WARDEN_HTTP_BASE=… USER_TOKEN=… python sdk/python/examples/support_agent.py

(next to a sidecar the webhook sets the WARDEN_* variables; for the shared gateway set
WARDEN_GATEWAY_URL and WARDEN_GATEWAY_TOKEN_FILE instead).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from warden_agent import Warden, WardenDenied, request_scope


async def support_agent(warden: Warden, user_token: str | None, say: Callable[[str], None]) -> None:
    with request_scope(user_token=user_token, context={"ticketId": "SUP-42", "purpose": "triage"}):
        async with warden.mcp_client("jira") as jira:
            tools = await jira.list_tools()
            say("tools Warden lets me see: " + ", ".join(t.name for t in tools.tools))
            issue = await jira.call_tool("jira.get_issue", {"key": "SUP-42"})
            say(f"jira.get_issue → {issue.content[0].text}")
            try:
                await jira.call_tool("jira.delete_issue", {"key": "SUP-42"})
                say("jira.delete_issue → allowed (unexpected)")
            except WardenDenied as d:
                say(
                    f"jira.delete_issue → denied: reason={d.reason} policy={d.policy} rule={d.rule} "
                    f"condition={d.condition} transient={d.transient}"
                )
        async with warden.http_client("tickets") as tickets:
            r = await tickets.get("api/v1/tickets/SUP-42")
            say(f"GET tickets/api/v1/tickets/SUP-42 → {r.status_code} {r.text}")
            try:
                await tickets.delete("api/v1/tickets/SUP-42")
            except WardenDenied as d:
                say(f"DELETE tickets/api/v1/tickets/SUP-42 → denied: reason={d.reason} ({d.message})")


if __name__ == "__main__":
    asyncio.run(support_agent(Warden.from_env(), os.environ.get("USER_TOKEN"), print))
