"""Pure parts: settings, denial parsing, scopes, PostgreSQL options; names equal Warden's."""

from __future__ import annotations

import re
import unittest
from pathlib import Path

from warden_agent import (
    RequestScope,
    Warden,
    WardenSettingsError,
    acting_for,
    current_scope,
    denial_from_data,
    denial_from_mcp_error,
    denial_from_response,
    parse_retry_after,
    request_scope,
    settings_from_env,
    user_token_from_headers,
)
from warden_agent import constants

REPO = Path(__file__).resolve().parents[3]
SIDECAR = {
    "WARDEN_MCP_BASE": "http://127.0.0.1:15100",
    "WARDEN_HTTP_BASE": "http://127.0.0.1:15101/",
    "WARDEN_PG_BASE": "postgresql://127.0.0.1:15432",
}
GATEWAY = {
    "WARDEN_GATEWAY_URL": "https://warden-gateway.warden-system.svc:8443",
    "WARDEN_GATEWAY_TOKEN_FILE": "/var/run/secrets/warden.dev/gateway/token",
    "WARDEN_GATEWAY_PG": "warden-gateway.warden-system.svc:5432",
}


class ConstantsTest(unittest.TestCase):
    def test_equal_to_warden(self) -> None:
        ts = "".join((REPO / p).read_text() for p in ["core/constants.ts", "broker/constants.ts", "broker/pg/options.ts"])
        ts += (REPO / "sdk/typescript/src/constants.ts").read_text()

        def value(name: str) -> str:
            m = re.search(rf"export const {name} = ([^;]+);", ts)
            assert m, name
            return m.group(1).strip().strip("'")

        for name in ["ENV_MCP_BASE", "ENV_HTTP_BASE", "ENV_PG_BASE", "ENV_USER_TOKEN_HEADER", "ENV_GATEWAY_URL",
                     "ENV_GATEWAY_TOKEN_FILE", "ENV_GATEWAY_PG", "HEADER_USER_TOKEN", "HEADER_CONTEXT", "HEADER_REQUEST_ID"]:
            self.assertEqual(getattr(constants, name), value(name), name)
        self.assertEqual(constants.PG_SETTING_USER_TOKEN, value("SETTING_USER_TOKEN"))
        self.assertEqual(constants.PG_SETTING_CONTEXT, value("SETTING_CONTEXT"))
        self.assertEqual(constants.JSONRPC_POLICY_DENIED, int(value("JSONRPC_POLICY_DENIED")))


class SettingsTest(unittest.TestCase):
    def test_sidecar(self) -> None:
        s = settings_from_env(SIDECAR)
        self.assertEqual((s.mode, s.mcp_base, s.http_base, s.pg_base), ("sidecar", "http://127.0.0.1:15100", "http://127.0.0.1:15101", "postgresql://127.0.0.1:15432"))
        self.assertEqual(s.user_token_header, "x-warden-user-token")

    def test_gateway_reads_token_each_time(self) -> None:
        n = iter(range(1, 10))
        s = settings_from_env(GATEWAY, lambda p: f"t{next(n)}")
        self.assertEqual(s.mode, "gateway")
        self.assertEqual(s.mcp_base, "https://warden-gateway.warden-system.svc:8443/mcp")
        assert s.agent_token
        self.assertEqual([s.agent_token(), s.agent_token()], ["t1", "t2"])

    def test_refusals(self) -> None:
        cases = {
            "nothing set": ({}, "no Warden settings"),
            "bad URL": ({"WARDEN_MCP_BASE": "nope", "WARDEN_HTTP_BASE": "http://x"}, "WARDEN_MCP_BASE: not a URL"),
            "half the sidecar env": ({"WARDEN_HTTP_BASE": "http://127.0.0.1:1"}, "WARDEN_MCP_BASE is not set"),
            "plain http gateway": ({**GATEWAY, "WARDEN_GATEWAY_URL": "http://gw.example"}, "over https"),
            "no token file": ({"WARDEN_GATEWAY_URL": "https://gw"}, "WARDEN_GATEWAY_TOKEN_FILE is not set"),
            "pg with a path": ({**GATEWAY, "WARDEN_GATEWAY_PG": "gw:5432/db"}, "expected host:port"),
        }
        for name, (env, message) in cases.items():
            with self.subTest(name), self.assertRaisesRegex(WardenSettingsError, message):
                settings_from_env(env)


