"""An agent written with the Python MCP SDK (`mcp` from PyPI), driven by broker/mcp-clients.int.test.ts.

    mcp_client.py <url> list                 -> {"tools": [<name>, ...]}
    mcp_client.py <url> call <tool> <json>   -> {"result": {"isError": bool, "text": [...]}}

A JSON-RPC error from the server (a denial) prints {"error": {"code", "message", "data"}} and
exits 1; anything else that fails prints {"failure": "<type>: <text>"} and exits 2.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.shared.exceptions import MCPError


async def run(url: str, action: str, rest: list[str]) -> dict:
    async with Client(url) as client:
        if action == "list":
            listed = await client.list_tools()
            return {"tools": [t.name for t in listed.tools]}
        if action == "call":
            name, args = rest[0], json.loads(rest[1]) if len(rest) > 1 else {}
            result = await client.call_tool(name, args)
            texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
            return {"result": {"isError": bool(result.is_error), "text": texts}}
        raise SystemExit(f"unknown action {action!r}: use list or call")


def main() -> int:
    url, action, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        out = asyncio.run(run(url, action, rest))
    except MCPError as err:
        print(json.dumps({"error": {"code": err.code, "message": err.message, "data": err.data}}))
        return 1
    except BaseException as err:  # an ExceptionGroup from the task group wraps the real error
        inner = err
        while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        if isinstance(inner, MCPError):
            print(json.dumps({"error": {"code": inner.code, "message": inner.message, "data": inner.data}}))
            return 1
        print(json.dumps({"failure": f"{type(inner).__name__}: {inner}"}))
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
