"""The Python SDK against the real broker (tests/broker-stack-fixture.ts): the example agent's run, typed
denials from each refusal shape, the user token forwarded from the request scope."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from stack import BrokerStack  # noqa: E402
from support_agent import support_agent  # noqa: E402

from warden_agent import Warden, WardenDenied, acting_for  # noqa: E402


def b64(o: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()


def user_token(groups: list[str]) -> str:
    claims = {"iss": "https://idp.test", "aud": "warden", "sub": "olivia", "groups": groups, "exp": int(time.time()) + 600}
    return f"{b64({'alg': 'RS256'})}.{b64(claims)}.c2ln"


class BrokerTest(unittest.IsolatedAsyncioTestCase):
    stack: BrokerStack

    @classmethod
    def setUpClass(cls) -> None:
        cls.stack = BrokerStack()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.stack.close()

    async def asyncSetUp(self) -> None:
        # IsolatedAsyncioTestCase runs the loop in debug mode, which logs every step over 0.1 s:
        # on a loaded machine that is noise, not a finding.
        asyncio.get_running_loop().slow_callback_duration = 10
        self.warden = Warden.from_env(self.stack.env)

    async def test_example_agent(self) -> None:
        lines: list[str] = []
        await support_agent(self.warden, user_token(["support"]), lines.append)
        print("\n".join(["", "example agent output:", *lines]))
        self.assertEqual(lines[0], "tools Warden lets me see: jira.get_issue, jira.search")
        self.assertEqual(lines[1], "jira.get_issue → issue SUP-42: printer on fire")
        self.assertEqual(
            lines[2],
            "jira.delete_issue → denied: reason=DeniedByPolicy policy=team-a/no-delete rule=0 condition=None transient=False",
        )
        self.assertEqual(lines[3], 'GET tickets/api/v1/tickets/SUP-42 → 200 {"ticket":"SUP-42","method":"GET"}')
        self.assertRegex(lines[4], r"^DELETE tickets/api/v1/tickets/SUP-42 → denied: reason=NoMatchingAllow \(.+\)$")
        self.assertEqual(len(lines), 5)
        audit = self.stack.command("audit")
        allowed = [e for e in audit["events"] if e.get("decision") == "Allow" and e.get("tool") == "jira.get_issue"]
        self.assertEqual(allowed[-1]["user"], "olivia")
        # A credential went upstream; the agent never held one.
        self.assertTrue(any(str(a).startswith("Bearer wdn_") for a in audit["upstreamAuthorization"]))

    async def test_failed_condition_is_named(self) -> None:
        with acting_for(user_token(["support"])):
            async with self.warden.mcp_client("jira") as jira:
                with self.assertRaises(WardenDenied) as caught:
                    await jira.call_tool("jira.admin_reset", {})
        d = caught.exception
        self.assertEqual((d.reason, d.policy, d.rule, d.condition), ("ConditionFailed", "team-a/support-readers", 1, "ops-user"))
        self.assertFalse(d.transient)

    async def test_ops_user_is_allowed_from_the_scope(self) -> None:
        with acting_for(user_token(["ops"])):
            async with self.warden.mcp_client("jira") as jira:
                result = await jira.call_tool("jira.admin_reset", {})
        self.assertEqual(result.content[0].text, "reset")

    async def test_suspended_agent_is_a_typed_denial(self) -> None:
        self.stack.command("suspend")
        try:
            with self.assertRaises(WardenDenied) as caught:
                async with self.warden.mcp_client("jira") as jira:
                    await jira.list_tools()
            self.assertEqual(caught.exception.reason, "AgentSuspended")
            async with self.warden.http_client("tickets") as tickets:
                with self.assertRaises(WardenDenied) as http_caught:
                    await tickets.get("api/v1/tickets/SUP-1")
            self.assertEqual(http_caught.exception.reason, "AgentSuspended")
        finally:
            self.stack.command("resume")

    async def test_http_path_outside_policy_is_a_denial(self) -> None:
        async with self.warden.http_client("tickets") as tickets:
            with self.assertRaises(WardenDenied) as caught:
                await tickets.get("api/v2/other")
            self.assertEqual(caught.exception.reason, "NoMatchingAllow")
            self.assertIsNone(caught.exception.policy)
            r = await tickets.get("api/v1/tickets/SUP-9")
            self.assertEqual(r.status_code, 200)


if __name__ == "__main__":
    unittest.main()