class DenialTest(unittest.TestCase):
    def test_mcp_error(self) -> None:
        from mcp.shared.exceptions import MCPError

        d = denial_from_mcp_error(MCPError(-32003, "condition failed", {"reason": "ConditionFailed", "reasons": [{"policy": "a/p", "rule": 1, "condition": "ops-user", "message": "m"}]}))
        assert d is not None
        self.assertEqual((d.reason, d.policy, d.rule, d.condition, d.message), ("ConditionFailed", "a/p", 1, "ops-user", "condition failed"))
        self.assertIsNone(denial_from_mcp_error(MCPError(-32601, "Method not found")))
        self.assertIsNone(denial_from_mcp_error(ValueError("x")))

    def test_retry_after(self) -> None:
        self.assertEqual(denial_from_data({"reason": "Q", "retryAfterSeconds": 7}, "m", retry_after="30").retry_after_seconds, 7)  # type: ignore[union-attr]
        d = denial_from_data({"reason": "Q"}, "m", retry_after="30")
        assert d is not None
        self.assertEqual(d.retry_after_seconds, 30)
        self.assertTrue(d.transient)
        self.assertIsNone(denial_from_data({"reason": "Q", "retryAfterSeconds": -1}, "m").retry_after_seconds)  # type: ignore[union-attr]
        self.assertIsNone(denial_from_data({"reason": "Q", "retryAfterSeconds": True}, "m").retry_after_seconds)  # type: ignore[union-attr]
        self.assertEqual(parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1767225600), 10)
        self.assertIsNone(parse_retry_after("soon"))

    def test_response(self) -> None:
        json_ct = {"content-type": "application/json", "x-request-id": "r-1"}
        d = denial_from_response(403, json_ct, b'{"error":"access_denied","reason":"NoMatchingAllow","message":"no rule","reasons":[]}')
        assert d is not None
        self.assertEqual((d.reason, d.request_id, d.message), ("NoMatchingAllow", "r-1", "no rule"))
        rpc = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32003,"message":"suspended","data":{"reason":"AgentSuspended","reasons":[]}}}'
        self.assertEqual(denial_from_response(403, json_ct, rpc).reason, "AgentSuspended")  # type: ignore[union-attr]
        self.assertIsNone(denial_from_response(403, {"content-type": "text/plain"}, b"forbidden"))
        self.assertIsNone(denial_from_response(403, json_ct, b"not json"))
        self.assertIsNone(denial_from_response(200, json_ct, b'{"reason":"X"}'))


class ScopeTest(unittest.TestCase):
    def test_nesting_and_headers(self) -> None:
        w = Warden(settings_from_env(SIDECAR))
        with request_scope(context={"ticketId": "SUP-1"}), acting_for("Bearer u.t.s"):
            self.assertEqual(w.headers(), {"x-warden-user-token": "u.t.s", "x-warden-context": '{"ticketId":"SUP-1"}'})
        self.assertEqual(current_scope(), RequestScope())
        self.assertEqual(w.headers(), {})

    def test_user_token_from_headers(self) -> None:
        self.assertEqual(user_token_from_headers({"Authorization": "Bearer a.b.c"}), "a.b.c")
        self.assertIsNone(user_token_from_headers({"authorization": "Basic xyz"}))
        self.assertIsNone(user_token_from_headers({}))


class PostgresTest(unittest.TestCase):
    def test_sidecar_options(self) -> None:
        w = Warden(settings_from_env(SIDECAR))
        with request_scope(user_token="u.t.s", context={"purpose": "month end"}):
            pg = w.postgres("ledger")
        self.assertEqual(pg.options, '-c warden.user_token=u.t.s -c warden.context={"purpose":"month\\ end"}')
        self.assertTrue(pg.dsn.startswith("postgresql://127.0.0.1:15432/ledger?options="))
        self.assertIsNone(pg.password)

    def test_gateway_password_and_tls(self) -> None:
        w = Warden(settings_from_env(GATEWAY, lambda p: "agent.jwt.sig"))
        pg = w.postgres("ledger")
        self.assertIn("sslmode=verify-full", pg.dsn)
        self.assertEqual(pg.password, "agent.jwt.sig")
        self.assertEqual(w.headers()["authorization"], "Bearer agent.jwt.sig")

    def test_no_endpoint_and_bad_names(self) -> None:
        w = Warden(settings_from_env({"WARDEN_MCP_BASE": "http://127.0.0.1:1", "WARDEN_HTTP_BASE": "http://127.0.0.1:2"}))
        with self.assertRaisesRegex(WardenSettingsError, "no PostgreSQL endpoint"):
            w.postgres("ledger")
        with self.assertRaisesRegex(WardenSettingsError, "CredentialProvider name"):
            w.mcp_url("../admin")


if __name__ == "__main__":
    unittest.main()
