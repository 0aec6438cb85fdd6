"""The Python SDK against the real shared gateway (tests/gateway-stack-fixture.ts: API server,
controller, `warden gateway` on TLS, an agent pod without a sidecar): the example agent runs with
only the gateway settings an agent gets (URL, token file, CA file)."""

from __future__ import annotations

import asyncio
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from stack import BrokerStack  # noqa: E402
from support_agent import support_agent  # noqa: E402

from warden_agent import Warden, settings_from_env  # noqa: E402


class GatewayTest(unittest.IsolatedAsyncioTestCase):
    stack: BrokerStack

    @classmethod
    def setUpClass(cls) -> None:
        cls.stack = BrokerStack("gateway-stack-fixture.ts")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.stack.close()

    async def asyncSetUp(self) -> None:
        asyncio.get_running_loop().slow_callback_duration = 10
        env = {k: v for k, v in self.stack.env.items() if k.startswith("WARDEN_")}
        self.warden = Warden.from_env(env)
        self.namespace = self.stack.env["NAMESPACE"]

    async def test_example_agent_through_the_gateway(self) -> None:
        self.assertEqual(self.warden.settings.mode, "gateway")
        lines: list[str] = []
        await support_agent(self.warden, None, lines.append)
        print("\n".join(["", "example agent output (gateway):", *lines]))
        self.assertEqual(lines[0], "tools Warden lets me see: jira.get_issue, jira.search")
        self.assertEqual(lines[1], "jira.get_issue → issue SUP-42: printer on fire")
        self.assertEqual(
            lines[2],
            f"jira.delete_issue → denied: reason=DeniedByPolicy policy={self.namespace}/no-delete rule=0 condition=None transient=False",
        )
        self.assertEqual(lines[3], 'GET tickets/api/v1/tickets/SUP-42 → 200 {"ticket":"SUP-42","method":"GET"}')
        self.assertRegex(lines[4], r"^DELETE tickets/api/v1/tickets/SUP-42 → denied: reason=NoMatchingAllow")

    async def test_a_bad_agent_token_gets_401_with_the_challenge(self) -> None:
        env = {k: v for k, v in self.stack.env.items() if k.startswith("WARDEN_")}
        warden = Warden(settings_from_env(env, read_token=lambda _path: "not.a.jwt"))
        async with warden.http_client("tickets") as tickets:
            r = await tickets.get("api/v1/tickets/SUP-1")
        # Refused by the gateway before any decision: a 401 to fix the token, not a policy denial.
        self.assertEqual(r.status_code, 401)
        self.assertIn('realm="warden-gateway"', r.headers["www-authenticate"])
        self.assertIn("not a JWT", r.json()["message"])


if __name__ == "__main__":
    unittest.main()
